//! The server keys of the config file: the tables as written (phase one), and the
//! checked values loading turns them into (phase two).
//!
//! Every field's doc comment states its default and the range loading enforces: a value
//! outside it is an error naming its line, never silently replaced by a nearby one. The
//! checked values are types that hold their range ([`UdpPayload`], [`Timeout`],
//! [`CacheTtls`], `NonZeroUsize`), so the server uses them as they are, with no clamps.
//! Loading splits them in two: what the server binds once at start ([`Startup`](crate::Startup))
//! and what the [`Policy`](crate::Policy) in force carries, query by query.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use toml::Spanned;

#[cfg(doc)]
use crate::upstream::Upstream;
use crate::upstream::UpstreamEntry;

/// `[server]`: where winsink listens, whom it answers, where it forwards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerSettings {
    /// Addresses to serve DNS on, UDP and TCP each.
    /// Default: `["127.0.0.1:5353", "[::1]:5353"]` (unprivileged; a lab sets `0.0.0.0:53`).
    pub listen: Vec<SocketAddr>,
    /// Upstream resolvers: `udp://HOST:PORT`, `tcp://HOST:PORT`, `tls://HOST[:PORT]`
    /// (`#NAME` for the certificate's name), `https://HOST[:PORT]/PATH`, or a table with
    /// `url`, `tls_name`, `ca_file` and `insecure_skip_verify` (a bare `HOST[:PORT]`
    /// means UDP, port 53; see [`Upstream`]). Default: empty, meaning the nameservers of
    /// `/etc/resolv.conf` minus winsink's own listen addresses.
    pub upstreams: Vec<Spanned<UpstreamEntry>>,
    /// Plain DNS servers (`udp://IP:PORT`, `tcp://IP:PORT` or `IP[:PORT]`) that resolve
    /// the host names of `tls://` and `https://` upstreams. Default: empty, meaning the
    /// nameservers of `/etc/resolv.conf` minus winsink's own listen addresses.
    pub bootstrap: Vec<Spanned<String>>,
    /// Total time budget for answering a forwarded query across all upstreams, in
    /// milliseconds (at least 1); when it runs out the client gets SERVFAIL.
    /// Default: `2000`.
    pub upstream_timeout_ms: Spanned<u64>,
    /// Client networks that may query; anyone else gets REFUSED (an empty list, which
    /// refuses everyone, loads with a warning).
    /// Default: loopback, RFC 1918, RFC 6598, link-local and ULA networks.
    pub allow_clients: Vec<IpNet>,
    /// UDP sockets bound per listen address with `SO_REUSEPORT`. Default: `0`, meaning
    /// one per CPU.
    pub udp_sockets: usize,
    /// EDNS UDP payload size winsink advertises and honours, in bytes (at least 512).
    /// Default: `1232`.
    pub udp_payload: Spanned<u16>,
    /// Seconds an idle TCP connection is kept open (at least 1). Default: `10`.
    pub tcp_idle_timeout_secs: Spanned<u64>,
    /// Most TCP connections served at once (at least 1). When all are taken, the one
    /// idle the longest is closed to make room for a new one; a new one is refused only
    /// when every connection has a query in flight. Lowered at start, with a warning,
    /// to what the open-files limit allows. Default: `1024`.
    pub tcp_max_connections: Spanned<usize>,
    /// Most TCP connections one client address may hold at once (at least 1); more are
    /// closed on accept, so that one client cannot take every slot. Default: `32`.
    pub tcp_max_connections_per_client: Spanned<usize>,
    /// Queries per second one client may send (UDP and TCP); beyond, queries get
    /// `ratelimit_action` and no log line, and a WARN every 10 s counts them.
    /// Default: `0`, no limit (as in Unbound and BIND).
    pub ratelimit_qps: u32,
    /// The IPv6 prefix length that counts as one client for `ratelimit_qps` (0 to 128;
    /// IPv4 addresses count one each). Default: `56`.
    pub ratelimit_ipv6_prefix: Spanned<u8>,
    /// What a query over `ratelimit_qps` gets: `refuse` (REFUSED), `slip` (TC=1, no
    /// records: a real client retries over TCP) or `drop` (nothing). Default: `refuse`.
    pub ratelimit_action: RateLimitAction,
    /// Addresses to serve DNS over TLS on (RFC 7858; clients use port 853), with the
    /// certificate of `[tls]`. Default: none.
    pub listen_tls: Vec<SocketAddr>,
    /// Addresses to serve DNS over HTTPS on (RFC 8484: path `/dns-query`, GET and POST,
    /// HTTP/2 and HTTP/1.1; clients use port 443), with the certificate of `[tls]`.
    /// Default: none.
    pub listen_https: Vec<SocketAddr>,
}

