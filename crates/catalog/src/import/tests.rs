//! Importer tests: one small fixture page per quirk, then the published page itself.

use super::*;

const FAMILY_PRO: &str = include_str!("../../tests/fixtures/family-pro.md");
const OLDER_LAYOUT: &str = include_str!("../../tests/fixtures/older-layout.md");
const STRAY_SPACES: &str = include_str!("../../tests/fixtures/stray-spaces.md");
const NOT_A_PAGE: &str = include_str!("../../tests/fixtures/not-a-page.md");

const TURN_OFF_BASE: &str = "https://learn.microsoft.com/en-us/windows/privacy/manage-connections-from-windows-operating-system-components-to-microsoft-services";

fn run(page: &str, file: &str) -> Imported {
    import(page, &ImportOptions::for_page_file(file)).expect("page imports")
}

fn patterns(area: &Area) -> Vec<&str> {
    area.endpoints.iter().map(|e| e.pattern.as_str()).collect()
}

fn endpoint<'a>(catalog: &'a Catalog, area: &str, pattern: &str) -> &'a Endpoint {
    catalog
        .area(area)
        .unwrap_or_else(|| panic!("no area {area}"))
        .endpoints
        .iter()
        .find(|e| e.pattern == pattern)
        .unwrap_or_else(|| panic!("no {pattern} in {area}"))
}

fn reasons(imported: &Imported) -> Vec<String> {
    imported.skipped.iter().map(ToString::to_string).collect()
}

fn round_trips(catalog: &Catalog) {
    let toml = catalog.to_toml_string().expect("serialises");
    let back = Catalog::from_toml_str(&toml, "<round trip>").expect("loads");
    assert_eq!(&back, catalog);
    assert_eq!(
        back.to_toml_string().unwrap(),
        toml,
        "serialising is deterministic"
    );
}

#[test]
fn sections_one_per_edition_with_bold_headers_and_repeated_areas() {
    let imported = run(
        FAMILY_PRO,
        "windows-11-endpoints-non-enterprise-editions.md",
    );
    let c = &imported.catalog;
    assert_eq!(
        c.source.title,
        "Windows 11 connection endpoints for non-Enterprise editions"
    );
    assert_eq!(c.source.date, "01/02/2024");
    assert_eq!(
        c.source.url,
        "https://learn.microsoft.com/en-us/windows/privacy/windows-11-endpoints-non-enterprise-editions"
    );
    assert_eq!(c.source.sections, ["Windows 11 Family", "Windows 11 Pro"]);

    let ids: Vec<&str> = c.areas.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["apps", "microsoft-store", "maps"]);
    // The repeated name with other capitalisation is the same area, named as first seen.
    assert_eq!(c.area("microsoft-store").unwrap().name, "Microsoft Store");
    assert_eq!(
        patterns(c.area("apps").unwrap()),
        [
            "*.aria.microsoft.com",
            "arc.msn.com",
            "ris.api.iris.microsoft.com",
            "go.microsoft.com",
            "evoke-windowsservices-tas.msedge.net",
        ]
    );
    assert_eq!(
        patterns(c.area("microsoft-store").unwrap()),
        [
            "*displaycatalog.mp.microsoft.com",
            "storeedgefd.dsx.mp.microsoft.com"
        ]
    );

    // Listed in both editions: one endpoint, both sections, protocols merged.
    let arc = endpoint(c, "apps", "arc.msn.com");
    assert_eq!(arc.sections, ["Windows 11 Family", "Windows 11 Pro"]);
    assert_eq!(arc.protocols, ["HTTPS", "HTTP"]);
    assert_eq!(arc.description, "The following endpoints are used by apps.");
    assert_eq!(imported.merged, 1);

    // A repeated area row brings its own description.
    let photos = endpoint(c, "apps", "evoke-windowsservices-tas.msedge.net");
    assert_eq!(photos.description, "Photos uses this endpoint.");
    assert_eq!(photos.sections, ["Windows 11 Family"]);
    let go = endpoint(c, "apps", "go.microsoft.com");
    assert_eq!(go.original, "go.microsoft.com/fwlink/?LinkId=1");
    assert_eq!(
        endpoint(c, "apps", "*.aria.microsoft.com").original,
        r"\*.aria.microsoft.com"
    );

    // The Maps row names the area but its destination is prose: reported, area kept empty.
    assert!(c.area("maps").unwrap().endpoints.is_empty());
    assert_eq!(
        reasons(&imported),
        ["line 19: skipped: destination \"See the Maps section of the Enterprise page\": prose, not a host name"]
    );
    let summary = imported.summary();
    assert_eq!(
        (summary.areas, summary.empty_areas, summary.endpoints),
        (3, 1, 7)
    );
    round_trips(c);
}

