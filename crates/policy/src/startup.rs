//! What the server binds and starts once: sockets, upstreams, limits, the cache's size,
//! the query log's sink. A reload that changes one of these says "restart to apply";
//! everything else in the config is the [`Policy`](crate::Policy) a reload swaps.

use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use crate::change::{Change, Settings};
use crate::settings::{HttpSettings, LogFormat, RateLimitAction, Timeout, UdpPayload};
use crate::upstream::Upstream;

/// The settings read once at start, checked. [`Policy::load`](crate::Policy::load)
/// returns them beside the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Startup {
    /// `[server] listen`: addresses to serve DNS on, UDP and TCP each.
    pub listen: Vec<SocketAddr>,
    /// `[server] listen_tls`: addresses to serve DNS over TLS on.
    pub listen_tls: Vec<SocketAddr>,
    /// `[server] listen_https`: addresses to serve DNS over HTTPS on.
    pub listen_https: Vec<SocketAddr>,
    /// `[tls]`: the certificate and key files of those listeners (both given, resolved
    /// against the config file's folder), when there is a `[tls]`. Their content is
    /// reloaded while running; a change of the paths needs a restart.
    pub tls: Option<TlsFiles>,
    /// `[server] udp_sockets`: UDP sockets per listen address (0: one per CPU).
    pub udp_sockets: usize,
    /// `[server] upstreams`; empty means the nameservers of `/etc/resolv.conf`.
    pub upstreams: Vec<Upstream>,
    /// `[server] bootstrap`: plain DNS servers for the upstreams' host names; empty
    /// means the nameservers of `/etc/resolv.conf`.
    pub bootstrap: Vec<Upstream>,
    /// `[server] upstream_timeout_ms`: the budget of one forwarded query.
    pub upstream_timeout: Timeout,
    /// `[server] udp_payload`.
    pub udp_payload: UdpPayload,
    /// `[server] tcp_idle_timeout_secs`.
    pub tcp_idle_timeout: Timeout,
    /// `[server] tcp_max_connections`.
    pub tcp_max_connections: NonZeroUsize,
    /// `[server] tcp_max_connections_per_client`.
    pub tcp_max_connections_per_client: NonZeroUsize,
    /// `[server] ratelimit_qps`, `ratelimit_ipv6_prefix` and `ratelimit_action`.
    pub ratelimit: RateLimit,
    /// `[cache] enabled`.
    pub cache_enabled: bool,
    /// `[cache] size`: most entries held.
    pub cache_size: usize,
    /// `[log] format`, `file` and `queue`.
    pub log: LogSink,
    /// `[http]`: the metrics and API listener (`token_file` resolved against the config
    /// file's folder).
    pub http: HttpSettings,
}

/// `[tls] cert_file` and `key_file`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// The PEM private key.
    pub key_file: PathBuf,
}

/// The per-client query rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Queries per second per client; 0: no limit.
    pub qps: u32,
    /// The IPv6 prefix length that is one client (at most 128).
    pub ipv6_prefix: u8,
    /// What a query over the limit gets.
    pub action: RateLimitAction,
}

/// Where query lines go, and how: `[log]` but `queries` (which a reload changes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSink {
    /// `auto`, `json` or `pretty`.
    pub format: LogFormat,
    /// The file to append to (resolved against the config file's folder); `None`: stdout.
    pub file: Option<PathBuf>,
    /// Lines buffered between the resolver and the writer.
    pub queue: NonZeroUsize,
}

impl Startup {
    /// Most cached answers: [`Self::cache_size`], or 0 when the cache is off.
    pub fn cache_entries(&self) -> usize {
        if self.cache_enabled {
            self.cache_size
        } else {
            0
        }
    }

    /// What differs from `running`, the settings the process started with: each is
    /// a change that only a restart applies. Compared with what runs, not with the
    /// previous load, so that reverting a change stops reporting it.
    ///
    /// Long because it is a list, one comparison per key, under one destructuring of
    /// `running` without `..` (so that a field added to [`Startup`] does not compile
    /// until it is compared here).
    #[allow(clippy::too_many_lines)]
    pub fn changes_from(&self, running: &Self) -> Vec<Change> {
        let Self {
            listen,
            listen_tls,
            listen_https,
            tls,
            udp_sockets,
            upstreams,
            bootstrap,
            upstream_timeout,
            udp_payload,
            tcp_idle_timeout,
            tcp_max_connections,
            tcp_max_connections_per_client,
            ratelimit,
            cache_enabled,
            cache_size,
            log:
                LogSink {
                    format,
                    file,
                    queue,
                },
            http,
        } = running;
        let millis = |t: &Timeout| t.get().as_millis();
        let secs = |t: &Timeout| t.get().as_secs();
        let mut out = Vec::new();
        Settings::new(&mut out, "[server]")
            .compare("listen", listen, &self.listen)
            .compare("listen_tls", listen_tls, &self.listen_tls)
            .compare("listen_https", listen_https, &self.listen_https)
            .compare("upstreams", upstreams, &self.upstreams)
            .compare("bootstrap", bootstrap, &self.bootstrap)
            .compare(
                "upstream_timeout_ms",
                &millis(upstream_timeout),
                &millis(&self.upstream_timeout),
            )
            .compare("udp_sockets", udp_sockets, &self.udp_sockets)
            .compare("udp_payload", udp_payload, &self.udp_payload)
            .compare(
                "tcp_idle_timeout_secs",
                &secs(tcp_idle_timeout),
                &secs(&self.tcp_idle_timeout),
            )
            .compare(
                "tcp_max_connections",
                tcp_max_connections,
                &self.tcp_max_connections,
            )
            .compare(
                "tcp_max_connections_per_client",
                tcp_max_connections_per_client,
                &self.tcp_max_connections_per_client,
            )
            .compare("ratelimit_qps", &ratelimit.qps, &self.ratelimit.qps)
            .compare(
                "ratelimit_ipv6_prefix",
                &ratelimit.ipv6_prefix,
                &self.ratelimit.ipv6_prefix,
            )
            .compare(
                "ratelimit_action",
                &ratelimit.action,
                &self.ratelimit.action,
            );
        Settings::new(&mut out, "[cache]")
            .compare("enabled", cache_enabled, &self.cache_enabled)
            .compare("size", cache_size, &self.cache_size);
        Settings::new(&mut out, "[log]")
            .compare("format", format, &self.log.format)
            .compare("file", file, &self.log.file)
            .compare("queue", queue, &self.log.queue);
        let file =
            |t: &Option<TlsFiles>, key: fn(&TlsFiles) -> &PathBuf| t.as_ref().map(key).cloned();
        Settings::new(&mut out, "[tls]")
            .compare(
                "cert_file",
                &file(tls, |t| &t.cert_file),
                &file(&self.tls, |t| &t.cert_file),
            )
            .compare(
                "key_file",
                &file(tls, |t| &t.key_file),
                &file(&self.tls, |t| &t.key_file),
            );
        Settings::new(&mut out, "[http]")
            .compare("listen", &http.listen, &self.http.listen)
            .compare("token_file", &http.token_file, &self.http.token_file)
            .compare(
                "recent_queries",
                &http.recent_queries,
                &self.http.recent_queries,
            )
            .compare(
                "microsoft_suffixes",
                &http.microsoft_suffixes,
                &self.http.microsoft_suffixes,
            );
        out
    }
}
