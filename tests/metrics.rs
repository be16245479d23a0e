//! `/metrics`, `/healthz`, `/readyz` and the JSON API of the real binary: counters move by
//! exactly the queries sent, readiness follows the upstream, the token is enforced.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use serde_json::Value;

use crate::support::dns::{ask_udp, query, udp_exchange_raw, zone, Daemon, TestUpstream, WAIT};
use crate::support::http::{get, sample, Response};
use crate::support::{run_winsink, stderr};

fn config(extra: &str) -> String {
    format!(
        r#"
[areas]
diagnostic-data = "block"
microsoft-store = "log"
windows-update = "allow"

[[rules]]
pattern = "*.ads.test"
action = "block"

[server]
allow_clients = ["127.0.0.1/32"]
upstream_timeout_ms = 400

{extra}
"#
    )
}

fn start(upstream: &TestUpstream, extra: &str) -> Daemon {
    Daemon::start(&config(extra), &["--upstream", &upstream.url()])
}

fn metrics(d: &Daemon) -> String {
    let r = get(d.http(), "/metrics", &[]);
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(
        r.header("content-type")
            .is_some_and(|c| c.starts_with("text/plain; version=0.0.4")),
        "{:?}",
        r.headers
    );
    r.body
}

/// Sends `n` A queries for `name` from `from` and checks each got `rcode`.
fn send(d: &Daemon, from: &UdpSocket, name: &str, n: usize, rcode: ResponseCode) {
    for _ in 0..n {
        let q = query(name, RecordType::A, true);
        from.send_to(&q.to_vec().unwrap(), d.addr).unwrap();
        let mut buf = [0u8; 4096];
        let (len, _) = from.recv_from(&mut buf).expect("an answer");
        let a = hickory_proto::op::Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(a.metadata.response_code, rcode, "{name}");
    }
}

fn client(ip: &str) -> UdpSocket {
    let s = UdpSocket::bind(format!("{ip}:0")).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s
}

/// The summary, which has seen every query answered so far: the API catches up with
/// the recent-queries ring before it answers, so there is nothing to wait for (the
/// statistics task alone reads the ring only when half of it is new, or once a second).
fn summary_seen(d: &Daemon, n: u64) -> Value {
    let s = get(d.http(), "/api/v1/summary", &[]).json();
    assert_eq!(s["statistics"]["seen"], n, "{s}");
    s
}

