//! What needs more than a counter: top names and clients, distinct clients and the last
//! query per deciding area, and names under Microsoft's domains that no catalog area
//! matches. All of it is kept by one task that follows the recent-queries ring
//! ([`Stats::follow`]), so the query path pays nothing for it, and it is locked only by
//! that task and the HTTP handlers, which catch up with the ring before they read
//! ([`Stats::current`]): what they answer is never behind the ring.
//!
//! The task looks at the ring's head every [`LOOK_EVERY`] and reads the entries added
//! since its last read once they fill half the ring, or [`FOLLOW_AT_LEAST`] has passed.
//! Large batches are cheaper per entry: the sketches (a few hundred kilobytes) are cold
//! in the CPU's caches after the query path has run, and batches of 5,000 bring them in
//! two and a half times less often than batches of 2,000 (a read every 100 ms at 20,000
//! queries a second): `TopK::offer` fell from 0.87% to 0.55% of the server's CPU (see
//! `bench/load.sh`). An entry the ring dropped
//! before the task saw it (more than half the ring's size arriving within one look:
//! with the default 10,000 entries, above 100,000 queries a second) is counted in
//! `missed`, and the figures below are then over the entries seen.
//!
//! Bounded memory: the top lists are space-saving sketches ([`super::topk`]) of
//! [`TOP_CAPACITY`] entries, kept per (name or client, deciding area, decision) so that
//! `/api/v1/top` can filter by area and decision; distinct clients per area are exact
//! up to [`MAX_CLIENTS_PER_AREA`], then reported as "at least"; uncatalogued names are a
//! sketch of [`UNCATALOGUED_CAPACITY`].
//!
//! The task costs CPU for every query, so it allocates nothing per entry: it reads each
//! into one reused [`Raw`], looks names up in the sketches by their bytes (a name is
//! copied only when it enters a sketch), finds an area by its label slot in a table,
//! and hashes with foldhash under a random seed (query names and client addresses come
//! from clients: a fixed hash would let them flood a bucket).

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use winsink_policy::DomainSuffixes;

use hashbrown::HashSet;

use super::labels::MAX_LABELS;
use super::ring::{Raw, NAME_BYTES};
use super::topk::TopK;
use super::{Decided, Metrics};

/// How often the task looks at the ring's head.
pub(crate) const LOOK_EVERY: Duration = Duration::from_millis(50);
/// The longest the task leaves entries unread.
pub(crate) const FOLLOW_AT_LEAST: Duration = Duration::from_secs(1);
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
    /// The client of the last query: the next from the same client (most are) need not
    /// look it up in `clients` again.
    last_client: Option<IpAddr>,
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
    /// Keyed by [`name_key`]: the deciding label's slot, the decision, the name.
    pub(crate) names: TopK<Vec<u8>>,
    pub(crate) clients: TopK<(IpAddr, u8, Decided)>,
    /// By label slot.
    areas: Box<[Option<AreaSeen>]>,
    /// Keyed by the name's bytes.
    pub(crate) uncatalogued: TopK<Vec<u8>>,
}

impl State {
    /// The figures of the label in `slot`, once a query it decided was seen.
    pub(crate) fn area(&self, slot: usize) -> Option<&AreaSeen> {
        self.areas.get(slot)?.as_ref()
    }
}

/// The key of a name in [`State::names`], written into `buf`: the deciding label's slot,
/// the decision, then the name's bytes.
fn name_key<'a>(buf: &'a mut [u8; NAME_BYTES + 2], label: u8, d: Decided, name: &str) -> &'a [u8] {
    let n = name.len().min(NAME_BYTES);
    buf[0] = label;
    buf[1] = d as u8;
    buf[2..2 + n].copy_from_slice(&name.as_bytes()[..n]);
    &buf[..2 + n]
}

/// A key of [`State::names`] as its label slot, decision and name.
pub(crate) fn split_name_key(key: &[u8]) -> (u8, Decided, Cow<'_, str>) {
    match key {
        [label, d, name @ ..] => (
            *label,
            Decided::from_index(usize::from(*d)),
            String::from_utf8_lossy(name),
        ),
        _ => (0, Decided::Invalid, Cow::Borrowed("")),
    }
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
                areas: (0..MAX_LABELS).map(|_| None).collect(),
                uncatalogued: TopK::new(UNCATALOGUED_CAPACITY),
            }),
        }
    }

    /// The state, for reading.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The state, caught up with `m`'s ring: for the HTTP handlers.
    pub(crate) fn current(&self, m: &Metrics) -> MutexGuard<'_, State> {
        let mut s = self.lock();
        self.catch_up(&mut s, m);
        s
    }

    /// Reads the entries added to `m`'s ring since the last call.
    pub(crate) fn follow(&self, m: &Metrics) {
        self.catch_up(&mut self.lock(), m);
    }

    /// Reads the entries added to `m`'s ring since `s.cursor`. The state is locked for
    /// the whole batch (about a millisecond for 5,000 entries: the HTTP handlers wait
    /// that long at most; the query path never takes this lock).
    fn catch_up(&self, s: &mut State, m: &Metrics) {
        let head = m.ring.head();
        let oldest = head.saturating_sub(m.ring.capacity() as u64);
        let from = s.cursor.max(oldest);
        s.missed += from.saturating_sub(s.cursor);
        s.cursor = head;
        let mut raw = Raw::new();
        let mut key = [0u8; NAME_BYTES + 2];
        for pos in from..head {
            if m.ring.read(pos, &mut raw) {
                self.add(s, &raw, &mut key);
            } else {
                s.missed += 1;
            }
        }
    }

    fn add(&self, s: &mut State, e: &Raw, key: &mut [u8; NAME_BYTES + 2]) {
        s.seen += 1;
        let (ts_us, client, decision) = (e.ts_us(), e.client(), e.decision());
        let label = e.label().min(MAX_LABELS - 1);
        let qname = e.qname();
        s.names
            .offer(name_key(key, label as u8, decision, &qname), ts_us);
        s.clients.offer(&(client, label as u8, decision), ts_us);
        let area = s.areas[label].get_or_insert_with(AreaSeen::default);
        area.last_us = area.last_us.max(ts_us);
        if area.last_client != Some(client) {
            area.last_client = Some(client);
            if area.clients.len() < MAX_CLIENTS_PER_AREA {
                area.clients.insert(client);
            } else if !area.clients.contains(&client) {
                area.clients_capped = true;
            }
        }
        let answered_by_policy = !matches!(decision, Decided::Refuse | Decided::Invalid);
        if answered_by_policy && e.areas().next().is_none() && self.suffixes.contains(&qname) {
            s.uncatalogued.offer(qname.as_bytes(), ts_us);
        }
    }

    /// Follows `m`'s ring until `shutdown`: every [`LOOK_EVERY`] it reads the entries
    /// added since its last read if they fill half the ring or [`FOLLOW_AT_LEAST`] has
    /// passed (see the module docs).
    pub(crate) async fn run(
        m: std::sync::Arc<Metrics>,
        shutdown: tokio_util::sync::CancellationToken,
    ) {
        let mut tick = tokio::time::interval(LOOK_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let half = (m.ring.capacity() as u64 / 2).max(1);
        let mut last = tokio::time::Instant::now();
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                _ = tick.tick() => {}
            }
            let pending = m.ring.head().saturating_sub(m.stats.lock().cursor);
            if pending >= half || (pending > 0 && last.elapsed() >= FOLLOW_AT_LEAST) {
                m.stats.follow(&m);
                last = tokio::time::Instant::now();
            }
        }
    }
}
