//! The DNS server: sinkhole, transparent forwarding, cache, query log.
//!
//! A query arrives on UDP or TCP; a client outside `allow_clients` gets REFUSED; the
//! policy in force decides on the name; `block` gets the sinkhole answer, anything else
//! is answered from the cache or forwarded to the upstreams. Every query leaves exactly
//! one query-log line.
//!
//! # Why not hickory-server's `Server`
//!
//! (For UDP and TCP. DoT clients are served by hickory-server's TLS listener, whose
//! handler hands each message's bytes to the same engine: see the `dot` module; DoH by
//! hyper, as the `doh` module says why.)
//!
//! winsink parses and writes DNS messages itself ([`wire`](crate) module) on its own
//! socket loops, and uses hickory-proto only for the upstream side (building the
//! forwarded query) and hickory-net's `DnsExchange` for talking to upstreams. The goals
//! behind that choice:
//!
//! - **CPU per query.** The target is to spend no more CPU per query than Unbound on
//!   sinkhole answers, with the query log on. hickory-server's request path decodes
//!   every query into a full `Message` (several allocations), builds the response through
//!   `MessageResponseBuilder`, and logs two `info!` lines per request; here a sinkhole
//!   answer or a cache hit reads the header, one question and the OPT record in place and
//!   writes the answer straight into a reused buffer, with no allocation per query.
//! - **Transparency.** A forwarded answer is the upstream's bytes: flags, RCODE, every
//!   section, CNAME chains, even its compression. Only the id, the question (the client's
//!   letter case), the TTLs (counted down) and the OPT record (each client's own) change.
//!   Re-encoding through `Message` would be one more place where something gets lost.
//! - **Control** over what each malformed packet gets (FORMERR, NOTIMP, BADVERS, or
//!   silence when not even a header can be read).
//!
//! The same goal shapes the UDP side: each UDP socket (several per address, sharing the
//! port with `SO_REUSEPORT`) is served by a thread of its own in blocking system calls,
//! on Linux `recvmmsg` and `sendmmsg` in batches of up to 32, not by an async task: no
//! readiness polling, and one wake-up of the client per batch of answers. Most of the
//! CPU of a UDP answer is the kernel's (copying, and waking the threads at both ends),
//! so the fewer system calls and wake-ups, the better. The measured CPU per query, for
//! sinkhole answers and cache hits against Unbound holding the same 1,000,000-name
//! blocklist (query log on), is kept in one place: the header of `bench/load.sh`, with
//! the command that produced each figure.
//! Only cache misses go through the async runtime (Tokio), as do TCP connections.
//!
//! # Hand-written parts, and what holds them
//!
//! The wire parser and the JSON query-log writer stand in for hickory-proto and
//! serde_json only because they are faster and allocate nothing. Two checks keep that
//! claim honest: `tests/no_alloc.rs` counts allocations on the answering thread for a
//! refusal, a FORMERR, sinkhole answers and cache hits with JSON and pretty lines (none
//! once a task's buffers have grown), and `benches/wire.rs` times them against the
//! crates. `cargo bench -p winsink-server --bench wire -- --warm-up-time 2
//! --measurement-time 5` on the 2-core development machine (shared, load average about
//! 19, so absolute times are inflated; the ratios are the figures):
//!
//! | what | winsink | crate | ratio |
//! |---|---|---|---|
//! | parse an A query | 545 ns | `Message::from_vec` 1,086 ns | 2.0x |
//! | parse an A query with OPT | 595 ns | `Message::from_vec` 1,334 ns | 2.2x |
//! | one JSON log line | 1,702 ns | `serde_json` 2,540 ns | 1.5x |
//!
//! serde_json is given the timestamp, client and qtype as ready strings and no clock
//! reading, which favours it; an earlier run on a shorter line (before `decided_by`,
//! `impact_scope` and area ids) had the two level (1.68 against 1.71 µs), so the JSON
//! writer's margin is the one to measure again on a quiet machine. Record type names come
//! from hickory-proto's `RecordType`; RCODE names stay a small table, as hickory's
//! `ResponseCode` names are prose ("No Error"), not dig's mnemonics.
//!
//! # Shape
//!
//! [`bind`] opens the sockets (the caller, not the server, owns that step, so a bind
//! failure can name the address). [`Server::new`] takes the settings that need a restart,
//! and the policy as an [`ArcSwap`] handle: it is read once per query, so swapping a
//! new `Arc<Policy>` into [`Server::policy`] changes `allow_clients`, the sinkhole
//! answer, the cache TTL bounds and `log.queries` for the next query. [`Server::run`]
//! serves until the shutdown token is cancelled, then stops accepting, lets queries in
//! flight finish (at most [`DRAIN`]), and returns. Listener loops live in a `JoinSet`
//! (the UDP threads as its blocking tasks, woken at shutdown);
//! per-query and per-connection tasks in a `TaskTracker`, which can wait for them.
//!
//! ```no_run
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use tokio_util::sync::CancellationToken;
//! use winsink_server::{bind, LogFormat, LogTarget, QueryLog, Server, ServerConfig};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let loaded = winsink_policy::Policy::load("config/winsink.toml".as_ref())?;
//! let config = ServerConfig::from_startup(&loaded.startup)?;
//! let listeners = bind(&loaded.startup.listen, loaded.startup.udp_sockets)?;
//! let log = Arc::new(QueryLog::start(&LogTarget::Stdout, LogFormat::Json, loaded.startup.log.queue)?);
//! let policy = Arc::new(ArcSwap::from_pointee(loaded.policy));
//! let server = Server::new(config, policy, log.clone());
//! let shutdown = CancellationToken::new();
//! server.run(listeners, shutdown).await?;
//! log.close();
//! # Ok(()) }
//! ```
#![warn(missing_docs)]
// Only the batched UDP I/O (`mmsg`: raw `recvmmsg`/`sendmmsg` on reused buffers) and the
// two allocator calls of `memory` (glibc's `mallopt` and `malloc_trim`) use `unsafe`.
#![deny(unsafe_code)]
// Functions past 80 lines (clippy.toml) are split into named steps or say why not; tests may be long.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod cache;
pub mod civil;
mod doh;
mod dot;
mod engine;
pub mod fetch;
mod forward;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
mod limit;
mod listen;
#[allow(unsafe_code)]
pub mod memory;
mod metrics;
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
mod mmsg;
mod querylog;
mod reply;
mod tcp;
mod timeseries;
pub mod tls;
mod verdict;
mod wire;

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{info, warn};
use winsink_policy::{Policy, Startup, UdpPayload};

