//! What a policy holds, in a form to print (`winsink check`) and to compare (reload).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::change::{AreaName, Change};
use crate::decision::Action;
use crate::list::{BadLine, ListFormat};
use crate::policy::Policy;
use crate::settings::SinkholeSettings;

/// Everything a policy holds, counted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The catalogs, in load order.
    pub catalogs: Vec<CatalogSummary>,
    /// The action of areas the config does not name.
    pub default_action: Action,
    /// Every area of every catalog, in catalog order, with its global action.
    pub areas: Vec<AreaSummary>,
    /// Custom rules: group rules first, then global ones.
    pub rules: Vec<RuleSummary>,
    /// List files.
    pub lists: Vec<ListSummary>,
    /// Client groups.
    pub groups: Vec<GroupSummary>,
    /// Patterns in the matcher (catalog endpoints + rules + list entries).
    pub patterns: usize,
}

/// One catalog.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CatalogSummary {
    /// Its title.
    pub title: String,
    /// As named in `catalogs` (a path or `builtin:NAME`).
    pub origin: String,
    /// Its areas.
    pub areas: usize,
    /// Its endpoints, counting an endpoint of two areas twice.
    pub endpoints: usize,
}

/// One area and its global action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaSummary {
    /// Area id.
    pub id: String,
    /// Area name.
    pub name: String,
    /// Global action.
    pub action: Action,
    /// Endpoints (across catalogs).
    pub endpoints: usize,
    /// What blocking the area breaks: its impact summary from the catalog.
    pub impact: String,
}

/// One custom rule.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct RuleSummary {
    /// The group it belongs to; `None` for a global rule.
    pub group: Option<String>,
    /// The pattern.
    pub pattern: String,
    /// The action.
    pub action: Action,
    /// The note.
    pub note: Option<String>,
}

/// One list file and how its load went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListSummary {
    /// The label shown in logs.
    pub label: String,
    /// The file (for a list by URL, its cached copy).
    pub path: PathBuf,
    /// The URL of a list by URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Its format.
    pub format: ListFormat,
    /// Its action.
    pub action: Action,
    /// Entries loaded.
    pub loaded: usize,
    /// Well-formed lines that name nothing to block (`127.0.0.1 localhost`).
    pub skipped: usize,
    /// Malformed lines.
    pub bad: usize,
    /// The first malformed lines.
    pub bad_lines: Vec<BadLine>,
}

/// One client group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GroupSummary {
    /// Its name.
    pub name: String,
    /// Its networks.
    pub clients: Vec<String>,
    /// The action of areas its overrides do not name; `None`: the global actions.
    pub default_action: Option<Action>,
    /// Its area overrides (area id, action), in area order.
    pub areas: Vec<(String, Action)>,
    /// Its rules.
    pub rules: usize,
    /// Its sinkhole override.
    pub sinkhole: Option<SinkholeSettings>,
}

