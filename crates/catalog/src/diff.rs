//! What changed between two catalogs: areas, endpoints, descriptions and protocols.
//!
//! Areas are matched by id. An area of the old catalog whose id is gone is *renamed* when
//! one new area (whose id is new) has exactly the same non-empty set of patterns;
//! otherwise it is removed, and the new one added. Within a pair of areas endpoints are
//! matched by pattern. A pattern that leaves one area and arrives in another is *moved*
//! (once per pattern, when exactly one area lost it and one gained it); every other
//! pattern only in the old catalog is removed, only in the new one added. For matched
//! endpoints the description (as a word diff), the protocols, and per area the name, the
//! impact summary and the turn-off link are compared.
//!
//! ```
//! use winsink_catalog::diff::diff;
//!
//! let old = winsink_catalog::windows11_enterprise().clone();
//! let mut new = old.clone();
//! new.areas[0].endpoints.pop();
//! let d = diff(&old, &new);
//! assert_eq!(d.endpoints_removed.len(), 1);
//! assert_eq!(d.change_count(), 1);
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;

use crate::model::{Area, Catalog, Endpoint};

/// Every difference between two catalogs, in the order of the new catalog (removed things
/// in the order of the old one). The JSON form (`winsink catalog diff --json`) is this
/// struct's serde form.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CatalogDiff {
    /// Areas only in the new catalog.
    pub areas_added: Vec<AreaRef>,
    /// Areas only in the old catalog.
    pub areas_removed: Vec<AreaRef>,
    /// Areas whose id or name changed (same id with a new name, or a new id with exactly
    /// the same patterns).
    pub areas_renamed: Vec<Renamed>,
    /// Endpoints only in the new catalog (in an area that is in both, or added).
    pub endpoints_added: Vec<EndpointRef>,
    /// Endpoints only in the old catalog.
    pub endpoints_removed: Vec<EndpointRef>,
    /// Patterns that left one area for another.
    pub endpoints_moved: Vec<Moved>,
    /// Endpoints whose description changed.
    pub descriptions_changed: Vec<TextChange>,
    /// Endpoints whose protocols changed.
    pub protocols_changed: Vec<ProtocolChange>,
    /// Areas whose impact summary changed.
    pub impacts_changed: Vec<TextChange>,
    /// Areas whose "turn off" link changed.
    pub turn_off_changed: Vec<LinkChange>,
}

/// An area, named.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaRef {
    /// The area id.
    pub id: String,
    /// The area name.
    pub name: String,
    /// Its number of endpoints.
    pub endpoints: usize,
}

/// An area that changed its id or name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Renamed {
    /// The id in the old catalog.
    pub old_id: String,
    /// The id in the new catalog.
    pub new_id: String,
    /// The name in the old catalog.
    pub old_name: String,
    /// The name in the new catalog.
    pub new_name: String,
}

/// An endpoint of an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EndpointRef {
    /// The area's id.
    pub area: String,
    /// The pattern.
    pub pattern: String,
    /// Its protocols.
    pub protocols: Vec<String>,
    /// Its description.
    pub description: String,
}

/// A pattern that moved between areas.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Moved {
    /// The pattern.
    pub pattern: String,
    /// The old area's id.
    pub from: String,
    /// The new area's id.
    pub to: String,
}

/// A changed text: an endpoint's description (`pattern` set) or an area's impact
/// (`pattern` `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TextChange {
    /// The area's id (in the new catalog).
    pub area: String,
    /// The endpoint's pattern, for a description.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    /// The old text.
    pub old: String,
    /// The new text.
    pub new: String,
    /// The word diff from old to new.
    pub words: Vec<WordChunk>,
    /// Whether the new text is the old one with its mojibake repaired (UTF-8 that was read
    /// as Windows-1252: `wonâ€™t` → `won’t`).
    pub mojibake_repaired: bool,
}

/// Protocols that changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProtocolChange {
    /// The area's id (in the new catalog).
    pub area: String,
    /// The pattern.
    pub pattern: String,
    /// The old protocols.
    pub old: Vec<String>,
    /// The new protocols.
    pub new: Vec<String>,
}

