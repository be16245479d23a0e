//! Queries per minute per area and decision, for the last 24 hours, in memory.
//!
//! The dashboard's "over time" plot reads these buckets, not the log files. They are
//! filled by *sampling* the cumulative per-(area, decision) query counters that the
//! metrics keep anyway (`winsink_queries_total{decision, area}`), every
//! [`SAMPLE_EVERY`]: the difference since the last sample goes into the bucket of the
//! minute the sample is taken in. So the query path pays nothing for the plot (one
//! counting hook serves both), at the price of attributing up to [`SAMPLE_EVERY`] of
//! queries at a minute's end to the next minute.
//!
//! Bounded: at most [`KEEP_MINUTES`] buckets, each holding only the (area, decision)
//! pairs that saw queries that minute, and at most [`MAX_KEYS`] distinct areas (catalog
//! areas, `list:LABEL`, `rule`, `none`); past that, further keys count as `other`.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// How often the counters are sampled.
pub(crate) const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Minutes kept: 24 hours.
pub(crate) const KEEP_MINUTES: u64 = 24 * 60;
/// Most distinct area keys; more count as [`OTHER`].
pub(crate) const MAX_KEYS: usize = 256;
/// The key counted for areas past [`MAX_KEYS`].
pub(crate) const OTHER: &str = "other";

/// The decisions a query can end with, as the metrics and the log name them.
pub(crate) const DECISIONS: [&str; 6] = ["block", "log", "allow", "pass", "refuse", "invalid"];

/// One minute's counts: (key index, decision index, queries).
#[derive(Debug)]
struct Minute {
    /// Minutes since the Unix epoch.
    at: u64,
    counts: Vec<(u16, u8, u32)>,
}

/// The per-minute buckets. Not for the query path: one owner (the sampler) behind a lock
/// that only it and the HTTP handlers take. A new one has no buckets, and every counter
/// is taken to have started at zero.
#[derive(Debug, Default)]
pub(crate) struct Timeseries {
    keys: Vec<String>,
    index: HashMap<String, u16>,
    /// The cumulative counts last seen per area text and decision (by text, not by key:
    /// areas counted as [`OTHER`] each have counters of their own).
    last: HashMap<String, [u64; DECISIONS.len()]>,
    minutes: VecDeque<Minute>,
}

/// A window of the buckets, in the JSON shape of `GET /api/v1/timeseries`:
/// `{"step": 60, "times": [unix seconds, ...], "series": [{"area", "decision",
/// "counts": [...]}]}`. `times` has one entry per step, oldest first, the last one the
/// step holding now; every series has one count per time; series with no queries in the
/// window are left out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Window {
    /// Seconds per point.
    pub(crate) step: u64,
    /// The start of each point, Unix seconds.
    pub(crate) times: Vec<u64>,
    /// One series per (area, decision) with queries in the window.
    pub(crate) series: Vec<Series>,
}

/// Queries of one area with one decision, per point of a [`Window`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Series {
    /// The area key: a catalog area id, `list:LABEL`, `rule`, `none` or `other`.
    pub(crate) area: String,
    /// One of [`DECISIONS`].
    pub(crate) decision: &'static str,
    /// Queries per point.
    pub(crate) counts: Vec<u64>,
}

fn minute_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / 60
}

impl Timeseries {
    fn key(&mut self, area: &str) -> u16 {
        if let Some(&k) = self.index.get(area) {
            return k;
        }
        let name = if self.keys.len() < MAX_KEYS - 1 {
            area
        } else {
            OTHER
        };
        if let Some(&k) = self.index.get(name) {
            return k;
        }
        let k = self.keys.len() as u16;
        self.keys.push(name.to_owned());
        self.index.insert(name.to_owned(), k);
        k
    }

