//! DNS helpers for whole-binary tests: a test upstream, a `winsink run` process, a client.
//!
//! Everything binds `127.0.0.1:0` and every wait has a deadline, so a broken server
//! fails a test instead of hanging it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{opt::EdnsOption, A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

use super::process::{Process, Stdout};
pub(crate) use super::WAIT;

fn name(s: &str) -> Name {
    Name::from_ascii(s).expect("test name")
}

/// Names the test upstream serves (zone `example.test`, plus `blocked.test`).
pub(crate) mod zone {
    /// A 192.0.2.1, AAAA 2001:db8::1; other types NODATA.
    pub(crate) const WWW: &str = "www.example.test";
    /// CNAME mid → CNAME www → the www records.
    pub(crate) const ALIAS: &str = "alias.example.test";
    /// CNAME telemetry.blocked.test, A 192.0.2.9.
    pub(crate) const CDN: &str = "cdn.example.test";
    /// The CNAME target of `CDN`.
    pub(crate) const CDN_TARGET: &str = "telemetry.blocked.test";
    /// 40 TXT strings, too big for UDP.
    pub(crate) const BIG: &str = "big.example.test";
    /// A 192.0.2.7, answered after [`super::SLOW_DELAY`].
    pub(crate) const SLOW: &str = "slow.example.test";
    /// A 192.0.2.8, answered after [`super::SLOWER_DELAY`].
    pub(crate) const SLOWER: &str = "slower.example.test";
    /// Not in the zone: NXDOMAIN with the SOA.
    pub(crate) const MISSING: &str = "missing.example.test";
    /// A 192.0.2.5 over UDP, but first two forged replies: one with the wrong id, one
    /// with the wrong question, each claiming A 203.0.113.66.
    pub(crate) const SPOOFED: &str = "spoofed.example.test";
    /// Over UDP, an answer whose owner name is a compression pointer past the end.
    pub(crate) const MALFORMED: &str = "malformed.example.test";
    /// A 192.0.2.6 over UDP, but first, with the query's id, 3 garbage bytes and the
    /// answer cut short; the real answer follows [`super::GARBLED_DELAY`] later.
    pub(crate) const GARBLED: &str = "garbled.example.test";
}

/// How long the upstream waits before answering [`zone::SLOW`].
pub(crate) const SLOW_DELAY: Duration = Duration::from_millis(300);

/// How long the upstream waits before the real answer to [`zone::GARBLED`].
pub(crate) const GARBLED_DELAY: Duration = Duration::from_millis(100);

/// How long the upstream waits before answering [`zone::SLOWER`].
pub(crate) const SLOWER_DELAY: Duration = Duration::from_secs(2);

struct UpstreamState {
    silent: AtomicBool,
    /// What [`TestUpstream::answering_every_a`] answers outside the zone.
    every_a: Option<Ipv4Addr>,
    stop: AtomicBool,
    counts: Mutex<HashMap<(String, RecordType), usize>>,
}

/// An authoritative test upstream on 127.0.0.1, UDP and TCP on one port. It counts the
/// queries it receives and can stay silent.
pub(crate) struct TestUpstream {
    /// Where it listens.
    pub(crate) addr: SocketAddr,
    state: Arc<UpstreamState>,
    threads: Vec<JoinHandle<()>>,
}

impl TestUpstream {
    /// An upstream that answers from its zone and REFUSED outside it.
    pub(crate) fn start() -> Self {
        Self::spawn(false, None)
    }

    /// An upstream that receives and counts queries but never answers.
    pub(crate) fn silent() -> Self {
        Self::spawn(true, None)
    }

    /// An upstream that answers from its zone, and outside it every A question with `ip`
    /// (TTL 1) and every other question with NOERROR and no answer: a stand-in for the
    /// Internet, for the names of the shipped catalog.
    pub(crate) fn answering_every_a(ip: Ipv4Addr) -> Self {
        Self::spawn(false, Some(ip))
    }