#[test]
fn counters_move_by_exactly_the_queries_sent_per_decision_and_area() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let before = metrics(&d);
    let lo = client("127.0.0.1");
    send(
        &d,
        &lo,
        "watson.events.data.microsoft.com",
        3,
        ResponseCode::NoError,
    );
    // Outside the test upstream's zone: it answers REFUSED (passed on).
    send(&d, &lo, "x.wns.windows.com", 1, ResponseCode::Refused);
    send(&d, &lo, "x.ads.test", 4, ResponseCode::NoError);
    send(&d, &lo, zone::WWW, 5, ResponseCode::NoError);
    // Outside allow_clients (any 127/8 address is loopback on Linux).
    send(
        &d,
        &client("127.0.0.3"),
        zone::WWW,
        2,
        ResponseCode::Refused,
    );
    // No question: FORMERR.
    let formerr = udp_exchange_raw(d.addr, &[0x12, 0x34, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert_eq!(formerr[3] & 0xf, 1, "FORMERR");
    let after = metrics(&d);

    let moved = |labels: &str| {
        sample(&after, "winsink_queries_total", labels)
            - sample(&before, "winsink_queries_total", labels)
    };
    assert_eq!(moved(r#"decision="block",area="diagnostic-data""#), 3.0);
    assert_eq!(moved(r#"decision="log",area="microsoft-store""#), 1.0);
    assert_eq!(moved(r#"decision="block",area="rule""#), 4.0);
    assert_eq!(moved(r#"decision="pass",area="none""#), 5.0);
    assert_eq!(moved(r#"decision="refuse",area="none""#), 2.0);
    assert_eq!(moved(r#"decision="invalid",area="none""#), 1.0);
    let total: f64 = after
        .lines()
        .filter(|l| l.starts_with("winsink_queries_total{"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    assert_eq!(
        total, 16.0,
        "no query is counted twice or under another label:\n{after}"
    );
    assert_eq!(
        sample(&after, "winsink_responses_total", r#"rcode="REFUSED""#),
        3.0
    );
    assert_eq!(
        sample(&after, "winsink_responses_total", r#"rcode="FORMERR""#),
        1.0
    );
    assert_eq!(
        sample(&after, "winsink_responses_total", r#"rcode="NOERROR""#),
        12.0
    );
    // www: one miss, then four hits; x.wns: one miss.
    assert_eq!(sample(&after, "winsink_cache_misses_total", ""), 2.0);
    assert_eq!(sample(&after, "winsink_cache_hits_total", ""), 4.0);
    assert_eq!(
        sample(
            &after,
            "winsink_query_duration_seconds_count",
            r#"path="sinkhole""#
        ),
        7.0
    );
    assert_eq!(
        sample(
            &after,
            "winsink_query_duration_seconds_count",
            r#"path="refused""#
        ),
        3.0
    );
    // www's miss got an answer; x.wns's REFUSED is an `error` (it marks the upstream down).
    for (outcome, n) in [("ok", 1.0), ("error", 1.0)] {
        let up_label = format!(r#"upstream="{}",outcome="{outcome}""#, up.url());
        assert_eq!(
            sample(&after, "winsink_upstream_queries_total", &up_label),
            n,
            "{outcome}"
        );
    }
    assert_eq!(
        sample(
            &after,
            "winsink_area_action",
            r#"area="diagnostic-data",action="block""#
        ),
        1.0
    );
    assert_eq!(
        sample(
            &after,
            "winsink_area_action",
            r#"area="diagnostic-data",action="log""#
        ),
        0.0
    );
    assert!(after.contains(&format!(
        "winsink_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));

    // The JSON summary tells the same numbers, per area.
    let s = summary_seen(&d, 16);
    assert_eq!(s["queries"], 16);
    assert_eq!(s["decisions"]["block"], 7);
    let area = |id: &str| -> Value {
        s["areas"]
            .as_array()
            .unwrap()
            .iter()
            .find(|a| a["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no area {id} in {s}"))
    };
    let dd = area("diagnostic-data");
    assert_eq!(
        (
            &dd["action"],
            &dd["queries"],
            &dd["blocked"],
            &dd["clients"]
        ),
        (
            &Value::from("block"),
            &Value::from(3),
            &Value::from(3),
            &Value::from(1)
        )
    );
    assert!(
        dd["last_seen"].as_str().is_some_and(|t| t.ends_with('Z')),
        "{dd}"
    );
    let store = area("microsoft-store");
    assert_eq!(
        (&store["would_block"], &store["blocked"]),
        (&Value::from(1), &Value::from(0))
    );
    assert_eq!(area("windows-update")["queries"], 0);
    assert_eq!(area("windows-update")["action"], "allow");
}

#[test]
fn recent_queries_come_newest_first_with_the_log_lines_fields_and_filters() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let lo = client("127.0.0.1");
    send(
        &d,
        &lo,
        "watson.events.data.microsoft.com",
        1,
        ResponseCode::NoError,
    );
    send(&d, &lo, zone::WWW, 1, ResponseCode::NoError);
    send(&d, &lo, "x.ads.test", 1, ResponseCode::NoError);
    let log: Vec<Value> = (0..3).map(|_| d.log_line()).collect();

    let r = get(d.http(), "/api/v1/queries", &[]).json();
    let q = r["queries"].as_array().unwrap();
    let names: Vec<&str> = q.iter().map(|e| e["qname"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["x.ads.test", zone::WWW, "watson.events.data.microsoft.com"]
    );
    // Every field of the log line, with the same values (but the clock readings).
    for (entry, line) in q.iter().rev().zip(&log) {
        for (k, v) in line.as_object().unwrap() {
            if k != "duration_us" {
                assert_eq!(&entry[k], v, "{k}: {entry} vs {line}");
            }
        }
    }
    assert_eq!(q[2]["area"], "diagnostic-data");
    assert_eq!(q[0]["area"], "rule");
    assert_eq!(q[1]["upstream"], up.url());

    let only = |query: &str| -> Vec<String> {
        get(d.http(), &format!("/api/v1/queries?{query}"), &[]).json()["queries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["qname"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(only("decision=block&limit=1"), ["x.ads.test"]);
    assert_eq!(
        only("area=diagnostic-data"),
        ["watson.events.data.microsoft.com"]
    );
    assert_eq!(only("area=rule"), ["x.ads.test"]);
    assert_eq!(only("client=127.0.0.9").len(), 0);
    assert_eq!(only("since=2999-01-01T00:00:00Z").len(), 0);
    assert_eq!(
        only(&format!("since={}", q[1]["ts"].as_str().unwrap())).len(),
        2
    );
    let bad = get(d.http(), "/api/v1/queries?decision=maybe", &[]);
    assert_eq!(bad.status, 400);
    assert!(bad.json()["error"].as_str().unwrap().contains("decision"));
}

#[test]
fn top_explain_and_uncatalogued_answer_from_what_was_asked() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let lo = client("127.0.0.1");
    send(
        &d,
        &lo,
        "watson.events.data.microsoft.com",
        4,
        ResponseCode::NoError,
    );
    send(&d, &lo, "x.ads.test", 2, ResponseCode::NoError);
    // Microsoft's, but in no catalog area (the test upstream refuses it).
    send(
        &d,
        &lo,
        "uncatalogued-probe.microsoft.com",
        3,
        ResponseCode::Refused,
    );
    summary_seen(&d, 9);

    let top = get(d.http(), "/api/v1/top?by=name&limit=2", &[]).json();
    assert_eq!(
        top["top"][0]["name"], "watson.events.data.microsoft.com",
        "{top}"
    );
    assert_eq!(
        (&top["top"][0]["count"], &top["top"][0]["error"]),
        (&Value::from(4), &Value::from(0))
    );
    assert_eq!(top["top"][1]["name"], "uncatalogued-probe.microsoft.com");
    assert_eq!(top["top"].as_array().unwrap().len(), 2);
    let blocked = get(
        d.http(),
        "/api/v1/top?by=name&decision=block&area=rule",
        &[],
    )
    .json();
    assert_eq!(blocked["top"].as_array().unwrap().len(), 1, "{blocked}");
    assert_eq!(blocked["top"][0]["name"], "x.ads.test");
    let clients = get(d.http(), "/api/v1/top?by=client", &[]).json();
    assert_eq!(clients["top"][0]["client"], "127.0.0.1");
    assert_eq!(clients["top"][0]["count"], 9);

    let u = get(d.http(), "/api/v1/uncatalogued", &[]).json();
    let names: Vec<&str> = u["names"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["uncatalogued-probe.microsoft.com"], "{u}");
    assert_eq!(u["names"][0]["count"], 3);

    let e = get(
        d.http(),
        "/api/v1/explain?name=self.events.data.microsoft.com&client=10.0.0.5",
        &[],
    );
    assert_eq!(e.status, 200);
    let cli = run_winsink(&[
        "explain",
        "self.events.data.microsoft.com",
        "--client",
        "10.0.0.5",
        "--json",
        "--config",
        d.config_path().to_str().unwrap(),
    ]);
    let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(
        e.json(),
        cli,
        "the API explains as `winsink explain --json` does"
    );
    assert_eq!(get(d.http(), "/api/v1/explain?name=a..b", &[]).status, 400);
}

#[test]
fn readyz_flips_to_503_with_a_dead_upstream_and_back() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    assert_eq!(get(d.http(), "/healthz", &[]).status, 200);
    let lo = client("127.0.0.1");
    send(&d, &lo, zone::WWW, 1, ResponseCode::NoError);
    let ready = get(d.http(), "/readyz", &[]);
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(ready.json()["ready"], true);

    up.set_silent(true);
    send(&d, &lo, zone::MISSING, 1, ResponseCode::ServFail);
    let r = wait_status(d.http(), 503);
    let body = r.json();
    assert_eq!(body["ready"], false);
    assert!(
        body["reasons"][0].as_str().unwrap().contains("upstream"),
        "{body}"
    );
    assert_eq!(
        get(d.http(), "/healthz", &[]).status,
        200,
        "alive all the same"
    );

    up.set_silent(false);
    send(&d, &lo, zone::ALIAS, 1, ResponseCode::NoError);
    let r = wait_status(d.http(), 200);
    assert_eq!(r.json()["ready"], true);
}

#[test]
fn an_upstream_s_refused_counts_as_an_error_as_its_health_marks_it_down() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let lo = client("127.0.0.1");
    let outcome = |text: &str, outcome: &str| {
        let labels = format!(r#"upstream="{}",outcome="{outcome}""#, up.url());
        sample(text, "winsink_upstream_queries_total", &labels)
    };
    let up_gauge = |text: &str| {
        sample(
            text,
            "winsink_upstream_up",
            &format!(r#"upstream="{}""#, up.url()),
        )
    };
    send(&d, &lo, zone::WWW, 1, ResponseCode::NoError);
    let before = metrics(&d);
    assert_eq!(up_gauge(&before), 1.0, "{before}");

    // Outside the test upstream's zone: it answers REFUSED, which winsink passes on.
    send(&d, &lo, "x.wns.windows.com", 1, ResponseCode::Refused);
    let after = metrics(&d);
    assert_eq!(up_gauge(&after), 0.0, "the health marks it down:\n{after}");
    assert_eq!(
        outcome(&after, "error") - outcome(&before, "error"),
        1.0,
        "REFUSED is counted as an error:\n{after}"
    );
    for other in ["ok", "servfail", "timeout", "truncated"] {
        assert_eq!(
            outcome(&after, other),
            outcome(&before, other),
            "{other} did not move:\n{after}"
        );
    }
}

/// `/readyz` until it answers `status` (the health probe may get there first).
fn wait_status(addr: SocketAddr, status: u16) -> Response {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = get(addr, "/readyz", &[]);
        if r.status == status || Instant::now() > deadline {
            assert_eq!(r.status, status, "{}", r.body);
            return r;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_token_file_makes_every_request_but_the_probes_need_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "s3cret-token\n").unwrap();
    let up = TestUpstream::start();
    let d = start(
        &up,
        &format!("[http]\ntoken_file = {:?}", token.to_str().unwrap()),
    );
    for path in ["/metrics", "/api/v1/summary", "/api/v1/queries"] {
        let r = get(d.http(), path, &[]);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(
            r.header("www-authenticate"),
            Some("Bearer realm=\"winsink\"")
        );
        let wrong = get(d.http(), path, &["Authorization: Bearer s3cret-tokeN"]);
        assert_eq!(wrong.status, 401, "{path}");
        let ok = get(d.http(), path, &["Authorization: Bearer s3cret-token"]);
        assert_eq!(ok.status, 200, "{path}: {}", ok.body);
    }
    assert_eq!(get(d.http(), "/healthz", &[]).status, 200);
    assert_ne!(get(d.http(), "/readyz", &[]).status, 401);
}

#[test]
fn a_listener_beyond_loopback_without_a_token_file_does_not_start() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winsink.toml");
    std::fs::write(&path, config("[http]\nlisten = [\"0.0.0.0:8053\"]")).unwrap();
    let out = run_winsink(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("winsink.toml:")
            && err.contains("[http] `listen` = 0.0.0.0:8053 is not a loopback address")
            && err.contains("token_file"),
        "{err}"
    );
    // The same rule for --http.
    std::fs::write(&path, config("")).unwrap();
    let out = run_winsink(&[
        "run",
        "--config",
        path.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
        "--upstream",
        "udp://127.0.0.1:9",
        "--http",
        "0.0.0.0:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("--http: [http] listen: 0.0.0.0:0 is not a loopback address"),
        "{err}"
    );
}

#[test]
fn http_off_serves_no_listener() {
    let up = TestUpstream::start();
    let d = Daemon::start(&config(""), &["--upstream", &up.url(), "--http", "off"]);
    assert!(d.http.is_none(), "{}", d.stderr());
    let a = ask_udp(d.addr, &query(zone::WWW, RecordType::A, true));
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
}

/// `packaging/grafana/winsink.json` asks only for metrics that winsink's `/metrics`
/// describes (a renamed metric would leave a panel empty).
#[test]
fn the_grafana_dashboard_uses_only_metrics_winsink_exports() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let text = metrics(&d);
    let described: std::collections::BTreeSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let dashboard =
        std::fs::read_to_string(crate::support::repo_root().join("packaging/grafana/winsink.json"))
            .unwrap();
    let v: Value = serde_json::from_str(&dashboard).unwrap();
    let mut used = std::collections::BTreeSet::new();
    for panel in v["panels"].as_array().unwrap() {
        for t in panel["targets"].as_array().unwrap() {
            let expr = t["expr"].as_str().unwrap();
            let mut rest = expr;
            while let Some(i) = rest.find("winsink_") {
                let name: String = rest[i..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                rest = &rest[i + name.len()..];
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s))
                    .unwrap_or(&name)
                    .to_owned();
                used.insert(base);
            }
        }
    }
    assert!(used.len() >= 10, "{used:?}");
    for name in &used {
        assert!(
            described.contains(name.as_str()),
            "{name} is not in /metrics:\n{described:?}"
        );
    }
}

/// A saved config that loads counts as `ok`, one that does not as `error`, and the
/// reload's time is exported.
#[test]
fn reloads_are_counted_by_result() {
    let up = TestUpstream::start();
    let d = start(&up, "");
    let wait_for = |labels: &str, n: f64| {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = metrics(&d);
            let got = sample(&text, "winsink_policy_reloads_total", labels);
            if got == n || Instant::now() > deadline {
                assert_eq!(got, n, "{labels}:\n{}", d.stderr());
                return text;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait_for(r#"result="ok""#, 0.0);
    let text = std::fs::read_to_string(d.config_path()).unwrap();
    std::fs::write(
        d.config_path(),
        text.replace("microsoft-store = \"log\"", "microsoft-store = \"block\""),
    )
    .unwrap();
    let after = wait_for(r#"result="ok""#, 1.0);
    assert!(sample(&after, "winsink_policy_last_reload_timestamp_seconds", "") > 1.0e9);
    assert_eq!(
        sample(
            &after,
            "winsink_area_action",
            r#"area="microsoft-store",action="block""#
        ),
        1.0
    );
    std::fs::write(d.config_path(), "this is not toml =").unwrap();
    wait_for(r#"result="error""#, 1.0);
}
