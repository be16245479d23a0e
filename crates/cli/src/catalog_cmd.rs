//! `winsink catalog ...`: import Microsoft's endpoint pages and show catalogs.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{anyhow, Context as _};
use clap::{Args, Subcommand};
use winsink_catalog::import::{import, ImportError, ImportOptions, Skipped};
use winsink_catalog::Catalog;

/// `winsink catalog` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Import a Microsoft "Manage connection endpoints" page (Markdown) as a catalog (TOML).
    ///
    /// Skipped rows (with line numbers and reasons) and a summary go to stderr.
    /// Exit code 2 if PAGE is not such a page.
    Import(ImportArgs),
    /// Show the areas of a catalog, their ids, and each endpoint's pattern and impact.
    Show(ShowArgs),
    /// Compare two catalogs or pages (any mix of .md, .toml and builtin:NAME): areas
    /// added, removed or renamed, endpoints added, removed or moved between areas,
    /// description (word diff) and protocol changes.
    ///
    /// Pages are read as written (no mojibake repair), so a revision that repaired its
    /// text shows the repair. Exit code 0 whether or not they differ, 2 if one does not
    /// load.
    Diff(crate::catalog_diff::DiffArgs),
}

/// Arguments of `winsink catalog import`.
#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The page, as Markdown (e.g. manage-windows-11-endpoints.md).
    page: PathBuf,
    /// Write the catalog to this file instead of stdout.
    #[arg(short, long, value_name = "OUT.toml")]
    output: Option<PathBuf>,
    /// The page's public URL [default: the learn.microsoft.com privacy folder
    /// (`/en-us/windows/privacy/`) followed by PAGE's file name without .md].
    #[arg(long, value_name = "URL")]
    url: Option<String>,
    /// Fail (exit code 2, nothing written) if any row is skipped.
    #[arg(long)]
    strict: bool,
    /// The catalog that gives areas to flat per-edition lists (tables without an Area
    /// column): a destination it lists goes to the same areas, any other to an
    /// `Unassigned (EDITION)` area. A page (.md), a catalog file (.toml) or
    /// builtin:NAME; `none` skips such tables.
    #[arg(
        long,
        value_name = "CATALOG",
        default_value = "builtin:windows11-enterprise"
    )]
    areas_from: String,
}

/// Arguments of `winsink catalog show`.
#[derive(Debug, Args)]
pub(crate) struct ShowArgs {
    /// A catalog TOML file [default: the Windows 11 Enterprise catalog built into winsink].
    #[arg(long, value_name = "FILE")]
    policy: Option<PathBuf>,
    /// Print JSON: {"source": {title, url, date}, "areas": [{id, name, turn_off, impact,
    /// endpoints: [{pattern, original, protocols, description, sections}]}]}.
    #[arg(long)]
    json: bool,
}

/// Why a command failed, which decides the exit code.
enum Failure {
    /// Bad input: a page or catalog that does not load.
    Input(anyhow::Error),
    /// Anything else: writing the output failed.
    Runtime(anyhow::Error),
}

pub(crate) fn run(cmd: CatalogCommand) -> ExitCode {
    let result = match cmd {
        CatalogCommand::Import(args) => import_page(&args),
        CatalogCommand::Show(args) => show(&args),
        CatalogCommand::Diff(args) => crate::catalog_diff::run(&args)
            .map_err(Failure::Input)
            .and_then(|text| write_stdout(&text)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_INPUT)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    }
}

fn report_skipped(page: &Path, skipped: &[Skipped]) {
    for s in skipped {
        eprintln!("{}:{}: skipped: {}", page.display(), s.line, s.reason);
    }
}

fn import_page(args: &ImportArgs) -> Result<(), Failure> {
    let page = &args.page;
    let text = crate::catalog_source::read_page(page).map_err(Failure::Input)?;
    let options = match &args.url {
        Some(url) => ImportOptions::with_url(url.clone()),
        None => {
            ImportOptions::for_page_file(&page.file_name().unwrap_or_default().to_string_lossy())
        }
    };
    let options = if args.areas_from == "none" {
        options
    } else {
        let reference = crate::catalog_source::load(
            &args.areas_from,
            crate::catalog_source::PageText::Repaired,
        )
        .with_context(|| format!("--areas-from {}", args.areas_from))
        .map_err(Failure::Input)?;
        options.areas_from(reference)
    };
    let imported = import(&text, &options).map_err(|e| {
        if let ImportError::NoEndpoints { skipped } = &e {
            report_skipped(page, skipped);
        }
        Failure::Input(anyhow::Error::new(e).context(format!("{}", page.display())))
    })?;
    report_skipped(page, &imported.skipped);
    let summary = imported.summary();
    if args.strict && summary.skipped > 0 {
        return Err(Failure::Input(anyhow!(
            "{}: {summary}; --strict refuses skipped rows, nothing written",
            page.display()
        )));
    }
    let toml = imported
        .catalog
        .to_toml_string()
        .context("cannot format the catalog")
        .map_err(Failure::Runtime)?;
    match &args.output {
        Some(out) => std::fs::write(out, &toml)
            .with_context(|| format!("cannot write {}", out.display()))
            .map_err(Failure::Runtime)?,
        None => write_stdout(&toml)?,
    }
    eprintln!("{}: {summary}", page.display());
    Ok(())
}