    /// Takes a sample at `now` of the cumulative counters: `(area, decision, queries
    /// since start)`. What grew since the last sample is added to `now`'s minute; a
    /// counter seen for the first time counts from zero; one that went down (a counter
    /// reset) counts from zero again. Unknown decision words are ignored.
    pub(crate) fn observe<'a>(
        &mut self,
        now: SystemTime,
        totals: impl IntoIterator<Item = (&'a str, &'a str, u64)>,
    ) {
        let at = minute_of(now);
        while self
            .minutes
            .front()
            .is_some_and(|m| m.at + KEEP_MINUTES <= at)
        {
            self.minutes.pop_front();
        }
        for (area, decision, total) in totals {
            let Some(d) = DECISIONS.iter().position(|&w| w == decision) else {
                continue;
            };
            let last = match self.last.get_mut(area) {
                Some(l) => &mut l[d],
                None => &mut self.last.entry(area.to_owned()).or_default()[d],
            };
            let grew = if total >= *last { total - *last } else { total };
            *last = total;
            if grew == 0 {
                continue;
            }
            let k = self.key(area);
            self.add(at, k, d as u8, grew);
        }
    }

    fn add(&mut self, at: u64, k: u16, d: u8, n: u64) {
        // A clock stepped back adds to the newest bucket rather than reordering them.
        let at = self.minutes.back().map_or(at, |m| m.at.max(at));
        if self.minutes.back().is_none_or(|m| m.at != at) {
            self.minutes.push_back(Minute {
                at,
                counts: Vec::new(),
            });
        }
        let Some(minute) = self.minutes.back_mut() else {
            return;
        };
        let n = u32::try_from(n).unwrap_or(u32::MAX);
        match minute.counts.iter_mut().find(|c| c.0 == k && c.1 == d) {
            Some(c) => c.2 = c.2.saturating_add(n),
            None => minute.counts.push((k, d, n)),
        }
    }

    /// The last `span` up to `now`, in points of `step` (both rounded to whole minutes,
    /// `step` at least one; `span` at most 24 hours).
    pub(crate) fn window(&self, now: SystemTime, span: Duration, step: Duration) -> Window {
        let step_min = (step.as_secs() / 60).max(1);
        let span_min = (span.as_secs() / 60).clamp(step_min, KEEP_MINUTES);
        let points = span_min.div_ceil(step_min);
        // Points are aligned on multiples of the step, the last one holding now.
        let last_start = minute_of(now) / step_min * step_min;
        let first_start = last_start.saturating_sub((points - 1) * step_min);
        let times = (0..points)
            .map(|i| (first_start + i * step_min) * 60)
            .collect();
        let mut by_series: HashMap<(u16, u8), Vec<u64>> = HashMap::new();
        for m in self.minutes.iter().filter(|m| m.at >= first_start) {
            let i = ((m.at - first_start) / step_min) as usize;
            if i >= points as usize {
                continue;
            }
            for &(k, d, n) in &m.counts {
                by_series
                    .entry((k, d))
                    .or_insert_with(|| vec![0; points as usize])[i] += u64::from(n);
            }
        }
        let mut series: Vec<Series> = by_series
            .into_iter()
            .map(|((k, d), counts)| Series {
                area: self.keys[usize::from(k)].clone(),
                decision: DECISIONS[usize::from(d)],
                counts,
            })
            .collect();
        series.sort_by(|a, b| (&a.area, a.decision).cmp(&(&b.area, b.decision)));
        Window {
            step: step_min * 60,
            times,
            series,
        }
    }

    /// How many minute buckets are held (at most [`KEEP_MINUTES`]).
    #[cfg(test)]
    pub(crate) fn minutes(&self) -> usize {
        self.minutes.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-12-01 20:00:00 UTC, a minute boundary.
    fn at(minutes: u64, secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_796_155_200 + minutes * 60 + secs)
    }

    fn counts<'w>(w: &'w Window, area: &str, decision: &str) -> &'w [u64] {
        w.series
            .iter()
            .find(|s| s.area == area && s.decision == decision)
            .map_or(&[], |s| &s.counts)
    }

    #[test]
    fn samples_become_per_minute_differences() {
        let mut t = Timeseries::default();
        t.observe(at(0, 5), [("diagnostic-data", "block", 3)]);
        t.observe(
            at(0, 40),
            [("diagnostic-data", "block", 5), ("none", "pass", 2)],
        );
        t.observe(
            at(2, 10),
            [("diagnostic-data", "block", 9), ("none", "pass", 2)],
        );
        let w = t.window(at(2, 30), Duration::from_secs(300), Duration::from_secs(60));
        assert_eq!(w.step, 60);
        let times: Vec<u64> = (0..5).map(|i| 1_796_155_200 - 120 + i * 60).collect();
        assert_eq!(w.times, times);
        assert_eq!(counts(&w, "diagnostic-data", "block"), [0, 0, 5, 0, 4]);
        assert_eq!(counts(&w, "none", "pass"), [0, 0, 2, 0, 0]);
        assert_eq!(w.series.len(), 2);
    }

    #[test]
    fn wider_steps_add_up_minutes() {
        let mut t = Timeseries::default();
        for m in 0..10 {
            t.observe(at(m, 0), [("maps", "log", (m + 1) * 2)]);
        }
        let w = t.window(at(9, 0), Duration::from_secs(600), Duration::from_secs(300));
        assert_eq!(w.step, 300);
        assert_eq!(w.times, [1_796_155_200, 1_796_155_500]);
        assert_eq!(counts(&w, "maps", "log"), [10, 10]);
    }

    #[test]
    fn only_24_hours_are_kept() {
        let mut t = Timeseries::default();
        let mut total = 0;
        for m in 0..(KEEP_MINUTES + 100) {
            total += 1;
            t.observe(at(m, 1), [("apps", "log", total)]);
        }
        assert_eq!(t.minutes() as u64, KEEP_MINUTES);
        let w = t.window(
            at(KEEP_MINUTES + 99, 1),
            Duration::from_secs(48 * 3600),
            Duration::from_secs(60),
        );
        assert_eq!(w.times.len() as u64, KEEP_MINUTES);
        assert!(counts(&w, "apps", "log").iter().all(|&n| n == 1));
    }

    #[test]
    fn keys_are_bounded_and_resets_and_strangers_do_not_break_counts() {
        let mut t = Timeseries::default();
        let names: Vec<String> = (0..MAX_KEYS + 10).map(|i| format!("list:l{i}")).collect();
        t.observe(at(0, 0), names.iter().map(|n| (n.as_str(), "block", 1)));
        let w = t.window(at(0, 0), Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(w.series.len(), MAX_KEYS);
        assert_eq!(counts(&w, OTHER, "block"), [11]);
        // A counter that went down restarted from zero; an unknown decision is ignored.
        t.observe(at(1, 0), [("list:l0", "block", 4)]);
        t.observe(at(1, 1), [("list:l0", "block", 2), ("list:l0", "maybe", 9)]);
        let w = t.window(at(1, 1), Duration::from_secs(60), Duration::from_secs(60));
        assert_eq!(counts(&w, "list:l0", "block"), [5]);
        assert_eq!(w.series.len(), 1);
    }
}
