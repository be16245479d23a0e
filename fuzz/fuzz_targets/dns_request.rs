//! Feeds arbitrary bytes to the server's query path, as a UDP or TCP request.
//!
//! Input: one selector byte, then (when its top bit is set) an upstream answer to cache
//! first, then the request. The selector picks the sinkhole mode, the query-log format,
//! the transport and the client (allowed, in a group, IPv4-mapped, refused). With an
//! upstream answer: one byte of age in seconds, two bytes of length, the answer bytes.
//!
//! The path must never panic. What comes back must be an answer to this request: the
//! client's id, QR set; nothing only for a packet shorter than a header or one that is
//! itself a response; over UDP no larger than the client may take. Answers winsink
//! writes itself (refusals, errors, sinkhole answers) must decode with hickory-proto; a
//! replayed upstream answer carries the upstream's bytes and is not held to that.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;
use std::sync::{Mutex, OnceLock};

use hickory_proto::op::{Message, MessageType};
use libfuzzer_sys::fuzz_target;
use winsink_policy::Policy;
use winsink_server::fuzzing::{Handled, Harness, Proto};
use winsink_server::LogFormat;

const MODES: [&str; 5] = [
    "null-ip",
    "nxdomain",
    "nodata",
    "refused",
    "custom\"\nipv4 = \"192.0.2.1",
];
const UDP_PAYLOAD: u16 = 1232;

fn config(mode: &str) -> String {
    format!(
        r#"
catalogs = ["builtin:windows11-enterprise"]
default_action = "block"

[[rules]]
pattern = "*.blocked.test"
action = "block"
[[rules]]
pattern = "ok.blocked.test"
action = "allow"
[[rules]]
pattern = "*.logged.test"
action = "log"

[[groups]]
name = "lab"
clients = ["10.1.0.0/16"]
sinkhole = {{ mode = "nxdomain" }}
default_action = "allow"
[[groups.rules]]
pattern = "*.example"
action = "block"

[server]
allow_clients = ["127.0.0.0/8", "::1/128", "10.0.0.0/8"]
udp_payload = {UDP_PAYLOAD}

[sinkhole]
mode = "{mode}"
ttl = 10

[cache]
size = 256

[log]
queries = "all"
"#
    )
}

/// One harness per (sinkhole mode, log format).
fn harnesses() -> &'static [Mutex<Harness>] {
    static H: OnceLock<Vec<Mutex<Harness>>> = OnceLock::new();
    H.get_or_init(|| {
        let mut v = Vec::new();
        for format in [LogFormat::Json, LogFormat::Pretty] {
            for mode in MODES {
                let loaded = Policy::from_config_str(&config(mode), Path::new("."), "fuzz.toml")
                    .expect("the fuzz policy loads");
                let h =
                    Harness::new(loaded.policy, &loaded.startup, format).expect("a harness starts");
                v.push(Mutex::new(h));
            }
        }
        v
    })
}

const CLIENTS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::LOCALHOST),
    IpAddr::V4(Ipv4Addr::new(10, 1, 2, 3)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
];

fuzz_target!(|data: &[u8]| {
    let Some((&sel, mut rest)) = data.split_first() else {
        return;
    };
    let harness = &harnesses()[usize::from(sel & 0x0f) % (2 * MODES.len())];
    let proto = if sel & 0x10 != 0 {
        Proto::Tcp
    } else {
        Proto::Udp
    };
    let client = SocketAddr::new(CLIENTS[usize::from(sel >> 5) & 3], 53000);
    let mut h = harness.lock().unwrap_or_else(|e| e.into_inner());
    h.clear_cache();

    let mut upstream = None;
    if sel & 0x80 != 0 {
        let [age, hi, lo, tail @ ..] = rest else {
            return;
        };
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(tail.len());
        let (answer, query) = tail.split_at(len);
        upstream = Some((answer, u32::from(*age)));
        rest = query;
    }
    let query = rest;
    let cached = match upstream {
        Some((answer, age)) => h.cache_upstream(query, answer, age),
        None => false,
    };

    let mut out = Vec::new();
    let handled = h.answer(query, client, proto, &mut out);
    let no_header = query.len() < 12;
    let is_response = !no_header && query[2] & 0x80 != 0;
    if handled == Handled::Drop {
        assert!(no_header || is_response, "a query was dropped");
        return;
    }
    assert!(
        !no_header && !is_response,
        "answered a non-query: {handled:?}"
    );
    if handled == Handled::Forward {
        assert!(
            out.is_empty() || !cached,
            "a cached answer was not replayed"
        );
        return;
    }

    assert!(out.len() >= 12, "answer shorter than a header: {out:?}");
    assert_eq!(out[0..2], query[0..2], "answer id");
    assert!(out[2] & 0x80 != 0, "QR not set");

    let parsed_query = Message::from_vec(query).ok();
    if proto == Proto::Udp && out.len() > 512 {
        // Over 512 bytes only for a client that said it takes more (EDNS).
        if let Some(q) = &parsed_query {
            let payload = q.edns.as_ref().map_or(512, |e| e.max_payload());
            let limit = usize::from(payload.clamp(512, UDP_PAYLOAD));
            assert!(
                out.len() <= limit,
                "{} bytes over UDP, limit {limit}",
                out.len()
            );
        }
    }

    if !cached {
        let answer = match Message::from_vec(&out) {
            Ok(m) => m,
            Err(e) => panic!("winsink's own answer does not decode: {e}\n{out:02x?}"),
        };
        assert_eq!(answer.metadata.message_type, MessageType::Response);
        assert!(answer.queries.len() <= 1);
    }
});
