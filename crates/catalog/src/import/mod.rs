//! The importer: Microsoft's "Manage connection endpoints" pages (Markdown) → [`Catalog`].
//!
//! # The page format family
//!
//! Microsoft publishes one page per Windows release and edition group, in a few layouts.
//! The importer reads all of them:
//!
//! - **Area tables** (Windows 11 Enterprise, Windows 10 1809 and later): a table whose header
//!   has an `Area` and a `Destination` column, usually `Area | Description | Protocol |
//!   Destination`. A row with text in the Area cell starts an area; its Destination cell may
//!   hold the "Learn how to turn off traffic" link, which becomes the area's
//!   [`turn_off`](crate::Area::turn_off). A Description cell applies to its own row and to
//!   the rows below it, until the next description or area; continuation rows leave the Area
//!   and Description cells empty.
//! - **Edition sections**: several `## <edition>` headings, each holding an area table
//!   (`## Windows 11 Family`, `## Windows 11 Pro`). Header cells may be bold
//!   (`| **Area** |`), and an area name may repeat, within a section or across sections: an
//!   area is one area for the whole page (keyed by its [`slug`]), and every endpoint records
//!   the sections that list it.
//! - **Heading per area** (older Windows 10 pages): each area is a heading followed by prose
//!   (the description) and a `Source process | Protocol | Destination` table. The area is the
//!   nearest heading above the table; the section is the heading above that one, or the page
//!   title when there is none.
//! - **Flat per-edition lists** (the oldest Windows 10 non-Enterprise pages): a
//!   `Destination | Protocol | Description` table per `## Windows 10 Family/Pro/...`
//!   heading, without an Area column. The areas come from a reference catalog
//!   ([`ImportOptions::areas_from`]; `winsink catalog import --areas-from`, by default
//!   the built-in catalog): a destination whose pattern the reference lists goes to the same
//!   areas (with this page's protocols and description); any other goes to the section's
//!   `Unassigned (Windows 10 Pro)` area. Each row describes only itself. The
//!   [`Summary`] counts how many were assigned each way. Without a reference such a
//!   table is reported as skipped, whole, rather than guessed into areas.
//!
//! The section of an area table is the nearest `##`-or-deeper heading above it, or the page
//! title. Tables without a Destination column are not endpoint tables and are passed over.
//! Alignment rows (`|---|:---:|`), bold header cells, missing outer pipes, stray spaces and
//! trailing whitespace are all accepted; fenced code blocks are not read.
//!
//! # What becomes an endpoint
//!
//! Each `<br>`-separated piece of a Destination cell is normalised as described at
//! [`text::destination`]: markup and spaces go, URL parts go (`host/path`, `host/?q=`,
//! `www.bing.com*` → `www.bing.com`, the page's text kept as `original`), DNS wildcards stay.
//! A destination listed twice in one area is one endpoint: its protocols and sections are
//! merged, and a second, different description is appended as a new paragraph. The same
//! destination in two areas belongs to both. Protocols are canonicalised by
//! [`text::protocols`], descriptions turned into plain text by [`text::clean_description`].
//!
//! Every area also gets an [`impact`](crate::Area::impact): what blocking the area as a
//! whole breaks, for the endpoints the page gives no description of (on the Windows 11
//! page, the rows above an area's first description). It is the area's first non-empty
//! description in page order ([`Area::derived_impact`](crate::Area::derived_impact)), so
//! it is deterministic and quotes the page; endpoint descriptions stay as the page wrote
//! them, empty ones included.
//!
//! The page text is first repaired of mojibake (UTF-8 once read as Windows-1252:
//! `wonâ€™t` → `won’t`): each run of characters that Windows-1252 maps back to the bytes
//! of one UTF-8 sequence becomes that character.
//!
//! # Nothing is dropped silently
//!
//! Every table row that does not become an endpoint, an area or a description, and every
//! piece of a Destination cell that is not a destination, is reported in
//! [`Imported::skipped`] with its line number and reason. A page without any endpoint table,
//! or whose endpoint tables yield no endpoint, is an [`ImportError`].
//!
//! ```
//! use winsink_catalog::import::{import, ImportOptions};
//!
//! let page = "\
//! ## Windows 11 Pro
//!
//! | **Area** | **Description** | **Protocol** | **Destination** |
//! |---|---|---|---|
//! | Maps | Offline maps won't update. | TLS v1.2/HTTPS | maps.windows.com<br>ecn.dev.virtualearth.net/* |
//! ";
//! let imported = import(page, &ImportOptions::for_page_file("manage-windows-11-endpoints.md"))?;
//! let maps = imported.catalog.area("maps").unwrap();
//! assert_eq!(maps.endpoints[1].pattern, "ecn.dev.virtualearth.net");
//! assert_eq!(maps.endpoints[1].protocols, ["TLSv1.2", "HTTPS"]);
//! assert_eq!(maps.endpoints[1].sections, ["Windows 11 Pro"]);
//! # Ok::<(), winsink_catalog::import::ImportError>(())
//! ```

