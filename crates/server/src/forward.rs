//! The transparent forwarder: asks the upstreams, in turn, within a total time budget.
//!
//! UDP upstreams are asked by winsink's own exchange ([`udp`]): a fresh connected socket
//! per send, replies with another id or question and malformed ones discarded (counted,
//! logged at most once a minute per upstream) while it keeps waiting for a good one, and
//! an ICMP port unreachable ending the attempt at once. TCP upstreams, and answers that
//! came truncated over UDP, go through hickory-net's [`DnsExchange`] over one kept
//! connection per upstream, which returns the upstream's message intact
//! (hickory-resolver's `lookup` would rewrite CNAME chains); winsink checks the question
//! of every reply once more. DNS over TLS ([`tls`]) and over HTTPS ([`https`]) upstreams
//! go through the same kind of kept, multiplexed connection, built on hickory-net's TLS
//! and HTTP/2 client streams; their host names are found through `[server] bootstrap`
//! ([`bootstrap`]).
//!
//! Failover: upstreams are tried in order starting from the one that answered last,
//! except that one which failed in the last [`HOLD_DOWN`](health::HOLD_DOWN) goes after
//! those that did not ([`health`]); each gets an equal share of the budget that is left,
//! the last one all of it. A timeout, a network error or only unusable replies move on;
//! so does a SERVFAIL or REFUSED answer, which is passed on only if no other upstream
//! answers.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use hickory_net::runtime::TokioRuntimeProvider;
use hickory_net::tcp::TcpClientStream;
use hickory_net::xfer::{DnsExchange, DnsHandle};
use hickory_proto::op::{DnsRequest, DnsRequestOptions, Edns, Message, Query as HQuery};
use hickory_proto::serialize::binary::{BinDecodable, BinDecoder};
use tokio::time::{timeout_at, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use winsink_policy::{CacheTtls, Host, Transport, Upstream};

mod bootstrap;
mod health;
mod https;
mod tls;
mod udp;

use health::Failure;
pub use health::{UpstreamHealth, UpstreamState, UpstreamStatus};
use udp::Verdict;

use crate::metrics::{UpstreamCounters, UpstreamOutcome};
use crate::reply::Reply;
use crate::wire::{Query, FLAG_TC};

/// The nameservers of a `resolv.conf` text, minus those that are winsink itself (one of
/// `own` on port 53, or, when winsink listens on a wildcard address on port 53, any
/// loopback address or address of this host's interfaces). Read with the `resolv-conf`
/// crate, as hickory-resolver's system configuration reads it, but keeping an IPv6
/// address's zone (`fe80::1%eth0`), which that configuration's `IpAddr` drops: without
/// it the kernel picks the link.
pub fn upstreams_from_resolv_conf(text: &str, own: &[SocketAddr]) -> Vec<Upstream> {
    let wildcard = own
        .iter()
        .any(|l| l.port() == 53 && l.ip().is_unspecified());
    let local = if wildcard {
        interface_addresses()
    } else {
        Vec::new()
    };
    nameservers_except(text, own, &local)
}

fn nameservers_except(text: &str, own: &[SocketAddr], local: &[IpAddr]) -> Vec<Upstream> {
    let (conf, errors) = resolv_conf::Config::parse_with_errors(text.as_bytes());
    for e in errors {
        debug!("resolv.conf: {e}");
    }
    conf.nameservers
        .iter()
        .filter_map(|ns| match ns {
            resolv_conf::ScopedIp::V4(ip) => Some(SocketAddr::from((*ip, 53))),
            resolv_conf::ScopedIp::V6(ip, scope) => {
                let scope_id = match scope.as_deref() {
                    None => 0,
                    Some(zone) => match zone_index(zone) {
                        Some(i) => i,
                        None => {
                            warn!("resolv.conf: nameserver {ip}%{zone}: no interface {zone:?} here; skipped");
                            return None;
                        }
                    },
                };
                Some(SocketAddr::V6(std::net::SocketAddrV6::new(*ip, 53, 0, scope_id)))
            }
        })
        .filter(|addr| {
            let ip = addr.ip();
            !own.iter().any(|l| {
                l.port() == 53
                    && (l.ip() == ip
                        || (l.ip().is_unspecified()
                            && (ip.is_loopback() || ip.is_unspecified() || local.contains(&ip))))
            })
        })
        .map(|addr| Upstream::plain(Transport::Udp, addr))
        .collect()
}

/// The interface index of an IPv6 zone: a number, or an interface's name.
fn zone_index(zone: &str) -> Option<u32> {
    if let Ok(n) = zone.parse::<u32>() {
        return Some(n);
    }
    #[cfg(target_os = "linux")]
    {
        nix::net::if_::if_nametoindex(zone).ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// The addresses of this host's interfaces (empty where they cannot be listed).
#[cfg(target_os = "linux")]
fn interface_addresses() -> Vec<IpAddr> {
    let Ok(list) = nix::ifaddrs::getifaddrs() else {
        return Vec::new();
    };
    list.filter_map(|i| i.address)
        .filter_map(|a| match a.as_sockaddr_in() {
            Some(v4) => Some(IpAddr::V4(v4.ip())),
            None => a.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip())),
        })
        .collect()
}

#[cfg(not(target_os = "linux"))]
fn interface_addresses() -> Vec<IpAddr> {
    Vec::new()
}

/// Why no upstream answer could be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ForwardError {
    /// An upstream timed out (the others, if any, failed) within the budget.
    #[error("no upstream answered within {0} ms")]
    Exhausted(u64),
    /// Every upstream failed at once: unreachable, or only malformed answers or answers
    /// to other queries came. Keeps the last upstream's failure.
    #[error("no usable upstream answer ({upstream}: {reason})")]
    Unusable {
        /// The last upstream asked.
        upstream: Arc<str>,
        /// What was wrong with it.
        reason: String,
    },
    /// The question could not be turned into an upstream query.
    #[error("the question cannot be forwarded")]
    BadQuestion,
    /// Too many queries are waiting for upstreams already.
    #[error("too many queries waiting for upstreams")]
    Overloaded,
}

