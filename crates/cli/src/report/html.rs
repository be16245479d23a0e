//! `--format html`: one self-contained file (inline CSS and SVG, no script, no network),
//! readable when mailed: the totals, a bar per area (blocked, would block, allowed, other
//! queries), a timeline per day (queries by decision), and the tables of the text report,
//! endpoints folded per area (`<details>`).

use std::fmt::Write as _;

use super::model::{FiguresReport, Report};

/// Decision colours, in the order of [`super::tally::DECISIONS`], then "other".
const COLOURS: [(&str, &str); 7] = [
    ("block", "#c0392b"),
    ("log", "#e67e22"),
    ("allow", "#27ae60"),
    ("pass", "#7f8c8d"),
    ("refuse", "#8e44ad"),
    ("invalid", "#34495e"),
    ("other", "#bdc3c7"),
];

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em;color:#222;max-width:80em}\
h1{font-size:1.6em}h2{font-size:1.25em;margin-top:2em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ddd;padding:.25em .5em;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\
th{background:#f4f4f4}code{font-size:.95em}\
.legend span{display:inline-block;margin-right:1em}\
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:-.1em}\
details{margin:.3em 0}summary{cursor:pointer}.muted{color:#777}";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn colour(decision: &str) -> &'static str {
    COLOURS
        .iter()
        .find(|(d, _)| *d == decision)
        .map_or(COLOURS[6].1, |(_, c)| c)
}

fn opt(s: Option<&String>) -> String {
    s.map_or_else(String::new, |s| esc(s))
}

/// Renders the report as one HTML file.
pub(crate) fn render(r: &Report) -> String {
    let mut s = String::new();
    head(&mut s, r);
    totals(&mut s, r);
    areas(&mut s, r);
    days_and_clients(&mut s, r);
    uncatalogued(&mut s, r);
    s
}

/// The document head, the summary line, the inputs and lines that are not query lines.
fn head(s: &mut String, r: &Report) {
    s.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    s.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">");
    let _ = writeln!(
        s,
        "<title>winsink lab report</title><style>{STYLE}</style></head><body>"
    );
    s.push_str("<h1>winsink lab report</h1>\n");
    let _ = writeln!(
        s,
        "<p>{} queries from {} clients, {} to {}.</p>",
        r.queries,
        r.clients.len(),
        opt(r.first_seen.as_ref()),
        opt(r.last_seen.as_ref())
    );
    s.push_str("<table><tr><th>Input</th><th class=n>Lines</th><th class=n>Not query lines</th><th>Note</th></tr>");
    for i in &r.inputs {
        let _ = write!(
            s,
            "<tr><td><code>{}</code></td><td class=n>{}</td><td class=n>{}</td><td>{}</td></tr>",
            esc(&i.name),
            i.lines,
            i.broken,
            i.error.as_deref().map(esc).unwrap_or_default()
        );
    }
    s.push_str("</table>\n");
    if !r.broken_examples.is_empty() {
        s.push_str("<p class=muted>Lines that are not query lines, e.g.: ");
        let ex: Vec<String> = r
            .broken_examples
            .iter()
            .map(|b| {
                format!(
                    "<code>{}:{}</code> {}",
                    esc(&b.input),
                    b.line,
                    esc(&b.error)
                )
            })
            .collect();
        s.push_str(&ex.join("; "));
        s.push_str("</p>\n");
    }
}

/// The decisions and rcodes.
fn totals(s: &mut String, r: &Report) {
    s.push_str("<h2>Totals</h2>\n<table><tr>");
    for d in r.totals.decisions.keys() {
        let _ = write!(s, "<th class=n>{}</th>", esc(d));
    }
    s.push_str("</tr><tr>");
    for n in r.totals.decisions.values() {
        let _ = write!(s, "<td class=n>{n}</td>");
    }
    s.push_str("</tr></table>\n<table><tr><th>rcode</th><th class=n>Queries</th></tr>");
    let mut rcodes: Vec<(&String, &u64)> = r.totals.rcodes.iter().collect();
    rcodes.sort_by(|a, b| b.1.cmp(a.1).then_with(|| a.0.cmp(b.0)));
    for (k, v) in rcodes {
        let _ = write!(s, "<tr><td>{}</td><td class=n>{v}</td></tr>", esc(k));
    }
    s.push_str("</table>\n");
}

