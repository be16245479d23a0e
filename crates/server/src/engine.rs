//! What happens to one query, whatever transport brought it.
//!
//! A loop hands each packet over as a [`Request`]. [`Engine::answer_now`] runs without
//! waiting: refusals, errors, sinkhole answers and cache hits are answered there, in the
//! receiving task, with no allocation once the task's [`Scratch`] buffers have grown.
//! Only a cache miss returns [`Handled::Forward`]; the caller then runs
//! [`Engine::answer_forwarded`] in a task of its own (or [`Engine::answer_overloaded`]
//! when too many wait already).
//!
//! Every answered query ends in [`Engine::finish`], with the query's [`Cx`] and what was
//! [`Done`]: the one place that formats the query-log line (queued by
//! [`Engine::flush_log`] once the answer is sent) and that a per-query counter belongs in.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use winsink_policy::{Decision, LogQueries, Policy, SinkholeMode, UdpPayload, Verdict};

use tracing::warn;

use crate::cache::{Cache, Flight, Inflight, Join};
use crate::forward::{ForwardError, Forwarder};
use crate::limit::{Limits, RateLimit, RateLimitAction};
use crate::metrics::{Decided, Metrics, Path, Record};
use crate::querylog::{Explain, Line, LogBuf, NoMatch, QueryLog};
use crate::reply::Reply;
use crate::verdict::{self, Outcome, Why};
use crate::wire::{
    self, name_to_text, parse_query, write_ede, Answer, Query, Rcode, Reject, RejectKind,
    EDE_BLOCKED, EDE_NO_REACHABLE_AUTHORITY, FLAG_AA, HEADER_LEN, TYPE_A, TYPE_AAAA,
};

/// Largest DNS message over TCP.
pub(crate) const TCP_LIMIT: usize = 65_535;

/// Buffers a receiving task reuses for every query.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// The question's name as text (lowercase, no trailing dot).
    name: String,
    key: Vec<u8>,
    log: LogBuf,
    text: String,
}

/// The transport a query came over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// A UDP datagram.
    Udp,
    /// A message on a TCP connection.
    Tcp,
    /// A message on a DNS-over-TLS connection (RFC 7858).
    Tls,
    /// A DNS-over-HTTPS request (RFC 8484), HTTP/2 or HTTP/1.1.
    Https,
}

impl Proto {
    /// `"udp"`, `"tcp"`, `"tls"` or `"https"`, as the query log writes it.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Udp => "udp",
            Self::Tcp => "tcp",
            Self::Tls => "tls",
            Self::Https => "https",
        }
    }

    /// A number below 4, for packed records (the recent-queries ring).
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The inverse of [`index`](Self::index) (taken modulo 4).
    pub(crate) fn from_index(i: usize) -> Self {
        match i & 3 {
            0 => Self::Udp,
            1 => Self::Tcp,
            2 => Self::Tls,
            _ => Self::Https,
        }
    }

    /// Whether the transport carries whole messages of up to 65,535 bytes (every one
    /// but UDP, whose answers are bounded by the client's payload size).
    pub(crate) fn is_stream(self) -> bool {
        self != Self::Udp
    }
}

/// When a query arrived: the clock readings behind the log's `ts` and `duration_us`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received {
    pub(crate) at: Instant,
    pub(crate) ts: SystemTime,
}

impl Received {
    pub(crate) fn now() -> Self {
        Self {
            at: Instant::now(),
            ts: SystemTime::now(),
        }
    }
}

/// One packet as a loop received it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Request<'p> {
    pub(crate) packet: &'p [u8],
    pub(crate) client: SocketAddr,
    pub(crate) proto: Proto,
    pub(crate) received: Received,
}

/// What the engine did with a request without waiting for an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// The answer is in the output buffer.
    Answer,
    /// Nothing is sent back (no header, or a response rather than a query).
    Drop,
    /// Not cached and not blocked: needs the upstream (`Engine::answer_forwarded`).
    Forward,
}

