//! Counting queries for `/metrics` and the JSON API, at no measurable cost per query.
//!
//! The query path calls [`Metrics::record`] once per finished query. It touches only
//! atomics: counters live in per-thread shards (each thread adds to the shard it was
//! given on first use, so two cores rarely write the same cache line), and the query's
//! facts go into the lock-free [recent-queries ring](ring). Nothing on that path locks
//! or allocates (except once per distinct area label for the life of the process, see
//! [`labels`]). Scrapes and API calls add the shards up; the statistics task
//! ([`stats`]) follows the ring to keep what needs more than a counter: the top names
//! and clients, distinct clients and last query per area, uncatalogued Microsoft names.
//!
//! What is counted, with bounded label sets only (an area id, `list:<label>`, `rule`,
//! `none`; never a query name or a client address):
//!
//! - queries by decision and deciding area, responses by RCODE, the time from receiving
//!   a query to sending its answer by path (sinkhole, cache, forward, refused), cache
//!   hits and misses;
//! - per upstream: exchanges by outcome and their duration (recorded by the forwarder);
//! - policy reloads by result, queries turned away by a limit.
//!
//! [`encode`] writes them in the Prometheus text format through `prometheus-client`.

pub(crate) mod encode;
pub(crate) mod labels;
pub(crate) mod ring;
pub(crate) mod stats;
pub(crate) mod topk;

use std::cell::Cell;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use winsink_policy::Decision;

use labels::{Decider, Labels, MAX_LABELS};
use ring::{Facts, Ring, MAX_AREAS, NO_UPSTREAM};

/// The decision words of the query log, as counter indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Decided {
    Block = 0,
    Log = 1,
    Allow = 2,
    Pass = 3,
    Refuse = 4,
    Invalid = 5,
}

pub(crate) const DECISIONS: usize = 6;

impl Decided {
    pub(crate) const ALL: [Self; DECISIONS] = [
        Self::Block,
        Self::Log,
        Self::Allow,
        Self::Pass,
        Self::Refuse,
        Self::Invalid,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Log => "log",
            Self::Allow => "allow",
            Self::Pass => "pass",
            Self::Refuse => "refuse",
            Self::Invalid => "invalid",
        }
    }

    pub(crate) fn from_word(w: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|d| d.as_str() == w)
    }

    fn from_index(i: usize) -> Self {
        Self::ALL.get(i).copied().unwrap_or(Self::Invalid)
    }
}

/// How an answer was made: the `path` label of `winsink_query_duration_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Path {
    /// The sinkhole answer of a blocked name.
    Sinkhole = 0,
    /// From the cache.
    Cache = 1,
    /// Through the upstreams (or SERVFAIL when they could not be asked or answer).
    Forward = 2,
    /// REFUSED to a client outside `allow_clients`, or an error to a malformed query.
    Refused = 3,
}

pub(crate) const PATHS: usize = 4;

impl Path {
    pub(crate) const ALL: [Self; PATHS] =
        [Self::Sinkhole, Self::Cache, Self::Forward, Self::Refused];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Sinkhole => "sinkhole",
            Self::Cache => "cache",
            Self::Forward => "forward",
            Self::Refused => "refused",
        }
    }

    fn from_index(i: usize) -> Self {
        Self::ALL.get(i).copied().unwrap_or(Self::Refused)
    }
}

/// How one exchange with an upstream ended: the `outcome` label of
/// `winsink_upstream_queries_total`.
///
/// The outcome agrees with the upstream's health: every outcome but `ok` (and
/// `truncated`, asked again over TCP) marks it down. A REFUSED answer counts as `error`
/// (the upstream will not serve winsink: an ACL, a view), so the label set stays
/// ok/timeout/error/servfail/truncated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum UpstreamOutcome {
    /// An answer other than SERVFAIL or REFUSED.
    Ok = 0,
    /// No answer within its share of the budget.
    Timeout = 1,
    /// A network error, only unusable replies, or a REFUSED answer.
    Error = 2,
    /// The upstream answered SERVFAIL.
    Servfail = 3,
    /// A truncated UDP answer (asked again over TCP).
    Truncated = 4,
}

pub(crate) const OUTCOMES: usize = 5;

impl UpstreamOutcome {
    pub(crate) const ALL: [Self; OUTCOMES] = [
        Self::Ok,
        Self::Timeout,
        Self::Error,
        Self::Servfail,
        Self::Truncated,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Ok => "ok",
            Self::Timeout => "timeout",
            Self::Error => "error",
            Self::Servfail => "servfail",
            Self::Truncated => "truncated",
        }
    }
}

/// Upper bounds of the duration histograms' buckets, in microseconds.
pub(crate) const BUCKETS_US: [u64; 15] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
    1_000_000, 2_500_000,
];

/// A histogram of durations: per-bucket (not cumulative) counts, the last one `+Inf`.
#[derive(Debug)]
pub(crate) struct Hist {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Hist {
    fn new() -> Self {
        Self {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            sum_us: AtomicU64::new(0),
        }
    }