type Exchange = DnsExchange<TokioRuntimeProvider>;

/// The kept connection (TCP, TLS or HTTP/2), the address it went to, and how many were
/// opened before it, so that a query whose exchange failed closes only the connection
/// it used, not a newer one.
#[derive(Default)]
struct Slot {
    opened: u64,
    exchange: Option<(SocketAddr, Exchange)>,
}

/// How a target's kept connection is opened.
enum Dial {
    /// Plain TCP (also a UDP upstream's, for truncated answers).
    Tcp,
    /// DNS over TLS.
    Tls(tls::Dialer),
    /// DNS over HTTPS, for the path.
    Https(tls::Dialer, Arc<str>),
    /// An encrypted upstream whose TLS set-up failed at start: every attempt fails so.
    Broken(String),
}

/// Sends of one query to a UDP upstream: the first, then again every
/// [`udp::RESEND_EVERY`] while no good answer came, each from a fresh socket (a fresh
/// random port), all open until the answer or the deadline.
pub(crate) const UDP_ATTEMPTS: u8 = 3;

/// How much later than an attempt's own deadline its exchange is cut off.
const OUTER_GRACE: Duration = Duration::from_millis(20);

/// How often the prober looks for upstreams whose hold-down is over.
const PROBE_TICK: Duration = Duration::from_secs(1);

struct Target {
    upstream: Upstream,
    /// A TCP, TLS or HTTP/2 connection, opened on first use and again after it fails,
    /// shared by every query (the exchange multiplexes them). The lock is held only to
    /// look it up or open it, never for a query's round trip. UDP upstreams use it for
    /// answers that came truncated.
    conn: tokio::sync::Mutex<Slot>,
    dial: Dial,
}

