//! What the query log says, on the real binary with the shipped config: what decided each
//! query, every area it belongs to, what a block breaks — and the README's `jq` recipes,
//! each run (real `jq`) on a log the daemon wrote, with the numbers checked.

use std::collections::BTreeMap;
use std::io::{BufRead as _, BufReader};
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::RecordType;
use serde_json::{json, Value};

use crate::support::dns::{query, zone, Daemon, TestUpstream, WAIT};
use crate::support::{repo_root, run_winsink, stderr, stdout};

/// `config/winsink.toml` as shipped (it names the built-in catalog, so the daemon runs
/// it from a scratch folder), with `extra_log` appended to its `[log]` table (the last
/// table of the file).
fn shipped_config(extra_log: &str) -> String {
    let text = std::fs::read_to_string(repo_root().join("config/winsink.toml")).unwrap();
    assert!(text.contains("catalogs = [\"builtin:windows11-enterprise\"]"));
    assert!(text.trim_end().ends_with("queue = 65536"), "[log] is last");
    format!("{text}\n{extra_log}\n")
}

/// Asks `name` (A) from source address `from`, and waits for the answer.
fn ask_from(from: IpAddr, server: SocketAddr, name: &str) -> Message {
    let sock = UdpSocket::bind((from, 0)).expect("bind");
    sock.set_read_timeout(Some(WAIT)).unwrap();
    let q = query(name, RecordType::A, true);
    sock.send_to(&q.to_vec().unwrap(), server).unwrap();
    let mut buf = vec![0u8; 65_535];
    let (len, _) = sock.recv_from(&mut buf).expect("no answer in time");
    Message::from_vec(&buf[..len]).expect("answer parses")
}

