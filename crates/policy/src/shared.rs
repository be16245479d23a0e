//! What a block takes from others: blocked endpoints that another, non-blocked area also
//! uses, and blocked endpoints that are general-purpose hosts.
//!
//! Microsoft's page lists some names under more than one area
//! (`self.events.data.microsoft.com` is Diagnostic Data and Office) and some hosts that
//! are far more than their area (`www.microsoft.com`, Microsoft's main website, is listed
//! under Diagnostic Data). Block wins, so blocking the one area cuts off the other, or a
//! website. `winsink check` lists both kinds per blocked area
//! ([`Policy::shared_endpoints`]), and loading a policy warns about each shared name. An
//! operator who means it says so, and the warning goes (the list in `check` stays, marked
//! acknowledged):
//!
//! ```toml
//! [areas]
//! diagnostic-data = { action = "block", acknowledge_shared = ["self.events.data.microsoft.com"] }
//! ```
//!
//! or gives the name an explicit `[[rules]]` entry (any action).

use std::collections::BTreeSet;

use serde::Serialize;

use crate::decision::{Action, Decision, Match, MatchSource, Verdict};
use crate::policy::Policy;

/// Hosts of the shipped catalog that serve far more than their area: a block of the area
/// takes them from every user and every other program. The name, and what it is.
///
/// The choice is a judgement, kept short on purpose: the sites people open in a browser,
/// and the sign-in every Microsoft service uses.
pub const GENERAL_PURPOSE_HOSTS: &[(&str, &str)] = &[
    ("www.microsoft.com", "Microsoft's main website"),
    ("www.bing.com", "Bing search"),
    ("www.msn.com", "the MSN portal"),
    ("www.office.com", "Office on the web"),
    ("onedrive.live.com", "OneDrive on the web"),
    ("teams.live.com", "Teams on the web"),
    (
        "login.live.com",
        "Microsoft account sign-in, used by every Microsoft service",
    ),
];

/// What a name is, if it is one of [`GENERAL_PURPOSE_HOSTS`].
pub fn general_purpose(name: &str) -> Option<&'static str> {
    GENERAL_PURPOSE_HOSTS
        .iter()
        .find(|(host, _)| host.eq_ignore_ascii_case(name))
        .map(|&(_, what)| what)
}

/// One endpoint of a blocked area that another non-blocked area also uses, or that is a
/// general-purpose host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SharedEndpoint {
    /// The client group whose area actions these are; `None`: the global `[areas]`.
    pub group: Option<String>,
    /// The blocked area's id.
    pub area_id: String,
    /// The blocked area's name.
    pub area_name: String,
    /// The name (a catalog pattern, with `x` for a wildcard's `*`).
    pub name: String,
    /// What the host is, when it is general-purpose.
    pub general_purpose: Option<&'static str>,
    /// The other areas that use it and are not blocked: `Office (office): log`.
    pub also_used_by: Vec<String>,
    /// What the name gets: `block`, or e.g. `allow` when a rule allows it.
    pub verdict: Verdict,
    /// What decided that (`rule www.microsoft.com (note)`).
    pub decided_by: String,
    /// How the operator said it is meant (`acknowledge_shared at winsink.toml:40`,
    /// `rule www.microsoft.com`); `None`: not acknowledged, so loading warns.
    pub acknowledged: Option<String>,
}

/// One name that a block would take from someone, under one area-action set.
struct Finding<'p> {
    set: usize,
    name: String,
    decision: Decision<'p>,
    /// Matches whose action is `block`.
    blockers: Vec<Match<'p>>,
    /// Area matches whose action is not `block`.
    others: Vec<Match<'p>>,
    general: Option<&'static str>,
    acknowledged: Option<String>,
}

impl Policy {
    /// Every endpoint of a blocked area that another, non-blocked area uses too, or that
    /// is a general-purpose host ([`GENERAL_PURPOSE_HOSTS`]): for the global `[areas]`,
    /// then for each group's own, ordered by area and name.
    pub fn shared_endpoints(&self) -> Vec<SharedEndpoint> {
        let (findings, _) = findings(self);
        let mut out = Vec::new();
        for f in &findings {
            let group = f.set.checked_sub(1).map(|g| self.groups[g].name.clone());
            let also: Vec<String> = f
                .others
                .iter()
                .filter_map(|m| {
                    m.area
                        .map(|a| format!("{} ({}): {}", a.name, a.id, m.action))
                })
                .collect();
            let mut seen = BTreeSet::new();
            for b in &f.blockers {
                let Some(area) = b.area else { continue };
                if !seen.insert(area.id) {
                    continue;
                }
                out.push(SharedEndpoint {
                    group: group.clone(),
                    area_id: area.id.to_owned(),
                    area_name: area.name.to_owned(),
                    name: f.name.clone(),
                    general_purpose: f.general,
                    also_used_by: also.clone(),
                    verdict: f.decision.verdict,
                    decided_by: f
                        .decision
                        .decided_by()
                        .map_or_else(String::new, |d| d.to_string()),
                    acknowledged: f.acknowledged.clone(),
                });
            }
        }
        out.sort_by(|a, b| {
            (a.group.is_some(), &a.group, &a.area_id, &a.name).cmp(&(
                b.group.is_some(),
                &b.group,
                &b.area_id,
                &b.name,
            ))
        });
        out
    }
}