/// A changed "turn off" link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LinkChange {
    /// The area's id (in the new catalog).
    pub area: String,
    /// The old link.
    pub old: Option<String>,
    /// The new link.
    pub new: Option<String>,
}

/// A run of words of a word diff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WordChunk {
    /// Whether the words are in both texts, only the old or only the new one.
    pub op: WordOp,
    /// The words, separated by single spaces.
    pub text: String,
}

/// What a [`WordChunk`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WordOp {
    /// In both.
    Same,
    /// Only in the old text.
    Removed,
    /// Only in the new text.
    Added,
}

impl CatalogDiff {
    /// How many changes there are (every entry of every list).
    pub fn change_count(&self) -> usize {
        self.areas_added.len()
            + self.areas_removed.len()
            + self.areas_renamed.len()
            + self.endpoints_added.len()
            + self.endpoints_removed.len()
            + self.endpoints_moved.len()
            + self.descriptions_changed.len()
            + self.protocols_changed.len()
            + self.impacts_changed.len()
            + self.turn_off_changed.len()
    }

    /// Whether the catalogs have the same content.
    pub fn is_empty(&self) -> bool {
        self.change_count() == 0
    }
}

/// Compares `old` with `new`. See the [module documentation](self).
pub fn diff(old: &Catalog, new: &Catalog) -> CatalogDiff {
    let mut d = CatalogDiff::default();
    let old_by_id: HashMap<&str, &Area> = old.areas.iter().map(|a| (a.id.as_str(), a)).collect();
    let new_ids: BTreeSet<&str> = new.areas.iter().map(|a| a.id.as_str()).collect();
    let renamed_from = pair_renamed(old, new, &old_by_id, &new_ids);
    let mut unmatched = Unmatched::default();
    for n in &new.areas {
        let partner = old_by_id
            .get(n.id.as_str())
            .copied()
            .or_else(|| renamed_from.get(n.id.as_str()).copied());
        match partner {
            Some(o) => compare_areas(&mut d, o, n, &mut unmatched),
            None => {
                d.areas_added.push(area_ref(n));
                unmatched
                    .came
                    .extend(n.endpoints.iter().map(|e| endpoint_ref(&n.id, e)));
            }
        }
    }
    let paired_old: BTreeSet<&str> = renamed_from.values().map(|a| a.id.as_str()).collect();
    for o in &old.areas {
        if new_ids.contains(o.id.as_str()) || paired_old.contains(o.id.as_str()) {
            continue;
        }
        d.areas_removed.push(area_ref(o));
        for e in &o.endpoints {
            unmatched.gone(&o.id, e);
        }
    }
    unmatched.settle(&mut d, old);
    d
}

/// New areas whose id is not in the old catalog, paired with the one old area (whose id
/// is not in the new catalog) that has exactly the same patterns: renamed areas.
fn pair_renamed<'a>(
    old: &'a Catalog,
    new: &'a Catalog,
    old_by_id: &HashMap<&str, &Area>,
    new_ids: &BTreeSet<&str>,
) -> HashMap<&'a str, &'a Area> {
    let patterns_of =
        |a: &Area| -> BTreeSet<String> { a.endpoints.iter().map(|e| e.pattern.clone()).collect() };
    let old_unpaired: Vec<&Area> = old
        .areas
        .iter()
        .filter(|a| !new_ids.contains(a.id.as_str()))
        .collect();
    let mut renamed_from: HashMap<&str, &Area> = HashMap::new();
    for n in new
        .areas
        .iter()
        .filter(|a| !old_by_id.contains_key(a.id.as_str()))
    {
        let set = patterns_of(n);
        if set.is_empty() {
            continue;
        }
        let same: Vec<&&Area> = old_unpaired
            .iter()
            .filter(|o| patterns_of(o) == set)
            .collect();
        if let [o] = same[..] {
            if !renamed_from.values().any(|x| x.id == o.id) {
                renamed_from.insert(n.id.as_str(), o);
            }
        }
    }
    renamed_from
}