    fn observe(&self, us: u64) {
        let i = BUCKETS_US.partition_point(|&b| b < us);
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }
}

/// A histogram summed over shards.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct HistSnapshot {
    pub(crate) buckets: [u64; BUCKETS_US.len() + 1],
    pub(crate) sum_us: u64,
}

impl HistSnapshot {
    fn add(&mut self, h: &Hist) {
        for (a, b) in self.buckets.iter_mut().zip(&h.buckets) {
            *a += b.load(Ordering::Relaxed);
        }
        self.sum_us += h.sum_us.load(Ordering::Relaxed);
    }

    pub(crate) fn count(&self) -> u64 {
        self.buckets.iter().sum()
    }
}

/// RCODEs counted one by one (0 to 23: every one a response can carry in its header
/// plus BADVERS); [`RCODE_OTHER`] counts the rest.
pub(crate) const RCODES: usize = 25;
pub(crate) const RCODE_OTHER: usize = RCODES - 1;

/// The counters one thread adds to.
#[repr(align(128))]
struct Shard {
    queries: [[AtomicU64; DECISIONS]; MAX_LABELS],
    rcodes: [AtomicU64; RCODES],
    durations: [Hist; PATHS],
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl Shard {
    fn new() -> Self {
        Self {
            queries: std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0))),
            rcodes: std::array::from_fn(|_| AtomicU64::new(0)),
            durations: std::array::from_fn(|_| Hist::new()),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
        }
    }
}

/// Shards: enough that the UDP threads and the runtime's workers of a small machine
/// each have their own.
const SHARDS: usize = 16;

static NEXT_SHARD: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static MY_SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
}

fn my_shard() -> usize {
    MY_SHARD.with(|c| {
        let v = c.get();
        if v != usize::MAX {
            return v;
        }
        let v = NEXT_SHARD.fetch_add(1, Ordering::Relaxed) % SHARDS;
        c.set(v);
        v
    })
}

/// Per upstream: exchanges by outcome, and how long they took.
#[derive(Debug)]
pub(crate) struct UpstreamCounters {
    pub(crate) label: String,
    outcomes: [AtomicU64; OUTCOMES],
    duration: Hist,
}

/// What [`Metrics::new`] needs.
#[derive(Debug, Clone)]
pub struct MetricsConfig {
    /// Queries kept for `/api/v1/queries`.
    pub recent_queries: usize,
    /// Microsoft-owned domains (see `[http] microsoft_suffixes`).
    pub microsoft_suffixes: Vec<String>,
}

/// Every counter of the server. Create one with [`Metrics::new`] and hand it to
/// [`Server::with_metrics`](crate::Server::with_metrics).
pub struct Metrics {
    started: Instant,
    started_unix: f64,
    shards: Box<[Shard]>,
    pub(crate) labels: Labels,
    pub(crate) ring: Ring,
    upstreams: Mutex<Vec<std::sync::Arc<UpstreamCounters>>>,
    reloads: [AtomicU64; 2],
    last_reload_ms: AtomicU64,
    ratelimited: AtomicU64,
    serving: AtomicBool,
    pub(crate) stats: stats::Stats,
    /// Queries per minute per area and decision, for the dashboard's plot.
    pub(crate) buckets: crate::http::dashboard::Buckets,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("ring", &self.ring)
            .finish_non_exhaustive()
    }
}

/// One finished query, as [`Metrics::record`] takes it.
pub(crate) struct Record<'a, 'p> {
    pub(crate) ts: SystemTime,
    /// Microseconds from receiving the query to finishing its answer.
    pub(crate) took_us: u64,
    pub(crate) client: IpAddr,
    pub(crate) proto: crate::engine::Proto,
    pub(crate) qname: &'a str,
    pub(crate) qtype: Option<u16>,
    pub(crate) decided: Decided,
    /// The policy's decision (`None` for refused and invalid queries).
    pub(crate) decision: Option<&'a Decision<'p>>,
    /// The CNAME chain name that decided, when not the question.
    pub(crate) cname: Option<&'a str>,
    pub(crate) rcode: u16,
    pub(crate) answers: u16,
    pub(crate) path: Path,
    pub(crate) cached: bool,
    /// Index of the upstream that answered, if one was asked.
    pub(crate) upstream: Option<usize>,
}

impl Metrics {
    /// Counters at zero, a ring of `config.recent_queries` entries.
    pub fn new(config: &MetricsConfig) -> Self {
        Self {
            started: Instant::now(),
            started_unix: unix_secs(SystemTime::now()),
            shards: (0..SHARDS).map(|_| Shard::new()).collect(),
            labels: Labels::new(),
            ring: Ring::new(config.recent_queries),
            upstreams: Mutex::new(Vec::new()),
            reloads: [AtomicU64::new(0), AtomicU64::new(0)],
            last_reload_ms: AtomicU64::new(0),
            ratelimited: AtomicU64::new(0),
            serving: AtomicBool::new(false),
            stats: stats::Stats::new(&config.microsoft_suffixes),
            buckets: Default::default(),
        }
    }

    /// Whether the server's sockets are served (set by the server).
    pub(crate) fn set_serving(&self, on: bool) {
        self.serving.store(on, Ordering::Relaxed);
    }

