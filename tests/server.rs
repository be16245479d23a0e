//! `winsink run` against an in-process upstream, over real UDP and TCP on loopback.
//!
//! Every case checks the answer a client gets and the query-log line winsink writes.

use std::net::{Ipv4Addr, Ipv6Addr, UdpSocket};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};
use serde_json::{json, Value};

use crate::support::dns::{
    ask_tcp, ask_udp, assert_answers, ede, loopback, query, udp_exchange_raw, zone, Daemon,
    TestUpstream,
};

/// A name of the built-in catalog's "Diagnostic Data" area.
const TELEMETRY: &str = "v10.events.data.microsoft.com";

fn config(extra: &str) -> String {
    format!(
        r#"
[areas]
diagnostic-data = "block"

[[rules]]
pattern = "*.blocked.test"
action = "block"
note = "test rule"

{extra}
"#
    )
}

fn start(upstreams: &[&TestUpstream], extra: &str) -> Daemon {
    let mut args = Vec::new();
    for u in upstreams {
        args.push("--upstream".to_owned());
        args.push(u.url());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Daemon::start(&config(extra), &args)
}

fn rtype_name(t: RecordType) -> String {
    t.to_string()
}

/// Checks the fields every line has, and those given in `expect`.
fn check_line(line: &Value, qname: &str, rtype: RecordType, proto: &str, expect: Value) {
    assert_eq!(line["client"], loopback().to_string(), "{line}");
    assert_eq!(line["proto"], proto, "{line}");
    assert_eq!(line["qname"], qname, "{line}");
    assert_eq!(line["qtype"], rtype_name(rtype), "{line}");
    assert!(
        line["ts"]
            .as_str()
            .is_some_and(|t| t.ends_with('Z') && t.len() == 27),
        "{line}"
    );
    assert!(line["duration_us"].is_u64(), "{line}");
    for key in ["areas", "patterns", "impact"] {
        assert!(line[key].is_array(), "{key}: {line}");
    }
    for (k, v) in expect.as_object().expect("object") {
        assert_eq!(&line[k], v, "field {k} of {line}");
    }
}

/// `a` is the upstream's answer for www A (192.0.2.1), and the log line says so.
fn assert_www_forwarded(daemon: &Daemon, a: &Message, proto: &str) {
    assert_eq!(
        rdata_of(a),
        vec![RData::A(Ipv4Addr::new(192, 0, 2, 1).into())]
    );
    check_line(
        &daemon.log_line(),
        zone::WWW,
        RecordType::A,
        proto,
        json!({"decision": "pass"}),
    );
}

fn rcode_word(r: ResponseCode) -> &'static str {
    match r {
        ResponseCode::NoError => "NOERROR",
        ResponseCode::NXDomain => "NXDOMAIN",
        ResponseCode::Refused => "REFUSED",
        ResponseCode::ServFail => "SERVFAIL",
        other => panic!("unexpected {other:?}"),
    }
}

fn rdata_of(m: &Message) -> Vec<RData> {
    m.answers.iter().map(|r| r.data.clone()).collect()
}

fn soa_minimum(r: &Record) -> u32 {
    match &r.data {
        RData::SOA(soa) => soa.minimum,
        other => panic!("not an SOA: {other:?}"),
    }
}

