//! Encrypted upstreams: winsink → a real Unbound over DNS over TLS and DNS over HTTPS,
//! with a CA and certificates made in the test.
//!
//! Unbound (Debian's, started by the test on loopback) serves one local zone over plain
//! DNS, DoT and DoH; each test compares what winsink answers through the encrypted
//! upstreams with what it answers forwarding plain DNS to the same Unbound.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, ResponseCode};
use hickory_proto::rr::{RData, Record, RecordType};

use crate::support::dns::{ask_udp, ede, query, Daemon, Launch};
use crate::support::http::{get, sample};
use crate::support::tls::{KeyKind, TestCa};
use crate::support::unbound::Unbound;

/// The name the test certificates are made for.
const NAME: &str = "dns.lab.test";

/// knot-dnsutils' client, installed with Unbound wherever `.ci/run` installs it.
const KDIG: &str = "kdig";

/// EDE 22, "No Reachable Authority": what winsink's SERVFAIL carries when no upstream
/// could be used.
const EDE_NO_REACHABLE_AUTHORITY: u16 = 22;

/// What `kdig +tls` against `unbound` prints when it checks the certificate against the
/// test CA for `hostname`.
fn kdig_tls(unbound: &Unbound, ca: &TestCa, hostname: &str) -> String {
    let out = Command::new(KDIG)
        .arg(format!("@{}", unbound.tls.ip()))
        .args(["-p", &unbound.tls.port().to_string()])
        .arg(format!("+tls-ca={}", ca.cert_pem().display()))
        .arg(format!("+tls-hostname={hostname}"))
        .args(["+time=3", "+retry=0", "www.lab.test", "A"])
        .output()
        .expect("run kdig");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The test CA's certificates are ones a real TLS client (kdig, GnuTLS) accepts for the
/// names they were made for, and refuses for another, with an ECDSA key and an RSA key.
#[test]
fn test_ca_certificates_serve_unbound_over_tls_with_ecdsa_and_rsa() {
    if Command::new(KDIG).arg("-V").output().is_err() {
        assert!(
            std::env::var_os("WINSINK_REQUIRE_UNBOUND").is_none(),
            "WINSINK_REQUIRE_UNBOUND is set but kdig is not installed"
        );
        eprintln!("skipped: kdig is not installed (apt-get install knot-dnsutils)");
        return;
    }
    for kind in [KeyKind::Ecdsa, KeyKind::Rsa] {
        let mut ca = TestCa::new();
        let leaf = ca.leaf(&[NAME, "127.0.0.1"], kind);
        let Some(unbound) = Unbound::start(&leaf) else {
            return;
        };
        let good = kdig_tls(&unbound, &ca, NAME);
        assert!(
            good.contains("192.0.2.10"),
            "{kind:?}: {good}\n{}",
            unbound.log()
        );
        let bad = kdig_tls(&unbound, &ca, "other.lab.test");
        assert!(
            !bad.contains("192.0.2.10"),
            "{kind:?}: a wrong name was accepted: {bad}"
        );
    }
}

/// A winsink config forwarding to `upstreams` (TOML array items), nothing blocked.
fn config(upstreams: &str, extra: &str) -> String {
    format!(
        "default_action = \"log\"\n\n[server]\nupstream_timeout_ms = 3000\nupstreams = [{upstreams}]\n{extra}\n"
    )
}

/// An upstream entry for Unbound's DoT port, checked against the test CA for `name`.
fn dot(unbound: &Unbound, ca: &TestCa, name: &str) -> String {
    format!(
        "{{ url = \"tls://{}#{name}\", ca_file = \"{}\" }}",
        unbound.tls,
        ca.cert_pem().display()
    )
}

/// An upstream entry for Unbound's DoH port (`/dns-query`), checked against the test CA.
fn doh(unbound: &Unbound, ca: &TestCa) -> String {
    format!(
        "{{ url = \"https://{}/dns-query\", tls_name = \"{NAME}\", ca_file = \"{}\" }}",
        unbound.https,
        ca.cert_pem().display()
    )
}

/// What a client sees of an answer, but its id.
fn seen(mut m: Message) -> String {
    m.metadata.id = 0;
    format!(
        "{:?}\nanswers {:?}\nauthorities {:?}\nadditionals {:?}",
        m.metadata, m.answers, m.authorities, m.additionals
    )
}

/// The questions compared: records, a CNAME chain, several strings, AAAA, NXDOMAIN and
/// NODATA.
const QUESTIONS: &[(&str, RecordType)] = &[
    ("www.lab.test", RecordType::A),
    ("www.lab.test", RecordType::AAAA),
    ("alias.lab.test", RecordType::A),
    ("txt.lab.test", RecordType::TXT),
    ("missing.lab.test", RecordType::A),
    ("www.lab.test", RecordType::MX),
];

/// Starts Unbound with an ECDSA certificate for [`NAME`] and 127.0.0.1, or `None` when
/// Unbound is not installed.
fn lab() -> Option<(TestCa, Unbound)> {
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME, "127.0.0.1"], KeyKind::Ecdsa);
    let unbound = Unbound::start(&leaf)?;
    Some((ca, unbound))
}