/// Sends queries to the upstreams.
pub(crate) struct Forwarder {
    targets: Vec<Target>,
    health: UpstreamHealth,
    budget: Duration,
    /// The upstream that answered last: tried first, so that a dead first upstream does
    /// not cost every query a timeout.
    preferred: AtomicUsize,
    payload: u16,
    /// Finds the addresses of upstreams given by name (`None` when none is).
    bootstrap: Option<bootstrap::Bootstrap>,
    // Kept alive for as long as the exchanges it spawned run.
    provider: TokioRuntimeProvider,
    /// Per target, in order: the counters of `/metrics` (set when metrics are on).
    counters: std::sync::OnceLock<Vec<Arc<UpstreamCounters>>>,
}

impl fmt::Debug for Forwarder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Forwarder")
            .field(
                "upstreams",
                &self
                    .targets
                    .iter()
                    .map(|t| t.upstream.to_string())
                    .collect::<Vec<_>>(),
            )
            .field("budget", &self.budget)
            .finish()
    }
}

/// The RCODEs that say an upstream cannot answer (it is passed on only when no other
/// upstream does better, and the upstream is marked down): the RCODE's name, and the
/// outcome the exchange counts as in `winsink_upstream_queries_total`, so that the
/// metric and the health agree.
fn failing_rcode(rcode: u16) -> Option<(&'static str, UpstreamOutcome)> {
    match rcode {
        2 => Some(("SERVFAIL", UpstreamOutcome::Servfail)),
        5 => Some(("REFUSED", UpstreamOutcome::Error)),
        _ => None,
    }
}

fn net_failure(what: &str, e: &hickory_net::NetError) -> Failure {
    match e {
        hickory_net::NetError::Io(io) if io.kind() == std::io::ErrorKind::ConnectionRefused => {
            Failure::ConnectionRefused
        }
        hickory_net::NetError::Timeout => Failure::Network(format!("{what}: timed out")),
        _ => Failure::Network(format!("{what}: {e}")),
    }
}

/// The start-up probe's question: `. NS`, which every recursive resolver answers.
const PROBE: &[u8] = b"\x00\x00\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\x01";

impl Forwarder {
    /// Sets up exchanges for `upstreams`, the names among them found through `bootstrap`
    /// (plain DNS servers). Must run inside a Tokio runtime.
    pub(crate) fn new(
        upstreams: &[Upstream],
        bootstrap: &[Upstream],
        budget: Duration,
        payload: u16,
    ) -> Self {
        let targets = upstreams
            .iter()
            .map(|upstream| Target {
                upstream: upstream.clone(),
                conn: tokio::sync::Mutex::new(Slot::default()),
                dial: Self::dial(upstream),
            })
            .collect();
        let named = upstreams
            .iter()
            .filter(|u| matches!(u.host, Host::Name { .. }))
            .map(ToString::to_string)
            .collect::<Vec<_>>();
        let bootstrap = if named.is_empty() {
            None
        } else if bootstrap.is_empty() {
            warn!(
                "no bootstrap server (none configured and resolv.conf names none other than \
                 winsink itself): {} cannot be resolved",
                named.join(", ")
            );
            None
        } else {
            match bootstrap::Bootstrap::new(bootstrap, budget) {
                Ok(b) => Some(b),
                Err(e) => {
                    warn!("the bootstrap resolver cannot be set up: {e}");
                    None
                }
            }
        };
        Self {
            targets,
            health: UpstreamHealth::new(upstreams),
            budget,
            preferred: AtomicUsize::new(0),
            payload,
            bootstrap,
            provider: TokioRuntimeProvider::new(),
            counters: std::sync::OnceLock::new(),
        }
    }

    fn dial(upstream: &Upstream) -> Dial {
        let made = match upstream.transport {
            Transport::Udp | Transport::Tcp => return Dial::Tcp,
            Transport::Tls => tls::Dialer::new(upstream, &[]).map(Dial::Tls),
            Transport::Https => tls::Dialer::new(upstream, &[https::ALPN])
                .map(|d| Dial::Https(d, upstream.path.as_str().into())),
        };
        made.unwrap_or_else(|why| {
            tracing::error!(upstream = %upstream, "upstream {upstream}: {why}; it fails every query");
            Dial::Broken(why)
        })
    }

