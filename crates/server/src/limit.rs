//! Per-client budgets: the optional query rate limit (`[server] ratelimit_qps`) and the
//! cap on query-log lines for malformed packets.
//!
//! A budget is a count per client per second, kept in a fixed table of atomic slots
//! indexed by a hash of the client's address (IPv4 whole, IPv6 cut to a prefix, /56 by
//! default for the rate limit: one site's addresses are one client). Nothing is
//! allocated and nothing locked per query, and a flood from many source addresses
//! cannot grow the table; the price is that two clients whose addresses hash alike share
//! a budget (4,096 slots: rare among a lab's clients).
//!
//! Queries over the rate are answered REFUSED, or with TC=1 and no records ("slip":
//! a real client retries over TCP, where its address is not spoofed), or dropped; they
//! leave no query-log line. Both budgets say what they held back in one WARN at most
//! every [`TOLD_EVERY`].

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub(crate) use winsink_policy::RateLimitAction;

/// Shortest interval between two WARNs of one budget.
pub(crate) const TOLD_EVERY: Duration = Duration::from_secs(10);
/// Query-log lines for malformed packets per client per second.
pub(crate) const MALFORMED_LINES_PER_SECOND: u32 = 10;

const SLOTS: usize = 4096;

/// When a summary of what was held back or refused may next be said: at most once
/// every [`TOLD_EVERY`], by whichever thread claims it first (the rate limiter's and the
/// TCP registry's WARNs).
#[derive(Debug, Default)]
pub(crate) struct TellEvery {
    /// Milliseconds since the caller's epoch before which nothing is said.
    next: AtomicU64,
}

impl TellEvery {
    /// Whether the caller may speak now (`now_ms` since its epoch); `true` for exactly one
    /// caller per [`TOLD_EVERY`].
    pub(crate) fn claim(&self, now_ms: u64) -> bool {
        let due = self.next.load(Ordering::Relaxed);
        now_ms >= due
            && self
                .next
                .compare_exchange(
                    due,
                    now_ms + TOLD_EVERY.as_millis() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
    }
}

/// A count per client per second.
#[derive(Debug)]
pub(crate) struct Budget {
    per_second: u32,
    prefix_v6: u8,
    epoch: Instant,
    /// Per slot: the second (high 32 bits) and the count in it (low 32 bits).
    slots: Box<[AtomicU64]>,
    held_back: AtomicU64,
    told: TellEvery,
    /// The last client held back (read only when telling).
    last: Mutex<Option<IpAddr>>,
}

impl Budget {
    pub(crate) fn new(per_second: u32, prefix_v6: u8) -> Self {
        Self {
            per_second: per_second.max(1),
            prefix_v6: prefix_v6.min(128),
            epoch: Instant::now(),
            slots: (0..SLOTS).map(|_| AtomicU64::new(0)).collect(),
            held_back: AtomicU64::new(0),
            told: TellEvery::default(),
            last: Mutex::new(None),
        }
    }

    fn slot(&self, ip: IpAddr) -> &AtomicU64 {
        let key: u128 = match ip.to_canonical() {
            IpAddr::V4(v4) => u128::from(u32::from(v4)),
            IpAddr::V6(v6) => {
                let bits = u128::from(v6);
                let keep = u32::from(self.prefix_v6);
                let masked = if keep == 0 {
                    0
                } else {
                    bits & (u128::MAX << (128 - keep))
                };
                // Apart from every IPv4 key.
                masked ^ (1 << 127)
            }
        };
        // Fibonacci hashing of the folded key.
        let folded = (key as u64) ^ ((key >> 64) as u64);
        let h = folded.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 52;
        &self.slots[h as usize % SLOTS]
    }

    /// Takes one from `ip`'s budget for the second `at` falls in: whether it had one.
    pub(crate) fn take(&self, ip: IpAddr, at: Instant) -> bool {
        let second = at.saturating_duration_since(self.epoch).as_secs() & 0xFFFF_FFFF;
        let slot = self.slot(ip);
        let mut cur = slot.load(Ordering::Relaxed);
        loop {
            let (sec, count) = (cur >> 32, cur & 0xFFFF_FFFF);
            let next = if sec != second {
                (second << 32) | 1
            } else if count < u64::from(self.per_second) {
                cur + 1
            } else {
                self.held_back.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = self.last.try_lock() {
                    *last = Some(ip.to_canonical());
                }
                return false;
            };
            match slot.compare_exchange_weak(cur, next, Ordering::Relaxed, Ordering::Relaxed) {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    /// Says how many were held back since the last time, at most every
    /// [`TOLD_EVERY`]: calls `say` with the count and the last client held back (it
    /// logs; nothing is formatted here, so the query path allocates nothing).
    pub(crate) fn tell(&self, at: Instant, say: impl FnOnce(u64, DisplayIp)) {
        if self.held_back.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = at.saturating_duration_since(self.epoch).as_millis() as u64;
        if !self.told.claim(now) {
            return;
        }
        let n = self.held_back.swap(0, Ordering::Relaxed);
        let last = self.last.lock().ok().and_then(|l| *l);
        say(n, DisplayIp(last));
    }

    /// The budget per client per second.
    pub(crate) fn per_second(&self) -> u32 {
        self.per_second
    }
}

/// A client address for a log line, or `?`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct DisplayIp(Option<IpAddr>);

impl std::fmt::Display for DisplayIp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0 {
            Some(ip) => write!(f, "{ip}"),
            None => f.write_str("?"),
        }
    }
}

/// The rate limit, when `ratelimit_qps` is set.
#[derive(Debug)]
pub(crate) struct RateLimit {
    pub(crate) budget: Budget,
    pub(crate) action: RateLimitAction,
}

/// The engine's budgets.
#[derive(Debug)]
pub(crate) struct Limits {
    pub(crate) rate: Option<RateLimit>,
    pub(crate) malformed_lines: Budget,
}

impl Limits {
    pub(crate) fn new(qps: u32, prefix_v6: u8, action: RateLimitAction) -> Self {
        Self {
            rate: (qps > 0).then(|| RateLimit {
                budget: Budget::new(qps, prefix_v6),
                action,
            }),
            malformed_lines: Budget::new(MALFORMED_LINES_PER_SECOND, 128),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_gets_its_rate_per_second_and_others_theirs() {
        let b = Budget::new(3, 56);
        let t0 = Instant::now();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let other: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| b.take(a, t0)));
        assert!(!b.take(a, t0));
        assert!(b.take(other, t0));
        // The next second, a new budget.
        assert!(b.take(a, t0 + Duration::from_secs(1)));
    }

    #[test]
    fn ipv6_addresses_in_one_prefix_share_a_budget() {
        let b = Budget::new(2, 56);
        let t0 = Instant::now();
        assert!(b.take("2001:db8:0:100::1".parse().unwrap(), t0));
        assert!(b.take("2001:db8:0:1ff::2".parse().unwrap(), t0));
        assert!(!b.take("2001:db8:0:1aa::3".parse().unwrap(), t0));
        assert!(b.take("2001:db8:0:200::1".parse().unwrap(), t0));
    }
}