#[test]
fn older_layout_heading_per_area_with_source_process_tables() {
    let imported = run(OLDER_LAYOUT, "manage-windows-1709-endpoints.md");
    let c = &imported.catalog;
    let title = "Connection endpoints for Windows 10, version 1709";
    assert_eq!(c.source.title, title);
    assert_eq!(c.source.date, "6/26/2018");
    // Area headings have no parent heading: the page itself is the one section.
    assert_eq!(c.source.sections, [title]);
    let ids: Vec<&str> = c.areas.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(ids, ["apps", "cortana-and-search"]);

    // The first "turn off" link under the heading, found inside a sentence.
    let apps = c.area("apps").unwrap();
    assert_eq!(
        apps.turn_off.as_deref(),
        Some(&*format!("{TURN_OFF_BASE}#live-tiles"))
    );
    assert_eq!(
        patterns(apps),
        ["tile-service.weather.microsoft.com", "cdn.onenote.net"]
    );
    let weather = endpoint(c, "apps", "tile-service.weather.microsoft.com");
    assert_eq!(
        weather.description,
        format!(
            "The following endpoint is used to download updates to the Weather app Live Tile. \
             If you turn off traffic to this endpoint ({TURN_OFF_BASE}#live-tiles), no Live \
             Tiles will be updated."
        )
    );
    assert_eq!(weather.protocols, ["HTTP"]);
    assert_eq!(weather.sections, [title]);
    let onenote = endpoint(c, "apps", "cdn.onenote.net");
    assert_eq!(onenote.protocols, ["HTTPS", "HTTP"]);
    assert_eq!(onenote.original, "cdn.onenote.net/livetile/?Language=en-US");
    assert!(onenote
        .description
        .starts_with("The following endpoint is used for OneNote Live Tile."));

    let cortana = c.area("cortana-and-search").unwrap();
    assert_eq!(
        cortana.turn_off.as_deref(),
        Some(&*format!("{TURN_OFF_BASE}#bkmk-cortana"))
    );
    assert_eq!(
        patterns(cortana),
        ["www.bing.com", "cy2.*.md.mp.microsoft.com.*"]
    );
    // Three rows, three spellings, two descriptions: one endpoint.
    let bing = &cortana.endpoints[0];
    assert_eq!(bing.original, "www.bing.com/client");
    assert_eq!(bing.protocols, ["TLSv1.2", "HTTPS"]);
    assert_eq!(
        bing.description,
        format!(
            "The following endpoint is used to update Cortana greetings.\n\n\
             Additionally, it is used for tips.\n\n\
             The following endpoint is used to configure parameters. If you turn off traffic \
             for this endpoint ({TURN_OFF_BASE}#bkmk-cortana), parameters would not be updated."
        )
    );
    assert_eq!(imported.merged, 2);
    assert_eq!(
        reasons(&imported),
        ["line 38: skipped: no destination in the Destination cell"]
    );
    round_trips(c);
}

