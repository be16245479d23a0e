//! The compiled trie: nodes packed back to back in one byte arena, found through one
//! open-addressing hash table keyed by the hash of each node's whole name suffix.
//!
//! Node layout at byte offset `o` (the offset is the node's id; the root is at 0):
//!
//! | bytes       | field                                                    |
//! |-------------|----------------------------------------------------------|
//! | `o`         | rule tag: none, one exact id, one `*.` id, both, a set   |
//! | `o+1`       | label length (0 for the root)                            |
//! | `o+2..o+6`  | parent offset, little endian                             |
//! | `o+6..o+10` | payload: the rule id, or an index into the rule sets     |
//! | `o+10..`    | the label, lower case                                    |
//!
//! A table slot is a `u64`: the low 32 bits of the suffix hash as a tag, then the node
//! offset; `0` is an empty slot (no child node lives at offset 0). Probing is linear; the
//! tag spares a node fetch for nearly every slot that is not the one sought.

use crate::name::mix_label;

/// Offset of the root node.
pub(crate) const ROOT: u32 = 0;
const HDR: usize = 10;

pub(crate) const TAG_NONE: u8 = 0;
pub(crate) const TAG_EXACT: u8 = 1;
pub(crate) const TAG_BELOW: u8 = 2;
pub(crate) const TAG_BOTH: u8 = 3;
pub(crate) const TAG_SET: u8 = 4;

/// Slots per node in the final table (load factor 0.7).
const LOAD_NUM: usize = 7;
const LOAD_DEN: usize = 10;

#[inline(always)]
pub(crate) fn slot_index(h: u64, cap: usize) -> usize {
    // Multiply-shift range reduction ("fastrange"): any table size, no modulo.
    (((h >> 32) * cap as u64) >> 32) as usize
}

#[inline(always)]
fn slot_entry(h: u64, node: u32) -> u64 {
    (u64::from(h as u32) << 32) | u64::from(node)
}

#[inline(always)]
fn read_u32(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("four bytes"))
}

#[inline(always)]
pub(crate) fn tag(nodes: &[u8], node: u32) -> u8 {
    nodes[node as usize]
}

#[inline(always)]
pub(crate) fn payload(nodes: &[u8], node: u32) -> u32 {
    read_u32(nodes, node as usize + 6)
}

#[inline(always)]
fn parent(nodes: &[u8], node: u32) -> u32 {
    read_u32(nodes, node as usize + 2)
}

#[inline(always)]
fn label(nodes: &[u8], node: u32) -> &[u8] {
    let o = node as usize;
    let len = nodes[o + 1] as usize;
    &nodes[o + HDR..o + HDR + len]
}

/// The child of `parent` labelled `label` (any ASCII case), whose suffix hash is `h`;
/// `first` is the content of the slot `h` maps to, already loaded by the caller.
#[inline(always)]
pub(crate) fn find_child(
    nodes: &[u8],
    slots: &[u64],
    parent_node: u32,
    h: u64,
    label_bytes: &[u8],
    first: u64,
) -> Option<u32> {
    let want = h as u32;
    let mut i = slot_index(h, slots.len());
    let mut s = first;
    loop {
        if s == 0 {
            return None;
        }
        if (s >> 32) as u32 == want {
            let node = s as u32;
            if parent(nodes, node) == parent_node
                && label(nodes, node).eq_ignore_ascii_case(label_bytes)
            {
                return Some(node);
            }
        }
        i += 1;
        if i == slots.len() {
            i = 0;
        }
        s = slots[i];
    }
}

fn place(slots: &mut [u64], h: u64, node: u32) {
    let mut i = slot_index(h, slots.len());
    while slots[i] != 0 {
        i += 1;
        if i == slots.len() {
            i = 0;
        }
    }
    slots[i] = slot_entry(h, node);
}

/// The trie while rules are inserted; nodes are already in their final layout.
pub(crate) struct TrieBuilder {
    seed: u64,
    nodes: Vec<u8>,
    /// Suffix hash and offset of every node but the root, to rebuild the table.
    hashed: Vec<(u64, u32)>,
    slots: Vec<u64>,
}

impl TrieBuilder {
    pub(crate) fn new(seed: u64, expected_nodes: usize, expected_bytes: usize) -> Self {
        let mut nodes = Vec::with_capacity(HDR + expected_bytes);
        nodes.extend_from_slice(&[TAG_NONE; HDR]);
        Self {
            seed,
            nodes,
            hashed: Vec::with_capacity(expected_nodes),
            slots: vec![0; final_capacity(expected_nodes)],
        }
    }