mod mojibake;
pub mod text;

use std::collections::HashMap;
use std::fmt;

pub use text::slug;

use crate::model::{Area, Catalog, Endpoint, Source};

/// Where Microsoft publishes this family of pages; a page file `NAME.md` is served at
/// `PAGE_DIRECTORY` + `NAME`.
pub const PAGE_DIRECTORY: &str = "https://learn.microsoft.com/en-us/windows/privacy/";

/// How to import a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportOptions {
    /// The page's public URL: recorded as the source and used to make links absolute.
    pub url: String,
    /// Whether mojibake is repaired (default `true`). `winsink catalog diff` reads pages
    /// as written, so that a revision that fixed its mojibake shows as a change.
    pub repair_mojibake: bool,
    /// The catalog that gives areas to the endpoints of flat per-edition lists (tables
    /// without an Area column): a destination it lists goes to the same areas there.
    /// `None`: such tables are skipped.
    pub areas_from: Option<Catalog>,
}

impl ImportOptions {
    /// Options for a page file published under [`PAGE_DIRECTORY`]: the URL is the
    /// directory plus the file name without `.md` (and without any folders before it).
    /// A revision saved under a dated name, `NAME-YYYY-MM-DD.md`
    /// (`manage-windows-11-endpoints-2025-05-23.md`), is the page published as `NAME`:
    /// Microsoft revises a page in place, at the same URL.
    pub fn for_page_file(file_name: &str) -> Self {
        let name = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
        let name = name.strip_suffix(".md").unwrap_or(name);
        let name = strip_date_suffix(name);
        Self::with_url(format!("{PAGE_DIRECTORY}{name}"))
    }

    /// Options for a page published at `url`.
    pub fn with_url(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            repair_mojibake: true,
            areas_from: None,
        }
    }

    /// The same options, reading the page as written: no mojibake repair.
    #[must_use]
    pub fn as_written(mut self) -> Self {
        self.repair_mojibake = false;
        self
    }

    /// The same options, taking the areas of flat per-edition lists from `reference`.
    #[must_use]
    pub fn areas_from(mut self, reference: Catalog) -> Self {
        self.areas_from = Some(reference);
        self
    }
}

/// Repairs mojibake (UTF-8 text once read as Windows-1252) in `text`, as the importer
/// does; returns the text and how many characters were put back.
pub fn repair_mojibake(text: &str) -> (std::borrow::Cow<'_, str>, usize) {
    mojibake::repair(text)
}

/// `name-2025-05-23` → `name`; any other name as it is.
fn strip_date_suffix(name: &str) -> &str {
    let b = name.as_bytes();
    let Some(start) = b.len().checked_sub(11) else {
        return name;
    };
    let dated = b[start] == b'-'
        && b[start + 1..].iter().enumerate().all(|(i, c)| {
            if i == 4 || i == 7 {
                *c == b'-'
            } else {
                c.is_ascii_digit()
            }
        });
    if dated && start > 0 {
        &name[..start]
    } else {
        name
    }
}

/// The result of an import: the catalog and what was left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Imported {
    /// The catalog.
    pub catalog: Catalog,
    /// Rows and destinations that were not used, in page order.
    pub skipped: Vec<Skipped>,
    /// How many destinations repeated one already in the same area (and were merged).
    pub merged: usize,
    /// How many mojibake characters were repaired.
    pub repaired: usize,
    /// How many body rows the endpoint tables have.
    pub rows: usize,
    /// How the destinations of flat per-edition lists got their areas.
    pub flat: FlatAssignment,
}

/// How the destinations of flat per-edition lists (tables without an Area column) got
/// their areas, counted once per destination.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlatAssignment {
    /// Destinations the reference catalog lists: they went to its areas.
    pub from_reference: usize,
    /// Destinations it does not list: they went to their section's `Unassigned` area.
    pub unassigned: usize,
}

impl Imported {
    /// The counts the importer reports.
    pub fn summary(&self) -> Summary {
        let mut patterns: Vec<&str> = self
            .catalog
            .areas
            .iter()
            .flat_map(|a| a.endpoints.iter().map(|e| e.pattern.as_str()))
            .collect();
        let endpoints = patterns.len();
        patterns.sort_unstable();
        patterns.dedup();
        Summary {
            areas: self.catalog.areas.len(),
            empty_areas: self
                .catalog
                .areas
                .iter()
                .filter(|a| a.endpoints.is_empty())
                .count(),
            endpoints,
            patterns: patterns.len(),
            sections: self.catalog.source.sections.len(),
            rows: self.rows,
            merged: self.merged,
            repaired: self.repaired,
            skipped: self.skipped.len(),
            flat: self.flat,
        }
    }
}

