//! `winsink catalog diff OLD NEW`: what changed between two catalogs or two pages.

use std::fmt::Write as _;

use clap::Args;
use serde_json::json;
use winsink_catalog::diff::{diff, CatalogDiff, TextChange, WordChunk, WordOp};
use winsink_catalog::Catalog;

use crate::catalog_source::{self, PageText};

/// Arguments of `winsink catalog diff`.
#[derive(Debug, Args)]
pub(crate) struct DiffArgs {
    /// The old catalog: a page (.md, read as written), a catalog file (.toml) or
    /// builtin:NAME.
    old: String,
    /// The new catalog, named the same ways.
    new: String,
    /// Print JSON: {"old": {origin, title, url, date}, "new": {...}, "changes": N,
    /// "areas_added", "areas_removed", "areas_renamed", "endpoints_added",
    /// "endpoints_removed", "endpoints_moved", "descriptions_changed",
    /// "protocols_changed", "impacts_changed", "turn_off_changed"}.
    #[arg(long)]
    json: bool,
}

/// Words of context kept on each side of a change in a word diff.
const CONTEXT_WORDS: usize = 6;

/// Runs the command: the diff on stdout; `Err` (exit 2) when a side does not load.
pub(crate) fn run(args: &DiffArgs) -> anyhow::Result<String> {
    let old = catalog_source::load(&args.old, PageText::AsWritten)?;
    let new = catalog_source::load(&args.new, PageText::AsWritten)?;
    let d = diff(&old, &new);
    if args.json {
        let mut v = serde_json::to_value(&d)?;
        let side = |origin: &str, c: &Catalog| {
            json!({"origin": origin, "title": c.source.title, "url": c.source.url,
                   "date": c.source.date})
        };
        if let Some(obj) = v.as_object_mut() {
            obj.insert("old".into(), side(&args.old, &old));
            obj.insert("new".into(), side(&args.new, &new));
            obj.insert("changes".into(), d.change_count().into());
        }
        let mut s = serde_json::to_string_pretty(&v)?;
        s.push('\n');
        return Ok(s);
    }
    Ok(render(&args.old, &old, &args.new, &new, &d))
}

fn describe(origin: &str, c: &Catalog) -> String {
    let date = if c.source.date.is_empty() {
        "no date"
    } else {
        &c.source.date
    };
    format!("{origin} ({}, ms.date {date})", c.source.title)
}

/// The text form: a `---`/`+++` header, one line per change (`+` added, `-` removed,
/// `>` moved, `~` changed) with word diffs indented below, and a count line.
fn render(
    old_origin: &str,
    old: &Catalog,
    new_origin: &str,
    new: &Catalog,
    d: &CatalogDiff,
) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "--- {}", describe(old_origin, old));
    let _ = writeln!(s, "+++ {}", describe(new_origin, new));
    change_lines(&mut s, d);
    s.push_str(&count_line(d));
    s
}

/// One line per change, in the order of [`CatalogDiff`]'s fields.
fn change_lines(s: &mut String, d: &CatalogDiff) {
    for a in &d.areas_added {
        let _ = writeln!(s, "+ area {} ({}, {} endpoints)", a.id, a.name, a.endpoints);
    }
    for a in &d.areas_removed {
        let _ = writeln!(s, "- area {} ({}, {} endpoints)", a.id, a.name, a.endpoints);
    }
    for r in &d.areas_renamed {
        let _ = writeln!(
            s,
            "~ area {} → {}: {:?} → {:?}",
            r.old_id, r.new_id, r.old_name, r.new_name
        );
    }
    for e in &d.endpoints_added {
        let _ = writeln!(
            s,
            "+ endpoint {}  {}  {}",
            e.area,
            e.pattern,
            protocols(&e.protocols)
        );
    }
    for e in &d.endpoints_removed {
        let _ = writeln!(
            s,
            "- endpoint {}  {}  {}",
            e.area,
            e.pattern,
            protocols(&e.protocols)
        );
    }
    for m in &d.endpoints_moved {
        let _ = writeln!(s, "> endpoint {}: {} → {}", m.pattern, m.from, m.to);
    }
    for c in &d.descriptions_changed {
        text_change(s, "description", c);
    }
    for p in &d.protocols_changed {
        let _ = writeln!(
            s,
            "~ protocols {}  {}: {} → {}",
            p.area,
            p.pattern,
            protocols(&p.old),
            protocols(&p.new)
        );
    }
    for c in &d.impacts_changed {
        text_change(s, "impact", c);
    }
    for l in &d.turn_off_changed {
        let _ = writeln!(
            s,
            "~ turn-off {}: {} → {}",
            l.area,
            l.old.as_deref().unwrap_or("(none)"),
            l.new.as_deref().unwrap_or("(none)")
        );
    }
}

