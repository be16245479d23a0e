//! Faults an operator's machine produces, against the real binary: each test reproduces
//! one and checks what winsink answers and says (`bench/faults.sh` runs them end to end).

use std::time::Duration;

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{ask_udp, query, Daemon, TestUpstream};

mod clients;
mod querylog;
mod reload;
mod tcp;
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

/// Asks for a name every 20 ms from a thread of its own, and keeps every answer that is
/// not the sinkhole.
pub(crate) struct Prober {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<(usize, Vec<String>)>>,
}

impl Prober {
    pub(crate) fn start(daemon: &Daemon, name: &str) -> Self {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let (addr, name) = (daemon.addr, name.to_owned());
        let thread = std::thread::spawn(move || {
            let mut asked = 0;
            let mut wrong = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                let a = ask_udp(addr, &query(&name, RecordType::A, false));
                asked += 1;
                let ips: Vec<RData> = a.answers.iter().map(|r| r.data.clone()).collect();
                if a.metadata.response_code != ResponseCode::NoError
                    || ips != vec![RData::A(std::net::Ipv4Addr::UNSPECIFIED.into())]
                {
                    wrong.push(format!("{:?} {ips:?}", a.metadata.response_code));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (asked, wrong)
        });
        Self {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops and asserts that every answer was the sinkhole; how many were asked.
    pub(crate) fn finish(mut self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let (asked, wrong) = self.thread.take().expect("running").join().expect("prober");
        assert!(
            wrong.is_empty(),
            "{} of {asked} answers were not the sinkhole: {wrong:?}",
            wrong.len()
        );
        asked
    }
}
