//! The dashboard on the real binary: the page and its assets, the per-minute buckets,
//! and toggling an area from the page (the config file edited in place, comments kept,
//! and the normal reload applying it).

use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{ask_udp, query, Daemon, TestUpstream, WAIT};
use crate::support::http::{get, request_with_body};

/// A lab config with comments that a toggle must leave alone.
const CONFIG: &str = r#"# Lab config: the dashboard may change the areas below.
catalogs = ["builtin:windows11-enterprise"]
default_action = "log"

[areas]
# Diagnostic data is not sent.
diagnostic-data = "block"
# Store apps cannot be installed or updated.
microsoft-store = "log"   # audit for a week first

[http]
# Loopback only; the page may edit this file.
allow_changes = true
"#;

const STORE: &str = "x.wns.windows.com";

fn start(config: &str) -> (TestUpstream, Daemon) {
    let upstream = TestUpstream::start();
    let daemon = Daemon::start(config, &["--upstream", &upstream.url()]);
    (upstream, daemon)
}

/// The A record winsink answers for `name`, if any.
fn a_record(d: &Daemon, name: &str) -> Option<String> {
    let reply = ask_udp(d.addr, &query(name, RecordType::A, false));
    reply.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0.to_string()),
        _ => None,
    })
}

fn toggle(
    d: &Daemon,
    area: &str,
    action: &str,
    headers: &[&str],
) -> crate::support::http::Response {
    request_with_body(
        d.http(),
        "POST",
        &format!("/api/v1/areas/{area}/action"),
        headers,
        "application/json",
        &format!("{{\"action\": \"{action}\"}}"),
    )
}

const CHANGE: &str = "X-Winsink-Change: area-action";

#[test]
fn the_page_and_every_asset_it_loads_are_served_from_the_binary() {
    let (_up, d) = start(CONFIG);
    let page = get(d.http(), "/", &[]);
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(
        csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"),
        "{csp}"
    );
    // Every file the page names is there, with its type: nothing comes from elsewhere.
    let assets: Vec<&str> = page
        .body
        .split('"')
        .filter(|s| s.starts_with("assets/"))
        .collect();
    assert!(assets.len() >= 5, "{assets:?}");
    assert!(!page.body.contains("http://") && !page.body.contains("https://"));
    for a in assets {
        let r = get(d.http(), &format!("/{a}"), &[]);
        assert_eq!(r.status, 200, "{a}");
        let want = match a.rsplit('.').next() {
            Some("js") => "text/javascript; charset=utf-8",
            Some("css") => "text/css; charset=utf-8",
            Some("svg") => "image/svg+xml",
            other => panic!("unexpected asset type {other:?}"),
        };
        assert_eq!(r.header("content-type"), Some(want), "{a}");
        assert!(!r.body.is_empty(), "{a}");
    }
    assert_eq!(get(d.http(), "/assets/../Cargo.toml", &[]).status, 404);
    assert_eq!(get(d.http(), "/assets/nothing.js", &[]).status, 404);
}

