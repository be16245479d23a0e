//! `--format markdown`: the report as a page in the layout of Microsoft's endpoint pages,
//! so that `winsink catalog import` reads it back into a catalog of what this lab saw.
//!
//! ```text
//! ---
//! title: winsink lab report
//! ms.date: 11/27/2026                    (the last day seen, the pages' date format)
//! ---
//! # winsink lab report
//! (prose: the span, the totals)
//! ## Catalog areas seen in this lab
//! | Area | Description | Protocol | Destination | Queries | Blocked | Would block | Clients | First seen | Last seen | Names seen |
//! ## Seen in this lab, not in the catalog
//! | Area | Description | Protocol | Destination | Queries | Clients | First seen | Last seen |
//! ```
//!
//! The first four columns are the page's: a row with an Area cell starts an area, a
//! Description cell applies to its row and the rows below it (written only where it
//! changes, as the page does), Destination is the catalog pattern. The figures are extra
//! columns, which the importer passes over. Only what was seen is listed: the catalog
//! endpoints that had queries, and the uncatalogued Microsoft names as one area,
//! [`UNCATALOGUED_AREA`], with one row per name. Cell text is escaped so that the
//! importer's clean-up gives the same text back.

use std::fmt::Write as _;

use super::model::Report;

/// The area the uncatalogued names get in the imported catalog.
pub(crate) const UNCATALOGUED_AREA: &str = "Uncatalogued Microsoft names";

/// Renders the report as a page.
pub(crate) fn render(r: &Report) -> String {
    let mut s = String::new();
    front_matter(&mut s, r);
    areas(&mut s, r);
    uncatalogued(&mut s, r);
    s
}

/// The front matter (`ms.date` from the last query) and the introduction.
fn front_matter(s: &mut String, r: &Report) {
    let date = r
        .last_seen
        .as_deref()
        .and_then(|t| {
            let (y, rest) = t.split_once('-')?;
            let (m, rest) = rest.split_once('-')?;
            Some(format!("{m}/{}/{y}", rest.get(..2)?))
        })
        .unwrap_or_default();
    let _ = writeln!(s, "---\ntitle: winsink lab report\nms.date: {date}\n---\n");
    s.push_str("# winsink lab report\n\n");
    let span = match (&r.first_seen, &r.last_seen) {
        (Some(f), Some(l)) => format!("from {f} to {l}"),
        _ => "(no queries)".to_owned(),
    };
    let _ = writeln!(
        s,
        "What this lab's Windows devices asked winsink for, {span}: {} queries from {} \
         clients ({}). Made by `winsink report --format markdown`; `winsink catalog import` \
         reads this page as a catalog of what the lab saw.\n",
        r.queries,
        r.clients.len(),
        r.totals
            .decisions
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(d, n)| format!("{d} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

/// The catalog areas asked for, as the page's area table: one row per endpoint.
fn areas(s: &mut String, r: &Report) {
    s.push_str("## Catalog areas seen in this lab\n\n");
    s.push_str(
        "| Area | Description | Protocol | Destination | Queries | Blocked | Would block | \
         Clients | First seen | Last seen | Names seen |\n",
    );
    s.push_str("|---|---|---|---|---:|---:|---:|---:|---|---|---|\n");
    let mut rows = 0;
    for a in r.areas.iter().filter(|a| a.figures.queries > 0) {
        let mut first = true;
        let mut last_description: Option<&str> = None;
        for e in a.endpoints.iter().filter(|e| e.figures.queries > 0) {
            let area = if first { cell(&a.name) } else { String::new() };
            first = false;
            let description = if last_description == Some(e.description.as_str()) {
                String::new()
            } else {
                last_description = Some(&e.description);
                cell(&e.description)
            };
            let names: Vec<String> = e
                .names
                .iter()
                .map(|n| format!("{} ({})", cell(&n.name), n.queries))
                .collect();
            let f = &e.figures;
            let _ = writeln!(
                s,
                "| {area} | {description} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                cell(&e.protocols.join("/")),
                destination(&e.pattern),
                f.queries,
                f.blocked,
                f.would_block,
                f.clients,
                f.first_seen.as_deref().unwrap_or(""),
                f.last_seen.as_deref().unwrap_or(""),
                names.join("<br>")
            );
            rows += 1;
        }
    }
    if rows == 0 {
        s.push_str("\nNo catalog endpoint was asked for.\n");
    }
}

/// The uncatalogued names, as one more area table the importer reads back.
fn uncatalogued(s: &mut String, r: &Report) {
    s.push_str("\n## Seen in this lab, not in the catalog\n\n");
    let u = &r.uncatalogued;
    let _ = writeln!(
        s,
        "Names under Microsoft-owned domains ({}) that no catalog area lists: {} queries of \
         {} names{}.\n",
        u.suffixes.join(", "),
        u.queries,
        u.distinct,
        if u.names.len() < u.distinct {
            format!(", the {} most asked listed", u.names.len())
        } else {
            String::new()
        }
    );
    if u.names.is_empty() {
        s.push_str("None.\n");
        return;
    }
    s.push_str("| Area | Description | Protocol | Destination | Queries | Clients | First seen | Last seen |\n");
    s.push_str("|---|---|---|---|---:|---:|---|---|\n");
    for (i, n) in u.names.iter().enumerate() {
        let (area, description) = if i == 0 {
            (
                cell(UNCATALOGUED_AREA),
                cell(
                    "Asked for by Windows in this lab, under a Microsoft-owned domain, and \
                     listed by no catalog area; what blocking it breaks is not known.",
                ),
            )
        } else {
            (String::new(), String::new())
        };
        let _ = writeln!(
            s,
            "| {area} | {description} |  | {} | {} | {} | {} | {} |",
            destination(&n.name),
            n.queries,
            n.clients,
            n.first_seen.as_deref().unwrap_or(""),
            n.last_seen.as_deref().unwrap_or("")
        );
    }
}

/// A Destination cell: the pattern as written (the page writes `*` bare, and the importer
/// keeps a destination's text as its `original`); only `|` needs escaping, and no DNS
/// name has one.
fn destination(pattern: &str) -> String {
    pattern.replace('|', "\\|")
}

/// Cell text: Markdown and HTML specials escaped, paragraph breaks as two `<br>`.
fn cell(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, para) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push_str("<br><br>");
        }
        for c in para.chars() {
            match c {
                '\\' | '|' | '*' | '_' | '`' | '[' | ']' | '<' | '>' | '#' => {
                    out.push('\\');
                    out.push(c);
                }
                '&' => out.push_str("&amp;"),
                '\n' | '\r' | '\t' => out.push(' '),
                c => out.push(c),
            }
        }
    }
    out
}
