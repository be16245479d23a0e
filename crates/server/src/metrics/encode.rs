//! `/metrics`: the counters in the Prometheus text format (version 0.0.4), written by
//! `prometheus-client` from a [`Snapshot`] taken at scrape time.
//!
//! | Metric | Type | Labels |
//! | --- | --- | --- |
//! | `winsink_queries_total` | counter | `decision`, `area` (deciding area id, `list:<label>`, `rule`, `none`) |
//! | `winsink_responses_total` | counter | `rcode` |
//! | `winsink_query_duration_seconds` | histogram | `path` (`sinkhole`, `cache`, `forward`, `refused`) |
//! | `winsink_cache_hits_total`, `winsink_cache_misses_total` | counter | |
//! | `winsink_cache_entries` | gauge | |
//! | `winsink_upstream_queries_total` | counter | `upstream`, `outcome` (`ok`, `timeout`, `error` (also a REFUSED answer), `servfail`, `truncated`) |
//! | `winsink_upstream_duration_seconds` | histogram | `upstream` |
//! | `winsink_upstream_up` | gauge | `upstream` |
//! | `winsink_policy_reloads_total` | counter | `result` (`ok`, `error`) |
//! | `winsink_policy_last_reload_timestamp_seconds` | gauge | |
//! | `winsink_policy_patterns` | gauge | |
//! | `winsink_area_action` | gauge | `area`, `action` (1 for the action in force) |
//! | `winsink_querylog_dropped_total` | counter | |
//! | `winsink_tcp_connections` | gauge | |
//! | `winsink_ratelimited_total` | counter | |
//! | `winsink_build_info` | gauge | `version` |
//! | `winsink_start_time_seconds` | gauge | |
//! | `winsink_tls_certificate_expiry_timestamp_seconds` | gauge | (with `[tls]` only) |

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use winsink_policy::{Action, Policy};

use super::{
    Decided, HistSnapshot, Metrics, Path, UpstreamOutcome, BUCKETS_US, DECISIONS, PATHS, RCODES,
    RCODE_OTHER,
};
use std::sync::atomic::Ordering;

/// The `Content-Type` of `/metrics`.
pub(crate) const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// What the server knows besides the counters, read at scrape time.
#[derive(Debug, Clone, Default)]
pub(crate) struct Gauges {
    pub(crate) cache_entries: u64,
    pub(crate) tcp_connections: u64,
    /// TCP connections refused by the connection limits.
    pub(crate) tcp_refused: u64,
    pub(crate) querylog_dropped: u64,
    /// Per upstream label: whether it is up (`None`: not known yet).
    pub(crate) upstream_up: Vec<(String, Option<bool>)>,
    /// The DoT/DoH certificate's notAfter, in seconds since the Unix epoch.
    pub(crate) cert_not_after: Option<i64>,
}

/// Every figure of one scrape, as owned data.
#[derive(Debug)]
pub(crate) struct Snapshot {
    queries: Vec<(String, [u64; DECISIONS])>,
    rcodes: [u64; RCODES],
    durations: [HistSnapshot; PATHS],
    cache_hits: u64,
    cache_misses: u64,
    upstreams: Vec<(String, [u64; super::OUTCOMES], HistSnapshot)>,
    reloads: [u64; 2],
    last_reload_secs: f64,
    patterns: u64,
    areas: Vec<(String, Action)>,
    ratelimited: u64,
    start_secs: f64,
    gauges: Gauges,
}

impl Snapshot {
    pub(crate) fn take(m: &Metrics, policy: &Policy, gauges: Gauges) -> Self {
        let queries = m
            .queries()
            .into_iter()
            .enumerate()
            .filter(|(_, c)| c.iter().any(|&n| n > 0))
            .filter_map(|(slot, c)| Some((m.labels.text(slot)?.to_owned(), c)))
            .collect();
        let upstreams = m
            .upstream_counters()
            .iter()
            .map(|u| (u.label.clone(), u.outcomes(), u.duration()))
            .collect();
        Self {
            queries,
            rcodes: m.rcodes(),
            durations: m.durations(),
            cache_hits: m.sum(|s| &s.cache_hits),
            cache_misses: m.sum(|s| &s.cache_misses),
            upstreams,
            reloads: [0, 1].map(|i| m.reloads[i].load(Ordering::Relaxed)),
            last_reload_secs: m.last_reload_ms.load(Ordering::Relaxed) as f64 / 1000.0,
            patterns: policy.rule_count() as u64,
            areas: policy
                .summary()
                .areas
                .into_iter()
                .map(|a| (a.id, a.action))
                .collect(),
            ratelimited: m.ratelimited.load(Ordering::Relaxed),
            start_secs: m.started_unix,
            gauges,
        }
    }