/// winsink forwarding over DoT and over DoH gives clients exactly the answers it gives
/// forwarding plain DNS to the same Unbound, and logs the encrypted upstream.
#[test]
fn dot_and_doh_upstreams_answer_as_plain_forwarding_does() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    let plain = Daemon::start(&config(&format!("\"udp://{}\"", unbound.plain), ""), &[]);
    let dot_url = format!("tls://{}#{NAME}", unbound.tls);
    let doh_url = format!("https://{}/dns-query", unbound.https);
    for (entry, label) in [
        (dot(&unbound, &ca, NAME), &dot_url),
        (doh(&unbound, &ca), &doh_url),
    ] {
        let encrypted = Daemon::start(&config(&entry, ""), &[]);
        for &(qname, rtype) in QUESTIONS {
            let q = query(qname, rtype, true);
            let want = ask_udp(plain.addr, &q);
            let got = ask_udp(encrypted.addr, &q);
            assert_eq!(
                seen(got),
                seen(want),
                "{qname} {rtype} through {label}; stderr:\n{}\nunbound:\n{}",
                encrypted.stderr(),
                unbound.log()
            );
            let line = encrypted.log_line();
            assert_eq!(line["upstream"], label.as_str(), "{line}");
            assert_eq!(plain.log_line()["qname"], qname);
        }
        let stderr = encrypted.stderr();
        assert!(
            stderr.contains(&format!("upstream {label} answered the start-up probe")),
            "{stderr}"
        );
    }
}

/// The first line of `d`'s stderr with `needle` in it (waiting for it: the start-up
/// probe runs beside the first queries), which must be a WARN.
fn warn_line(d: &Daemon, needle: &str) -> String {
    let stderr = d.stderr_until(needle);
    let line = stderr
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_default();
    assert!(line.contains("WARN"), "{line}");
    line.to_owned()
}

/// The connections from this process to `port` on 127.0.0.1 that are established, as
/// the kernel lists them (`/proc/net/tcp`, the client's side: remote port `port`).
fn established_to(port: u16) -> usize {
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table
        .lines()
        .skip(1)
        .filter(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            f.len() > 3 && f[2] == format!("0100007F:{port:04X}") && f[3] == "01"
        })
        .count()
}