pub use doh::DNS_QUERY_PATH;
pub use forward::{upstreams_from_resolv_conf, UpstreamHealth, UpstreamState, UpstreamStatus};
pub use listen::{bind, bind_encrypted, BoundAddr, EncryptedAddr, Encryption, Listeners};
pub use metrics::{Metrics, MetricsConfig};
pub use querylog::{LogFormat, LogTarget, QueryLog};
pub use winsink_policy::{Transport, Upstream};

use engine::Engine;
use forward::Forwarder;

/// How long queries in flight may take to finish after shutdown begins.
pub const DRAIN: Duration = Duration::from_secs(2);

/// Errors of the server crate, each keeping what it failed on.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound. The OS error is the error's source, so a
    /// cause chain (`{:#}`) shows it once.
    #[error("cannot bind {proto} {addr}{}", bind_hint(addr, source))]
    Bind {
        /// `udp` or `tcp`.
        proto: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: io::Error,
    },
    /// No upstream configured, and none found in `/etc/resolv.conf`.
    #[error("no upstreams: none configured and {path} names none other than winsink itself")]
    NoUpstreams {
        /// The resolv.conf consulted.
        path: PathBuf,
    },
    /// The query log file cannot be opened.
    #[error("cannot open query log {}: {source}", path.display())]
    LogFile {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// `[tls] cert_file` or `key_file` does not hold what the DoT and DoH listeners
    /// need.
    #[error("[tls] {key} {}: {reason}", path.display())]
    Tls {
        /// `cert_file` or `key_file`.
        key: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// DoT or DoH listeners were bound but no certificate was given to the server.
    #[error("{addr}: a DoT or DoH listener needs a certificate ([tls] cert_file and key_file)")]
    NoCertificate {
        /// The listener's address.
        addr: SocketAddr,
    },
    /// A thread could not be started.
    #[error("cannot start a thread: {0}")]
    Thread(io::Error),
    /// A bound socket could not be handed to the runtime.
    #[error("cannot register a socket: {0}")]
    Register(io::Error),
    /// An HTTP listen address is not loopback and no token protects it.
    #[error(
        "[http] listen: {addr} is not a loopback address, so it needs [http] token_file \
         (a bearer token), or anyone who reaches it reads the query history"
    )]
    HttpUnprotected {
        /// The address.
        addr: SocketAddr,
    },
    /// The HTTP token file cannot be used.
    #[error("[http] token_file {}: {reason}", path.display())]
    HttpToken {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Why a bind failed, when the OS error alone does not say what to do about it.
fn bind_hint(addr: &SocketAddr, source: &io::Error) -> String {
    let port = addr.port();
    match source.kind() {
        io::ErrorKind::PermissionDenied if port < 1024 => {
            " (a port below 1024 needs CAP_NET_BIND_SERVICE: `setcap cap_net_bind_service=+ep` on the binary, or AmbientCapabilities= under systemd)".to_owned()
        }
        // On most Linux desktops and many servers, systemd-resolved's stub listener holds
        // 127.0.0.53:53 and 127.0.0.54:53, which also blocks a wildcard bind of port 53.
        io::ErrorKind::AddrInUse if port == 53 => " (another process holds port 53: \
            often systemd-resolved's stub listener, or another resolver such as dnsmasq or \
            unbound; see which with `ss -lunp 'sport = :53'`; free it from systemd-resolved \
            with `DNSStubListener=no` in /etc/systemd/resolved.conf and `systemctl restart \
            systemd-resolved`, or listen only on the lab interface's address)"
            .to_owned(),
        io::ErrorKind::AddrInUse => {
            format!(" (another process holds it: see which with `ss -lunp 'sport = :{port}'`)")
        }
        _ => String::new(),
    }
}

/// Files besides upstream sockets and TCP connections: listening sockets, the query log,
/// config files, the runtime's own.
const OTHER_FILES: usize = 256;

/// Raises the soft limit on open files to `needed`, within the hard limit. Every
/// forwarded UDP query holds a socket per send (up to three) and every TCP client a
/// connection; under
/// systemd's default soft limit of 1024 a burst of cache misses would otherwise fail at
/// once with "too many open files" while the hard limit allows far more.
#[cfg(target_os = "linux")]
fn raise_open_files_limit(needed: u64) -> Option<u64> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};

    let Ok((old, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return None;
    };
    if old >= needed {
        return Some(old);
    }
    let mut now = old;
    let target = needed.min(hard);
    if target > old && setrlimit(Resource::RLIMIT_NOFILE, target, hard).is_ok() {
        info!("open files limit raised from {old} to {target}");
        now = target;
    }
    Some(now)
}

