//! What the report knows before reading a line: the catalog's areas and endpoints, the
//! actions the config gives them, and the Microsoft-owned suffixes.

use rustc_hash::{FxHashMap, FxHashSet};
use winsink_catalog::Catalog;
use winsink_policy::{Action, DomainSuffixes};

/// An area's number: the index's areas first, then areas only the log names.
pub(crate) type Slot = u32;

/// A catalog area.
#[derive(Debug, Clone)]
pub(crate) struct AreaDef {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The action the loaded config gives it (global, not per group).
    pub(crate) configured: Option<Action>,
    pub(crate) impact: String,
    /// Its endpoints, in catalog order, each pattern once.
    pub(crate) endpoints: Vec<EndpointDef>,
    patterns: FxHashSet<String>,
}

/// A catalog endpoint.
#[derive(Debug, Clone)]
pub(crate) struct EndpointDef {
    pub(crate) pattern: String,
    pub(crate) protocols: Vec<String>,
    pub(crate) description: String,
}

/// The catalog, config and suffixes, read-only while lines are counted.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub(crate) areas: Vec<AreaDef>,
    by_key: FxHashMap<String, Slot>,
    endpoints: FxHashSet<String>,
    pub(crate) suffixes: DomainSuffixes,
}

impl Index {
    /// The areas of `catalogs` (an area id in two catalogs is one area, as in a policy),
    /// with the actions of `configured` (area id → action).
    pub(crate) fn new(
        catalogs: &[Catalog],
        configured: &FxHashMap<String, Action>,
        suffixes: DomainSuffixes,
    ) -> Self {
        let mut index = Self {
            suffixes,
            ..Self::default()
        };
        for c in catalogs {
            for a in &c.areas {
                let slot = match index.by_key.get(&a.id) {
                    Some(&s) => s,
                    None => {
                        let s = Slot::try_from(index.areas.len()).unwrap_or(Slot::MAX);
                        index.areas.push(AreaDef {
                            id: a.id.clone(),
                            name: a.name.clone(),
                            configured: configured.get(&a.id).copied(),
                            impact: a.impact.clone(),
                            endpoints: Vec::new(),
                            patterns: FxHashSet::default(),
                        });
                        index.by_key.insert(a.id.clone(), s);
                        index.by_key.entry(a.name.clone()).or_insert(s);
                        s
                    }
                };
                let area = &mut index.areas[slot as usize];
                for e in &a.endpoints {
                    index.endpoints.insert(e.pattern.clone());
                    if area.patterns.insert(e.pattern.clone()) {
                        area.endpoints.push(EndpointDef {
                            pattern: e.pattern.clone(),
                            protocols: e.protocols.clone(),
                            description: e.description.clone(),
                        });
                    }
                }
            }
        }
        index
    }

    /// The area with this id or name.
    pub(crate) fn area(&self, key: &str) -> Option<Slot> {
        self.by_key.get(key).copied()
    }

    /// Whether the area in `slot` has the endpoint `pattern`.
    pub(crate) fn has_endpoint(&self, slot: Slot, pattern: &str) -> bool {
        self.areas
            .get(slot as usize)
            .is_some_and(|a| a.patterns.contains(pattern))
    }

    /// Whether `pattern` is an endpoint of any catalog area (else a rule's or list's).
    pub(crate) fn is_endpoint(&self, pattern: &str) -> bool {
        self.endpoints.contains(pattern)
    }

    /// The action word the config gives the area in `slot`.
    pub(crate) fn configured(&self, slot: Slot) -> Option<&'static str> {
        self.areas
            .get(slot as usize)
            .and_then(|a| a.configured)
            .map(Action::as_str)
    }
}
