//! `winsink report` on a log written by the real daemon: the figures equal what the test
//! asked; the markdown page imports back as a catalog; the HTML renders in Chromium.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

use crate::support::dns::{ask_udp, query, zone, Daemon, Launch, TestUpstream};
use crate::support::{run_winsink, run_winsink_with_stdin, stderr, stdout};

/// A catalog of the lab's own: the test upstream's CNAME target is its endpoint.
const LAB_CATALOG: &str = r#"
[source]
title = "Lab catalog"
url = "https://lab.example/catalog"
date = "11/26/2026"

[[area]]
id = "lab-telemetry"
name = "Lab Telemetry"
[[area.endpoint]]
pattern = "telemetry.blocked.test"
original = "telemetry.blocked.test"
description = "The lab's telemetry collector."
"#;

/// What the test asks, and how often: (name, times).
const ASKED: &[(&str, usize)] = &[
    // Diagnostic Data (block).
    ("watson.events.data.microsoft.com", 3),
    // Shared by Diagnostic Data (block) and Office (log): Diagnostic Data decides.
    ("self.events.data.microsoft.com", 2),
    // Shared by Windows Update's *.api.cdp.microsoft.com (block) and Microsoft Edge (log).
    ("msedge.api.cdp.microsoft.com", 2),
    // Microsoft Store (log): forwarded, would be blocked.
    ("x.wns.windows.com", 4),
    // CNAME to telemetry.blocked.test, Lab Telemetry (block).
    (zone::CDN, 2),
    // Under Microsoft suffixes, in no area.
    ("lab-probe.microsoft.com", 3),
    ("other.lab.msn.com", 1),
    // Other names.
    (zone::WWW, 2),
    (zone::MISSING, 1),
];

/// A lab: the config (built-in catalog plus the lab's) and a daemon, stopped, that
/// logged to a file in its folder; the log.
struct Lab {
    daemon: Daemon,
    log: Vec<String>,
}

impl Lab {
    fn config_path(&self) -> PathBuf {
        self.daemon.config_path()
    }

    fn path(&self, name: &str) -> String {
        self.daemon.dir().join(name).display().to_string()
    }
}

/// The lab's config: paths relative to its folder.
const CONFIG: &str = r#"catalogs = ["builtin:windows11-enterprise", "lab.toml"]
default_action = "log"
[areas]
diagnostic-data = "block"
windows-update = "block"
microsoft-edge = "log"
office = "log"
microsoft-store = "log"
lab-telemetry = "block"
[log]
format = "json"
file = "daemon.log"
"#;

/// Runs the daemon, asks [`ASKED`], stops it, and keeps its log.
fn lab() -> Lab {
    let upstream = TestUpstream::start();
    let mut daemon = Launch::new(CONFIG)
        .file("lab.toml", LAB_CATALOG)
        .args(&["--upstream", &upstream.url()])
        .start();
    for (name, times) in ASKED {
        for _ in 0..*times {
            ask_udp(daemon.addr, &query(name, RecordType::A, false));
        }
    }
    let (status, _) = daemon.terminate();
    assert!(status.success(), "{status:?}: {}", daemon.stderr());
    let log: Vec<String> = std::fs::read_to_string(daemon.dir().join("daemon.log"))
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    let asked: usize = ASKED.iter().map(|(_, n)| n).sum();
    assert_eq!(log.len(), asked, "one line per query:\n{}", log.join("\n"));
    Lab { daemon, log }
}

fn report_json(args: &[&str]) -> Value {
    let mut all = vec!["report", "--format", "json"];
    all.extend_from_slice(args);
    let out = run_winsink(&all);
    assert!(out.status.success(), "{all:?}: {}", stderr(&out));
    serde_json::from_str(&stdout(&out)).expect("report --format json prints JSON")
}

fn area<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["areas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .unwrap_or_else(|| panic!("no area {id} in the report"))
}

fn endpoint<'a>(a: &'a Value, pattern: &str) -> &'a Value {
    a["endpoints"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["pattern"] == pattern)
        .unwrap_or_else(|| panic!("no endpoint {pattern} in {}", a["id"]))
}