    /// The node for `suffix` (lower case, `""` for the root), creating it and its
    /// ancestors as needed.
    pub(crate) fn insert(&mut self, suffix: &str) -> u32 {
        let mut node = ROOT;
        if suffix.is_empty() {
            return node;
        }
        let mut h = self.seed;
        for l in suffix.rsplit('.') {
            h = mix_label(h, l.as_bytes());
            node = self.child(node, h, l.as_bytes());
        }
        node
    }

    fn child(&mut self, parent_node: u32, h: u64, l: &[u8]) -> u32 {
        let first = self.slots[slot_index(h, self.slots.len())];
        if let Some(c) = find_child(&self.nodes, &self.slots, parent_node, h, l, first) {
            return c;
        }
        if (self.hashed.len() + 1) * LOAD_DEN > self.slots.len() * LOAD_NUM {
            self.rebuild_table(self.slots.len() * 2);
        }
        let node = u32::try_from(self.nodes.len())
            .expect("the trie arena is limited to 4 GiB (about 200 million names)");
        self.nodes.push(TAG_NONE);
        self.nodes.push(l.len() as u8);
        self.nodes.extend_from_slice(&parent_node.to_le_bytes());
        self.nodes.extend_from_slice(&0u32.to_le_bytes());
        self.nodes.extend_from_slice(l);
        self.hashed.push((h, node));
        place(&mut self.slots, h, node);
        node
    }

    fn rebuild_table(&mut self, cap: usize) {
        self.slots.clear();
        self.slots.resize(cap, 0);
        for &(h, node) in &self.hashed {
            place(&mut self.slots, h, node);
        }
    }

    /// Attaches the rules of `node`.
    pub(crate) fn set_rules(&mut self, node: u32, tag: u8, payload: u32) {
        let o = node as usize;
        self.nodes[o] = tag;
        self.nodes[o + 6..o + 10].copy_from_slice(&payload.to_le_bytes());
    }

    /// Number of nodes, the root included.
    pub(crate) fn node_count(&self) -> usize {
        self.hashed.len() + 1
    }

    /// The arena and a table sized for a 0.7 load factor.
    pub(crate) fn finish(mut self) -> (Vec<u8>, Box<[u64]>) {
        let cap = final_capacity(self.hashed.len());
        if cap != self.slots.len() {
            self.rebuild_table(cap);
        }
        self.nodes.shrink_to_fit();
        (self.nodes, self.slots.into_boxed_slice())
    }
}

fn final_capacity(nodes: usize) -> usize {
    // Never full, so a probe always ends on an empty slot.
    nodes * LOAD_DEN / LOAD_NUM + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(nodes: &[u8], slots: &[u64], seed: u64, name: &str) -> Option<u32> {
        let mut node = ROOT;
        let mut h = seed;
        for l in name.rsplit('.') {
            h = mix_label(h, l.as_bytes());
            let first = slots[slot_index(h, slots.len())];
            node = find_child(nodes, slots, node, h, l.as_bytes(), first)?;
        }
        Some(node)
    }

    #[test]
    fn shares_suffix_nodes_and_finds_them_in_any_case() {
        let mut b = TrieBuilder::new(42, 0, 0);
        let a = b.insert("a.example.com");
        let c = b.insert("c.example.com");
        let ex = b.insert("example.com");
        assert_eq!(b.insert("a.example.com"), a);
        assert_eq!(b.node_count(), 5);
        assert_eq!(b.insert(""), ROOT);
        let (nodes, slots) = b.finish();
        assert_eq!(lookup(&nodes, &slots, 42, "A.Example.COM"), Some(a));
        assert_eq!(lookup(&nodes, &slots, 42, "c.example.com"), Some(c));
        assert_eq!(lookup(&nodes, &slots, 42, "example.com"), Some(ex));
        assert_eq!(lookup(&nodes, &slots, 42, "b.example.com"), None);
        assert_eq!(lookup(&nodes, &slots, 42, "example"), None);
        assert_eq!(parent(&nodes, a), ex);
        assert_eq!(label(&nodes, a), b"a");
    }

    #[test]
    fn survives_table_growth_and_colliding_tags() {
        // A tiny start forces many rebuilds; seed 0 keeps it deterministic.
        let mut b = TrieBuilder::new(0, 0, 0);
        let names: Vec<String> = (0..5000).map(|i| format!("n{i}.d{}.t", i % 37)).collect();
        let ids: Vec<u32> = names.iter().map(|n| b.insert(n)).collect();
        let (nodes, slots) = b.finish();
        for (n, id) in names.iter().zip(ids) {
            assert_eq!(lookup(&nodes, &slots, 0, n), Some(id), "{n}");
            assert_eq!(lookup(&nodes, &slots, 0, &format!("x{n}")), None);
        }
    }
}
