//! The finished report: the tally in catalog order, sorted and named. Its serde form is
//! `winsink report --format json`:
//!
//! ```json
//! {"inputs": [{"name", "lines", "broken", "error": null}],
//!  "lines", "broken", "filtered", "queries",
//!  "broken_examples": [{"input", "line", "error"}],
//!  "first_seen", "last_seen",
//!  "filter": {"since", "until", "clients": []},
//!  "totals": {"decisions": {"block": 0, "log": 0, "allow": 0, "pass": 0, "refuse": 0,
//!                           "invalid": 0}, "rcodes": {"NOERROR": 0}},
//!  "decided_by_rules": {"block", "log", "allow"},
//!  "areas": [{"id", "name", "in_catalog", "configured", "action",
//!             "actions_seen": [{"action", "queries", "first_seen", "last_seen"}],
//!             "queries", "blocked", "would_block", "allowed", "clients",
//!             "first_seen", "last_seen", "impact",
//!             "endpoints": [{"pattern", "in_catalog", "protocols", "description",
//!                            "queries", "blocked", "would_block", "allowed", "clients",
//!                            "first_seen", "last_seen",
//!                            "names": [{"name", "queries"}]}]}],
//!  "clients": [{"client", "queries", "blocked", "first_seen", "last_seen",
//!               "areas": [{"id", "queries"}]}],
//!  "uncatalogued": {"suffixes": [], "queries", "distinct",
//!                   "names": [{"name", "queries", "clients", "first_seen", "last_seen",
//!                              "decisions": {"pass": 0}}]},
//!  "other_names", "days": [{"day", "queries", "decisions": {…}}]}
//! ```
//!
//! Times are RFC 3339 UTC to the second, `null` when nothing was seen. Areas are in
//! catalog order (then the areas only the log names), endpoints in catalog order (then the
//! patterns only the log names), clients and names by queries, most first.

use std::collections::BTreeMap;

use serde::Serialize;

use super::index::Index;
use super::tally::{AreaTally, EndpointTally, Figures, Span, Tally, DECISIONS, OTHER};
use super::time;

/// The whole report.
#[derive(Debug, Serialize)]
pub(crate) struct Report {
    pub(crate) inputs: Vec<InputReport>,
    pub(crate) lines: u64,
    pub(crate) broken: u64,
    pub(crate) filtered: u64,
    pub(crate) queries: u64,
    pub(crate) broken_examples: Vec<BrokenReport>,
    pub(crate) first_seen: Option<String>,
    pub(crate) last_seen: Option<String>,
    pub(crate) filter: FilterReport,
    pub(crate) totals: Totals,
    pub(crate) decided_by_rules: BTreeMap<&'static str, u64>,
    pub(crate) areas: Vec<AreaReport>,
    pub(crate) clients: Vec<ClientReport>,
    pub(crate) uncatalogued: Uncatalogued,
    pub(crate) other_names: u64,
    pub(crate) days: Vec<DayReport>,
}

/// One input.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct InputReport {
    pub(crate) name: String,
    pub(crate) lines: u64,
    pub(crate) broken: u64,
    /// A read error that ended the input early (a truncated gzip file, an I/O error).
    pub(crate) error: Option<String>,
}

/// A quoted broken line.
#[derive(Debug, Serialize)]
pub(crate) struct BrokenReport {
    pub(crate) input: String,
    pub(crate) line: u64,
    pub(crate) error: String,
}

/// The filter the lines went through.
#[derive(Debug, Serialize)]
pub(crate) struct FilterReport {
    pub(crate) since: Option<String>,
    pub(crate) until: Option<String>,
    pub(crate) clients: Vec<String>,
}

/// Counts by decision and by rcode.
#[derive(Debug, Serialize)]
pub(crate) struct Totals {
    pub(crate) decisions: BTreeMap<String, u64>,
    pub(crate) rcodes: BTreeMap<String, u64>,
}