/// The area chart and table, then each asked area's endpoints in a `<details>`.
fn areas(s: &mut String, r: &Report) {
    s.push_str("<h2>Areas</h2>\n");
    area_chart(s, r);
    s.push_str(
        "<table><tr><th>Area</th><th>Action</th><th class=n>Queries</th><th class=n>Blocked</th>\
         <th class=n>Would block</th><th class=n>Allowed</th><th class=n>Clients</th>\
         <th>First seen</th><th>Last seen</th></tr>\n",
    );
    for a in &r.areas {
        let action = match (a.action, a.configured) {
            (Some(seen), Some(cfg)) if seen != cfg => format!("{seen} (config now: {cfg})"),
            (Some(seen), _) => seen.to_owned(),
            (None, Some(cfg)) => format!("<span class=muted>{cfg} (config)</span>"),
            (None, None) => String::new(),
        };
        let _ = write!(
            s,
            "<tr><td>{} <code class=muted>{}</code></td><td>{action}</td>",
            esc(&a.name),
            esc(&a.id)
        );
        figure_cells(s, &a.figures);
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    for a in r.areas.iter().filter(|a| a.figures.queries > 0) {
        let _ = write!(
            s,
            "<details><summary>{} — {} queries</summary>",
            esc(&a.name),
            a.figures.queries
        );
        if !a.impact.is_empty() {
            let _ = write!(s, "<p class=muted>Blocking it: {}</p>", esc(&a.impact));
        }
        s.push_str(
            "<table><tr><th>Endpoint</th><th class=n>Queries</th><th class=n>Blocked</th>\
             <th class=n>Would block</th><th class=n>Allowed</th><th class=n>Clients</th>\
             <th>First seen</th><th>Last seen</th><th>Names seen</th></tr>",
        );
        for e in a.endpoints.iter().filter(|e| e.figures.queries > 0) {
            let _ = write!(s, "<tr><td><code>{}</code></td>", esc(&e.pattern));
            figure_cells(s, &e.figures);
            let names: Vec<String> = e
                .names
                .iter()
                .map(|n| format!("<code>{}</code> ({})", esc(&n.name), n.queries))
                .collect();
            let _ = write!(s, "<td>{}</td></tr>", names.join("<br>"));
        }
        s.push_str("</table></details>\n");
    }
}

/// The per-day chart and the clients table.
fn days_and_clients(s: &mut String, r: &Report) {
    s.push_str("<h2>Per day (UTC)</h2>\n");
    day_chart(s, r);

    s.push_str("<h2>Clients</h2>\n<table><tr><th>Client</th><th class=n>Queries</th><th class=n>Blocked</th><th>First seen</th><th>Last seen</th><th>Queries per area</th></tr>\n");
    for c in &r.clients {
        let areas: Vec<String> = c
            .areas
            .iter()
            .map(|a| format!("{} {}", esc(&a.id), a.queries))
            .collect();
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td class=n>{}</td><td class=n>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&c.client),
            c.queries,
            c.blocked,
            opt(c.first_seen.as_ref()),
            opt(c.last_seen.as_ref()),
            areas.join(", ")
        );
    }
    s.push_str("</table>\n");
}

/// The names not in the catalog, and the end of the document.
fn uncatalogued(s: &mut String, r: &Report) {
    let u = &r.uncatalogued;
    let _ = writeln!(
        s,
        "<h2>Seen in this lab, not in the catalog</h2>\n<p>Names under Microsoft-owned \
         domains that no catalog area lists: {} queries of {} names. Other names without an \
         area: {} queries.</p>",
        u.queries, u.distinct, r.other_names
    );
    s.push_str("<table><tr><th>Name</th><th class=n>Queries</th><th class=n>Clients</th><th>First seen</th><th>Last seen</th></tr>\n");
    for n in &u.names {
        let _ = writeln!(
            s,
            "<tr><td><code>{}</code></td><td class=n>{}</td><td class=n>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&n.name),
            n.queries,
            n.clients,
            opt(n.first_seen.as_ref()),
            opt(n.last_seen.as_ref())
        );
    }
    s.push_str("</table>\n<p class=muted>Made by <code>winsink report --format html</code>.</p>\n</body></html>\n");
}