    fn spawn(silent: bool, every_a: Option<Ipv4Addr>) -> Self {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("addr");
        let state = Arc::new(UpstreamState {
            silent: AtomicBool::new(silent),
            every_a,
            stop: AtomicBool::new(false),
            counts: Mutex::new(HashMap::new()),
        });
        udp.set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        tcp.set_nonblocking(true).expect("nonblocking");
        let s = state.clone();
        let udp_thread = std::thread::spawn(move || serve_udp(&udp, &s));
        let s = state.clone();
        let tcp_thread = std::thread::spawn(move || serve_tcp(&tcp, &s));
        Self {
            addr,
            state,
            threads: vec![udp_thread, tcp_thread],
        }
    }

    /// `udp://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> String {
        format!("udp://{}", self.addr)
    }

    /// `tcp://127.0.0.1:PORT`.
    pub(crate) fn tcp_url(&self) -> String {
        format!("tcp://{}", self.addr)
    }

    /// Queries received for `qname` (any case, no trailing dot) and `rtype`, UDP and TCP.
    pub(crate) fn count(&self, qname: &str, rtype: RecordType) -> usize {
        let counts = self.state.counts.lock().expect("counts");
        counts
            .get(&(qname.to_ascii_lowercase(), rtype))
            .copied()
            .unwrap_or(0)
    }

    /// Stops answering (`true`) or answers again (`false`); queries are counted either way.
    pub(crate) fn set_silent(&self, silent: bool) {
        self.state.silent.store(silent, Ordering::Relaxed);
    }

    /// All queries received, except winsink's upstream probes (`. NS`).
    pub(crate) fn total(&self) -> usize {
        let counts = self.state.counts.lock().expect("counts");
        let probes = counts
            .get(&(String::new(), RecordType::NS))
            .copied()
            .unwrap_or(0);
        counts.values().sum::<usize>() - probes
    }
}

impl Drop for TestUpstream {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// A UDP socket and a TCP listener on the same free port.
fn bind_pair() -> (UdpSocket, TcpListener) {
    for _ in 0..50 {
        let udp = UdpSocket::bind("127.0.0.1:0").expect("bind udp");
        let port = udp.local_addr().expect("addr").port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)) {
            return (udp, tcp);
        }
    }
    panic!("no port free for both UDP and TCP");
}

fn record_query(state: &UpstreamState, m: &Message) {
    if let Some(q) = m.queries.first() {
        let n = q
            .name()
            .to_ascii()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        *state
            .counts
            .lock()
            .expect("counts")
            .entry((n, q.query_type()))
            .or_default() += 1;
    }
}

fn serve_udp(sock: &UdpSocket, state: &Arc<UpstreamState>) {
    let mut buf = [0u8; 4096];
    while !state.stop.load(Ordering::Relaxed) {
        let Ok((len, peer)) = sock.recv_from(&mut buf) else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..len]) else {
            continue;
        };
        record_query(state, &query);
        if state.silent.load(Ordering::Relaxed) {
            continue;
        }
        let Some((response, mut delay)) = respond(&query, state.every_a) else {
            continue;
        };
        let limit = query
            .edns
            .as_ref()
            .map_or(512, |e| usize::from(e.max_payload().max(512)));
        let mut bytes = response.to_vec().expect("encode");
        if bytes.len() > limit {
            let mut t = response.clone();
            t.answers.clear();
            t.authorities.clear();
            t.metadata.truncation = true;
            bytes = t.to_vec().expect("encode");
        }
        if let Some(q) = query.queries.first() {
            if q.name()
                .to_ascii()
                .eq_ignore_ascii_case("spoofed.example.test.")
            {
                for forged in forgeries(&query) {
                    let _ = sock.send_to(&forged, peer);
                }
            }
            if q.name()
                .to_ascii()
                .eq_ignore_ascii_case("malformed.example.test.")
            {
                bytes = pointer_past_the_end(&query);
            }
            if q.name()
                .to_ascii()
                .eq_ignore_ascii_case("garbled.example.test.")
            {
                let _ = sock.send_to(&[bytes[0], bytes[1], 0], peer);
                let _ = sock.send_to(&bytes[..bytes.len() - 3], peer);
                delay = Some(GARBLED_DELAY);
            }
        }
        match delay {
            None => {
                let _ = sock.send_to(&bytes, peer);
            }
            Some(d) => {
                let sock = sock.try_clone().expect("clone");
                std::thread::spawn(move || {
                    std::thread::sleep(d);
                    let _ = sock.send_to(&bytes, peer);
                });
            }
        }
    }
}