    /// The exposition text.
    pub(crate) fn text(self) -> String {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(self));
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::prometheus_text::encode(&mut out, &registry);
        out
    }
}

fn histogram(
    m: &mut prometheus_client::encoding::MetricEncoder<'_>,
    h: &HistSnapshot,
) -> Result<(), std::fmt::Error> {
    let buckets: Vec<(f64, u64)> = BUCKETS_US
        .iter()
        .map(|&us| us as f64 / 1e6)
        .chain(std::iter::once(f64::INFINITY))
        .zip(h.buckets)
        .collect();
    m.encode_histogram::<prometheus_client::encoding::NoLabelSet>(
        h.sum_us as f64 / 1e6,
        h.count(),
        &buckets,
        None,
    )
}

fn counter(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: u64,
) -> Result<(), std::fmt::Error> {
    let c = ConstCounter::new(v);
    let m = enc.encode_descriptor(name, help, None, c.metric_type())?;
    c.encode(m)
}

fn gauge<T: prometheus_client::encoding::EncodeGaugeValue + Clone + std::fmt::Debug>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    v: T,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<T>: EncodeMetric,
{
    let g = ConstGauge::new(v);
    let m = enc.encode_descriptor(name, help, None, g.metric_type())?;
    g.encode(m)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        self.encode_queries(&mut enc)?;
        self.encode_cache(&mut enc)?;
        self.encode_upstreams(&mut enc)?;
        self.encode_policy(&mut enc)?;
        self.encode_process(&mut enc)?;
        Ok(())
    }
}

/// The metric families, in the order `/metrics` lists them.
impl Snapshot {
    /// `winsink_queries`, `winsink_responses`, `winsink_query_duration_seconds`.
    fn encode_queries(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut m = enc.encode_descriptor(
                "winsink_queries",
                "Queries answered, by decision and by what decided (area id, list:<label>, rule, none).",
                None,
                MetricType::Counter,
            )?;
            for (label, counts) in &self.queries {
                for d in Decided::ALL {
                    let n = counts[d as usize];
                    if n == 0 {
                        continue;
                    }
                    let labels = [("decision", d.as_str()), ("area", label.as_str())];
                    ConstCounter::new(n).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "winsink_responses",
                "Responses sent, by RCODE.",
                None,
                MetricType::Counter,
            )?;
            for (code, &n) in self.rcodes.iter().enumerate() {
                if n == 0 {
                    continue;
                }
                let name = match crate::wire::rcode_name(code as u16) {
                    _ if code == RCODE_OTHER => "OTHER".to_owned(),
                    "RCODE?" => format!("RCODE{code}"),
                    known => known.to_owned(),
                };
                ConstCounter::new(n).encode(m.encode_family(&[("rcode", name.as_str())])?)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "winsink_query_duration_seconds",
                "Time from receiving a query to sending its answer, by how it was answered.",
                None,
                MetricType::Histogram,
            )?;
            for p in Path::ALL {
                histogram(
                    &mut m.encode_family(&[("path", p.as_str())])?,
                    &self.durations[p as usize],
                )?;
            }
        }
        Ok(())
    }

    /// The cache's hits, misses and entries.
    fn encode_cache(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        counter(
            enc,
            "winsink_cache_hits",
            "Queries answered from the cache.",
            self.cache_hits,
        )?;
        counter(
            enc,
            "winsink_cache_misses",
            "Queries the cache could not answer, forwarded to the upstreams.",
            self.cache_misses,
        )?;
        gauge(
            enc,
            "winsink_cache_entries",
            "Answers held in the cache.",
            self.gauges.cache_entries as i64,
        )?;
        Ok(())
    }