/// Endpoints not matched within a pair of areas, to find moves once every pair of areas
/// is compared.
#[derive(Default)]
struct Unmatched {
    /// Per pattern: the (old area, endpoint) pairs no new area of the pair has.
    gone: BTreeMap<String, Vec<EndpointRef>>,
    /// The (new area, endpoint) pairs no old area of the pair had.
    came: Vec<EndpointRef>,
}

impl Unmatched {
    fn gone(&mut self, area: &str, e: &Endpoint) {
        self.gone
            .entry(e.pattern.clone())
            .or_default()
            .push(endpoint_ref(area, e));
    }

    /// Moves (a pattern exactly one area lost and exactly one gained), then what is left:
    /// added endpoints in the new catalog's order, removed ones in the old catalog's.
    fn settle(mut self, d: &mut CatalogDiff, old: &Catalog) {
        let came_count = self.came.iter().fold(HashMap::new(), |mut m, e| {
            *m.entry(e.pattern.clone()).or_insert(0usize) += 1;
            m
        });
        let mut moved: BTreeSet<String> = BTreeSet::new();
        for e in &self.came {
            if came_count.get(&e.pattern) == Some(&1) {
                if let Some([from]) = self.gone.get(&e.pattern).map(Vec::as_slice) {
                    d.endpoints_moved.push(Moved {
                        pattern: e.pattern.clone(),
                        from: from.area.clone(),
                        to: e.area.clone(),
                    });
                    moved.insert(e.pattern.clone());
                }
            }
        }
        d.endpoints_added = self
            .came
            .into_iter()
            .filter(|e| !moved.contains(&e.pattern))
            .collect();
        for o in &old.areas {
            for e in &o.endpoints {
                if moved.contains(&e.pattern) {
                    continue;
                }
                if let Some(list) = self.gone.get_mut(&e.pattern) {
                    if let Some(i) = list.iter().position(|g| g.area == o.id) {
                        d.endpoints_removed.push(list.remove(i));
                    }
                }
            }
        }
    }
}

/// An old area `o` and its new counterpart `n` (same id, or renamed): their name,
/// impact, turn-off link and shared endpoints; endpoints only one of them has go to
/// `unmatched`.
fn compare_areas(d: &mut CatalogDiff, o: &Area, n: &Area, unmatched: &mut Unmatched) {
    if o.id != n.id || o.name != n.name {
        d.areas_renamed.push(Renamed {
            old_id: o.id.clone(),
            new_id: n.id.clone(),
            old_name: o.name.clone(),
            new_name: n.name.clone(),
        });
    }
    if o.impact != n.impact {
        d.impacts_changed
            .push(text_change(&n.id, None, &o.impact, &n.impact));
    }
    if o.turn_off != n.turn_off {
        d.turn_off_changed.push(LinkChange {
            area: n.id.clone(),
            old: o.turn_off.clone(),
            new: n.turn_off.clone(),
        });
    }
    let old_eps: HashMap<&str, &Endpoint> = o
        .endpoints
        .iter()
        .map(|e| (e.pattern.as_str(), e))
        .collect();
    let new_patterns: BTreeSet<&str> = n.endpoints.iter().map(|e| e.pattern.as_str()).collect();
    for e in &n.endpoints {
        let Some(oe) = old_eps.get(e.pattern.as_str()) else {
            unmatched.came.push(endpoint_ref(&n.id, e));
            continue;
        };
        if oe.description != e.description {
            d.descriptions_changed.push(text_change(
                &n.id,
                Some(&e.pattern),
                &oe.description,
                &e.description,
            ));
        }
        if oe.protocols != e.protocols {
            d.protocols_changed.push(ProtocolChange {
                area: n.id.clone(),
                pattern: e.pattern.clone(),
                old: oe.protocols.clone(),
                new: e.protocols.clone(),
            });
        }
    }
    for e in o
        .endpoints
        .iter()
        .filter(|e| !new_patterns.contains(e.pattern.as_str()))
    {
        unmatched.gone(&o.id, e);
    }
}

