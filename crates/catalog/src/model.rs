//! The catalog data model and its TOML form.

use serde::{Deserialize, Serialize};

/// The licence Microsoft publishes the endpoint pages under; a generated catalog names it.
pub const SOURCE_LICENCE: &str = "CC BY 4.0";

/// A whole catalog: where it came from and its areas, in page order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Catalog {
    /// The page this catalog was imported from.
    pub source: Source,
    /// The areas, in the order the page lists them.
    #[serde(default, rename = "area")]
    pub areas: Vec<Area>,
}

/// Where a catalog came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Source {
    /// The page title (front matter `title`, or the first `#` heading).
    pub title: String,
    /// The page's public URL.
    pub url: String,
    /// The page's `ms.date`, as written (`MM/DD/YYYY`).
    pub date: String,
    /// The edition or section names found on the page (`## ...` headings holding tables).
    #[serde(default)]
    pub sections: Vec<String>,
}

/// One area of Windows ("Diagnostic Data", "Windows Update", ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Area {
    /// Stable slug derived from the name (`Microsoft Store` → `microsoft-store`).
    pub id: String,
    /// The area's name as the page writes it.
    pub name: String,
    /// Absolute "Learn how to turn off traffic" link, when the page gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn_off: Option<String>,
    /// What blocking the area as a whole breaks: the summary shown for an endpoint whose
    /// own description is empty (the page leaves the description cell empty above the
    /// area's first description). The importer's choice, made by [`Area::derived_impact`]:
    /// the area's first non-empty endpoint description in page order. A catalog file
    /// without the key gets the same derived text when it is read.
    #[serde(default)]
    pub impact: String,
    /// The endpoints of this area, in page order, each destination once.
    #[serde(default, rename = "endpoint")]
    pub endpoints: Vec<Endpoint>,
}

impl Area {
    /// The area-level impact the importer records, and that a catalog file without an
    /// `impact` key gets: the first non-empty endpoint description, in page order (on
    /// Microsoft's pages, the first description row of the area). An area whose page
    /// describes none of its endpoints gets a sentence saying so, naming the area, so that
    /// no log line of a catalog endpoint is left without an impact.
    pub fn derived_impact(&self) -> String {
        self.endpoints
            .iter()
            .map(|e| e.description.as_str())
            .find(|d| !d.is_empty())
            .map_or_else(
                || {
                    format!(
                        "What {} uses these endpoints for stops working (the source page \
                         describes none of them).",
                        self.name
                    )
                },
                str::to_owned,
            )
    }
}

/// One destination of an area.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// The destination normalised to a DNS name pattern (`www.bing.com`, `*.wns.windows.com`).
    pub pattern: String,
    /// The destination exactly as the page wrote it (`www.bing.com*`).
    pub original: String,
    /// Protocols the page lists (`TLSv1.2`, `HTTPS`, `HTTP`).
    #[serde(default)]
    pub protocols: Vec<String>,
    /// What stops working when this endpoint is blocked (the page's description).
    #[serde(default)]
    pub description: String,
    /// The page sections (editions) that list this endpoint.
    #[serde(default)]
    pub sections: Vec<String>,
}