/// The warnings of a load: one per name that a block takes from another area, unless
/// acknowledged; and one per `acknowledge_shared` entry that acknowledges nothing (a typo
/// would otherwise keep the warning it was meant for). General-purpose hosts are listed
/// by `winsink check` ([`Policy::shared_endpoints`]), not warned about on every load: a
/// strict lab blocks them on purpose.
pub(crate) fn warnings(policy: &Policy) -> Vec<String> {
    let (findings, used) = findings(policy);
    let mut out = Vec::new();
    let mut global = BTreeSet::new();
    for f in &findings {
        if f.decision.verdict != Verdict::Block || f.acknowledged.is_some() {
            continue;
        }
        let by_area = f.blockers.iter().any(|m| m.area.is_some());
        let allowed = f.others.iter().any(|m| m.action == Action::Allow);
        // A block rule over a `log` area is what rules are for, and is not worth a line
        // per name; over an `allow` area, or an area over another area, it is.
        if f.others.is_empty() || !(by_area || allowed) {
            continue;
        }
        let mut line = format!(
            "{} is blocked by {} but also used by {}",
            f.name,
            list(&f.blockers, false),
            list(&f.others, true)
        );
        line.push_str(
            ": block wins (if that is meant, say so in the area's `acknowledge_shared` or \
             with a [[rules]] entry for the name)",
        );
        match f.set.checked_sub(1) {
            None => {
                global.insert(line.clone());
                out.push(line);
            }
            Some(g) if !global.contains(&line) => {
                out.push(format!("group `{}`: {line}", policy.groups[g].name));
            }
            Some(_) => {}
        }
    }
    for (i, ack) in policy.acknowledged.iter().enumerate() {
        if !used.contains(&i) {
            out.push(format!(
                "{}: acknowledge_shared of area {}: {} is not an endpoint it shares with \
                 another area, nor a general-purpose host it blocks; nothing to acknowledge",
                ack.at, policy.areas[ack.area as usize].id, ack.name
            ));
        }
    }
    out
}

/// Every (area-action set, name) where a matched `block` meets another area that is not
/// blocked, or a general-purpose host; with the indices of the `acknowledge_shared`
/// entries that applied to any of them.
fn findings(policy: &Policy) -> (Vec<Finding<'_>>, BTreeSet<usize>) {
    let samples: BTreeSet<String> = policy
        .endpoints
        .iter()
        .map(|e| e.pattern.as_str())
        .chain(policy.rules.iter().map(|r| r.pattern.as_str()))
        .map(|p| p.replace('*', "x").to_ascii_lowercase())
        .collect();
    let mut out = Vec::new();
    let mut used = BTreeSet::new();
    for set in 0..policy.area_actions.len() {
        let group = set
            .checked_sub(1)
            .map(|g| u32::try_from(g).unwrap_or(u32::MAX));
        for name in &samples {
            let decision = policy.decide_in(group, name);
            let mut blockers: Vec<Match<'_>> = Vec::new();
            let mut others: Vec<Match<'_>> = Vec::new();
            let mut explicit_rule = None;
            for m in decision.matches() {
                if m.action == Action::Block {
                    blockers.push(m);
                } else if m.area.is_some() {
                    others.push(m);
                }
            }
            let general = general_purpose(name);
            let by_area = blockers.iter().any(|m| m.area.is_some());
            if blockers.is_empty() || (others.is_empty() && !(general.is_some() && by_area)) {
                continue;
            }
            // The name as the operator may write it: the sample, or a catalog pattern.
            let catalog_patterns: Vec<&str> = decision
                .matches()
                .filter(|m| m.area.is_some())
                .map(|m| m.pattern)
                .collect();
            let names_it = |s: &str| {
                s.trim_end_matches('.').eq_ignore_ascii_case(name)
                    || catalog_patterns.iter().any(|p| p.eq_ignore_ascii_case(s))
            };
            for m in decision.matches() {
                if matches!(m.source, MatchSource::Rule(_)) && names_it(m.pattern) {
                    explicit_rule = Some(format!("rule {}", m.pattern));
                    break;
                }
            }
            let areas: Vec<&str> = decision.areas().map(|a| a.id).collect();
            let ack = policy.acknowledged.iter().enumerate().find(|(_, a)| {
                (a.set == 0 || a.set == set)
                    && areas.contains(&policy.areas[a.area as usize].id.as_str())
                    && names_it(&a.name)
            });
            if let Some((i, _)) = ack {
                used.insert(i);
            }
            let acknowledged = explicit_rule.or_else(|| {
                ack.map(|(_, a)| {
                    format!(
                        "acknowledge_shared of area {} at {}",
                        policy.areas[a.area as usize].id, a.at
                    )
                })
            });
            out.push(Finding {
                set,
                name: name.clone(),
                decision,
                blockers,
                others,
                general,
                acknowledged,
            });
        }
    }
    (out, used)
}

/// `area Office (office), rule x` (with the action after each, when `actions`), each
/// area named once.
fn list(matches: &[Match<'_>], actions: bool) -> String {
    let mut parts: Vec<String> = Vec::new();
    for m in matches {
        let mut part = match (m.area, m.source) {
            (Some(a), _) => format!("area {} ({})", a.name, a.id),
            (None, MatchSource::Rule(_)) => format!("rule {}", m.pattern),
            (None, src) => format!("{src}"),
        };
        if actions {
            part.push_str(&format!(" ({})", m.action));
        }
        if !parts.contains(&part) {
            parts.push(part);
        }
    }
    parts.join(", ")
}