fn figure_cells(s: &mut String, f: &FiguresReport) {
    let _ = write!(
        s,
        "<td class=n>{}</td><td class=n>{}</td><td class=n>{}</td><td class=n>{}</td>\
         <td class=n>{}</td><td>{}</td><td>{}</td>",
        f.queries,
        f.blocked,
        f.would_block,
        f.allowed,
        f.clients,
        opt(f.first_seen.as_ref()),
        opt(f.last_seen.as_ref())
    );
}

fn legend(s: &mut String, items: &[(&str, &str)]) {
    s.push_str("<p class=legend>");
    for (label, c) in items {
        let _ = write!(
            s,
            "<span><i style=\"background:{c}\"></i>{}</span>",
            esc(label)
        );
    }
    s.push_str("</p>\n");
}

/// Horizontal bars, one per area with queries: blocked, would block, allowed, other.
fn area_chart(s: &mut String, r: &Report) {
    let areas: Vec<_> = r.areas.iter().filter(|a| a.figures.queries > 0).collect();
    if areas.is_empty() {
        s.push_str("<p class=muted>No catalog area was asked for.</p>\n");
        return;
    }
    let max = areas
        .iter()
        .map(|a| a.figures.queries)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (label_w, bar_w, row_h) = (260.0, 520.0, 22.0);
    let height = row_h * areas.len() as f64 + 10.0;
    legend(
        s,
        &[
            ("blocked", colour("block")),
            ("would block", colour("log")),
            ("allowed", colour("allow")),
            ("other queries of the area", COLOURS[6].1),
        ],
    );
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" \
         aria-label=\"Queries per area\" font-size=\"12\">",
        label_w + bar_w + 80.0
    );
    for (i, a) in areas.iter().enumerate() {
        let y = i as f64 * row_h + 4.0;
        let f = &a.figures;
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
            label_w - 6.0,
            y + 13.0,
            esc(&a.name)
        );
        let other = f
            .queries
            .saturating_sub(f.blocked + f.would_block + f.allowed);
        let mut x = label_w;
        for (n, c) in [
            (f.blocked, colour("block")),
            (f.would_block, colour("log")),
            (f.allowed, colour("allow")),
            (other, COLOURS[6].1),
        ] {
            let w = n as f64 / max * bar_w;
            if w > 0.0 {
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"{}\" fill=\"{c}\"><title>{n}</title></rect>",
                    row_h - 6.0
                );
            }
            x += w;
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\">{}</text>",
            x + 4.0,
            y + 13.0,
            f.queries
        );
    }
    s.push_str("</svg>\n");
}

/// Vertical bars, one per day, stacked by decision.
fn day_chart(s: &mut String, r: &Report) {
    if r.days.is_empty() {
        s.push_str("<p class=muted>No queries.</p>\n");
        return;
    }
    let max = r.days.iter().map(|d| d.queries).max().unwrap_or(1).max(1) as f64;
    let (h, bar, gap, left, bottom) = (200.0, 28.0, 8.0, 50.0, 40.0);
    let width = left + r.days.len() as f64 * (bar + gap) + 20.0;
    legend(s, &COLOURS);
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{}\" role=\"img\" \
         aria-label=\"Queries per day\" font-size=\"11\">",
        h + bottom
    );
    let _ = write!(
        s,
        "<line x1=\"{left}\" y1=\"{h}\" x2=\"{width}\" y2=\"{h}\" stroke=\"#999\"/>\
         <text x=\"{}\" y=\"10\" text-anchor=\"end\">{}</text>",
        left - 4.0,
        max as u64
    );
    for (i, d) in r.days.iter().enumerate() {
        let x = left + i as f64 * (bar + gap) + gap;
        let mut y = h;
        for (decision, n) in &d.decisions {
            let bh = *n as f64 / max * (h - 10.0);
            if bh > 0.0 {
                y -= bh;
                let _ = write!(
                    s,
                    "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar}\" height=\"{bh:.1}\" fill=\"{}\"><title>{} {decision}: {n}</title></rect>",
                    colour(decision),
                    esc(&d.day)
                );
            }
        }
        let _ = write!(
            s,
            "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"end\" transform=\"rotate(-45 {:.1} {})\">{}</text>",
            x + bar,
            h + 14.0,
            x + bar,
            h + 14.0,
            esc(d.day.get(5..).unwrap_or(&d.day))
        );
    }
    s.push_str("</svg>\n");
}