#[test]
fn blocked_names_get_the_sinkhole_answer_of_every_mode() {
    let upstream = TestUpstream::start();
    let modes = [
        ("null-ip", ""),
        ("nxdomain", ""),
        ("nodata", ""),
        ("refused", ""),
        ("custom", "ipv4 = \"192.0.2.99\"\nipv6 = \"2001:db8::99\""),
    ];
    for (mode, extra) in modes {
        let daemon = start(
            &[&upstream],
            &format!("[sinkhole]\nmode = \"{mode}\"\nttl = 42\n{extra}"),
        );
        for (i, rtype) in [
            RecordType::A,
            RecordType::AAAA,
            RecordType::HTTPS,
            RecordType::MX,
        ]
        .into_iter()
        .enumerate()
        {
            // Alternate transports: the sinkhole does not depend on them.
            let tcp = i % 2 == 1;
            let q = query(TELEMETRY, rtype, true);
            let a = if tcp {
                ask_tcp(daemon.addr, &q)
            } else {
                ask_udp(daemon.addr, &q)
            };
            assert_answers(&q, &a);
            let expected_rcode = match mode {
                "nxdomain" => ResponseCode::NXDomain,
                "refused" => ResponseCode::Refused,
                _ => ResponseCode::NoError,
            };
            assert_eq!(a.metadata.response_code, expected_rcode, "{mode} {rtype}");
            let expected: Vec<RData> = match (mode, rtype) {
                ("null-ip", RecordType::A) => vec![RData::A(Ipv4Addr::UNSPECIFIED.into())],
                ("null-ip", RecordType::AAAA) => vec![RData::AAAA(Ipv6Addr::UNSPECIFIED.into())],
                ("custom", RecordType::A) => vec![RData::A(Ipv4Addr::new(192, 0, 2, 99).into())],
                ("custom", RecordType::AAAA) => vec![RData::AAAA(
                    "2001:db8::99".parse::<Ipv6Addr>().unwrap().into(),
                )],
                _ => vec![],
            };
            assert_eq!(rdata_of(&a), expected, "{mode} {rtype}");
            assert!(
                a.answers.iter().all(|r| r.ttl == 42),
                "{mode} {rtype}: {:?}",
                a.answers
            );
            if expected.is_empty() && mode != "refused" {
                // A negative answer carries an SOA so that the client caches it for the TTL.
                assert_eq!(a.authorities.len(), 1, "{mode} {rtype}");
                assert_eq!(soa_minimum(&a.authorities[0]), 42);
                assert_eq!(a.authorities[0].ttl, 42);
            }
            let e = ede(&a);
            assert_eq!(e.len(), 1, "{mode} {rtype}: {e:?}");
            assert_eq!(e[0].0, 15, "EDE Blocked");
            assert!(e[0].1.contains("Diagnostic Data"), "{e:?}");

            let line = daemon.log_line();
            check_line(
                &line,
                TELEMETRY,
                rtype,
                if tcp { "tcp" } else { "udp" },
                json!({
                    "decision": "block",
                    "areas": [{"id": "diagnostic-data", "name": "Diagnostic Data"}],
                    "rcode": rcode_word(expected_rcode),
                    "answers": expected.len(),
                    "cached": false,
                    "upstream": null,
                }),
            );
            assert!(!line["patterns"].as_array().unwrap().is_empty(), "{line}");
            assert!(!line["impact"].as_array().unwrap().is_empty(), "{line}");
            assert!(line.get("cname").is_none(), "{line}");
        }
    }
    assert_eq!(upstream.total(), 0, "blocked names are never forwarded");
}

#[test]
fn forwarded_answers_are_the_upstreams_answers() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let cases = [
        (zone::WWW, RecordType::A, ResponseCode::NoError, 1),
        (zone::WWW, RecordType::AAAA, ResponseCode::NoError, 1),
        (zone::ALIAS, RecordType::A, ResponseCode::NoError, 3),
        (zone::MISSING, RecordType::A, ResponseCode::NXDomain, 0),
        (zone::WWW, RecordType::MX, ResponseCode::NoError, 0),
    ];
    for (name, rtype, rcode, answers) in cases {
        let q = query(name, rtype, true);
        let direct = ask_udp(upstream.addr, &q);
        let a = ask_udp(daemon.addr, &q);
        assert_answers(&q, &a);
        assert_eq!(a.metadata.response_code, rcode, "{name} {rtype}");
        assert_eq!(a.metadata.response_code, direct.metadata.response_code);
        assert_eq!(
            a.metadata.authoritative, direct.metadata.authoritative,
            "AA passed on"
        );
        assert_eq!(a.metadata.authentic_data, direct.metadata.authentic_data);
        assert!(!a.metadata.truncation);
        assert_eq!(a.answers, direct.answers, "{name} {rtype}: answer section");
        assert_eq!(
            a.authorities, direct.authorities,
            "{name} {rtype}: authority section"
        );
        assert_eq!(a.additionals, direct.additionals);
        assert_eq!(a.answers.len(), answers);
        assert_eq!(a.edns.as_ref().map(|e| e.max_payload()), Some(1232));
        let line = daemon.log_line();
        check_line(
            &line,
            name,
            rtype,
            "udp",
            json!({
                "decision": "pass",
                "areas": [],
                "patterns": [],
                "rcode": rcode_word(rcode),
                "answers": answers,
                "cached": false,
                "upstream": upstream.url(),
            }),
        );
    }

    // The question comes back in the client's letter case.
    let q = query("WwW.ExAmPlE.TeSt", RecordType::A, false);
    let a = ask_udp(daemon.addr, &q);
    assert!(
        a.queries[0].name().eq_case(q.queries[0].name()),
        "{:?}",
        a.queries
    );
    assert!(a.edns.is_none(), "no OPT for a client that sent none");
    assert_www_forwarded(&daemon, &a, "udp");
}