#[test]
fn the_timeseries_counts_the_queries_sent_per_area_and_decision() {
    let (_up, d) = start(CONFIG);
    for _ in 0..3 {
        assert_eq!(
            a_record(&d, "watson.events.data.microsoft.com").as_deref(),
            Some("0.0.0.0")
        );
    }
    for _ in 0..2 {
        assert_eq!(
            a_record(&d, STORE),
            None,
            "forwarded: the test upstream refuses it"
        );
    }
    let sum = |w: &serde_json::Value, area: &str, decision: &str| -> u64 {
        w["series"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["area"] == area && s["decision"] == decision)
            .flat_map(|s| {
                s["counts"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_u64().unwrap())
            })
            .sum()
    };
    let deadline = Instant::now() + WAIT;
    let w = loop {
        let w = get(d.http(), "/api/v1/timeseries?span=600&step=60", &[]).json();
        if sum(&w, "microsoft-store", "log") == 2 || Instant::now() > deadline {
            break w;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(w["step"], 60);
    assert_eq!(w["times"].as_array().unwrap().len(), 10);
    assert_eq!(sum(&w, "diagnostic-data", "block"), 3, "{w}");
    assert_eq!(sum(&w, "microsoft-store", "log"), 2, "{w}");
    assert_eq!(sum(&w, "microsoft-store", "block"), 0, "{w}");
    // A day in five-minute steps.
    let day = get(d.http(), "/api/v1/timeseries?span=86400&step=300", &[]).json();
    assert_eq!(day["times"].as_array().unwrap().len(), 288);
    assert_eq!(sum(&day, "diagnostic-data", "block"), 3);
    for bad in [
        "span=0",
        "span=90000",
        "step=30",
        "step=90",
        "span=600&step=1200",
    ] {
        let r = get(d.http(), &format!("/api/v1/timeseries?{bad}"), &[]);
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
    }
}

#[test]
fn toggling_an_area_edits_only_its_line_and_the_next_query_is_sinkholed() {
    let (_up, d) = start(CONFIG);
    assert_eq!(
        a_record(&d, STORE),
        None,
        "forwarded: the test upstream refuses it"
    );
    let status = get(d.http(), "/api/v1/config", &[]).json();
    assert_eq!(status["changes"]["allowed"], true, "{status}");
    assert_eq!(status["changes"]["via"], "loopback");

    let r = toggle(&d, "microsoft-store", "block", &[CHANGE]);
    assert_eq!(r.status, 200, "{}", r.body);
    let r = r.json();
    assert_eq!(
        (&r["before"], &r["after"], &r["written"]),
        (&"log".into(), &"block".into(), &true.into())
    );
    // One line changed; its comment and every other comment and blank line kept.
    let text = std::fs::read_to_string(d.config_path()).unwrap();
    assert_eq!(
        text,
        CONFIG.replace(
            "microsoft-store = \"log\"   # audit",
            "microsoft-store = \"block\"   # audit"
        )
    );
    // The normal reload picks the file up.
    let deadline = Instant::now() + WAIT;
    while a_record(&d, STORE).as_deref() != Some("0.0.0.0") {
        assert!(
            Instant::now() < deadline,
            "not sinkholed after the toggle; stderr:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let summary = get(d.http(), "/api/v1/summary", &[]).json();
    let store = summary["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == "microsoft-store")
        .cloned()
        .unwrap();
    assert_eq!(store["action"], "block");
    assert!(
        store["impact"].as_str().is_some_and(|i| !i.is_empty()),
        "{store}"
    );
    // Setting what the file already says writes nothing.
    let again = toggle(&d, "microsoft-store", "block", &[CHANGE]).json();
    assert_eq!(again["written"], false);
    // An unknown area is named, with the closest id.
    let r = toggle(&d, "microsoft-stor", "block", &[CHANGE]);
    assert_eq!(r.status, 404);
    assert!(
        r.body.contains("did you mean `microsoft-store`?"),
        "{}",
        r.body
    );
    let r = toggle(&d, "microsoft-store", "blok", &[CHANGE]);
    assert_eq!(r.status, 400, "{}", r.body);
}

#[test]
fn changes_need_allow_changes_the_header_and_this_pages_own_origin() {
    let off = CONFIG.replace("allow_changes = true", "allow_changes = false");
    let (_up, d) = start(&off);
    let status = get(d.http(), "/api/v1/config", &[]).json();
    assert_eq!(status["changes"]["allowed"], false);
    assert!(
        status["changes"]["reason"]
            .as_str()
            .unwrap()
            .contains("allow_changes = true"),
        "{status}"
    );
    let r = toggle(&d, "microsoft-store", "block", &[CHANGE]);
    assert_eq!(r.status, 403, "{}", r.body);
    drop(d);

    let (_up, d) = start(CONFIG);
    let refused = [
        vec![],                                      // no X-Winsink-Change: a plain form post
        vec![CHANGE, "Origin: http://evil.example"], // another site's page
        vec![CHANGE, "Sec-Fetch-Site: cross-site"],
    ];
    for headers in &refused {
        let r = toggle(&d, "microsoft-store", "block", headers);
        assert_eq!(r.status, 403, "{headers:?}: {}", r.body);
    }
    // DNS rebinding: a page of evil.example whose name now points at 127.0.0.1.
    let r = request_with_body(
        d.http(),
        "POST",
        "/api/v1/areas/microsoft-store/action",
        &[CHANGE, "Host: evil.example:8053"],
        "application/json",
        "{\"action\": \"block\"}",
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(std::fs::read_to_string(d.config_path()).unwrap(), CONFIG);
}

#[test]
fn with_the_token_changes_need_no_allow_changes_and_without_it_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let config = CONFIG.replace(
        "allow_changes = true",
        &format!("token_file = {:?}", token.display().to_string()),
    );
    let (_up, d) = start(&config);
    assert_eq!(
        toggle(&d, "microsoft-store", "block", &[CHANGE]).status,
        401
    );
    let auth = "Authorization: Bearer s3cret-token";
    let status = get(d.http(), "/api/v1/config", &[auth]).json();
    assert_eq!(status["changes"]["via"], "token", "{status}");
    let r = toggle(&d, "microsoft-store", "block", &[CHANGE, auth]);
    assert_eq!(r.status, 200, "{}", r.body);
    let text = std::fs::read_to_string(d.config_path()).unwrap();
    assert!(
        text.contains("microsoft-store = \"block\"   # audit"),
        "{text}"
    );
}

#[test]
fn a_read_only_config_shows_the_toggles_disabled_with_the_reason() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_up, d) = start(CONFIG);
    std::fs::set_permissions(d.config_path(), std::fs::Permissions::from_mode(0o444)).unwrap();
    let status = get(d.http(), "/api/v1/config", &[]).json();
    assert_eq!(status["changes"]["allowed"], false);
    let reason = status["changes"]["reason"].as_str().unwrap().to_owned();
    assert!(
        reason.ends_with("the file is read-only (mode 0444)"),
        "{reason}"
    );
    let r = toggle(&d, "microsoft-store", "block", &[CHANGE]);
    assert_eq!(r.status, 409, "{}", r.body);
    assert!(r.body.contains("read-only (mode 0444)"), "{}", r.body);
    assert_eq!(std::fs::read_to_string(d.config_path()).unwrap(), CONFIG);
}