/// The counts of an import, printed as one line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    /// Areas in the catalog.
    pub areas: usize,
    /// Areas the page names but gives no usable destination for.
    pub empty_areas: usize,
    /// (area, pattern) pairs.
    pub endpoints: usize,
    /// Distinct patterns over all areas.
    pub patterns: usize,
    /// Sections (editions) that contributed endpoints.
    pub sections: usize,
    /// Body rows of the endpoint tables.
    pub rows: usize,
    /// Repeated destinations merged into one endpoint.
    pub merged: usize,
    /// Mojibake characters repaired.
    pub repaired: usize,
    /// Rows or destinations skipped.
    pub skipped: usize,
    /// How flat-list destinations got their areas.
    pub flat: FlatAssignment,
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, {} ({}) in {} from {}",
            plural(self.areas, "area", "areas"),
            plural(self.endpoints, "endpoint", "endpoints"),
            plural(self.patterns, "distinct pattern", "distinct patterns"),
            plural(self.sections, "section", "sections"),
            plural(self.rows, "table row", "table rows"),
        )?;
        if self.empty_areas > 0 {
            write!(
                f,
                " ({} without endpoints)",
                plural(self.empty_areas, "area", "areas")
            )?;
        }
        write!(
            f,
            "; {} merged, {} repaired, {} skipped",
            plural(self.merged, "repeated destination", "repeated destinations"),
            plural(self.repaired, "mojibake character", "mojibake characters"),
            plural(self.skipped, "row", "rows"),
        )?;
        let FlatAssignment {
            from_reference,
            unassigned,
        } = self.flat;
        if from_reference + unassigned > 0 {
            write!(
                f,
                "; flat lists: {} given the reference catalog's areas, {} in Unassigned areas",
                plural(from_reference, "destination", "destinations"),
                unassigned
            )?;
        }
        Ok(())
    }
}

/// A row, or a piece of one, that did not go into the catalog.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// 1-based line number in the page file.
    pub line: usize,
    /// Why.
    pub reason: SkipReason,
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: skipped: {}", self.line, self.reason)
    }
}

/// Why a row or destination was skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SkipReason {
    /// All cells are empty.
    EmptyRow,
    /// The row has cells but an empty Destination cell, and no area or description.
    NoDestination,
    /// An area table row before any row naming an area (in its section).
    BeforeArea,
    /// A heading-per-area table with no heading above it.
    NoAreaHeading,
    /// The Area cell has no letter or digit, so no id can be made from it.
    UnnamedArea {
        /// The cell's text.
        name: String,
    },
    /// A piece of a Destination cell that is not a destination.
    NotADestination {
        /// The piece as written.
        text: String,
        /// What is wrong with it.
        why: String,
    },
    /// A description that no destination follows before the next description or area.
    UnusedDescription,
    /// A table with Destination and Description columns but no Area column: a flat list
    /// that names no areas. The whole table is skipped; `line` is its header.
    NoAreaColumn {
        /// Rows in the table.
        rows: usize,
    },
    /// The row has more cells than the header.
    ExtraCells {
        /// Cells in the row.
        found: usize,
        /// Cells in the header.
        expected: usize,
    },
    /// A second, different "turn off" link for an area that already has one.
    OtherTurnOffLink {
        /// The link kept (the first one).
        kept: String,
        /// The link ignored.
        ignored: String,
    },
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::EmptyRow => f.write_str("empty row"),
            Self::NoDestination => f.write_str("no destination in the Destination cell"),
            Self::BeforeArea => f.write_str("row before any area (no Area cell above it)"),
            Self::NoAreaHeading => f.write_str("table without an area heading above it"),
            Self::UnnamedArea { name } => write!(f, "area name {name:?} has no letter or digit"),
            Self::NotADestination { text, why } => write!(f, "destination {text:?}: {why}"),
            Self::UnusedDescription => {
                f.write_str("description with no destination below it (before the next one)")
            }
            Self::NoAreaColumn { rows } => write!(
                f,
                "table of {} has Destination and Description columns but no Area column: \
                 a flat list without areas is not imported",
                plural(*rows, "row", "rows")
            ),
            Self::ExtraCells { found, expected } => {
                write!(f, "row has {found} cells, the header has {expected}")
            }
            Self::OtherTurnOffLink { kept, ignored } => {
                write!(
                    f,
                    "turn-off link {ignored} ignored: the area already has {kept}"
                )
            }
        }
    }
}

