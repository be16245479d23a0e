//! Faults an operator's machine produces, against the real binary: each test reproduces
//! one and checks what winsink answers and says (`bench/faults.sh` runs them end to end).

use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{ask_udp, query, Daemon, TestUpstream, WAIT};

mod querylog;
mod upstream;

/// A name the config blocks whatever happens upstream.
pub(crate) const BLOCKED: &str = "telemetry.blocked.test";

/// The config of these tests: `*.blocked.test` blocked, then `extra`.
pub(crate) fn config(extra: &str) -> String {
    format!(
        r#"
[[rules]]
pattern = "*.blocked.test"
action = "block"

{extra}
"#
    )
}

/// `winsink run` with `config(extra)` and these upstream URLs.
pub(crate) fn start(upstreams: &[String], extra: &str) -> Daemon {
    let mut args = Vec::new();
    for u in upstreams {
        args.push("--upstream");
        args.push(u.as_str());
    }
    Daemon::start(&config(extra), &args)
}

/// A URL of a UDP port on loopback where nothing listens (ICMP port unreachable).
pub(crate) fn closed_udp_port() -> String {
    let s = std::net::UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = s.local_addr().expect("addr");
    drop(s);
    format!("udp://{addr}")
}

/// Waits until stderr contains `text`; panics with stderr after [`WAIT`].
pub(crate) fn wait_for_stderr(daemon: &Daemon, text: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let err = daemon.stderr();
        if err.contains(text) {
            return err;
        }
        assert!(
            Instant::now() < deadline,
            "no {text:?} on stderr in time; stderr:\n{err}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of `text` that contain `needle`.
pub(crate) fn count_lines(text: &str, needle: &str) -> usize {
    text.lines().filter(|l| l.contains(needle)).count()
}

/// Asserts that `daemon` answers the blocked name with the sinkhole (A 0.0.0.0).
pub(crate) fn assert_blocked(daemon: &Daemon) {
    let a = ask_udp(daemon.addr, &query(BLOCKED, RecordType::A, false));
    assert_sinkholed(&a);
}

/// Asserts that `a` is the sinkhole answer (A 0.0.0.0).
pub(crate) fn assert_sinkholed(a: &Message) {
    assert_eq!(a.metadata.response_code, ResponseCode::NoError, "{a:?}");
    let ips: Vec<RData> = a.answers.iter().map(|r| r.data.clone()).collect();
    assert_eq!(
        ips,
        vec![RData::A(std::net::Ipv4Addr::UNSPECIFIED.into())],
        "{a:?}"
    );
}

/// An upstream that answers, for tests that need one.
pub(crate) fn upstream() -> TestUpstream {
    TestUpstream::start()
}
