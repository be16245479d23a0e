//! DNS helpers for whole-binary tests: a test upstream, a `winsink run` process, a client.
//!
//! Everything binds `127.0.0.1:0` and every wait has a deadline, so a broken server
//! fails a test instead of hanging it.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::process::{Child, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{opt::EdnsOption, A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};

/// How long any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

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
    /// An upstream that answers from its zone.
    pub(crate) fn start() -> Self {
        Self::spawn(false)
    }

    /// An upstream that receives and counts queries but never answers.
    pub(crate) fn silent() -> Self {
        Self::spawn(true)
    }

    fn spawn(silent: bool) -> Self {
        let (udp, tcp) = bind_pair();
        let addr = udp.local_addr().expect("addr");
        let state = Arc::new(UpstreamState {
            silent: AtomicBool::new(silent),
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
        let Some((response, mut delay)) = respond(&query) else {
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
        let Some((response, delay)) = respond(&query) else {
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
fn respond(query: &Message) -> Option<(Message, Option<Duration>)> {
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
        _ => m.metadata.response_code = ResponseCode::Refused,
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

/// A running `winsink run`, killed on drop. Query-log lines are read from its stdout.
pub(crate) struct Daemon {
    child: Child,
    /// Where it serves DNS (UDP and TCP).
    pub(crate) addr: SocketAddr,
    /// Where it serves HTTP (`/metrics`, the API), unless `--http off` was given.
    pub(crate) http: Option<SocketAddr>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
    stdout_done: Option<JoinHandle<()>>,
    /// Held open and never read, for [`Daemon::start_stalled`].
    _stalled_stdout: Option<std::process::ChildStdout>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    /// Writes `config` to a fresh folder and runs `winsink run --config it --listen
    /// 127.0.0.1:0 --http 127.0.0.1:0 --log-format json EXTRA...` (without the `--http`
    /// or `--log-format` default when EXTRA gives its own).
    pub(crate) fn start(config: &str, extra: &[&str]) -> Self {
        Self::spawn(config, extra, true, None)
    }

    /// Like [`Daemon::start`], but nobody reads winsink's stdout: a query log stalled as
    /// behind a pipe whose reader hangs.
    pub(crate) fn start_stalled(config: &str, extra: &[&str]) -> Self {
        Self::spawn(config, extra, false, None)
    }

    /// Like [`Daemon::start`], with the soft limit on open files set to `limit` (as
    /// systemd's default of 1024 would be).
    pub(crate) fn start_with_open_files(config: &str, extra: &[&str], limit: u32) -> Self {
        Self::spawn(config, extra, true, Some((limit, "-Sn")))
    }

    /// Like [`Daemon::start`], with the soft *and hard* limits on open files set to
    /// `limit`: winsink cannot raise it.
    pub(crate) fn start_with_hard_open_files(config: &str, extra: &[&str], limit: u32) -> Self {
        Self::spawn(config, extra, true, Some((limit, "-n")))
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The folder of its config file (`winsink.toml`), where a test may put more files.
    pub(crate) fn dir(&self) -> &std::path::Path {
        self._dir.path()
    }

    /// Its config file.
    pub(crate) fn config_path(&self) -> std::path::PathBuf {
        self._dir.path().join("winsink.toml")
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

    fn spawn(
        config: &str,
        extra: &[&str],
        read_stdout: bool,
        open_files: Option<(u32, &str)>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("winsink.toml");
        std::fs::write(&path, config).expect("write config");
        let mut command = match open_files {
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
        let mut child = command
            .arg("run")
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .args(if extra.contains(&"--log-format") {
                &[][..]
            } else {
                &["--log-format", "json"][..]
            })
            .args(if extra.contains(&"--http") {
                &[][..]
            } else {
                &["--http", "127.0.0.1:0"][..]
            })
            .args(extra)
            .env("RUST_LOG", "info")
            // Its record of what it loaded (for `winsink check`) stays in its folder,
            // `dir()`.
            .env("XDG_STATE_HOME", dir.path())
            .env_remove("STATE_DIRECTORY")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn winsink");

        let (addr_tx, addr_rx) = mpsc::channel();
        let (http_tx, http_rx) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().expect("stderr");
        let err_text = stderr.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err_pipe).lines().map_while(Result::ok) {
                if line.contains("http: serving") {
                    if let Some(addr) = line
                        .rsplit(' ')
                        .next()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = http_tx.send(addr);
                    }
                }
                if let Some(rest) = line.split("listening on ").nth(1) {
                    if let Some(addr) = rest
                        .split_whitespace()
                        .next()
                        .and_then(|a| a.parse::<SocketAddr>().ok())
                    {
                        let _ = addr_tx.send(addr);
                    }
                }
                let mut t = err_text.lock().expect("stderr");
                t.push_str(&line);
                t.push('\n');
            }
        });
        let (line_tx, lines) = mpsc::channel();
        let out_pipe = child.stdout.take().expect("stdout");
        let (stdout_done, stalled_stdout) = if read_stdout {
            let reader = std::thread::spawn(move || {
                for line in BufReader::new(out_pipe).lines().map_while(Result::ok) {
                    if line_tx.send(line).is_err() {
                        return;
                    }
                }
            });
            (Some(reader), None)
        } else {
            (None, Some(out_pipe))
        };
        let Ok(addr) = addr_rx.recv_timeout(WAIT) else {
            let _ = child.kill();
            let status = child.wait().ok();
            std::thread::sleep(Duration::from_millis(100));
            panic!(
                "winsink did not report a listening address (exit: {status:?}); stderr:\n{}",
                stderr.lock().expect("stderr")
            );
        };
        // The HTTP listener reports before the DNS sockets are served.
        let http = http_rx.try_recv().ok();
        Self {
            child,
            addr,
            http,
            lines,
            stderr,
            stdout_done,
            _stalled_stdout: stalled_stdout,
            _dir: dir,
        }
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
        self.stderr.lock().expect("stderr").clone()
    }

    /// Sends SIGTERM and waits for the exit; returns the status and the rest of stdout.
    pub(crate) fn terminate(&mut self) -> (ExitStatus, Vec<String>) {
        let pid = self.child.id().to_string();
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill -TERM failed");
        let deadline = Instant::now() + WAIT;
        let status = loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                break s;
            }
            assert!(
                Instant::now() < deadline,
                "winsink did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(t) = self.stdout_done.take() {
            let _ = t.join();
        }
        (status, self.lines.try_iter().collect())
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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
