//! The answer cache and the single-flight table for forwarded queries.
//!
//! Keys are [`crate::wire::cache_key`]: the case-folded wire name, type, class and the
//! DO/CD bits. Values are [`Reply`]s shared behind an `Arc`; a hit copies the reply's
//! bytes into the client's answer and counts the TTLs down by the seconds since it was
//! stored. The cache is split into shards, each behind its own mutex, so that the UDP
//! sockets served by different cores rarely wait for each other.
//!
//! Eviction is first-in first-out per shard (expired entries go first, as they are met).
//! FIFO needs no bookkeeping on a hit, which keeps hits cheap; with DNS TTLs an old entry
//! is the one most likely to expire soon anyway.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::reply::Reply;

const SHARDS: usize = 16;

/// A bounded map from question to answer.
#[derive(Debug)]
pub(crate) struct Cache {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
    hasher: RandomState,
    /// Entries held, kept beside the shards so that `/metrics` reads it without taking
    /// a shard's lock.
    entries: AtomicUsize,
}

#[derive(Debug, Default)]
struct Shard {
    map: HashMap<Arc<[u8]>, Slot>,
    /// Keys in insertion order, with the generation they were inserted under, so that a
    /// key removed and inserted again is not evicted for its older self.
    order: VecDeque<(Arc<[u8]>, u64)>,
    generation: u64,
}

#[derive(Debug)]
struct Slot {
    reply: Arc<Reply>,
    stored: Instant,
    expires: Instant,
    generation: u64,
}

fn lock(m: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave it inconsistent in a way that matters
    // for a cache; keep serving.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cache {
    /// A cache holding at most `size` answers (0 turns it off).
    pub(crate) fn new(size: usize) -> Self {
        let shards = if size == 0 { 0 } else { SHARDS.min(size) };
        Self {
            shards: (0..shards).map(|_| Mutex::new(Shard::default())).collect(),
            per_shard: if shards == 0 {
                0
            } else {
                size.div_ceil(shards)
            },
            hasher: RandomState::new(),
            entries: AtomicUsize::new(0),
        }
    }

    fn shard(&self, key: &[u8]) -> Option<&Mutex<Shard>> {
        if self.shards.is_empty() {
            return None;
        }
        let h = self.hasher.hash_one(key);
        Some(&self.shards[(h as usize) % self.shards.len()])
    }

    /// The answer for `key` and the whole seconds since it was stored, if it has not
    /// expired.
    pub(crate) fn get(&self, key: &[u8], now: Instant) -> Option<(Arc<Reply>, u32)> {
        let mut shard = lock(self.shard(key)?);
        let slot = shard.map.get(key)?;
        if slot.expires <= now {
            shard.map.remove(key);
            self.entries.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        let elapsed = now.saturating_duration_since(slot.stored).as_secs();
        Some((
            slot.reply.clone(),
            u32::try_from(elapsed).unwrap_or(u32::MAX),
        ))
    }

    /// Stores `reply` under `key` for its lifetime.
    pub(crate) fn insert(&self, key: &[u8], reply: Arc<Reply>, now: Instant) {
        if reply.lifetime == 0 {
            return;
        }
        let Some(shard) = self.shard(key) else {
            return;
        };
        let mut shard = lock(shard);
        let shard = &mut *shard;
        let before = shard.map.len();
        while shard.map.len() >= self.per_shard && !shard.map.contains_key(key) {
            let Some((old, generation)) = shard.order.pop_front() else {
                break;
            };
            if shard
                .map
                .get(&old)
                .is_some_and(|s| s.generation == generation)
            {
                shard.map.remove(&old);
            }
        }
        shard.generation += 1;
        let generation = shard.generation;
        let key: Arc<[u8]> = Arc::from(key);
        shard.order.push_back((key.clone(), generation));
        shard.map.insert(
            key,
            Slot {
                expires: now + Duration::from_secs(u64::from(reply.lifetime)),
                reply,
                stored: now,
                generation,
            },
        );
        let after = shard.map.len();
        if after >= before {
            self.entries.fetch_add(after - before, Ordering::Relaxed);
        } else {
            self.entries.fetch_sub(before - after, Ordering::Relaxed);
        }
        // Keys replaced or expired leave stale order entries behind; drop them before
        // the queue outgrows the map.
        if shard.order.len() > 2 * self.per_shard.max(8) {
            let map = &shard.map;
            shard
                .order
                .retain(|(k, g)| map.get(k).is_some_and(|s| s.generation == *g));
        }
    }

    /// The number of entries (expired ones not yet met included).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).map.len()).sum()
    }

    /// The number of entries, as [`len`](Self::len) but without a lock.
    pub(crate) fn entries(&self) -> usize {
        self.entries.load(Ordering::Relaxed)
    }
}