#[cfg(not(target_os = "linux"))]
fn raise_open_files_limit(_needed: u64) -> Option<u64> {
    None
}

/// The TCP connections and waiting upstream queries that fit in `limit` open files
/// (`None`: unknown, nothing lowered), from the configured `tcp_max` and `forwards`.
/// When both do not fit, TCP clients get at most half of what is left after
/// [`OTHER_FILES`], and upstream queries (up to [`forward::UDP_ATTEMPTS`] sockets each)
/// the rest: a TCP flood can then never take the sockets cache misses need.
fn fit_open_files(limit: Option<u64>, tcp_max: usize, forwards: usize) -> (usize, usize) {
    let Some(limit) = limit else {
        return (tcp_max, forwards);
    };
    let per_forward = usize::from(forward::UDP_ATTEMPTS);
    let room = usize::try_from(limit)
        .unwrap_or(usize::MAX)
        .saturating_sub(OTHER_FILES);
    if tcp_max + forwards * per_forward <= room {
        return (tcp_max, forwards);
    }
    let tcp = tcp_max.min(room / 2).max(1);
    let fwd = forwards.min((room - tcp.min(room)) / per_forward).max(1);
    (tcp, fwd)
}

/// The settings read once at start (changing them needs a restart): the server's part of
/// [`Startup`], with the upstreams found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Upstreams, tried in order with failover.
    pub upstreams: Vec<Upstream>,
    /// Plain DNS servers that resolve the upstreams' host names.
    pub bootstrap: Vec<Upstream>,
    /// Total budget for one forwarded query.
    pub upstream_timeout: Duration,
    /// EDNS UDP payload size advertised and honoured.
    pub udp_payload: UdpPayload,
    /// Idle time after which a TCP connection is closed.
    pub tcp_idle_timeout: Duration,
    /// Most TCP connections served at once (lowered by [`Server::run`] if the
    /// open-files limit is too low for them).
    pub tcp_max_connections: usize,
    /// Most TCP connections of one client address.
    pub tcp_max_connections_per_client: usize,
    /// The per-client query rate limit (off when its `qps` is 0).
    pub ratelimit: winsink_policy::RateLimit,
    /// Most cached answers (0 when the cache is off).
    pub cache_size: usize,
}