/// Many queries at once through one encrypted upstream share one kept connection: 200
/// distinct names sent together over UDP, every one answered, one connection to
/// Unbound's DoT port (and one to its DoH port) afterwards.
#[test]
fn concurrent_queries_share_one_kept_encrypted_connection() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    for (entry, port) in [
        (dot(&unbound, &ca, NAME), unbound.tls.port()),
        (doh(&unbound, &ca), unbound.https.port()),
    ] {
        let d = Daemon::start(&config(&entry, ""), &[]);
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut ids = BTreeSet::new();
        for i in 0..200u16 {
            let mut q = query(&format!("q{i}.lab.test"), RecordType::A, true);
            q.metadata.id = 1000 + i;
            ids.insert(q.metadata.id);
            socket.send_to(&q.to_vec().unwrap(), d.addr).unwrap();
        }
        let mut buf = [0u8; 4096];
        let deadline = Instant::now() + Duration::from_secs(15);
        while !ids.is_empty() && Instant::now() < deadline {
            let Ok((n, _)) = socket.recv_from(&mut buf) else {
                break;
            };
            let a = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(a.metadata.response_code, ResponseCode::NXDomain, "{a:?}");
            ids.remove(&a.metadata.id);
        }
        assert!(
            ids.is_empty(),
            "{} queries unanswered; stderr:\n{}",
            ids.len(),
            d.stderr()
        );
        assert_eq!(established_to(port), 1, "connections to port {port}");
    }
}

/// A certificate that is not valid for the name asked for: every query is SERVFAIL with
/// an Extended DNS Error naming the upstream and the reason, and a WARN says it.
#[test]
fn a_wrong_certificate_name_fails_with_servfail_ede_and_a_warn() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    let label = format!("tls://{}#wrong.lab.test", unbound.tls);
    let d = Daemon::start(&config(&dot(&unbound, &ca, "wrong.lab.test"), ""), &[]);
    let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    let edes = ede(&a);
    assert_eq!(edes.len(), 1, "{edes:?}");
    let (code, text) = &edes[0];
    assert_eq!(*code, EDE_NO_REACHABLE_AUTHORITY, "{text}");
    assert!(text.contains(&label), "{text}");
    assert!(
        text.contains("certificate not valid for name \"wrong.lab.test\""),
        "{text}"
    );
    let warn = warn_line(&d, "certificate not valid for name");
    assert!(warn.contains(&label), "{warn}");
}

/// Without `ca_file` the system's roots decide, and `SSL_CERT_FILE` names them as it
/// does for OpenSSL: the test CA there is trusted, a CA that is not there is not.
#[test]
fn ssl_cert_file_is_the_system_trust_store() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    let entry = format!("\"tls://{}#{NAME}\"", unbound.tls);
    let trusted = Launch::new(&config(&entry, ""))
        .env("SSL_CERT_FILE", &ca.cert_pem().to_string_lossy())
        .start();
    let a = ask_udp(trusted.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "{}",
        trusted.stderr()
    );
    assert_eq!(a.answers.len(), 1);
    let other = TestCa::new();
    let untrusted = Launch::new(&config(&entry, ""))
        .env("SSL_CERT_FILE", &other.cert_pem().to_string_lossy())
        .start();
    let a = ask_udp(untrusted.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    let text = ede(&a).into_iter().map(|(_, t)| t).collect::<String>();
    assert!(
        text.contains("invalid peer certificate: UnknownIssuer"),
        "{text}"
    );
}

/// `insecure_skip_verify = true` accepts a certificate for another name, and says so
/// with a WARN at start.
#[test]
fn insecure_skip_verify_is_explicit_and_warned_about() {
    let Some((_, unbound)) = lab() else {
        return;
    };
    let label = format!("tls://{}#wrong.lab.test", unbound.tls);
    let entry = format!("{{ url = \"{label}\", insecure_skip_verify = true }}");
    let d = Daemon::start(&config(&entry, ""), &[]);
    let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "{}",
        d.stderr()
    );
    let warn = warn_line(&d, "insecure_skip_verify");
    assert!(warn.contains(&label), "{warn}");
}