#[test]
fn a_large_answer_is_truncated_on_udp_and_whole_on_tcp() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let q = query(zone::BIG, RecordType::TXT, true);

    let a = ask_udp(daemon.addr, &q);
    assert_answers(&q, &a);
    assert!(a.metadata.truncation, "TC set: {:?}", a.metadata);
    assert!(a.answers.is_empty());
    let line = daemon.log_line();
    check_line(
        &line,
        zone::BIG,
        RecordType::TXT,
        "udp",
        json!({"rcode": "NOERROR", "answers": 0}),
    );
    // The upstream truncated too; winsink asked again over TCP and cached the whole answer.
    assert_eq!(upstream.count(zone::BIG, RecordType::TXT), 2);

    let a = ask_tcp(daemon.addr, &q);
    let direct = ask_tcp(upstream.addr, &q);
    assert!(!a.metadata.truncation);
    assert_eq!(a.answers.len(), 40);
    assert_eq!(a.answers, direct.answers);
    let line = daemon.log_line();
    check_line(
        &line,
        zone::BIG,
        RecordType::TXT,
        "tcp",
        json!({"rcode": "NOERROR", "answers": 40, "cached": true, "upstream": null}),
    );
}

#[test]
fn a_silent_upstream_gets_the_client_servfail_within_the_budget() {
    let silent = TestUpstream::silent();
    let daemon = start(&[&silent], "[server]\nupstream_timeout_ms = 500");
    let q = query(zone::WWW, RecordType::A, true);
    // The client waits up to ten seconds; winsink must answer before its own budget ends.
    let a = ask_udp(daemon.addr, &q);
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    let e = ede(&a);
    assert_eq!(e.first().map(|e| e.0), Some(22), "{e:?}");
    assert!(silent.count(zone::WWW, RecordType::A) >= 1);
    let line = daemon.log_line();
    check_line(
        &line,
        zone::WWW,
        RecordType::A,
        "udp",
        json!({"decision": "pass", "rcode": "SERVFAIL", "answers": 0, "upstream": null, "cached": false}),
    );
    assert!(
        line["duration_us"].as_u64().unwrap() >= 400_000,
        "it waited for the upstream: {line}"
    );
}

#[test]
fn a_silent_first_upstream_fails_over_to_the_second() {
    let silent = TestUpstream::silent();
    let good = TestUpstream::start();
    let daemon = start(&[&silent, &good], "");
    let q = query(zone::WWW, RecordType::AAAA, true);
    let a = ask_udp(daemon.addr, &q);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert_eq!(
        rdata_of(&a),
        vec![RData::AAAA(
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().into()
        )]
    );
    assert!(
        silent.count(zone::WWW, RecordType::AAAA) >= 1,
        "the first upstream was asked"
    );
    let line = daemon.log_line();
    check_line(
        &line,
        zone::WWW,
        RecordType::AAAA,
        "udp",
        json!({"upstream": good.url(), "rcode": "NOERROR"}),
    );
}

#[test]
fn a_repeated_question_is_answered_from_the_cache() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let q = query(zone::ALIAS, RecordType::A, true);
    let first = ask_udp(daemon.addr, &q);
    let line = daemon.log_line();
    check_line(
        &line,
        zone::ALIAS,
        RecordType::A,
        "udp",
        json!({"cached": false, "upstream": upstream.url()}),
    );
    // Another case and another transport hit the same entry.
    let again = ask_tcp(
        daemon.addr,
        &query("ALIAS.example.test", RecordType::A, true),
    );
    assert_eq!(rdata_of(&again), rdata_of(&first));
    assert!(again
        .answers
        .iter()
        .zip(&first.answers)
        .all(|(a, f)| a.ttl <= f.ttl));
    let line = daemon.log_line();
    check_line(
        &line,
        zone::ALIAS,
        RecordType::A,
        "tcp",
        json!({"cached": true, "upstream": null, "answers": 3}),
    );
    assert_eq!(
        upstream.count(zone::ALIAS, RecordType::A),
        1,
        "the upstream saw one query"
    );

    // Negative answers are cached too (RFC 2308).
    let nx = query(zone::MISSING, RecordType::A, false);
    ask_udp(daemon.addr, &nx);
    let a = ask_udp(daemon.addr, &nx);
    assert_eq!(a.metadata.response_code, ResponseCode::NXDomain);
    assert_eq!(a.authorities.len(), 1);
    daemon.log_line();
    check_line(
        &daemon.log_line(),
        zone::MISSING,
        RecordType::A,
        "udp",
        json!({"cached": true, "rcode": "NXDOMAIN"}),
    );
    assert_eq!(upstream.count(zone::MISSING, RecordType::A), 1);
}

