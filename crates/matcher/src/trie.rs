//! The compiled trie: every node is one 24-byte slot of an open-addressing hash table,
//! found by the hash of the node's whole name suffix. A node's id is its slot index.
//!
//! Slot layout (`Slot`):
//!
//! | field     | bits  | content                                                          |
//! |-----------|-------|------------------------------------------------------------------|
//! | `meta`    | 0–27  | slot index of the parent node, [`NO_PARENT`] under the root      |
//! |           | 28    | the label is longer than 16 octets                               |
//! |           | 29–31 | rule tag: none, one exact id, one `*.` id, both, a rule set      |
//! | `payload` | 32    | the rule id, or an index into the rule sets                      |
//! | `label`   | 128   | a label of at most 16 octets, lower case, zero-padded; else its first 12 octets and the offset of the whole label in the long-label arena (`[len][octets]`) |
//!
//! A slot whose `label` starts with 0 is empty (labels never hold a zero octet). Because the
//! suffix hash depends only on the name, a lookup computes the slot of every level first
//! and loads them together; a label of up to 16 octets is then verified, and the node's
//! rules read, without touching any other memory.

use crate::name::mix_label_key;

/// `meta` parent value of the root's children.
pub(crate) const NO_PARENT: u32 = (1 << 28) - 1;
const PARENT_MASK: u32 = NO_PARENT;
const LONG: u32 = 1 << 28;
const TAG_SHIFT: u32 = 29;
/// Labels up to this many octets live inside the slot.
const SHORT: usize = 16;

pub(crate) const TAG_NONE: u8 = 0;
pub(crate) const TAG_EXACT: u8 = 1;
pub(crate) const TAG_BELOW: u8 = 2;
pub(crate) const TAG_BOTH: u8 = 3;
pub(crate) const TAG_SET: u8 = 4;

/// Slots per node in the final table: a load factor of 0.7.
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 10;
/// The most a table is filled while building (a load factor of 0.75) before it grows: an
/// estimate a few percent short costs no rehash.
const MAX_NUM: usize = 3;
const MAX_DEN: usize = 4;
/// Slot indices must stay below [`NO_PARENT`].
const MAX_SLOTS: usize = NO_PARENT as usize - 1;
/// A built table more than 5% larger than the node count needs is fitted to it.
const FIT_NUM: usize = 21;
const FIT_DEN: usize = 20;

/// One trie node.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[repr(C)]
pub(crate) struct Slot {
    meta: u32,
    payload: u32,
    label: [u64; 2],
}

impl Slot {
    #[inline(always)]
    pub(crate) fn rules(&self) -> (u8, u32) {
        ((self.meta >> TAG_SHIFT) as u8, self.payload)
    }
}

#[inline(always)]
pub(crate) fn slot_index(h: u64, cap: usize) -> usize {
    // Multiply-shift range reduction ("fastrange"): any table size, no modulo.
    (((h >> 32) * cap as u64) >> 32) as usize
}

/// The compiled trie.
pub(crate) struct Trie {
    pub(crate) seed: u64,
    pub(crate) slots: Box<[Slot]>,
    /// Labels longer than [`SHORT`] octets: a length octet, then the label.
    long: Box<[u8]>,
    /// Rules of the root, which has no slot.
    pub(crate) root: (u8, u32),
}

impl Trie {
    /// The slot of the child of `parent` labelled `label` (any ASCII case), whose suffix
    /// hash is `h` and whose first two [`label_key`](crate::name::label_key) chunks are `key`.
    #[inline(always)]
    pub(crate) fn find(&self, parent: u32, h: u64, label: &[u8], key: [u64; 2]) -> Option<u32> {
        probe(&self.slots, &self.long, parent, h, label, key).ok()
    }

    /// Reads the first octet of the long label of slot `i`, if any, so that its cache
    /// line is on its way before the comparison needs it.
    #[inline(always)]
    pub(crate) fn touch_long(&self, i: usize) -> u32 {
        let s = &self.slots[i];
        if s.meta & LONG != 0 {
            u32::from(self.long[(s.label[1] >> 32) as usize])
        } else {
            0
        }
    }

    /// Approximate heap bytes owned (for diagnostics).
    pub(crate) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.slots) + self.long.len()
    }
}

