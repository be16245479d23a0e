//! What happens to one query, whatever transport brought it.
//!
//! [`Engine::answer_now`] runs without waiting: refusals, errors, sinkhole answers and
//! cache hits are answered there, in the receiving task, with no allocation once the
//! task's scratch buffers have grown. Only a cache miss returns [`Now::Forward`]; the
//! caller then runs [`Engine::answer_forwarded`] in a task of its own.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use winsink_policy::{LogQueries, Policy, SinkholeMode, SinkholeSettings};

use crate::cache::{Cache, Flight, Inflight, Join};
use crate::forward::{ForwardError, Forwarder};
use crate::querylog::{Explain, Line, LogBuf, NoMatch, QueryLog};
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
    name: String,
    key: Vec<u8>,
    log: LogBuf,
    text: String,
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

/// What [`Engine::answer_now`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Now {
    /// The answer is in the output buffer.
    Answer,
    /// Nothing to send (not a query).
    Drop,
    /// Needs the upstream: call [`Engine::answer_forwarded`].
    Forward,
}

/// The shared state of the server.
pub(crate) struct Engine {
    pub(crate) policy: Arc<ArcSwap<Policy>>,
    pub(crate) cache: Cache,
    inflight: Inflight,
    pub(crate) forwarder: Forwarder,
    log: Arc<QueryLog>,
    payload: u16,
}

impl Engine {
    pub(crate) fn new(
        policy: Arc<ArcSwap<Policy>>,
        cache_size: usize,
        forwarder: Forwarder,
        log: Arc<QueryLog>,
        payload: u16,
    ) -> Self {
        Self {
            policy,
            cache: Cache::new(cache_size),
            inflight: Inflight::default(),
            forwarder,
            log,
            payload: payload.max(512),
        }
    }

    /// Whether `client` is in `allow_clients` of the policy in force.
    pub(crate) fn allows(&self, client: IpAddr) -> bool {
        allowed(&self.policy.load(), client.to_canonical())
    }

    fn limit(&self, q: &Query<'_>, tcp: bool) -> usize {
        if tcp {
            TCP_LIMIT
        } else {
            q.udp_limit(self.payload)
        }
    }

