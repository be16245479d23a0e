//! Upstream health: whether each upstream answers, said out loud once per change.
//!
//! The forwarder records every exchange's outcome here. An upstream that times out,
//! refuses the connection, or answers SERVFAIL or REFUSED is *down*: one WARN names it
//! and the reason, and for [`HOLD_DOWN`] queries prefer the other upstreams (a prober
//! asks it `. NS` again when the hold is over). The first answer after that is one INFO.
//! A WARN is given at most every [`STATE_LOG_EVERY`] per upstream, so an upstream that
//! flaps cannot flood the log; a return is told exactly when the going down was, and
//! the next line counts the changes not told.
//! Replies that are discarded (a wrong id or question, or malformed bytes) are counted
//! and logged at most every [`DISCARD_LOG_EVERY`] per upstream.
//!
//! Everything on the query path is a relaxed atomic: reading the table costs a query
//! nothing, so `/metrics` and `/readyz` can read it as often as they like
//! ([`UpstreamHealth`]).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::Upstream;

/// How long a failed upstream is passed over while another one is up.
pub(crate) const HOLD_DOWN: Duration = Duration::from_secs(10);
/// Shortest interval between two state-change lines for one upstream.
pub(crate) const STATE_LOG_EVERY: Duration = Duration::from_secs(10);
/// Shortest interval between two "replies discarded" lines for one upstream.
pub(crate) const DISCARD_LOG_EVERY: Duration = Duration::from_secs(60);

/// What winsink last saw of an upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamState {
    /// Not asked yet (the start-up probe has not finished).
    Unknown,
    /// Its last exchange got an answer.
    Up,
    /// Its last exchange failed: timeout, connection refused, SERVFAIL or REFUSED.
    Down,
}

const UNKNOWN: u8 = 0;
const UP: u8 = 1;
const DOWN: u8 = 2;

fn state_of(v: u8) -> UpstreamState {
    match v {
        UP => UpstreamState::Up,
        DOWN => UpstreamState::Down,
        _ => UpstreamState::Unknown,
    }
}

/// Why an exchange with an upstream failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Failure {
    /// No answer within the attempt's share of the budget.
    Timeout(Duration),
    /// ICMP port unreachable (UDP) or a refused TCP connection.
    ConnectionRefused,
    /// The upstream answered SERVFAIL or REFUSED.
    Rcode(&'static str),
    /// Only replies that were discarded (malformed, or for another query) arrived before
    /// the deadline; the text says what the last one was.
    Unusable(String),
    /// Any other network error.
    Network(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Timeout(d) => write!(f, "no answer in {} ms", d.as_millis()),
            Self::ConnectionRefused => f.write_str("connection refused (port unreachable)"),
            Self::Rcode(r) => write!(f, "answers {r}"),
            Self::Unusable(why) => f.write_str(why),
            Self::Network(e) => f.write_str(e),
        }
    }
}

/// One upstream's record. Times are milliseconds since the table's epoch, plus one (0:
/// never).
#[derive(Debug)]
struct Slot {
    upstream: Upstream,
    label: Arc<str>,
    state: AtomicU8,
    last_answer: AtomicU64,
    last_failure: AtomicU64,
    /// When it last went down.
    down_since: AtomicU64,
    answers: AtomicU64,
    failures: AtomicU64,
    discarded: AtomicU64,
    /// Discarded since the last "replies discarded" line.
    discarded_untold: AtomicU64,
    next_discard_log: AtomicU64,
    /// State changes not told because of [`STATE_LOG_EVERY`].
    changes_untold: AtomicU64,
    /// Whether the WARN of its going down was given (then so is the INFO of its return).
    told_down: AtomicBool,
    next_state_log: AtomicU64,
    /// The last failure's reason (written only when an exchange fails).
    reason: Mutex<String>,
}

#[derive(Debug)]
struct Table {
    epoch: Instant,
    slots: Vec<Slot>,
}

/// The health of every upstream, shared by the forwarder (which updates it) and anyone
/// who reports it. Cloning is cheap; reading takes no lock on the query path.
#[derive(Debug, Clone)]
pub struct UpstreamHealth {
    table: Arc<Table>,
}

/// One upstream's health at the moment [`UpstreamHealth::snapshot`] was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamStatus {
    /// The upstream.
    pub upstream: Upstream,
    /// Up, down, or not asked yet.
    pub state: UpstreamState,
    /// When it last answered (any exchange, probes included).
    pub last_answer: Option<Instant>,
    /// When an exchange with it last failed.
    pub last_failure: Option<Instant>,
    /// Exchanges it answered.
    pub answers: u64,
    /// Exchanges that failed.
    pub failures: u64,
    /// Replies discarded: for another query (wrong id or question) or malformed.
    pub discarded: u64,
    /// Why the last failed exchange failed (empty if none did).
    pub last_reason: String,
}