/// Where default upstreams come from.
pub const RESOLV_CONF: &str = "/etc/resolv.conf";

impl ServerConfig {
    /// The server's settings of `startup`; with no upstreams (or no bootstrap servers)
    /// configured, uses the nameservers of [`RESOLV_CONF`] other than winsink's own
    /// listen addresses.
    pub fn from_startup(startup: &Startup) -> Result<Self, ServerError> {
        let mut upstreams = startup.upstreams.clone();
        let mut bootstrap = startup.bootstrap.clone();
        if upstreams.is_empty() || bootstrap.is_empty() {
            let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
            let system = upstreams_from_resolv_conf(&text, &startup.listen);
            if upstreams.is_empty() {
                if system.is_empty() {
                    return Err(ServerError::NoUpstreams {
                        path: RESOLV_CONF.into(),
                    });
                }
                upstreams.clone_from(&system);
            }
            if bootstrap.is_empty() {
                bootstrap = system;
            }
        }
        Ok(Self {
            upstreams,
            bootstrap,
            upstream_timeout: startup.upstream_timeout.get(),
            udp_payload: startup.udp_payload,
            tcp_idle_timeout: startup.tcp_idle_timeout.get(),
            tcp_max_connections: startup.tcp_max_connections.get(),
            tcp_max_connections_per_client: startup.tcp_max_connections_per_client.get(),
            ratelimit: startup.ratelimit,
            cache_size: startup.cache_entries(),
        })
    }
}

/// The DNS server.
pub struct Server {
    engine: Arc<Engine>,
    config: ServerConfig,
    /// The certificate of the DoT and DoH listeners.
    cert: Option<tls::CertSlot>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish()
    }
}

impl Server {
    /// Sets up the forwarder, cache and engine. Must be called inside a Tokio runtime
    /// (the upstream exchanges spawn their I/O tasks).
    pub fn new(config: ServerConfig, policy: Arc<ArcSwap<Policy>>, log: Arc<QueryLog>) -> Self {
        let forwarder = Forwarder::new(
            &config.upstreams,
            &config.bootstrap,
            config.upstream_timeout,
            config.udp_payload.get(),
        );
        let engine = Arc::new(Engine::new(
            policy,
            config.cache_size,
            forwarder,
            log,
            config.udp_payload,
            limit::Limits::new(
                config.ratelimit.qps,
                config.ratelimit.ipv6_prefix,
                config.ratelimit.action,
            ),
        ));
        Self {
            engine,
            config,
            cert: None,
        }
    }

    /// Serves the DoT and DoH listeners with the certificate in `cert` (read at each
    /// handshake: store a new one into it to renew). Call before [`run`](Self::run).
    #[must_use]
    pub fn with_tls(mut self, cert: tls::CertSlot) -> Self {
        self.cert = Some(cert);
        self
    }

