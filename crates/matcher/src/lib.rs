//! Compiled domain-pattern matcher: which rules does a DNS name match?
//!
//! winsink asks this for every query, against the shipped Windows endpoint catalog plus
//! blocklists of up to millions of names. So a lookup is one walk over the name's labels
//! that does not allocate, and a million plain names cost tens of megabytes. The crate
//! knows nothing of DNS messages or async runtimes: names go in as text, rule ids come out.
//!
//! # Pattern syntax
//!
//! | Pattern                            | Matches                                                                       | Does not match                 |
//! |------------------------------------|-------------------------------------------------------------------------------|--------------------------------|
//! | `ctldl.windowsupdate.com`          | exactly that name                                                             | `a.ctldl.windowsupdate.com`    |
//! | `*.wns.windows.com`                | every name strictly below, at any depth: `a.wns.windows.com`, `a.b.wns.windows.com` | `wns.windows.com`        |
//! | `watson.*.microsoft.com`           | `watson.telemetry.microsoft.com`, `watson.events.data.microsoft.com`          | `watson.microsoft.com`         |
//! | `*displaycatalog.mp.microsoft.com` | `displaycatalog.mp.microsoft.com`, `bigdisplaycatalog.mp.microsoft.com`, `a.displaycatalog.mp.microsoft.com` | `displaycatalog2.mp.microsoft.com` |
//! | `www.bing.com*`                    | `www.bing.com`, `www.bing.com.au`, `www.bing.community`                       | `bing.com`                     |
//!
//! - A `*` that is a whole leftmost label followed by a dot (`*.suffix`) means "strictly
//!   below `suffix`"; any other `*` matches any run of characters, dots included, possibly
//!   empty. Both readings are the same thing as a [`globset`] glob built with
//!   `case_insensitive(true)` and `literal_separator(false)`, which is the reference the
//!   property tests hold this matcher to. `*` is the only special character.
//! - Comparison ignores ASCII case on both sides (clients randomise it, "0x20") and one
//!   trailing dot on both sides.
//! - Characters: letters, digits, `-`, `_`, `*` and `.`. `_` is accepted because real
//!   names carry it (`_ldap._tcp.dc.lab`, `_dmarc.example.com`). Labels are 1–63 octets,
//!   names at most 253 (without the trailing dot). Where a hyphen sits is not checked:
//!   published blocklists contain such names.
//! - A pattern written in Unicode is converted to A-labels with IDNA (UTS #46, the `idna`
//!   crate): `*.bücher.example` is stored as `*.xn--bcher-kva.example`. A `*` may not share
//!   a label with non-ASCII characters, as IDNA would encode the star itself. Query names
//!   are compared as they arrive, that is as A-labels.
//! - Rejected patterns give a [`PatternError`] naming the pattern and the reason.
//! - A query name that is not a valid name (empty, an empty label, a label over 63 octets,
//!   over 253 octets, a byte other than letters, digits, `-`, `_`, `*`) matches nothing; it
//!   never panics. A `*` in a query name is an ordinary character, as DNS allows it.
//! - A lookup reports every matching rule: a name may belong to several areas or lists.
//!
//! # How it works
//!
//! Each pattern is split into its *literal suffix*, the trailing labels without a `*`, and
//! what is left. The suffixes form a trie over reversed labels (`com` → `microsoft` →
//! `watson`). A node carries the exact rules (`host`), the "strictly below" rules
//! (`*.suffix`) and, for the rare remaining forms, a small glob over the part of the name
//! left of the suffix (`watson.*` at `microsoft.com`, `www.bing.com*` at the root). A lookup
//! walks down the name's labels from the right and checks the rules of each node it
//! reaches; a node with many globs (16 or more) first asks a compiled [`globset::GlobSet`]
//! whether any of them can match.
//!
//! Memory stays compact because nothing is allocated per rule or per node. Every node is
//! one 24-byte slot of a single open-addressing hash table (load factor 0.7), keyed by the
//! hash of the node's whole name suffix: the slot holds the parent's slot index, the label
//! itself when it has at most 16 octets (else a prefix and an offset into one shared arena
//! of long labels), and the node's rule id inline (nodes with several ids or globs point
//! into rule sets, shared between nodes with the same ids). A million blocklist names take
//! about 36 MiB. Since the hash of a suffix depends only on the name, a lookup computes
//! the slot of every level first and loads them all at once, so the cache misses of a deep
//! name overlap, and a label is then verified without touching any other memory.
//! Validation, lower-casing and hashing work eight octets at a time, on the name as given.
//! The hash is seeded per matcher, so query names cannot be crafted to collide.
//!
//! Building lays each node straight into its slot of that table: nothing of the build
//! (no node list, no second lookup table) sits beside it. A caller that can give the
//! patterns twice counts them first with a [`SizeEstimate`] (a HyperLogLog sketch of the
//! suffixes, 16 KiB), so the table has its final size from the first node on and a
//! build holds no more than the matcher it returns; without one the table grows by
//! rehashing and is fitted to the node count at the end.
//!
//! `cargo bench -p winsink-matcher` measures build time, heap and lookups per second for
//! the catalog plus a million generated names.
//! The daemon's memory and start-up with such a list, beside dnsmasq and Unbound, are
//! measured by `bench/memory.sh` (its header keeps the figures).
//!
//! # Example
//!
//! ```
//! use winsink_matcher::MatcherBuilder;
//!
//! let mut b = MatcherBuilder::new();
//! b.add("*.wns.windows.com", 1)?;
//! b.add("watson.*.microsoft.com", 2)?;
//! b.add("*displaycatalog.mp.microsoft.com", 3)?;
//! b.add("WWW.Bing.com*", 4)?;
//! b.add("wns.windows.com", 5)?;
//! let m = b.build();
//!
//! assert_eq!(m.matches("a.b.WNS.windows.com."), [1]);
//! assert_eq!(m.matches("wns.windows.com"), [5]);
//! assert_eq!(m.matches("watson.events.data.microsoft.com"), [2]);
//! assert_eq!(m.matches("a.displaycatalog.mp.microsoft.com"), [3]);
//! assert_eq!(m.matches("www.bing.com.au"), [4]);
//! assert!(m.matches("example.com").is_empty());
//! assert!(m.matches("not a name.wns.windows.com").is_empty());
//!
//! // The hot path: no allocation, one call per matching rule.
//! let mut hits = 0;
//! m.for_each_match("x.wns.windows.com", |_id| hits += 1);
//! assert_eq!(hits, 1);
//! # Ok::<(), winsink_matcher::PatternError>(())
//! ```
#![warn(missing_docs)]
#![forbid(unsafe_code)]
// Functions past 80 lines (clippy.toml) are split into named steps or say why not; tests may be long.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