    /// Counts every exchange into `counters` (one per upstream, in order).
    pub(crate) fn set_metrics(&self, counters: Vec<Arc<UpstreamCounters>>) {
        let _ = self.counters.set(counters);
    }

    fn observe(&self, idx: usize, outcome: UpstreamOutcome, took: Duration) {
        if let Some(c) = self.counters.get().and_then(|c| c.get(idx)) {
            c.observe(outcome, took);
        }
    }

    /// The position of the upstream labelled `label`.
    pub(crate) fn index_of(&self, label: &str) -> Option<usize> {
        (0..self.targets.len()).find(|&i| &**self.health.label(i) == label)
    }

    /// The total time budget.
    pub(crate) fn budget(&self) -> Duration {
        self.budget
    }

    /// The upstreams' health.
    pub(crate) fn health(&self) -> &UpstreamHealth {
        &self.health
    }

    /// The order to ask the upstreams in: from the one that answered last, those in
    /// hold-down after the others.
    fn order(&self) -> Vec<usize> {
        let n = self.targets.len();
        let first = self.preferred.load(Ordering::Relaxed);
        let mut order: Vec<usize> = (0..n).map(|i| (first + i) % n).collect();
        order.sort_by_key(|&i| self.health.held_down(i));
        order
    }

    /// Forwards `q` and returns the first upstream answer that matches it.
    pub(crate) async fn forward(
        &self,
        q: &Query<'_>,
        cache: &CacheTtls,
    ) -> Result<Reply, ForwardError> {
        let budget_ms = self.budget.as_millis() as u64;
        let mut failure = ForwardError::Exhausted(budget_ms);
        let mut timed_out = false;
        // A SERVFAIL or REFUSED answer, passed on if no other upstream answers.
        let mut fallback = None;
        let query = HQuery::read(&mut BinDecoder::new(q.question()))
            .map_err(|_| ForwardError::BadQuestion)?;
        let deadline = Instant::now() + self.budget;
        let order = self.order();
        let n = order.len();
        for (i, &idx) in order.iter().enumerate() {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let left = deadline - now;
            let share = if i + 1 == n {
                left
            } else {
                left / (n - i) as u32
            };
            let until = now + share;
            // The UDP exchange ends itself at `until`, saying whether it saw only
            // unusable replies; this deadline, a moment later, is the net for TCP.
            let result =
                match timeout_at(until + OUTER_GRACE, self.ask(idx, q, &query, cache, until)).await
                {
                    Ok(r) => r,
                    Err(_) => Err(Failure::Timeout(share)),
                };
            let outcome = match &result {
                Ok(r) => failing_rcode(r.rcode()).map_or(UpstreamOutcome::Ok, |(_, o)| o),
                Err(Failure::Timeout(_)) => UpstreamOutcome::Timeout,
                Err(_) => UpstreamOutcome::Error,
            };
            self.observe(idx, outcome, now.elapsed());
            let label = self.health.label(idx);
            match result {
                Ok(reply) => match failing_rcode(reply.rcode()).map(|(word, _)| word) {
                    None => {
                        self.health.answered(idx);
                        self.preferred.store(idx, Ordering::Relaxed);
                        return Ok(reply);
                    }
                    Some(word) => {
                        debug!(upstream = %label, "upstream answered {word}");
                        self.health.failed(idx, &Failure::Rcode(word));
                        fallback.get_or_insert(reply);
                    }
                },
                Err(f) => {
                    debug!(upstream = %label, error = %f, "upstream failed");
                    self.health.failed(idx, &f);
                    if let Failure::Timeout(_) = f {
                        timed_out = true;
                        failure = ForwardError::Exhausted(budget_ms);
                    } else if !timed_out {
                        failure = ForwardError::Unusable {
                            upstream: label.clone(),
                            reason: f.to_string(),
                        };
                    }
                }
            }
        }
        fallback.ok_or(failure)
    }

