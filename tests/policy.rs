//! `winsink check` and `winsink explain` on the shipped configs, and the shipped configs
//! themselves.

use std::path::Path;

use serde_json::{json, Value};
use winsink_policy::{Action, Policy, PolicyError};

use crate::support::{repo_root, run_winsink, stderr, stdout};

const SHIPPED: &[&str] = &[
    "config/winsink.toml",
    "config/examples/strict.toml",
    "config/examples/audit.toml",
    "config/examples/lab-groups.toml",
];

fn explain_json(args: &[&str]) -> Value {
    let mut all = vec!["explain", "--json"];
    all.extend_from_slice(args);
    let out = run_winsink(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("explain --json prints JSON")
}

fn areas_of(m: &Value) -> Vec<String> {
    m["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["area"]["name"].as_str().unwrap_or("-").to_owned())
        .collect()
}

// --- the must-show explains, on the default config ---

#[test]
fn explain_watson_is_blocked_by_diagnostic_data() {
    let v = explain_json(&["watson.events.data.microsoft.com"]);
    assert_eq!(v["name"], "watson.events.data.microsoft.com");
    assert_eq!(v["client"], "127.0.0.1");
    assert_eq!(v["decision"], "block");
    let m = &v["matches"][0];
    assert_eq!(
        m["area"],
        json!({"id": "diagnostic-data", "name": "Diagnostic Data"})
    );
    assert_eq!(m["pattern"], "watson.*.microsoft.com");
    assert_eq!(m["action"], "block");
    assert!(
        m["source"].as_str().unwrap().starts_with("catalog: "),
        "{m}"
    );
    assert!(
        m["impact"]
            .as_str()
            .unwrap()
            .contains("Windows Error Reporting"),
        "{m}"
    );
    assert_eq!(areas_of(&v), ["Diagnostic Data"]);
}

#[test]
fn explain_self_events_is_blocked_and_names_office_too() {
    let v = explain_json(&["self.events.data.microsoft.com"]);
    assert_eq!(v["decision"], "block");
    assert_eq!(areas_of(&v), ["Diagnostic Data", "Office"]);
    let office = &v["matches"][1];
    assert_eq!(office["action"], "log");
    assert_eq!(office["pattern"], "self.events.data.microsoft.com");
    assert!(
        office["impact"]
            .as_str()
            .unwrap()
            .contains("save documents to the cloud"),
        "{office}"
    );

    let text = run_winsink(&["explain", "self.events.data.microsoft.com"]);
    let text = stdout(&text);
    assert!(
        text.starts_with(
            "self.events.data.microsoft.com: block, decided by area Diagnostic Data \
             (diagnostic-data); also: area Office (office): log\n"
        ),
        "{text}"
    );
    // The same facts under the query log's names.
    assert_eq!(
        v["decided_by"],
        json!({"kind": "area", "id": "diagnostic-data", "name": "Diagnostic Data",
               "pattern": "self.events.data.microsoft.com", "action": "block"})
    );
    assert_eq!(
        v["areas"],
        json!([{"id": "diagnostic-data", "name": "Diagnostic Data"},
               {"id": "office", "name": "Office"}])
    );
    assert_eq!(v["impact_scope"], "endpoint");
}

#[test]
fn explain_www_microsoft_com_explains_the_shipped_allow_rule_in_one_line() {
    let text = stdout(&run_winsink(&["explain", "www.microsoft.com"]));
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "www.microsoft.com: allow, decided by rule www.microsoft.com (Microsoft's main \
         website, listed under Diagnostic Data; remove this rule to block it); also: area \
         Diagnostic Data (diagnostic-data): block"
    );
    let v = explain_json(&["www.microsoft.com"]);
    assert_eq!(v["decision"], "allow");
    assert_eq!(v["decided_by"]["kind"], "rule");
    assert_eq!(v["areas"][0]["id"], "diagnostic-data");
    // The page describes none for it: the area's impact, said to be the area's.
    assert_eq!(v["impact_scope"], "area");
    assert!(v["impact"][0]
        .as_str()
        .unwrap()
        .starts_with("The following endpoints are used by the Connected User Experiences"));
    // Taking the rule out blocks it with Diagnostic Data.
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("winsink.toml");
    let shipped = std::fs::read_to_string(repo_root().join("config/winsink.toml")).unwrap();
    let without = shipped.replace(
        "[[rules]]\npattern = \"www.microsoft.com\"",
        "[[rules]]\npattern = \"unused.example\"",
    );
    assert_ne!(without, shipped);
    // The shipped config names the built-in catalog, so a copy works from anywhere.
    std::fs::write(&config, without).unwrap();
    let v = explain_json(&["www.microsoft.com", "--config", config.to_str().unwrap()]);
    assert_eq!(v["decision"], "block");
}

#[test]
fn explain_mixed_case_bing_with_trailing_dot_is_logged() {
    let v = explain_json(&["WWW.Bing.COM."]);
    assert_eq!(v["name"], "WWW.Bing.COM.");
    assert_eq!(v["decision"], "log");
    assert_eq!(areas_of(&v), ["Cortana and Live Tiles"]);
    assert_eq!(v["matches"][0]["pattern"], "www.bing.com");
}

#[test]
fn explain_example_org_passes() {
    let v = explain_json(&["example.org"]);
    assert_eq!(
        v,
        json!({"name": "example.org", "client": "127.0.0.1", "group": null, "decision": "pass",
               "decided_by": null, "areas": [], "patterns": [], "impact": [],
               "impact_scope": null, "matches": []})
    );
    let text = stdout(&run_winsink(&["explain", "example.org"]));
    assert!(text.contains("example.org: pass"), "{text}");
    assert!(text.contains("no area, rule or list matches"), "{text}");
}

#[test]
fn explain_json_has_exactly_the_documented_keys() {
    let v = explain_json(&["self.events.data.microsoft.com"]);
    let mut keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "areas",
            "client",
            "decided_by",
            "decision",
            "group",
            "impact",
            "impact_scope",
            "matches",
            "name",
            "patterns"
        ]
    );
    for m in v["matches"].as_array().unwrap() {
        let mut keys: Vec<_> = m.as_object().unwrap().keys().cloned().collect();
        keys.sort();
        assert_eq!(
            keys,
            [
                "action",
                "area",
                "impact",
                "impact_scope",
                "line",
                "pattern",
                "source"
            ]
        );
    }
}

