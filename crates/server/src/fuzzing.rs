//! Entry points for the fuzz targets in `fuzz/` and for tests and benches that need the
//! query path without sockets; hidden from the docs and not a stable API.
//!
//! [`Harness::answer`] is the query path of the UDP and TCP loops (`Engine::answer_now`):
//! parse the request, refuse clients outside `allow_clients`, decide, write the sinkhole
//! or error answer, or replay a cached upstream answer, and format the query-log line.
//! [`Harness::cache_upstream`] takes an upstream's answer apart and stores it as the
//! forwarder does, so that raw upstream bytes reach the replay path too. Nothing here
//! opens a socket: a harness has no upstreams, and a cache miss is only reported.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, UNIX_EPOCH};

use arc_swap::ArcSwap;
use winsink_policy::{Policy, Startup};

use crate::cache::Cache;
use crate::engine::{Engine, Received, Request, Scratch};
use crate::forward::{same_question, Forwarder};
use crate::querylog::{Explain, Line};
use crate::reply::Reply;
use crate::wire::{cache_key, name_to_text, parse_query, HEADER_LEN};
use crate::{LogFormat, LogTarget, QueryLog, ServerError};

pub use crate::engine::{Handled, Proto};

/// One engine with its scratch buffers, serving requests without sockets.
pub struct Harness {
    engine: Engine,
    scratch: Scratch,
    log: Arc<QueryLog>,
    key: Vec<u8>,
    cache_size: usize,
}

impl std::fmt::Debug for Harness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Harness").finish_non_exhaustive()
    }
}

impl Harness {
    /// An engine for `policy`, with `startup`'s payload and cache size (at least one
    /// entry, so that the cache is exercised), whose query log writes `format` lines to
    /// `/dev/null`.
    pub fn new(policy: Policy, startup: &Startup, format: LogFormat) -> Result<Self, ServerError> {
        let log = Arc::new(QueryLog::start(
            &LogTarget::File(PathBuf::from("/dev/null")),
            format,
            NonZeroUsize::MIN.saturating_add(4095), // 4096 lines
        )?);
        let payload = startup.udp_payload;
        let cache_size = startup.cache_size.max(1);
        // No upstreams: the forwarder spawns nothing and is never asked.
        let forwarder = Forwarder::new(&[], &[], Duration::from_secs(1), payload.get());
        let engine = Engine::new(
            Arc::new(ArcSwap::from_pointee(policy)),
            cache_size,
            forwarder,
            log.clone(),
            payload,
            crate::limit::Limits::new(
                startup.ratelimit.qps,
                startup.ratelimit.ipv6_prefix,
                startup.ratelimit.action,
            ),
        );
        Ok(Self {
            engine,
            scratch: Scratch::default(),
            log,
            key: Vec::new(),
            cache_size,
        })
    }

    /// Empties the cache, so that each fuzz input starts from the same state.
    pub fn clear_cache(&mut self) {
        self.engine.cache = Cache::new(self.cache_size);
    }

    /// Handles `packet` from `client` as the UDP or TCP loop does.
    pub fn answer(
        &mut self,
        packet: &[u8],
        client: SocketAddr,
        proto: Proto,
        out: &mut Vec<u8>,
    ) -> Handled {
        let req = Request {
            packet,
            client,
            proto,
            received: Received::now(),
        };
        let handled = self.engine.answer_now(req, &mut self.scratch, out);
        self.engine.flush_log(&mut self.scratch);
        handled
    }

    /// Takes `upstream` apart as an upstream's answer to `query` and caches it as stored
    /// `age` seconds ago, with the checks the forwarder makes first. Returns whether it
    /// was cached.
    pub fn cache_upstream(&mut self, query: &[u8], upstream: &[u8], age: u32) -> bool {
        let Ok(q) = parse_query(query) else {
            return false;
        };
        let policy = self.engine.policy.load();
        let Ok(reply) = Reply::from_upstream(upstream.to_vec(), Arc::from("fuzz"), policy.cache())
        else {
            return false;
        };
        if !same_question(reply.question(), q.question()) || reply.lifetime == 0 {
            return false;
        }
        let now = Instant::now();
        let stored = now
            .checked_sub(Duration::from_secs(u64::from(age)))
            .unwrap_or(now);
        cache_key(&q, &mut self.key);
        self.engine.cache.insert(&self.key, Arc::new(reply), stored);
        true
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.log.close();
    }
}

