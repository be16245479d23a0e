//! Feeds arbitrary text to the catalog importer.
//!
//! The importer must never panic, and whatever it accepts must be sound: the catalog
//! survives its TOML form unchanged, every pattern is one the matcher accepts, and every
//! skipped row points at a line of the page.
#![no_main]

use libfuzzer_sys::fuzz_target;
use winsink_catalog::import::{import, ImportOptions};
use winsink_catalog::Catalog;

fuzz_target!(|data: &[u8]| {
    let Ok(page) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(imported) = import(page, &ImportOptions::for_page_file("fuzz.md")) else {
        return;
    };
    let toml = imported
        .catalog
        .to_toml_string()
        .expect("a catalog serialises");
    let back = Catalog::from_toml_str(&toml, "fuzz").expect("the TOML form loads");
    assert_eq!(back, imported.catalog);
    for area in &imported.catalog.areas {
        for endpoint in &area.endpoints {
            winsink_matcher::normalize_pattern(&endpoint.pattern).expect("a valid pattern");
        }
    }
    let lines = page.lines().count();
    assert!(imported
        .skipped
        .iter()
        .all(|s| (1..=lines).contains(&s.line)));
});