#[test]
fn identical_concurrent_misses_go_upstream_once() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    // The upstream takes a while to answer this name, so the queries overlap.
    let clients: Vec<UdpSocket> = (0..8)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let mut ids = Vec::new();
    for c in &clients {
        let q = query(zone::SLOW, RecordType::A, false);
        ids.push(q.metadata.id);
        c.send_to(&q.to_vec().unwrap(), daemon.addr).unwrap();
    }
    for (c, id) in clients.iter().zip(ids) {
        c.set_read_timeout(Some(crate::support::dns::WAIT)).unwrap();
        let mut buf = [0u8; 512];
        let (len, _) = c.recv_from(&mut buf).expect("answer");
        let a = Message::from_vec(&buf[..len]).unwrap();
        assert_eq!(a.metadata.id, id);
        assert_eq!(
            rdata_of(&a),
            vec![RData::A(Ipv4Addr::new(192, 0, 2, 7).into())]
        );
    }
    for _ in 0..8 {
        check_line(
            &daemon.log_line(),
            zone::SLOW,
            RecordType::A,
            "udp",
            json!({"rcode": "NOERROR", "answers": 1}),
        );
    }
    assert_eq!(upstream.count(zone::SLOW, RecordType::A), 1);
}

#[test]
fn a_cname_to_a_blocked_name_is_sinkholed() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let q = query(zone::CDN, RecordType::A, true);
    for cached in [false, true] {
        let a = ask_udp(daemon.addr, &q);
        assert_answers(&q, &a);
        assert_eq!(a.metadata.response_code, ResponseCode::NoError);
        assert_eq!(
            rdata_of(&a),
            vec![RData::A(Ipv4Addr::UNSPECIFIED.into())],
            "null-ip for the question name"
        );
        assert_eq!(a.answers[0].name, *q.queries[0].name());
        let e = ede(&a);
        assert!(e[0].1.contains(zone::CDN_TARGET), "{e:?}");
        let line = daemon.log_line();
        check_line(
            &line,
            zone::CDN,
            RecordType::A,
            "udp",
            json!({
                "decision": "block",
                "cname": zone::CDN_TARGET,
                "decided_by": {"kind": "cname", "name": zone::CDN_TARGET, "inner": {
                    "kind": "rule", "note": "test rule", "pattern": "*.blocked.test",
                    "action": "block"}},
                "patterns": ["*.blocked.test"],
                "areas": [],
                "impact": [],
                "impact_scope": null,
                "cached": cached,
                "answers": 1,
            }),
        );
    }
    assert_eq!(upstream.count(zone::CDN, RecordType::A), 1);
}

#[test]
fn a_client_outside_allow_clients_is_refused() {
    let upstream = TestUpstream::start();
    let daemon = start(
        &[&upstream],
        "[server]\nallow_clients = [\"10.0.0.0/8\", \"fc00::/7\"]",
    );
    for tcp in [false, true] {
        let q = query(zone::WWW, RecordType::A, true);
        let a = if tcp {
            ask_tcp(daemon.addr, &q)
        } else {
            ask_udp(daemon.addr, &q)
        };
        assert_answers(&q, &a);
        assert_eq!(a.metadata.response_code, ResponseCode::Refused);
        assert!(a.answers.is_empty());
        let line = daemon.log_line();
        check_line(
            &line,
            zone::WWW,
            RecordType::A,
            if tcp { "tcp" } else { "udp" },
            json!({"decision": "refuse", "rcode": "REFUSED", "answers": 0, "upstream": null}),
        );
    }
    assert_eq!(upstream.total(), 0);
}

#[test]
fn a_malformed_packet_gets_formerr_and_the_server_keeps_serving() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    // A header announcing one question, then a label running past the end.
    let garbage = [
        0xAB, 0xCD, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0, 0x3F, b'x', b'y',
    ];
    let a = Message::from_vec(&udp_exchange_raw(daemon.addr, &garbage)).expect("FORMERR parses");
    assert_eq!(a.metadata.id, 0xABCD);
    assert_eq!(a.metadata.response_code, ResponseCode::FormErr);
    assert!(a.queries.is_empty());
    let line = daemon.log_line();
    assert_eq!(line["decision"], "invalid", "{line}");
    assert_eq!(line["rcode"], "FORMERR", "{line}");
    assert_eq!(line["qname"], "", "{line}");

    // An opcode winsink does not implement (NOTIFY) gets NOTIMP, question echoed.
    let mut notify = query(zone::WWW, RecordType::SOA, false);
    notify.metadata.op_code = hickory_proto::op::OpCode::Notify;
    let a = ask_udp(daemon.addr, &notify);
    assert_eq!(a.metadata.response_code, ResponseCode::NotImp);
    assert_eq!(a.queries, notify.queries);
    let line = daemon.log_line();
    check_line(
        &line,
        zone::WWW,
        RecordType::SOA,
        "udp",
        json!({"decision": "invalid", "rcode": "NOTIMP"}),
    );

    // Still serving.
    let q = query(zone::WWW, RecordType::A, false);
    let a = ask_udp(daemon.addr, &q);
    assert_www_forwarded(&daemon, &a, "udp");
}