/// What a query over the rate limit gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum RateLimitAction {
    /// REFUSED. The default.
    #[default]
    Refuse,
    /// An empty answer with TC=1 over UDP (REFUSED over TCP).
    Slip,
    /// No answer.
    Drop,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            listen: vec![
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 5353),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), 5353),
            ],
            upstreams: Vec::new(),
            bootstrap: Vec::new(),
            upstream_timeout_ms: unwritten(2000),
            allow_clients: default_allow_clients(),
            udp_sockets: 0,
            udp_payload: unwritten(1232),
            tcp_idle_timeout_secs: unwritten(10),
            tcp_max_connections: unwritten(1024),
            tcp_max_connections_per_client: unwritten(32),
            ratelimit_qps: 0,
            ratelimit_ipv6_prefix: unwritten(56),
            ratelimit_action: RateLimitAction::Refuse,
            listen_tls: Vec::new(),
            listen_https: Vec::new(),
        }
    }
}

/// A default: a value no line of the file wrote (never out of range, so its span is
/// never shown).
fn unwritten<T>(value: T) -> Spanned<T> {
    Spanned::new(0..0, value)
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
    pub min_ttl: Spanned<u32>,
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
            min_ttl: unwritten(0),
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
    pub queue: Spanned<usize>,
}

impl Default for LogSettings {
    fn default() -> Self {
        Self {
            queries: LogQueries::All,
            format: LogFormat::Auto,
            file: None,
            queue: unwritten(65536),
        }
    }
}

/// Why a value is outside its range, for the error that names its key and line.
pub(crate) type OutOfRange = String;

/// The EDNS UDP payload size winsink advertises and honours: at least 512 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UdpPayload(u16);

impl UdpPayload {
    /// The smallest payload every DNS client accepts (RFC 1035).
    pub const MIN: u16 = 512;

    /// `bytes`, if it is at least [`Self::MIN`].
    pub fn new(bytes: u16) -> Result<Self, OutOfRange> {
        if bytes < Self::MIN {
            return Err(format!(
                "{bytes} is below 512, the smallest payload every DNS client accepts"
            ));
        }
        Ok(Self(bytes))
    }

    /// The size in bytes.
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for UdpPayload {
    fn default() -> Self {
        Self(1232)
    }
}

/// A time limit that is not zero (zero would fail or close everything at once).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Timeout(Duration);

impl Timeout {
    /// `limit`, if it is not zero; `zero` says what zero would do.
    pub(crate) fn new(limit: Duration, zero: &str) -> Result<Self, OutOfRange> {
        if limit.is_zero() {
            return Err(format!("0 would {zero}"));
        }
        Ok(Self(limit))
    }

    /// The limit.
    pub fn get(self) -> Duration {
        self.0
    }
}

/// `[cache]` TTL bounds, with `min_ttl` at most `max_ttl`: what a reload changes for the
/// next answer cached.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheTtls {
    min: u32,
    max: u32,
    negative_max: u32,
}

impl CacheTtls {
    /// The bounds, if `min_ttl` is at most `max_ttl`.
    pub fn new(min_ttl: u32, max_ttl: u32, negative_max_ttl: u32) -> Result<Self, OutOfRange> {
        if min_ttl > max_ttl {
            return Err(format!("{min_ttl} is above max_ttl = {max_ttl}"));
        }
        Ok(Self {
            min: min_ttl,
            max: max_ttl,
            negative_max: negative_max_ttl,
        })
    }

    /// Lowest TTL an entry is kept for, in seconds.
    pub fn min_ttl(&self) -> u32 {
        self.min
    }

    /// Highest TTL an entry is kept for, in seconds (at least [`Self::min_ttl`]).
    pub fn max_ttl(&self) -> u32 {
        self.max
    }

