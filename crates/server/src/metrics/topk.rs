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
//! The smallest count is found with an indexed binary min-heap of slots, so one update
//! costs one or two lookups of the key and `O(log k)` moves that hash nothing. The sketch is not shared with the query path: the statistics task feeds
//! it from the recent-queries ring.

use std::collections::HashMap;
use std::hash::Hash;

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
}

/// A space-saving sketch.
#[derive(Debug)]
pub(crate) struct TopK<K> {
    capacity: usize,
    /// The kept items, each in a slot of its own for as long as it is kept (an evicted
    /// item's slot takes the new one).
    slots: Vec<Counted<K>>,
    /// A min-heap of slots on their `count`. Moving a slot in the heap touches `pos`
    /// only, never the key map: a sift costs no hashing.
    heap: Vec<u32>,
    /// Slot → its index in `heap`.
    pos: Vec<u32>,
    /// Key → slot.
    at: HashMap<K, u32>,
    /// Items offered.
    seen: u64,
}

impl<K: Clone + Eq + Hash> TopK<K> {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.clamp(1, u32::MAX as usize),
            slots: Vec::new(),
            heap: Vec::new(),
            pos: Vec::new(),
            at: HashMap::new(),
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

    /// Counts one occurrence of `key` at time `now` (any clock the caller likes).
    pub(crate) fn offer(&mut self, key: &K, now: u64) {
        self.seen += 1;
        if let Some(&slot) = self.at.get(key) {
            let c = &mut self.slots[slot as usize];
            c.count += 1;
            c.last = now;
            self.sift_down(self.pos[slot as usize] as usize);
        } else if self.slots.len() < self.capacity {
            let slot = self.slots.len() as u32;
            self.slots.push(Counted {
                key: key.clone(),
                count: 1,
                error: 0,
                first: now,
                last: now,
            });
            self.heap.push(slot);
            self.pos.push(slot);
            self.at.insert(key.clone(), slot);
            self.sift_up(slot as usize);
        } else {
            let slot = self.heap[0];
            let min = self.slots[slot as usize].count;
            let old = std::mem::replace(
                &mut self.slots[slot as usize],
                Counted {
                    key: key.clone(),
                    count: min + 1,
                    error: min,
                    first: now,
                    last: now,
                },
            );
            self.at.remove(&old.key);
            self.at.insert(key.clone(), slot);
            self.sift_down(0);
        }
    }

    /// Every kept item (in no order).
    pub(crate) fn items(&self) -> &[Counted<K>] {
        &self.slots
    }

    fn count_at(&self, i: usize) -> u64 {
        self.slots[self.heap[i] as usize].count
    }

    fn swap(&mut self, a: usize, b: usize) {
        self.heap.swap(a, b);
        self.pos[self.heap[a] as usize] = a as u32;
        self.pos[self.heap[b] as usize] = b as u32;
    }

    fn sift_up(&mut self, mut i: usize) {
        while i > 0 {
            let parent = (i - 1) / 2;
            if self.count_at(parent) <= self.count_at(i) {
                break;
            }
            self.swap(parent, i);
            i = parent;
        }
    }

    fn sift_down(&mut self, mut i: usize) {
        loop {
            let (l, r) = (2 * i + 1, 2 * i + 2);
            let mut smallest = i;
            for c in [l, r] {
                if c < self.heap.len() && self.count_at(c) < self.count_at(smallest) {
                    smallest = c;
                }
            }
            if smallest == i {
                return;
            }
            self.swap(i, smallest);
            i = smallest;
        }
    }
}

#[cfg(test)]
mod tests {
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

    /// The documented bounds hold against exact counts on a skewed stream with far more
    /// distinct items than the capacity.
    #[test]
    fn heavy_hitters_are_kept_and_errors_stay_within_n_over_k() {
        let k = 50;
        let mut t = TopK::new(k);
        let mut exact: HashMap<u32, u64> = HashMap::new();
        // A deterministic skewed stream: item i appears about 10_000 / (i + 1) times,
        // interleaved with 20_000 items seen once.
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
        for s in &stream {
            t.offer(s, 0);
            *exact.entry(*s).or_default() += 1;
        }
        let n = t.seen();
        assert_eq!(n, stream.len() as u64);
        let bound = n / k as u64;
        for c in t.items() {
            let truth = exact[&c.key];
            assert!(c.count >= truth, "{c:?} under-counts {truth}");
            assert!(c.count - c.error <= truth, "{c:?} vs {truth}");
            assert!(c.error <= bound, "{c:?} error above n/k = {bound}");
        }
        for (key, &truth) in &exact {
            if truth > bound {
                assert!(
                    t.items().iter().any(|c| c.key == *key),
                    "{key} seen {truth} > n/k = {bound} times is missing"
                );
            }
        }
    }
}