#[test]
fn matched_only_logging_in_pretty_format() {
    let upstream = TestUpstream::start();
    let daemon = start(
        &[&upstream, &upstream],
        "[log]\nqueries = \"matched\"\nformat = \"json\"",
    );
    ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    ask_udp(daemon.addr, &query(TELEMETRY, RecordType::A, false));
    // The pass query left no line: the first line is the block.
    check_line(
        &daemon.log_line(),
        TELEMETRY,
        RecordType::A,
        "udp",
        json!({"decision": "block"}),
    );
    drop(daemon);

    let config = config("");
    let mut pretty = Daemon::start(
        &config,
        &["--upstream", &upstream.url(), "--log-format", "pretty"],
    );
    ask_udp(pretty.addr, &query(TELEMETRY, RecordType::AAAA, false));
    let line = pretty.raw_line();
    assert!(line.contains(" 127.0.0.1 "), "{line}");
    assert!(
        line.contains(&format!(
            "AAAA  {TELEMETRY} -> block NOERROR answers=1 [Diagnostic Data]"
        )),
        "{line}"
    );
    // What the block breaks, on the same line, shortened.
    assert!(
        line.contains("us | The following endpoints are used by the Connected User Experiences"),
        "{line}"
    );
    assert!(line.ends_with('…'), "{line}");
    let (status, _) = pretty.terminate();
    assert!(status.success());
}

#[test]
fn sigterm_flushes_the_log_and_exits_zero() {
    let upstream = TestUpstream::start();
    let mut daemon = start(&[&upstream], "");
    ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    let (status, rest) = daemon.terminate();
    assert!(status.success(), "{status:?}; stderr:\n{}", daemon.stderr());
    assert_eq!(rest.len(), 1, "the query's line was flushed: {rest:?}");
    let line: Value = serde_json::from_str(&rest[0]).unwrap();
    check_line(
        &line,
        zone::WWW,
        RecordType::A,
        "udp",
        json!({"decision": "pass"}),
    );
    let err = daemon.stderr();
    assert!(err.contains("SIGTERM: shutting down"), "{err}");
}