    /// Highest TTL of a negative (NXDOMAIN/NODATA) entry, in seconds.
    pub fn negative_max_ttl(&self) -> u32 {
        self.negative_max
    }
}

impl Default for CacheTtls {
    fn default() -> Self {
        let c = CacheSettings::default();
        Self {
            min: *c.min_ttl.get_ref(),
            max: c.max_ttl,
            negative_max: c.negative_max_ttl,
        }
    }
}

/// A count that must not be zero: `Err` says what zero would do.
pub(crate) fn non_zero(n: usize, zero: &str) -> Result<NonZeroUsize, OutOfRange> {
    NonZeroUsize::new(n).ok_or_else(|| format!("0 would {zero}"))
}

/// `[tls]`: the certificate the DoT and DoH listeners (`[server] listen_tls`,
/// `listen_https`) show clients. Both files are read again when they change (a renewal
/// by certbot or cert-manager): connections already open keep the certificate they
/// began with, new ones get the new one; a new pair that does not load is not used (a
/// WARN says why) and the running one stays.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsSettings {
    /// PEM file with the server certificate first, then any intermediate certificates
    /// (certbot's `fullchain.pem`), relative to the config file. Required by
    /// `listen_tls` and `listen_https`. Default: none.
    pub cert_file: Option<Spanned<PathBuf>>,
    /// PEM file with the certificate's private key: PKCS#8, PKCS#1 (RSA) or SEC1 (ECDSA),
    /// relative to the config file. Default: none.
    pub key_file: Option<Spanned<PathBuf>>,
}

/// `[http]`: the HTTP listener for `/metrics`, `/healthz`, `/readyz` and the JSON API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpSettings {
    /// Addresses to serve HTTP on; an empty list turns the listener, the metrics and the
    /// recent-queries ring off. Default: `["127.0.0.1:8053"]` (loopback only).
    pub listen: Vec<SocketAddr>,
    /// File holding the bearer token that every request but `/healthz` and `/readyz`
    /// must carry (`Authorization: Bearer TOKEN`), relative to the config file. Required
    /// when an address of `listen` is not a loopback address. Default: none.
    pub token_file: Option<PathBuf>,
    /// Queries kept in memory for `/api/v1/queries`, newest first (at least 1).
    /// Default: `10000`.
    pub recent_queries: usize,
    /// Domains owned by Microsoft: a name under one of them that no catalog area matches
    /// is listed by `/api/v1/uncatalogued`. Default: the [`MICROSOFT_SUFFIXES`].
    pub microsoft_suffixes: Vec<String>,
    /// Whether the dashboard may change area actions (by editing this config file)
    /// without the token: on a loopback listener, for a page opened at a loopback
    /// address. With `token_file`, a request with the token may change them anyway.
    /// Restart to change. Default: `false`.
    pub allow_changes: bool,
}

/// The default `[http] microsoft_suffixes`: the registrable domains Microsoft's
/// Windows and Office endpoints live under.
pub const MICROSOFT_SUFFIXES: &[&str] = &[
    "microsoft.com",
    "windows.com",
    "windows.net",
    "windowsupdate.com",
    "live.com",
    "live.net",
    "msn.com",
    "bing.com",
    "bing.net",
    "office.com",
    "office.net",
    "office365.com",
    "microsoftonline.com",
    "msedge.net",
    "azureedge.net",
    "skype.com",
    "xboxlive.com",
    "xboxservices.com",
    "msftconnecttest.com",
    "msftncsi.com",
    "onenote.net",
    "sfx.ms",
    "s-microsoft.com",
    "msocdn.com",
    "aka.ms",
];

impl HttpSettings {
    /// The first address of `listen` that is not a loopback address, when no
    /// `token_file` protects it: such a listener would let anyone on the network read
    /// the query history, so it is refused.
    pub fn unprotected_address(&self, listen: &[SocketAddr]) -> Option<SocketAddr> {
        if self.token_file.is_some() {
            return None;
        }
        listen
            .iter()
            .copied()
            .find(|a| !a.ip().to_canonical().is_loopback())
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            listen: vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8053)],
            token_file: None,
            recent_queries: 10_000,
            microsoft_suffixes: MICROSOFT_SUFFIXES.iter().map(|s| (*s).to_owned()).collect(),
            allow_changes: false,
        }
    }
}