#[test]
fn stray_spaces_tls_spelling_mojibake_and_odd_rows() {
    let imported = run(STRAY_SPACES, "manage-windows-11-endpoints.md");
    let c = &imported.catalog;
    // No front matter: the title is the first heading, the date unknown.
    assert_eq!(
        c.source.title,
        "Manage connection endpoints for Windows 11 Enterprise"
    );
    assert_eq!(c.source.date, "");
    assert_eq!(
        c.source.sections,
        ["Windows 11 Enterprise connection endpoints"]
    );

    let diag = c.area("diagnostic-data").unwrap();
    assert_eq!(
        diag.turn_off.as_deref(),
        Some(&*format!("{TURN_OFF_BASE}#bkmk-priv-feedback"))
    );
    assert_eq!(
        patterns(diag),
        [
            "watson.*.microsoft.com",
            "telecommand.telemetry.microsoft.com"
        ]
    );
    let watson = endpoint(c, "diagnostic-data", "watson.*.microsoft.com");
    assert_eq!(watson.protocols, ["TLSv1.2", "HTTPS", "HTTP"]);
    assert_eq!(
        watson.description, "",
        "no description above it on the page"
    );
    let tele = endpoint(c, "diagnostic-data", "telecommand.telemetry.microsoft.com");
    assert_eq!(tele.original, "`telecommand.telemetry.microsoft.com`");
    assert_eq!(
        tele.description,
        "The following endpoints are used by Windows Error Reporting."
    );

    let edge = c.area("microsoft-edge").unwrap();
    assert_eq!(edge.name, "Microsoft Edge");
    assert_eq!(
        edge.endpoints[0].description,
        "Microsoft Edge won’t be able to check for updates."
    );
    assert_eq!(edge.endpoints[0].protocols, ["TLSv1.2", "HTTPS"]);
    assert_eq!(imported.repaired, 1);

    let teams = c.area("teams").unwrap();
    assert_eq!(patterns(teams), ["logincdn.msauth.net"]);
    assert_eq!(teams.endpoints[0].original, "logincdn.msauth.net");
    assert_eq!(
        reasons(&imported),
        [
            "line 12: skipped: empty row",
            "line 13: skipped: description with no destination below it (before the next one)",
            "line 15: skipped: row has 5 cells, the header has 4",
        ]
    );
    round_trips(c);
}

#[test]
fn a_page_without_an_endpoint_table_is_an_error() {
    let options = ImportOptions::for_page_file("README.md");
    assert_eq!(
        import(NOT_A_PAGE, &options),
        Err(ImportError::NoEndpointTable {
            tables: 1,
            lines: 7
        })
    );
    assert_eq!(
        import("", &options).unwrap_err().to_string(),
        "not a Microsoft endpoint page: no table with a Destination column (0 other tables in 0 lines)"
    );
    assert!(import("\u{0}\u{1}binary\u{fffd}|", &options).is_err());
}

#[test]
fn endpoint_tables_without_any_destination_are_an_error() {
    let page = "|Area|Protocol|Destination|\n|-|-|-|\n|Apps|HTTPS|not a host|\n";
    let err = import(page, &ImportOptions::for_page_file("x.md")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "no endpoints: nothing in the endpoint tables could be imported (1 skip reported)"
    );
}

#[test]
fn a_row_before_any_area_is_reported() {
    let page = "|Area|Destination|\n|-|-|\n||early.example.com|\n|Apps|a.example.com|\n";
    let imported = run(page, "x.md");
    assert_eq!(
        reasons(&imported),
        ["line 3: skipped: row before any area (no Area cell above it)"]
    );
    assert_eq!(imported.catalog.endpoint_count(), 1);
}

#[test]
fn fenced_code_is_not_read() {
    let page = "```\n|Area|Destination|\n|-|-|\n|Apps|a.example.com|\n```\n";
    assert!(matches!(
        import(page, &ImportOptions::for_page_file("x.md")),
        Err(ImportError::NoEndpointTable { tables: 0, .. })
    ));
}

#[test]
fn a_bad_page_url_is_refused() {
    assert_eq!(
        import("", &ImportOptions::with_url("file:///tmp/x")),
        Err(ImportError::InvalidUrl {
            url: "file:///tmp/x".to_owned()
        })
    );
}