fn serve_tcp(listener: &TcpListener, state: &Arc<UpstreamState>) {
    while !state.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((stream, _)) => {
                let state = state.clone();
                std::thread::spawn(move || serve_tcp_conn(stream, &state));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

fn serve_tcp_conn(mut stream: TcpStream, state: &UpstreamState) {
    let _ = stream.set_nonblocking(false);
    // Answers are written whole, one at a time, from this thread or a slow answer's.
    let Ok(writer) = stream.try_clone() else {
        return;
    };
    let writer = Arc::new(Mutex::new(writer));
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    loop {
        if state.stop.load(Ordering::Relaxed) {
            return;
        }
        let mut len = [0u8; 2];
        match stream.read_exact(&mut len) {
            Ok(()) => {}
            Err(e)
                if e.kind() == std::io::ErrorKind::WouldBlock
                    || e.kind() == std::io::ErrorKind::TimedOut =>
            {
                continue
            }
            Err(_) => return,
        }
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        if stream.read_exact(&mut buf).is_err() {
            return;
        }
        let Ok(query) = Message::from_vec(&buf) else {
            return;
        };
        record_query(state, &query);
        if state.silent.load(Ordering::Relaxed) {
            continue;
        }
        let Some((response, delay)) = respond(&query, state.every_a) else {
            continue;
        };
        let bytes = response.to_vec().expect("encode");
        let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
        frame.extend_from_slice(&bytes);
        match delay {
            None => {
                if writer.lock().expect("writer").write_all(&frame).is_err() {
                    return;
                }
            }
            // As a real server does, a slow answer does not hold up the next queries on
            // the connection: it is written when ready, from a thread of its own.
            Some(d) => {
                let writer = writer.clone();
                std::thread::spawn(move || {
                    std::thread::sleep(d);
                    let _ = writer.lock().expect("writer").write_all(&frame);
                });
            }
        }
    }
}

/// An answer to `query` with one A record whose owner name points past the message.
fn pointer_past_the_end(query: &Message) -> Vec<u8> {
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    m.queries = query.queries.clone();
    let mut bytes = m.to_vec().expect("encode");
    bytes[6..8].copy_from_slice(&1u16.to_be_bytes());
    bytes.extend_from_slice(&[0xC0, 0xFF, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 66]);
    bytes
}

/// Replies to `query` that must not be believed: a wrong id, then a wrong question.
fn forgeries(query: &Message) -> Vec<Vec<u8>> {
    let forged = |id: u16, qname: &str| {
        let mut m = Message::response(id, OpCode::Query);
        let n = name(qname);
        m.add_query(Query::query(n.clone(), RecordType::A));
        m.add_answer(Record::from_rdata(
            n,
            300,
            RData::A(A(Ipv4Addr::new(203, 0, 113, 66))),
        ));
        m.to_vec().expect("encode")
    };
    vec![
        forged(query.metadata.id.wrapping_add(1), "spoofed.example.test."),
        forged(query.metadata.id, "other.example.test."),
    ]
}

fn soa_record() -> Record {
    let soa = SOA::new(
        name("ns.example.test."),
        name("hostmaster.example.test."),
        1,
        3600,
        600,
        86400,
        60,
    );
    Record::from_rdata(name("example.test."), 300, RData::SOA(soa))
}

/// The upstream's answer to `query`, and how long to wait before sending it.
fn respond(query: &Message, every_a: Option<Ipv4Addr>) -> Option<(Message, Option<Duration>)> {
    let q = query.queries.first()?.clone();
    let mut m = Message::response(query.metadata.id, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    // As a validating resolver whose zone is signed: AD only for a query that asks for
    // it with AD or DO (RFC 6840 §5.7).
    m.metadata.authentic_data =
        query.metadata.authentic_data || query.edns.as_ref().is_some_and(|e| e.flags().dnssec_ok);
    m.add_query(q.clone());
    if query.edns.is_some() {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    let owner = q.name().clone();
    let lower = owner.to_ascii().trim_end_matches('.').to_ascii_lowercase();
    let rtype = q.query_type();
    let www = |owner: &Name, m: &mut Message| match rtype {
        RecordType::A => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 1))),
            ));
        }
        RecordType::AAAA => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::AAAA(AAAA("2001:db8::1".parse::<Ipv6Addr>().expect("v6"))),
            ));
        }
        _ => {
            m.add_authority(soa_record());
        }
    };
    let mut delay = None;
    match lower.as_str() {
        zone::WWW => www(&owner, &mut m),
        zone::ALIAS => {
            let mid = name("mid.example.test.");
            let target = name("www.example.test.");
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::CNAME(CNAME(mid.clone())),
            ));
            m.add_answer(Record::from_rdata(
                mid,
                300,
                RData::CNAME(CNAME(target.clone())),
            ));
            www(&target, &mut m);
        }
        zone::CDN => {
            let target = name("telemetry.blocked.test.");
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::CNAME(CNAME(target.clone())),
            ));
            if rtype == RecordType::A {
                m.add_answer(Record::from_rdata(
                    target,
                    300,
                    RData::A(A(Ipv4Addr::new(192, 0, 2, 9))),
                ));
            }
        }
        zone::BIG if rtype == RecordType::TXT => {
            for i in 0..40 {
                let text = format!("{i:02} {}", "x".repeat(60));
                m.add_answer(Record::from_rdata(
                    owner.clone(),
                    300,
                    RData::TXT(TXT::new(vec![text])),
                ));
            }
        }
        zone::SPOOFED if rtype == RecordType::A => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 5))),
            ));
        }
        zone::GARBLED if rtype == RecordType::A => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 6))),
            ));
        }
        zone::SLOW if rtype == RecordType::A => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 7))),
            ));
            delay = Some(SLOW_DELAY);
        }
        zone::SLOWER if rtype == RecordType::A => {
            m.add_answer(Record::from_rdata(
                owner.clone(),
                300,
                RData::A(A(Ipv4Addr::new(192, 0, 2, 8))),
            ));
            delay = Some(SLOWER_DELAY);
        }
        // winsink's upstream probe.
        "" if rtype == RecordType::NS => {
            m.metadata.authoritative = false;
            m.add_answer(Record::from_rdata(
                Name::root(),
                3600,
                RData::NS(NS(name("ns.example.test."))),
            ));
        }
        n if n.ends_with(".example.test") || n == "example.test" => {
            m.metadata.response_code = ResponseCode::NXDomain;
            m.add_authority(soa_record());
        }
        _ => match every_a {
            Some(ip) if rtype == RecordType::A => {
                m.metadata.authoritative = false;
                m.add_answer(Record::from_rdata(owner.clone(), 1, RData::A(A(ip))));
            }
            Some(_) => m.metadata.authoritative = false,
            None => m.metadata.response_code = ResponseCode::Refused,
        },
    }
    Some((m, delay))
}

