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
fn import_of_a_flat_list_without_a_reference_catalog_exits_2_saying_why() {
    let page = "crates/catalog/tests/fixtures/flat-list.md";
    assert_eq!(
        input_error(&["catalog", "import", "--areas-from", "none", page]),
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

// --- catalog diff ---

#[test]
fn diff_of_the_2023_and_2025_pages_shows_the_new_endpoint_and_the_repaired_description() {
    let out = run_winsink(&["catalog", "diff", PAGE_2023, SHARED_PAGE]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        format!(
            "--- {PAGE_2023} (Connection endpoints for Windows 11 Enterprise, ms.date 10/06/2023)\n\
             +++ {SHARED_PAGE} (Connection endpoints for Windows 11 Enterprise, ms.date 05/23/2025)\n\
             + endpoint windows-update  *.api.cdp.microsoft.com  TLSv1.2/HTTPS/HTTP\n\
             ~ description microsoft-edge  msedge.api.cdp.microsoft.com  (mojibake repaired)\n    \
             … you disable this endpoint, Microsoft Edge [-wonâ€™t-] {{+won’t+}} be able to check for and …\n\
             2 changes: 1 endpoint added, 1 description changed\n"
        )
    );

    let out = run_winsink(&["catalog", "diff", "--json", PAGE_2023, SHARED_PAGE]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).expect("JSON");
    assert_eq!(v["changes"], 2);
    assert_eq!(v["old"]["date"], "10/06/2023");
    assert_eq!(v["new"]["origin"], SHARED_PAGE);
    assert_eq!(
        v["endpoints_added"],
        serde_json::json!([{
            "area": "windows-update",
            "pattern": "*.api.cdp.microsoft.com",
            "protocols": ["TLSv1.2", "HTTPS", "HTTP"],
            "description": "The following endpoint is for a public web API used by Windows and \
                other OS-agnostic products to check for new updates. If you disable this \
                endpoint, these products won't be able to check for and apply software updates."
        }])
    );
    let changed = v["descriptions_changed"].as_array().unwrap();
    assert_eq!(changed.len(), 1);
    let c = &changed[0];
    assert_eq!(
        (&c["area"], &c["pattern"], &c["mojibake_repaired"]),
        (
            &Value::from("microsoft-edge"),
            &Value::from("msedge.api.cdp.microsoft.com"),
            &Value::from(true)
        )
    );
    let words: Vec<(String, String)> = c["words"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["op"] != "same")
        .map(|w| {
            (
                w["op"].as_str().unwrap().to_owned(),
                w["text"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        words,
        [
            ("removed".to_owned(), "wonâ€™t".to_owned()),
            ("added".to_owned(), "won’t".to_owned())
        ]
    );
    for key in [
        "areas_added",
        "areas_removed",
        "areas_renamed",
        "endpoints_removed",
        "endpoints_moved",
        "protocols_changed",
        "impacts_changed",
        "turn_off_changed",
    ] {
        assert_eq!(v[key], serde_json::json!([]), "{key}");
    }
}

#[test]
fn diff_mixes_catalog_files_pages_and_the_builtin() {
    // The 2023 catalog (mojibake repaired on import) against the built-in one: only the
    // new endpoint.
    let out = run_winsink(&[
        "catalog",
        "diff",
        FIXTURE_2023,
        "builtin:windows11-enterprise",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).ends_with(
            "+ endpoint windows-update  *.api.cdp.microsoft.com  TLSv1.2/HTTPS/HTTP\n\
             1 change: 1 endpoint added\n"
        ),
        "{}",
        stdout(&out)
    );
    let out = run_winsink(&["catalog", "diff", SHARED_PAGE, SHIPPED]);
    assert!(stdout(&out).ends_with("\nno changes\n"), "{}", stdout(&out));

    // An edited copy: an area renamed, an endpoint moved, protocols changed.
    let edited = scratch("edited.toml");
    let text = std::fs::read_to_string(repo_root().join(SHIPPED)).unwrap();
    let text = text
        .replacen("id = \"xbox-live\"\nname = \"Xbox Live\"", "id = \"xbox\"\nname = \"Xbox\"", 1)
        .replacen(
            "pattern = \"da.xboxservices.com\"\noriginal = \"da.xboxservices.com\"\nprotocols = [\"TLSv1.2\"]",
            "pattern = \"da.xboxservices.com\"\noriginal = \"da.xboxservices.com\"\nprotocols = [\"HTTPS\"]",
            1,
        );
    std::fs::write(&edited, text).unwrap();
    let out = run_winsink(&["catalog", "diff", SHIPPED, edited.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("\n~ area xbox-live → xbox: \"Xbox Live\" → \"Xbox\"\n"),
        "{text}"
    );
    assert!(
        text.contains("\n~ protocols xbox  da.xboxservices.com: TLSv1.2 → HTTPS\n"),
        "{text}"
    );
    assert!(
        text.ends_with("2 changes: 1 area renamed, 1 protocol list changed\n"),
        "{text}"
    );
}

#[test]
fn diff_of_something_that_is_not_a_catalog_exits_2_saying_what_it_takes() {
    assert_eq!(
        input_error(&["catalog", "diff", "Cargo.lock", SHIPPED]),
        "error: Cargo.lock: not a catalog: name a page (.md), a catalog file (.toml) or \
         builtin:NAME\n"
    );
    assert_eq!(
        input_error(&["catalog", "diff", SHIPPED, "builtin:windows12"]),
        "error: builtin:windows12: no such built-in catalog (built in: \
         builtin:windows11-enterprise)\n"
    );
    let err = input_error(&[
        "catalog",
        "diff",
        "crates/catalog/tests/fixtures/not-a-page.md",
        SHIPPED,
    ]);
    assert!(err.contains("not a Microsoft endpoint page"), "{err}");
}

#[test]
fn import_of_flat_per_edition_lists_takes_areas_from_the_built_in_catalog_or_another() {
    let page = "crates/catalog/tests/fixtures/windows10-1709-editions.md";
    let out = run_winsink(&["catalog", "import", page]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.ends_with(&format!(
            "{page}: 9 areas, 9 endpoints (8 distinct patterns) in 3 sections from 10 table \
             rows; 1 repeated destination merged, 0 mojibake characters repaired, 2 rows \
             skipped; flat lists: 7 destinations given the reference catalog's areas, 2 in \
             Unassigned areas\n"
        )),
        "{err}"
    );
    let toml = stdout(&out);
    assert!(
        toml.contains("id = \"unassigned-windows-10-family\"\n"),
        "{toml}"
    );
    assert!(toml.contains("id = \"microsoft-store\"\n"), "{toml}");

    // Another reference, which lists only *.wns.windows.com (in both editions that have
    // it): everything else is unassigned.
    let reference = scratch("flat-reference.toml");
    std::fs::write(
        &reference,
        "[source]\ntitle = \"r\"\nurl = \"https://example.invalid/\"\ndate = \"\"\n\
         [[area]]\nid = \"push\"\nname = \"Push\"\n\
         [[area.endpoint]]\npattern = \"*.wns.windows.com\"\noriginal = \"*.wns.windows.com\"\n",
    )
    .unwrap();
    let out = run_winsink(&[
        "catalog",
        "import",
        "--areas-from",
        reference.to_str().unwrap(),
        page,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).ends_with(
            "; flat lists: 2 destinations given the reference catalog's areas, 7 in Unassigned \
             areas\n"
        ),
        "{}",
        stderr(&out)
    );
    assert!(stdout(&out).contains("id = \"push\"\nname = \"Push\"\n"));
    let err = input_error(&["catalog", "import", "--areas-from", "builtin:nope", page]);
    assert!(err.contains("--areas-from builtin:nope: "), "{err}");
}

// --- check against the running daemon ---

/// A catalog of one area, `lab-telemetry`, with these endpoints.
fn lab_catalog(patterns: &[&str]) -> String {
    let mut s = String::from(
        "[source]\ntitle = \"Lab\"\nurl = \"https://lab.example/\"\ndate = \"\"\n\
         [[area]]\nid = \"lab-telemetry\"\nname = \"Lab Telemetry\"\n",
    );
    for p in patterns {
        s.push_str(&format!(
            "[[area.endpoint]]\npattern = \"{p}\"\noriginal = \"{p}\"\n"
        ));
    }
    s
}

/// `winsink check` of `daemon`'s config, finding the daemon's snapshot as it would.
fn check_beside(daemon: &crate::support::dns::Daemon) -> String {
    let out = winsink()
        .args(["check", "--config"])
        .arg(daemon.config_path())
        .env("XDG_STATE_HOME", daemon.dir())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// `kill SIG PID`.
fn kill(sig: &str, pid: u32) {
    assert!(std::process::Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap()
        .success());
}

#[test]
fn check_says_what_a_reload_would_start_and_stop_blocking_in_the_running_daemon() {
    use crate::support::dns::{Daemon, TestUpstream};

    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    let catalog = lab_catalog;
    std::fs::write(&lab, catalog(&["telemetry.blocked.test"])).unwrap();
    let upstream = TestUpstream::start();
    let mut daemon = Daemon::start(
        &format!(
            "catalogs = [\"builtin:windows11-enterprise\", {:?}]\n\
             [areas]\nlab-telemetry = \"block\"\n",
            lab.display().to_string()
        ),
        &["--upstream", &upstream.url()],
    );
    let snapshot = daemon
        .dir()
        .join(format!("winsink/loaded-{}.json", daemon.pid()));
    assert!(snapshot.exists(), "{}", daemon.stderr());
    let check = || check_beside(&daemon);
    let pid = daemon.pid();
    let unchanged =
        format!("\nrunning daemon (pid {pid}): loading this config would start or stop blocking no catalog endpoint\n");
    assert!(check().ends_with(&unchanged), "{}", check());

    // Stopped, the daemon cannot pick the edit up: check tells what its reload will do.
    let signal = |sig: &str| kill(sig, pid);
    signal("-STOP");
    let before = std::fs::read(&snapshot).unwrap();
    std::fs::write(
        &lab,
        catalog(&["tracker.blocked.test", "other.blocked.test"]),
    )
    .unwrap();
    let text = check();
    signal("-CONT");
    assert!(
        text.ends_with(&format!(
            "\nrunning daemon (pid {pid}): loading this config would start blocking 2 and \
             stop blocking 1 catalog endpoint\n  \
             + block lab-telemetry  other.blocked.test\n  \
             + block lab-telemetry  tracker.blocked.test\n  \
             - block lab-telemetry  telemetry.blocked.test\n"
        )),
        "{text}"
    );
    // Once it has reloaded, its record says so.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::fs::read(&snapshot).unwrap() == before {
        assert!(
            std::time::Instant::now() < deadline,
            "no reload: {}",
            daemon.stderr()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(check().ends_with(&unchanged), "{}", check());
    let (status, _) = daemon.terminate();
    assert!(status.success());
    assert!(!snapshot.exists(), "the record is removed at exit");
}

#[test]
fn check_counts_group_overrides_in_what_a_reload_would_start_and_stop_blocking() {
    use crate::support::dns::{Daemon, TestUpstream};

    let dir = tempfile::tempdir().unwrap();
    let lab = dir.path().join("lab.toml");
    let catalog = lab_catalog;
    std::fs::write(&lab, catalog(&["telemetry.blocked.test"])).unwrap();
    let upstream = TestUpstream::start();
    // Globally the area is only logged; the lab group's clients get it blocked.
    let mut daemon = Daemon::start(
        &format!(
            "catalogs = [\"builtin:windows11-enterprise\", {:?}]\n\
             [areas]\nlab-telemetry = \"log\"\n\
             [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\"]\n\
             [groups.areas]\nlab-telemetry = \"block\"\n",
            lab.display().to_string()
        ),
        &["--upstream", &upstream.url()],
    );
    let check = || check_beside(&daemon);
    let pid = daemon.pid();
    let unchanged = format!(
        "\nrunning daemon (pid {pid}): loading this config would start or stop blocking no \
         catalog endpoint\n"
    );
    assert!(check().ends_with(&unchanged), "{}", check());

    // Stopped, the daemon cannot pick the edit up: the lab group's clients would start
    // being blocked from the new endpoint, the others not.
    let signal = |sig: &str| kill(sig, pid);
    signal("-STOP");
    std::fs::write(
        &lab,
        catalog(&["telemetry.blocked.test", "tracker.blocked.test"]),
    )
    .unwrap();
    let text = check();
    signal("-CONT");
    assert!(
        text.ends_with(&format!(
            "\nrunning daemon (pid {pid}): loading this config would start blocking 0 and \
             stop blocking 0 catalog endpoints for clients in no group\n  \
             group lab: start blocking 1 and stop blocking 0 catalog endpoints\n    \
             + block lab-telemetry  tracker.blocked.test\n"
        )),
        "{text}"
    );
    let (status, _) = daemon.terminate();
    assert!(status.success());
}