mod estimate;
mod name;
mod pattern;
mod trie;
mod wildcard;

use std::collections::HashMap;
use std::fmt;
use std::hash::BuildHasher;

use globset::{Candidate, GlobBuilder, GlobSet, GlobSetBuilder};

pub use crate::estimate::SizeEstimate;
use crate::name::{label, mix_label_key, split, MAX_LABELS};
use crate::pattern::{normalize_into, shape, ShapeKind};
pub use crate::pattern::{normalize_pattern, PatternError, PatternErrorKind};
use crate::trie::{
    remap, slot_index, Trie, TrieBuilder, NO_PARENT, TAG_BELOW, TAG_BOTH, TAG_EXACT, TAG_NONE,
    TAG_SET,
};

/// The caller's identifier for a rule; the matcher reports it back on a match.
pub type RuleId = u32;

/// A node with this many globs gets a [`GlobSet`] prefilter.
const PREFILTER_MIN: usize = 16;
/// Levels whose table slots a lookup loads together.
const BATCH: usize = 8;

/// Collects rules, then compiles them into a [`Matcher`].
///
/// Patterns are validated, normalised and inserted into the trie as they are added, so
/// that the builder never holds the patterns' text (a list of a million names is parsed
/// straight into trie nodes), and [`MatcherBuilder::build`] cannot fail. A node holds its
/// first rule inline; only nodes with several rules, or a glob, keep a side entry until
/// the build groups them into rule sets. [`MatcherBuilder::with_estimate`] sizes the
/// trie from a first pass over the same patterns.
pub struct MatcherBuilder {
    trie: TrieBuilder,
    /// Reused for each pattern's normalised form.
    scratch: String,
    globs: Vec<Box<str>>,
    glob_index: HashMap<Box<str>, u32>,
    /// The rules of nodes marked [`TAG_SET`] while building: nodes with several rules, or a
    /// glob.
    several: Vec<Pending>,
    /// Calls to [`MatcherBuilder::add`] that succeeded.
    added: usize,
}