    /// Per upstream: exchanges by outcome, their durations, whether it is up.
    fn encode_upstreams(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut m = enc.encode_descriptor(
                "winsink_upstream_queries",
                "Exchanges with each upstream, by outcome.",
                None,
                MetricType::Counter,
            )?;
            for (label, outcomes, _) in &self.upstreams {
                for o in UpstreamOutcome::ALL {
                    let labels = [("upstream", label.as_str()), ("outcome", o.as_str())];
                    ConstCounter::new(outcomes[o as usize]).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "winsink_upstream_duration_seconds",
                "Time each exchange with an upstream took.",
                None,
                MetricType::Histogram,
            )?;
            for (label, _, h) in &self.upstreams {
                histogram(&mut m.encode_family(&[("upstream", label.as_str())])?, h)?;
            }
        }
        {
            let mut m = enc.encode_descriptor(
                "winsink_upstream_up",
                "1 when the upstream's last exchange got an answer, 0 when it failed (absent until it is asked).",
                None,
                MetricType::Gauge,
            )?;
            for (label, up) in &self.gauges.upstream_up {
                if let Some(up) = up {
                    ConstGauge::new(i64::from(*up))
                        .encode(m.encode_family(&[("upstream", label.as_str())])?)?;
                }
            }
        }
        Ok(())
    }

    /// Reloads, the policy in force and each area's action.
    fn encode_policy(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        {
            let mut m = enc.encode_descriptor(
                "winsink_policy_reloads",
                "Policy reloads: ok (in force) or error (rejected, the old policy kept).",
                None,
                MetricType::Counter,
            )?;
            for (i, result) in ["ok", "error"].into_iter().enumerate() {
                ConstCounter::new(self.reloads[i])
                    .encode(m.encode_family(&[("result", result)])?)?;
            }
        }
        gauge(
            enc,
            "winsink_policy_last_reload_timestamp_seconds",
            "When the last successful reload put a policy in force (0: none since the start).",
            self.last_reload_secs,
        )?;
        gauge(
            enc,
            "winsink_policy_patterns",
            "Patterns in the policy in force (catalog endpoints, rules, list entries).",
            self.patterns as i64,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "winsink_area_action",
                "1 for the action in force for each catalog area (global settings), 0 for the others.",
                None,
                MetricType::Gauge,
            )?;
            for (area, action) in &self.areas {
                for a in [Action::Block, Action::Log, Action::Allow] {
                    let labels = [("area", area.as_str()), ("action", a.as_str())];
                    ConstGauge::new(i64::from(a == *action)).encode(m.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }

    /// The query log, TCP, limits, the build and the start time.
    fn encode_process(&self, enc: &mut DescriptorEncoder<'_>) -> Result<(), std::fmt::Error> {
        counter(
            enc,
            "winsink_querylog_dropped",
            "Query-log lines dropped because the writer could not keep up.",
            self.gauges.querylog_dropped,
        )?;
        gauge(
            enc,
            "winsink_tcp_connections",
            "TCP client connections open.",
            self.gauges.tcp_connections as i64,
        )?;
        counter(
            enc,
            "winsink_ratelimited",
            "Queries and connections turned away by a limit: over [server] ratelimit_qps, too many forwards waiting, too many TCP connections.",
            self.ratelimited + self.gauges.tcp_refused,
        )?;
        {
            let mut m = enc.encode_descriptor(
                "winsink_build_info",
                "The running version (always 1).",
                None,
                MetricType::Gauge,
            )?;
            ConstGauge::new(1i64)
                .encode(m.encode_family(&[("version", env!("CARGO_PKG_VERSION"))])?)?;
        }
        gauge(
            enc,
            "winsink_start_time_seconds",
            "When the process started, in seconds since the Unix epoch.",
            self.start_secs,
        )?;
        if let Some(t) = self.gauges.cert_not_after {
            gauge(
                enc,
                "winsink_tls_certificate_expiry_timestamp_seconds",
                "When the DoT/DoH certificate in force stops being valid (its notAfter), in seconds since the Unix epoch.",
                t,
            )?;
        }
        Ok(())
    }
}