/// One query on its way through the engine: the request, the client as policies see it,
/// the policy in force, the question's type (its name is `s.name`), and the task's
/// scratch buffers. The log line borrows from it.
pub(crate) struct Cx<'a, 'p> {
    pub(crate) req: Request<'p>,
    /// The client's address, an IPv4-mapped one as IPv4.
    pub(crate) ip: IpAddr,
    pub(crate) policy: &'a Policy,
    /// `None` for a packet rejected before its question could be read.
    pub(crate) qtype: Option<u16>,
    pub(crate) s: &'a mut Scratch,
}

/// Why a query got the answer it got.
#[derive(Clone, Copy)]
pub(crate) enum Kind<'o, 'p> {
    /// Malformed, or something winsink does not implement: FORMERR, NOTIMP or BADVERS.
    Invalid,
    /// The client is outside `allow_clients`.
    Refused,
    /// The policy decided.
    Decided(&'o Outcome<'p>),
}

/// Where the answer's records came from.
#[derive(Clone, Copy)]
pub(crate) enum Source<'o> {
    /// Written by winsink: a refusal, an error or a sinkhole answer to a name blocked
    /// before any lookup.
    Local,
    /// The cache.
    Cache,
    /// This upstream, asked for this query.
    Upstream(&'o str),
}

/// How a query ended, for [`Engine::finish`].
#[derive(Clone, Copy)]
pub(crate) struct Done<'o, 'p> {
    pub(crate) kind: Kind<'o, 'p>,
    /// The full 12-bit RCODE sent.
    pub(crate) rcode: u16,
    pub(crate) source: Source<'o>,
    /// The name of the CNAME chain that decided, when not the question.
    pub(crate) cname: Option<&'o str>,
}

/// The shared state of the server.
pub(crate) struct Engine {
    pub(crate) policy: Arc<ArcSwap<Policy>>,
    pub(crate) cache: Cache,
    inflight: Inflight,
    pub(crate) forwarder: Forwarder,
    log: Arc<QueryLog>,
    payload: u16,
    /// The rate limit and the malformed-packet log budget.
    limits: Limits,
    /// Where queries are counted, when metrics are on.
    pub(crate) metrics: Option<Arc<Metrics>>,
    /// The TCP connections, once the server runs (for `/metrics`).
    pub(crate) tcp: std::sync::OnceLock<Arc<crate::tcp::Connections>>,
}

/// An answer to replay: a cached or just forwarded upstream reply.
#[derive(Clone, Copy)]
struct Replay<'r> {
    reply: &'r Reply,
    /// Seconds since it was stored, taken off its TTLs.
    elapsed: u32,
    source: Source<'r>,
}

impl<'a, 'p> Cx<'a, 'p> {
    /// The context of a parsed query whose name [`read_name`] put in `s.name`.
    fn new(req: Request<'p>, q: &Query<'p>, policy: &'a Policy, s: &'a mut Scratch) -> Self {
        Self {
            req,
            ip: req.client.ip().to_canonical(),
            policy,
            qtype: Some(q.qtype),
            s,
        }
    }
}

/// Puts the question's name as text in `s.name`. `false` cannot happen for a parsed
/// query (the parser validated the name), but input never gets to panic.
fn read_name(q: &Query<'_>, s: &mut Scratch) -> bool {
    s.name.clear();
    name_to_text(q.packet, HEADER_LEN, &mut s.name).is_some()
}

impl Engine {
    pub(crate) fn new(
        policy: Arc<ArcSwap<Policy>>,
        cache_size: usize,
        forwarder: Forwarder,
        log: Arc<QueryLog>,
        payload: UdpPayload,
        limits: Limits,
    ) -> Self {
        Self {
            policy,
            cache: Cache::new(cache_size),
            inflight: Inflight::default(),
            forwarder,
            log,
            payload: payload.get(),
            limits,
            metrics: None,
            tcp: std::sync::OnceLock::new(),
        }
    }

    /// Query-log lines dropped since the start.
    pub(crate) fn log_dropped(&self) -> u64 {
        self.log.dropped()
    }

