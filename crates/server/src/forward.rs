//! The transparent forwarder: asks the upstreams, in turn, within a total time budget.
//!
//! UDP upstreams are asked by winsink's own exchange ([`udp`]): a fresh connected socket
//! per send, replies with another id or question and malformed ones discarded (counted,
//! logged at most once a minute per upstream) while it keeps waiting for a good one, and
//! an ICMP port unreachable ending the attempt at once. TCP upstreams, and answers that
//! came truncated over UDP, go through hickory-net's [`DnsExchange`] over one kept
//! connection per upstream, which returns the upstream's message intact
//! (hickory-resolver's `lookup` would rewrite CNAME chains); winsink checks the question
//! of every reply once more.
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
use winsink_policy::{CacheTtls, Transport, Upstream};

mod health;
mod udp;

use health::Failure;
pub use health::{UpstreamHealth, UpstreamState, UpstreamStatus};
use udp::Verdict;

use crate::metrics::{UpstreamCounters, UpstreamOutcome};
use crate::reply::Reply;
use crate::wire::{Query, FLAG_TC};

/// The nameservers of a `resolv.conf` text, minus those that are winsink itself (one of
/// `own` on port 53, or, when winsink listens on a wildcard address on port 53, any
/// loopback address or address of this host's interfaces).
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
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            (words.next() == Some("nameserver"))
                .then(|| words.next())
                .flatten()
        })
        .filter_map(|w| w.split('%').next()?.parse::<IpAddr>().ok())
        .filter(|ip| {
            !own.iter().any(|l| {
                l.port() == 53
                    && (l.ip() == *ip
                        || (l.ip().is_unspecified()
                            && (ip.is_loopback() || ip.is_unspecified() || local.contains(ip))))
            })
        })
        .map(|ip| Upstream {
            transport: Transport::Udp,
            addr: SocketAddr::new(ip, 53),
        })
        .collect()
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

/// The kept TCP connection and how many were opened before it, so that a query whose
/// exchange failed closes only the connection it used, not a newer one.
#[derive(Default)]
struct TcpSlot {
    opened: u64,
    exchange: Option<Exchange>,
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
    /// A TCP connection, opened on first use and again after it fails, shared by every
    /// query (the exchange multiplexes them). The lock is held only to look it up or
    /// open it, never for a query's round trip. UDP upstreams use it for answers that
    /// came truncated.
    tcp: tokio::sync::Mutex<TcpSlot>,
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
    /// Sets up exchanges for `upstreams`. Must run inside a Tokio runtime.
    pub(crate) fn new(upstreams: &[Upstream], budget: Duration, payload: u16) -> Self {
        let targets = upstreams
            .iter()
            .map(|&upstream| Target {
                upstream,
                tcp: tokio::sync::Mutex::new(TcpSlot::default()),
            })
            .collect();
        Self {
            targets,
            health: UpstreamHealth::new(upstreams),
            budget,
            preferred: AtomicUsize::new(0),
            payload,
            provider: TokioRuntimeProvider::new(),
            counters: std::sync::OnceLock::new(),
        }
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
            let reply = udp::exchange(
                t.upstream.addr,
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
        for attempt in 0..2 {
            let (opened, exchange) = {
                let mut slot = t.tcp.lock().await;
                match &slot.exchange {
                    Some(e) => (slot.opened, e.clone()),
                    None => {
                        let e = TcpClientStream::exchange(
                            t.upstream.addr,
                            None,
                            self.budget,
                            None,
                            self.provider.clone(),
                        )
                        .await
                        .map_err(|e| net_failure("tcp connect", &e))?;
                        slot.opened += 1;
                        slot.exchange = Some(e.clone());
                        (slot.opened, e)
                    }
                }
            };
            match self.tcp_exchange(&exchange, label, q, query, cache).await {
                Ok(r) => return Ok(r),
                Err(e) => {
                    let mut slot = t.tcp.lock().await;
                    if slot.opened == opened {
                        slot.exchange = None;
                    }
                    if attempt == 1 {
                        return Err(e);
                    }
                    debug!(upstream = %label, error = %e, "tcp exchange failed, reconnecting");
                }
            }
        }
        Err(Failure::Network("tcp exchange failed".into()))
    }

    /// One query over a kept TCP connection. TCP cannot be spoofed off-path: a reply that
    /// does not fit ends the exchange.
    async fn tcp_exchange(
        &self,
        ex: &Exchange,
        label: &Arc<str>,
        q: &Query<'_>,
        query: &HQuery,
        cache: &CacheTtls,
    ) -> Result<Reply, Failure> {
        let (request, _) = self.request(q, query);
        let response = match ex.send(request).next().await {
            Some(Ok(r)) => r,
            Some(Err(e)) => return Err(net_failure("tcp", &e)),
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
        let text = "# comment\nnameserver 127.0.0.53\nnameserver 192.0.2.1\nnameserver fe80::1%eth0\nsearch lan\n";
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

    #[test]
    fn this_hosts_interfaces_include_loopback() {
        let local = interface_addresses();
        if cfg!(target_os = "linux") {
            assert!(local.contains(&IpAddr::from([127, 0, 0, 1])), "{local:?}");
        }
    }
}