/// A query for `qname` of type `rtype`, with RD set and, if `edns`, an OPT record (4096).
pub(crate) fn query(qname: &str, rtype: RecordType, edns: bool) -> Message {
    let mut m = Message::query();
    m.metadata.recursion_desired = true;
    let n = if qname.ends_with('.') {
        name(qname)
    } else {
        name(&format!("{qname}."))
    };
    m.add_query(Query::query(n, rtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(4096);
        m.set_edns(e);
    }
    m
}

/// Sends `bytes` over UDP and returns the answer's bytes.
pub(crate) fn udp_exchange_raw(server: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let sock = UdpSocket::bind("127.0.0.1:0").expect("bind");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");
    sock.send_to(bytes, server).expect("send");
    let mut buf = vec![0u8; 65_535];
    let (len, _) = sock.recv_from(&mut buf).expect("no UDP answer in time");
    buf.truncate(len);
    buf
}

/// Asks `server` over UDP.
pub(crate) fn ask_udp(server: SocketAddr, m: &Message) -> Message {
    let answer = Message::from_vec(&udp_exchange_raw(server, &m.to_vec().expect("encode")))
        .expect("answer parses");
    assert_eq!(answer.metadata.id, m.metadata.id, "answer id");
    answer
}

/// Asks `server` over TCP.
pub(crate) fn ask_tcp(server: SocketAddr, m: &Message) -> Message {
    let mut stream = TcpStream::connect_timeout(&server, WAIT).expect("connect");
    stream.set_read_timeout(Some(WAIT)).expect("timeout");
    let bytes = m.to_vec().expect("encode");
    let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    stream.write_all(&frame).expect("send");
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).expect("no TCP answer in time");
    let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
    stream.read_exact(&mut buf).expect("TCP answer body");
    let answer = Message::from_vec(&buf).expect("answer parses");
    assert_eq!(answer.metadata.id, m.metadata.id, "answer id");
    answer
}