    /// Whether `client` is in `allow_clients` of the policy in force.
    pub(crate) fn allows(&self, client: IpAddr) -> bool {
        allowed(&self.policy.load(), client.to_canonical())
    }

    /// The largest answer the client takes.
    fn limit(&self, q: &Query<'_>, proto: Proto) -> usize {
        if proto.is_stream() {
            TCP_LIMIT
        } else {
            q.udp_limit(self.payload)
        }
    }

    /// Answers `req` if that needs no upstream.
    pub(crate) fn answer_now(
        &self,
        req: Request<'_>,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Handled {
        let q = match parse_query(req.packet) {
            Ok(q) => q,
            Err(r) => return self.reject(req, &r, s, out),
        };
        if !read_name(&q, s) {
            return Handled::Drop;
        }
        if let Some(rate) = &self.limits.rate {
            if !rate.budget.take(req.client.ip(), req.received.at) {
                return self.over_rate(rate, req, &q, out);
            }
        }
        let policy = self.policy.load();
        let mut cx = Cx::new(req, &q, &policy, s);

        if !allowed(cx.policy, cx.ip) {
            let mut a = Answer::new(out, &q, Rcode::Refused, 0);
            if let Some(e) = q.edns {
                a.opt(self.payload, e, Rcode::Refused, |_| {});
            }
            let done = Done {
                kind: Kind::Refused,
                rcode: Rcode::Refused.code(),
                source: Source::Local,
                cname: None,
            };
            self.finish(&mut cx, done, out);
            return Handled::Answer;
        }

        let d = cx.policy.decide(cx.ip, &cx.s.name);
        if d.verdict == Verdict::Block {
            self.sinkhole_or_replay(&mut cx, &q, &Outcome::of(d), None, out);
            return Handled::Answer;
        }

        wire::cache_key(&q, &mut cx.s.key);
        let Some((reply, elapsed)) = self.cache.get(&cx.s.key, req.received.at) else {
            return Handled::Forward;
        };
        let outcome = verdict::inspect_chain(cx.policy, cx.ip, d, &reply.chain);
        let replay = Replay {
            reply: &reply,
            elapsed,
            source: Source::Cache,
        };
        self.sinkhole_or_replay(&mut cx, &q, &outcome, Some(replay), out);
        Handled::Answer
    }

    /// Answers `req` through the upstreams (after [`Handled::Forward`]); `false` when
    /// there is nothing to send.
    pub(crate) async fn answer_forwarded(
        &self,
        req: Request<'_>,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(q) = parse_query(req.packet) else {
            return false;
        };
        if !read_name(&q, s) {
            return false;
        }
        wire::cache_key(&q, &mut s.key);

        // Identical concurrent misses go upstream once.
        let flight: Flight = match self.inflight.join(&s.key) {
            Join::Leader(guard) => {
                let cache_ttls = self.policy.load().cache().clone();
                let result = self.forwarder.forward(&q, &cache_ttls).await.map(Arc::new);
                if let Ok(reply) = &result {
                    // A cache turned off at start has no room: this stores nothing.
                    self.cache.insert(&s.key, reply.clone(), Instant::now());
                }
                guard.complete(&result);
                result
            }
            Join::Follower(rx) => rx.await.unwrap_or(Err(ForwardError::Exhausted(
                self.forwarder.budget().as_millis() as u64,
            ))),
        };