impl Default for MatcherBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for MatcherBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MatcherBuilder")
            .field("added", &self.added)
            .field("nodes", &self.trie.node_count())
            .finish_non_exhaustive()
    }
}

impl MatcherBuilder {
    /// An empty builder, whose trie grows as rules are added (and is fitted to them by
    /// [`MatcherBuilder::build`]).
    pub fn new() -> Self {
        Self::with_nodes(0)
    }

    /// An empty builder whose trie is laid out from the start in a table of the size that
    /// the patterns `estimate` has counted need, so that building holds no more than the
    /// final matcher (a million names: no node list, no rehash). The same patterns are
    /// then [added](MatcherBuilder::add); should they need many more nodes than
    /// estimated, the trie grows as [`MatcherBuilder::new`]'s does.
    pub fn with_estimate(estimate: &SizeEstimate) -> Self {
        Self::with_nodes(estimate.nodes())
    }

    fn with_nodes(nodes: usize) -> Self {
        let seed = std::collections::hash_map::RandomState::new().hash_one(0x5eed_u64);
        Self {
            trie: TrieBuilder::new(seed, nodes),
            scratch: String::new(),
            globs: Vec::new(),
            glob_index: HashMap::new(),
            several: Vec::new(),
            added: 0,
        }
    }

    /// Adds `pattern` under `id`. The same id may be used for several patterns, and a
    /// pattern may be added under several ids.
    ///
    /// # Panics
    ///
    /// If the rules need more than about 130 million trie nodes (as many names), or more
    /// than 4 GiB of labels longer than 16 octets.
    pub fn add(&mut self, pattern: &str, id: RuleId) -> Result<(), PatternError> {
        let mut text = std::mem::take(&mut self.scratch);
        text.clear();
        let res = normalize_into(pattern, &mut text);
        if res.is_ok() {
            self.insert(&text, id);
            self.added += 1;
        }
        self.scratch = text;
        res
    }

    fn insert(&mut self, normalized: &str, id: RuleId) {
        let s = shape(normalized);
        let labels = if s.suffix.is_empty() {
            0
        } else {
            1 + s.suffix.bytes().filter(|&b| b == b'.').count()
        };
        if let Some(map) = self.trie.make_room(labels) {
            for p in &mut self.several {
                p.node = remap(&map, p.node);
            }
        }
        let node = self.trie.insert(s.suffix);
        let (kind, glob) = match s.kind {
            ShapeKind::Exact => (Kind::Exact, 0),
            ShapeKind::Below => (Kind::Below, 0),
            ShapeKind::Glob(g) => {
                let next = offset(self.globs.len());
                let globs = &mut self.globs;
                let i = *self
                    .glob_index
                    .entry(g.into_boxed_str())
                    .or_insert_with_key(|g| {
                        globs.push(g.clone());
                        next
                    });
                (Kind::Glob, i)
            }
        };
        let new = Pending {
            node,
            kind,
            glob,
            id,
        };
        let inline = |kind| Pending {
            node,
            kind,
            glob: 0,
            id: self.trie.rules_of(node).1,
        };
        match (self.trie.rules_of(node), kind) {
            ((TAG_NONE, _), Kind::Exact) => self.trie.set_rules(node, TAG_EXACT, id),
            ((TAG_NONE, _), Kind::Below) => self.trie.set_rules(node, TAG_BELOW, id),
            ((TAG_EXACT, p), Kind::Exact) | ((TAG_BELOW, p), Kind::Below) if p == id => {}
            ((TAG_BOTH, p), Kind::Exact | Kind::Below) if p == id => {}
            ((TAG_EXACT, p), Kind::Below) | ((TAG_BELOW, p), Kind::Exact) if p == id => {
                self.trie.set_rules(node, TAG_BOTH, id);
            }
            ((TAG_SET, _), _) => self.several.push(new),
            ((tag, _), _) => {
                // A second rule, or a glob: the node's rules move to the side list.
                match tag {
                    TAG_EXACT => self.several.push(inline(Kind::Exact)),
                    TAG_BELOW => self.several.push(inline(Kind::Below)),
                    TAG_BOTH => {
                        self.several.push(inline(Kind::Exact));
                        self.several.push(inline(Kind::Below));
                    }
                    _ => {}
                }
                self.several.push(new);
                self.trie.set_rules(node, TAG_SET, 0);
            }
        }
    }