/// The Extended DNS Errors of an answer: (info code, text).
pub(crate) fn ede(m: &Message) -> Vec<(u16, String)> {
    let Some(edns) = &m.edns else {
        return Vec::new();
    };
    edns.options()
        .as_ref()
        .iter()
        .filter_map(|(_, opt)| match opt {
            EdnsOption::Unknown(15, data) if data.len() >= 2 => Some((
                u16::from_be_bytes([data[0], data[1]]),
                String::from_utf8_lossy(&data[2..]).into_owned(),
            )),
            _ => None,
        })
        .collect()
}

/// How to start a [`Daemon`]: its config, its flags, what surrounds the process.
/// [`Daemon::start`]`(config, extra)` is `Launch::new(config).args(extra).start()`; a test
/// that needs more says so here (one method per need) rather than spawning its own.
pub(crate) struct Launch {
    dir: tempfile::TempDir,
    config: PathBuf,
    args: Vec<String>,
    listen_flag: bool,
    stdout: StdoutUse,
    open_files: Option<(u32, &'static str)>,
    env: Vec<(String, String)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum StdoutUse {
    Read,
    Stalled,
    Discard,
}

impl Launch {
    /// `config` as `winsink.toml` in a fresh folder.
    pub(crate) fn new(config: &str) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("winsink.toml");
        std::fs::write(&path, config).expect("write config");
        Self::in_dir(dir, path)
    }

    /// The shipped `config/winsink.toml` and the catalog it names, copied into a fresh
    /// folder in the repository's layout (so its relative catalog path works unchanged),
    /// with its `listen` set to `127.0.0.1:0` in the file and no `--listen` flag: a flag
    /// would replace the file's value at every reload, where a test may edit it.
    pub(crate) fn shipped() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = super::repo_root();
        for file in ["config/winsink.toml", "policies/windows11-enterprise.toml"] {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().expect("folder")).expect("mkdir");
            std::fs::copy(root.join(file), &to).expect("copy the shipped file");
        }
        let path = dir.path().join("config/winsink.toml");
        let text = std::fs::read_to_string(&path).expect("read config");
        assert!(text.contains(SHIPPED_LISTEN), "{text}");
        std::fs::write(&path, text.replacen(SHIPPED_LISTEN, LISTEN_ANY_PORT, 1))
            .expect("write config");
        let mut launch = Self::in_dir(dir, path);
        launch.listen_flag = false;
        launch
    }

    fn in_dir(dir: tempfile::TempDir, config: PathBuf) -> Self {
        Self {
            dir,
            config,
            args: Vec::new(),
            listen_flag: true,
            stdout: StdoutUse::Read,
            open_files: None,
            env: Vec::new(),
        }
    }

    /// Another file in the config's folder, written before the start (a catalog or a
    /// list the config names by a relative path).
    pub(crate) fn file(self, name: &str, contents: &str) -> Self {
        let path = self.config.with_file_name(name);
        std::fs::write(&path, contents).expect("write a file beside the config");
        self
    }

    /// More `winsink run` arguments. Without `--http` or `--log-format` among them, the
    /// daemon gets `--http 127.0.0.1:0` and `--log-format json`.
    pub(crate) fn args(mut self, extra: &[&str]) -> Self {
        self.args.extend(extra.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Nobody reads winsink's stdout: a query log stalled as behind a pipe whose reader
    /// hangs.
    pub(crate) fn stalled_stdout(mut self) -> Self {
        self.stdout = StdoutUse::Stalled;
        self
    }

    /// winsink's stdout is discarded (for a test that reads none of it).
    pub(crate) fn discard_stdout(mut self) -> Self {
        self.stdout = StdoutUse::Discard;
        self
    }

    /// The soft limit on open files set to `limit` (as systemd's default of 1024 would
    /// be); with `hard`, the hard limit too, so winsink cannot raise it.
    pub(crate) fn open_files(mut self, limit: u32, hard: bool) -> Self {
        self.open_files = Some((limit, if hard { "-n" } else { "-Sn" }));
        self
    }

    /// `name=value` in winsink's environment (`SSL_CERT_FILE`, the trusted roots).
    pub(crate) fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Runs `winsink run --config CONFIG [--listen 127.0.0.1:0] [--log-format json]
    /// [--http 127.0.0.1:0] ARGS...` and waits until it reports its DNS address.
    pub(crate) fn start(self) -> Daemon {
        let mut command = match self.open_files {
            None => super::winsink(),
            Some((n, which)) => {
                // The shell lowers its limit and becomes winsink (same process id).
                let mut c = std::process::Command::new("sh");
                c.current_dir(super::repo_root()).args([
                    "-c",
                    &format!("ulimit {which} {n} && exec \"$0\" \"$@\""),
                    env!("CARGO_BIN_EXE_winsink"),
                ]);
                c
            }
        };
        let given = |flag: &str| self.args.iter().any(|a| a == flag);
        command.arg("run").arg("--config").arg(&self.config);
        if self.listen_flag {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        if !given("--log-format") {
            command.args(["--log-format", "json"]);
        }
        if !given("--http") {
            command.args(["--http", "127.0.0.1:0"]);
        }
        command
            .args(&self.args)
            // Its record of what it loaded (for `winsink check`) stays in its folder,
            // `dir()`.
            .env("XDG_STATE_HOME", self.dir.path())
            .env_remove("STATE_DIRECTORY")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        let mut process = Process::spawn(
            command,
            if self.stdout == StdoutUse::Discard {
                Stdout::Null
            } else {
                Stdout::Piped
            },
        );
        let (line_tx, lines) = mpsc::channel();
        let (stdout_done, stalled_stdout) = match self.stdout {
            StdoutUse::Discard => (None, None),
            StdoutUse::Stalled => (None, Some(process.take_stdout())),
            StdoutUse::Read => {
                let out_pipe = process.take_stdout();
                let reader = std::thread::spawn(move || {
                    for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                        if line_tx.send(line).is_err() {
                            return;
                        }
                    }
                });
                (Some(reader), None)
            }
        };
        let addr = process.addr();
        let http = process.http_addr();
        Daemon {
            process,
            addr,
            http,
            lines,
            stdout_done,
            _stalled_stdout: stalled_stdout,
            config: self.config,
            _dir: self.dir,
        }
    }
}

/// `listen` in the shipped config, and what [`Launch::shipped`] puts there instead.
pub(crate) const SHIPPED_LISTEN: &str = r#"listen = ["127.0.0.1:5353", "[::1]:5353"]"#;
/// See [`SHIPPED_LISTEN`].
pub(crate) const LISTEN_ANY_PORT: &str = r#"listen = ["127.0.0.1:0"]"#;

/// A running `winsink run` (see [`Launch`]), killed on drop. Query-log lines are read
/// from its stdout.
pub(crate) struct Daemon {
    process: Process,
    /// Where it serves DNS (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// Where it serves HTTP (`/metrics`, the API), unless `--http off` was given.
    pub(crate) http: Option<SocketAddr>,
    lines: mpsc::Receiver<String>,
    stdout_done: Option<JoinHandle<()>>,
    /// Held open and never read, for [`Launch::stalled_stdout`].
    _stalled_stdout: Option<std::process::ChildStdout>,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Writes `config` to a fresh folder and runs `winsink run --config it --listen
    /// 127.0.0.1:0 --http 127.0.0.1:0 --log-format json EXTRA...` (without the `--http`
    /// or `--log-format` default when EXTRA gives its own).
    pub(crate) fn start(config: &str, extra: &[&str]) -> Self {
        Launch::new(config).args(extra).start()
    }

    /// Like [`Daemon::start`], but nobody reads winsink's stdout (see
    /// [`Launch::stalled_stdout`]).
    pub(crate) fn start_stalled(config: &str, extra: &[&str]) -> Self {
        Launch::new(config).args(extra).stalled_stdout().start()
    }

    /// Like [`Daemon::start`], with the soft limit on open files set to `limit`.
    pub(crate) fn start_with_open_files(config: &str, extra: &[&str], limit: u32) -> Self {
        Launch::new(config)
            .args(extra)
            .open_files(limit, false)
            .start()
    }

    /// Like [`Daemon::start`], with the soft *and hard* limits on open files set to
    /// `limit`: winsink cannot raise it.
    pub(crate) fn start_with_hard_open_files(config: &str, extra: &[&str], limit: u32) -> Self {
        Launch::new(config)
            .args(extra)
            .open_files(limit, true)
            .start()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// The folder it was started in (its state folder, and where a test may put more
    /// files; the config file is in it, see [`Daemon::config_path`]).
    pub(crate) fn dir(&self) -> &Path {
        self._dir.path()
    }

    /// Its config file.
    pub(crate) fn config_path(&self) -> PathBuf {
        self.config.clone()
    }

    /// Replaces the first `from` in its config with `to`, saved the way editors save: a
    /// temporary file renamed over the original.
    pub(crate) fn edit(&self, from: &str, to: &str) {
        let text = std::fs::read_to_string(&self.config).expect("read config");
        assert!(text.contains(from), "the config has no `{from}`:\n{text}");
        super::save(&self.config, &text.replacen(from, to, 1));
    }

    /// The HTTP address, which the test expects to be on.
    pub(crate) fn http(&self) -> SocketAddr {
        self.http.unwrap_or_else(|| {
            panic!(
                "winsink reported no HTTP address; stderr:\n{}",
                self.stderr()
            )
        })
    }

    /// The next query-log line, parsed.
    pub(crate) fn log_line(&self) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(WAIT)
            .unwrap_or_else(|_| panic!("no query-log line in time; stderr:\n{}", self.stderr()));
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
    }

    /// The next raw stdout line.
    pub(crate) fn raw_line(&self) -> String {
        self.lines
            .recv_timeout(WAIT)
            .expect("no stdout line in time")
    }

    /// The next raw stdout line if one is there already.
    pub(crate) fn try_raw_line(&self) -> Option<String> {
        self.lines.try_recv().ok()
    }

    /// What it wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.process.stderr()
    }

    /// Waits until its stderr contains `needle` and returns all of it; panics with the
    /// stderr after [`WAIT`].
    pub(crate) fn stderr_until(&self, needle: &str) -> String {
        self.process.stderr_until(needle)
    }

    /// Sends the signal `name` (`HUP`, `USR1`, …).
    pub(crate) fn signal(&self, name: &str) {
        self.process.signal(name);
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        self.process.running()
    }

    /// Sends SIGTERM and waits for the exit; returns the status and the rest of stdout.
    pub(crate) fn terminate(&mut self) -> (ExitStatus, Vec<String>) {
        let status = self.process.terminate();
        if let Some(t) = self.stdout_done.take() {
            let _ = t.join();
        }
        (status, self.lines.try_iter().collect())
    }
}

/// Asks `server` for `qname` A over UDP until `want` holds of the answer; returns how
/// long it took. Panics after [`WAIT`] with the last answer.
pub(crate) fn ask_until(
    server: SocketAddr,
    qname: &str,
    want: impl Fn(&Message) -> bool,
) -> Duration {
    let started = Instant::now();
    loop {
        let answer = ask_udp(server, &query(qname, RecordType::A, true));
        if want(&answer) {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < WAIT,
            "{qname} still answered {answer:?} after {WAIT:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The A addresses of an answer.
pub(crate) fn a_records(m: &Message) -> Vec<Ipv4Addr> {
    m.answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::A(A(ip)) => Some(*ip),
            _ => None,
        })
        .collect()
}

/// Whether `m` is the null-ip sinkhole answer to an A question (NOERROR, A 0.0.0.0).
pub(crate) fn is_sinkholed(m: &Message) -> bool {
    m.metadata.response_code == ResponseCode::NoError && a_records(m) == [Ipv4Addr::UNSPECIFIED]
}

/// The loopback address of a client as the log writes it.
pub(crate) fn loopback() -> IpAddr {
    IpAddr::V4(Ipv4Addr::LOCALHOST)
}

/// Checks a response is an answer to `q`.
pub(crate) fn assert_answers(q: &Message, a: &Message) {
    assert_eq!(a.metadata.message_type, MessageType::Response);
    assert_eq!(a.queries, q.queries, "question echoed");
}