/// One area.
#[derive(Debug, Serialize)]
pub(crate) struct AreaReport {
    pub(crate) id: String,
    pub(crate) name: String,
    /// Whether the catalog has it (else only the log names it).
    pub(crate) in_catalog: bool,
    /// The action the loaded config gives it.
    pub(crate) configured: Option<&'static str>,
    /// The action in force at the end, from the lines it decided (the action of the
    /// latest line); `null` when it decided none.
    pub(crate) action: Option<&'static str>,
    pub(crate) actions_seen: Vec<ActionSeen>,
    #[serde(flatten)]
    pub(crate) figures: FiguresReport,
    pub(crate) impact: String,
    pub(crate) endpoints: Vec<EndpointReport>,
}

/// An action an area took, and when.
#[derive(Debug, Serialize)]
pub(crate) struct ActionSeen {
    pub(crate) action: &'static str,
    pub(crate) queries: u64,
    pub(crate) first_seen: String,
    pub(crate) last_seen: String,
}

/// The figures of an area or endpoint.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FiguresReport {
    pub(crate) queries: u64,
    pub(crate) blocked: u64,
    pub(crate) would_block: u64,
    pub(crate) allowed: u64,
    pub(crate) clients: usize,
    pub(crate) first_seen: Option<String>,
    pub(crate) last_seen: Option<String>,
}

/// One endpoint of an area.
#[derive(Debug, Serialize)]
pub(crate) struct EndpointReport {
    pub(crate) pattern: String,
    pub(crate) in_catalog: bool,
    pub(crate) protocols: Vec<String>,
    pub(crate) description: String,
    #[serde(flatten)]
    pub(crate) figures: FiguresReport,
    pub(crate) names: Vec<NameCount>,
}

/// A name and its count.
#[derive(Debug, Serialize)]
pub(crate) struct NameCount {
    pub(crate) name: String,
    pub(crate) queries: u64,
}

/// One client.
#[derive(Debug, Serialize)]
pub(crate) struct ClientReport {
    pub(crate) client: String,
    pub(crate) queries: u64,
    pub(crate) blocked: u64,
    pub(crate) first_seen: Option<String>,
    pub(crate) last_seen: Option<String>,
    pub(crate) areas: Vec<ClientArea>,
}

/// A client's queries of one area.
#[derive(Debug, Serialize)]
pub(crate) struct ClientArea {
    pub(crate) id: String,
    pub(crate) queries: u64,
}

/// Names under Microsoft suffixes that no catalog area matched.
#[derive(Debug, Serialize)]
pub(crate) struct Uncatalogued {
    pub(crate) suffixes: Vec<String>,
    pub(crate) queries: u64,
    pub(crate) distinct: usize,
    pub(crate) names: Vec<NameReport>,
}

/// One uncatalogued name.
#[derive(Debug, Serialize)]
pub(crate) struct NameReport {
    pub(crate) name: String,
    pub(crate) queries: u64,
    pub(crate) clients: usize,
    pub(crate) first_seen: Option<String>,
    pub(crate) last_seen: Option<String>,
    pub(crate) decisions: BTreeMap<&'static str, u64>,
}

/// One day (UTC).
#[derive(Debug, Serialize)]
pub(crate) struct DayReport {
    pub(crate) day: String,
    pub(crate) queries: u64,
    pub(crate) decisions: BTreeMap<&'static str, u64>,
}

fn first(s: Option<Span>) -> Option<String> {
    s.map(|s| time::format(s.first))
}

fn last(s: Option<Span>) -> Option<String> {
    s.map(|s| time::format(s.last))
}

fn figures(f: &Figures) -> FiguresReport {
    FiguresReport {
        queries: f.queries,
        blocked: f.blocked,
        would_block: f.would_block,
        allowed: f.allowed,
        clients: f.clients.len(),
        first_seen: first(f.seen),
        last_seen: last(f.seen),
    }
}