/// The root's node id while building (it has no slot).
pub(crate) const ROOT: u32 = NO_PARENT;

/// The trie while rules are inserted, already in its final layout: nodes go straight
/// into the slots they will have in the [`Trie`], so that no node list or lookup table
/// of the build ever sits beside it. Sized from a [`SizeEstimate`](crate::SizeEstimate),
/// the table is the final one from the first node on; without one (or should it prove
/// far too small) it grows by rehashing, and [`TrieBuilder::finish`] then fits it to the
/// node count with one more.
pub(crate) struct TrieBuilder {
    seed: u64,
    slots: Vec<Slot>,
    /// Labels longer than [`SHORT`], as in the [`Trie`]: a length octet, then the label.
    long: Vec<u8>,
    /// Nodes in `slots`.
    nodes: usize,
    root: (u8, u32),
}

impl TrieBuilder {
    /// A trie sized for `expected_nodes` nodes (the root not counted).
    pub(crate) fn new(seed: u64, expected_nodes: usize) -> Self {
        Self {
            seed,
            slots: vec![Slot::default(); capacity(expected_nodes).min(MAX_SLOTS)],
            long: Vec::new(),
            nodes: 0,
            root: (TAG_NONE, 0),
        }
    }

    /// Makes room for `more` new nodes. Should the table have to grow, node ids change:
    /// the returned map gives the new id of every old one ([`remap`]).
    pub(crate) fn make_room(&mut self, more: usize) -> Option<Vec<u32>> {
        let nodes = self.nodes + more;
        assert!(
            nodes < NO_PARENT as usize / 2,
            "a matcher holds at most 130 million trie nodes"
        );
        (nodes * MAX_DEN > self.slots.len() * MAX_NUM).then(|| {
            let cap = capacity(nodes).max(self.slots.len() * 2);
            self.rehash(cap.min(MAX_SLOTS))
        })
    }

    /// The node for `suffix` (lower case, `""` for the root), creating it and its
    /// ancestors as needed; [`TrieBuilder::make_room`] must have been asked for as many
    /// nodes as `suffix` has labels.
    pub(crate) fn insert(&mut self, suffix: &str) -> u32 {
        let mut node = ROOT;
        if suffix.is_empty() {
            return node;
        }
        let mut h = self.seed;
        for l in suffix.rsplit('.') {
            let key;
            (h, key) = mix_label_key(h, l.as_bytes());
            node = match probe(&self.slots, &self.long, node, h, l.as_bytes(), key) {
                Ok(found) => found,
                Err(empty) => self.add(empty, node, l.as_bytes(), key),
            };
        }
        node
    }

    /// Fills empty slot `i` with the child of `parent` labelled `l`.
    fn add(&mut self, i: usize, parent: u32, l: &[u8], key: [u64; 2]) -> u32 {
        let mut meta = parent;
        let mut label = key;
        if l.len() > SHORT {
            meta |= LONG;
            let offset = u32::try_from(self.long.len()).expect("long labels fit in 4 GiB");
            self.long.push(l.len() as u8);
            self.long.extend_from_slice(l);
            label[1] = (label[1] & 0xffff_ffff) | (u64::from(offset) << 32);
        }
        self.slots[i] = Slot {
            meta,
            payload: 0,
            label,
        };
        self.nodes += 1;
        i as u32
    }

    /// Moves every node to a table of `cap` slots; returns the old id → new id map.
    fn rehash(&mut self, cap: usize) -> Vec<u32> {
        let old = std::mem::replace(&mut self.slots, vec![Slot::default(); cap]);
        let hashes = self.hashes(&old);
        let mut map = vec![NO_PARENT; old.len()];
        for (i, s) in old.iter().enumerate() {
            if s.label[0] == 0 {
                continue;
            }
            let mut j = slot_index(hashes[i], cap);
            while self.slots[j].label[0] != 0 {
                j = if j + 1 == cap { 0 } else { j + 1 };
            }
            self.slots[j] = *s;
            map[i] = j as u32;
        }
        for s in &mut self.slots {
            let parent = s.meta & PARENT_MASK;
            if s.label[0] != 0 && parent != NO_PARENT {
                s.meta = (s.meta & !PARENT_MASK) | map[parent as usize];
            }
        }
        map
    }