/// An upstream given by name is found through `[server] bootstrap` (here Unbound's
/// plain port on loopback, which has `dns.lab.test A 127.0.0.1`); a name that does not
/// resolve is a WARN at start and SERVFAIL for queries, not a crash.
#[test]
fn a_named_upstream_is_resolved_through_the_bootstrap_server() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    let bootstrap = format!("bootstrap = [\"udp://{}\"]", unbound.plain);
    let port = unbound.tls.port();
    let entry = format!(
        "{{ url = \"tls://{NAME}:{port}\", ca_file = \"{}\" }}",
        ca.cert_pem().display()
    );
    let d = Daemon::start(&config(&entry, &bootstrap), &[]);
    let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "{}",
        d.stderr()
    );
    assert_eq!(d.log_line()["upstream"], format!("tls://{NAME}:{port}"));

    let entry = format!(
        "{{ url = \"tls://nowhere.lab.test:{port}\", ca_file = \"{}\" }}",
        ca.cert_pem().display()
    );
    let d = Daemon::start(&config(&entry, &bootstrap), &[]);
    let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(a.metadata.response_code, ResponseCode::ServFail);
    let warn = warn_line(&d, "cannot resolve nowhere.lab.test");
    assert!(warn.contains("upstream tls://nowhere.lab.test"), "{warn}");
}

/// `winsink check` reads encrypted upstreams as `run` does: a good one passes, a
/// missing `ca_file` or a `#NAME` on a DoH URL is an error naming the line (exit 2).
#[test]
fn check_validates_encrypted_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let path = dir.path().join("winsink.toml");
    let check = |upstreams: &str| {
        std::fs::write(&path, config(upstreams, "bootstrap = [\"127.0.0.1:5300\"]")).unwrap();
        let out = crate::support::run_winsink(&["check", "--config", path.to_str().unwrap()]);
        (out.status.code(), crate::support::stderr(&out))
    };
    let good = format!(
        "\"tls://192.0.2.53#dns.lab.test\", {{ url = \"https://dns.lab.test/dns-query\", ca_file = \"{}\" }}",
        ca.cert_pem().display()
    );
    let (code, err) = check(&good);
    assert_eq!(code, Some(0), "{err}");
    let (code, err) = check("{ url = \"tls://192.0.2.53\", ca_file = \"no-such-ca.pem\" }");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("winsink.toml:5: [server] upstreams: tls://192.0.2.53: ca_file ")
            && err.contains("no-such-ca.pem: No such file"),
        "{err}"
    );
    let (code, err) = check("\"https://192.0.2.53/dns-query#dns.lab.test\"");
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("winsink.toml:5: [server] upstreams: upstream \"https://192.0.2.53/dns-query#dns.lab.test\": #NAME"),
        "{err}"
    );
}

