//! Top-k with bounded memory: the space-saving algorithm (Metwally, Agrawal and El
//! Abbadi, "Efficient computation of frequent and top-k elements in data streams", 2005).
//!
//! A [`TopK`] of capacity `k` keeps at most `k` items, each with a count and an error.
//! A new item, when the table is full, replaces the item with the smallest count `m`
//! and starts at `m + 1` with error `m`. Over a stream of `n` items:
//!
//! - every count over-estimates by at most its error: `count - error <= true <= count`;
//! - every error is at most `n / k`, so any item seen more than `n / k` times is kept,
//!   and the top of the table is exact for items well above that line.
//!
//! The smallest count is found with an indexed min-heap of slots, 16 children to a node
//! (three levels for 4,096 items), so one update costs one lookup of the key and a sift
//! of `O(log k)` moves that hash nothing. The sketch is not
//! shared with the query path: the statistics task feeds it from the recent-queries ring,
//! one offer per query, so an offer allocates nothing once the table is full: a key is
//! looked up in its borrowed form (a name as the bytes the ring holds) and an evicted
//! item's key is overwritten in place ([`ToOwned::clone_into`]). Keys are hashed with
//! foldhash under a random per-process seed: query names come from clients, and a fixed
//! hash (FxHash) would let one flood a bucket.

use std::borrow::Borrow;
use std::hash::{BuildHasher, Hash};

use hashbrown::{DefaultHashBuilder, HashTable};

/// Children per node of the heap. With more distinct keys than the capacity every offer
/// evicts the root and sifts its successor down to a leaf: in a binary heap that is a
/// dozen levels of two unpredictable comparisons and scattered reads (the statistics
/// task spent 200 ns an offer there); 16 children (four cache lines, scanned in order)
/// make it three levels and halve the cost of an offer.
const ARITY: usize = 16;

/// One kept item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Counted<K> {
    pub(crate) key: K,
    /// Upper bound of the true count.
    pub(crate) count: u64,
    /// How much `count` may exceed the true count.
    pub(crate) error: u64,
    /// The `now` of the offer that put it in the table.
    pub(crate) first: u64,
    /// The `now` of its last offer.
    pub(crate) last: u64,
    /// The key's hash, beside it so that the table never hashes a key again.
    hash: u64,
}

/// A space-saving sketch.
#[derive(Debug)]
pub(crate) struct TopK<K> {
    capacity: usize,
    /// The kept items, each in a slot of its own for as long as it is kept (an evicted
    /// item's slot takes the new one).
    slots: Vec<Counted<K>>,
    /// A min-heap of slots on their `count`, each with a copy of its count so that a
    /// sift reads the heap only. Moving a slot in the heap touches `pos` only, never the
    /// key table: a sift costs no hashing.
    heap: Vec<(u64, u32)>,
    /// Slot → its index in `heap`.
    pos: Vec<u32>,
    /// Key → slot: the slots, found by their key's hash.
    at: HashTable<u32>,
    hasher: DefaultHashBuilder,
    /// Items offered.
    seen: u64,
}