        // Decide with the policy in force now: it may have been swapped while waiting.
        let policy = self.policy.load_full();
        let mut cx = Cx::new(req, &q, &policy, s);
        let d = policy.decide(cx.ip, &cx.s.name);
        match &flight {
            Ok(reply) => {
                let outcome = if d.verdict == Verdict::Block {
                    Outcome::of(d)
                } else {
                    verdict::inspect_chain(&policy, cx.ip, d, &reply.chain)
                };
                let replay = Replay {
                    reply,
                    elapsed: 0,
                    source: Source::Upstream(&reply.upstream),
                };
                self.sinkhole_or_replay(&mut cx, &q, &outcome, Some(replay), out);
            }
            Err(e) => self.servfail(&mut cx, &q, d, e, out),
        }
        self.flush_log(s);
        true
    }

    /// Answers SERVFAIL to a cache miss that cannot be forwarded because too many
    /// queries wait for upstreams already; `false` when there is nothing to send.
    pub(crate) fn answer_overloaded(
        &self,
        req: Request<'_>,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> bool {
        let Ok(q) = parse_query(req.packet) else {
            return false;
        };
        if !read_name(&q, s) {
            return false;
        }
        let policy = self.policy.load();
        let mut cx = Cx::new(req, &q, &policy, s);
        let d = policy.decide(cx.ip, &cx.s.name);
        if let Some(m) = &self.metrics {
            m.ratelimited();
        }
        self.servfail(&mut cx, &q, d, &ForwardError::Overloaded, out);
        true
    }

    /// Queues the log lines of the queries answered with `s` since the last flush.
    pub(crate) fn flush_log(&self, s: &mut Scratch) {
        self.log.flush(&mut s.log);
    }

    /// Answers a query over the rate limit as its action says; no query-log line.
    fn over_rate(
        &self,
        rate: &RateLimit,
        req: Request<'_>,
        q: &Query<'_>,
        out: &mut Vec<u8>,
    ) -> Handled {
        if let Some(m) = &self.metrics {
            m.ratelimited();
        }
        rate.budget.tell(req.received.at, |n, last| {
            warn!(
                "rate limit: {n} queries over {} a second from one client answered {} (the last from {last}) since the last such report",
                rate.budget.per_second(),
                match rate.action {
                    RateLimitAction::Refuse => "REFUSED",
                    RateLimitAction::Slip => "with TC=1",
                    RateLimitAction::Drop => "with nothing",
                }
            );
        });
        let (rcode, flags) = match (rate.action, req.proto) {
            (RateLimitAction::Drop, _) => return Handled::Drop,
            (RateLimitAction::Slip, Proto::Udp) => (Rcode::NoError, wire::FLAG_TC),
            _ => (Rcode::Refused, 0),
        };
        let mut a = Answer::new(out, q, rcode, flags);
        if let Some(e) = q.edns {
            a.opt(self.payload, e, rcode, |_| {});
        }
        Handled::Answer
    }

    /// Answers a packet that is not a well-formed query: FORMERR, NOTIMP or BADVERS, or
    /// nothing.
    fn reject(
        &self,
        req: Request<'_>,
        r: &Reject<'_>,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Handled {
        let rcode = match r.kind {
            RejectKind::NoHeader | RejectKind::Response => return Handled::Drop,
            RejectKind::FormErr => Rcode::FormErr,
            RejectKind::NotImp => Rcode::NotImp,
            RejectKind::BadVers => Rcode::BadVers,
        };
        let policy = self.policy.load();
        let ip = req.client.ip().to_canonical();
        // Garbage from outside allow_clients gets nothing back, and leaves no line:
        // anyone could otherwise fill the log (and aim answers at a spoofed address).
        if !allowed(&policy, ip) {
            return Handled::Drop;
        }
        let mut a = Answer::for_reject(out, r, rcode);
        if let Some(e) = r.edns {
            a.opt(self.payload, e, rcode, |_| {});
        }
        // From an allowed client, a line each, up to a budget per second.
        let lines = &self.limits.malformed_lines;
        if !lines.take(ip, req.received.at) {
            lines.tell(req.received.at, |n, last| {
                warn!(
                    "{n} malformed packets from allowed clients got their error answer without a query-log line (more than {} a second from one client; the last: {last}) since the last such report",
                    lines.per_second()
                );
            });
            return Handled::Answer;
        }
        s.name.clear();
        if r.question_end.is_some() {
            let _ = name_to_text(r.packet, HEADER_LEN, &mut s.name);
        }
        let mut cx = Cx {
            req,
            ip,
            policy: &policy,
            qtype: r.qtype,
            s,
        };
        let done = Done {
            kind: Kind::Invalid,
            rcode: rcode.code(),
            source: Source::Local,
            cname: None,
        };
        self.finish(&mut cx, done, out);
        Handled::Answer
    }

    /// Writes the answer `outcome` calls for, the sinkhole answer or `replay`'s reply,
    /// and finishes the query.
    fn sinkhole_or_replay(
        &self,
        cx: &mut Cx<'_, '_>,
        q: &Query<'_>,
        outcome: &Outcome<'_>,
        replay: Option<Replay<'_>>,
        out: &mut Vec<u8>,
    ) {
        let cname = match (outcome.chain_index, replay) {
            (Some(i), Some(r)) => r.reply.chain.get(i).map(|c| &**c),
            _ => None,
        };
        let (rcode, source) = match replay {
            Some(r) if !outcome.blocks() => {
                let limit = self.limit(q, cx.req.proto);
                r.reply.write(q, r.elapsed, self.payload, limit, out);
                (r.reply.rcode(), r.source)
            }
            Some(r) => (self.sinkhole(cx, q, outcome, cname, out), r.source),
            None => (self.sinkhole(cx, q, outcome, cname, out), Source::Local),
        };
        let done = Done {
            kind: Kind::Decided(outcome),
            rcode,
            source,
            cname,
        };
        self.finish(cx, done, out);
    }

    /// Writes the sinkhole answer for `q`; returns its RCODE.
    fn sinkhole(
        &self,
        cx: &mut Cx<'_, '_>,
        q: &Query<'_>,
        outcome: &Outcome<'_>,
        cname: Option<&str>,
        out: &mut Vec<u8>,
    ) -> u16 {
        let settings = outcome.decision.sinkhole;
        let ttl = settings.ttl;
        let is_in = q.qclass == wire::CLASS_IN;
        let rcode = match settings.mode {
            SinkholeMode::Nxdomain => Rcode::NxDomain,
            SinkholeMode::Refused => Rcode::Refused,
            _ => Rcode::NoError,
        };
        let mut a = Answer::new(
            out,
            q,
            rcode,
            if rcode == Rcode::Refused { 0 } else { FLAG_AA },
        );
        match settings.mode {
            SinkholeMode::Refused => {}
            SinkholeMode::Nxdomain | SinkholeMode::Nodata => a.sinkhole_soa(ttl),
            SinkholeMode::NullIp | SinkholeMode::Custom => {
                let (v4, v6) = if settings.mode == SinkholeMode::NullIp {
                    (
                        Some(std::net::Ipv4Addr::UNSPECIFIED),
                        Some(std::net::Ipv6Addr::UNSPECIFIED),
                    )
                } else {
                    (settings.ipv4, settings.ipv6)
                };
                match (q.qtype, v4, v6) {
                    (TYPE_A, Some(v4), _) if is_in => a.a(ttl, v4),
                    (TYPE_AAAA, _, Some(v6)) if is_in => a.aaaa(ttl, v6),
                    _ => a.sinkhole_soa(ttl),
                }
            }
        }
        if let Some(e) = q.edns {
            let text = &mut cx.s.text;
            text.clear();
            verdict::block_text(&outcome.decision, cname, text);
            // Keep the answer within the client's limit: the EDE text gives way.
            let room = self.limit(q, cx.req.proto).saturating_sub(a.len() + 11 + 6);
            a.opt(self.payload, e, rcode, |o| {
                write_ede(o, EDE_BLOCKED, text, room)
            });
        }
        rcode.code()
    }

    /// Answers SERVFAIL for `e` and finishes the query, logged with decision `d`.
    fn servfail(
        &self,
        cx: &mut Cx<'_, '_>,
        q: &Query<'_>,
        d: Decision<'_>,
        e: &ForwardError,
        out: &mut Vec<u8>,
    ) {
        let mut a = Answer::new(out, q, Rcode::ServFail, 0);
        if let Some(edns) = q.edns {
            let text = &mut cx.s.text;
            text.clear();
            use std::fmt::Write as _;
            let _ = write!(text, "winsink: {e}");
            a.opt(self.payload, edns, Rcode::ServFail, |o| {
                write_ede(o, EDE_NO_REACHABLE_AUTHORITY, text, usize::MAX)
            });
        }
        let outcome = Outcome::of(d);
        let done = Done {
            kind: Kind::Decided(&outcome),
            rcode: Rcode::ServFail.code(),
            source: Source::Local,
            cname: None,
        };
        self.finish(cx, done, out);
    }

    /// Finishes a query whose answer is in `out`: every answered query passes here once,
    /// just before its answer is sent. Formats the query-log line when `log.queries`
    /// wants one ([`flush_log`](Self::flush_log) queues it), and counts it in the
    /// metrics when they are on.
    pub(crate) fn finish(&self, cx: &mut Cx<'_, '_>, done: Done<'_, '_>, out: &[u8]) {
        let mode = cx.policy.log_queries();
        let logged = match done.kind {
            Kind::Invalid => mode == LogQueries::All,
            Kind::Refused => mode != LogQueries::None,
            Kind::Decided(o) => {
                !(mode == LogQueries::None
                    || (mode == LogQueries::Matched && !o.decision.is_matched()))
            }
        };
        if !logged && self.metrics.is_none() {
            return;
        }
        // One clock read for the log line and the metrics.
        let took_us = cx.req.received.at.elapsed().as_micros() as u64;
        if let Some(m) = &self.metrics {
            self.count(m, cx, done, out, took_us);
        }
        if !logged {
            return;
        }
        let why_decided;
        let (decision, why): (&'static str, &dyn Explain) = match done.kind {
            Kind::Invalid => ("invalid", &NoMatch),
            Kind::Refused => ("refuse", &NoMatch),
            Kind::Decided(o) => {
                why_decided = Why {
                    decision: &o.decision,
                    cname: done.cname,
                };
                (o.decision.verdict.as_str(), &why_decided)
            }
        };
        let s = &mut *cx.s;
        let line = Line {
            ts: cx.req.received.ts,
            client: cx.ip,
            proto: cx.req.proto,
            qname: &s.name,
            qtype: cx.qtype,
            decision,
            why,
            rcode: done.rcode,
            answers: wire::answer_count(out),
            cached: matches!(done.source, Source::Cache),
            upstream: match done.source {
                Source::Upstream(u) => Some(u),
                Source::Local | Source::Cache => None,
            },
            took_us,
            cname: done.cname,
        };
        self.log.push(&line, &mut s.log);
    }
}