fn decision_map(counts: &[u64; OTHER + 1], keep_zero: bool) -> BTreeMap<&'static str, u64> {
    DECISIONS
        .iter()
        .zip(counts)
        .filter(|(_, n)| keep_zero || **n > 0)
        .map(|(d, n)| (*d, *n))
        .chain((counts[OTHER] > 0).then_some(("other", counts[OTHER])))
        .collect()
}

/// What the report was asked.
pub(crate) struct Request<'a> {
    pub(crate) filter: FilterReport,
    pub(crate) inputs: Vec<InputReport>,
    /// Uncatalogued names listed (the most asked).
    pub(crate) top: usize,
    pub(crate) index: &'a Index,
}

/// Builds the report.
pub(crate) fn build(t: Tally, req: Request<'_>) -> Report {
    let index = req.index;
    let areas = (0..t.areas.len())
        .map(|slot| area_report(&t, index, slot))
        .collect();
    let clients = client_reports(&t, index);
    let uncatalogued = uncatalogued(&t, index, req.top);
    let mut days: Vec<(&i64, &[u64; OTHER + 1])> = t.days.iter().collect();
    days.sort_by_key(|(d, _)| **d);
    let mut decisions: BTreeMap<String, u64> = decision_map(&t.decisions, true)
        .into_iter()
        .filter(|(d, _)| *d != "other")
        .map(|(d, n)| (d.to_owned(), n))
        .collect();
    for (d, n) in &t.other_decisions {
        decisions.insert(d.to_string(), *n);
    }

    Report {
        inputs: req.inputs,
        lines: t.lines,
        broken: t.broken,
        filtered: t.filtered,
        queries: t.queries,
        broken_examples: t
            .broken_examples
            .iter()
            .map(|b| BrokenReport {
                input: b.input.clone(),
                line: b.line,
                error: b.error.clone(),
            })
            .collect(),
        first_seen: first(t.seen),
        last_seen: last(t.seen),
        filter: req.filter,
        totals: Totals {
            decisions,
            rcodes: t.rcodes.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        },
        decided_by_rules: ["block", "log", "allow"]
            .into_iter()
            .zip(t.decided_by_rules)
            .collect(),
        areas,
        clients,
        uncatalogued,
        other_names: t.other_names,
        days: days
            .into_iter()
            .map(|(d, counts)| DayReport {
                day: time::format_day(*d),
                queries: counts.iter().sum(),
                decisions: decision_map(counts, true),
            })
            .collect(),
    }
}

/// The id of the area in `slot`: the index's areas first, then those only the log named.
fn area_id(t: &Tally, index: &Index, slot: usize) -> String {
    match index.areas.get(slot) {
        Some(a) => a.id.clone(),
        None => t.extra_areas[slot - index.areas.len()].id.to_string(),
    }
}

/// The area in `slot`: its catalog endpoints in catalog order, then the patterns only
/// the log named, sorted.
fn area_report(t: &Tally, index: &Index, slot: usize) -> AreaReport {
    let a = &t.areas[slot];
    let def = index.areas.get(slot);
    let mut endpoints = Vec::new();
    let mut tallies: Vec<(&str, &EndpointTally)> =
        a.endpoints.iter().map(|(p, e)| (&**p, e)).collect();
    if let Some(def) = def {
        for ep in &def.endpoints {
            let e = a.endpoints.get(ep.pattern.as_str());
            tallies.retain(|(p, _)| *p != ep.pattern);
            endpoints.push(endpoint_report(
                &ep.pattern,
                true,
                &ep.protocols,
                &ep.description,
                e,
            ));
        }
    }
    tallies.sort_by_key(|(p, _)| *p);
    for (p, e) in tallies {
        endpoints.push(endpoint_report(p, false, &[], "", Some(e)));
    }
    let (actions_seen, latest) = actions_seen(a);
    let (name, impact) = match def {
        Some(d) => (d.name.clone(), d.impact.clone()),
        None => (
            t.extra_areas[slot - index.areas.len()].name.to_string(),
            String::new(),
        ),
    };
    AreaReport {
        id: area_id(t, index, slot),
        name,
        in_catalog: def.is_some(),
        configured: def
            .and_then(|d| d.configured)
            .map(winsink_policy::Action::as_str),
        action: latest,
        actions_seen,
        figures: figures(&a.figures),
        impact,
        endpoints,
    }
}

