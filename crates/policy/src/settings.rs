//! The server keys of the config file, as plain data.
//!
//! The policy crate only parses and validates these; `winsink-server` consumes them.
//! Every field's doc comment states its default and the range loading enforces: a value
//! outside it is an error naming its line, never silently replaced by a nearby one.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// `[server]`: where winsink listens, whom it answers, where it forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Addresses to serve DNS on, UDP and TCP each.
    /// Default: `["127.0.0.1:5353", "[::1]:5353"]` (unprivileged; a lab sets `0.0.0.0:53`).
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers, `udp://HOST:PORT` or `tcp://HOST:PORT` (a bare `HOST[:PORT]`
    /// means UDP, port 53). Default: empty, meaning the nameservers of
    /// `/etc/resolv.conf` minus winsink's own listen addresses.
    pub upstreams: Vec<String>,
    /// Total time budget for answering a forwarded query across all upstreams, in
    /// milliseconds (at least 1); when it runs out the client gets SERVFAIL.
    /// Default: `2000`.
    pub upstream_timeout_ms: u64,
    /// Client networks that may query; anyone else gets REFUSED (an empty list, which
    /// refuses everyone, loads with a warning).
    /// Default: loopback, RFC 1918, RFC 6598, link-local and ULA networks.
    pub allow_clients: Vec<IpNet>,
    /// UDP sockets bound per listen address with `SO_REUSEPORT`. Default: `0`, meaning
    /// one per CPU.
    pub udp_sockets: usize,
    /// EDNS UDP payload size winsink advertises and honours, in bytes (at least 512).
    /// Default: `1232`.
    pub udp_payload: u16,
    /// Seconds an idle TCP connection is kept open (at least 1). Default: `10`.
    pub tcp_idle_timeout_secs: u64,
    /// Most TCP connections served at once (at least 1); more are closed on accept.
    /// Default: `1024`.
    pub tcp_max_connections: usize,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5353),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5353),
            ],
            upstreams: Vec::new(),
            upstream_timeout_ms: 2000,
            allow_clients: default_allow_clients(),
            udp_sockets: 0,
            udp_payload: 1232,
            tcp_idle_timeout_secs: 10,
            tcp_max_connections: 1024,
        }
    }
}

/// Loopback, RFC 1918, RFC 6598 (CGNAT), link-local and ULA networks.
pub fn default_allow_clients() -> Vec<IpNet> {
    [
        "127.0.0.0/8",
        "10.0.0.0/8",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "::1/128",
        "fc00::/7",
        "fe80::/10",
    ]
    .iter()
    .map(|s| s.parse().expect("static CIDR"))
    .collect()
}

/// How a blocked name is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum SinkholeMode {
    /// A → `0.0.0.0`, AAAA → `::`, any other type NOERROR with no answer. The default.
    #[default]
    NullIp,
    /// NXDOMAIN with an SOA in the authority section (RFC 2308).
    Nxdomain,
    /// NOERROR with no answer and an SOA in the authority section.
    Nodata,
    /// REFUSED.
    Refused,
    /// A → `ipv4`, AAAA → `ipv6` (NODATA for a family without an address).
    Custom,
}

/// `[sinkhole]` (and a group's `sinkhole`): the answer for `block`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkholeSettings {
    /// `null-ip`, `nxdomain`, `nodata`, `refused` or `custom`. Default: `null-ip`.
    pub mode: SinkholeMode,
    /// TTL of sinkhole answers, in seconds; short so that toggling an area takes effect
    /// quickly on clients. Default: `10`.
    pub ttl: u32,
    /// Address for A answers in `custom` mode (ignored, with a warning, in the others).
    /// Default: none.
    pub ipv4: Option<Ipv4Addr>,
    /// Address for AAAA answers in `custom` mode. Default: none.
    pub ipv6: Option<Ipv6Addr>,
}

impl Default for SinkholeSettings {
    fn default() -> Self {
        Self {
            mode: SinkholeMode::NullIp,
            ttl: 10,
            ipv4: None,
            ipv6: None,
        }
    }
}

/// `[cache]`: the answer cache for forwarded queries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CacheSettings {
    /// Whether forwarded answers are cached. Default: `true`.
    pub enabled: bool,
    /// Most entries held. Default: `65536`.
    pub size: usize,
    /// Lowest TTL an entry is kept for, in seconds (at most `max_ttl`). Default: `0`.
    pub min_ttl: u32,
    /// Highest TTL an entry is kept for, in seconds. Default: `86400`.
    pub max_ttl: u32,
    /// Highest TTL of a negative (NXDOMAIN/NODATA) entry, in seconds. Default: `3600`.
    pub negative_max_ttl: u32,
}

impl Default for CacheSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            size: 65536,
            min_ttl: 0,
            max_ttl: 86400,
            negative_max_ttl: 3600,
        }
    }
}

/// Which queries produce a query-log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogQueries {
    /// Every query. The default.
    #[default]
    All,
    /// Queries that matched a rule, an area or a list (and refused ones).
    Matched,
    /// None.
    None,
}

/// The query log's line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// `pretty` when stdout is a terminal, else `json`. The default.
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// One human-readable line per query.
    Pretty,
}

/// `[log]`: the query log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogSettings {
    /// `all`, `matched` or `none`. Default: `all`.
    pub queries: LogQueries,
    /// `auto`, `json` or `pretty`. Default: `auto`.
    pub format: LogFormat,
    /// File to append query lines to, relative to the config file. Default: none (stdout).
    pub file: Option<PathBuf>,
    /// Lines buffered between the resolver and the writer (at least 1); past it lines are
    /// dropped and counted. Default: `65536`.
    pub queue: usize,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            queries: LogQueries::All,
            format: LogFormat::Auto,
            file: None,
            queue: 65536,
        }
    }
}