/// An error loading or saving a catalog. The message names the catalog; the cause (with
/// line and column for TOML) is the error's `source()`, so print it with its chain
/// (`{:#}` with anyhow).
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The TOML text is not a valid catalog.
    #[error("invalid catalog {origin}")]
    Toml {
        /// Where the text came from (a path, or `<string>`).
        origin: String,
        /// The parser's message, with line and column.
        #[source]
        source: toml::de::Error,
    },
    /// The catalog could not be serialised.
    #[error("cannot write catalog as TOML")]
    Serialize(#[from] toml::ser::Error),
    /// The catalog could not be serialised as JSON.
    #[error("cannot write catalog as JSON")]
    Json(#[from] serde_json::Error),
    /// Reading a catalog file failed.
    #[error("cannot read catalog {path}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
}

impl Catalog {
    /// Parses a catalog from its TOML form. `origin` names the text in error messages.
    ///
    /// An area without an `impact` key gets [`Area::derived_impact`].
    pub fn from_toml_str(text: &str, origin: &str) -> Result<Self, CatalogError> {
        let mut catalog: Self = toml::from_str(text).map_err(|source| CatalogError::Toml {
            origin: origin.to_owned(),
            source,
        })?;
        for area in &mut catalog.areas {
            if area.impact.trim().is_empty() {
                area.impact = area.derived_impact();
            }
        }
        Ok(catalog)
    }

    /// Reads a catalog TOML file.
    pub fn from_path(path: &std::path::Path) -> Result<Self, CatalogError> {
        let text = std::fs::read_to_string(path).map_err(|source| CatalogError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_toml_str(&text, &path.display().to_string())
    }

    /// Looks up an area by id.
    pub fn area(&self, id: &str) -> Option<&Area> {
        self.areas.iter().find(|a| a.id == id)
    }

    /// The number of (area, pattern) pairs.
    pub fn endpoint_count(&self) -> usize {
        self.areas.iter().map(|a| a.endpoints.len()).sum()
    }

    /// The distinct patterns over all areas, sorted.
    pub fn patterns(&self) -> Vec<&str> {
        let mut v: Vec<&str> = self
            .areas
            .iter()
            .flat_map(|a| a.endpoints.iter().map(|e| e.pattern.as_str()))
            .collect();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// The catalog as a TOML file: a comment naming the source page, its date and licence,
    /// then `[source]`, then one `[[area]]` table per area with its endpoints as
    /// `[[area.endpoint]]` tables, in page order. The text depends only on the catalog, so
    /// regenerating it from the same page gives the same bytes.
    pub fn to_toml_string(&self) -> Result<String, CatalogError> {
        let body = toml::to_string(self)?;
        let date = if self.source.date.is_empty() {
            "unknown"
        } else {
            &self.source.date
        };
        let mut out = format!(
            "# Windows endpoint catalog: {title}\n\
             # Source: {url} (ms.date {date})\n\
             # Licence: the source page is (c) Microsoft, licensed {licence}\n\
             #   (https://creativecommons.org/licenses/by/4.0/); this file is derived from it:\n\
             #   reformatted, destinations normalised for DNS, descriptions as plain text.\n\
             # Generated by `winsink catalog import`; do not edit by hand, regenerate it.\n\n",
            title = one_line(&self.source.title),
            url = one_line(&self.source.url),
            licence = SOURCE_LICENCE,
        );
        out.push_str(&body);
        Ok(out)
    }

    /// The catalog as JSON, the stable interface of `winsink catalog show --json`:
    ///
    /// ```json
    /// {"source": {"title": "...", "url": "...", "date": "..."},
    ///  "areas": [{"id": "...", "name": "...", "turn_off": "..." | null,
    ///             "impact": "...",
    ///             "endpoints": [{"pattern": "...", "original": "...",
    ///                            "protocols": ["..."], "description": "...",
    ///                            "sections": ["..."]}]}]}
    /// ```
    pub fn to_json_string(&self) -> Result<String, CatalogError> {
        let view = json::CatalogView {
            source: json::SourceView {
                title: &self.source.title,
                url: &self.source.url,
                date: &self.source.date,
            },
            areas: self
                .areas
                .iter()
                .map(|a| json::AreaView {
                    id: &a.id,
                    name: &a.name,
                    turn_off: a.turn_off.as_deref(),
                    impact: &a.impact,
                    endpoints: &a.endpoints,
                })
                .collect(),
        };
        Ok(serde_json::to_string_pretty(&view)?)
    }
}

/// A value for a `#` comment line: TOML comments hold no line breaks or other control
/// characters (a tab is allowed but reads as a space anyway).
fn one_line(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// The JSON view: the same data as the TOML form under the plural names `areas` and
/// `endpoints`, with `turn_off` always present.
mod json {
    use serde::Serialize;

    use super::Endpoint;

    #[derive(Serialize)]
    pub(super) struct CatalogView<'a> {
        pub(super) source: SourceView<'a>,
        pub(super) areas: Vec<AreaView<'a>>,
    }

    #[derive(Serialize)]
    pub(super) struct SourceView<'a> {
        pub(super) title: &'a str,
        pub(super) url: &'a str,
        pub(super) date: &'a str,
    }

    #[derive(Serialize)]
    pub(super) struct AreaView<'a> {
        pub(super) id: &'a str,
        pub(super) name: &'a str,
        pub(super) turn_off: Option<&'a str>,
        pub(super) impact: &'a str,
        pub(super) endpoints: &'a [Endpoint],
    }
}