/// One endpoint of an area, with the names that matched it, the most asked first.
fn endpoint_report(
    pattern: &str,
    in_catalog: bool,
    protocols: &[String],
    description: &str,
    e: Option<&EndpointTally>,
) -> EndpointReport {
    let mut names: Vec<NameCount> = e
        .map(|e| {
            e.names
                .iter()
                .map(|(n, c)| NameCount {
                    name: n.to_string(),
                    queries: *c,
                })
                .collect()
        })
        .unwrap_or_default();
    names.sort_by(|x, y| y.queries.cmp(&x.queries).then_with(|| x.name.cmp(&y.name)));
    EndpointReport {
        pattern: pattern.to_owned(),
        in_catalog,
        protocols: protocols.to_vec(),
        description: description.to_owned(),
        figures: e.map(|e| figures(&e.figures)).unwrap_or_default(),
        names,
    }
}

/// The actions an area was seen taking, in the order first seen, and the latest one.
fn actions_seen(a: &AreaTally) -> (Vec<ActionSeen>, Option<&'static str>) {
    let mut seen: Vec<ActionSeen> = a
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, (n, span))| {
            let span = (*n > 0).then_some(*span).flatten()?;
            Some((i, *n, span))
        })
        .map(|(i, n, span)| ActionSeen {
            action: DECISIONS[i],
            queries: n,
            first_seen: time::format(span.first),
            last_seen: time::format(span.last),
        })
        .collect();
    let latest = a
        .actions
        .iter()
        .enumerate()
        .filter_map(|(i, (n, span))| (*n > 0).then_some((i, (*span)?.last)))
        .max_by_key(|(_, last)| *last)
        .map(|(i, _)| DECISIONS[i]);
    seen.sort_by(|x, y| x.first_seen.cmp(&y.first_seen));
    (seen, latest)
}

/// The clients, the busiest first, each with its areas, the most asked first.
fn client_reports(t: &Tally, index: &Index) -> Vec<ClientReport> {
    let mut clients: Vec<ClientReport> = t
        .clients
        .iter()
        .map(|(ip, c)| {
            let mut per_area: Vec<ClientArea> = c
                .areas
                .iter()
                .map(|(slot, n)| ClientArea {
                    id: area_id(t, index, *slot as usize),
                    queries: *n,
                })
                .collect();
            per_area.sort_by(|x, y| y.queries.cmp(&x.queries).then_with(|| x.id.cmp(&y.id)));
            ClientReport {
                client: ip.to_string(),
                queries: c.queries,
                blocked: c.blocked,
                first_seen: first(c.seen),
                last_seen: last(c.seen),
                areas: per_area,
            }
        })
        .collect();
    clients.sort_by(|x, y| {
        y.queries
            .cmp(&x.queries)
            .then_with(|| x.client.cmp(&y.client))
    });
    clients
}

/// The uncatalogued Microsoft names: the `top` most asked, with the totals of all.
fn uncatalogued(t: &Tally, index: &Index, top: usize) -> Uncatalogued {
    let mut names: Vec<NameReport> = t
        .uncatalogued
        .iter()
        .map(|(n, u)| NameReport {
            name: n.to_string(),
            queries: u.queries,
            clients: u.clients.len(),
            first_seen: first(u.seen),
            last_seen: last(u.seen),
            decisions: decision_map(&u.decisions, false),
        })
        .collect();
    names.sort_by(|x, y| y.queries.cmp(&x.queries).then_with(|| x.name.cmp(&y.name)));
    let distinct = names.len();
    let queries = names.iter().map(|n| n.queries).sum();
    names.truncate(top);
    Uncatalogued {
        suffixes: index.suffixes.as_slice().to_vec(),
        queries,
        distinct,
        names,
    }
}