    /// Number of rules added so far.
    pub fn len(&self) -> usize {
        self.added
    }

    /// Whether no rule was added.
    pub fn is_empty(&self) -> bool {
        self.added == 0
    }

    /// Compiles the rules.
    pub fn build(self) -> Matcher {
        let Self {
            mut trie,
            globs,
            mut several,
            ..
        } = self;
        several.sort_unstable();
        several.dedup();
        let inline_rules = trie.inline_rule_count();

        let mut rules = Rules::default();
        let mut shared: HashMap<(Vec<RuleId>, usize), u32> = HashMap::new();
        for group in several.chunk_by(|a, b| a.node == b.node) {
            let node = group[0].node;
            let n_exact = group.iter().take_while(|p| p.kind == Kind::Exact).count();
            let n_below = group[n_exact..]
                .iter()
                .take_while(|p| p.kind == Kind::Below)
                .count();
            let exact = &group[..n_exact];
            let below = &group[n_exact..n_exact + n_below];
            let glob = &group[n_exact + n_below..];
            let (t, p) = match (exact, below, glob) {
                ([e], [], []) => (TAG_EXACT, e.id),
                ([], [b], []) => (TAG_BELOW, b.id),
                ([e], [b], []) if e.id == b.id => (TAG_BOTH, e.id),
                (_, _, []) => {
                    // Lists often repeat the same combination of ids: store it once.
                    let key: Vec<RuleId> = exact.iter().chain(below).map(|p| p.id).collect();
                    let next = offset(rules.sets.len());
                    let i = *shared.entry((key, n_exact)).or_insert_with(|| {
                        rules.push_set(exact, below, &[], &globs);
                        next
                    });
                    (TAG_SET, i)
                }
                _ => {
                    let i = offset(rules.sets.len());
                    rules.push_set(exact, below, glob, &globs);
                    (TAG_SET, i)
                }
            };
            trie.set_rules(node, t, p);
        }
        let rule_count = inline_rules + several.len();
        drop(several);
        let node_count = trie.node_count();
        let trie = trie.finish();
        rules.ids.shrink_to_fit();
        rules.sets.shrink_to_fit();
        rules.globs.shrink_to_fit();
        Matcher {
            trie,
            rules,
            node_count,
            rule_count,
        }
    }
}

fn offset(n: usize) -> u32 {
    u32::try_from(n).expect("matcher tables are limited to 4 GiB")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Exact,
    Below,
    Glob,
}

/// A rule once its literal suffix is a trie node; sorting groups a node's rules by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    node: u32,
    kind: Kind,
    glob: u32,
    id: RuleId,
}

/// Rules of the nodes that hold more than one id, or any glob.
#[derive(Default)]
struct Rules {
    sets: Vec<RuleSet>,
    ids: Vec<RuleId>,
    globs: Vec<GlobRule>,
    prefilters: Vec<GlobSet>,
}