impl Engine {
    /// Counts a finished query: its decision, what decided it, how it was answered.
    fn count(&self, m: &Metrics, cx: &Cx<'_, '_>, done: Done<'_, '_>, out: &[u8], took_us: u64) {
        let (decided, decision, path) = match done.kind {
            Kind::Invalid => (Decided::Invalid, None, Path::Refused),
            Kind::Refused => (Decided::Refuse, None, Path::Refused),
            Kind::Decided(o) => {
                let decided = match o.decision.verdict {
                    Verdict::Block => Decided::Block,
                    Verdict::Log => Decided::Log,
                    Verdict::Allow => Decided::Allow,
                    Verdict::Pass => Decided::Pass,
                };
                let path = match done.source {
                    _ if o.blocks() => Path::Sinkhole,
                    Source::Cache => Path::Cache,
                    Source::Upstream(_) | Source::Local => Path::Forward,
                };
                (decided, Some(&o.decision), path)
            }
        };
        m.record(&Record {
            ts: cx.req.received.ts,
            took_us,
            client: cx.ip,
            proto: cx.req.proto,
            qname: &cx.s.name,
            qtype: cx.qtype,
            decided,
            decision,
            cname: done.cname,
            rcode: done.rcode,
            answers: wire::answer_count(out),
            path,
            cached: matches!(done.source, Source::Cache),
            upstream: match done.source {
                Source::Upstream(u) => self.forwarder.index_of(u),
                Source::Local | Source::Cache => None,
            },
        });
    }
}

/// Whether `ip` (canonical: an IPv4-mapped address as IPv4) may query.
fn allowed(policy: &Policy, ip: IpAddr) -> bool {
    policy.allow_clients().iter().any(|n| n.contains(&ip))
}
