//! `--format text`: the report to read in a terminal.

use std::fmt::Write as _;

use super::model::{FiguresReport, Report};

/// Names shown per endpoint.
const NAMES_SHOWN: usize = 5;
/// Clients shown.
const CLIENTS_SHOWN: usize = 20;

fn span(first: Option<&String>, last: Option<&String>) -> String {
    match (first, last) {
        (Some(f), Some(l)) if f == l => f.clone(),
        (Some(f), Some(l)) => format!("{f} – {l}"),
        _ => "never".to_owned(),
    }
}

fn figures(f: &FiguresReport) -> String {
    format!(
        "{} queries, {} blocked, {} would block, {} allowed, {} client{}, {}",
        f.queries,
        f.blocked,
        f.would_block,
        f.allowed,
        f.clients,
        if f.clients == 1 { "" } else { "s" },
        span(f.first_seen.as_ref(), f.last_seen.as_ref())
    )
}

/// Renders the report as text.
pub(crate) fn render(r: &Report) -> String {
    let mut s = String::new();
    header(&mut s, r);
    totals(&mut s, r);
    areas(&mut s, r);
    clients(&mut s, r);
    uncatalogued(&mut s, r);
    days(&mut s, r);
    s
}

/// The first lines: queries, span, inputs, lines that are not query lines.
fn header(s: &mut String, r: &Report) {
    let _ = writeln!(
        s,
        "winsink report: {} queries, {}",
        r.queries,
        span(r.first_seen.as_ref(), r.last_seen.as_ref())
    );
    for i in &r.inputs {
        let _ = write!(s, "  input {}: {} lines", i.name, i.lines);
        if i.broken > 0 {
            let _ = write!(s, ", {} not query lines", i.broken);
        }
        if let Some(e) = &i.error {
            let _ = write!(s, " (stopped: {e})");
        }
        s.push('\n');
    }
    if r.broken > 0 {
        let _ = writeln!(s, "  {} lines are not query lines, e.g.:", r.broken);
        for b in &r.broken_examples {
            let _ = writeln!(s, "    {}:{}: {}", b.input, b.line, b.error);
        }
    }
    if r.filtered > 0 {
        let _ = writeln!(
            s,
            "  {} query lines left out by --since/--until/--client",
            r.filtered
        );
    }
}

/// The decisions, rcodes and what rules or lists decided.
fn totals(s: &mut String, r: &Report) {
    let join = |m: &mut dyn Iterator<Item = (String, u64)>| -> String {
        m.map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        s,
        "\ndecisions: {}",
        join(&mut r.totals.decisions.iter().map(|(k, v)| (k.clone(), *v)))
    );
    let mut rcodes: Vec<(&String, &u64)> = r.totals.rcodes.iter().collect();
    rcodes.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    let _ = writeln!(
        s,
        "rcodes: {}",
        join(&mut rcodes.into_iter().map(|(k, v)| (k.clone(), *v)))
    );
    let rules: u64 = r.decided_by_rules.values().sum();
    if rules > 0 {
        let _ = writeln!(
            s,
            "decided by rules or lists: {}",
            join(
                &mut r
                    .decided_by_rules
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), *v))
            )
        );
    }
}

/// Each area with queries (its actions, figures, endpoints), then those without.
fn areas(s: &mut String, r: &Report) {
    s.push_str("\nareas\n");
    let mut silent = Vec::new();
    for a in &r.areas {
        if a.figures.queries == 0 {
            silent.push(a.id.as_str());
            continue;
        }
        let action = match (a.action, a.configured) {
            (Some(seen), Some(cfg)) if seen == cfg => format!("action {seen}"),
            (Some(seen), Some(cfg)) => format!("action {seen} (config now: {cfg})"),
            (Some(seen), None) => format!("action {seen}"),
            (None, Some(cfg)) => format!("decided nothing (config: {cfg})"),
            (None, None) => "decided nothing".to_owned(),
        };
        let _ = writeln!(
            s,
            "  {}  {}{}  {action}",
            a.id,
            a.name,
            if a.in_catalog {
                ""
            } else {
                " (not in the catalog)"
            }
        );
        if a.actions_seen.len() > 1 {
            for seen in &a.actions_seen {
                let _ = writeln!(
                    s,
                    "      {} {} queries, {} – {}",
                    seen.action, seen.queries, seen.first_seen, seen.last_seen
                );
            }
        }
        let _ = writeln!(s, "      {}", figures(&a.figures));
        for e in a.endpoints.iter().filter(|e| e.figures.queries > 0) {
            let _ = writeln!(s, "    {}: {}", e.pattern, figures(&e.figures));
            let shown: Vec<String> = e
                .names
                .iter()
                .take(NAMES_SHOWN)
                .map(|n| format!("{} ({})", n.name, n.queries))
                .collect();
            let only_itself = e.names.len() == 1 && e.names[0].name == e.pattern;
            if !(shown.is_empty() || only_itself) {
                let more = e.names.len().saturating_sub(NAMES_SHOWN);
                let _ = writeln!(
                    s,
                    "      names: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(", and {more} more")
                    } else {
                        String::new()
                    }
                );
            }
        }
    }
    if !silent.is_empty() {
        let _ = writeln!(
            s,
            "  {} area{} without queries: {}",
            silent.len(),
            if silent.len() == 1 { "" } else { "s" },
            silent.join(", ")
        );
    }
}

/// The busiest clients and their areas.
fn clients(s: &mut String, r: &Report) {
    if !r.clients.is_empty() {
        s.push_str("\nclients\n");
        for c in r.clients.iter().take(CLIENTS_SHOWN) {
            let areas: Vec<String> = c
                .areas
                .iter()
                .map(|a| format!("{} {}", a.id, a.queries))
                .collect();
            let _ = writeln!(
                s,
                "  {}: {} queries, {} blocked{}{}",
                c.client,
                c.queries,
                c.blocked,
                if areas.is_empty() { "" } else { "; " },
                areas.join(", ")
            );
        }
        if r.clients.len() > CLIENTS_SHOWN {
            let _ = writeln!(s, "  and {} more", r.clients.len() - CLIENTS_SHOWN);
        }
    }
}

/// The uncatalogued names under Microsoft suffixes, and the other names.
fn uncatalogued(s: &mut String, r: &Report) {
    let u = &r.uncatalogued;
    let _ = writeln!(
        s,
        "\nuncatalogued names under Microsoft suffixes: {} queries of {} name{}",
        u.queries,
        u.distinct,
        if u.distinct == 1 { "" } else { "s" }
    );
    for n in &u.names {
        let _ = writeln!(
            s,
            "  {}  {} queries, {} client{}, {}",
            n.name,
            n.queries,
            n.clients,
            if n.clients == 1 { "" } else { "s" },
            span(n.first_seen.as_ref(), n.last_seen.as_ref())
        );
    }
    if u.names.len() < u.distinct {
        let _ = writeln!(s, "  and {} more (see --top)", u.distinct - u.names.len());
    }
    let _ = writeln!(s, "other names without an area: {} queries", r.other_names);
}

/// Queries per day.
fn days(s: &mut String, r: &Report) {
    if !r.days.is_empty() {
        s.push_str("\nper day (UTC)\n");
        for d in &r.days {
            let parts: Vec<String> = d
                .decisions
                .iter()
                .filter(|(_, n)| **n > 0)
                .map(|(k, n)| format!("{k} {n}"))
                .collect();
            let _ = writeln!(
                s,
                "  {}: {} queries ({})",
                d.day,
                d.queries,
                parts.join(", ")
            );
        }
    }
}