fn area_ref(a: &Area) -> AreaRef {
    AreaRef {
        id: a.id.clone(),
        name: a.name.clone(),
        endpoints: a.endpoints.len(),
    }
}

fn endpoint_ref(area: &str, e: &Endpoint) -> EndpointRef {
    EndpointRef {
        area: area.to_owned(),
        pattern: e.pattern.clone(),
        protocols: e.protocols.clone(),
        description: e.description.clone(),
    }
}

fn text_change(area: &str, pattern: Option<&str>, old: &str, new: &str) -> TextChange {
    TextChange {
        area: area.to_owned(),
        pattern: pattern.map(str::to_owned),
        old: old.to_owned(),
        new: new.to_owned(),
        words: word_diff(old, new),
        mojibake_repaired: crate::import::repair_mojibake(old).0 == new,
    }
}

/// The word diff of two texts: the longest common subsequence of their words (split at
/// whitespace), as runs of same, removed and added words. Descriptions are a few dozen
/// words, so the quadratic table is small.
pub fn word_diff(old: &str, new: &str) -> Vec<WordChunk> {
    let a: Vec<&str> = old.split_whitespace().collect();
    let b: Vec<&str> = new.split_whitespace().collect();
    // lcs[i][j]: the LCS length of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out: Vec<WordChunk> = Vec::new();
    let mut push = |op: WordOp, word: &str| match out.last_mut() {
        Some(last) if last.op == op => {
            last.text.push(' ');
            last.text.push_str(word);
        }
        _ => out.push(WordChunk {
            op,
            text: word.to_owned(),
        }),
    };
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            push(WordOp::Same, a[i]);
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // At a replacement, the removed words come before the added ones.
            push(WordOp::Removed, a[i]);
            i += 1;
        } else {
            push(WordOp::Added, b[j]);
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (pattern, description, protocols)
    type Ep<'a> = (&'a str, &'a str, &'a [&'a str]);

    fn catalog(areas: &[(&str, &[Ep<'_>])]) -> Catalog {
        Catalog {
            source: crate::Source {
                title: "t".into(),
                url: "https://example.invalid/".into(),
                date: String::new(),
                sections: Vec::new(),
            },
            areas: areas
                .iter()
                .map(|(name, eps)| {
                    let mut a = Area {
                        id: crate::slug(name),
                        name: (*name).to_owned(),
                        turn_off: None,
                        impact: String::new(),
                        endpoints: eps
                            .iter()
                            .map(|(p, d, protos)| Endpoint {
                                pattern: (*p).to_owned(),
                                original: (*p).to_owned(),
                                protocols: protos.iter().map(|s| (*s).to_owned()).collect(),
                                description: (*d).to_owned(),
                                sections: Vec::new(),
                            })
                            .collect(),
                    };
                    a.impact = a.derived_impact();
                    a
                })
                .collect(),
        }
    }

    fn render(words: &[WordChunk]) -> String {
        words
            .iter()
            .map(|w| match w.op {
                WordOp::Same => w.text.clone(),
                WordOp::Removed => format!("[-{}-]", w.text),
                WordOp::Added => format!("{{+{}+}}", w.text),
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn word_diff_marks_replaced_inserted_and_deleted_words() {
        assert_eq!(
            render(&word_diff("a b c d", "a x c d e")),
            "a [-b-] {+x+} c d {+e+}"
        );
        assert_eq!(render(&word_diff("a b c", "c")), "[-a b-] c");
        assert_eq!(render(&word_diff("", "new words")), "{+new words+}");
        assert_eq!(render(&word_diff("same  text", "same text")), "same text");
    }

    #[test]
    fn identical_catalogs_have_no_changes() {
        let c = catalog(&[("Maps", &[("maps.windows.com", "Maps.", &["HTTPS"])])]);
        assert!(diff(&c, &c).is_empty());
    }

    #[test]
    fn added_removed_moved_and_changed_endpoints() {
        let old = catalog(&[
            (
                "Maps",
                &[
                    ("maps.windows.com", "Offline maps.", &["HTTPS"]),
                    ("gone.example", "x", &[]),
                    ("wanderer.example", "", &[]),
                ],
            ),
            ("Apps", &[("apps.example", "Apps wont work.", &["HTTP"])]),
        ]);
        let new = catalog(&[
            (
                "Maps",
                &[
                    (
                        "maps.windows.com",
                        "Offline maps stop.",
                        &["TLSv1.2", "HTTPS"],
                    ),
                    ("new.example", "n", &[]),
                ],
            ),
            (
                "Apps",
                &[
                    ("apps.example", "Apps wont work.", &["HTTP"]),
                    ("wanderer.example", "", &[]),
                ],
            ),
        ]);
        let d = diff(&old, &new);
        assert_eq!(
            d.endpoints_added
                .iter()
                .map(|e| (e.area.as_str(), e.pattern.as_str()))
                .collect::<Vec<_>>(),
            [("maps", "new.example")]
        );
        assert_eq!(
            d.endpoints_removed
                .iter()
                .map(|e| (e.area.as_str(), e.pattern.as_str()))
                .collect::<Vec<_>>(),
            [("maps", "gone.example")]
        );
        assert_eq!(
            d.endpoints_moved,
            [Moved {
                pattern: "wanderer.example".into(),
                from: "maps".into(),
                to: "apps".into()
            }]
        );
        assert_eq!(d.descriptions_changed.len(), 1);
        assert_eq!(
            render(&d.descriptions_changed[0].words),
            "Offline [-maps.-] {+maps stop.+}"
        );
        assert!(!d.descriptions_changed[0].mojibake_repaired);
        assert_eq!(d.protocols_changed[0].new, ["TLSv1.2", "HTTPS"]);
        // Maps' impact is its first description, which changed too.
        assert_eq!(d.impacts_changed.len(), 1);
        assert_eq!(d.change_count(), 6);
    }

    #[test]
    fn areas_are_renamed_by_name_or_by_their_patterns_else_added_and_removed() {
        let old = catalog(&[
            ("Microsoft store", &[("a.example", "", &[])]),
            ("Xbox", &[("x.example", "", &[]), ("y.example", "", &[])]),
            ("Skype", &[("s.example", "", &[])]),
        ]);
        let new = catalog(&[
            ("Microsoft Store", &[("a.example", "", &[])]),
            (
                "Xbox Live",
                &[("y.example", "", &[]), ("x.example", "", &[])],
            ),
            ("Teams", &[("t.example", "", &[])]),
        ]);
        let d = diff(&old, &new);
        let renamed: Vec<_> = d
            .areas_renamed
            .iter()
            .map(|r| (r.old_id.as_str(), r.new_id.as_str(), r.new_name.as_str()))
            .collect();
        assert_eq!(
            renamed,
            [
                ("microsoft-store", "microsoft-store", "Microsoft Store"),
                ("xbox", "xbox-live", "Xbox Live")
            ]
        );
        assert_eq!(d.areas_added[0].id, "teams");
        assert_eq!(d.areas_removed[0].id, "skype");
        assert_eq!(d.endpoints_added[0].pattern, "t.example");
        assert_eq!(d.endpoints_removed[0].pattern, "s.example");
        assert!(d.endpoints_moved.is_empty());
    }

    #[test]
    fn a_repaired_description_is_recognised() {
        let old = catalog(&[("Edge", &[("e.example", "Edge wonâ€™t update.", &[])])]);
        let new = catalog(&[("Edge", &[("e.example", "Edge won’t update.", &[])])]);
        let d = diff(&old, &new);
        let change = &d.descriptions_changed[0];
        assert!(change.mojibake_repaired);
        assert_eq!(render(&change.words), "Edge [-wonâ€™t-] {+won’t+} update.");
    }
}