#[test]
fn summary_line_reads_naturally() {
    let imported = run(OLDER_LAYOUT, "p.md");
    assert_eq!(
        imported.summary().to_string(),
        "2 areas, 4 endpoints (4 distinct patterns) in 1 section from 7 table rows; \
         2 repeated destinations merged, 0 mojibake characters repaired, 1 row skipped"
    );
}

/// Found by the fuzz target: a NUL in a heading went into the TOML header comment, where
/// control characters are not allowed, so the written catalog did not load.
#[test]
fn control_characters_in_the_title_do_not_break_the_toml() {
    let page = format!(
        "# Manage\0\u{7}endpoints\n\n{}",
        &STRAY_SPACES[STRAY_SPACES.find("##").unwrap()..]
    );
    let imported = run(&page, "p.md");
    assert_eq!(imported.catalog.source.title, "Manage endpoints");
    round_trips(&imported.catalog);
    let mut catalog = imported.catalog;
    catalog.source.title = "a\u{0}b\nc".to_owned();
    round_trips(&catalog);
}

/// Microsoft's Windows 11 Enterprise page as published in 2023 (kept in
/// `policies/sources/`; the fixture of the older revision).
fn shared_page() -> String {
    source_page("manage-windows-11-endpoints.md")
}

/// The 2025-05-23 revision of the page, the source of the shipped catalog.
fn page_2025() -> String {
    source_page("manage-windows-11-endpoints-2025-05-23.md")
}