/// `N changes: …` with a count per kind, or `no changes`.
fn count_line(d: &CatalogDiff) -> String {
    let counts = [
        (d.areas_added.len(), "area added", "areas added"),
        (d.areas_removed.len(), "area removed", "areas removed"),
        (d.areas_renamed.len(), "area renamed", "areas renamed"),
        (d.endpoints_added.len(), "endpoint added", "endpoints added"),
        (
            d.endpoints_removed.len(),
            "endpoint removed",
            "endpoints removed",
        ),
        (d.endpoints_moved.len(), "endpoint moved", "endpoints moved"),
        (
            d.descriptions_changed.len(),
            "description changed",
            "descriptions changed",
        ),
        (
            d.protocols_changed.len(),
            "protocol list changed",
            "protocol lists changed",
        ),
        (d.impacts_changed.len(), "impact changed", "impacts changed"),
        (
            d.turn_off_changed.len(),
            "turn-off link changed",
            "turn-off links changed",
        ),
    ];
    let parts: Vec<String> = counts
        .iter()
        .filter(|(n, _, _)| *n > 0)
        .map(|(n, one, many)| format!("{n} {}", if *n == 1 { one } else { many }))
        .collect();
    match d.change_count() {
        0 => "no changes\n".to_owned(),
        n => format!(
            "{n} change{}: {}\n",
            if n == 1 { "" } else { "s" },
            parts.join(", ")
        ),
    }
}

fn protocols(p: &[String]) -> String {
    if p.is_empty() {
        "(no protocol)".to_owned()
    } else {
        p.join("/")
    }
}

fn text_change(s: &mut String, what: &str, c: &TextChange) {
    let _ = write!(s, "~ {what} {}", c.area);
    if let Some(p) = &c.pattern {
        let _ = write!(s, "  {p}");
    }
    if c.mojibake_repaired {
        s.push_str("  (mojibake repaired)");
    }
    s.push('\n');
    let _ = writeln!(s, "    {}", word_diff_text(&c.words));
}

/// `[-removed-]{+added+}` word diff (git's `--word-diff=plain`), unchanged runs longer
/// than twice [`CONTEXT_WORDS`] shortened to their ends with `…`.
pub(crate) fn word_diff_text(words: &[WordChunk]) -> String {
    let mut out: Vec<String> = Vec::new();
    let last = words.len().saturating_sub(1);
    for (i, w) in words.iter().enumerate() {
        match w.op {
            WordOp::Removed => out.push(format!("[-{}-]", w.text)),
            WordOp::Added => out.push(format!("{{+{}+}}", w.text)),
            WordOp::Same => {
                let ws: Vec<&str> = w.text.split(' ').collect();
                let keep_head = if i == 0 { 0 } else { CONTEXT_WORDS };
                let keep_tail = if i == last { 0 } else { CONTEXT_WORDS };
                if ws.len() > keep_head + keep_tail {
                    let mut t = ws[..keep_head].join(" ");
                    if !t.is_empty() {
                        t.push(' ');
                    }
                    t.push('…');
                    if keep_tail > 0 {
                        t.push(' ');
                        t.push_str(&ws[ws.len() - keep_tail..].join(" "));
                    }
                    out.push(t);
                } else {
                    out.push(w.text.clone());
                }
            }
        }
    }
    out.join(" ")
}