#[test]
fn explain_uses_the_client_group() {
    let cfg = "config/examples/lab-groups.toml";
    let strict = explain_json(&["www.bing.com", "--client", "10.0.10.5", "--config", cfg]);
    assert_eq!(
        (strict["client"].as_str(), strict["decision"].as_str()),
        (Some("10.0.10.5"), Some("block"))
    );
    let baseline = explain_json(&["www.bing.com", "--client", "10.0.20.5", "--config", cfg]);
    assert_eq!(baseline["decision"], "log");
    let v6 = explain_json(&[
        "www.bing.com",
        "--client",
        "fd00:10:0:10::7",
        "--config",
        cfg,
    ]);
    assert_eq!(v6["decision"], "block");
    // The strict group's allow rule beats the strict group's block of Microsoft Edge.
    let edge = explain_json(&[
        "edge.microsoft.com",
        "--client",
        "10.0.10.5",
        "--config",
        cfg,
    ]);
    assert_eq!(edge["decision"], "allow");
    let sources: Vec<_> = edge["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["source"].clone())
        .collect();
    assert!(
        sources.contains(&json!("rule: lab app needs Edge's service endpoint")),
        "{edge}"
    );
    assert_eq!(edge["matches"][1]["area"], Value::Null);

    let text = stdout(&run_winsink(&[
        "explain",
        "www.bing.com",
        "--client",
        "10.0.10.5",
        "--config",
        cfg,
    ]));
    assert!(text.contains("client 10.0.10.5, group strict"), "{text}");
    let text = stdout(&run_winsink(&[
        "explain",
        "edge.microsoft.com",
        "--client",
        "10.0.10.5",
        "--config",
        cfg,
    ]));
    assert!(
        text.starts_with(
            "edge.microsoft.com: allow, decided by group strict: rule edge.microsoft.com \
             (lab app needs Edge's service endpoint); also: area Microsoft Edge \
             (microsoft-edge): block\n"
        ),
        "{text}"
    );
    assert_eq!(edge["group"], "strict");
    assert_eq!(
        edge["decided_by"],
        json!({"kind": "group", "name": "strict", "inner": {"kind": "rule",
               "note": "lab app needs Edge's service endpoint",
               "pattern": "edge.microsoft.com", "action": "allow"}})
    );
}

#[test]
fn explain_says_when_the_server_would_refuse_the_client() {
    let text = stdout(&run_winsink(&[
        "explain",
        "www.bing.com",
        "--client",
        "203.0.113.9",
    ]));
    assert!(
        text.ends_with(
            "  but 203.0.113.9 is not in [server] allow_clients: `winsink run` answers it REFUSED\n"
        ),
        "{text}"
    );
    let text = stdout(&run_winsink(&[
        "explain",
        "www.bing.com",
        "--client",
        "10.1.2.3",
    ]));
    assert!(!text.contains("REFUSED"), "{text}");
}

#[test]
fn explain_with_a_broken_config_exits_2() {
    let out = run_winsink(&["explain", "x.example", "--config", "does/not/exist.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "error: does/not/exist.toml does not load: cannot read does/not/exist.toml: \
         No such file or directory (os error 2)\n"
    );
}

// --- check ---

#[test]
fn check_the_default_config_summarises_every_area() {
    let out = run_winsink(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.starts_with("config/winsink.toml: OK\n"), "{text}");
    assert!(text.contains("areas: 24 (default action: log)"), "{text}");
    assert!(text.contains("  block  diagnostic-data "), "{text}");
    assert!(text.contains("  log    cortana-and-live-tiles "), "{text}");
    assert!(
        text.contains(
            "rules: 1\n  allow www.microsoft.com (Microsoft's main website, listed under \
             Diagnostic Data; remove this rule to block it)\nlists: 0\ngroups: 0\n"
        ),
        "{text}"
    );
    // Diagnostic Data's block takes self.events.data.microsoft.com from Office too, and
    // the page lists www.microsoft.com under it: one block says so, and what each gets.
    assert!(
        text.contains(
            "\nendpoints of blocked areas that are shared with other areas or general-purpose: 2\n  \
             Diagnostic Data (diagnostic-data):\n    \
             self.events.data.microsoft.com: also used by Office (office): log; block, decided \
             by area Diagnostic Data (diagnostic-data) (acknowledged: acknowledge_shared of area \
             diagnostic-data at config/winsink.toml:"
        ),
        "{text}"
    );
    assert!(
        text.contains(
            "\n    www.microsoft.com: general-purpose host (Microsoft's main website); allow, \
             decided by rule www.microsoft.com (Microsoft's main website, listed under \
             Diagnostic Data; remove this rule to block it) (acknowledged: rule \
             www.microsoft.com)\n"
        ),
        "{text}"
    );
    // Acknowledged, so neither start nor check warns about it.
    assert_eq!(stderr(&out), "");
    assert!(text.ends_with("\n0 warnings\n"), "{text}");
}

#[test]
fn the_shared_endpoint_warning_comes_back_without_the_acknowledgement() {
    let shipped = std::fs::read_to_string(repo_root().join("config/winsink.toml")).unwrap();
    let bare = shipped
        .replace(
            "diagnostic-data = { action = \"block\", acknowledge_shared = [\"self.events.data.microsoft.com\"] }",
            "diagnostic-data = \"block\"",
        );
    assert!(!bare.contains("acknowledge_shared = [\""));
    let (code, err) = check_text(&bare, &[]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        err,
        "warning: self.events.data.microsoft.com is blocked by area Diagnostic Data \
         (diagnostic-data) but also used by area Office (office) (log): block wins (if that is \
         meant, say so in the area's `acknowledge_shared` or with a [[rules]] entry for the \
         name)\n"
    );
}

#[test]
fn check_every_shipped_config() {
    for cfg in SHIPPED {
        let out = run_winsink(&["check", "--config", cfg]);
        assert_eq!(out.status.code(), Some(0), "{cfg}: {}", stderr(&out));
        assert!(
            stdout(&out).contains("areas: 24 "),
            "{cfg}: {}",
            stdout(&out)
        );
    }
    let out = stdout(&run_winsink(&[
        "check",
        "--config",
        "config/examples/lab-groups.toml",
    ]));
    assert!(out.contains("groups: 2\n  baseline [10.0.0.0/16, fd00:10::/48]: 1 area override (diagnostic-data=block)"), "{out}");
    assert!(
        out.contains("  strict [10.0.10.0/24, fd00:10:0:10::/64]: 7 area overrides"),
        "{out}"
    );
    assert!(
        out.contains("other areas block, 1 rule, sinkhole nxdomain"),
        "{out}"
    );
}

#[test]
fn check_reports_lists_with_loaded_and_bad_line_counts() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("ads.txt"),
        "# lab blocklist\n127.0.0.1 localhost\n0.0.0.0 ads.example tracker.example\nthis is not a hosts line\n||cdn.ads.example^\n",
    )
    .unwrap();
    let config = dir.path().join("winsink.toml");
    std::fs::write(
        &config,
        format!(
            "{}[[lists]]\npath = \"ads.txt\"\naction = \"block\"\nlabel = \"lab-ads\"\n\
             [[rules]]\npattern = \"*.ads.example\"\naction = \"log\"\nnote = \"watch\"\n",
            catalog_line()
        ),
    )
    .unwrap();
    let out = run_winsink(&["check", "--config", config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("rules: 1\n  log *.ads.example (watch)\n"),
        "{text}"
    );
    assert!(text.contains("lists: 1\n  block  lab-ads ("), "{text}");
    assert!(
        text.contains("ads.txt, auto): 3 loaded, 1 skipped, 1 bad line\n"),
        "{text}"
    );
    let err = stderr(&out);
    assert!(err.contains("warning: list `lab-ads` ("), "{err}");
    assert!(
        err.contains("1 malformed line ignored:\n    line 4: "),
        "{err}"
    );

    let v = explain_json(&["x.cdn.ads.example", "--config", config.to_str().unwrap()]);
    assert_eq!(v["decision"], "block");
    assert_eq!(
        v["matches"][0],
        json!({"source": "rule: watch", "area": null, "pattern": "*.ads.example", "action": "log",
               "impact": null, "impact_scope": null, "line": null})
    );
    assert_eq!(
        v["matches"][1],
        json!({"source": "list: lab-ads", "area": null, "pattern": "||cdn.ads.example^",
               "action": "block", "impact": null, "impact_scope": null, "line": 5})
    );
    assert_eq!(
        v["decided_by"],
        json!({"kind": "list", "label": "lab-ads", "line": 5, "entry": "||cdn.ads.example^",
               "action": "block"})
    );
}

/// `winsink check` on a config with `text` (and `files` beside it): the exit code, and
/// stderr with the folder's path replaced by `DIR`. A failed check prints nothing on
/// stdout.
fn check_text(text: &str, files: &[(&str, &[u8])]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    for (name, bytes) in files {
        std::fs::write(dir.path().join(name), bytes).unwrap();
    }
    let config = dir.path().join("winsink.toml");
    std::fs::write(&config, text).unwrap();
    let out = run_winsink(&["check", "--config", config.to_str().unwrap()]);
    if !out.status.success() {
        assert_eq!(stdout(&out), "", "a failed check printed a summary");
    }
    let err = stderr(&out).replace(dir.path().to_str().unwrap(), "DIR");
    (out.status.code(), err)
}

fn catalog_line() -> String {
    let catalog = repo_root().join("policies/windows11-enterprise.toml");
    format!("catalogs = [{:?}]\n", catalog.display().to_string())
}

#[test]
fn check_rejects_typos_naming_file_line_key_and_suggestion() {
    let (code, err) = check_text(
        &format!(
            "{}\n[areas]\ndiagnostics-data = \"block\"\n",
            catalog_line()
        ),
        &[],
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: DIR/winsink.toml does not load: DIR/winsink.toml:4: unknown area id \
         `diagnostics-data` (did you mean `diagnostic-data`?)\n"
    );

    let (code, err) = check_text(
        "[server]\nlisten = []\nupstream = [\"udp://127.0.0.1:53\"]\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(
        err.contains(":3: unknown key `upstream` in [server] (did you mean `upstreams`?)"),
        "{err}"
    );

    let (code, err) = check_text("defualt_action = \"block\"\n", &[]);
    assert_eq!(code, Some(2));
    assert!(
        err.contains(
            ":1: unknown key `defualt_action` in the top level (did you mean `default_action`?)"
        ),
        "{err}"
    );
}

#[test]
fn check_rejects_bad_cidrs_and_patterns_saying_which_and_why() {
    let (code, err) = check_text(
        "catalogs = []\n[[groups]]\nname = \"g\"\nclients = [\"10.0.0.0/33\"]\n\
         [[rules]]\npattern = \"ads..example\"\naction = \"block\"\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert!(err.contains("2 errors:"), "{err}");
    assert!(
        err.contains(":4: group `g`: invalid client network \"10.0.0.0/33\": "),
        "{err}"
    );
    assert!(
        err.contains(":6: invalid domain pattern \"ads..example\": empty label"),
        "{err}"
    );
}

#[test]
fn check_of_a_missing_list_file_exits_2_naming_it() {
    let (code, err) = check_text(
        "catalogs = []\n[[lists]]\npath = \"gone.txt\"\naction = \"block\"\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: DIR/winsink.toml does not load: DIR/winsink.toml:3: list `gone.txt`: \
         cannot read DIR/gone.txt: No such file or directory (os error 2)\n"
    );
}

#[test]
fn check_rejects_an_upstream_that_run_would_refuse() {
    let (code, err) = check_text(
        "catalogs = []\n[server]\nupstreams = [\n  \"udp://192.0.2.1:53\",\n  \"udp//192.0.2.2\",\n]\n",
        &[],
    );
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: DIR/winsink.toml does not load: DIR/winsink.toml:5: [server] upstreams: \
         upstream \"udp//192.0.2.2\": expected an IP address with an optional port, like \
         192.0.2.1:53 or [2001:db8::1]:53\n"
    );
}

#[test]
fn check_shows_where_it_listens_and_forwards() {
    let out = run_winsink(&["check"]);
    let text = stdout(&out);
    assert!(
        text.contains("\nlisten: 127.0.0.1:5353, [::1]:5353\nupstreams: "),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("winsink.toml");
    std::fs::write(
        &config,
        "catalogs = []\n[server]\nupstreams = [\"tcp://192.0.2.1:5300\", \"192.0.2.2\"]\n",
    )
    .unwrap();
    let text = stdout(&run_winsink(&["check", "-c", config.to_str().unwrap()]));
    assert!(
        text.contains("\nupstreams: tcp://192.0.2.1:5300, udp://192.0.2.2:53\n"),
        "{text}"
    );
}

#[test]
fn check_loads_a_messy_list_and_reports_each_malformed_line() {
    // Windows line endings, a BOM, a Latin-1 byte, several names on a line, `::`,
    // adblock forms and a stray `*`: every good name loads, every bad line is named.
    let list: &[u8] = b"\xef\xbb\xbf# lab list \xe9\r\n\r\n127.0.0.1 localhost\r\n\
        0.0.0.0 a.example b.example\r\n:: c.example\r\n||d.example^\r\n||*.e.example^\r\n\
        f.example\r\n*\r\n0.0.0.0 g.example bad..example\r\n";
    let (code, err) = check_text(
        "catalogs = []\n[[lists]]\npath = \"messy.txt\"\naction = \"block\"\n",
        &[("messy.txt", list)],
    );
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(
        err,
        "warning: list `messy.txt` (DIR/messy.txt): 2 malformed lines ignored:\n    \
         line 9: matches every name; a list entry must name a domain (\"*\")\n    \
         line 10: `bad..example`: empty label (a leading dot or two dots in a row) \
         (\"0.0.0.0 g.example bad..example\")\n"
    );
}

#[test]
fn explain_refuses_a_name_no_client_could_ask() {
    for (name, why) in [
        ("bad name.example", "character ' ' is not allowed"),
        ("a..example", "empty label"),
        ("", "empty"),
    ] {
        let out = run_winsink(&["explain", name]);
        assert_eq!(out.status.code(), Some(2), "{name:?}");
        assert_eq!(stdout(&out), "");
        let err = stderr(&out);
        assert!(
            err.starts_with(&format!("error: {name:?} is not a DNS name: ")) && err.contains(why),
            "{err}"
        );
    }
}

#[test]
fn explain_asks_a_unicode_name_as_its_a_labels() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("winsink.toml");
    std::fs::write(
        &config,
        "catalogs = []\n[[rules]]\npattern = \"*.bücher.example\"\naction = \"block\"\n",
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let v = explain_json(&["www.Bücher.example", "--config", cfg]);
    assert_eq!(v["decision"], "block");
    assert_eq!(v["name"], "www.Bücher.example");
    let text = stdout(&run_winsink(&["explain", "www.bücher.example", "-c", cfg]));
    assert!(
        text.starts_with("www.bücher.example is asked as www.xn--bcher-kva.example\n"),
        "{text}"
    );
}

#[test]
fn check_and_explain_do_not_panic_when_the_reader_goes_away() {
    // `winsink check | head -2` once panicked with "failed printing to stdout".
    for args in [
        &["check"][..],
        &["check", "--json"],
        &["explain", "self.events.data.microsoft.com"],
        &["explain", "--json", "www.bing.com"],
        &["catalog", "show"],
    ] {
        let mut child = crate::support::winsink()
            .args(args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // Close the read end before the command has loaded anything to print.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
    }
}

// --- the shipped files themselves ---

#[test]
fn default_config_lists_every_catalog_area_with_a_comment() {
    let text = std::fs::read_to_string(repo_root().join("config/winsink.toml")).unwrap();
    let catalog = winsink_catalog::Catalog::from_path(
        &repo_root().join("policies/windows11-enterprise.toml"),
    )
    .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for area in &catalog.areas {
        let expected = if area.id == "diagnostic-data" {
            "block"
        } else {
            "log"
        };
        let at = lines
            .iter()
            .position(|l| {
                *l == format!("{} = \"{expected}\"", area.id)
                    || l.starts_with(&format!("{} = {{ action = \"{expected}\", ", area.id))
            })
            .unwrap_or_else(|| panic!("config/winsink.toml does not set {} = {expected}", area.id));
        assert!(
            lines[at - 1].starts_with("# "),
            "{} has no comment above it",
            area.id
        );
    }
    let loaded = Policy::load(&repo_root().join("config/winsink.toml")).unwrap();
    let summary = loaded.policy.summary();
    assert_eq!(summary.areas.len(), catalog.areas.len());
    for a in &summary.areas {
        let expected = if a.id == "diagnostic-data" {
            Action::Block
        } else {
            Action::Log
        };
        assert_eq!(a.action, expected, "{}", a.id);
    }
}

/// Every key the config format has is shown in `config/winsink.toml` (set, or commented
/// out as an example) under a comment, in its table.
#[test]
fn default_config_documents_every_key() {
    use winsink_policy::{
        CacheSettings, HttpSettings, LogSettings, ServerSettings, SinkholeSettings, TlsSettings,
    };
    let keys = |v: Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let tables: Vec<(&str, Vec<String>)> = vec![
        ("", vec!["catalogs".into(), "default_action".into()]),
        (
            "[server]",
            keys(serde_json::to_value(ServerSettings::default()).unwrap()),
        ),
        (
            "[sinkhole]",
            keys(serde_json::to_value(SinkholeSettings::default()).unwrap()),
        ),
        (
            "[cache]",
            keys(serde_json::to_value(CacheSettings::default()).unwrap()),
        ),
        (
            "[log]",
            keys(serde_json::to_value(LogSettings::default()).unwrap()),
        ),
        (
            "[http]",
            keys(serde_json::to_value(HttpSettings::default()).unwrap()),
        ),
        (
            "[tls]",
            keys(serde_json::to_value(TlsSettings::default()).unwrap()),
        ),
        (
            "[[rules]]",
            vec!["pattern".into(), "action".into(), "note".into()],
        ),
        (
            "[[lists]]",
            [
                "path",
                "format",
                "action",
                "label",
                "allow_empty",
                "url",
                "refresh",
            ]
            .map(String::from)
            .to_vec(),
        ),
        (
            "[url_lists]",
            ["cache_dir", "max_size_mib", "timeout"]
                .map(String::from)
                .to_vec(),
        ),
    ];
    let text = std::fs::read_to_string(repo_root().join("config/winsink.toml")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    for (table, keys) in &tables {
        for key in keys {
            // The key's line: `key = ...` or `# key = ...`, after the table's header
            // (itself possibly commented out, as the examples of [[rules]] are).
            let start = if table.is_empty() {
                0
            } else {
                lines
                    .iter()
                    .position(|l| l.trim_start_matches("# ").starts_with(table))
                    .unwrap_or_else(|| panic!("config/winsink.toml has no {table}"))
            };
            let at = lines[start..]
                .iter()
                .position(|l| {
                    let l = l.trim_start_matches("# ");
                    l.strip_prefix(key.as_str())
                        .is_some_and(|rest| rest.trim_start().starts_with('='))
                })
                .map(|i| i + start)
                .unwrap_or_else(|| panic!("config/winsink.toml does not show {table} {key}"));
            // A comment on the line, or above it in the same paragraph (keys that share
            // one, like min_ttl and max_ttl).
            let commented = lines[at].matches('#').count()
                > usize::from(lines[at].starts_with('#'))
                || lines[..at]
                    .iter()
                    .rev()
                    .take_while(|l| !l.trim().is_empty() && !l.starts_with('['))
                    .any(|l| l.starts_with('#'));
            assert!(commented, "{table} {key} (line {}) has no comment", at + 1);
        }
    }
    // [[groups]] keys are described in one comment block.
    for key in [
        "name",
        "clients",
        "sinkhole",
        "default_action",
        "[groups.areas]",
        "[[groups.rules]]",
    ] {
        assert!(
            text.contains(&format!("#   {key} ")),
            "config/winsink.toml does not describe [[groups]] {key}"
        );
    }
}

/// The 2025 page adds `*.api.cdp.microsoft.com` to Windows Update, and that wildcard
/// also matches Edge's `msedge.api.cdp.microsoft.com`: the name is shared by two areas,
/// and the precedence rules decide it (any block blocks, else any log logs), with `check`
/// warning when a block takes the name from an area that allows or logs it.
#[test]
fn windows_update_s_cdp_wildcard_shares_edge_s_update_check() {
    let decide = |update: &str, edge: &str, name: &str| -> (Value, String) {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        std::fs::write(
            &config,
            format!(
                "{}[areas]\nwindows-update = \"{update}\"\nmicrosoft-edge = \"{edge}\"\n",
                catalog_line()
            ),
        )
        .unwrap();
        let v = explain_json(&[name, "--config", config.to_str().unwrap()]);
        let check = run_winsink(&["check", "--config", config.to_str().unwrap()]);
        assert!(check.status.success(), "{}", stderr(&check));
        (v, stderr(&check))
    };
    let edge = "msedge.api.cdp.microsoft.com";
    let (v, _) = decide("log", "log", edge);
    let matches: Vec<(&str, &str)> = v["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["area"]["name"].as_str().unwrap(),
                m["pattern"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        matches,
        [
            ("Microsoft Edge", "msedge.api.cdp.microsoft.com"),
            ("Windows Update", "*.api.cdp.microsoft.com"),
        ]
    );

    for (update, edge_action, want) in [
        ("block", "allow", "block"),
        ("allow", "block", "block"),
        ("allow", "log", "log"),
        ("log", "allow", "log"),
        ("allow", "allow", "allow"),
    ] {
        let (v, warnings) = decide(update, edge_action, edge);
        assert_eq!(
            v["decision"], want,
            "windows-update={update} microsoft-edge={edge_action}"
        );
        let warned = warnings.contains(&format!("warning: {edge} is blocked by"));
        assert_eq!(
            warned,
            want == "block",
            "windows-update={update} microsoft-edge={edge_action}: {warnings}"
        );
    }
    let (_, warnings) = decide("block", "allow", edge);
    assert!(
        warnings.contains(
            "warning: msedge.api.cdp.microsoft.com is blocked by area Windows Update \
             (windows-update) but also used by area Microsoft Edge (microsoft-edge) (allow): \
             block wins"
        ),
        "{warnings}"
    );
    // Any other name under api.cdp.microsoft.com is Windows Update's alone.
    let (v, _) = decide("block", "allow", "geo.api.cdp.microsoft.com");
    assert_eq!(v["decision"], "block");
    assert_eq!(areas_of(&v), ["Windows Update"]);
    let (v, _) = decide("allow", "block", "geo.api.cdp.microsoft.com");
    assert_eq!(v["decision"], "allow");
}

#[test]
fn strict_blocks_all_but_the_areas_windows_needs() {
    let loaded = Policy::load(&repo_root().join("config/examples/strict.toml")).unwrap();
    let allowed: Vec<_> = loaded
        .policy
        .summary()
        .areas
        .iter()
        .filter(|a| a.action != Action::Block)
        .map(|a| (a.id.clone(), a.action))
        .collect();
    let want = [
        "certificates",
        "device-authentication",
        "licensing",
        "microsoft-account",
        "microsoft-defender-antivirus",
        "network-connection-status-indicator-ncsi",
        "windows-update",
    ];
    let mut got: Vec<_> = allowed.iter().map(|(id, _)| id.as_str()).collect();
    got.sort_unstable();
    assert_eq!(got, want);
    assert!(allowed.iter().all(|(_, a)| *a == Action::Allow));
}

#[test]
fn audit_logs_every_area() {
    let loaded = Policy::load(&repo_root().join("config/examples/audit.toml")).unwrap();
    let s = loaded.policy.summary();
    assert_eq!(s.areas.len(), 24);
    assert!(s.areas.iter().all(|a| a.action == Action::Log));
}

/// Every shipped file loads, and an unknown key is rejected at the top level and in every
/// table the file has (hickory's `define_test_config!` habit).
#[test]
fn an_unknown_key_in_any_shipped_config_is_rejected() {
    for cfg in SHIPPED {
        let path = repo_root().join(cfg);
        let text = std::fs::read_to_string(&path).unwrap();
        let base = path.parent().unwrap();
        Policy::from_config_str(&text, base, cfg).unwrap_or_else(|e| panic!("{cfg}: {e}"));

        // (offset just after a table header, whether the table's keys are area ids)
        let mut places = vec![(0, false)];
        let mut offset = 0;
        for line in text.split_inclusive('\n') {
            offset += line.len();
            let header = line.trim();
            if header.starts_with('[') {
                places.push((offset, header == "[areas]" || header == "[groups.areas]"));
            }
        }
        assert!(
            places.len() > 1 || *cfg == "config/examples/audit.toml",
            "{cfg}"
        );
        for (at, area_table) in places {
            let broken = format!("{}bogus_key_xyz = \"log\"\n{}", &text[..at], &text[at..]);
            let line = text[..at].lines().count() + 1;
            match Policy::from_config_str(&broken, base, cfg) {
                Err(PolicyError::UnknownKey { key, line: l, .. }) if !area_table => {
                    assert_eq!(
                        (key.as_str(), l),
                        ("bogus_key_xyz", line),
                        "{cfg} at line {line}"
                    );
                }
                Err(PolicyError::UnknownArea { id, line: l, .. }) if area_table => {
                    assert_eq!(
                        (id.as_str(), l),
                        ("bogus_key_xyz", line),
                        "{cfg} at line {line}"
                    );
                }
                other => panic!("{cfg}: unknown key at line {line} gave {other:?}"),
            }
        }
    }
}

#[test]
fn relative_catalog_paths_follow_the_config_file_not_the_working_directory() {
    let out = crate::support::winsink()
        .current_dir(Path::new("/"))
        .args(["check", "--config"])
        .arg(repo_root().join("config/examples/strict.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}
