//! Naming a catalog on the command line: a page (`.md`), a catalog file (`.toml`) or
//! `builtin:NAME`.

use std::path::Path;

use anyhow::{anyhow, bail, Context as _};
use winsink_catalog::import::{import, ImportOptions};
use winsink_catalog::Catalog;
use winsink_policy::{builtin_catalog, BUILTIN_CATALOGS, BUILTIN_PREFIX};

/// How a page is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PageText {
    /// As the importer reads it for a catalog: mojibake repaired.
    Repaired,
    /// As written (what `catalog diff` compares, so that a repair shows as a change).
    AsWritten,
}

/// Loads the catalog `arg` names: `builtin:NAME`, a `.toml` catalog, or a `.md` page
/// (imported; its skipped rows are not reported here).
pub(crate) fn load(arg: &str, text: PageText) -> anyhow::Result<Catalog> {
    if let Some(name) = arg.strip_prefix(BUILTIN_PREFIX) {
        return builtin_catalog(name).cloned().ok_or_else(|| {
            anyhow!(
                "{arg}: no such built-in catalog (built in: {})",
                BUILTIN_CATALOGS
                    .iter()
                    .map(|n| format!("{BUILTIN_PREFIX}{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        });
    }
    let path = Path::new(arg);
    let ext = path
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match ext.as_deref() {
        Some("toml") => Ok(Catalog::from_path(path)?),
        Some("md" | "markdown") => {
            let page = read_page(path)?;
            let mut options = ImportOptions::for_page_file(
                &path.file_name().unwrap_or_default().to_string_lossy(),
            );
            if text == PageText::AsWritten {
                options = options.as_written();
            }
            let imported = import(&page, &options).with_context(|| arg.to_owned())?;
            Ok(imported.catalog)
        }
        _ => bail!(
            "{arg}: not a catalog: name a page (.md), a catalog file (.toml) or \
             {BUILTIN_PREFIX}NAME"
        ),
    }
}

/// Reads a page file as UTF-8 text.
pub(crate) fn read_page(path: &Path) -> anyhow::Result<String> {
    let bytes =
        std::fs::read(path).with_context(|| format!("cannot read page {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "{}: not a Microsoft endpoint page: not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}
