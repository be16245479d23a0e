//! The `area` label of `winsink_queries_total`: what decided a query, interned.
//!
//! A label is an area id (`diagnostic-data`), `list:<label>`, `rule` or `none`: a
//! bounded set, fixed by the config files (never a query name or a client address). The
//! query path turns the deciding match into a small slot number by hashing its text into
//! a fixed open-addressing table of [`MAX_LABELS`] slots: no lock and no allocation,
//! except once per distinct label for the life of the process (its text, kept so that a
//! reload that removes an area does not lose what its counters mean). Slots survive
//! reloads, so counters stay monotonic. Past [`MAX_LABELS`] distinct labels (hundreds
//! of lists), further ones are counted under [`OTHER`].

use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

use hashbrown::DefaultHashBuilder;

use winsink_policy::{Decision, MatchSource};

/// Distinct labels held, `rule`, `none` and `other` included.
pub(crate) const MAX_LABELS: usize = 256;
/// The slot of `none`: nothing matched.
pub(crate) const NONE: usize = 0;
/// The slot of `rule`: a custom rule decided.
pub(crate) const RULE: usize = 1;
/// The slot of `other`: labels past [`MAX_LABELS`].
pub(crate) const OTHER: usize = 2;
const FIXED: usize = 3;

/// What decided a query, as the metrics name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decider<'a> {
    /// Nothing matched (or the query was refused or invalid).
    None,
    /// A custom rule.
    Rule,
    /// A catalog area: its id and name.
    Area { id: &'a str, name: &'a str },
    /// A list, by label.
    List(&'a str),
}

impl<'a> Decider<'a> {
    /// The deciding match of `d`.
    pub(crate) fn of(d: &Decision<'a>) -> Self {
        let Some(m) = d.decided_by().map(|d| d.by) else {
            return Self::None;
        };
        match (m.area, m.source) {
            (Some(a), _) => Self::Area {
                id: a.id,
                name: a.name,
            },
            (None, MatchSource::List(label)) => Self::List(label),
            (None, _) => Self::Rule,
        }
    }
}

struct Slot {
    /// The hash of the label's kind and text; 0 while free.
    hash: AtomicU64,
    /// `diagnostic-data` or `list:NAME`, set once by the thread that took the slot.
    text: OnceLock<Box<str>>,
    /// The area's display name (areas only).
    name: OnceLock<Box<str>>,
}

/// The table of labels.
pub(crate) struct Labels {
    slots: Box<[Slot]>,
    /// foldhash (seeded at random, though labels come from the config files): a word at
    /// a time, where FNV-1a took a multiply per byte of every query's label.
    hasher: DefaultHashBuilder,
}

impl std::fmt::Debug for Labels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Labels").finish_non_exhaustive()
    }
}

impl Labels {
    pub(crate) fn new() -> Self {
        let slots: Box<[Slot]> = (0..MAX_LABELS)
            .map(|_| Slot {
                hash: AtomicU64::new(0),
                text: OnceLock::new(),
                name: OnceLock::new(),
            })
            .collect();
        for (i, t) in ["none", "rule", "other"].into_iter().enumerate() {
            slots[i].hash.store(u64::MAX - i as u64, Ordering::Relaxed);
            let _ = slots[i].text.set(t.into());
        }
        Self {
            slots,
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The slot of `d`, taking a free one the first time a label is seen.
    pub(crate) fn slot(&self, d: Decider<'_>) -> usize {
        let (kind, text, name) = match d {
            Decider::None => return NONE,
            Decider::Rule => return RULE,
            Decider::Area { id, name } => (b'a', id, Some(name)),
            Decider::List(label) => (b'l', label, None),
        };
        let h = self.hasher.hash_one((kind, text)).max(1);
        let n = MAX_LABELS - FIXED;
        let start = (h % n as u64) as usize;
        for i in 0..n {
            let idx = FIXED + (start + i) % n;
            let slot = &self.slots[idx];
            let mut cur = slot.hash.load(Ordering::Acquire);
            if cur == 0 {
                match slot
                    .hash
                    .compare_exchange(0, h, Ordering::AcqRel, Ordering::Acquire)
                {
                    Ok(_) => {
                        let full = if kind == b'l' {
                            format!("list:{text}")
                        } else {
                            text.to_owned()
                        };
                        let _ = slot.text.set(full.into());
                        if let Some(name) = name {
                            let _ = slot.name.set(name.into());
                        }
                        return idx;
                    }
                    Err(now) => cur = now,
                }
            }
            if cur == h && slot.text.get().is_none_or(|t| same(t, kind, text)) {
                return idx;
            }
        }
        OTHER
    }

    /// The label text of `slot` (`None` while free).
    pub(crate) fn text(&self, slot: usize) -> Option<&str> {
        self.slots.get(slot)?.text.get().map(|t| &**t)
    }

    /// The display name of an area's slot (the area id's name), else the label.
    pub(crate) fn name(&self, slot: usize) -> Option<&str> {
        let s = self.slots.get(slot)?;
        s.name.get().or_else(|| s.text.get()).map(|t| &**t)
    }

    /// Whether `slot` is a catalog area's.
    pub(crate) fn is_area(&self, slot: usize) -> bool {
        self.slots.get(slot).is_some_and(|s| s.name.get().is_some())
    }

    /// The slot of label text `label` if it is in use (for API filters).
    pub(crate) fn find(&self, label: &str) -> Option<usize> {
        (0..MAX_LABELS).find(|&i| self.text(i) == Some(label))
    }
}

fn same(stored: &str, kind: u8, text: &str) -> bool {
    if kind == b'l' {
        stored.strip_prefix("list:") == Some(text)
    } else {
        stored == text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_label_keeps_its_slot_and_its_text() {
        let l = Labels::new();
        let a = l.slot(Decider::Area {
            id: "diagnostic-data",
            name: "Diagnostic Data",
        });
        let b = l.slot(Decider::List("ads"));
        let c = l.slot(Decider::Area {
            id: "ads",
            name: "Ads",
        });
        assert_ne!(a, b);
        assert_ne!(b, c, "an area and a list of the same text are two labels");
        assert_eq!(
            l.slot(Decider::Area {
                id: "diagnostic-data",
                name: "Diagnostic Data"
            }),
            a
        );
        assert_eq!(l.text(a), Some("diagnostic-data"));
        assert_eq!(l.name(a), Some("Diagnostic Data"));
        assert_eq!(l.text(b), Some("list:ads"));
        assert_eq!(l.slot(Decider::Rule), RULE);
        assert_eq!(l.text(NONE), Some("none"));
        assert_eq!(l.find("list:ads"), Some(b));
        assert!(l.is_area(a) && !l.is_area(b));
    }

    #[test]
    fn labels_past_the_table_count_as_other() {
        let l = Labels::new();
        let names: Vec<String> = (0..MAX_LABELS + 10).map(|i| format!("l{i}")).collect();
        let slots: Vec<usize> = names.iter().map(|n| l.slot(Decider::List(n))).collect();
        assert_eq!(
            slots.iter().filter(|&&s| s != OTHER).count(),
            MAX_LABELS - FIXED
        );
        // Every label that got a slot keeps it.
        for (n, &s) in names.iter().zip(&slots) {
            if s != OTHER {
                assert_eq!(l.slot(Decider::List(n)), s);
            }
        }
    }
}