    pub(crate) fn serving(&self) -> bool {
        self.serving.load(Ordering::Relaxed)
    }

    /// Counts a policy reload: `ok` when the new policy is in force, else it was
    /// rejected and the old one kept.
    pub fn reloaded(&self, ok: bool) {
        self.reloads[usize::from(!ok)].fetch_add(1, Ordering::Relaxed);
        if ok {
            let ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64);
            self.last_reload_ms.store(ms, Ordering::Relaxed);
        }
    }

    /// Counts one finished query. No lock, no allocation.
    pub(crate) fn record(&self, r: &Record<'_, '_>) {
        let us = r.took_us.min(u64::from(u32::MAX));
        let decider = r.decision.map_or(Decider::None, Decider::of);
        let label = self.labels.slot(decider);
        let shard = &self.shards[my_shard()];
        shard.queries[label][r.decided as usize].fetch_add(1, Ordering::Relaxed);
        shard.rcodes[usize::from(r.rcode).min(RCODE_OTHER)].fetch_add(1, Ordering::Relaxed);
        shard.durations[r.path as usize].observe(us);
        if r.cached {
            shard.cache_hits.fetch_add(1, Ordering::Relaxed);
        } else if r.path == Path::Forward {
            shard.cache_misses.fetch_add(1, Ordering::Relaxed);
        }
        let mut areas = [0u8; MAX_AREAS];
        if let Some(d) = r.decision {
            for (slot, a) in areas.iter_mut().zip(d.areas()) {
                *slot = self.labels.slot(Decider::Area {
                    id: a.id,
                    name: a.name,
                }) as u8;
            }
        }
        self.ring.push(&Facts {
            ts_us: r
                .ts
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_micros() as u64),
            client: r.client,
            proto: r.proto,
            qname: r.qname,
            cname: r.cname,
            qtype: r.qtype,
            decision: r.decided,
            path: r.path,
            label,
            areas,
            rcode: r.rcode,
            answers: r.answers,
            cached: r.cached,
            upstream: r.upstream.map_or(NO_UPSTREAM, |u| u.min(254) as u8),
            duration_us: us as u32,
        });
    }

    /// Counts a query or connection turned away by a limit (the forward queue, the TCP
    /// connection limit).
    pub(crate) fn ratelimited(&self) {
        self.ratelimited.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters of the upstreams, in the configured order (set once by the server).
    pub(crate) fn set_upstreams(&self, labels: &[String]) -> Vec<std::sync::Arc<UpstreamCounters>> {
        let list: Vec<_> = labels
            .iter()
            .map(|l| {
                std::sync::Arc::new(UpstreamCounters {
                    label: l.clone(),
                    outcomes: std::array::from_fn(|_| AtomicU64::new(0)),
                    duration: Hist::new(),
                })
            })
            .collect();
        *self.upstreams.lock().unwrap_or_else(|e| e.into_inner()) = list.clone();
        list
    }

    pub(crate) fn upstream_counters(&self) -> Vec<std::sync::Arc<UpstreamCounters>> {
        self.upstreams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Seconds since the start.
    pub(crate) fn uptime_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }

    /// Queries by (label slot, decision), summed over shards.
    pub(crate) fn queries(&self) -> Vec<[u64; DECISIONS]> {
        let mut out = vec![[0u64; DECISIONS]; MAX_LABELS];
        for s in self.shards.iter() {
            for (row, counts) in out.iter_mut().zip(&s.queries) {
                for (a, b) in row.iter_mut().zip(counts) {
                    *a += b.load(Ordering::Relaxed);
                }
            }
        }
        out
    }

    fn sum(&self, f: impl Fn(&Shard) -> &AtomicU64) -> u64 {
        self.shards
            .iter()
            .map(|s| f(s).load(Ordering::Relaxed))
            .sum()
    }

    pub(crate) fn rcodes(&self) -> [u64; RCODES] {
        let mut out = [0u64; RCODES];
        for s in self.shards.iter() {
            for (a, b) in out.iter_mut().zip(&s.rcodes) {
                *a += b.load(Ordering::Relaxed);
            }
        }
        out
    }

    pub(crate) fn durations(&self) -> [HistSnapshot; PATHS] {
        let mut out: [HistSnapshot; PATHS] = Default::default();
        for s in self.shards.iter() {
            for (a, h) in out.iter_mut().zip(&s.durations) {
                a.add(h);
            }
        }
        out
    }
}

impl UpstreamCounters {
    /// Counts one exchange.
    pub(crate) fn observe(&self, outcome: UpstreamOutcome, took: std::time::Duration) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
        self.duration
            .observe(took.as_micros().min(u128::from(u64::MAX)) as u64);
    }

    pub(crate) fn outcomes(&self) -> [u64; OUTCOMES] {
        std::array::from_fn(|i| self.outcomes[i].load(Ordering::Relaxed))
    }

    pub(crate) fn duration(&self) -> HistSnapshot {
        let mut h = HistSnapshot::default();
        h.add(&self.duration);
        h
    }
}

fn unix_secs(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}