    /// Asks upstream `idx` the start-up probe's question once; how long the answer took.
    async fn probe(&self, idx: usize) -> Result<Duration, Failure> {
        let started = Instant::now();
        let Ok(q) = crate::wire::parse_query(PROBE) else {
            return Err(Failure::Unusable("the probe does not parse".into()));
        };
        let query = HQuery::read(&mut BinDecoder::new(q.question()))
            .map_err(|e| Failure::Unusable(e.to_string()))?;
        let until = started + self.budget;
        let cache = CacheTtls::default();
        let reply = match timeout_at(until, self.ask(idx, &q, &query, &cache, until)).await {
            Ok(r) => r?,
            Err(_) => return Err(Failure::Timeout(self.budget)),
        };
        match failing_rcode(reply.rcode()) {
            Some((word, _)) => Err(Failure::Rcode(word)),
            None => Ok(started.elapsed()),
        }
    }

    /// Probes every upstream once and says how each answered; then, until `shutdown`,
    /// probes again each upstream that is down once its hold-down is over, so that it
    /// comes back without a client's query paying for the attempt.
    pub(crate) async fn probe_loop(&self, shutdown: CancellationToken) {
        let startup = futures_util::future::join_all((0..self.targets.len()).map(|i| async move {
            let label = self.health.label(i);
            match self.probe(i).await {
                Ok(took) => {
                    self.health.answered(i);
                    info!(
                        upstream = %label,
                        "upstream {label} answered the start-up probe (. NS) in {} ms",
                        took.as_millis()
                    );
                }
                Err(why) => {
                    self.health.failed_quietly(i, &why);
                    warn!(
                        upstream = %label,
                        reason = %why,
                        "upstream {label} did not answer the start-up probe (. NS): {why}; serving anyway, other upstreams first"
                    );
                }
            }
        }));
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = startup => {}
        }
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(PROBE_TICK) => {}
            }
            for i in 0..self.targets.len() {
                if self.health.state(i) != UpstreamState::Down || self.health.held_down(i) {
                    continue;
                }
                let result = tokio::select! {
                    () = shutdown.cancelled() => return,
                    r = self.probe(i) => r,
                };
                match result {
                    Ok(_) => self.health.answered(i),
                    Err(why) => self.health.failed(i, &why),
                }
            }
        }
    }

    fn request(&self, q: &Query<'_>, query: &HQuery) -> (DnsRequest, u16) {
        let mut m = Message::query();
        m.metadata.recursion_desired = q.flags & crate::wire::FLAG_RD != 0;
        m.metadata.checking_disabled = q.checking_disabled();
        // Always asked, so that one cached answer serves clients that want the AD bit
        // (RFC 6840 §5.7: a validating upstream sets it only when asked); replay clears
        // it for clients that asked neither AD nor DO.
        m.metadata.authentic_data = true;
        m.queries.push(query.clone());
        let mut edns = Edns::new();
        edns.set_max_payload(self.payload)
            .set_dnssec_ok(q.dnssec_ok());
        m.set_edns(edns);
        let id = m.metadata.id;
        (DnsRequest::new(m, DnsRequestOptions::default()), id)
    }

    /// Takes a reply apart: a malformed one, or one for another question, is discarded.
    fn check(
        &self,
        bytes: Vec<u8>,
        label: &Arc<str>,
        q: &Query<'_>,
        cache: &CacheTtls,
    ) -> Verdict<Reply> {
        match Reply::from_upstream(bytes, label.clone(), cache) {
            Err(e) => Verdict::Discard(e.to_string()),
            Ok(r) if !same_question(r.question(), q.question()) => {
                Verdict::Discard("a reply for another question".into())
            }
            Ok(r) => Verdict::Accept(r),
        }
    }

    async fn ask(
        &self,
        idx: usize,
        q: &Query<'_>,
        query: &HQuery,
        cache: &CacheTtls,
        deadline: Instant,
    ) -> Result<Reply, Failure> {
        let t = &self.targets[idx];
        let label = self.health.label(idx);
        if t.upstream.transport == Transport::Udp {
            let asked = Instant::now();
            let (request, id) = self.request(q, query);
            let bytes = request
                .to_vec()
                .map_err(|e| Failure::Unusable(format!("cannot encode the query: {e}")))?;
            let Some(addr) = t.upstream.addr() else {
                return Err(Failure::Unusable(
                    "a UDP upstream without an address".into(),
                ));
            };
            let reply = udp::exchange(
                addr,
                &bytes,
                id,
                deadline,
                |b| {
                    // Every part of it must parse, as hickory's TCP exchange makes
                    // sure for TCP: the client gets these bytes.
                    if let Err(e) = Message::from_vec(&b) {
                        return Verdict::Discard(format!("a malformed reply ({e})"));
                    }
                    self.check(b, label, q, cache)
                },
                |why| self.health.discarded(idx, why),
            )
            .await?;
            if !reply.truncated() {
                return Ok(reply);
            }
            self.observe(idx, UpstreamOutcome::Truncated, asked.elapsed());
            debug!(upstream = %label, "truncated answer, asking again over TCP");
        }
        // A kept connection may have been closed by the upstream meanwhile: one retry on
        // a fresh connection.
        let addrs = self.addrs(t).await?;
        for attempt in 0..2 {
            let (opened, exchange) = {
                let mut slot = t.conn.lock().await;
                match &slot.exchange {
                    // A name whose addresses changed is dialled again.
                    Some((at, e)) if addrs.contains(at) => (slot.opened, e.clone()),
                    _ => {
                        let (at, e) = self.connect(t, &addrs).await?;
                        slot.opened += 1;
                        slot.exchange = Some((at, e.clone()));
                        (slot.opened, e)
                    }
                }
            };
            match self
                .kept_exchange(&exchange, t, label, q, query, cache)
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let mut slot = t.conn.lock().await;
                    if slot.opened == opened {
                        slot.exchange = None;
                    }
                    if attempt == 1 {
                        return Err(e);
                    }
                    debug!(upstream = %label, error = %e, "exchange failed, reconnecting");
                }
            }
        }
        Err(Failure::Network("exchange failed".into()))
    }

    /// Where `t` is: its address, or those its name resolves to now.
    async fn addrs(&self, t: &Target) -> Result<Vec<SocketAddr>, Failure> {
        match &t.upstream.host {
            Host::Addr(a) => Ok(vec![*a]),
            Host::Name { name, port } => match &self.bootstrap {
                Some(b) => b.addrs(name, *port).await,
                None => Err(Failure::Network(format!(
                    "cannot resolve {name}: no bootstrap server"
                ))),
            },
        }
    }

    /// A new connection to `t`, to the first of `addrs` that takes one.
    async fn connect(
        &self,
        t: &Target,
        addrs: &[SocketAddr],
    ) -> Result<(SocketAddr, Exchange), Failure> {
        let mut last = Failure::Network("no address".into());
        for &addr in addrs {
            let made = match &t.dial {
                Dial::Tcp => {
                    TcpClientStream::exchange(addr, None, self.budget, None, self.provider.clone())
                        .await
                        .map_err(|e| net_failure("tcp connect", &e))
                }
                Dial::Tls(d) => tls::connect(addr, d, self.budget, self.provider.clone()).await,
                Dial::Https(d, path) => {
                    https::connect(addr, d, path, self.budget, self.provider.clone()).await
                }
                Dial::Broken(why) => return Err(Failure::Unusable(why.clone())),
            };
            match made {
                Ok(e) => return Ok((addr, e)),
                Err(f) => last = f,
            }
        }
        Err(last)
    }

    /// One query over a kept connection. TCP (and TLS and HTTPS over it) cannot be
    /// spoofed off-path: a reply that does not fit ends the exchange.
    async fn kept_exchange(
        &self,
        ex: &Exchange,
        t: &Target,
        label: &Arc<str>,
        q: &Query<'_>,
        query: &HQuery,
        cache: &CacheTtls,
    ) -> Result<Reply, Failure> {
        let (request, _) = self.request(q, query);
        let response = match ex.send(request).next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(net_failure(t.upstream.transport.scheme(), &e)),
            // hickory ends the stream without an item on its own timeout.
            None => return Err(Failure::Timeout(self.budget)),
        };
        // The multiplexer gives each query an id of its own and matches replies by it.
        let (_, bytes) = response.into_parts();
        match self.check(bytes, label, q, cache) {
            Verdict::Accept(r) => Ok(r),
            Verdict::Discard(why) => Err(Failure::Unusable(why)),
        }
    }
}