fn show(args: &ShowArgs) -> Result<(), Failure> {
    let loaded;
    let catalog = match &args.policy {
        Some(path) => {
            loaded = Catalog::from_path(path).map_err(|e| Failure::Input(anyhow::Error::new(e)))?;
            &loaded
        }
        None => winsink_catalog::windows11_enterprise(),
    };
    let out = if args.json {
        let mut json = catalog
            .to_json_string()
            .context("cannot format the catalog")
            .map_err(Failure::Runtime)?;
        json.push('\n');
        json
    } else {
        render(catalog)
    };
    write_stdout(&out)
}

fn write_stdout(text: &str) -> Result<(), Failure> {
    crate::output::write_stdout(text)
        .context("cannot write to stdout")
        .map_err(Failure::Runtime)
}

/// Width the descriptions are wrapped to.
const WIDTH: usize = 96;

/// The text form of `catalog show`: per area its id, name, endpoint count, turn-off
/// link and area impact; then each run of endpoints that share an impact, the impact once, and the
/// endpoints' patterns (with the page's spelling when it differs) and protocols.
fn render(catalog: &Catalog) -> String {
    let mut s = String::new();
    let src = &catalog.source;
    let _ = writeln!(s, "{}", src.title);
    let date = if src.date.is_empty() {
        "no date"
    } else {
        &src.date
    };
    let _ = writeln!(s, "  {} ({date})", src.url);
    let _ = writeln!(
        s,
        "  {} areas, {} endpoints, {} distinct patterns",
        catalog.areas.len(),
        catalog.endpoint_count(),
        catalog.patterns().len()
    );
    for area in &catalog.areas {
        let n = area.endpoints.len();
        let _ = writeln!(
            s,
            "\n{}  {} ({n} endpoint{})",
            area.id,
            area.name,
            if n == 1 { "" } else { "s" }
        );
        if let Some(link) = &area.turn_off {
            let _ = writeln!(s, "  turn off: {link}");
        }
        wrap(&mut s, &area.impact, "  area impact: ", "               ");
        let mut last: Option<&str> = None;
        for e in &area.endpoints {
            if last != Some(e.description.as_str()) {
                if e.description.is_empty() {
                    let _ = writeln!(
                        s,
                        "  impact: (the page states none for these: the area impact applies)"
                    );
                } else if e.description == area.impact {
                    let _ = writeln!(s, "  impact: the area impact");
                } else {
                    wrap(&mut s, &e.description, "  impact: ", "          ");
                }
                last = Some(&e.description);
            }
            let mut line = format!("    {}", e.pattern);
            if e.original != e.pattern {
                let _ = write!(line, " (page: {})", e.original);
            }
            if !e.protocols.is_empty() {
                let pad = 48usize.saturating_sub(line.chars().count()).max(2);
                let _ = write!(line, "{:pad$}{}", "", e.protocols.join("/"));
            }
            let _ = writeln!(s, "{line}");
        }
    }
    s
}

/// Appends `text` word-wrapped to [`WIDTH`], first line after `first`, the rest after
/// `rest`; paragraphs stay apart.
fn wrap(s: &mut String, text: &str, first: &str, rest: &str) {
    let mut prefix = first;
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            let _ = writeln!(s, "{}", rest.trim_end());
        }
        let mut line = String::from(prefix);
        let mut empty = true;
        for word in paragraph.split_whitespace() {
            if !empty && line.chars().count() + 1 + word.chars().count() > WIDTH {
                let _ = writeln!(s, "{line}");
                line = String::from(rest);
                empty = true;
            }
            if !empty {
                line.push(' ');
            }
            line.push_str(word);
            empty = false;
        }
        let _ = writeln!(s, "{line}");
        prefix = rest;
    }
}