    /// The suffix hash of every node of `slots`, from its label and its parent's hash.
    fn hashes(&self, slots: &[Slot]) -> Vec<u64> {
        let mut hashes = vec![0u64; slots.len()];
        let mut known = vec![false; slots.len()];
        let mut path = Vec::new();
        for i in 0..slots.len() {
            if slots[i].label[0] == 0 {
                continue;
            }
            // Up to the first ancestor already hashed (or the root), then down again.
            let mut n = i as u32;
            while n != NO_PARENT && !known[n as usize] {
                path.push(n);
                n = slots[n as usize].meta & PARENT_MASK;
            }
            let mut h = if n == NO_PARENT {
                self.seed
            } else {
                hashes[n as usize]
            };
            while let Some(n) = path.pop() {
                let s = &slots[n as usize];
                let mut short = [0u8; SHORT];
                short[..8].copy_from_slice(&s.label[0].to_le_bytes());
                short[8..].copy_from_slice(&s.label[1].to_le_bytes());
                let label = if s.meta & LONG != 0 {
                    let at = (s.label[1] >> 32) as usize;
                    &self.long[at + 1..at + 1 + usize::from(self.long[at])]
                } else {
                    let len = short.iter().position(|&b| b == 0).unwrap_or(SHORT);
                    &short[..len]
                };
                h = mix_label_key(h, label).0;
                hashes[n as usize] = h;
                known[n as usize] = true;
            }
        }
        hashes
    }

    /// The rules attached to `node` so far.
    pub(crate) fn rules_of(&self, node: u32) -> (u8, u32) {
        if node == ROOT {
            return self.root;
        }
        self.slots[node as usize].rules()
    }

    /// Rules held inline by nodes (one each, two for [`TAG_BOTH`]); [`TAG_SET`] nodes
    /// are not counted.
    pub(crate) fn inline_rule_count(&self) -> usize {
        let count = |(tag, _): (u8, u32)| match tag {
            TAG_EXACT | TAG_BELOW => 1,
            TAG_BOTH => 2,
            _ => 0,
        };
        count(self.root)
            + self
                .slots
                .iter()
                .filter(|s| s.label[0] != 0)
                .map(|s| count(s.rules()))
                .sum::<usize>()
    }

    /// Attaches the rules of `node`.
    pub(crate) fn set_rules(&mut self, node: u32, tag: u8, payload: u32) {
        if node == ROOT {
            self.root = (tag, payload);
            return;
        }
        let s = &mut self.slots[node as usize];
        s.meta = (s.meta & !(7 << TAG_SHIFT)) | (u32::from(tag) << TAG_SHIFT);
        s.payload = payload;
    }

    /// Number of nodes, the root included.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes + 1
    }

    /// The compiled trie: the table as it is when its size fits the node count (as it
    /// does when sized from an estimate), else fitted by one more rehash.
    pub(crate) fn finish(mut self) -> Trie {
        if self.slots.len() > capacity(self.nodes) * FIT_NUM / FIT_DEN {
            self.rehash(capacity(self.nodes));
        }
        Trie {
            seed: self.seed,
            slots: self.slots.into_boxed_slice(),
            long: self.long.into_boxed_slice(),
            root: self.root,
        }
    }
}

/// The new id of `node` after a rehash that returned `map`.
pub(crate) fn remap(map: &[u32], node: u32) -> u32 {
    if node == ROOT {
        node
    } else {
        map[node as usize]
    }
}

/// The slot of the child of `parent` labelled `label`, or the empty slot where it
/// belongs. `h` is the child's suffix hash, `key` its label's first two chunks.
#[inline(always)]
fn probe(
    slots: &[Slot],
    long: &[u8],
    parent: u32,
    h: u64,
    label: &[u8],
    key: [u64; 2],
) -> Result<u32, usize> {
    let is_long = label.len() > SHORT;
    let want = parent | if is_long { LONG } else { 0 };
    let mut i = slot_index(h, slots.len());
    loop {
        let s = &slots[i];
        if s.label[0] == 0 {
            return Err(i);
        }
        if s.meta & (PARENT_MASK | LONG) == want && s.label[0] == key[0] {
            let found = if is_long {
                s.label[1] as u32 == key[1] as u32
                    && long_eq(long, (s.label[1] >> 32) as usize, label)
            } else {
                s.label[1] == key[1]
            };
            if found {
                return Ok(i as u32);
            }
        }
        i += 1;
        if i == slots.len() {
            i = 0;
        }
    }
}