    /// Answers `packet` from `client` if that needs no upstream.
    pub(crate) fn answer_now(
        &self,
        packet: &[u8],
        client: SocketAddr,
        tcp: bool,
        when: Received,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Now {
        let Received { at: started, ts } = when;
        let q = match parse_query(packet) {
            Ok(q) => q,
            Err(r) => return self.reject(&r, client, tcp, started, ts, s, out),
        };
        let policy = self.policy.load();
        let ip = client.ip().to_canonical();
        s.name.clear();
        if name_to_text(q.packet, HEADER_LEN, &mut s.name).is_none() {
            // parse_query validated the name; this cannot happen, but never panic on input.
            return Now::Drop;
        }

        if !allowed(&policy, ip) {
            let mut a = Answer::new(out, &q, Rcode::Refused, 0);
            if let Some(e) = q.edns {
                a.opt(self.payload, e, Rcode::Refused, |_| {});
            }
            if policy.log().queries != LogQueries::None {
                self.log_line(
                    s, ts, started, ip, tcp, &q, "refuse", &NoMatch, 5, out, false, None, None,
                );
            }
            return Now::Answer;
        }

        let d = verdict::decide(&policy, ip, &s.name);
        if verdict::blocks(&d) {
            let outcome = Outcome {
                decision: d,
                chain_index: None,
            };
            let rcode = self.sinkhole(&q, tcp, &outcome, None, s, out);
            self.log_outcome(
                &policy, s, ts, started, ip, tcp, &q, &outcome, None, rcode, out, false, None,
            );
            return Now::Answer;
        }

        wire::cache_key(&q, &mut s.key);
        let Some((reply, elapsed)) = self.cache.get(&s.key, started) else {
            return Now::Forward;
        };
        let outcome = verdict::inspect_chain(&policy, ip, d, &reply.chain);
        let cname = outcome.chain_index.map(|i| &*reply.chain[i]);
        let rcode = if verdict::blocks(&outcome.decision) {
            self.sinkhole(&q, tcp, &outcome, cname, s, out)
        } else {
            reply.write(&q, elapsed, self.payload, self.limit(&q, tcp), out);
            reply.rcode()
        };
        self.log_outcome(
            &policy, s, ts, started, ip, tcp, &q, &outcome, cname, rcode, out, true, None,
        );
        Now::Answer
    }

    /// Answers `packet` through the upstreams (after [`Now::Forward`]); `false` when
    /// there is nothing to send.
    pub(crate) async fn answer_forwarded(
        &self,
        packet: &[u8],
        client: SocketAddr,
        tcp: bool,
        when: Received,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> bool {
        let Received { at: started, ts } = when;
        let Some((q, ip)) = reparse(packet, client, s) else {
            return false;
        };
        wire::cache_key(&q, &mut s.key);

        // Identical concurrent misses go upstream once.
        let flight: Flight = match self.inflight.join(&s.key) {
            Join::Leader(guard) => {
                let cache_settings = self.policy.load().cache().clone();
                let result = self
                    .forwarder
                    .forward(&q, &cache_settings)
                    .await
                    .map(Arc::new);
                if let Ok(reply) = &result {
                    if cache_settings.enabled {
                        self.cache.insert(&s.key, reply.clone(), Instant::now());
                    }
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
        let d = verdict::decide(&policy, ip, &s.name);
        match flight {
            Ok(reply) => {
                let outcome = if verdict::blocks(&d) {
                    Outcome {
                        decision: d,
                        chain_index: None,
                    }
                } else {
                    verdict::inspect_chain(&policy, ip, d, &reply.chain)
                };
                let cname = outcome.chain_index.map(|i| &*reply.chain[i]);
                let rcode = if verdict::blocks(&outcome.decision) {
                    self.sinkhole(&q, tcp, &outcome, cname, s, out)
                } else {
                    reply.write(&q, 0, self.payload, self.limit(&q, tcp), out);
                    reply.rcode()
                };
                self.log_outcome(
                    &policy,
                    s,
                    ts,
                    started,
                    ip,
                    tcp,
                    &q,
                    &outcome,
                    cname,
                    rcode,
                    out,
                    false,
                    Some(&reply.upstream),
                );
            }
            Err(e) => {
                self.servfail(&q, &e, s, out);
                let outcome = Outcome {
                    decision: d,
                    chain_index: None,
                };
                self.log_outcome(
                    &policy, s, ts, started, ip, tcp, &q, &outcome, None, 2, out, false, None,
                );
            }
        }
        self.flush_log(s);
        true
    }

    /// Answers SERVFAIL to a cache miss that cannot be forwarded because too many
    /// queries wait for upstreams already; `false` when there is nothing to send.
    pub(crate) fn answer_overloaded(
        &self,
        packet: &[u8],
        client: SocketAddr,
        tcp: bool,
        when: Received,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> bool {
        let Some((q, ip)) = reparse(packet, client, s) else {
            return false;
        };
        let policy = self.policy.load();
        let outcome = Outcome {
            decision: verdict::decide(&policy, ip, &s.name),
            chain_index: None,
        };
        self.servfail(&q, &ForwardError::Overloaded, s, out);
        self.log_outcome(
            &policy, s, when.ts, when.at, ip, tcp, &q, &outcome, None, 2, out, false, None,
        );
        true
    }

    /// Queues the log lines of the queries answered with `s` since the last flush.
    pub(crate) fn flush_log(&self, s: &mut Scratch) {
        self.log.flush(&mut s.log);
    }

    #[allow(clippy::too_many_arguments)]
    fn reject(
        &self,
        r: &Reject<'_>,
        client: SocketAddr,
        tcp: bool,
        started: Instant,
        ts: SystemTime,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> Now {
        let rcode = match r.kind {
            RejectKind::NoHeader | RejectKind::Response => return Now::Drop,
            RejectKind::FormErr => Rcode::FormErr,
            RejectKind::NotImp => Rcode::NotImp,
            RejectKind::BadVers => Rcode::BadVers,
        };
        let mut a = Answer::for_reject(out, r, rcode);
        if let Some(e) = r.edns {
            a.opt(self.payload, e, rcode, |_| {});
        }
        let policy = self.policy.load();
        if policy.log().queries == LogQueries::All {
            s.name.clear();
            if r.question_end.is_some() {
                let _ = name_to_text(r.packet, HEADER_LEN, &mut s.name);
            }
            let full_rcode = rcode.code();
            let line = Line {
                ts,
                client: client.ip(),
                tcp,
                qname: &s.name,
                qtype: r.qtype,
                decision: "invalid",
                why: &NoMatch,
                rcode: full_rcode,
                answers: 0,
                cached: false,
                upstream: None,
                started,
                cname: None,
            };
            self.log.push(&line, &mut s.log);
        }
        Now::Answer
    }

    /// Writes the sinkhole answer for `q`.
    #[allow(clippy::too_many_arguments)]
    fn sinkhole(
        &self,
        q: &Query<'_>,
        tcp: bool,
        outcome: &Outcome<'_>,
        cname: Option<&str>,
        s: &mut Scratch,
        out: &mut Vec<u8>,
    ) -> u16 {
        let settings: &SinkholeSettings = outcome.decision.sinkhole;
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
            s.text.clear();
            verdict::block_text(&outcome.decision, cname, &mut s.text);
            // Keep the answer within the client's limit: the EDE text gives way.
            let room = self.limit(q, tcp).saturating_sub(a.len() + 11 + 6);
            let text = &s.text;
            a.opt(self.payload, e, rcode, |o| {
                write_ede(o, EDE_BLOCKED, text, room)
            });
        }
        rcode.code()
    }

    fn servfail(&self, q: &Query<'_>, e: &ForwardError, s: &mut Scratch, out: &mut Vec<u8>) {
        let mut a = Answer::new(out, q, Rcode::ServFail, 0);
        if let Some(edns) = q.edns {
            s.text.clear();
            use std::fmt::Write as _;
            let _ = write!(s.text, "winsink: {e}");
            let text = &s.text;
            a.opt(self.payload, edns, Rcode::ServFail, |o| {
                write_ede(o, EDE_NO_REACHABLE_AUTHORITY, text, usize::MAX)
            });
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn log_outcome(
        &self,
        policy: &Policy,
        s: &mut Scratch,
        ts: SystemTime,
        started: Instant,
        ip: IpAddr,
        tcp: bool,
        q: &Query<'_>,
        outcome: &Outcome<'_>,
        cname: Option<&str>,
        rcode: u16,
        out: &[u8],
        cached: bool,
        upstream: Option<&str>,
    ) {
        let mode = policy.log().queries;
        let matched = verdict::is_matched(&outcome.decision);
        if mode == LogQueries::None || (mode == LogQueries::Matched && !matched) {
            return;
        }
        let why = Why(&outcome.decision);
        self.log_line(
            s,
            ts,
            started,
            ip,
            tcp,
            q,
            verdict::word(&outcome.decision),
            &why,
            rcode,
            out,
            cached,
            upstream,
            cname,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn log_line(
        &self,
        s: &mut Scratch,
        ts: SystemTime,
        started: Instant,
        ip: IpAddr,
        tcp: bool,
        q: &Query<'_>,
        decision: &'static str,
        why: &dyn Explain,
        rcode: u16,
        out: &[u8],
        cached: bool,
        upstream: Option<&str>,
        cname: Option<&str>,
    ) {
        let line = Line {
            ts,
            client: ip,
            tcp,
            qname: &s.name,
            qtype: Some(q.qtype),
            decision,
            why,
            rcode,
            answers: wire::answer_count(out),
            cached,
            upstream,
            started,
            cname,
        };
        self.log.push(&line, &mut s.log);
    }
}

/// Whether `ip` (canonical: an IPv4-mapped address as IPv4) may query.
fn allowed(policy: &Policy, ip: IpAddr) -> bool {
    policy
        .server()
        .allow_clients
        .iter()
        .any(|n| n.contains(&ip))
}

/// Parses again a packet that [`Engine::answer_now`] handed on: the query, the client's
/// address as policies see it, and the name as text in `s.name`. `None` cannot happen
/// for such a packet, but input never gets to panic.
fn reparse<'p>(
    packet: &'p [u8],
    client: SocketAddr,
    s: &mut Scratch,
) -> Option<(Query<'p>, IpAddr)> {
    let q = parse_query(packet).ok()?;
    s.name.clear();
    name_to_text(q.packet, HEADER_LEN, &mut s.name)?;
    Some((q, client.ip().to_canonical()))
}