impl Policy {
    /// What this policy holds, for `winsink check` and for comparing two policies.
    pub fn summary(&self) -> Summary {
        Summary {
            catalogs: self
                .catalogs
                .iter()
                .map(|c| CatalogSummary {
                    title: c.title.clone(),
                    origin: c.origin.clone(),
                    areas: c.areas,
                    endpoints: c.endpoints,
                })
                .collect(),
            default_action: self.default_action,
            areas: self
                .areas
                .iter()
                .zip(&self.area_actions[0])
                .map(|(a, &action)| AreaSummary {
                    id: a.id.clone(),
                    name: a.name.clone(),
                    action,
                    endpoints: a.endpoints,
                    impact: a.impact.clone(),
                })
                .collect(),
            rules: self
                .rules
                .iter()
                .map(|r| RuleSummary {
                    group: r.group.map(|g| self.groups[g as usize].name.clone()),
                    pattern: r.pattern.clone(),
                    action: r.action,
                    note: r.note.clone(),
                })
                .collect(),
            lists: self
                .lists
                .iter()
                .map(|l| ListSummary {
                    label: l.label.clone(),
                    path: l.path.clone(),
                    url: l.url.clone(),
                    format: l.format,
                    action: l.action,
                    loaded: l.loaded,
                    skipped: l.skipped,
                    bad: l.bad,
                    bad_lines: l.bad_lines.clone(),
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .enumerate()
                .map(|(gi, g)| GroupSummary {
                    name: g.name.clone(),
                    clients: g.clients.iter().map(ToString::to_string).collect(),
                    default_action: g.default_action,
                    areas: g
                        .areas
                        .iter()
                        .map(|&(a, action)| (self.areas[a as usize].id.clone(), action))
                        .collect(),
                    rules: self
                        .rules
                        .iter()
                        .filter(|r| r.group.is_some_and(|rg| rg as usize == gi))
                        .count(),
                    sinkhole: g.sinkhole.clone(),
                })
                .collect(),
            patterns: self.entries.len(),
        }
    }
}

impl Summary {
    /// What changed from `old` to `new`, for a reload's log: catalogs, the default
    /// action, areas whose action changed, rules and lists added or removed (and lists
    /// whose entry count changed), groups added, removed or changed. Empty when nothing
    /// an operator would care about changed. [`Change`]'s `Display` writes the lines.
    pub fn diff(old: &Self, new: &Self) -> Vec<Change> {
        let mut out = Vec::new();
        let old_c: BTreeSet<_> = old.catalogs.iter().map(|c| &c.origin).collect();
        let new_c: BTreeSet<_> = new.catalogs.iter().map(|c| &c.origin).collect();
        for c in new_c.difference(&old_c) {
            out.push(Change::CatalogAdded((*c).clone()));
        }
        for c in old_c.difference(&new_c) {
            out.push(Change::CatalogRemoved((*c).clone()));
        }
        if old.default_action != new.default_action {
            out.push(Change::DefaultAction {
                before: old.default_action,
                after: new.default_action,
            });
        }
        diff_areas(old, new, &mut out);
        let old_r: BTreeSet<_> = old.rules.iter().collect();
        let new_r: BTreeSet<_> = new.rules.iter().collect();
        for r in new_r.difference(&old_r) {
            out.push(Change::RuleAdded(rule_line(r)));
        }
        for r in old_r.difference(&new_r) {
            out.push(Change::RuleRemoved(rule_line(r)));
        }
        diff_lists(old, new, &mut out);
        diff_groups(old, new, &mut out);
        out
    }
}

fn diff_areas(old: &Summary, new: &Summary, out: &mut Vec<Change>) {
    let old_a: BTreeMap<_, _> = old.areas.iter().map(|a| (&a.id, a)).collect();
    for a in &new.areas {
        let area = || AreaName {
            name: a.name.clone(),
            id: a.id.clone(),
        };
        match old_a.get(&a.id) {
            Some(o) => {
                if o.action != a.action {
                    out.push(Change::AreaAction {
                        area: area(),
                        before: o.action,
                        after: a.action,
                    });
                }
                if o.endpoints != a.endpoints {
                    out.push(Change::AreaEndpoints {
                        area: area(),
                        before: o.endpoints,
                        after: a.endpoints,
                    });
                }
            }
            None => out.push(Change::AreaAdded {
                area: area(),
                action: a.action,
            }),
        }
    }
    let new_a: BTreeSet<_> = new.areas.iter().map(|a| &a.id).collect();
    for a in old.areas.iter().filter(|a| !new_a.contains(&a.id)) {
        out.push(Change::AreaRemoved(AreaName {
            name: a.name.clone(),
            id: a.id.clone(),
        }));
    }
}

fn diff_lists(old: &Summary, new: &Summary, out: &mut Vec<Change>) {
    let key = |l: &ListSummary| (l.label.clone(), l.path.clone());
    let old_l: BTreeMap<_, _> = old.lists.iter().map(|l| (key(l), l)).collect();
    let new_l: BTreeMap<_, _> = new.lists.iter().map(|l| (key(l), l)).collect();
    for (k, l) in &new_l {
        match old_l.get(k) {
            None => out.push(Change::ListAdded {
                label: l.label.clone(),
                path: l.path.clone(),
                action: l.action,
                names: l.loaded,
            }),
            Some(o) if o.action != l.action || o.loaded != l.loaded => {
                out.push(Change::ListChanged {
                    label: l.label.clone(),
                    before: (o.action, o.loaded),
                    after: (l.action, l.loaded),
                });
            }
            Some(_) => {}
        }
    }
    for (k, l) in &old_l {
        if !new_l.contains_key(k) {
            out.push(Change::ListRemoved {
                label: l.label.clone(),
                path: l.path.clone(),
            });
        }
    }
}

fn diff_groups(old: &Summary, new: &Summary, out: &mut Vec<Change>) {
    let old_g: BTreeMap<_, _> = old.groups.iter().map(|g| (&g.name, g)).collect();
    let new_g: BTreeMap<_, _> = new.groups.iter().map(|g| (&g.name, g)).collect();
    for (name, g) in &new_g {
        let Some(o) = old_g.get(name) else {
            out.push(Change::GroupAdded {
                group: (*name).clone(),
                clients: g.clients.clone(),
            });
            continue;
        };
        let group = || (*name).clone();
        if o.clients != g.clients {
            out.push(Change::GroupClients {
                group: group(),
                before: o.clients.clone(),
                after: g.clients.clone(),
            });
        }
        let oa: BTreeMap<_, _> = o.areas.iter().cloned().collect();
        let na: BTreeMap<_, _> = g.areas.iter().cloned().collect();
        for (id, action) in &na {
            let before = oa.get(id).copied();
            if before != Some(*action) {
                out.push(Change::GroupArea {
                    group: group(),
                    id: id.clone(),
                    before,
                    after: Some(*action),
                });
            }
        }
        for id in oa.keys().filter(|id| !na.contains_key(*id)) {
            out.push(Change::GroupArea {
                group: group(),
                id: id.clone(),
                before: oa.get(id).copied(),
                after: None,
            });
        }
        if o.default_action != g.default_action {
            out.push(Change::GroupDefaultAction {
                group: group(),
                before: o.default_action,
                after: g.default_action,
            });
        }
        if o.sinkhole != g.sinkhole {
            out.push(Change::GroupSinkhole(group()));
        }
    }
    for name in old_g.keys().filter(|n| !new_g.contains_key(*n)) {
        out.push(Change::GroupRemoved((*name).clone()));
    }
}

fn rule_line(r: &RuleSummary) -> String {
    let mut s = String::new();
    if let Some(g) = &r.group {
        s.push_str(&format!("[group {g}] "));
    }
    s.push_str(&format!("{} {}", r.action, r.pattern));
    if let Some(n) = &r.note {
        s.push_str(&format!(" ({n})"));
    }
    s
}

/// The human-readable form `winsink check` prints.
impl fmt::Display for Summary {
    /// One block per section, in the config file's order. Long, but only plain writes:
    /// kept in one piece so that the printed layout reads top to bottom.
    #[allow(clippy::too_many_lines)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "catalogs: {}", self.catalogs.len())?;
        for c in &self.catalogs {
            writeln!(
                f,
                "  {} ({}): {} areas, {} endpoints",
                c.title, c.origin, c.areas, c.endpoints
            )?;
        }
        writeln!(
            f,
            "areas: {} (default action: {})",
            self.areas.len(),
            self.default_action
        )?;
        let width = self.areas.iter().map(|a| a.id.len()).max().unwrap_or(0);
        for a in &self.areas {
            writeln!(
                f,
                "  {:<5}  {:<width$}  {} ({} endpoint{})",
                a.action.as_str(),
                a.id,
                a.name,
                a.endpoints,
                if a.endpoints == 1 { "" } else { "s" }
            )?;
        }
        writeln!(f, "rules: {}", self.rules.len())?;
        for r in &self.rules {
            writeln!(f, "  {}", rule_line(r))?;
        }
        writeln!(f, "lists: {}", self.lists.len())?;
        for l in &self.lists {
            writeln!(
                f,
                "  {:<5}  {} ({}, {}): {} loaded, {} skipped, {} bad line{}",
                l.action.as_str(),
                l.label,
                l.url
                    .clone()
                    .unwrap_or_else(|| l.path.display().to_string()),
                l.format.as_str(),
                l.loaded,
                l.skipped,
                l.bad,
                if l.bad == 1 { "" } else { "s" }
            )?;
        }
        writeln!(f, "groups: {}", self.groups.len())?;
        for g in &self.groups {
            let areas: Vec<String> = g.areas.iter().map(|(id, a)| format!("{id}={a}")).collect();
            write!(
                f,
                "  {} [{}]: {} area override{}",
                g.name,
                g.clients.join(", "),
                g.areas.len(),
                if g.areas.len() == 1 { "" } else { "s" }
            )?;
            if !areas.is_empty() {
                write!(f, " ({})", areas.join(", "))?;
            }
            if let Some(a) = g.default_action {
                write!(f, ", other areas {a}")?;
            }
            write!(
                f,
                ", {} rule{}",
                g.rules,
                if g.rules == 1 { "" } else { "s" }
            )?;
            if let Some(s) = &g.sinkhole {
                write!(
                    f,
                    ", sinkhole {}",
                    serde_json::to_string(&s.mode)
                        .unwrap_or_default()
                        .trim_matches('"')
                )?;
            }
            writeln!(f)?;
        }
        write!(f, "patterns in the matcher: {}", self.patterns)
    }
}