/// (queries, blocked, would_block, allowed, clients) of an area or endpoint.
fn figures(v: &Value) -> [u64; 5] {
    ["queries", "blocked", "would_block", "allowed", "clients"].map(|k| {
        v[k].as_u64()
            .unwrap_or_else(|| panic!("{k} missing in {v}"))
    })
}

fn names(e: &Value) -> Vec<(String, u64)> {
    e["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["queries"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// Writes `lines` gzip-compressed.
fn gzip(path: &str, lines: &[String]) {
    let file = std::fs::File::create(path).unwrap();
    let mut gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    for l in lines {
        writeln!(gz, "{l}").unwrap();
    }
    gz.finish().unwrap();
}

#[test]
fn report_json_counts_what_the_test_asked_the_real_daemon() {
    let lab = lab();
    // Rotated as logrotate leaves it: the older half compressed, under the older name;
    // the live file ends with lines of other formats.
    let (old, new) = lab.log.split_at(lab.log.len() / 2);
    gzip(&lab.path("queries.log.1.gz"), old);
    let mut live = new.join("\n");
    live.push_str(
        "\nnot a JSON line\n\
         2026-11-26T01:02:03Z 127.0.0.1 udp A x.example block\n\
         {\"ts\": \"2026-11-26T01:02:03Z\", \"qname\": 5}\n\
         {\"truncated\": \n",
    );
    std::fs::write(lab.path("queries.log"), live).unwrap();
    let config = lab.config_path();
    let (config, live, rotated) = (
        config.to_str().unwrap(),
        lab.path("queries.log"),
        lab.path("queries.log.1.gz"),
    );
    let r = report_json(&["--config", config, "--jobs", "2", &live, &rotated]);

    let asked: u64 = ASKED.iter().map(|(_, n)| *n as u64).sum();
    assert_eq!(r["queries"], asked);
    assert_eq!(r["broken"], 4);
    assert_eq!(r["lines"], asked + 4);
    assert_eq!(r["filtered"], 0);
    // Oldest first, whatever the order given.
    assert_eq!(r["inputs"][0]["name"], rotated);
    assert_eq!(r["inputs"][1]["name"], live);
    assert_eq!(r["inputs"][1]["broken"], 4);
    assert_eq!(
        r["totals"]["decisions"],
        json!({"block": 9, "log": 4, "allow": 0, "pass": 7, "refuse": 0, "invalid": 0})
    );
    // Sinkhole answers (null-ip) and www are NOERROR; the test upstream refuses names
    // outside its zone, and has no missing.example.test.
    assert_eq!(
        r["totals"]["rcodes"],
        json!({"NOERROR": 11, "NXDOMAIN": 1, "REFUSED": 8})
    );

    let diag = area(&r, "diagnostic-data");
    assert_eq!(figures(diag), [5, 5, 0, 0, 1]);
    assert_eq!(diag["action"], "block");
    assert_eq!(diag["configured"], "block");
    let watson = endpoint(diag, "watson.*.microsoft.com");
    assert_eq!(figures(watson), [3, 3, 0, 0, 1]);
    assert_eq!(
        names(watson),
        [("watson.events.data.microsoft.com".into(), 3)]
    );
    assert_eq!(
        figures(endpoint(diag, "self.events.data.microsoft.com")),
        [2, 2, 0, 0, 1]
    );
    // The shared names count for Office and Microsoft Edge too, but their blocks went to
    // the areas that decided.
    assert_eq!(figures(area(&r, "office")), [2, 0, 0, 0, 1]);
    assert_eq!(area(&r, "office")["action"], Value::Null);
    let update = area(&r, "windows-update");
    assert_eq!(figures(update), [2, 2, 0, 0, 1]);
    let cdp = endpoint(update, "*.api.cdp.microsoft.com");
    assert_eq!(names(cdp), [("msedge.api.cdp.microsoft.com".into(), 2)]);
    assert_eq!(figures(area(&r, "microsoft-edge")), [2, 0, 0, 0, 1]);
    let store = area(&r, "microsoft-store");
    assert_eq!(figures(store), [4, 0, 4, 0, 1]);
    assert_eq!(store["action"], "log");
    assert_eq!(
        names(endpoint(store, "*.wns.windows.com")),
        [("x.wns.windows.com".into(), 4)]
    );
    // Decided through the CNAME chain: the name that matched is the chain's.
    let lab_area = area(&r, "lab-telemetry");
    assert_eq!(figures(lab_area), [2, 2, 0, 0, 1]);
    assert_eq!(
        names(endpoint(lab_area, "telemetry.blocked.test")),
        [(zone::CDN_TARGET.into(), 2)]
    );
    // Areas nobody asked for are listed, at zero.
    assert_eq!(figures(area(&r, "maps")), [0, 0, 0, 0, 0]);
    let blocked_by_areas: u64 = r["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["blocked"].as_u64().unwrap())
        .sum();
    assert_eq!(blocked_by_areas, 9, "each blocked query counts once");

    let u = &r["uncatalogued"];
    assert_eq!(u["queries"], 4);
    assert_eq!(u["distinct"], 2);
    let listed: Vec<(String, u64, u64)> = u["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            (
                n["name"].as_str().unwrap().to_owned(),
                n["queries"].as_u64().unwrap(),
                n["clients"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("lab-probe.microsoft.com".into(), 3, 1),
            ("other.lab.msn.com".into(), 1, 1)
        ]
    );
    assert_eq!(r["other_names"], 3);

    let clients = r["clients"].as_array().unwrap();
    assert_eq!(clients.len(), 1);
    assert_eq!(clients[0]["client"], "127.0.0.1");
    assert_eq!(clients[0]["queries"], asked);
    assert_eq!(clients[0]["blocked"], 9);
    let per_area: Vec<(String, u64)> = clients[0]["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["queries"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_area,
        [
            ("diagnostic-data".into(), 5),
            ("microsoft-store".into(), 4),
            ("lab-telemetry".into(), 2),
            ("microsoft-edge".into(), 2),
            ("office".into(), 2),
            ("windows-update".into(), 2),
        ]
    );
    let days = r["days"].as_array().unwrap();
    let per_day: u64 = days.iter().map(|d| d["queries"].as_u64().unwrap()).sum();
    assert_eq!(per_day, asked);

    // The same from stdin, one job, and with a filter that keeps nothing.
    let out = run_winsink_with_stdin(
        &["report", "--format", "json", "--config", config, "-"],
        (lab.log.join("\n") + "\n").as_bytes(),
    );
    let from_stdin: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(from_stdin["areas"], r["areas"]);
    assert_eq!(from_stdin["uncatalogued"], r["uncatalogued"]);
    let none = report_json(&[
        "--config",
        config,
        "--client",
        "10.0.0.0/8",
        &live,
        &rotated,
    ]);
    assert_eq!(none["queries"], 0);
    assert_eq!(none["filtered"], asked);
    let later = report_json(&["--config", config, "--since", "2999-01-01", &live]);
    assert_eq!(later["queries"], 0);
}

#[test]
fn report_markdown_imports_back_as_a_catalog_of_what_the_lab_saw() {
    let lab = lab();
    std::fs::write(lab.path("queries.log"), lab.log.join("\n") + "\n").unwrap();
    let config = lab.config_path();
    let page = lab.path("lab-report.md");
    let out = run_winsink(&[
        "report",
        "--format",
        "markdown",
        "--config",
        config.to_str().unwrap(),
        &lab.path("queries.log"),
        "-o",
        &page,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = std::fs::read_to_string(&page).unwrap();
    assert!(
        text.contains("| Area | Description | Protocol | Destination | Queries |"),
        "{text}"
    );
    assert!(
        text.contains("\n## Seen in this lab, not in the catalog\n"),
        "{text}"
    );

    let catalog = lab.path("lab-report.toml");
    let out = run_winsink(&[
        "catalog",
        "import",
        "--strict",
        "--url",
        "https://lab.example/report",
        &page,
        "-o",
        &catalog,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let imported: Value = serde_json::from_str(&stdout(&run_winsink(&[
        "catalog", "show", "--json", "--policy", &catalog,
    ])))
    .unwrap();
    let areas: Vec<(String, Vec<String>)> = imported["areas"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["id"].as_str().unwrap().to_owned(),
                a["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|e| e["pattern"].as_str().unwrap().to_owned())
                    .collect(),
            )
        })
        .collect();
    let strs = |v: &[&str]| v.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        areas,
        [
            (
                "diagnostic-data".to_owned(),
                strs(&["self.events.data.microsoft.com", "watson.*.microsoft.com"])
            ),
            (
                "microsoft-edge".to_owned(),
                strs(&["msedge.api.cdp.microsoft.com"])
            ),
            ("microsoft-store".to_owned(), strs(&["*.wns.windows.com"])),
            (
                "office".to_owned(),
                strs(&["self.events.data.microsoft.com"])
            ),
            (
                "windows-update".to_owned(),
                strs(&["*.api.cdp.microsoft.com"])
            ),
            (
                "lab-telemetry".to_owned(),
                strs(&["telemetry.blocked.test"])
            ),
            (
                "uncatalogued-microsoft-names".to_owned(),
                strs(&["lab-probe.microsoft.com", "other.lab.msn.com"])
            ),
        ]
    );
    // Descriptions and protocols come back as the catalog has them.
    let shipped: Value =
        serde_json::from_str(&stdout(&run_winsink(&["catalog", "show", "--json"]))).unwrap();
    let ep = |c: &Value, area: &str, pattern: &str| -> Value {
        c["areas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == area)
            .and_then(|a| {
                a["endpoints"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|e| e["pattern"] == pattern)
                    .cloned()
            })
            .unwrap_or_else(|| panic!("no {pattern} in {area}"))
    };
    for (area, pattern) in [
        ("diagnostic-data", "watson.*.microsoft.com"),
        ("microsoft-store", "*.wns.windows.com"),
        ("windows-update", "*.api.cdp.microsoft.com"),
    ] {
        let (a, b) = (ep(&imported, area, pattern), ep(&shipped, area, pattern));
        assert_eq!(a["description"], b["description"], "{area} {pattern}");
        assert_eq!(a["protocols"], b["protocols"], "{area} {pattern}");
    }

    // Loaded beside Microsoft's catalog, the lab's names get an area to toggle.
    let beside = lab.path("beside.toml");
    std::fs::write(
        &beside,
        format!(
            "catalogs = [\"builtin:windows11-enterprise\", {catalog:?}]\n\
             [areas]\nuncatalogued-microsoft-names = \"block\"\n"
        ),
    )
    .unwrap();
    let out = run_winsink(&[
        "explain",
        "--json",
        "--config",
        &beside,
        "lab-probe.microsoft.com",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(v["decision"], "block", "{v}");
}

/// Chromium's path, or `None` when it is not installed and `WINSINK_REQUIRE_CHROMIUM`
/// is not set (CI sets it, so there a missing Chromium fails the test).
fn chromium() -> Option<PathBuf> {
    for p in ["/usr/bin/chromium", "/usr/bin/chromium-browser"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        std::env::var_os("WINSINK_REQUIRE_CHROMIUM").is_none(),
        "WINSINK_REQUIRE_CHROMIUM is set but Chromium is not installed"
    );
    eprintln!("skipped: Chromium is not installed (apt-get install chromium)");
    None
}

/// Runs headless Chromium on `page` with `args`; its stdout and stderr.
fn headless(chromium: &Path, page: &str, args: &[&str]) -> (String, String) {
    let profile = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--no-first-run",
            "--enable-logging=stderr",
            "--v=0",
            "--window-size=1280,2400",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(args)
        .arg(format!("file://{page}"))
        .output()
        .expect("run chromium");
    assert!(out.status.success(), "chromium: {}", stderr(&out));
    (stdout(&out), stderr(&out))
}

#[test]
fn report_html_is_one_file_that_headless_chromium_renders_without_errors() {
    let lab = lab();
    std::fs::write(lab.path("queries.log"), lab.log.join("\n") + "\n").unwrap();
    let page = lab.path("report.html");
    let config = lab.config_path();
    let out = run_winsink(&[
        "report",
        "--format",
        "html",
        "--config",
        config.to_str().unwrap(),
        &lab.path("queries.log"),
        "-o",
        &page,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let html = std::fs::read_to_string(&page).unwrap();
    // Self-contained: nothing to fetch, no script.
    for needle in ["<script", "<link", "src=", "url(", "@import"] {
        assert!(!html.contains(needle), "{needle} in the HTML");
    }
    let Some(chromium) = chromium() else {
        return;
    };
    let (dom, log) = headless(&chromium, &page, &["--dump-dom"]);
    for needle in [
        "<h1>winsink lab report</h1>",
        "aria-label=\"Queries per area\"",
        "aria-label=\"Queries per day\"",
        "<code>lab-probe.microsoft.com</code>",
        "Diagnostic Data",
    ] {
        assert!(
            dom.contains(needle),
            "{needle} not in the rendered page:\n{dom}"
        );
    }
    // One bar segment per non-zero figure of each area with queries, one per decision
    // of each day.
    assert!(dom.matches("<rect").count() >= 7, "{dom}");
    for bad in [
        "CONSOLE",
        "Uncaught",
        "Failed to load resource",
        "net::ERR_",
    ] {
        assert!(!log.contains(bad), "{bad} in Chromium's log:\n{log}");
    }
    // In target/ (CARGO_TARGET_TMPDIR is target/tmp), wherever the target folder is.
    let shot = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("report-html.png");
    let _ = std::fs::remove_file(&shot);
    let (_, log) = headless(
        &chromium,
        &page,
        &[&format!("--screenshot={}", shot.display())],
    );
    let png = std::fs::read(&shot).unwrap_or_else(|e| panic!("no screenshot ({e}): {log}"));
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 10_000,
        "{} bytes",
        png.len()
    );
}

#[test]
fn report_jobs_cut_one_big_file_into_pieces_and_report_what_one_job_reports() {
    let lab = lab();
    let config = lab.config_path();
    // A log of 3.5 MB: more than three of the 1 MiB pieces `--jobs 3` cuts a file into
    // at the least. Each block varies the client and names an area of its own (first seen
    // in each piece, so their order shows the merge order); a few broken lines, CRLF and
    // blank lines fall in the later pieces.
    let mut text = String::new();
    let mut broken_at = Vec::new();
    let mut number = 0u64;
    let mut push = |text: &mut String, line: &str, end: &str| {
        text.push_str(line);
        text.push_str(end);
        number += 1;
        number
    };
    let mut block = 0;
    while text.len() < 3_500_000 {
        let client = format!("\"client\":\"10.0.{}.{}\"", block % 5, block % 7);
        for (i, l) in lab.log.iter().enumerate() {
            let l = l.replace("\"client\":\"127.0.0.1\"", &client);
            push(&mut text, &l, if i % 3 == 0 { "\r\n" } else { "\n" });
        }
        push(
            &mut text,
            &format!(
                r#"{{"ts":"2026-11-26T01:02:03Z","client":"10.9.9.9","qname":"x.test","decision":"log","areas":["Area Z{}"],"patterns":["x.test"],"rcode":"NOERROR"}}"#,
                block % 11
            ),
            "\n",
        );
        if block % 97 == 50 {
            push(&mut text, "", "\n");
        }
        if block > 100 && block % 25 == 0 {
            broken_at.push(push(&mut text, "not a JSON line", "\n"));
        }
        block += 1;
    }
    let log = lab.path("big.log");
    std::fs::write(&log, &text).unwrap();
    assert!(text.len() as u64 > 3 << 20);
    let run =
        |jobs: &str| report_json(&["--config", config.to_str().unwrap(), "--jobs", jobs, &log]);
    let one = run("1");
    for jobs in ["2", "3"] {
        let (a, b) = (one.to_string(), run(jobs).to_string());
        // Where they part, not the whole report.
        let at = a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count();
        assert!(
            a == b,
            "--jobs {jobs} reports otherwise than --jobs 1 from byte {at}: {:?} / {:?}",
            a.get(at.saturating_sub(100)..(at + 100).min(a.len())),
            b.get(at.saturating_sub(100)..(at + 100).min(b.len())),
        );
    }

    // The quoted broken lines carry their line numbers in the file.
    let quoted: Vec<u64> = one["broken_examples"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["line"].as_u64().unwrap())
        .collect();
    assert!(broken_at.len() >= 5, "{broken_at:?}");
    assert_eq!(quoted, broken_at[..5]);
    assert_eq!(one["broken"], broken_at.len());
    let extra: Vec<&str> = one["areas"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["in_catalog"] == false)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    let first_seen: Vec<String> = (0..11).map(|k| format!("Area Z{k}")).collect();
    assert_eq!(
        extra, first_seen,
        "areas only the log names, in first-seen order"
    );
}