/// A page that cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImportError {
    /// The text has no table with a Destination column.
    #[error(
        "not a Microsoft endpoint page: no table with a Destination column \
         ({tables} other tables in {lines} lines)"
    )]
    NoEndpointTable {
        /// Tables found (none of them an endpoint table).
        tables: usize,
        /// Lines in the text.
        lines: usize,
    },
    /// The endpoint tables hold no usable destination.
    #[error(
        "no endpoints: nothing in the endpoint tables could be imported ({} reported)",
        plural(skipped.len(), "skip", "skips")
    )]
    NoEndpoints {
        /// Everything that was skipped, with the reasons.
        skipped: Vec<Skipped>,
    },
    /// The page URL given in the options is not an `http(s)` URL.
    #[error("page URL {url:?} is not an http:// or https:// URL")]
    InvalidUrl {
        /// The URL.
        url: String,
    },
}

/// Imports a page. See the [module documentation](self) for the format.
pub fn import(page: &str, options: &ImportOptions) -> Result<Imported, ImportError> {
    let url = checked_url(&options.url)?;
    let (text, repaired) = if options.repair_mojibake {
        mojibake::repair(page)
    } else {
        (std::borrow::Cow::Borrowed(page), 0)
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let lines: Vec<&str> = text.lines().collect();
    let (front, body) = front_matter(&lines);
    let reference = options.areas_from.as_ref().map(areas_by_pattern);
    let mut parser = Parser::new(url, front.title.unwrap_or_default(), reference);
    parser.run(&lines, body);
    parser.finish(lines.len(), front.date.unwrap_or_default(), repaired)
}

/// The page URL, trimmed, if it is an `http(s)://` URL with a host and no spaces.
fn checked_url(given: &str) -> Result<&str, ImportError> {
    let url = given.trim();
    let lower = url.to_ascii_lowercase();
    let host = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    if host.is_empty() || url.contains(char::is_whitespace) {
        return Err(ImportError::InvalidUrl {
            url: given.to_owned(),
        });
    }
    Ok(url)
}

/// Pattern → (area id, area name) of each area of `catalog` that lists it.
fn areas_by_pattern(catalog: &Catalog) -> HashMap<String, Vec<(String, String)>> {
    let mut m: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for a in &catalog.areas {
        for e in &a.endpoints {
            m.entry(e.pattern.clone())
                .or_default()
                .push((a.id.clone(), a.name.clone()));
        }
    }
    m
}

#[derive(Debug, Default)]
struct FrontMatter {
    title: Option<String>,
    date: Option<String>,
}

/// Reads the `---`-delimited YAML front matter (only `title` and `ms.date` are used);
/// returns it and the index of the first line after it.
fn front_matter(lines: &[&str]) -> (FrontMatter, usize) {
    let mut fm = FrontMatter::default();
    if lines.first().map(|l| l.trim_end()) != Some("---") {
        return (fm, 0);
    }
    let Some(end) = lines
        .iter()
        .skip(1)
        .position(|l| matches!(l.trim_end(), "---" | "..."))
        .map(|p| p + 1)
    else {
        return (fm, 0);
    };
    for line in &lines[1..end] {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
            .unwrap_or(value)
            .to_owned();
        let value = text::clean_inline(&value);
        match key.trim() {
            "title" if !value.is_empty() => fm.title = Some(value),
            "ms.date" if !value.is_empty() => fm.date = Some(value),
            _ => {}
        }
    }
    (fm, end + 1)
}

#[derive(Debug)]
struct Heading {
    level: usize,
    text: String,
}

/// `## Text ##` → (2, "Text").
fn heading(line: &str) -> Option<(usize, String)> {
    let t = line.trim_start();
    if line.len() - t.len() > 3 {
        return None;
    }
    let level = t.bytes().take_while(|&b| b == b'#').count();
    if !(1..=6).contains(&level) {
        return None;
    }
    let rest = &t[level..];
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        return None;
    }
    let rest = rest.trim();
    let rest = rest.trim_end_matches('#').trim_end();
    Some((level, text::clean_inline(rest)))
}

/// Whether the line can be a table row: it has an unescaped `|`.
fn is_table_line(line: &str) -> bool {
    let b = line.as_bytes();
    (0..b.len()).any(|i| b[i] == b'|' && (i == 0 || b[i - 1] != b'\\'))
}

/// The non-empty `<br>`-separated pieces of a Destination cell.
fn destination_pieces(cell: &str) -> Vec<&str> {
    text::split_br(cell)
        .into_iter()
        .filter(|p| !p.trim().is_empty())
        .collect()
}

/// Why a row with no destination is skipped: it is empty, or only its other cells
/// have text.
fn empty_or_no_destination(cells: &[&str]) -> SkipReason {
    if cells.iter().all(|c| c.trim().is_empty()) {
        SkipReason::EmptyRow
    } else {
        SkipReason::NoDestination
    }
}

/// The cells of a table row, outer pipes removed.
fn split_cells(line: &str) -> Vec<&str> {
    let t = line.trim();
    let t = t.strip_prefix('|').unwrap_or(t);
    let t = match t.strip_suffix('|') {
        Some(inner) if !inner.ends_with('\\') => inner,
        _ => t,
    };
    let b = t.as_bytes();
    let mut cells = Vec::new();
    let mut start = 0;
    for i in 0..b.len() {
        if b[i] == b'|' && (i == 0 || b[i - 1] != b'\\') {
            cells.push(&t[start..i]);
            start = i + 1;
        }
    }
    cells.push(&t[start..]);
    cells
}