fn source_page(file: &str) -> String {
    let path = format!(
        "{}/../../policies/sources/{file}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn shared_import() -> Imported {
    run(&shared_page(), "manage-windows-11-endpoints.md")
}

fn import_2025() -> Imported {
    run(&page_2025(), "manage-windows-11-endpoints-2025-05-23.md")
}

#[test]
fn a_dated_revision_file_is_the_page_at_its_undated_url() {
    let url = |f: &str| ImportOptions::for_page_file(f).url;
    let page = "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints";
    assert_eq!(url("manage-windows-11-endpoints-2025-05-23.md"), page);
    assert_eq!(
        url("some/dir/manage-windows-11-endpoints-2025-05-23.md"),
        page
    );
    assert_eq!(url("manage-windows-11-endpoints.md"), page);
    // Not a date: kept.
    assert_eq!(
        url("a-2025-5-23.md"),
        format!("{PAGE_DIRECTORY}a-2025-5-23")
    );
    assert_eq!(url("2025-05-23.md"), format!("{PAGE_DIRECTORY}2025-05-23"));
    assert_eq!(
        url("-2025-05-23.md"),
        format!("{PAGE_DIRECTORY}-2025-05-23")
    );
}

#[test]
fn the_2025_revision_adds_one_windows_update_endpoint_and_needs_no_repair() {
    let imported = import_2025();
    let c = &imported.catalog;
    assert_eq!(c.areas.len(), 24);
    assert_eq!(c.endpoint_count(), 105);
    assert_eq!(c.patterns().len(), 103);
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
    assert_eq!(imported.repaired, 0, "the revision fixed the mojibake");
    assert_eq!(c.source.date, "05/23/2025");
    assert_eq!(
        c.source.url,
        "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints"
    );
    let cdp = endpoint(c, "windows-update", "*.api.cdp.microsoft.com");
    assert_eq!(cdp.protocols, ["TLSv1.2", "HTTPS", "HTTP"]);
    assert!(
        cdp.description
            .starts_with("The following endpoint is for a public web API"),
        "{}",
        cdp.description
    );
    // The repaired text equals what the importer made of the 2023 mojibake.
    let old = shared_import().catalog;
    assert_eq!(
        endpoint(c, "microsoft-edge", "msedge.api.cdp.microsoft.com").description,
        endpoint(&old, "microsoft-edge", "msedge.api.cdp.microsoft.com").description
    );
}

#[test]
fn windows_11_enterprise_page_has_24_areas_104_endpoints_102_patterns() {
    let imported = shared_import();
    let c = &imported.catalog;
    assert_eq!(c.areas.len(), 24);
    assert_eq!(c.endpoint_count(), 104);
    assert_eq!(c.patterns().len(), 102);
    assert!(imported.skipped.is_empty(), "{:?}", imported.skipped);
    assert_eq!(
        c.source.title,
        "Connection endpoints for Windows 11 Enterprise"
    );
    assert_eq!(
        c.source.url,
        "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints"
    );
    assert_eq!(c.source.date, "10/06/2023");
    assert_eq!(
        c.source.sections,
        ["Windows 11 Enterprise connection endpoints"]
    );
}

#[test]
fn windows_11_enterprise_page_quirks() {
    let c = shared_import().catalog;
    endpoint(&c, "diagnostic-data", "watson.*.microsoft.com");
    let bing = endpoint(&c, "cortana-and-live-tiles", "www.bing.com");
    assert_eq!(bing.original, "www.bing.com*");
    assert_eq!(
        c.area("cortana-and-live-tiles").unwrap().name,
        "Cortana and Live Tiles"
    );
    endpoint(&c, "microsoft-store", "*displaycatalog.mp.microsoft.com");
    assert_eq!(
        endpoint(&c, "device-authentication", "login.live.com").original,
        "login.live.com*"
    );
    endpoint(&c, "microsoft-account", "login.live.com");
    endpoint(&c, "diagnostic-data", "self.events.data.microsoft.com");
    endpoint(&c, "office", "self.events.data.microsoft.com");
    assert_eq!(
        endpoint(&c, "cortana-and-live-tiles", "i-ring.msedge.net").original,
        "I-ring.msedge.net"
    );

    let edge = endpoint(&c, "microsoft-edge", "msedge.api.cdp.microsoft.com");
    assert!(
        edge.description.contains("Microsoft Edge won’t be able"),
        "{}",
        edge.description
    );
    for area in &c.areas {
        for e in &area.endpoints {
            for bad in ["â€", "Ã", "<br", "](", "**"] {
                assert!(
                    !e.description.contains(bad),
                    "{bad:?} in {}: {}",
                    e.pattern,
                    e.description
                );
            }
        }
    }

    // Repeated in Microsoft Store: one endpoint, protocols of both rows.
    let devcenter = endpoint(&c, "microsoft-store", "manage.devcenter.microsoft.com");
    assert_eq!(devcenter.protocols, ["TLSv1.2", "HTTPS", "HTTP"]);
    assert_eq!(
        devcenter.description,
        "The following endpoint is used to get Microsoft Store analytics."
    );

    let certs = endpoint(&c, "certificates", "ctldl.windowsupdate.com");
    assert!(certs
        .description
        .contains("Update mechanism.\n\nIf automatic updates are turned off"));
    let office = endpoint(&c, "office", "www.office.com");
    assert!(office.description.contains(
        "see Office 365 URLs and IP address ranges (https://learn.microsoft.com/en-us/microsoft-365/enterprise/urls-and-ip-address-ranges)."
    ));
    // Rows below a description carry it; rows above the first one have none.
    assert_eq!(
        endpoint(&c, "diagnostic-data", "v10.events.data.microsoft.com").description,
        endpoint(&c, "diagnostic-data", "self.events.data.microsoft.com").description
    );
    assert_eq!(
        endpoint(&c, "diagnostic-data", "www.microsoft.com").description,
        ""
    );
}

#[test]
fn windows_11_enterprise_every_area_has_its_turn_off_link() {
    let c = shared_import().catalog;
    for area in &c.areas {
        let link = area
            .turn_off
            .as_deref()
            .unwrap_or_else(|| panic!("{} has no link", area.id));
        assert!(
            link.starts_with(&format!("{TURN_OFF_BASE}#")),
            "{}: {link}",
            area.id
        );
    }
    // The Teams link has a space inside the parentheses on the page.
    assert_eq!(
        c.area("teams").unwrap().turn_off.as_deref(),
        Some(&*format!("{TURN_OFF_BASE}#26-microsoft-store"))
    );
    assert_eq!(
        c.area("cortana-and-live-tiles")
            .unwrap()
            .turn_off
            .as_deref(),
        Some(&*format!("{TURN_OFF_BASE}#bkmk-cortana"))
    );
}

#[test]
fn every_area_impact_is_its_first_description_on_the_page() {
    for page in [
        shared_page(),
        std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../policies/sources/manage-windows-11-endpoints-2025-05-23.md"
        ))
        .unwrap(),
    ] {
        let c = run(&page, "manage-windows-11-endpoints.md").catalog;
        for area in &c.areas {
            let first = area
                .endpoints
                .iter()
                .map(|e| e.description.as_str())
                .find(|d| !d.is_empty())
                .unwrap_or_else(|| panic!("{}: the page describes no endpoint", area.id));
            assert_eq!(area.impact, first, "{}", area.id);
        }
    }
    // The six endpoints above their area's first description: empty on the page, so the
    // area impact is what a log line shows for them.
    let c = shared_import().catalog;
    let empty: Vec<&str> = c
        .areas
        .iter()
        .flat_map(|a| a.endpoints.iter())
        .filter(|e| e.description.is_empty())
        .map(|e| e.pattern.as_str())
        .collect();
    assert_eq!(
        empty,
        [
            "functional.events.data.microsoft.com",
            "browser.events.data.msn.com",
            "www.microsoft.com",
            "edge.microsoft.com",
            "windows.msn.com",
            "definitionupdates.microsoft.com"
        ]
    );
    assert!(c
        .area("diagnostic-data")
        .unwrap()
        .impact
        .starts_with("The following endpoints are used by the Connected User Experiences"));
}

