//! What needs more than a counter: top names and clients, distinct clients and the last
//! query per deciding area, and names under Microsoft's domains that no catalog area
//! matches. All of it is kept by one task that follows the recent-queries ring
//! ([`Stats::follow`], every [`FOLLOW_EVERY`]), so the query path pays nothing for it,
//! and it is locked only by that task and the HTTP handlers.
//!
//! The task reads every entry the ring still holds since its last look. An entry the
//! ring dropped before the task saw it (more than the ring's size between two looks:
//! with the default 10,000 entries and a look every 100 ms, above 100,000 queries a
//! second) is counted in `missed`, and the figures below are then over the entries seen.
//!
//! Bounded memory: the top lists are space-saving sketches ([`super::topk`]) of
//! [`TOP_CAPACITY`] entries, kept per (name or client, deciding area, decision) so that
//! `/api/v1/top` can filter by area and decision; distinct clients per area are exact
//! up to [`MAX_CLIENTS_PER_AREA`], then reported as "at least"; uncatalogued names are a
//! sketch of [`UNCATALOGUED_CAPACITY`].

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use winsink_policy::DomainSuffixes;

use super::labels::MAX_LABELS;
use super::ring::Entry;
use super::topk::TopK;
use super::{Decided, Metrics};

/// How often the task looks at the ring.
pub(crate) const FOLLOW_EVERY: Duration = Duration::from_millis(100);
/// Entries of each top-k sketch.
pub(crate) const TOP_CAPACITY: usize = 4096;
/// Distinct clients counted exactly per area.
pub(crate) const MAX_CLIENTS_PER_AREA: usize = 4096;
/// Entries of the uncatalogued-names sketch.
pub(crate) const UNCATALOGUED_CAPACITY: usize = 1024;

/// One area's (deciding label's) extra figures.
#[derive(Debug, Default)]
pub(crate) struct AreaSeen {
    pub(crate) clients: HashSet<IpAddr>,
    /// More distinct clients than [`MAX_CLIENTS_PER_AREA`] were seen.
    pub(crate) clients_capped: bool,
    /// Microseconds since the Unix epoch of the last query.
    pub(crate) last_us: u64,
}

/// The task's state.
#[derive(Debug)]
pub(crate) struct State {
    /// The next ring position to read.
    cursor: u64,
    /// Entries the ring dropped before they were read.
    pub(crate) missed: u64,
    /// Entries read.
    pub(crate) seen: u64,
    pub(crate) names: TopK<(Box<str>, u8, Decided)>,
    pub(crate) clients: TopK<(IpAddr, u8, Decided)>,
    pub(crate) areas: HashMap<usize, AreaSeen>,
    pub(crate) uncatalogued: TopK<Box<str>>,
}

/// The statistics and the suffixes that make a name Microsoft's.
#[derive(Debug)]
pub(crate) struct Stats {
    suffixes: DomainSuffixes,
    state: Mutex<State>,
}

impl Stats {
    pub(crate) fn new(suffixes: &[String]) -> Self {
        Self {
            suffixes: DomainSuffixes::new(suffixes),
            state: Mutex::new(State {
                cursor: 0,
                missed: 0,
                seen: 0,
                names: TopK::new(TOP_CAPACITY),
                clients: TopK::new(TOP_CAPACITY),
                areas: HashMap::new(),
                uncatalogued: TopK::new(UNCATALOGUED_CAPACITY),
            }),
        }
    }

    /// The state, for reading.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Reads the entries added to `m`'s ring since the last call.
    pub(crate) fn follow(&self, m: &Metrics) {
        let head = m.ring.head();
        let oldest = head.saturating_sub(m.ring.capacity() as u64);
        // Copy out first: the lock is not held while reading the ring.
        let from = self.lock().cursor.max(oldest);
        let mut entries = Vec::with_capacity((head - from) as usize);
        for pos in from..head {
            if let Some(e) = m.ring.get(pos) {
                entries.push(e);
            }
        }
        let mut s = self.lock();
        s.missed += from.saturating_sub(s.cursor) + (head - from) - entries.len() as u64;
        s.cursor = head;
        for e in &entries {
            self.add(&mut s, e);
        }
    }

    fn add(&self, s: &mut State, e: &Entry) {
        s.seen += 1;
        let label = e.label.min(MAX_LABELS - 1) as u8;
        s.names
            .offer(&(e.qname.as_str().into(), label, e.decision), e.ts_us);
        s.clients.offer(&(e.client, label, e.decision), e.ts_us);
        let area = s.areas.entry(e.label).or_default();
        area.last_us = area.last_us.max(e.ts_us);
        if area.clients.len() < MAX_CLIENTS_PER_AREA {
            area.clients.insert(e.client);
        } else if !area.clients.contains(&e.client) {
            area.clients_capped = true;
        }
        let answered_by_policy = !matches!(e.decision, Decided::Refuse | Decided::Invalid);
        if answered_by_policy && e.areas.is_empty() && self.suffixes.contains(&e.qname) {
            s.uncatalogued.offer(&e.qname.as_str().into(), e.ts_us);
        }
    }

    /// Follows `m`'s ring every [`FOLLOW_EVERY`] until `shutdown`.
    pub(crate) async fn run(
        m: std::sync::Arc<Metrics>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(FOLLOW_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            if m.ring.head() != m.stats.lock().cursor {
                m.stats.follow(&m);
            }
        }
    }
}