/// `|---|:---:| --- |`
fn is_alignment_row(line: &str) -> bool {
    if !is_table_line(line) {
        return false;
    }
    split_cells(line).iter().all(|c| {
        let c = c.trim();
        let c = c.strip_prefix(':').unwrap_or(c);
        let c = c.strip_suffix(':').unwrap_or(c);
        !c.is_empty() && c.bytes().all(|b| b == b'-')
    })
}

/// Which column holds what.
#[derive(Debug, Default)]
struct Columns {
    area: Option<usize>,
    description: Option<usize>,
    protocol: Option<usize>,
    destination: Option<usize>,
    count: usize,
}

impl Columns {
    fn from_header(cells: &[&str]) -> Self {
        let mut cols = Self {
            count: cells.len(),
            ..Self::default()
        };
        for (i, cell) in cells.iter().enumerate() {
            let name = text::clean_inline(cell).to_lowercase();
            let slot = match name.as_str() {
                "area" | "areas" => &mut cols.area,
                n if n.starts_with("description") || n.starts_with("impact") => {
                    &mut cols.description
                }
                n if n.starts_with("protocol") => &mut cols.protocol,
                n if n.starts_with("destination") => &mut cols.destination,
                _ => continue,
            };
            slot.get_or_insert(i);
        }
        cols
    }
}

/// A description and whether a destination has used it.
#[derive(Debug)]
struct Description {
    text: String,
    line: usize,
    used: bool,
}

struct Parser {
    url: String,
    title: String,
    headings: Vec<Heading>,
    /// Paragraphs since the last heading or table: (first line, text).
    prose: Vec<(usize, String)>,
    /// A "turn off" link in the prose under the current heading, for its area.
    pending_turn_off: Option<(usize, String)>,
    /// The area the current heading names (heading-per-area layout), once a table made it.
    heading_area: Option<usize>,
    tables: usize,
    endpoint_tables: usize,
    rows: usize,
    current_area: Option<usize>,
    description: Option<Description>,
    skipped: Vec<Skipped>,
    builder: Builder,
    /// Pattern → (area id, area name) of the reference catalog, for flat lists.
    reference: Option<HashMap<String, Vec<(String, String)>>>,
    flat: FlatAssignment,
}

impl Parser {
    fn new(
        url: &str,
        title: String,
        reference: Option<HashMap<String, Vec<(String, String)>>>,
    ) -> Self {
        Self {
            url: url.to_owned(),
            title,
            headings: Vec::new(),
            prose: Vec::new(),
            pending_turn_off: None,
            heading_area: None,
            tables: 0,
            endpoint_tables: 0,
            rows: 0,
            current_area: None,
            description: None,
            skipped: Vec::new(),
            builder: Builder::default(),
            reference,
            flat: FlatAssignment::default(),
        }
    }

    /// The import, once [`Parser::run`] has read the page's `lines` lines; or why the
    /// page gave none.
    fn finish(self, lines: usize, date: String, repaired: usize) -> Result<Imported, ImportError> {
        if self.endpoint_tables == 0 {
            return Err(ImportError::NoEndpointTable {
                tables: self.tables,
                lines,
            });
        }
        let mut skipped = self.skipped;
        skipped.sort_by_key(|s| s.line);
        let builder = self.builder;
        if builder.areas.iter().all(|a| a.endpoints.is_empty()) {
            return Err(ImportError::NoEndpoints { skipped });
        }
        let mut areas = builder.areas;
        for area in &mut areas {
            area.impact = area.derived_impact();
        }
        let title = if self.title.is_empty() {
            self.url.rsplit('/').next().unwrap_or(&self.url).to_owned()
        } else {
            self.title
        };
        Ok(Imported {
            catalog: Catalog {
                source: Source {
                    title,
                    url: self.url,
                    date,
                    sections: builder.sections,
                },
                areas,
            },
            skipped,
            merged: builder.merged,
            repaired,
            rows: self.rows,
            flat: self.flat,
        })
    }