#[test]
fn an_area_without_any_description_gets_an_impact_naming_it() {
    let page = "\
| Area | Description | Protocol | Destination |
|---|---|---|---|
| Mystery | | HTTPS | a.example |
";
    let c = run(page, "x.md").catalog;
    assert_eq!(
        c.area("mystery").unwrap().impact,
        "What Mystery uses these endpoints for stops working (the source page describes \
         none of them)."
    );
}

#[test]
fn a_catalog_file_without_area_impacts_derives_them_when_read() {
    let c = shared_import().catalog;
    let mut bare = c.clone();
    for area in &mut bare.areas {
        area.impact.clear();
    }
    let toml: String = bare
        .to_toml_string()
        .unwrap()
        .split_inclusive('\n')
        .filter(|l| *l != "impact = \"\"\n")
        .collect();
    assert!(!toml.contains("\nimpact = "));
    assert_eq!(Catalog::from_toml_str(&toml, "<no impacts>").unwrap(), c);
}

#[test]
fn windows_11_enterprise_area_ids_follow_the_slug_rule() {
    let c = shared_import().catalog;
    for area in &c.areas {
        assert_eq!(area.id, slug(&area.name));
    }
    assert!(c.area("network-connection-status-indicator-ncsi").is_some());
    assert!(c.area("microsoft-to-do").is_some());
}

#[test]
fn every_imported_pattern_is_a_valid_matcher_pattern() {
    let pages = [
        (shared_page(), "manage-windows-11-endpoints.md"),
        (page_2025(), "manage-windows-11-endpoints-2025-05-23.md"),
        (FAMILY_PRO.to_owned(), "f.md"),
        (OLDER_LAYOUT.to_owned(), "o.md"),
        (STRAY_SPACES.to_owned(), "s.md"),
    ];
    for (page, file) in &pages {
        for area in run(page, file).catalog.areas {
            for e in area.endpoints {
                let normal = winsink_matcher::normalize_pattern(&e.pattern)
                    .unwrap_or_else(|err| panic!("{file}: {err}"));
                assert_eq!(normal, e.pattern, "{file}: pattern is already normal");
            }
        }
    }
}

#[test]
fn windows_11_enterprise_round_trips_through_toml() {
    let imported = shared_import();
    round_trips(&imported.catalog);
    let toml = imported.catalog.to_toml_string().unwrap();
    assert!(toml.starts_with(
        "# Windows endpoint catalog: Connection endpoints for Windows 11 Enterprise\n\
         # Source: https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints (ms.date 10/06/2023)\n\
         # Licence: the source page is (c) Microsoft, licensed CC BY 4.0\n"
    ));
}

