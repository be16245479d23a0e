//! `cargo bench -p winsink-server --bench wire`: the hand-written parts of the answering
//! path against the crates they stand in for.
//!
//! - `parse`: reading a query (header, question, OPT record, the name as text) with
//!   winsink's parser against hickory-proto's `Message::from_vec` (which hickory-server
//!   runs on every request). hickory is not asked for the name as text, which favours it.
//! - `log_line`: one JSON query-log line with winsink's writer against `serde_json` on a
//!   derived struct. serde gets the timestamp, client and qtype as ready-made strings,
//!   which favours it.
//!
//! Figures are quoted in `crates/server/src/lib.rs` ("Hand-written parts").

use std::hint::black_box;
use std::str::FromStr;

use criterion::{criterion_group, criterion_main, Criterion};
use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query};
use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;
use winsink_server::fuzzing::{read_query, sample, write_sample_line};
use winsink_server::LogFormat;

fn query(name: &str, edns: bool) -> Vec<u8> {
    let mut m = Message::new(0x1234, MessageType::Query, OpCode::Query);
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_str(name).unwrap(), RecordType::A));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

fn parse(c: &mut Criterion) {
    let mut g = c.benchmark_group("parse");
    for (label, packet) in [
        ("plain", query("watson.events.data.microsoft.com.", false)),
        ("edns", query("watson.events.data.microsoft.com.", true)),
    ] {
        let mut name = String::with_capacity(256);
        assert_eq!(read_query(&packet, &mut name), Some(1));
        assert_eq!(name, "watson.events.data.microsoft.com");
        assert!(Message::from_vec(&packet).is_ok());
        g.bench_function(format!("winsink/{label}"), |b| {
            b.iter(|| read_query(black_box(&packet), &mut name))
        });
        g.bench_function(format!("hickory_from_vec/{label}"), |b| {
            b.iter(|| Message::from_vec(black_box(&packet)).map(|m| m.queries.len()))
        });
    }
    g.finish();
}

/// The same line as [`write_sample_line`], as serde would write it.
#[derive(Serialize)]
struct JsonLine<'a> {
    ts: &'a str,
    client: &'a str,
    proto: &'a str,
    qname: &'a str,
    qtype: &'a str,
    decision: &'a str,
    decided_by: DecidedBy<'a>,
    areas: &'a [Area<'a>],
    patterns: &'a [&'a str],
    impact: &'a [&'a str],
    impact_scope: Option<&'a str>,
    rcode: &'a str,
    answers: u16,
    cached: bool,
    upstream: Option<&'a str>,
    duration_us: u64,
}

#[derive(Serialize)]
struct DecidedBy<'a> {
    kind: &'a str,
    note: Option<&'a str>,
    pattern: &'a str,
    action: &'a str,
}

#[derive(Serialize)]
struct Area<'a> {
    id: &'a str,
    name: &'a str,
}

fn serde_line(out: &mut Vec<u8>, duration_us: u64) {
    let (id, name) = sample::AREAS[0];
    let line = JsonLine {
        ts: "2025-11-26T01:10:54.123456Z",
        client: sample::CLIENT,
        proto: "udp",
        qname: sample::QNAME,
        qtype: "A",
        decision: "block",
        decided_by: DecidedBy {
            kind: "rule",
            note: None,
            pattern: sample::DECIDED_BY,
            action: "block",
        },
        areas: &[Area { id, name }],
        patterns: sample::PATTERNS,
        impact: sample::IMPACT,
        impact_scope: Some(sample::IMPACT_SCOPE),
        rcode: "NOERROR",
        answers: 1,
        cached: false,
        upstream: None,
        duration_us,
    };
    serde_json::to_writer(&mut *out, &line).unwrap();
    out.push(b'\n');
}

fn log_line(c: &mut Criterion) {
    // Both write the same line (the duration aside).
    let mut ours = String::new();
    write_sample_line(&mut ours, LogFormat::Json);
    let mut theirs = Vec::new();
    serde_line(&mut theirs, 0);
    let mut a: serde_json::Value = serde_json::from_str(&ours).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&theirs).unwrap();
    a["duration_us"] = 0.into();
    assert_eq!(a, b);

    let mut g = c.benchmark_group("log_line");
    g.bench_function("winsink", |b| {
        b.iter(|| {
            ours.clear();
            write_sample_line(&mut ours, LogFormat::Json);
            ours.len()
        })
    });
    g.bench_function("serde_json", |b| {
        b.iter(|| {
            theirs.clear();
            serde_line(&mut theirs, black_box(3));
            theirs.len()
        })
    });
    g.finish();
}

criterion_group!(benches, parse, log_line);
criterion_main!(benches);