/// Whether an upstream's question is the one asked: the name in any letter case (the
/// upstream may normalise it), type and class exactly.
pub(crate) fn same_question(upstream: &[u8], asked: &[u8]) -> bool {
    let name = asked.len().saturating_sub(4);
    upstream.len() == asked.len()
        && upstream[..name].eq_ignore_ascii_case(&asked[..name])
        && upstream[name..] == asked[name..]
}

impl Reply {
    fn truncated(&self) -> bool {
        self.flags() & FLAG_TC != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_for_another_type_is_not_the_same_question() {
        // HTTPS (65 = 0x0041) and type 97 (0x0061) differ by an ASCII letter case bit.
        let asked = b"\x03www\x07example\x00\x00\x41\x00\x01";
        assert!(same_question(
            b"\x03WWW\x07Example\x00\x00\x41\x00\x01",
            asked
        ));
        assert!(!same_question(
            b"\x03www\x07example\x00\x00\x61\x00\x01",
            asked
        ));
        assert!(!same_question(
            b"\x03www\x07example\x00\x00\x41\x00\x03",
            asked
        ));
        assert!(!same_question(
            b"\x03www\x07exampl\x00\x00\x41\x00\x01",
            asked
        ));
    }

    #[test]
    fn resolv_conf_minus_ourselves() {
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver fe80::1\nsearch lan\n";
        let ours: Vec<SocketAddr> = vec!["127.0.0.53:53".parse().unwrap()];
        let ups = upstreams_from_resolv_conf(text, &ours);
        let labels: Vec<String> = ups.iter().map(ToString::to_string).collect();
        assert_eq!(labels, ["udp://192.0.2.1:53", "udp://[fe80::1]:53"]);
        let wildcard: Vec<SocketAddr> = vec!["0.0.0.0:53".parse().unwrap()];
        assert_eq!(nameservers_except(text, &wildcard, &[]).len(), 2);
        // On a wildcard address winsink is every address of the host, not only loopback.
        let local: Vec<IpAddr> = vec!["192.0.2.1".parse().unwrap()];
        let ups = nameservers_except(text, &wildcard, &local);
        assert_eq!(ups.len(), 1, "{ups:?}");
        assert_eq!(ups[0].to_string(), "udp://[fe80::1]:53");
        // On another port it is not.
        let other: Vec<SocketAddr> = vec!["0.0.0.0:5353".parse().unwrap()];
        assert_eq!(nameservers_except(text, &other, &local).len(), 3);
    }

    /// A link-local nameserver keeps its zone, by interface name or number, so that the
    /// kernel sends to it on that link; a zone naming no interface here is left out
    /// rather than sent on whichever link the kernel picks.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_scoped_resolv_conf_nameserver_keeps_its_scope() {
        let lo = nix::net::if_::if_nametoindex("lo").unwrap();
        let text = "nameserver fe80::1%lo\nnameserver fe80::2%7\nnameserver fe80::3%no-such-if0\n";
        let ups = nameservers_except(text, &[], &[]);
        let scopes: Vec<(String, u32)> = ups
            .iter()
            .map(|u| match u.addr() {
                Some(SocketAddr::V6(a)) => (a.ip().to_string(), a.scope_id()),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(
            scopes,
            [("fe80::1".to_owned(), lo), ("fe80::2".to_owned(), 7)]
        );
        assert_eq!(ups[0].to_string(), format!("udp://[fe80::1%{lo}]:53"));
    }

    #[test]
    fn this_hosts_interfaces_include_loopback() {
        let local = interface_addresses();
        if cfg!(target_os = "linux") {
            assert!(local.contains(&IpAddr::from([127, 0, 0, 1])), "{local:?}");
        }
    }
}