fn long_eq(long: &[u8], at: usize, label: &[u8]) -> bool {
    let len = long[at] as usize;
    len == label.len() && long[at + 1..at + 1 + len].eq_ignore_ascii_case(label)
}

fn capacity(nodes: usize) -> usize {
    // Never full, so a probe always ends on an empty slot.
    nodes * LOAD_DEN / LOAD_NUM + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(t: &Trie, name: &str) -> Option<u32> {
        let mut node = NO_PARENT;
        let mut h = t.seed;
        for l in name.rsplit('.') {
            let (h2, key) = mix_label_key(h, l.as_bytes());
            h = h2;
            node = t.find(node, h, l.as_bytes(), key)?;
        }
        Some(node)
    }

    fn insert(b: &mut TrieBuilder, suffix: &str) -> u32 {
        b.make_room(suffix.split('.').count());
        b.insert(suffix)
    }

    #[test]
    fn shares_suffix_nodes_and_finds_them_in_any_case() {
        // Room for every node from the start: node ids do not change.
        let mut b = TrieBuilder::new(42, 16);
        let a = insert(&mut b, "a.example.com");
        b.set_rules(a, TAG_EXACT, 11);
        let long = insert(&mut b, "a-rather-long-label-indeed.example.com");
        b.set_rules(long, TAG_BELOW, 12);
        insert(&mut b, "c.example.com");
        let medium = insert(&mut b, "medium-label-x.example.com");
        assert_eq!(insert(&mut b, "a.example.com"), a);
        assert_eq!(b.node_count(), 7);
        assert_eq!(b.insert(""), ROOT);
        let t = b.finish();
        let a = lookup(&t, "A.Example.COM").unwrap();
        assert_eq!(t.slots[a as usize].rules(), (TAG_EXACT, 11));
        let long = lookup(&t, "a-rather-LONG-label-INDEED.example.com").unwrap();
        assert_eq!(t.slots[long as usize].rules(), (TAG_BELOW, 12));
        let ex = lookup(&t, "example.com").unwrap();
        assert_eq!(t.slots[a as usize].meta & PARENT_MASK, ex);
        assert_eq!(t.slots[ex as usize].rules(), (TAG_NONE, 0));
        assert!(lookup(&t, "c.example.com").is_some());
        assert!(lookup(&t, "MEDIUM-label-x.example.com").is_some());
        let _ = medium;
        for miss in [
            "b.example.com",
            "example",
            "a-rather-long-label-indee.example.com",
            "a-rather-long-label-indeeds.example.com",
            "a-rather-long-label-indeed.example.co",
            "medium-label.example.com",
        ] {
            assert_eq!(lookup(&t, miss), None, "{miss}");
        }
    }

    #[test]
    fn survives_table_growth() {
        let mut b = TrieBuilder::new(0, 0);
        // Rehashed nodes are hashed again from their labels: long ones, short ones, and
        // ones of exactly 8 and 16 octets.
        let names: Vec<String> = (0..5000)
            .map(|i| match i % 4 {
                0 => format!("n{i:05}-a-rather-long-label.d{}.t", i % 37),
                1 => format!("n{i:05}.d{}.t", i % 37),
                2 => format!("n{i:05}-x.d{}.t", i % 37),
                _ => format!("n{i:05}-sixteen!.d{}.t", i % 37).replace('!', "x"),
            })
            .collect();
        for (i, n) in names.iter().enumerate() {
            let node = insert(&mut b, n);
            b.set_rules(node, TAG_EXACT, i as u32);
        }
        let t = b.finish();
        for (i, n) in names.iter().enumerate() {
            let s = lookup(&t, n).unwrap_or_else(|| panic!("{n}"));
            assert_eq!(t.slots[s as usize].rules(), (TAG_EXACT, i as u32));
            assert_eq!(lookup(&t, &format!("x{n}")), None);
        }
    }
}