/// A DoT upstream that is down fails over to the next like a UDP one, counts in the
/// same `winsink_upstream_*` metrics and health; and when the live one restarts (its
/// connection gone), the next query is answered on a new connection.
#[test]
fn a_dead_dot_upstream_fails_over_and_a_restarted_one_is_reconnected() {
    let Some((ca, mut unbound)) = lab() else {
        return;
    };
    let dead_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = format!("tls://127.0.0.1:{dead_port}#{NAME}");
    let live = format!("tls://{}#{NAME}", unbound.tls);
    let entries = format!(
        "{{ url = \"{dead}\", ca_file = \"{ca}\" }}, {{ url = \"{live}\", ca_file = \"{ca}\" }}",
        ca = ca.cert_pem().display()
    );
    let d = Daemon::start(&config(&entries, ""), &[]);
    let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "{}",
        d.stderr()
    );
    assert_eq!(d.log_line()["upstream"], live.as_str());
    // Its health is known (down) once the start-up probe has told.
    warn_line(
        &d,
        &format!("upstream {dead} did not answer the start-up probe"),
    );
    let metrics = get(d.http(), "/metrics", &[]).body;
    let count = |u: &str, outcome: &str| {
        sample(
            &metrics,
            "winsink_upstream_queries_total",
            &format!(r#"upstream="{u}",outcome="{outcome}""#),
        )
    };
    assert_eq!(count(&live, "ok"), 1.0, "{metrics}");
    assert_eq!(
        sample(
            &metrics,
            "winsink_upstream_up",
            &format!(r#"upstream="{dead}""#)
        ),
        0.0,
        "{metrics}"
    );
    assert_eq!(
        sample(
            &metrics,
            "winsink_upstream_up",
            &format!(r#"upstream="{live}""#)
        ),
        1.0,
        "{metrics}"
    );
    warn_line(
        &d,
        &format!("upstream {dead} did not answer the start-up probe"),
    );

    unbound.restart();
    let a = ask_udp(d.addr, &query("txt.lab.test", RecordType::TXT, true));
    assert_eq!(
        a.metadata.response_code,
        ResponseCode::NoError,
        "{}\n{}",
        d.stderr(),
        unbound.log()
    );
    assert_eq!(d.log_line()["upstream"], live.as_str());
    assert_eq!(established_to(unbound.tls.port()), 1);
}

/// A bootstrap server for one name, `dns.lab.test`, on loopback: its A record (TTL 1 s)
/// is whatever the test sets, and it counts the A queries it gets.
struct Bootstrap {
    addr: SocketAddr,
    answer: Arc<Mutex<Ipv4Addr>>,
    asked: Arc<AtomicUsize>,
}

impl Bootstrap {
    fn start(answer: Ipv4Addr) -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = socket.local_addr().unwrap();
        let answer = Arc::new(Mutex::new(answer));
        let asked = Arc::new(AtomicUsize::new(0));
        let (a, n) = (answer.clone(), asked.clone());
        // Serves until the test process ends (the socket is its own).
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((len, from)) = socket.recv_from(&mut buf) {
                let Ok(q) = Message::from_vec(&buf[..len]) else {
                    continue;
                };
                let mut r = Message::response(q.metadata.id, q.metadata.op_code);
                r.metadata.authoritative = true;
                r.metadata.recursion_desired = q.metadata.recursion_desired;
                r.queries = q.queries.clone();
                if let Some(question) = q.queries.first() {
                    if question.query_type() == RecordType::A {
                        n.fetch_add(1, Ordering::Relaxed);
                        let ip = *a.lock().unwrap();
                        r.answers.push(Record::from_rdata(
                            question.name().clone(),
                            1,
                            RData::A(ip.into()),
                        ));
                    }
                }
                let _ = socket.send_to(&r.to_vec().unwrap(), from);
            }
        });
        Self {
            addr,
            answer,
            asked,
        }
    }
}

/// A named upstream's address is found again once its TTL is over: the bootstrap answer
/// moves from 127.0.0.1 (Unbound) to 127.0.0.2 (nothing there) and back, and winsink
/// follows it, asking the bootstrap server again each time.
#[test]
fn a_named_upstream_is_resolved_again_when_its_ttl_runs_out() {
    let Some((ca, unbound)) = lab() else {
        return;
    };
    let boot = Bootstrap::start(Ipv4Addr::LOCALHOST);
    let entry = format!(
        "{{ url = \"tls://{NAME}:{}\", ca_file = \"{}\" }}",
        unbound.tls.port(),
        ca.cert_pem().display()
    );
    // The cache off, so that every query goes to the upstream.
    let extra = format!(
        "bootstrap = [\"udp://{}\"]\n[cache]\nenabled = false",
        boot.addr
    );
    let d = Daemon::start(&config(&entry, &extra), &[]);
    let ask = |want: ResponseCode| {
        let a = ask_udp(d.addr, &query("www.lab.test", RecordType::A, true));
        assert_eq!(
            a.metadata.response_code,
            want,
            "{:?}\n{}",
            ede(&a),
            d.stderr()
        );
    };
    ask(ResponseCode::NoError);
    let first = boot.asked.load(Ordering::Relaxed);
    assert!(first >= 1);

    *boot.answer.lock().unwrap() = Ipv4Addr::new(127, 0, 0, 2);
    std::thread::sleep(Duration::from_millis(1500));
    ask(ResponseCode::ServFail);
    assert!(boot.asked.load(Ordering::Relaxed) > first);

    *boot.answer.lock().unwrap() = Ipv4Addr::LOCALHOST;
    std::thread::sleep(Duration::from_millis(1500));
    // The failure above put it in hold-down; with no other upstream it is asked anyway.
    ask(ResponseCode::NoError);
}