#[test]
fn the_shipped_catalog_is_the_import_of_the_2025_page() {
    let imported = import_2025().catalog;
    // Compared as booleans: on failure the catalogs are too long to print usefully.
    assert!(
        crate::WINDOWS11_ENTERPRISE_TOML == imported.to_toml_string().unwrap(),
        "policies/windows11-enterprise.toml is stale: regenerate it with `winsink catalog import`"
    );
    assert!(crate::windows11_enterprise() == &imported);
}

#[test]
fn the_2023_fixture_catalog_is_the_import_of_the_2023_page() {
    const FIXTURE: &str = include_str!("../../tests/fixtures/windows11-enterprise-2023-10-06.toml");
    assert!(
        FIXTURE == shared_import().catalog.to_toml_string().unwrap(),
        "crates/catalog/tests/fixtures/windows11-enterprise-2023-10-06.toml is stale: \
         regenerate it with `winsink catalog import`"
    );
}

#[test]
fn the_shipped_catalog_rejects_an_unknown_key() {
    let with_typo = crate::WINDOWS11_ENTERPRISE_TOML.replacen("turn_off =", "turnoff =", 1);
    let err = Catalog::from_toml_str(&with_typo, "policies/windows11-enterprise.toml").unwrap_err();
    let msg = format!("{err}: {}", std::error::Error::source(&err).unwrap());
    assert!(msg.contains("policies/windows11-enterprise.toml"), "{msg}");
    assert!(msg.contains("unknown field `turnoff`"), "{msg}");
    assert!(msg.contains("line "), "{msg}");
}

/// Pages made of the pieces the importer reacts to, in any order: it must never panic, and
/// whatever it accepts must be a catalog that survives TOML and holds only valid patterns.
mod arbitrary_pages {
    use proptest::prelude::*;

    use super::*;

    fn piece() -> impl Strategy<Value = String> {
        const FIXED: &[&str] = &[
            "|",
            "\n",
            "---",
            "## ",
            "# ",
            "<br>",
            "</br>",
            "<br/>",
            "[",
            "](",
            ")",
            "*",
            "\\",
            "`",
            "**",
            "â€™",
            "Ã",
            "&#42;",
            "&amp",
            "Area",
            "Destination",
            "Protocol",
            "Description",
            "Source process",
            "Learn how to turn off",
            "x.md#a",
            ":-:",
            " ",
            "```",
            "/",
            "?",
            ":",
            "TLS v1.2",
            "\r\n",
            "\u{200b}",
            "ms.date: 1\n",
        ];
        prop_oneof![
            3 => proptest::sample::select(FIXED).prop_map(str::to_owned),
            2 => "[a-z*]{1,6}\\.[a-z]{2,3}",
            1 => "[A-Za-z ]{1,12}",
            1 => any::<char>().prop_map(String::from),
        ]
    }

    /// A table row of random cells, so that many pages have endpoint tables.
    fn row() -> impl Strategy<Value = String> {
        let cell = proptest::collection::vec(piece(), 0..4).prop_map(|v| v.concat());
        proptest::collection::vec(cell, 1..6).prop_map(|cells| format!("|{}|\n", cells.join("|")))
    }

    proptest! {
        #[test]
        fn import_never_panics_and_what_it_accepts_is_sound(
            header in proptest::sample::select(&[
                "",
                "|Area|Description|Protocol|Destination|\n|-|-|-|-|\n",
                "## A\n\n| **Source process** | Protocol | Destination |\n|:---:|---|---|\n",
            ][..]),
            pieces in proptest::collection::vec(prop_oneof![3 => row(), 1 => piece()], 0..60)
        ) {
            let page = format!("{header}{}", pieces.concat());
            if let Ok(imported) = import(&page, &ImportOptions::for_page_file("p.md")) {
                let toml = imported.catalog.to_toml_string().unwrap();
                prop_assert_eq!(&Catalog::from_toml_str(&toml, "p").unwrap(), &imported.catalog);
                for area in &imported.catalog.areas {
                    prop_assert_eq!(&area.id, &slug(&area.name));
                    for e in &area.endpoints {
                        prop_assert!(winsink_matcher::normalize_pattern(&e.pattern).is_ok());
                    }
                }
                let lines = page.lines().count();
                for s in &imported.skipped {
                    prop_assert!((1..=lines).contains(&s.line), "{s}");
                }
            }
        }
    }
}

