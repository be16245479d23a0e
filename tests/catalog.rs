//! `winsink catalog import` and `winsink catalog show`, run as the real binary.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::{repo_root, run_winsink, stderr, stdout, winsink};

/// The newest revision of Microsoft's page: the source of the shipped catalog.
const SHARED_PAGE: &str = "policies/sources/manage-windows-11-endpoints-2025-05-23.md";
const SHIPPED: &str = "policies/windows11-enterprise.toml";
/// The 2023 revision, kept as a fixture, and its import.
const PAGE_2023: &str = "policies/sources/manage-windows-11-endpoints.md";
const FIXTURE_2023: &str = "crates/catalog/tests/fixtures/windows11-enterprise-2023-10-06.toml";

/// A scratch file path for one test.
fn scratch(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("catalog-{name}"))
}

/// Runs `winsink ARGS...`, which must fail as bad input (exit 2) with nothing on
/// stdout; its stderr.
fn input_error(args: &[&str]) -> String {
    let out = run_winsink(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    assert_eq!(stdout(&out), "", "{args:?}");
    stderr(&out)
}

fn keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

#[test]
fn import_of_the_shared_page_equals_the_committed_catalog() {
    let out_file = scratch("windows11-enterprise.toml");
    let out = run_winsink(&[
        "catalog",
        "import",
        SHARED_PAGE,
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), "", "with -o nothing goes to stdout");
    let generated = std::fs::read_to_string(&out_file).unwrap();
    let committed = std::fs::read_to_string(repo_root().join(SHIPPED)).unwrap();
    assert!(
        generated == committed,
        "{SHIPPED} differs from a fresh import: regenerate it"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "{SHARED_PAGE}: 24 areas, 105 endpoints (103 distinct patterns) in 1 section from \
             130 table rows; 1 repeated destination merged, 0 mojibake characters repaired, \
             0 rows skipped\n"
        )
    );
}

#[test]
fn import_of_the_2023_page_equals_its_fixture() {
    let out = run_winsink(&["catalog", "import", PAGE_2023]);
    assert!(out.status.success(), "{}", stderr(&out));
    let fixture = std::fs::read_to_string(repo_root().join(FIXTURE_2023)).unwrap();
    assert!(
        stdout(&out) == fixture,
        "{FIXTURE_2023} is stale: regenerate it"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "{PAGE_2023}: 24 areas, 104 endpoints (102 distinct patterns) in 1 section from \
             129 table rows; 1 repeated destination merged, 1 mojibake character repaired, \
             0 rows skipped\n"
        )
    );
}

#[test]
fn import_without_output_writes_the_toml_to_stdout() {
    let out = run_winsink(&["catalog", "import", SHARED_PAGE]);
    assert!(out.status.success(), "{}", stderr(&out));
    let committed = std::fs::read_to_string(repo_root().join(SHIPPED)).unwrap();
    assert!(stdout(&out) == committed);
    assert!(stdout(&out).starts_with(
        "# Windows endpoint catalog: Connection endpoints for Windows 11 Enterprise\n\
         # Source: https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints (ms.date 05/23/2025)\n\
         # Licence: the source page is (c) Microsoft, licensed CC BY 4.0\n"
    ));
}