impl UpstreamHealth {
    pub(crate) fn new(upstreams: &[Upstream]) -> Self {
        let slots = upstreams
            .iter()
            .map(|upstream| Slot {
                upstream: upstream.clone(),
                label: upstream.to_string().into(),
                state: AtomicU8::new(UNKNOWN),
                last_answer: AtomicU64::new(0),
                last_failure: AtomicU64::new(0),
                down_since: AtomicU64::new(0),
                answers: AtomicU64::new(0),
                failures: AtomicU64::new(0),
                discarded: AtomicU64::new(0),
                discarded_untold: AtomicU64::new(0),
                next_discard_log: AtomicU64::new(0),
                changes_untold: AtomicU64::new(0),
                told_down: AtomicBool::new(false),
                next_state_log: AtomicU64::new(0),
                reason: Mutex::new(String::new()),
            })
            .collect();
        Self {
            table: Arc::new(Table {
                epoch: Instant::now(),
                slots,
            }),
        }
    }

    /// Every upstream, in the configured order.
    pub fn snapshot(&self) -> Vec<UpstreamStatus> {
        let t = &*self.table;
        t.slots
            .iter()
            .map(|s| UpstreamStatus {
                upstream: s.upstream.clone(),
                state: state_of(s.state.load(Ordering::Relaxed)),
                last_answer: t.instant(s.last_answer.load(Ordering::Relaxed)),
                last_failure: t.instant(s.last_failure.load(Ordering::Relaxed)),
                answers: s.answers.load(Ordering::Relaxed),
                failures: s.failures.load(Ordering::Relaxed),
                discarded: s.discarded.load(Ordering::Relaxed),
                last_reason: s.reason.lock().map(|r| r.clone()).unwrap_or_default(),
            })
            .collect()
    }

    /// Whether any upstream answered within the last `within` (what `/readyz` asks).
    pub fn any_answered_within(&self, within: Duration) -> bool {
        let now = self.table.now_ms();
        let within = within.as_millis() as u64;
        self.table.slots.iter().any(|s| {
            let at = s.last_answer.load(Ordering::Relaxed);
            at != 0 && now.saturating_sub(at) <= within
        })
    }

    /// Upstream `i`'s state.
    pub(crate) fn state(&self, i: usize) -> UpstreamState {
        state_of(self.table.slots[i].state.load(Ordering::Relaxed))
    }

    /// Whether upstream `i` is down and its hold-down has not run out: queries prefer
    /// the others.
    pub(crate) fn held_down(&self, i: usize) -> bool {
        let s = &self.table.slots[i];
        s.state.load(Ordering::Relaxed) == DOWN
            && self
                .table
                .now_ms()
                .saturating_sub(s.last_failure.load(Ordering::Relaxed))
                < HOLD_DOWN.as_millis() as u64
    }