    /// Counts every query into `metrics` (and keeps the recent ones in its ring). Call
    /// before [`run`](Self::run) and [`http`](Self::http).
    #[must_use]
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        let labels: Vec<String> = self
            .config
            .upstreams
            .iter()
            .map(ToString::to_string)
            .collect();
        let upstreams = metrics.set_upstreams(&labels);
        if let Some(engine) = Arc::get_mut(&mut self.engine) {
            engine.metrics = Some(metrics);
            engine.forwarder.set_metrics(upstreams);
        }
        self
    }

    /// The HTTP service (`/metrics`, health, the JSON API) of this server, for
    /// [`http::Http::serve`]. `None` without [`with_metrics`](Self::with_metrics).
    pub fn http(&self, config: &http::HttpConfig) -> Option<http::Http> {
        let metrics = self.engine.metrics.clone()?;
        let state = http::AppState {
            inner: Arc::new(http::Shared {
                metrics,
                engine: self.engine.clone(),
                cert: self.cert.clone(),
            }),
        };
        Some(http::Http::new(state, config))
    }

    /// Each upstream's health (up or down, when it last answered, counters), kept
    /// current by the forwarder while the server runs. Cheap to clone and to read.
    pub fn upstream_health(&self) -> UpstreamHealth {
        self.engine.forwarder.health().clone()
    }

    /// The policy in force: store a new `Arc<Policy>` into it to reload.
    pub fn policy(&self) -> Arc<ArcSwap<Policy>> {
        self.engine.policy.clone()
    }

    /// Serves `listeners` until `shutdown` is cancelled, then drains (at most [`DRAIN`]).
    ///
    /// First raises the process's soft limit on open files, within the hard limit, to
    /// what the sockets of 4096 forwarded queries and every TCP client need (logged).
    /// When the hard limit is lower, TCP connections and waiting upstream queries are
    /// capped to fit it (a warning says to what), so that TCP clients cannot take every
    /// descriptor and leave cache misses none.
    pub async fn run(
        self,
        listeners: Listeners,
        shutdown: CancellationToken,
    ) -> Result<(), ServerError> {
        let upstream_sockets = listen::MAX_FORWARDS * usize::from(forward::UDP_ATTEMPTS);
        let limit = raise_open_files_limit(
            (upstream_sockets + self.config.tcp_max_connections + OTHER_FILES) as u64,
        );
        let (tcp_max, max_forwards) =
            fit_open_files(limit, self.config.tcp_max_connections, listen::MAX_FORWARDS);
        if tcp_max < self.config.tcp_max_connections || max_forwards < listen::MAX_FORWARDS {
            warn!(
                "open files limit is {}: serving at most {tcp_max} TCP connections (tcp_max_connections = {}) and {max_forwards} queries waiting for upstreams ({}), so that clients cannot take the sockets cache misses need; raise the limit (LimitNOFILE=) to serve more",
                limit.unwrap_or(0),
                self.config.tcp_max_connections,
                listen::MAX_FORWARDS
            );
        }
        let tracker = TaskTracker::new();
        let mut loops = JoinSet::new();
        {
            let (engine, shutdown) = (self.engine.clone(), shutdown.clone());
            loops.spawn(async move { engine.forwarder.probe_loop(shutdown).await });
        }
        let conns = tcp::Connections::new(tcp::TcpLimits {
            max: tcp_max,
            per_client: self.config.tcp_max_connections_per_client,
            idle: self.config.tcp_idle_timeout,
        });
        let _ = self.engine.tcp.set(conns.clone());
        let forwards = Arc::new(Semaphore::new(max_forwards));
        let mut serving = Vec::new();
        for b in listeners.bound {
            let addr = b.addr;
            let n = b.udp_sockets();
            let (udp, tcp) = listen::split(b).map_err(ServerError::Register)?;
            let udp: Vec<Arc<std::net::UdpSocket>> = udp.into_iter().map(Arc::new).collect();
            loops.spawn(listen::wake_udp_on_shutdown(udp.clone(), shutdown.clone()));
            for sock in udp {
                let (engine, shutdown, tracker) =
                    (self.engine.clone(), shutdown.clone(), tracker.clone());
                let forwards = forwards.clone();
                loops.spawn_blocking(move || {
                    listen::udp_thread(engine, sock, shutdown, tracker, forwards)
                });
            }
            loops.spawn(tcp::accept_loop(
                self.engine.clone(),
                tcp,
                conns.clone(),
                forwards.clone(),
                shutdown.clone(),
                tracker.clone(),
            ));
            serving.push((addr, n));
        }
        for e in listeners.encrypted {
            self.serve_encrypted(e, &mut loops, &forwards, &shutdown, &tracker)?;
        }
        // Ready before it says so: whoever waits for these lines may ask /readyz next.
        if let Some(m) = &self.engine.metrics {
            m.set_serving(true);
        }
        for (addr, n) in serving {
            info!("listening on {addr} (udp x{n}, tcp)");
        }
        while let Some(r) = loops.join_next().await {
            if let Err(e) = r {
                if e.is_panic() {
                    warn!(error = %e, "a listener task panicked");
                }
            }
        }
        tracker.close();
        if tokio::time::timeout(DRAIN, tracker.wait()).await.is_err() {
            warn!(
                tasks = tracker.len(),
                "shutdown: queries still in flight after {DRAIN:?} are abandoned"
            );
        }
        Ok(())
    }
}