/// Ranges into [`Rules`] for one node.
struct RuleSet {
    exact: (u32, u32),
    below: (u32, u32),
    globs: (u32, u32),
    /// Index into `prefilters`, or `u32::MAX`.
    prefilter: u32,
    /// Bit `b` is set when some glob can match a name starting with octet `b` (all set
    /// when one starts with `*`): most names skip the globs of the root on one test.
    lead: u128,
}

struct GlobRule {
    /// Lower case; `*` is the only special byte.
    glob: Box<str>,
    id: RuleId,
}

impl Rules {
    fn push_set(
        &mut self,
        exact: &[Pending],
        below: &[Pending],
        glob: &[Pending],
        texts: &[Box<str>],
    ) {
        let mut span = |ps: &[Pending]| {
            let start = offset(self.ids.len());
            self.ids.extend(ps.iter().map(|p| p.id));
            (start, offset(self.ids.len()))
        };
        let exact = span(exact);
        let below = span(below);
        let start = offset(self.globs.len());
        self.globs.extend(glob.iter().map(|p| GlobRule {
            glob: texts[p.glob as usize].clone(),
            id: p.id,
        }));
        let globs = (start, offset(self.globs.len()));
        let prefilter = if glob.len() >= PREFILTER_MIN {
            self.prefilter(&texts_of(glob, texts))
        } else {
            u32::MAX
        };
        let lead = glob.iter().fold(0u128, |m, p| {
            match texts[p.glob as usize].as_bytes().first() {
                Some(&c) if c != b'*' => {
                    m | 1 << c.to_ascii_lowercase() | 1 << c.to_ascii_uppercase()
                }
                _ => u128::MAX,
            }
        });
        self.sets.push(RuleSet {
            exact,
            below,
            globs,
            prefilter,
            lead,
        });
    }

    /// Compiles `globs` into one set. A glob of ours only holds `[a-z0-9_.*-]`, which
    /// globset always accepts; should it not, the node simply goes without a prefilter.
    fn prefilter(&mut self, globs: &[&str]) -> u32 {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            match GlobBuilder::new(g)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
            {
                Ok(g) => b.add(g),
                Err(_) => return u32::MAX,
            };
        }
        match b.build() {
            Ok(set) => {
                self.prefilters.push(set);
                offset(self.prefilters.len() - 1)
            }
            Err(_) => u32::MAX,
        }
    }
}

fn texts_of<'a>(glob: &[Pending], texts: &'a [Box<str>]) -> Vec<&'a str> {
    glob.iter().map(|p| &*texts[p.glob as usize]).collect()
}

/// An immutable compiled set of rules. Cheap to share: put it in an `Arc`.
pub struct Matcher {
    trie: Trie,
    rules: Rules,
    node_count: usize,
    rule_count: usize,
}

impl Default for Matcher {
    /// A matcher without rules.
    fn default() -> Self {
        MatcherBuilder::new().build()
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("rules", &self.rule_count)
            .field("nodes", &self.node_count)
            .field("slots", &self.trie.slots.len())
            .field("trie_bytes", &self.trie.heap_bytes())
            .field("globs", &self.rules.globs.len())
            .finish_non_exhaustive()
    }
}

impl Matcher {
    /// Number of distinct rules (a pattern added twice under the same id counts once).
    pub fn len(&self) -> usize {
        self.rule_count
    }

    /// Whether the matcher has no rule.
    pub fn is_empty(&self) -> bool {
        self.rule_count == 0
    }

    /// Heap bytes held by the trie, the rule sets and the globs; the few compiled
    /// [`GlobSet`] prefilters are not counted.
    pub fn heap_bytes(&self) -> usize {
        let r = &self.rules;
        self.trie.heap_bytes()
            + r.sets.capacity() * size_of::<RuleSet>()
            + r.ids.capacity() * size_of::<RuleId>()
            + r.globs.capacity() * size_of::<GlobRule>()
            + r.globs.iter().map(|g| g.glob.len()).sum::<usize>()
            + r.prefilters.capacity() * size_of::<GlobSet>()
    }

