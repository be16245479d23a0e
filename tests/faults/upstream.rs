//! Upstream faults: dead, refusing, flapping, garbling or forging upstreams.

use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use super::{assert_blocked, closed_udp_port, count_lines, start, upstream};
use crate::support::dns::{ask_udp, ede, query, zone, TestUpstream};

#[test]
fn an_upstream_that_stops_answering_is_one_warn_and_its_return_one_info() {
    let up = upstream();
    let daemon = start(
        &[up.url()],
        "[server]\nupstream_timeout_ms = 300\n[cache]\nenabled = false",
    );
    let err = daemon.stderr_until("answered the start-up probe (. NS) in ");
    assert!(
        err.contains(&format!("upstream {} answered", up.url())),
        "{err}"
    );

    up.set_silent(true);
    for i in 0..5 {
        let a = ask_udp(
            daemon.addr,
            &query(&format!("n{i}.example.test"), RecordType::A, false),
        );
        assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
        // Blocking does not wait for upstreams.
        assert_blocked(&daemon);
    }
    let warn = format!("upstream {} is not answering: no answer in ", up.url());
    let err = daemon.stderr_until(&warn);
    assert_eq!(
        count_lines(&err, "is not answering"),
        1,
        "one line, not one per query:\n{err}"
    );
    assert!(err.contains("WARN"), "{err}");

    up.set_silent(false);
    let a = ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    let err = daemon.stderr_until(&format!("upstream {} answers again (down for ", up.url()));
    assert_eq!(count_lines(&err, "answers again"), 1, "{err}");
}

#[test]
fn a_dead_upstream_at_start_is_a_warn_and_winsink_serves() {
    let dead = closed_udp_port();
    let daemon = start(std::slice::from_ref(&dead), "");
    let err = daemon.stderr_until(&format!(
        "upstream {dead} did not answer the start-up probe (. NS): connection refused"
    ));
    assert!(err.contains("WARN"), "{err}");
    assert_blocked(&daemon);
}

#[test]
fn a_closed_upstream_port_fails_at_once_instead_of_after_the_timeout() {
    let dead = closed_udp_port();
    // A budget far longer than the test: only the ICMP port unreachable can end it.
    let daemon = start(
        std::slice::from_ref(&dead),
        "[server]\nupstream_timeout_ms = 30000",
    );
    let started = Instant::now();
    let a = ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, true));
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let (code, text) = ede(&a).pop().expect("an EDE");
    assert_eq!(code, 22);
    assert!(text.contains("connection refused"), "{text}");
}

#[test]
fn a_closed_first_upstream_fails_over_to_the_second_at_once() {
    let dead = closed_udp_port();
    let good = upstream();
    let daemon = start(&[dead, good.url()], "[server]\nupstream_timeout_ms = 30000");
    // Asked before or after the start-up probe found the first one dead: either the
    // refusal ends its attempt at once, or it is passed over.
    let started = Instant::now();
    let a = ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let line = daemon.log_line();
    assert_eq!(line["upstream"], good.url(), "{line}");
}

#[test]
fn a_malformed_reply_with_the_right_id_does_not_end_the_exchange() {
    let up = upstream();
    let daemon = start(&[up.url()], "");
    let a = ask_udp(daemon.addr, &query(zone::GARBLED, RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NoError, "{a:?}");
    let ips: Vec<RData> = a.answers.iter().map(|r| r.data.clone()).collect();
    assert_eq!(
        ips,
        vec![RData::A(std::net::Ipv4Addr::new(192, 0, 2, 6).into())]
    );
    let err = daemon.stderr_until("discarded since the last such line");
    assert!(
        err.contains(&format!("upstream {}: 1 reply discarded", up.url())),
        "{err}"
    );
}

#[test]
fn forged_replies_are_counted_and_logged_at_most_once_a_minute() {
    let up = upstream();
    let daemon = start(&[up.url()], "[cache]\nenabled = false");
    for _ in 0..10 {
        let a = ask_udp(daemon.addr, &query(zone::SPOOFED, RecordType::A, false));
        let ips: Vec<RData> = a.answers.iter().map(|r| r.data.clone()).collect();
        assert_eq!(
            ips,
            vec![RData::A(std::net::Ipv4Addr::new(192, 0, 2, 5).into())]
        );
    }
    // 20 forgeries (a wrong id and a wrong question per query): one line.
    daemon.stderr_until("discarded since the last such line");
    std::thread::sleep(Duration::from_millis(200));
    let err = daemon.stderr();
    assert_eq!(
        count_lines(&err, "discarded since the last such line"),
        1,
        "{err}"
    );
    assert!(
        !err.contains("hickory"),
        "hickory's per-packet warnings: {err}"
    );
}

#[test]
fn a_failed_upstream_is_passed_over_while_another_answers() {
    let silent = TestUpstream::silent();
    let good = upstream();
    let daemon = start(
        &[silent.url(), good.url()],
        "[server]\nupstream_timeout_ms = 1000\n[cache]\nenabled = false",
    );
    // The start-up probe finds the first one dead: from then on queries go to the
    // second one straight away, though the first is first in the list.
    daemon.stderr_until(&format!(
        "upstream {} did not answer the start-up probe",
        silent.url()
    ));
    for i in 0..5 {
        let name = format!("next{i}.example.test");
        let a = ask_udp(daemon.addr, &query(&name, RecordType::A, false));
        assert_eq!(a.metadata.response_code, ResponseCode::NXDomain);
        assert_eq!(
            silent.count(&name, RecordType::A),
            0,
            "{name} went to the dead upstream"
        );
        let line = daemon.log_line();
        assert_eq!(line["upstream"], good.url(), "{line}");
    }
}

#[test]
fn a_passed_over_upstream_is_probed_again_and_comes_back_without_a_client_paying() {
    let flaky = TestUpstream::silent();
    let good = upstream();
    let daemon = start(
        &[flaky.url(), good.url()],
        "[server]\nupstream_timeout_ms = 500\n[cache]\nenabled = false",
    );
    daemon.stderr_until(&format!(
        "upstream {} did not answer the start-up probe",
        flaky.url()
    ));
    flaky.set_silent(false);
    // Nobody asks anything: the prober's `. NS` after the hold-down brings it back.
    let deadline = Instant::now() + Duration::from_secs(20);
    let back = format!("upstream {} answers again", flaky.url());
    while !daemon.stderr().contains(&back) {
        assert!(Instant::now() < deadline, "{}", daemon.stderr());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(flaky.total(), 0, "only probes reached it");
    // Preferred again (it is first in the list).
    let a = ask_udp(daemon.addr, &query(zone::WWW, RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
}