impl<K> TopK<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.clamp(1, u32::MAX as usize),
            slots: Vec::new(),
            heap: Vec::new(),
            pos: Vec::new(),
            at: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
            seen: 0,
        }
    }

    /// Items offered so far (`n` of the error bound).
    pub(crate) fn seen(&self) -> u64 {
        self.seen
    }

    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Every kept item (in no order).
    pub(crate) fn items(&self) -> &[Counted<K>] {
        &self.slots
    }

    /// Counts one occurrence of `key` at time `now` (any clock the caller likes). `key`
    /// is the borrowed form of the keys kept (`[u8]` for `Vec<u8>`): it is copied only
    /// when it enters the table.
    pub(crate) fn offer<Q>(&mut self, key: &Q, now: u64)
    where
        K: Borrow<Q>,
        Q: ?Sized + Hash + Eq + ToOwned<Owned = K>,
    {
        self.seen += 1;
        let hash = self.hasher.hash_one(key);
        let slots = &self.slots;
        if let Some(&slot) = self
            .at
            .find(hash, |&s| slots[s as usize].key.borrow() == key)
        {
            let c = &mut self.slots[slot as usize];
            c.count += 1;
            c.last = now;
            let i = self.pos[slot as usize] as usize;
            self.heap[i].0 = c.count;
            self.sift_down(i);
        } else if self.slots.len() < self.capacity {
            let slot = self.slots.len() as u32;
            self.slots.push(Counted {
                key: key.to_owned(),
                count: 1,
                error: 0,
                first: now,
                last: now,
                hash,
            });
            self.heap.push((1, slot));
            self.pos.push(slot);
            let slots = &self.slots;
            self.at
                .insert_unique(hash, slot, |&s| slots[s as usize].hash);
            self.sift_up(slot as usize);
        } else {
            self.evict_for(key, hash, now);
        }
    }

    /// The space-saving step: the item with the smallest count gives its slot to `key`.
    fn evict_for<Q>(&mut self, key: &Q, hash: u64, now: u64)
    where
        K: Borrow<Q>,
        Q: ?Sized + ToOwned<Owned = K>,
    {
        let slot = self.heap[0].1;
        let old_hash = self.slots[slot as usize].hash;
        if let Ok(entry) = self.at.find_entry(old_hash, |&s| s == slot) {
            entry.remove();
        }
        let c = &mut self.slots[slot as usize];
        key.clone_into(&mut c.key);
        let min = c.count;
        (c.count, c.error, c.first, c.last, c.hash) = (min + 1, min, now, now, hash);
        self.heap[0].0 = min + 1;
        let slots = &self.slots;
        self.at
            .insert_unique(hash, slot, |&s| slots[s as usize].hash);
        self.sift_down(0);
    }

    fn count_at(&self, i: usize) -> u64 {
        self.heap[i].0
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a].1 as usize] = a as u32;
        self.pos[self.heap[b].1 as usize] = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / ARITY;
            if self.count_at(parent) <= self.count_at(i) {
                break;
            }
            self.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        let count = self.heap[i].0;
        loop {
            let first = ARITY * i + 1;
            let children = self.heap.get(first..(first + ARITY).min(self.heap.len()));
            let Some((k, &(least, _))) = children
                .unwrap_or_default()
                .iter()
                .enumerate()
                .min_by_key(|(_, c)| c.0)
            else {
                return;
            };
            if least >= count {
                return;
            }
            self.swap(i, first + k);
            i = first + k;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn counts_are_exact_while_everything_fits() {
        let mut t = TopK::new(10);
        for k in ["a", "b", "a", "c", "a", "b"] {
            t.offer(&k, 0);
        }
        let mut got: Vec<(&str, u64, u64)> = t
            .items()
            .iter()
            .map(|c| (c.key, c.count, c.error))
            .collect();
        got.sort();
        assert_eq!(got, [("a", 3, 0), ("b", 2, 0), ("c", 1, 0)]);
    }

    /// A deterministic skewed stream: item i appears about 10_000 / (i + 1) times,
    /// interleaved with 20_000 items seen once.
    fn skewed_stream() -> Vec<u32> {
        let mut stream = Vec::new();
        for i in 0..200u32 {
            for _ in 0..(10_000 / (i + 1)) {
                stream.push(i);
            }
        }
        stream.extend(1000..21_000u32);
        let mut x: u64 = 12345;
        for i in (1..stream.len()).rev() {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            stream.swap(i, (x >> 33) as usize % (i + 1));
        }
        stream
    }

    /// The documented bounds, against exact counts, of a sketch of `k` fed `stream`.
    fn assert_bounds<K: Clone + Eq + Hash + std::fmt::Debug>(
        t: &TopK<K>,
        k: usize,
        exact: &HashMap<K, u64>,
    ) {
        let n = t.seen();
        assert_eq!(n, exact.values().sum::<u64>());
        for (i, &(count, slot)) in t.heap.iter().enumerate() {
            assert_eq!(
                count, t.slots[slot as usize].count,
                "the heap's copy of a count"
            );
            assert_eq!(t.pos[slot as usize] as usize, i);
            assert!(i == 0 || t.heap[(i - 1) / ARITY].0 <= count, "a min-heap");
        }
        let bound = n / k as u64;
        for c in t.items() {
            let truth = exact[&c.key];
            assert!(c.count >= truth, "{c:?} under-counts {truth}");
            assert!(c.count - c.error <= truth, "{c:?} vs {truth}");
            assert!(c.error <= bound, "{c:?} error above n/k = {bound}");
        }
        for (key, &truth) in exact {
            if truth > bound {
                assert!(
                    t.items().iter().any(|c| c.key == *key),
                    "{key:?} seen {truth} > n/k = {bound} times is missing"
                );
            }
        }
    }

    /// The documented bounds hold against exact counts on a skewed stream with far more
    /// distinct items than the capacity.
    #[test]
    fn heavy_hitters_are_kept_and_errors_stay_within_n_over_k() {
        let k = 50;
        let mut t = TopK::new(k);
        let mut exact: HashMap<u32, u64> = HashMap::new();
        for s in &skewed_stream() {
            t.offer(s, 0);
            *exact.entry(*s).or_default() += 1;
        }
        assert_eq!(t.items().len(), k);
        assert_bounds(&t, k, &exact);
    }

    /// Keys offered borrowed (as the statistics task offers names: bytes of the ring's
    /// copy) count as their owned form, also across evictions that reuse a slot's key.
    #[test]
    fn borrowed_keys_count_as_their_owned_form_across_evictions() {
        let k = 50;
        let mut t: TopK<Vec<u8>> = TopK::new(k);
        let mut exact: HashMap<Vec<u8>, u64> = HashMap::new();
        for s in &skewed_stream() {
            // Names of different lengths, so that a reused key buffer grows and shrinks.
            let name = format!("{}{s}.example", "x".repeat(*s as usize % 7));
            t.offer(name.as_bytes(), 0);
            *exact.entry(name.into_bytes()).or_default() += 1;
        }
        assert_bounds(&t, k, &exact);
        let mut keys: Vec<&Vec<u8>> = t.items().iter().map(|c| &c.key).collect();
        keys.sort();
        keys.dedup();
        assert_eq!(keys.len(), k, "every slot holds a key of its own");
        assert_eq!(t.at.len(), k, "an evicted key leaves the table");
    }
}
