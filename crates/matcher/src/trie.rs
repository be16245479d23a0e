//! The compiled trie: every node is one 24-byte slot of an open-addressing hash table,
//! found by the hash of the node's whole name suffix. A node's id is its slot index.
//!
//! Slot layout (`Slot`):
//!
//! | field     | bits  | content                                                          |
//! |-----------|-------|------------------------------------------------------------------|
//! | `meta`    | 0–27  | slot index of the parent node, [`NO_PARENT`] under the root      |
//! |           | 28    | the label is longer than 8 octets                                |
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
        let long = label.len() > SHORT;
        let want = parent | if long { LONG } else { 0 };
        let mut i = slot_index(h, self.slots.len());
        loop {
            let s = &self.slots[i];
            if s.label[0] == 0 {
                return None;
            }
            if s.meta & (PARENT_MASK | LONG) == want && s.label[0] == key[0] {
                let found = if long {
                    s.label[1] as u32 == key[1] as u32
                        && self.long_eq((s.label[1] >> 32) as usize, label)
                } else {
                    s.label[1] == key[1]
                };
                if found {
                    return Some(i as u32);
                }
            }
            i += 1;
            if i == self.slots.len() {
                i = 0;
            }
        }
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

    fn long_eq(&self, at: usize, label: &[u8]) -> bool {
        let len = self.long[at] as usize;
        len == label.len() && self.long[at + 1..at + 1 + len].eq_ignore_ascii_case(label)
    }

    /// Approximate heap bytes owned (for diagnostics).
    pub(crate) fn heap_bytes(&self) -> usize {
        size_of_val(&*self.slots) + self.long.len()
    }
}

/// A node while rules are inserted.
struct Node {
    hash: u64,
    /// The first 16 octets of the label, as in a [`Slot`].
    key: [u64; 2],
    parent: u32,
    /// Offset in `long` when the label is longer than [`SHORT`].
    long_at: u32,
    label_len: u8,
    tag: u8,
    payload: u32,
}

/// The trie while rules are inserted: nodes in creation order (index 0 is the root), so
/// a parent always comes before its children.
pub(crate) struct TrieBuilder {
    seed: u64,
    nodes: Vec<Node>,
    /// Labels longer than [`SHORT`], back to back.
    long: Vec<u8>,
    /// Low half of the node's hash, then the node index; 0 for empty (the root is never
    /// looked up), so that most mismatches are settled without fetching the node.
    table: Vec<u64>,
}

impl TrieBuilder {
    pub(crate) fn new(seed: u64, expected_nodes: usize) -> Self {
        let mut nodes = Vec::with_capacity(expected_nodes + 1);
        nodes.push(Node {
            hash: seed,
            key: [0; 2],
            parent: 0,
            long_at: 0,
            label_len: 0,
            tag: TAG_NONE,
            payload: 0,
        });
        Self {
            seed,
            nodes,
            long: Vec::new(),
            table: vec![0; capacity(expected_nodes)],
        }
    }

    /// The node for `suffix` (lower case, `""` for the root), creating it and its
    /// ancestors as needed.
    pub(crate) fn insert(&mut self, suffix: &str) -> u32 {
        let mut node = 0;
        if suffix.is_empty() {
            return node;
        }
        let mut h = self.seed;
        for l in suffix.rsplit('.') {
            let key;
            (h, key) = mix_label_key(h, l.as_bytes());
            node = self.child(node, h, key, l.as_bytes());
        }
        node
    }