    /// Upstream `i` answered.
    pub(crate) fn answered(&self, i: usize) {
        let t = &*self.table;
        let s = &t.slots[i];
        let now = t.now_ms();
        s.answers.fetch_add(1, Ordering::Relaxed);
        s.last_answer.store(now, Ordering::Relaxed);
        if s.state.load(Ordering::Relaxed) == UP {
            return;
        }
        let old = s.state.swap(UP, Ordering::Relaxed);
        if old != DOWN {
            return;
        }
        // Told exactly when its going down was: the log never leaves an upstream down
        // that answers.
        if s.told_down.swap(false, Ordering::Relaxed) {
            let down_for = now.saturating_sub(s.down_since.load(Ordering::Relaxed));
            info!(
                upstream = %s.label,
                "upstream {} answers again (down for {:.1} s){}",
                s.label,
                down_for as f64 / 1000.0,
                untold(s)
            );
        } else {
            s.changes_untold.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An exchange with upstream `i` failed.
    pub(crate) fn failed(&self, i: usize, why: &Failure) {
        self.record_failure(i, why, true);
    }

    /// Like [`failed`](Self::failed), for a caller that says it itself (the start-up
    /// probe).
    pub(crate) fn failed_quietly(&self, i: usize, why: &Failure) {
        self.record_failure(i, why, false);
    }

    fn record_failure(&self, i: usize, why: &Failure, tell: bool) {
        let t = &*self.table;
        let s = &t.slots[i];
        let now = t.now_ms();
        s.failures.fetch_add(1, Ordering::Relaxed);
        s.last_failure.store(now, Ordering::Relaxed);
        let text = why.to_string();
        if let Ok(mut r) = s.reason.lock() {
            text.clone_into(&mut r);
        }
        let old = s.state.swap(DOWN, Ordering::Relaxed);
        if old == DOWN {
            return;
        }
        s.down_since.store(now, Ordering::Relaxed);
        if !tell {
            // The caller said it: its return is told too.
            s.told_down.store(true, Ordering::Relaxed);
            return;
        }
        if t.may_tell(s, now) {
            s.told_down.store(true, Ordering::Relaxed);
            warn!(
                upstream = %s.label,
                reason = %text,
                "upstream {} is not answering: {text}; other upstreams are preferred for {} s{}",
                s.label,
                HOLD_DOWN.as_secs(),
                untold(s)
            );
        }
    }

    /// Upstream `i` sent a reply that was discarded (`what` says why).
    pub(crate) fn discarded(&self, i: usize, what: &str) {
        let t = &*self.table;
        let s = &t.slots[i];
        s.discarded.fetch_add(1, Ordering::Relaxed);
        s.discarded_untold.fetch_add(1, Ordering::Relaxed);
        let now = t.now_ms();
        let due = s.next_discard_log.load(Ordering::Relaxed);
        if now < due
            || s.next_discard_log
                .compare_exchange(
                    due,
                    now + DISCARD_LOG_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let n = s.discarded_untold.swap(0, Ordering::Relaxed);
        warn!(
            upstream = %s.label,
            discarded = n,
            "upstream {}: {n} {} discarded since the last such line (the last: {what}); next report in {} s at the earliest",
            s.label,
            if n == 1 { "reply" } else { "replies" },
            DISCARD_LOG_EVERY.as_secs()
        );
    }

    /// The upstream's label, `udp://IP:PORT`.
    pub(crate) fn label(&self, i: usize) -> &Arc<str> {
        &self.table.slots[i].label
    }
}

impl Table {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    fn instant(&self, ms: u64) -> Option<Instant> {
        (ms != 0).then(|| self.epoch + Duration::from_millis(ms - 1))
    }

    /// Whether a state-change line may be given for `s` now; if not, it is counted.
    fn may_tell(&self, s: &Slot, now: u64) -> bool {
        let due = s.next_state_log.load(Ordering::Relaxed);
        if now >= due
            && s.next_state_log
                .compare_exchange(
                    due,
                    now + STATE_LOG_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return true;
        }
        s.changes_untold.fetch_add(1, Ordering::Relaxed);
        false
    }
}

/// ` (N earlier state changes not logged)`, or nothing.
fn untold(s: &Slot) -> String {
    match s.changes_untold.swap(0, Ordering::Relaxed) {
        0 => String::new(),
        n => format!(" ({n} earlier state changes not logged)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> UpstreamHealth {
        UpstreamHealth::new(&[
            "udp://192.0.2.1:53".parse().unwrap(),
            "tcp://192.0.2.2:53".parse().unwrap(),
        ])
    }

    #[test]
    fn answers_and_failures_set_the_state_and_counters() {
        let h = table();
        assert_eq!(h.state(0), UpstreamState::Unknown);
        assert!(!h.any_answered_within(Duration::from_secs(60)));
        h.answered(0);
        h.failed(1, &Failure::ConnectionRefused);
        let s = h.snapshot();
        assert_eq!(s[0].state, UpstreamState::Up);
        assert_eq!(s[0].answers, 1);
        assert!(s[0].last_answer.is_some());
        assert_eq!(s[1].state, UpstreamState::Down);
        assert_eq!(s[1].failures, 1);
        assert_eq!(s[1].last_reason, "connection refused (port unreachable)");
        assert!(h.any_answered_within(Duration::from_secs(60)));
        // Just failed: passed over while the hold-down lasts.
        assert!(h.held_down(1));
        assert!(!h.held_down(0));
        h.answered(1);
        assert_eq!(h.state(1), UpstreamState::Up);
        assert!(!h.held_down(1));
        h.discarded(0, "wrong id");
        h.discarded(0, "wrong id");
        assert_eq!(h.snapshot()[0].discarded, 2);
    }

    #[test]
    fn state_changes_past_the_first_in_a_window_are_counted_not_told() {
        let h = table();
        let t = &*h.table;
        let s = &t.slots[0];
        assert!(t.may_tell(s, 1));
        assert!(!t.may_tell(s, 2));
        assert!(!t.may_tell(s, 3));
        assert_eq!(untold(s), " (2 earlier state changes not logged)");
        assert_eq!(untold(s), "");
        assert!(t.may_tell(s, 1 + STATE_LOG_EVERY.as_millis() as u64));
    }
}