fn localhost() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// `winsink explain --json NAME` with `config`.
fn explain(config: &Path, name: &str) -> Value {
    let out = run_winsink(&[
        "explain",
        "--json",
        name,
        "--config",
        config.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_str(&stdout(&out)).unwrap()
}

#[test]
fn self_events_is_decided_by_diagnostic_data_and_belongs_to_office_too() {
    let upstream = TestUpstream::start();
    let config = shipped_config("");
    let daemon = Daemon::start(&config, &["--upstream", &upstream.url()]);
    ask_from(localhost(), daemon.addr, "self.events.data.microsoft.com");
    let line = daemon.log_line();
    assert_eq!(line["decision"], "block", "{line}");
    assert_eq!(line["decided_by"]["kind"], "area", "{line}");
    assert_eq!(line["decided_by"]["id"], "diagnostic-data", "{line}");
    assert_eq!(line["decided_by"]["name"], "Diagnostic Data", "{line}");
    assert_eq!(
        line["areas"],
        json!([{"id": "diagnostic-data", "name": "Diagnostic Data"},
               {"id": "office", "name": "Office"}]),
        "{line}"
    );
    assert_eq!(line["impact"].as_array().unwrap().len(), 2, "{line}");
    assert_eq!(line["impact_scope"], "endpoint", "{line}");
    // The shipped config acknowledges that Office shares the name: no warning at start.
    assert!(
        !daemon.stderr().contains("block wins"),
        "{}",
        daemon.stderr()
    );

    // `winsink explain --json` says the same under the same names.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winsink.toml");
    std::fs::write(&path, &config).unwrap();
    for name in [
        "self.events.data.microsoft.com",
        "www.microsoft.com",
        "www.bing.com",
    ] {
        ask_from(localhost(), daemon.addr, name);
        let line = daemon.log_line();
        assert_eq!(line["qname"], name);
        let e = explain(&path, name);
        for key in [
            "decision",
            "decided_by",
            "areas",
            "patterns",
            "impact",
            "impact_scope",
        ] {
            assert_eq!(line[key], e[key], "{name}: {key}");
        }
    }
}

#[test]
fn every_catalog_endpoint_asked_once_has_an_impact() {
    let upstream = TestUpstream::start();
    let daemon = Daemon::start(&shipped_config(""), &["--upstream", &upstream.url()]);
    let catalog = winsink_catalog::windows11_enterprise();
    // A concrete name for each pattern: `*` (any run of characters) becomes `x`.
    let names: Vec<String> = catalog
        .patterns()
        .iter()
        .map(|p| p.replace('*', "x"))
        .collect();
    assert!(names.len() > 100);
    let undescribed: Vec<&str> = catalog
        .areas
        .iter()
        .flat_map(|a| &a.endpoints)
        .filter(|e| e.description.is_empty())
        .map(|e| e.pattern.as_str())
        .collect();
    let mut area_scoped = Vec::new();
    for name in &names {
        ask_from(localhost(), daemon.addr, name);
        let line = daemon.log_line();
        assert_eq!(&line["qname"], name, "{line}");
        assert!(!line["areas"].as_array().unwrap().is_empty(), "{line}");
        let impact = line["impact"].as_array().unwrap();
        assert!(
            !impact.is_empty() && impact.iter().all(|i| !i.as_str().unwrap().is_empty()),
            "{name}: {line}"
        );
        assert!(line["impact_scope"].is_string(), "{line}");
        if line["impact_scope"] == "area" {
            area_scoped.push(name.clone());
        }
    }
    // The endpoints the page leaves undescribed, and only they, carry an area summary.
    let mut undescribed: Vec<String> = undescribed.iter().map(|p| p.replace('*', "x")).collect();
    undescribed.sort();
    area_scoped.sort();
    assert_eq!(area_scoped, undescribed);
    assert!(area_scoped.contains(&"www.microsoft.com".to_owned()));
}

/// The README's recipes: (title, script) from the "The query log" section.
fn readme_recipes() -> Vec<(String, String)> {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("\n## The query log").expect("section");
    let end = readme[start + 1..]
        .find("\n## ")
        .map_or(readme.len(), |e| start + 1 + e);
    let section = &readme[start..end];
    let mut recipes = Vec::new();
    let mut paragraph = String::new();
    let mut lines = section.lines();
    while let Some(line) = lines.next() {
        if line.starts_with("```sh") {
            let script: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            recipes.push((paragraph.trim().to_owned(), script.join("\n")));
            paragraph.clear();
        } else if line.trim().is_empty() {
            if !paragraph.ends_with(':') {
                paragraph.clear();
            }
        } else {
            if !paragraph.is_empty() {
                paragraph.push(' ');
            }
            paragraph.push_str(line.trim());
        }
    }
    recipes
}

/// `uniq -c` output as (count, rest of line), in any order.
fn counts(out: &str) -> BTreeMap<String, u64> {
    out.lines()
        .map(|l| {
            let l = l.trim_start();
            let (n, rest) = l.split_once(' ').unwrap_or((l, ""));
            (
                rest.to_owned(),
                n.parse().unwrap_or_else(|_| panic!("{l:?}")),
            )
        })
        .collect()
}

fn map(pairs: &[(&str, u64)]) -> BTreeMap<String, u64> {
    pairs.iter().map(|&(k, v)| (k.to_owned(), v)).collect()
}

/// Runs a recipe in `dir` (where `queries.log` is) with `sh`; returns its stdout.
fn run_recipe(dir: &Path, script: &str) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(script)
        .current_dir(dir)
        .output()
        .expect("sh runs");
    assert!(
        out.status.success(),
        "{script}\nstderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs a recipe that follows the log from now on (`tail -n 0 -F`): asks a blocked
/// probe name until the recipe prints it (so the recipe is surely following), then asks
/// each of `names` from `from`; returns the first `expect` lines the recipe printed for
/// them.
fn run_following(
    dir: &Path,
    script: &str,
    server: SocketAddr,
    from: IpAddr,
    names: &[&str],
    expect: usize,
) -> Vec<Value> {
    const PROBE: &str = "watson.probe.microsoft.com";
    let mut child = Command::new("setsid")
        .args(["sh", "-c", script])
        .current_dir(dir)
        .stdout(Stdio::piped())
        .spawn()
        .expect("sh runs");
    let pid = child.id();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let parse = |l: String| -> Value { serde_json::from_str(&l).unwrap() };
    let deadline = Instant::now() + WAIT;
    let mut following = false;
    while !following && Instant::now() < deadline {
        ask_from(localhost(), server, PROBE);
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(300)) {
            following = parse(l)["qname"] == PROBE;
        }
    }
    for name in names {
        ask_from(from, server, name);
    }
    let mut lines = Vec::new();
    while lines.len() < expect {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => {
                let v = parse(l);
                if v["qname"] != PROBE {
                    lines.push(v);
                }
            }
            Err(_) => break,
        }
    }
    // setsid made the shell a process group leader: stop the whole pipeline.
    let _ = Command::new("kill")
        .args(["-TERM", "--", &format!("-{pid}")])
        .status();
    let _ = child.wait();
    assert!(following, "{script}: never printed the probe");
    lines
}

#[test]
fn every_readme_recipe_computes_what_its_title_says() {
    let jq = Command::new("jq").arg("--version").output();
    assert!(
        jq.is_ok_and(|o| o.status.success()),
        "the README's recipes need jq: apt-get install jq (.ci/run installs it)"
    );
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("queries.log");
    let daemon = Daemon::start(
        &shipped_config(&format!("file = {:?}", log.display().to_string())),
        &["--upstream", &upstream.url()],
    );
    let other: IpAddr = "127.0.0.2".parse().unwrap();
    let sent: &[(IpAddr, &str, usize)] = &[
        // Blocked by Diagnostic Data; Office uses the name too.
        (localhost(), "self.events.data.microsoft.com", 3),
        (other, "self.events.data.microsoft.com", 1),
        // Blocked by Diagnostic Data; the page describes none for it.
        (localhost(), "functional.events.data.microsoft.com", 1),
        // Logged (audit) by Office, Cortana and Live Tiles, Microsoft Edge.
        (localhost(), "www.office.com", 2),
        (localhost(), "www.bing.com", 1),
        (other, "edge.microsoft.com", 1),
        // Allowed by the shipped rule (still a Diagnostic Data endpoint).
        (localhost(), "www.microsoft.com", 1),
        // Uncatalogued.
        (localhost(), zone::WWW, 2),
        (localhost(), zone::MISSING, 1),
    ];
    let total: usize = sent.iter().map(|s| s.2).sum();
    for &(from, name, times) in sent {
        for _ in 0..times {
            ask_from(from, daemon.addr, name);
        }
    }
    // The writer flushes every 100 ms.
    let deadline = Instant::now() + WAIT;
    let text = loop {
        let text = std::fs::read_to_string(&log).unwrap_or_default();
        if text.lines().count() >= total || Instant::now() > deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(text.lines().count(), total, "{text}\n{}", daemon.stderr());

    let catalog = winsink_catalog::windows11_enterprise();
    let impact = |area: &str, pattern: &str| -> String {
        let a = catalog.area(area).unwrap();
        let e = a.endpoints.iter().find(|e| e.pattern == pattern).unwrap();
        if e.description.is_empty() {
            a.impact.clone()
        } else {
            e.description.clone()
        }
    };

    let recipes = readme_recipes();
    let mut checked = Vec::new();
    let mut follow = None;
    for (title, script) in &recipes {
        assert!(script.contains("queries.log"), "{title}: {script}");
        let check = |got: BTreeMap<String, u64>, want: BTreeMap<String, u64>| {
            assert_eq!(got, want, "{title}\n{script}");
        };
        if title.starts_with("Follow the blocked queries live") {
            // It adds lines to the log: run it after the others.
            follow = Some(script.clone());
        } else if title.starts_with("Blocked queries by the area that blocked them") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[("Diagnostic Data", 5)]),
            );
        } else if title.starts_with("Blocked queries by every area") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[("Diagnostic Data", 5), ("Office", 4)]),
            );
        } else if title.starts_with("Queries a block would stop") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[
                    ("Office", 2),
                    ("Cortana and Live Tiles", 1),
                    ("Microsoft Edge", 1),
                ]),
            );
        } else if title.starts_with("What blocking the logged queries would break") {
            let office = impact("office", "www.office.com");
            let cortana = impact("cortana-and-live-tiles", "www.bing.com");
            let edge = impact("microsoft-edge", "edge.microsoft.com");
            assert!(!edge.is_empty());
            // `uniq -c` counts lines: a multi-paragraph impact would be split, so the
            // expected impacts here are one paragraph each.
            assert!(![&office, &cortana, &edge].iter().any(|i| i.contains('\n')));
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[(&office, 2), (&cortana, 1), (&edge, 1)]),
            );
        } else if title.starts_with("Top uncatalogued names") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[(zone::WWW, 2), (zone::MISSING, 1)]),
            );
        } else if title.starts_with("Which clients ask for a blocked area the most") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[
                    ("127.0.0.1 Diagnostic Data", 4),
                    ("127.0.0.2 Diagnostic Data", 1),
                ]),
            );
        } else if title.starts_with("Names the page describes no impact for") {
            check(
                counts(&run_recipe(dir.path(), script)),
                map(&[
                    ("functional.events.data.microsoft.com", 1),
                    ("edge.microsoft.com", 1),
                    ("www.microsoft.com", 1),
                ]),
            );
        } else {
            panic!("README recipe without a test: {title:?}\n{script}");
        }
        checked.push(title.clone());
    }
    assert_eq!(checked.len(), 8, "{checked:#?}");

    // Blocked names asked from now on show up, with what blocked them; the rest do not.
    let script = follow.expect("the follow-live recipe");
    let lines = run_following(
        dir.path(),
        &script,
        daemon.addr,
        other,
        &[
            zone::WWW,
            "www.office.com",
            "self.events.data.microsoft.com",
            "functional.events.data.microsoft.com",
        ],
        2,
    );
    let got: Vec<(&str, &str, &str)> = lines
        .iter()
        .map(|v| {
            (
                v["client"].as_str().unwrap(),
                v["qname"].as_str().unwrap(),
                v["decided_by"]["id"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            (
                "127.0.0.2",
                "self.events.data.microsoft.com",
                "diagnostic-data"
            ),
            (
                "127.0.0.2",
                "functional.events.data.microsoft.com",
                "diagnostic-data"
            ),
        ]
    );
    let keys: Vec<&String> = lines[0].as_object().unwrap().keys().collect();
    assert_eq!(keys, ["client", "decided_by", "qname", "ts"]);
}

#[test]
fn the_readme_example_line_has_the_fields_of_a_real_line() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    let start = readme.find("\n## The query log").unwrap();
    let example = readme[start..]
        .split("```json\n")
        .nth(1)
        .and_then(|s| s.split('\n').next())
        .unwrap();
    let example: Value = serde_json::from_str(example).unwrap();
    let upstream = TestUpstream::start();
    let daemon = Daemon::start(&shipped_config(""), &["--upstream", &upstream.url()]);
    ask_from(localhost(), daemon.addr, "self.events.data.microsoft.com");
    let line = daemon.log_line();
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    assert_eq!(keys(&example), keys(&line));
    for key in [
        "decision",
        "decided_by",
        "areas",
        "patterns",
        "impact_scope",
    ] {
        assert_eq!(example[key], line[key], "{key}");
    }
}