    fn child(&mut self, parent: u32, h: u64, key: [u64; 2], l: &[u8]) -> u32 {
        let tag = u64::from(h as u32) << 32;
        let mut i = slot_index(h, self.table.len());
        loop {
            let e = self.table[i];
            if e == 0 {
                break;
            }
            if e & !0xffff_ffff == tag {
                let n = e as u32;
                let node = &self.nodes[n as usize];
                if node.hash == h
                    && node.parent == parent
                    && node.key == key
                    && usize::from(node.label_len) == l.len()
                    && (l.len() <= SHORT || self.long_label(node) == l)
                {
                    return n;
                }
            }
            i += 1;
            if i == self.table.len() {
                i = 0;
            }
        }
        let n = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&n| n < NO_PARENT / 2)
            .expect("a matcher holds at most 130 million trie nodes");
        let long_at = if l.len() > SHORT {
            let at = u32::try_from(self.long.len()).expect("long labels fit in 4 GiB");
            self.long.extend_from_slice(l);
            at
        } else {
            0
        };
        self.nodes.push(Node {
            hash: h,
            key,
            parent,
            long_at,
            label_len: l.len() as u8,
            tag: TAG_NONE,
            payload: 0,
        });
        self.table[i] = tag | u64::from(n);
        if self.nodes.len() * LOAD_DEN > self.table.len() * LOAD_NUM {
            self.grow();
        }
        n
    }

    fn long_label(&self, node: &Node) -> &[u8] {
        &self.long[node.long_at as usize..node.long_at as usize + usize::from(node.label_len)]
    }

    fn grow(&mut self) {
        let cap = self.table.len() * 2;
        self.table.clear();
        self.table.resize(cap, 0);
        for (n, node) in self.nodes.iter().enumerate().skip(1) {
            let mut i = slot_index(node.hash, cap);
            while self.table[i] != 0 {
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
            self.table[i] = (u64::from(node.hash as u32) << 32) | n as u64;
        }
    }

    /// The rules attached to `node` so far.
    pub(crate) fn rules_of(&self, node: u32) -> (u8, u32) {
        let n = &self.nodes[node as usize];
        (n.tag, n.payload)
    }

    /// Rules held inline by nodes (one each, two for [`TAG_BOTH`]); [`TAG_SET`] nodes
    /// are not counted.
    pub(crate) fn inline_rule_count(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match n.tag {
                TAG_EXACT | TAG_BELOW => 1,
                TAG_BOTH => 2,
                _ => 0,
            })
            .sum()
    }

    /// Attaches the rules of `node`.
    pub(crate) fn set_rules(&mut self, node: u32, tag: u8, payload: u32) {
        let n = &mut self.nodes[node as usize];
        n.tag = tag;
        n.payload = payload;
    }

    /// Number of nodes, the root included.
    pub(crate) fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Lays every node out in its final slot. Parents come first, so each child finds
    /// its parent's slot already known.
    pub(crate) fn finish(mut self) -> Trie {
        // The lookup table is done with: free it before the slots are laid out.
        self.table = Vec::new();
        let cap = capacity(self.nodes.len() - 1);
        let mut slots = vec![Slot::default(); cap].into_boxed_slice();
        let mut long = Vec::new();
        let mut at = vec![NO_PARENT; self.nodes.len()];
        for (n, node) in self.nodes.iter().enumerate().skip(1) {
            let mut i = slot_index(node.hash, cap);
            while slots[i].label[0] != 0 {
                i += 1;
                if i == cap {
                    i = 0;
                }
            }
            at[n] = i as u32;
            let mut meta = at[node.parent as usize] | (u32::from(node.tag) << TAG_SHIFT);
            let mut label = node.key;
            if usize::from(node.label_len) > SHORT {
                meta |= LONG;
                let offset = u32::try_from(long.len()).expect("long labels fit in 4 GiB");
                long.push(node.label_len);
                long.extend_from_slice(self.long_label(node));
                label[1] = (label[1] & 0xffff_ffff) | (u64::from(offset) << 32);
            }
            slots[i] = Slot {
                meta,
                payload: node.payload,
                label,
            };
        }
        let root = &self.nodes[0];
        Trie {
            seed: self.seed,
            slots,
            long: long.into_boxed_slice(),
            root: (root.tag, root.payload),
        }
    }
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

    #[test]
    fn shares_suffix_nodes_and_finds_them_in_any_case() {
        let mut b = TrieBuilder::new(42, 0);
        let a = b.insert("a.example.com");
        b.set_rules(a, TAG_EXACT, 11);
        let long = b.insert("a-rather-long-label-indeed.example.com");
        b.set_rules(long, TAG_BELOW, 12);
        b.insert("c.example.com");
        let medium = b.insert("medium-label-x.example.com");
        assert_eq!(b.insert("a.example.com"), a);
        assert_eq!(b.node_count(), 7);
        assert_eq!(b.insert(""), 0);
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
        let names: Vec<String> = (0..5000)
            .map(|i| format!("n{i}-long-label.d{}.t", i % 37))
            .collect();
        for (i, n) in names.iter().enumerate() {
            let node = b.insert(n);
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