/// Reads `packet` as the answering path does before it decides: the query (header, one
/// question, OPT record) and the question's name as text into `name`. Returns the
/// question's type, or `None` for a packet answered FORMERR, NOTIMP or BADVERS, or not at
/// all. For the benches against hickory-proto's `Message::from_vec`.
pub fn read_query(packet: &[u8], name: &mut String) -> Option<u16> {
    let q = parse_query(packet).ok()?;
    name.clear();
    name_to_text(q.packet, HEADER_LEN, name)?;
    Some(q.qtype)
}

/// The line [`write_sample_line`] writes, field by field, for a bench that writes the
/// same line with serde_json.
pub mod sample {
    /// `ts`: 2025-11-26T01:10:54.123456Z.
    pub const TS_MICROS: u64 = 1_764_119_454_123_456;
    /// `client`.
    pub const CLIENT: &str = "10.0.10.5";
    /// `qname`.
    pub const QNAME: &str = "watson.events.data.microsoft.com";
    /// `qtype`: A.
    pub const QTYPE: u16 = 1;
    /// `areas`, as (id, name).
    pub const AREAS: &[(&str, &str)] = &[("diagnostic-data", "Diagnostic Data")];
    /// `patterns`.
    pub const PATTERNS: &[&str] = &["watson.*.microsoft.com", "*.events.data.microsoft.com"];
    /// `impact`.
    pub const IMPACT: &[&str] = &["Windows Error Reporting cannot send crash reports."];
    /// `impact_scope`.
    pub const IMPACT_SCOPE: &str = "endpoint";
    /// `decided_by`: the rule's pattern (kind `rule`, action `block`, no note).
    pub const DECIDED_BY: &str = "watson.*.microsoft.com";
}

struct SampleWhy;

impl Explain for SampleWhy {
    fn areas(&self, f: &mut dyn FnMut(&str, &str)) {
        sample::AREAS.iter().for_each(|(id, name)| f(id, name));
    }
    fn patterns(&self, f: &mut dyn FnMut(&str)) {
        sample::PATTERNS.iter().for_each(|p| f(p));
    }
    fn impacts(&self, f: &mut dyn FnMut(&str)) {
        sample::IMPACT.iter().for_each(|i| f(i));
    }
    fn impact_scope(&self) -> Option<&'static str> {
        Some(sample::IMPACT_SCOPE)
    }
    fn impact(&self) -> Option<&str> {
        sample::IMPACT.first().copied()
    }
    fn decided_by(&self, out: &mut String) -> bool {
        out.push_str(r#"{"kind":"rule","note":null,"pattern":""#);
        out.push_str(sample::DECIDED_BY);
        out.push_str(r#"","action":"block"}"#);
        true
    }
}

/// Appends a typical query-log line (a name blocked by an area, over UDP, the sinkhole
/// answer with one record) as the query log writes it in `format`, with its newline.
pub fn write_sample_line(out: &mut String, format: LogFormat) {
    let line = Line {
        ts: UNIX_EPOCH + Duration::from_micros(sample::TS_MICROS),
        client: IpAddr::V4(Ipv4Addr::new(10, 0, 10, 5)),
        proto: Proto::Udp,
        qname: sample::QNAME,
        qtype: Some(sample::QTYPE),
        decision: "block",
        why: &SampleWhy,
        rcode: 0,
        answers: 1,
        cached: false,
        upstream: None,
        took_us: 41,
        cname: None,
    };
    crate::querylog::format_line(out, format, &line);
}