    fn run(&mut self, lines: &[&str], start: usize) {
        let mut i = start;
        let mut fence: Option<&str> = None;
        let mut paragraph: Option<(usize, String)> = None;
        while i < lines.len() {
            let line = lines[i];
            let trimmed = line.trim();
            if let Some(marker) = fence {
                if trimmed.starts_with(marker) {
                    fence = None;
                }
                i += 1;
                continue;
            }
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                self.end_paragraph(&mut paragraph);
                fence = Some(&trimmed[..3]);
                i += 1;
                continue;
            }
            if let Some((level, text)) = heading(line) {
                self.end_paragraph(&mut paragraph);
                if level == 1 && self.title.is_empty() {
                    self.title.clone_from(&text);
                }
                while self.headings.last().is_some_and(|h| h.level >= level) {
                    self.headings.pop();
                }
                self.headings.push(Heading { level, text });
                self.prose.clear();
                self.pending_turn_off = None;
                self.heading_area = None;
                i += 1;
                continue;
            }
            if is_table_line(line) && lines.get(i + 1).is_some_and(|l| is_alignment_row(l)) {
                self.end_paragraph(&mut paragraph);
                let mut end = i + 2;
                while end < lines.len()
                    && !lines[end].trim().is_empty()
                    && is_table_line(lines[end])
                {
                    end += 1;
                }
                self.table(lines, i, end);
                self.prose.clear();
                i = end;
                continue;
            }
            if trimmed.is_empty() {
                self.end_paragraph(&mut paragraph);
            } else {
                let text = trimmed.trim_start_matches('>').trim();
                let is_admonition = text.starts_with("[!") && text.ends_with(']');
                if !text.is_empty() && !is_admonition {
                    match &mut paragraph {
                        Some((_, p)) => {
                            p.push(' ');
                            p.push_str(text);
                        }
                        None => paragraph = Some((i + 1, text.to_owned())),
                    }
                }
            }
            i += 1;
        }
        self.end_paragraph(&mut paragraph);
        self.close_description();
    }

    /// Files a finished prose paragraph: the first "turn off" link under a heading becomes
    /// the turn-off link of the heading's area; the paragraph is description text for the
    /// next heading-per-area table, unless it is nothing but that link. Older pages put the
    /// link inside a sentence ("If you [turn off traffic for this endpoint](...), ..."), so
    /// the sentence keeps it (as text and URL) and later links of the same area stay there.
    fn end_paragraph(&mut self, paragraph: &mut Option<(usize, String)>) {
        let Some((line, text)) = paragraph.take() else {
            return;
        };
        let mut only_link = false;
        if let Some(link) = text::links(&text).into_iter().find(text::is_turn_off_link) {
            let url = text::resolve_link(link.target, &self.url);
            match self.heading_area {
                Some(area) => {
                    let slot = &mut self.builder.areas[area].turn_off;
                    slot.get_or_insert(url);
                }
                None => {
                    self.pending_turn_off.get_or_insert((line, url));
                }
            }
            let rest = format!("{}{}", &text[..link.range.0], &text[link.range.1..]);
            only_link = !rest.chars().any(char::is_alphanumeric);
        }
        if !only_link {
            self.prose
                .push((line, text::clean_description(&text, &self.url)));
        }
    }

    /// The nearest heading of level 2 or deeper, with its index in the stack.
    fn section_heading(&self, below: usize) -> Option<&Heading> {
        self.headings[..below].iter().rev().find(|h| h.level >= 2)
    }

    /// Reads the table whose header is `lines[header]` and whose rows end before `end`.
    fn table(&mut self, lines: &[&str], header: usize, end: usize) {
        self.tables += 1;
        let cols = Columns::from_header(&split_cells(lines[header]));
        let Some(dest_col) = cols.destination else {
            return;
        };
        self.endpoint_tables += 1;
        self.close_description();
        self.current_area = None;
        if cols.area.is_none() && cols.description.is_some() {
            // A flat `Destination | Protocol | Description` list per edition (the oldest
            // Windows 10 non-Enterprise pages): its rows name no area. Without a
            // reference catalog, guessing one from the heading (an edition) would make a
            // wrong catalog.
            if self.reference.is_none() {
                let rows = end - (header + 2);
                self.rows += rows;
                self.skip(header + 1, SkipReason::NoAreaColumn { rows });
                return;
            }
            let section = self
                .section_heading(self.headings.len())
                .map_or_else(|| self.title.clone(), |h| h.text.clone());
            for (index, row) in lines.iter().enumerate().take(end).skip(header + 2) {
                self.rows += 1;
                self.flat_row(index + 1, row, &cols, dest_col, &section);
            }
            return;
        }

        let section;
        if cols.area.is_none() {
            // Heading per area: the heading above is the area, the one above it the section.
            let area_heading = self
                .headings
                .iter()
                .rposition(|h| h.level >= 2)
                .map(|i| (i, &self.headings[i]));
            let Some((index, heading)) = area_heading else {
                for line in header + 2..end {
                    self.rows += 1;
                    self.skip(line + 1, SkipReason::NoAreaHeading);
                }
                return;
            };
            let name = heading.text.clone();
            section = self
                .section_heading(index)
                .map_or_else(|| self.title.clone(), |h| h.text.clone());
            let id = slug(&name);
            if id.is_empty() {
                for line in header + 2..end {
                    self.rows += 1;
                    self.skip(line + 1, SkipReason::UnnamedArea { name: name.clone() });
                }
                return;
            }
            let area = self.builder.area(&id, &name);
            self.current_area = Some(area);
            self.heading_area = Some(area);
            if let Some((line, url)) = self.pending_turn_off.take() {
                self.set_turn_off(area, url, line);
            }
            if !self.prose.is_empty() {
                let line = self.prose[0].0;
                let text = self
                    .prose
                    .iter()
                    .map(|(_, p)| p.as_str())
                    .collect::<Vec<_>>()
                    .join("\n\n");
                self.description = Some(Description {
                    text,
                    line,
                    used: false,
                });
            }
        } else {
            section = self
                .section_heading(self.headings.len())
                .map_or_else(|| self.title.clone(), |h| h.text.clone());
        }

        for (index, row) in lines.iter().enumerate().take(end).skip(header + 2) {
            self.rows += 1;
            self.row(index + 1, row, &cols, dest_col, &section);
        }
        self.close_description();
    }

    /// A row of an area table: an Area cell opens an area (a row without one continues
    /// the area above), a Description cell describes the destinations from here on, and
    /// each destination of the Destination cell is one endpoint.
    fn row(&mut self, line: usize, row: &str, cols: &Columns, dest_col: usize, section: &str) {
        let cells = split_cells(row);
        if self.skip_extra_cells(line, &cells, cols) {
            return;
        }
        let cell = |col: Option<usize>| col.and_then(|c| cells.get(c)).copied().unwrap_or("");
        let mut has_content = false;
        if cols.area.is_some() {
            match self.area_cells(line, cell(cols.area), cell(cols.description)) {
                Some(content) => has_content = content,
                None => return,
            }
        }
        let Some(area) = self.current_area else {
            let reason = if cells.iter().any(|c| !c.trim().is_empty()) {
                SkipReason::BeforeArea
            } else {
                SkipReason::EmptyRow
            };
            self.skip(line, reason);
            return;
        };
        let dest = cell(Some(dest_col));
        let protocols = text::protocols(cell(cols.protocol));
        let mut rest = dest.to_owned();
        if let Some(link) = text::links(dest).into_iter().find(text::is_turn_off_link) {
            has_content = true;
            let url = text::resolve_link(link.target, &self.url);
            self.set_turn_off(area, url, line);
            rest = format!("{}{}", &dest[..link.range.0], &dest[link.range.1..]);
        }
        let pieces = destination_pieces(&rest);
        if pieces.is_empty() {
            if !has_content {
                self.skip(line, empty_or_no_destination(&cells));
            }
            return;
        }
        for piece in pieces {
            let Some(d) = self.destination(line, piece) else {
                continue;
            };
            let description = match &mut self.description {
                Some(desc) => {
                    desc.used = true;
                    desc.text.clone()
                }
                None => String::new(),
            };
            self.builder.add(
                area,
                Endpoint {
                    pattern: d.pattern,
                    original: d.original,
                    protocols: protocols.clone(),
                    description,
                    sections: Vec::new(),
                },
                section,
            );
        }
    }

    /// The Area and Description cells of a row: a name opens that area, a description
    /// replaces the one in force. `Some(whether either had content)`, or `None` when the
    /// row is skipped (an area name with nothing to make an id of).
    fn area_cells(&mut self, line: usize, area: &str, description: &str) -> Option<bool> {
        let mut has_content = false;
        let name = text::clean_inline(area);
        if !name.is_empty() {
            has_content = true;
            self.close_description();
            let id = slug(&name);
            if id.is_empty() {
                self.current_area = None;
                self.skip(line, SkipReason::UnnamedArea { name });
                return None;
            }
            self.current_area = Some(self.builder.area(&id, &name));
        }
        let description = text::clean_description(description, &self.url);
        if !description.is_empty() {
            has_content = true;
            self.close_description();
            self.description = Some(Description {
                text: description,
                line,
                used: false,
            });
        }
        Some(has_content)
    }

    /// Skips a row with non-empty cells beyond the header's; `true` if it did.
    fn skip_extra_cells(&mut self, line: usize, cells: &[&str], cols: &Columns) -> bool {
        let extra =
            cells.len() > cols.count && cells[cols.count..].iter().any(|c| !c.trim().is_empty());
        if extra {
            self.skip(
                line,
                SkipReason::ExtraCells {
                    found: cells.len(),
                    expected: cols.count,
                },
            );
        }
        extra
    }

    /// One destination of a Destination cell, or `None` with the piece skipped.
    fn destination(&mut self, line: usize, piece: &str) -> Option<text::Destination> {
        match text::destination(piece) {
            Ok(d) => Some(d),
            Err(why) => {
                self.skip(
                    line,
                    SkipReason::NotADestination {
                        text: piece.trim().to_owned(),
                        why: why.to_string(),
                    },
                );
                None
            }
        }
    }

    /// A row of a flat per-edition list: each destination goes to the reference
    /// catalog's areas that list the same pattern, else to the section's `Unassigned
    /// (SECTION)` area. Each row describes its own destinations (these lists have no
    /// continuation rows), so an empty Description cell is an empty description.
    fn flat_row(&mut self, line: usize, row: &str, cols: &Columns, dest_col: usize, section: &str) {
        let cells = split_cells(row);
        if self.skip_extra_cells(line, &cells, cols) {
            return;
        }
        let cell = |col: Option<usize>| col.and_then(|c| cells.get(c)).copied().unwrap_or("");
        let description = text::clean_description(cell(cols.description), &self.url);
        let protocols = text::protocols(cell(cols.protocol));
        let pieces = destination_pieces(cell(Some(dest_col)));
        if pieces.is_empty() {
            self.skip(line, empty_or_no_destination(&cells));
            return;
        }
        for piece in pieces {
            let Some(d) = self.destination(line, piece) else {
                continue;
            };
            let areas = self
                .reference
                .as_ref()
                .and_then(|r| r.get(&d.pattern))
                .cloned()
                .unwrap_or_default();
            let targets = if areas.is_empty() {
                self.flat.unassigned += 1;
                let name = format!("Unassigned ({section})");
                vec![(slug(&name), name)]
            } else {
                self.flat.from_reference += 1;
                areas
            };
            for (id, name) in targets {
                let area = self.builder.area(&id, &name);
                self.builder.add(
                    area,
                    Endpoint {
                        pattern: d.pattern.clone(),
                        original: d.original.clone(),
                        protocols: protocols.clone(),
                        description: description.clone(),
                        sections: Vec::new(),
                    },
                    section,
                );
            }
        }
    }

    /// Ends the current description, reporting it if nothing used it.
    fn close_description(&mut self) {
        if let Some(desc) = self.description.take() {
            if !desc.used {
                self.skip(desc.line, SkipReason::UnusedDescription);
            }
        }
    }

    fn set_turn_off(&mut self, area: usize, url: String, line: usize) {
        let slot = &mut self.builder.areas[area].turn_off;
        match slot {
            None => *slot = Some(url),
            Some(kept) if *kept == url => {}
            Some(kept) => {
                let kept = kept.clone();
                self.skip(line, SkipReason::OtherTurnOffLink { kept, ignored: url });
            }
        }
    }

    fn skip(&mut self, line: usize, reason: SkipReason) {
        self.skipped.push(Skipped { line, reason });
    }
}