impl Server {
    /// Starts serving one DoT or DoH listener in `loops`.
    fn serve_encrypted(
        &self,
        e: EncryptedAddr,
        loops: &mut JoinSet<()>,
        forwards: &Arc<Semaphore>,
        shutdown: &CancellationToken,
        tracker: &TaskTracker,
    ) -> Result<(), ServerError> {
        let addr = e.addr;
        let Some(cert) = self.cert.clone() else {
            return Err(ServerError::NoCertificate { addr });
        };
        let listener =
            tokio::net::TcpListener::from_std(e.listener).map_err(ServerError::Register)?;
        let idle = self.config.tcp_idle_timeout;
        let shutdown = shutdown.clone();
        match e.kind {
            Encryption::Tls => {
                let handler = dot::DotHandler {
                    engine: self.engine.clone(),
                    forwards: forwards.clone(),
                    tracker: tracker.clone(),
                };
                loops.spawn(async move {
                    if let Err(err) = dot::serve(handler, listener, cert, idle, shutdown).await {
                        warn!(%addr, error = %err, "dns over tls: the listener stopped");
                    }
                });
                info!("serving DNS over TLS on {addr}");
            }
            Encryption::Https => {
                let doh = doh::Doh {
                    engine: self.engine.clone(),
                    forwards: forwards.clone(),
                    idle,
                };
                let tracker = tracker.clone();
                loops.spawn(async move {
                    if let Err(err) = doh::accept_loop(doh, listener, cert, shutdown, tracker).await
                    {
                        warn!(%addr, error = %err, "dns over https: the listener stopped");
                    }
                });
                info!("serving DNS over HTTPS on https://{addr}{DNS_QUERY_PATH}");
            }
        }
        Ok(())
    }
}

/// What `/readyz` found.
#[derive(Debug)]
pub(crate) struct Readiness {
    pub(crate) serving: bool,
    /// Whether an upstream's last exchange got an answer (true when none is
    /// configured).
    pub(crate) upstreams: bool,
    pub(crate) reasons: Vec<String>,
}

pub(crate) fn readiness(engine: &Engine, metrics: &Metrics) -> Readiness {
    let serving = metrics.serving();
    let health = engine.forwarder.health().snapshot();
    let upstreams = health.is_empty() || health.iter().any(|u| u.state == UpstreamState::Up);
    let mut reasons = Vec::new();
    if !serving {
        reasons.push("the DNS sockets are not served yet".to_owned());
    }
    if !upstreams {
        reasons.push("no upstream answered its last query".to_owned());
    }
    Readiness {
        serving,
        upstreams,
        reasons,
    }
}

/// Per upstream label: up, down, or not known yet.
pub(crate) fn upstream_up(engine: &Engine) -> Vec<(String, Option<bool>)> {
    engine
        .forwarder
        .health()
        .snapshot()
        .into_iter()
        .map(|u| {
            let up = match u.state {
                UpstreamState::Up => Some(true),
                UpstreamState::Down => Some(false),
                UpstreamState::Unknown => None,
            };
            (u.upstream.to_string(), up)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binding_port_53_unprivileged_says_cap_net_bind_service_is_needed() {
        let denied = |addr: &str| ServerError::Bind {
            proto: "udp",
            addr: addr.parse().unwrap(),
            source: io::ErrorKind::PermissionDenied.into(),
        };
        let e = denied("0.0.0.0:53").to_string();
        assert!(e.starts_with("cannot bind udp 0.0.0.0:53 ("), "{e}");
        assert!(e.contains("needs CAP_NET_BIND_SERVICE"), "{e}");
        // Above 1024 a permission error has another cause; no hint that would mislead.
        assert_eq!(
            denied("127.0.0.1:5353").to_string(),
            "cannot bind udp 127.0.0.1:5353"
        );
    }

    #[test]
    fn port_53_in_use_names_systemd_resolved_and_how_to_free_it() {
        let in_use = |addr: &str| ServerError::Bind {
            proto: "udp",
            addr: addr.parse().unwrap(),
            source: io::ErrorKind::AddrInUse.into(),
        };
        let e = in_use("0.0.0.0:53").to_string();
        assert!(e.starts_with("cannot bind udp 0.0.0.0:53 ("), "{e}");
        for needle in [
            "systemd-resolved's stub listener",
            "`ss -lunp 'sport = :53'`",
            "`DNSStubListener=no`",
        ] {
            assert!(e.contains(needle), "{needle} missing: {e}");
        }
        let e = in_use("127.0.0.1:5353").to_string();
        assert!(
            e.ends_with("(another process holds it: see which with `ss -lunp 'sport = :5353'`)"),
            "{e}"
        );
        assert!(!e.contains("resolved"), "{e}");
    }
}