    /// Calls `f` once per rule that `name` matches, in no particular order. An id given to
    /// several patterns is reported once per pattern that matches. Does not allocate.
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(RuleId)) {
        let mut starts = [0u8; MAX_LABELS];
        let Some((bytes, n)) = split(name, &mut starts) else {
            return;
        };
        self.visit(self.trie.root, bytes, &mut f);
        let slots = &self.trie.slots;
        let (mut node, mut h, mut done) = (NO_PARENT, self.trie.seed, 0);
        // Labels are taken from the right, BATCH levels at a time.
        while done < n {
            let batch = (n - done).min(BATCH);
            let mut hashes = [0u64; BATCH];
            let mut keys = [[0u64; 2]; BATCH];
            let mut touched = 0u32;
            for j in 0..batch {
                let key;
                (h, key) = mix_label_key(h, label(bytes, &starts, n, n - 1 - done - j).1);
                (hashes[j], keys[j]) = (h, key);
                // Independent loads: the CPU overlaps the cache misses of all levels.
                touched ^= slots[slot_index(h, slots.len())].rules().1;
            }
            // Second round, overlapped likewise: the long labels those slots point to.
            for &h in &hashes[..batch] {
                touched ^= self.trie.touch_long(slot_index(h, slots.len()));
            }
            std::hint::black_box(touched);
            for j in 0..batch {
                let (start, l) = label(bytes, &starts, n, n - 1 - done - j);
                let Some(child) = self.trie.find(node, hashes[j], l, keys[j]) else {
                    return;
                };
                node = child;
                let rest = &bytes[..start.saturating_sub(1)];
                self.visit(slots[child as usize].rules(), rest, &mut f);
            }
            done += batch;
        }
    }

    /// All matching rule ids, sorted and deduplicated (convenience; allocates).
    pub fn matches(&self, name: &str) -> Vec<RuleId> {
        let mut v = Vec::new();
        self.for_each_match(name, |id| v.push(id));
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Whether `name` matches any rule.
    pub fn is_match(&self, name: &str) -> bool {
        let mut hit = false;
        self.for_each_match(name, |_| hit = true);
        hit
    }

    /// Reports the rules `(tag, payload)` of a node; `rest` is the part of the name left of the node's
    /// suffix, without the dot (empty when the name is the suffix itself).
    #[inline(always)]
    fn visit(&self, (t, p): (u8, u32), rest: &[u8], f: &mut impl FnMut(RuleId)) {
        if t == TAG_NONE {
            return;
        }
        match t {
            TAG_EXACT if rest.is_empty() => f(p),
            TAG_BELOW if !rest.is_empty() => f(p),
            TAG_BOTH => f(p),
            TAG_SET => self.visit_set(&self.rules.sets[p as usize], rest, f),
            _ => {}
        }
    }

    fn visit_set(&self, set: &RuleSet, rest: &[u8], f: &mut impl FnMut(RuleId)) {
        let ids = |(a, b): (u32, u32)| &self.rules.ids[a as usize..b as usize];
        if rest.is_empty() {
            ids(set.exact).iter().for_each(|&id| f(id));
            return;
        }
        ids(set.below).iter().for_each(|&id| f(id));
        let (a, b) = set.globs;
        // `rest` is a non-empty part of a validated, hence ASCII, name.
        if a == b || set.lead >> (rest[0] & 0x7f) & 1 == 0 {
            return;
        }
        if let Some(pre) = self.rules.prefilters.get(set.prefilter as usize) {
            if !pre.is_match_candidate(&Candidate::from_bytes(rest)) {
                return;
            }
        }
        for g in &self.rules.globs[a as usize..b as usize] {
            if wildcard::matches(g.glob.as_bytes(), rest) {
                f(g.id);
            }
        }
    }
}

#[cfg(test)]
mod tests;