/// Collects areas and endpoints, merging repeats.
#[derive(Debug, Default)]
struct Builder {
    areas: Vec<Area>,
    by_id: HashMap<String, usize>,
    /// Per area: pattern → endpoint index.
    by_pattern: Vec<HashMap<String, usize>>,
    sections: Vec<String>,
    merged: usize,
}

impl Builder {
    /// The area with this id, created (named `name`) on first sight.
    fn area(&mut self, id: &str, name: &str) -> usize {
        if let Some(&i) = self.by_id.get(id) {
            return i;
        }
        self.areas.push(Area {
            id: id.to_owned(),
            name: name.to_owned(),
            turn_off: None,
            impact: String::new(),
            endpoints: Vec::new(),
        });
        self.by_pattern.push(HashMap::new());
        self.by_id.insert(id.to_owned(), self.areas.len() - 1);
        self.areas.len() - 1
    }

    fn add(&mut self, area: usize, mut endpoint: Endpoint, section: &str) {
        if !self.sections.iter().any(|s| s == section) {
            self.sections.push(section.to_owned());
        }
        let order = |s: &String, sections: &[String]| sections.iter().position(|x| x == s);
        let endpoints = &mut self.areas[area].endpoints;
        match self.by_pattern[area].get(&endpoint.pattern) {
            Some(&i) => {
                self.merged += 1;
                let existing = &mut endpoints[i];
                for p in endpoint.protocols {
                    if !existing.protocols.contains(&p) {
                        existing.protocols.push(p);
                    }
                }
                text::sort_protocols(&mut existing.protocols);
                if !existing.sections.iter().any(|s| s == section) {
                    existing.sections.push(section.to_owned());
                    existing.sections.sort_by_key(|s| order(s, &self.sections));
                }
                if existing.description.is_empty() {
                    existing.description = endpoint.description;
                } else if !endpoint.description.is_empty()
                    && !existing.description.contains(&endpoint.description)
                {
                    existing.description.push_str("\n\n");
                    existing.description.push_str(&endpoint.description);
                }
            }
            None => {
                endpoint.sections = vec![section.to_owned()];
                self.by_pattern[area].insert(endpoint.pattern.clone(), endpoints.len());
                endpoints.push(endpoint);
            }
        }
    }
}

#[cfg(test)]
mod tests;