#[test]
fn a_bind_failure_names_the_address_and_exits_non_zero() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winsink.toml");
    std::fs::write(&path, config("")).unwrap();
    let out = crate::support::winsink()
        .args(["run", "--config"])
        .arg(&path)
        .args([
            "--listen",
            &addr.to_string(),
            "--upstream",
            "udp://127.0.0.1:9",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = crate::support::stderr(&out);
    assert!(err.contains(&format!("cannot bind udp {addr}")), "{err}");
    assert!(err.contains("in use"), "{err}");
}

#[test]
fn a_bad_upstream_url_is_a_config_error() {
    let out = crate::support::run_winsink(&[
        "run",
        "--upstream",
        "ftp://dns.example",
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = crate::support::stderr(&out);
    assert!(
        err.contains("--upstream: upstream \"ftp://dns.example\""),
        "{err}"
    );
    assert!(
        !err.contains("winsink.toml:"),
        "the config file is not to blame: {err}"
    );
}

#[test]
fn forged_upstream_replies_are_discarded() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let q = query(zone::SPOOFED, RecordType::A, true);
    let a = ask_udp(daemon.addr, &q);
    assert_eq!(
        rdata_of(&a),
        vec![RData::A(Ipv4Addr::new(192, 0, 2, 5).into())]
    );
    let line = daemon.log_line();
    check_line(
        &line,
        zone::SPOOFED,
        RecordType::A,
        "udp",
        json!({"rcode": "NOERROR", "answers": 1}),
    );
}

#[test]
fn a_tcp_upstream_is_asked_over_tcp() {
    let upstream = TestUpstream::start();
    let daemon = Daemon::start(&config(""), &["--upstream", &upstream.tcp_url()]);
    for (name, rtype) in [
        (zone::ALIAS, RecordType::AAAA),
        (zone::BIG, RecordType::TXT),
    ] {
        let q = query(name, rtype, true);
        let a = ask_tcp(daemon.addr, &q);
        assert_eq!(a.answers, ask_tcp(upstream.addr, &q).answers, "{name}");
        let line = daemon.log_line();
        check_line(
            &line,
            name,
            rtype,
            "tcp",
            json!({"upstream": upstream.tcp_url(), "cached": false}),
        );
    }
}

#[test]
fn edns_version_one_gets_badvers() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    let mut q = query(zone::WWW, RecordType::A, true);
    q.edns.as_mut().unwrap().set_version(1);
    let a = ask_udp(daemon.addr, &q);
    // BADVERS and BADSIG share code 16; hickory names it BADSIG.
    assert_eq!(u16::from(a.metadata.response_code), 16);
    assert_eq!(a.edns.as_ref().map(|e| e.version()), Some(0));
    let line = daemon.log_line();
    check_line(
        &line,
        zone::WWW,
        RecordType::A,
        "udp",
        json!({"decision": "invalid", "rcode": "BADVERS"}),
    );
    assert_eq!(upstream.total(), 0);
}

/// `m` as one TCP message: length, then bytes.
fn tcp_frame(m: &Message) -> Vec<u8> {
    let bytes = m.to_vec().unwrap();
    let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    frame
}

/// Sends `frame` on fresh connections until one is answered (connections over the limit
/// are closed unanswered); `None` if none is within 500 tries.
fn tcp_answer_once_a_slot_is_free(addr: std::net::SocketAddr, frame: &[u8]) -> Option<Message> {
    use std::io::{Read, Write};

    let mut len = [0u8; 2];
    for _ in 0..500 {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(crate::support::dns::WAIT)).unwrap();
        c.write_all(frame).unwrap();
        if c.read_exact(&mut len).is_ok() {
            let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
            c.read_exact(&mut body).unwrap();
            return Some(Message::from_vec(&body).unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    None
}

#[test]
fn at_the_tcp_limit_the_idle_connection_makes_room_and_idle_ones_are_closed() {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    let upstream = TestUpstream::start();
    let daemon = start(
        &[&upstream],
        "[server]\ntcp_max_connections = 1\ntcp_idle_timeout_secs = 2",
    );
    let wait = Some(crate::support::dns::WAIT);
    // The first connection takes the only slot and sends nothing.
    let mut first = TcpStream::connect(daemon.addr).unwrap();
    first.set_read_timeout(wait).unwrap();
    // A second one is served: the idle first one is closed to make room.
    let frame = tcp_frame(&query(zone::WWW, RecordType::A, false));
    let a = tcp_answer_once_a_slot_is_free(daemon.addr, &frame).expect("a TCP answer at the limit");
    assert_www_forwarded(&daemon, &a, "tcp");
    let mut buf = [0u8; 1];
    assert_eq!(
        first.read(&mut buf).unwrap_or(0),
        0,
        "idle connection evicted"
    );
    // An idle connection is closed after the idle timeout.
    let mut third = TcpStream::connect(daemon.addr).unwrap();
    third.set_read_timeout(wait).unwrap();
    third.write_all(&frame).unwrap();
    let mut len = [0u8; 2];
    third.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    third.read_exact(&mut body).unwrap();
    let started = std::time::Instant::now();
    assert_eq!(
        third.read(&mut buf).unwrap_or(0),
        0,
        "idle connection closed"
    );
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let _ = daemon.log_line();
}

#[test]
fn no_query_lines_when_logging_is_off() {
    let upstream = TestUpstream::start();
    let mut daemon = start(&[&upstream], "[log]\nqueries = \"none\"");
    ask_udp(daemon.addr, &query(TELEMETRY, RecordType::A, false));
    ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    let (status, rest) = daemon.terminate();
    assert!(status.success());
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_client_group_gets_its_own_sinkhole_answer() {
    let upstream = TestUpstream::start();
    let group = r#"
[[groups]]
name = "lab"
clients = ["127.0.0.0/8"]
sinkhole = { mode = "nxdomain", ttl = 30 }
[[groups.rules]]
pattern = "lab-only.example.test"
action = "block"
"#;
    let daemon = start(&[&upstream], group);
    for name in [TELEMETRY, "lab-only.example.test"] {
        let a = ask_udp(daemon.addr, &query(name, RecordType::A, true));
        assert_eq!(a.metadata.response_code, ResponseCode::NXDomain, "{name}");
        assert_eq!(a.authorities.first().map(|r| r.ttl), Some(30));
        let line = daemon.log_line();
        check_line(
            &line,
            name,
            RecordType::A,
            "udp",
            json!({"decision": "block", "rcode": "NXDOMAIN"}),
        );
    }
    assert_eq!(upstream.total(), 0);
}

#[test]
fn a_tcp_client_that_stops_reading_loses_its_connection_slot() {
    use std::io::Write;
    use std::net::TcpStream;

    let upstream = TestUpstream::start();
    let daemon = start(
        &[&upstream],
        "[server]\ntcp_max_connections = 1\ntcp_idle_timeout_secs = 1\n[log]\nqueries = \"none\"",
    );
    let frame = tcp_frame(&query("a.blocked.test", RecordType::A, false));
    // The hog pipelines queries and never reads an answer, until winsink's answers fill
    // both socket buffers and winsink can neither write nor, in turn, read. It stops
    // once its own writes block (or winsink closes the connection).
    let mut hog = TcpStream::connect(daemon.addr).unwrap();
    hog.set_write_timeout(Some(std::time::Duration::from_secs(2)))
        .unwrap();
    let chunk: Vec<u8> = frame.repeat(1 << 14);
    for _ in 0..256 {
        if hog.write_all(&chunk).is_err() {
            break;
        }
    }
    // Another client gets its answer: the hog's slot is freed when its answers stop
    // leaving, although the hog keeps its end open.
    let a = tcp_answer_once_a_slot_is_free(daemon.addr, &frame)
        .expect("a TCP answer while the hog still holds its connection open");
    assert_eq!(rdata_of(&a), vec![RData::A(Ipv4Addr::UNSPECIFIED.into())]);
    drop(hog);
}

#[test]
fn a_stalled_query_log_warns_about_dropped_lines_and_does_not_block_shutdown() {
    let upstream = TestUpstream::start();
    let mut daemon = Daemon::start_stalled(
        &config("[log]\nqueue = 1000"),
        &["--upstream", &upstream.url()],
    );
    // Lines are dropped only once 1000 are queued; each is over 500 bytes (the area's
    // impact text), so by then the writer has more than a pipe holds and blocks in its
    // write. Answers keep coming all the while.
    let q = query(TELEMETRY, RecordType::A, false);
    let mut warned = false;
    for _ in 0..100 {
        for _ in 0..200 {
            let a = ask_udp(daemon.addr, &q);
            assert_eq!(rdata_of(&a), vec![RData::A(Ipv4Addr::UNSPECIFIED.into())]);
        }
        if daemon.stderr().contains("lines dropped") {
            warned = true;
            break;
        }
    }
    assert!(warned, "no drop warning; stderr:\n{}", daemon.stderr());
    let (status, _) = daemon.terminate();
    assert!(status.success(), "{status:?}; stderr:\n{}", daemon.stderr());
    let err = daemon.stderr();
    assert!(err.contains("the writer is blocked"), "{err}");
}

#[test]
fn a_malformed_upstream_answer_gets_servfail_naming_the_upstream() {
    let upstream = TestUpstream::start();
    // A malformed reply is discarded and the exchange waits for a good one until the
    // budget ends (RFC 5452): a short budget keeps the test short.
    let daemon = start(&[&upstream], "[server]\nupstream_timeout_ms = 1000");
    let q = query(zone::MALFORMED, RecordType::A, true);
    let mut asked = 0;
    for _ in 0..2 {
        let a = ask_udp(daemon.addr, &q);
        // Nothing unusable is cached: each query goes upstream again.
        let now = upstream.count(zone::MALFORMED, RecordType::A);
        assert!(now > asked, "not asked upstream again");
        asked = now;
        assert_answers(&q, &a);
        assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
        assert!(a.answers.is_empty());
        let (code, text) = ede(&a).pop().expect("an EDE");
        assert_eq!(code, 22);
        assert!(text.contains("no usable upstream answer"), "{text}");
        assert!(text.contains(&upstream.url()), "{text}");
        check_line(
            &daemon.log_line(),
            zone::MALFORMED,
            RecordType::A,
            "udp",
            json!({"rcode": "SERVFAIL", "answers": 0, "cached": false, "upstream": null}),
        );
    }
}

#[test]
fn past_4096_queries_waiting_for_upstreams_a_miss_gets_servfail_at_once() {
    let silent = TestUpstream::silent();
    // The budget outlasts the test: every query that reaches the upstream stays waiting.
    let daemon = start(
        &[&silent],
        "[server]\nupstream_timeout_ms = 60000\n[log]\nqueries = \"none\"",
    );
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_nonblocking(true).unwrap();
    let mut buf = vec![0u8; 4096];
    let mut overloaded = None;
    // Sent in rounds, as fast as winsink takes them; a few may be lost to a full socket
    // buffer, so it keeps sending until the limit shows.
    'rounds: for round in 0..200 {
        for i in 0..100 {
            let q = query(&format!("q{round}-{i}.example.test"), RecordType::A, true);
            let _ = sock.send_to(&q.to_vec().unwrap(), daemon.addr);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        if let Ok((len, _)) = sock.recv_from(&mut buf) {
            overloaded = Some(Message::from_vec(&buf[..len]).unwrap());
            break 'rounds;
        }
    }
    let a = overloaded.expect("an answer before any upstream could have answered");
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    let (code, text) = ede(&a).pop().expect("an EDE");
    assert_eq!(code, 22);
    assert!(
        text.contains("too many queries waiting for upstreams"),
        "{text}"
    );
}

#[test]
fn a_low_open_files_limit_is_raised_for_the_sockets_queries_need() {
    let upstream = TestUpstream::start();
    let daemon = Daemon::start_with_open_files(&config(""), &["--upstream", &upstream.url()], 256);
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.pid())).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max open files"))
        .expect("Max open files");
    let numbers: Vec<u64> = line
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    let (soft, hard) = (numbers[0], numbers[1]);
    // 4096 upstream queries with up to 3 sockets each + 1024 TCP clients + 256 others,
    // or all the hard limit allows.
    assert_eq!(soft, hard.min(4096 * 3 + 1024 + 256), "{line}");
    assert!(
        daemon
            .stderr()
            .contains(&format!("open files limit raised from 256 to {soft}")),
        "{}",
        daemon.stderr()
    );
    // Still answering.
    let a = ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    assert_www_forwarded(&daemon, &a, "udp");
}

#[test]
fn the_ad_bit_reaches_a_client_that_asks_for_it_even_from_the_cache() {
    let upstream = TestUpstream::start();
    let daemon = start(&[&upstream], "");
    // First without AD or DO: the upstream's answer gets cached; this client sees no AD.
    let plain = query(zone::WWW, RecordType::AAAA, true);
    let a = ask_udp(daemon.addr, &plain);
    assert!(
        !a.metadata.authentic_data,
        "AD for a client that asked neither AD nor DO"
    );
    // Then with AD: from the cache, with the AD the upstream gives such a client.
    let mut with_ad = query(zone::WWW, RecordType::AAAA, true);
    with_ad.metadata.authentic_data = true;
    let direct = ask_udp(upstream.addr, &with_ad);
    assert!(direct.metadata.authentic_data);
    let a = ask_udp(daemon.addr, &with_ad);
    assert!(a.metadata.authentic_data, "AD lost on the way");
    assert_eq!(a.answers, direct.answers);
    let _ = daemon.log_line();
    check_line(
        &daemon.log_line(),
        zone::WWW,
        RecordType::AAAA,
        "udp",
        json!({"cached": true}),
    );
}

#[test]
fn a_refused_tcp_client_is_disconnected_after_its_answer() {
    use std::io::{Read, Write};

    let upstream = TestUpstream::start();
    let daemon = start(
        &[&upstream],
        "[server]\nallow_clients = [\"10.0.0.0/8\"]\ntcp_idle_timeout_secs = 600",
    );
    let mut c = std::net::TcpStream::connect(daemon.addr).unwrap();
    c.set_read_timeout(Some(crate::support::dns::WAIT)).unwrap();
    c.write_all(&tcp_frame(&query(zone::WWW, RecordType::A, false)))
        .unwrap();
    let mut len = [0u8; 2];
    c.read_exact(&mut len).unwrap();
    let mut body = vec![0u8; usize::from(u16::from_be_bytes(len))];
    c.read_exact(&mut body).unwrap();
    let a = Message::from_vec(&body).unwrap();
    assert_eq!(a.metadata.response_code, ResponseCode::Refused);
    // Then the connection ends, long before the idle timeout.
    let mut rest = [0u8; 1];
    assert_eq!(c.read(&mut rest).unwrap(), 0, "connection closed");
}

#[test]
fn a_slow_answer_from_a_tcp_upstream_does_not_hold_up_other_queries() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    let upstream = TestUpstream::start();
    let daemon = Daemon::start(
        &config("[server]\nupstream_timeout_ms = 10000\n[log]\nqueries = \"none\""),
        &["--upstream", &upstream.tcp_url()],
    );
    let addr = daemon.addr;
    let slow_done = Arc::new(AtomicBool::new(false));
    let done = slow_done.clone();
    let slow = std::thread::spawn(move || {
        let a = ask_udp(addr, &query(zone::SLOWER, RecordType::A, false));
        done.store(true, Ordering::SeqCst);
        a
    });
    // Once the slow question is with the upstream, a fast one is answered meanwhile.
    for _ in 0..500 {
        if upstream.count(zone::SLOWER, RecordType::A) > 0 {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(upstream.count(zone::SLOWER, RecordType::A), 1);
    let a = ask_udp(addr, &query(zone::WWW, RecordType::A, false));
    assert_eq!(
        rdata_of(&a),
        vec![RData::A(Ipv4Addr::new(192, 0, 2, 1).into())]
    );
    assert!(
        !slow_done.load(Ordering::SeqCst),
        "the fast answer waited for the slow one"
    );
    let a = slow.join().unwrap();
    assert_eq!(
        rdata_of(&a),
        vec![RData::A(Ipv4Addr::new(192, 0, 2, 8).into())]
    );
}