#[test]
fn a_flat_list_without_areas_is_refused_precisely() {
    const FLAT_LIST: &str = include_str!("../../tests/fixtures/flat-list.md");
    let err = import(FLAT_LIST, &ImportOptions::for_page_file("x.md")).unwrap_err();
    let ImportError::NoEndpoints { skipped } = &err else {
        panic!("{err:?}");
    };
    let lines: Vec<String> = skipped.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "line 12: skipped: table of 3 rows has Destination and Description columns but no \
             Area column: a flat list without areas is not imported",
            "line 20: skipped: table of 1 row has Destination and Description columns but no \
             Area column: a flat list without areas is not imported",
        ]
    );
}

#[test]
fn a_flat_per_edition_page_takes_its_areas_from_the_reference_catalog() {
    const PAGE: &str = include_str!("../../tests/fixtures/windows10-1709-editions.md");
    let options = ImportOptions::for_page_file("windows10-1709-editions.md")
        .areas_from(crate::windows11_enterprise().clone());
    let imported = import(PAGE, &options).unwrap();
    let c = &imported.catalog;
    let areas: Vec<(&str, Vec<&str>)> = c
        .areas
        .iter()
        .map(|a| (a.id.as_str(), patterns(a)))
        .collect();
    assert_eq!(
        areas,
        [
            ("microsoft-store", vec!["*.wns.windows.com"]),
            ("certificates", vec!["ctldl.windowsupdate.com"]),
            // Two areas of the reference list it: it goes to both.
            ("device-authentication", vec!["login.live.com"]),
            ("microsoft-account", vec!["login.live.com"]),
            ("apps", vec!["cdn.onenote.net"]),
            ("unassigned-windows-10-family", vec!["*.e-msedge.net"]),
            ("windows-update", vec!["*.dl.delivery.mp.microsoft.com"]),
            (
                "unassigned-windows-10-pro",
                vec!["cdn.content.prod.cms.msn.com"]
            ),
            (
                "network-connection-status-indicator-ncsi",
                vec!["www.msftconnecttest.com"]
            ),
        ]
    );
    assert_eq!(
        c.area("unassigned-windows-10-pro").unwrap().name,
        "Unassigned (Windows 10 Pro)"
    );
    // The reference's area names, this page's protocols, descriptions and editions.
    let wns = endpoint(c, "microsoft-store", "*.wns.windows.com");
    assert_eq!(wns.protocols, ["TLSv1.2", "HTTPS"]);
    assert_eq!(
        wns.description,
        "Used for the Windows Push Notification Services (WNS)."
    );
    assert_eq!(wns.sections, ["Windows 10 Family", "Windows 10 Pro"]);
    // Tabs in cells are blanks.
    assert_eq!(
        endpoint(c, "certificates", "ctldl.windowsupdate.com").description,
        "Used to download certificates that are publicly known to be fraudulent."
    );
    assert_eq!(
        c.source.sections,
        [
            "Windows 10 Family",
            "Windows 10 Pro",
            "Windows 10 Education"
        ]
    );
    assert_eq!(
        imported.flat,
        FlatAssignment {
            from_reference: 7,
            unassigned: 2
        }
    );
    assert_eq!(
        reasons(&imported),
        [
            "line 18: skipped: empty row",
            "line 33: skipped: destination \"not a destination!\": prose, not a host name",
        ]
    );
    assert!(imported.summary().to_string().ends_with(
        "; flat lists: 7 destinations given the reference catalog's areas, 2 in Unassigned areas"
    ));
    round_trips(c);
}