#[test]
fn import_reports_each_skipped_row_with_its_line() {
    let page = "crates/catalog/tests/fixtures/stray-spaces.md";
    let out = run_winsink(&["catalog", "import", page]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(
        lines[..3],
        [
            format!("{page}:12: skipped: empty row"),
            format!(
                "{page}:13: skipped: description with no destination below it (before the next one)"
            ),
            format!("{page}:15: skipped: row has 5 cells, the header has 4"),
        ]
    );
    assert!(lines[3].ends_with("3 rows skipped"), "{err}");
    assert!(stdout(&out).contains("pattern = \"watson.*.microsoft.com\""));
}

#[test]
fn import_strict_refuses_skipped_rows() {
    let out_file = scratch("strict.toml");
    let _ = std::fs::remove_file(&out_file);
    let err = input_error(&[
        "catalog",
        "import",
        "--strict",
        "crates/catalog/tests/fixtures/stray-spaces.md",
        "-o",
        out_file.to_str().unwrap(),
    ]);
    assert!(
        err.contains("--strict refuses skipped rows, nothing written"),
        "{err}"
    );
    assert!(!out_file.exists());
}

#[test]
fn import_of_a_non_page_exits_2_with_a_message() {
    let page = "crates/catalog/tests/fixtures/not-a-page.md";
    assert_eq!(
        input_error(&["catalog", "import", page]),
        format!(
            "error: {page}: not a Microsoft endpoint page: no table with a \
             Destination column (1 other tables in 7 lines)\n"
        )
    );
}

#[test]
fn import_of_a_binary_file_exits_2() {
    let page = scratch("binary.md");
    std::fs::write(&page, [0x7f, b'E', b'L', b'F', 0xff, 0xfe, 0x00]).unwrap();
    let err = input_error(&["catalog", "import", page.to_str().unwrap()]);
    assert!(
        err.contains("not a Microsoft endpoint page: not UTF-8 text (invalid byte at offset 4)"),
        "{err}"
    );
}

#[test]
fn import_of_a_missing_file_exits_2() {
    let err = input_error(&["catalog", "import", "no/such/page.md"]);
    assert!(err.contains("cannot read page no/such/page.md"), "{err}");
}

#[test]
fn show_json_has_the_stable_shape() {
    let out = run_winsink(&["catalog", "show", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(keys(&v), ["areas", "source"]);
    assert_eq!(keys(&v["source"]), ["date", "title", "url"]);
    assert_eq!(v["source"]["date"], "05/23/2025");
    let areas = v["areas"].as_array().unwrap();
    assert_eq!(areas.len(), 24);
    let mut pairs = 0;
    for area in areas {
        assert_eq!(
            keys(area),
            ["endpoints", "id", "impact", "name", "turn_off"]
        );
        assert!(area["turn_off"].is_string());
        assert!(!area["impact"].as_str().unwrap().is_empty());
        for e in area["endpoints"].as_array().unwrap() {
            assert_eq!(
                keys(e),
                [
                    "description",
                    "original",
                    "pattern",
                    "protocols",
                    "sections"
                ]
            );
            assert!(e["protocols"].is_array() && e["sections"].is_array());
            pairs += 1;
        }
    }
    assert_eq!(pairs, 105);
    let store = areas.iter().find(|a| a["id"] == "microsoft-store").unwrap();
    assert_eq!(store["name"], "Microsoft Store");
    assert!(store["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["pattern"] == "*displaycatalog.mp.microsoft.com"));
}

#[test]
fn show_json_of_the_committed_file_equals_the_embedded_catalog() {
    let embedded = run_winsink(&["catalog", "show", "--json"]);
    let from_file = run_winsink(&["catalog", "show", "--json", "--policy", SHIPPED]);
    assert!(from_file.status.success(), "{}", stderr(&from_file));
    assert!(stdout(&embedded) == stdout(&from_file));
}

#[test]
fn show_works_from_any_directory() {
    let out = winsink()
        .current_dir(env!("CARGO_TARGET_TMPDIR"))
        .args(["catalog", "show"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with(
        "Connection endpoints for Windows 11 Enterprise\n  \
         https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints (05/23/2025)\n  \
         24 areas, 105 endpoints, 103 distinct patterns\n"
    ));
    assert!(text.contains("\ncortana-and-live-tiles  Cortana and Live Tiles (17 endpoints)\n"));
    assert!(text.contains("\n    www.bing.com (page: www.bing.com*)"));
    assert!(text.contains("\nmicrosoft-store  Microsoft Store (9 endpoints)\n"));
    assert!(
        text.contains("  impact: The following endpoint is used by Microsoft Edge Update service")
    );
    // Endpoints the page leaves undescribed point at the area impact, shown once.
    assert!(text.contains(
        "\ndiagnostic-data  Diagnostic Data (8 endpoints)\n  turn off: \
         https://learn.microsoft.com/en-us/windows/privacy/manage-connections-from-windows-operating-system-components-to-microsoft-services#bkmk-priv-feedback\n  \
         area impact: The following endpoints are used by the Connected User Experiences and Telemetry\n"
    ));
    assert!(text.contains(
        "  impact: (the page states none for these: the area impact applies)\n    \
         functional.events.data.microsoft.com"
    ));
    assert!(text.contains("won’t be able"));
}

#[test]
fn show_of_a_catalog_with_an_unknown_key_exits_2_naming_file_and_key() {
    let file = scratch("typo.toml");
    let committed = std::fs::read_to_string(repo_root().join(SHIPPED)).unwrap();
    std::fs::write(&file, committed.replacen("pattern =", "patern =", 1)).unwrap();
    let err = input_error(&["catalog", "show", "--policy", file.to_str().unwrap()]);
    assert!(err.contains(file.to_str().unwrap()), "{err}");
    assert!(err.contains("unknown field `patern`"), "{err}");
}

#[test]
fn import_of_a_flat_list_without_areas_exits_2_saying_why() {
    let page = "crates/catalog/tests/fixtures/flat-list.md";
    assert_eq!(
        input_error(&["catalog", "import", page]),
        format!(
            "{page}:12: skipped: table of 3 rows has Destination and Description columns but \
             no Area column: a flat list without areas is not imported\n\
             {page}:20: skipped: table of 1 row has Destination and Description columns but \
             no Area column: a flat list without areas is not imported\n\
             error: {page}: no endpoints: nothing in the endpoint tables could be \
             imported (2 skips reported)\n"
        )
    );
}

#[test]
fn show_of_a_file_that_is_not_a_catalog_names_it_once() {
    let err = input_error(&["catalog", "show", "--policy", "Cargo.toml"]);
    assert!(
        err.starts_with("error: invalid catalog Cargo.toml: TOML parse error at line "),
        "{err}"
    );
    assert!(err.contains("expected `source` or `area`"), "{err}");
    assert_eq!(err.matches("TOML parse error").count(), 1, "{err}");
}