/// What the leader of a single flight hands its followers.
pub(crate) type Flight = Result<Arc<Reply>, crate::forward::ForwardError>;

type Followers = Vec<oneshot::Sender<Flight>>;

/// Identical queries waiting for one upstream answer.
#[derive(Debug, Default)]
pub(crate) struct Inflight {
    waiting: Mutex<HashMap<Box<[u8]>, Followers>>,
}

/// The outcome of joining a flight.
pub(crate) enum Join<'a> {
    /// No identical query is in flight: this one asks the upstream and must complete the
    /// guard (dropping it unfinished wakes the followers with an error).
    Leader(LeaderGuard<'a>),
    /// An identical query is in flight: wait for its answer.
    Follower(oneshot::Receiver<Flight>),
}

/// Held by the query that asks the upstream for everyone.
pub(crate) struct LeaderGuard<'a> {
    table: &'a Inflight,
    key: Option<Box<[u8]>>,
}

impl Inflight {
    /// Joins the flight for `key`, or starts one.
    pub(crate) fn join(&self, key: &[u8]) -> Join<'_> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(followers) = waiting.get_mut(key) {
            let (tx, rx) = oneshot::channel();
            followers.push(tx);
            return Join::Follower(rx);
        }
        waiting.insert(key.into(), Vec::new());
        Join::Leader(LeaderGuard {
            table: self,
            key: Some(key.into()),
        })
    }
}

impl LeaderGuard<'_> {
    /// Ends the flight, handing `result` to every follower.
    pub(crate) fn complete(mut self, result: &Flight) {
        for tx in self.take() {
            let _ = tx.send(result.clone());
        }
    }

    fn take(&mut self) -> Vec<oneshot::Sender<Flight>> {
        let Some(key) = self.key.take() else {
            return Vec::new();
        };
        let mut waiting = self.table.waiting.lock().unwrap_or_else(|e| e.into_inner());
        waiting.remove(&key).unwrap_or_default()
    }
}

impl Drop for LeaderGuard<'_> {
    fn drop(&mut self) {
        // Followers see their sender dropped and answer SERVFAIL.
        self.take();
    }
}

#[cfg(test)]
mod tests {
    use hickory_proto::op::{Message, OpCode, Query, ResponseCode};
    use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
    use winsink_policy::CacheTtls;

    use super::*;

    fn reply(ttl: u32) -> Arc<Reply> {
        let mut m = Message::response(1, OpCode::Query);
        m.metadata.response_code = ResponseCode::NoError;
        let n = Name::from_ascii("a.example.").unwrap();
        m.add_query(Query::query(n.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(n, ttl, RData::A(A::new(192, 0, 2, 1))));
        Arc::new(
            Reply::from_upstream(m.to_vec().unwrap(), "udp://u".into(), &CacheTtls::default())
                .unwrap(),
        )
    }

    #[test]
    fn hits_until_expiry() {
        let c = Cache::new(10);
        let t0 = Instant::now();
        c.insert(b"k", reply(30), t0);
        let (_, elapsed) = c.get(b"k", t0 + Duration::from_secs(12)).unwrap();
        assert_eq!(elapsed, 12);
        assert_eq!(c.entries(), 1);
        assert!(c.get(b"k", t0 + Duration::from_secs(30)).is_none());
        assert_eq!(c.entries(), 0, "an expired entry met is gone");
        assert!(c.get(b"other", t0).is_none());
    }

    #[test]
    fn stays_within_its_size() {
        let c = Cache::new(32);
        let t0 = Instant::now();
        for i in 0..1000u32 {
            c.insert(&i.to_be_bytes(), reply(300), t0);
        }
        assert!(c.len() <= 32, "{}", c.len());
        assert_eq!(
            c.entries(),
            c.len(),
            "the lock-free count follows the shards"
        );
        assert!(c.get(&999u32.to_be_bytes(), t0).is_some());
        let off = Cache::new(0);
        off.insert(b"k", reply(300), t0);
        assert!(off.get(b"k", t0).is_none());
    }

    #[tokio::test]
    async fn followers_get_the_leaders_answer() {
        let table = Inflight::default();
        let Join::Leader(guard) = table.join(b"k") else {
            panic!("leader")
        };
        let Join::Follower(rx) = table.join(b"k") else {
            panic!("follower")
        };
        guard.complete(&Ok(reply(5)));
        assert!(rx.await.unwrap().is_ok());
        assert!(matches!(table.join(b"k"), Join::Leader(_)));
    }

    #[tokio::test]
    async fn an_abandoned_flight_wakes_its_followers() {
        let table = Inflight::default();
        let guard = table.join(b"k");
        let Join::Follower(rx) = table.join(b"k") else {
            panic!("follower")
        };
        drop(guard);
        assert!(rx.await.is_err());
    }
}
