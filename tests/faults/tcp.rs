//! TCP faults: one client holding every connection, a descriptor limit too low for the
//! configured connections, a slow query ahead of a quick one on one connection.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::RecordType;

use super::{assert_sinkholed, count_lines, start, upstream, BLOCKED};
use crate::support::dns::{ask_udp, query, zone, Daemon, WAIT};

/// Raises this test process's own open-files limit to `n`: past the hard limit where
/// it may (root, as in CI), else to the hard limit.
fn allow_open_files(n: u64) {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < n && setrlimit(Resource::RLIMIT_NOFILE, n, n.max(hard)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, n.min(hard), hard).expect("setrlimit");
    }
}

/// `n` connections from 127.0.0.1 that send nothing and are kept open.
fn hold_connections(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| TcpStream::connect_timeout(&addr, WAIT).expect("connect"))
        .collect()
}

fn frame(m: &Message) -> Vec<u8> {
    let bytes = m.to_vec().expect("encode");
    let mut f = (bytes.len() as u16).to_be_bytes().to_vec();
    f.extend_from_slice(&bytes);
    f
}

fn read_answer(s: &mut TcpStream) -> Message {
    let mut len = [0u8; 2];
    s.read_exact(&mut len).expect("an answer");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    s.read_exact(&mut buf).expect("the answer's body");
    Message::from_vec(&buf).expect("parses")
}

/// Asks `name` over TCP from the address `from` (another loopback address).
fn ask_tcp_from(from: &str, server: SocketAddr, name: &str) -> Message {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    let local: SocketAddr = format!("{from}:0").parse().expect("addr");
    s.bind(&local.into())
        .expect("bind a second loopback address");
    s.connect_timeout(&server.into(), WAIT).expect("connect");
    let mut s: TcpStream = s.into();
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let q = query(name, RecordType::A, false);
    s.write_all(&frame(&q)).expect("send");
    let a = read_answer(&mut s);
    assert_eq!(a.metadata.id, q.metadata.id);
    a
}

#[test]
fn one_address_holding_1500_connections_does_not_starve_another() {
    allow_open_files(4096);
    let up = upstream();
    let daemon = start(&[up.url()], "");
    let held = hold_connections(daemon.addr, 1500);
    // Another client still gets its answers, over TCP and UDP.
    let a = ask_tcp_from("127.0.0.2", daemon.addr, BLOCKED);
    assert_sinkholed(&a);
    let a = ask_tcp_from("127.0.0.2", daemon.addr, zone::WWW);
    assert_eq!(a.metadata.response_code, ResponseCode::NoError);
    let err = daemon.stderr_until("from clients that held 32 already");
    assert!(err.contains("the last from 127.0.0.1"), "{err}");
    // Said once, not once per connection.
    assert_eq!(count_lines(&err, "tcp: "), 1, "{err}");
    // The connections over the per-client limit were closed, not parked.
    let mut closed = 0;
    for mut s in held {
        s.set_read_timeout(Some(Duration::from_millis(1)))
            .expect("timeout");
        if matches!(s.read(&mut [0u8; 1]), Ok(0)) {
            closed += 1;
        }
    }
    assert!(closed >= 1500 - 32 - 100, "{closed} of 1500 closed");
}

#[test]
fn at_the_connection_limit_the_longest_idle_connection_makes_room() {
    allow_open_files(4096);
    let up = upstream();
    let daemon = start(
        &[up.url()],
        "[server]\ntcp_max_connections = 100\ntcp_max_connections_per_client = 10000",
    );
    let held = hold_connections(daemon.addr, 1500);
    let a = ask_tcp_from("127.0.0.2", daemon.addr, BLOCKED);
    assert_sinkholed(&a);
    let err = daemon.stderr_until("idle connections closed to make room (100 open");
    assert!(err.contains("WARN"), "{err}");
    // The oldest went first.
    let mut first = held.into_iter().next().expect("one");
    first.set_read_timeout(Some(WAIT)).expect("timeout");
    assert_eq!(
        first.read(&mut [0u8; 1]).unwrap_or(0),
        0,
        "the oldest is closed"
    );
}

#[test]
fn a_slow_cache_miss_does_not_hold_back_a_sinkhole_answer_behind_it_on_one_connection() {
    let up = upstream();
    let daemon = start(&[up.url()], "");
    let mut s = TcpStream::connect_timeout(&daemon.addr, WAIT).expect("connect");
    s.set_read_timeout(Some(WAIT)).expect("timeout");
    let slow = query(zone::SLOW, RecordType::A, false);
    let blocked = query(BLOCKED, RecordType::A, false);
    let mut both = frame(&slow);
    both.extend_from_slice(&frame(&blocked));
    let started = Instant::now();
    s.write_all(&both).expect("send both at once");
    let first = read_answer(&mut s);
    assert_eq!(
        first.metadata.id, blocked.metadata.id,
        "the quick answer comes first"
    );
    assert_sinkholed(&first);
    assert!(
        started.elapsed() < crate::support::dns::SLOW_DELAY,
        "{:?}",
        started.elapsed()
    );
    let second = read_answer(&mut s);
    assert_eq!(second.metadata.id, slow.metadata.id);
    assert_eq!(second.metadata.response_code, ResponseCode::NoError);
}

#[test]
fn a_low_open_files_limit_caps_tcp_so_cache_misses_keep_their_sockets() {
    allow_open_files(4096);
    let up = upstream();
    let daemon = Daemon::start_with_hard_open_files(
        &super::config("[server]\ntcp_max_connections_per_client = 10000"),
        &["--upstream", &up.url()],
        1024,
    );
    let err = daemon.stderr_until("open files limit is 1024: serving at most ");
    assert!(
        err.contains("384 TCP connections (tcp_max_connections = 1024)"),
        "{err}"
    );
    // More connections than the process has descriptors.
    let _held = hold_connections(daemon.addr, 1100);
    for i in 0..20 {
        let a = ask_udp(
            daemon.addr,
            &query(&format!("n{i}.example.test"), RecordType::A, false),
        );
        assert_eq!(
            a.metadata.response_code,
            ResponseCode::NXDomain,
            "miss {i}: {a:?}"
        );
    }
    assert_sinkholed(&ask_tcp_from("127.0.0.2", daemon.addr, BLOCKED));
}
