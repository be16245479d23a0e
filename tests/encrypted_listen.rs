//! winsink's DoT and DoH listeners, with certificates made by a CA that exists only for
//! the test, asked by real clients: `kdig +tls` and `kdig +https` (knot-dnsutils), and a
//! rustls connection of the test's own where one must stay open across a renewal.
//!
//! Blocked names get the sinkhole answer, other names the test upstream's, exactly one
//! query-log line each with `"proto":"tls"` or `"https"`; a renewed certificate reaches
//! new connections while an open one keeps working; a broken renewal keeps the old one
//! with a WARN.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::Message;
use hickory_proto::rr::{RData, RecordType};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};

use crate::support::dns::{query, zone, Daemon, TestUpstream, WAIT};
use crate::support::tls::{KeyKind, Leaf, TestCa};

/// The name the certificates are for, and the clients verify.
const NAME: &str = "dns.winsink.test";

/// A config with DoT and DoH on loopback (ports picked by the system) and `*.blocked.test`
/// blocked, forwarding to `upstream`.
fn config(upstream: &TestUpstream, leaf: &Leaf) -> String {
    format!(
        r#"
catalogs = []

[[rules]]
pattern = "*.blocked.test"
action = "block"

[server]
upstreams = ["{}"]
listen_tls = ["127.0.0.1:0"]
listen_https = ["127.0.0.1:0"]
tcp_idle_timeout_secs = 30

[tls]
cert_file = "{}"
key_file = "{}"
"#,
        upstream.url(),
        leaf.cert.display(),
        leaf.key.display()
    )
}

/// The address winsink says it serves `what` (`"DNS over TLS"`, `"DNS over HTTPS"`) on.
fn served_on(d: &Daemon, what: &str) -> SocketAddr {
    let needle = format!("serving {what} on ");
    let stderr = d.stderr();
    let rest = stderr
        .lines()
        .find_map(|l| l.split(&needle).nth(1))
        .unwrap_or_else(|| panic!("no {what:?} listener reported; stderr:\n{stderr}"));
    rest.trim_start_matches("https://")
        .split(['/', ' '])
        .next()
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {rest:?}"))
}

/// What one `kdig` run printed, and whether it succeeded.
struct Kdig {
    ok: bool,
    out: String,
}

/// `kdig @ADDR -p PORT MODE +tls-ca=CA +tls-hostname=NAME QNAME TYPE`, bounded in time.
fn kdig(at: SocketAddr, mode: &str, ca: &Path, qname: &str, rtype: &str) -> Kdig {
    let out = Command::new("kdig")
        .arg(format!("@{}", at.ip()))
        .args(["-p", &at.port().to_string()])
        .arg(mode)
        .arg(format!("+tls-ca={}", ca.display()))
        .arg(format!("+tls-hostname={NAME}"))
        .args(["+time=5", "+retry=0", qname, rtype])
        .output()
        .expect("kdig (Debian: apt-get install knot-dnsutils)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    // kdig exits 0 after a failed handshake too; an answer has a status line.
    Kdig {
        ok: out.status.success() && text.contains("->>HEADER<<-"),
        out: text,
    }
}

/// The A records of kdig's answer section.
fn a_records(out: &str, qname: &str) -> Vec<Ipv4Addr> {
    let owner = format!("{qname}.");
    out.lines()
        .filter(|l| !l.starts_with(';'))
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            match f.as_slice() {
                [o, _, "IN", "A", ip] if o.eq_ignore_ascii_case(&owner) => ip.parse().ok(),
                _ => None,
            }
        })
        .collect()
}

/// The next query-log line, which must be about `qname` over `proto`; and no second one.
fn one_line(d: &Daemon, qname: &str, proto: &str) -> serde_json::Value {
    let line = d.log_line();
    assert_eq!(line["qname"], qname, "{line}");
    assert_eq!(line["proto"], proto, "{line}");
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        d.try_raw_line(),
        None,
        "a second line for {qname} over {proto}"
    );
    line
}

#[test]
fn dot_and_doh_sinkhole_blocked_names_and_forward_the_rest_with_one_log_line_each() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let d = Daemon::start(&config(&upstream, &leaf), &[]);
    let tls = served_on(&d, "DNS over TLS");
    let https = served_on(&d, "DNS over HTTPS");
    let ca = ca.cert_pem();

    for (at, mode, proto, qname) in [
        (tls, "+tls", "tls", "dot.blocked.test"),
        (https, "+https", "https", "post.blocked.test"),
        (https, "+https-get", "https", "get.blocked.test"),
    ] {
        let k = kdig(at, mode, &ca, qname, "A");
        assert!(k.ok, "{mode}: {}", k.out);
        assert_eq!(
            a_records(&k.out, qname),
            [Ipv4Addr::UNSPECIFIED],
            "{}",
            k.out
        );
        assert!(k.out.contains("EDE: 15 (Blocked)"), "{mode}: {}", k.out);
        let line = one_line(&d, qname, proto);
        assert_eq!(line["decision"], "block", "{line}");

        // Forwarded: the upstream's records, asked of it once (then cached).
        let before = upstream.count(zone::WWW, RecordType::A);
        let k = kdig(at, mode, &ca, zone::WWW, "A");
        assert!(k.ok, "{mode}: {}", k.out);
        assert_eq!(
            a_records(&k.out, zone::WWW),
            [Ipv4Addr::new(192, 0, 2, 1)],
            "{mode}: {}",
            k.out
        );
        let line = one_line(&d, zone::WWW, proto);
        assert_eq!(line["decision"], "pass", "{line}");
        assert!(upstream.count(zone::WWW, RecordType::A) <= before + 1);
    }
    // The first forwarded query went upstream, the later ones came from the cache.
    assert_eq!(upstream.count(zone::WWW, RecordType::A), 1);
}

#[test]
fn a_client_that_does_not_trust_the_ca_gets_no_answer() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let d = Daemon::start(&config(&upstream, &leaf), &[]);
    let other = TestCa::new();
    let k = kdig(
        served_on(&d, "DNS over TLS"),
        "+tls",
        &other.cert_pem(),
        "x.blocked.test",
        "A",
    );
    assert!(
        !k.ok,
        "answered despite an untrusted certificate: {}",
        k.out
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.try_raw_line(), None, "no query reached the engine");
}

/// A DoT connection of the test's own (rustls), to keep open across a renewal.
struct DotConnection {
    tls: rustls::StreamOwned<rustls::ClientConnection, TcpStream>,
}

impl DotConnection {
    fn open(at: SocketAddr, ca: &Path) -> Self {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(CertificateDer::from_pem_file(ca).expect("CA PEM"))
            .expect("CA certificate");
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth();
        let name = ServerName::try_from(NAME).expect("server name");
        let conn = rustls::ClientConnection::new(Arc::new(config), name).expect("client");
        let tcp = TcpStream::connect_timeout(&at, WAIT).expect("connect");
        tcp.set_read_timeout(Some(WAIT)).expect("timeout");
        Self {
            tls: rustls::StreamOwned::new(conn, tcp),
        }
    }

    /// Asks `qname A` on this connection.
    fn ask(&mut self, qname: &str) -> Message {
        let bytes = query(qname, RecordType::A, true).to_vec().expect("encode");
        let mut framed = (bytes.len() as u16).to_be_bytes().to_vec();
        framed.extend_from_slice(&bytes);
        self.tls.write_all(&framed).expect("send");
        let mut len = [0u8; 2];
        self.tls.read_exact(&mut len).expect("answer length");
        let mut answer = vec![0; usize::from(u16::from_be_bytes(len))];
        self.tls.read_exact(&mut answer).expect("answer");
        Message::from_vec(&answer).expect("answer decodes")
    }

    /// The certificate the server showed this connection (once it asked something).
    fn server_cert(&self) -> Vec<u8> {
        self.tls.conn.peer_certificates().expect("handshake done")[0].to_vec()
    }
}

fn first_a(m: &Message) -> Option<Ipv4Addr> {
    m.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

/// Replaces the file at `to` with `from`'s content as one rename (as certbot and
/// cert-manager do: a reader never sees half a file).
fn replace(from: &Path, to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(from, &tmp).expect("copy");
    std::fs::rename(&tmp, to).expect("rename");
}

/// Waits until winsink's stderr has a line containing `needle`.
fn wait_for_stderr(d: &Daemon, needle: &str) -> String {
    let deadline = Instant::now() + WAIT;
    loop {
        let stderr = d.stderr();
        if let Some(l) = stderr.lines().find(|l| l.contains(needle)) {
            return l.to_owned();
        }
        assert!(
            Instant::now() < deadline,
            "no {needle:?} on stderr:\n{stderr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_renewed_certificate_reaches_new_connections_and_an_open_one_keeps_working() {
    let upstream = TestUpstream::start();
    let mut old_ca = TestCa::new();
    let old = old_ca.leaf(&[NAME], KeyKind::Ecdsa);
    let d = Daemon::start(&config(&upstream, &old), &[]);
    let tls = served_on(&d, "DNS over TLS");
    let https = served_on(&d, "DNS over HTTPS");

    let mut open = DotConnection::open(tls, &old_ca.cert_pem());
    assert_eq!(
        first_a(&open.ask("a.blocked.test")),
        Some(Ipv4Addr::UNSPECIFIED)
    );
    let old_cert = open.server_cert();

    // The renewal: a certificate from another CA (so another issuer and serial), with an
    // RSA key this time, renamed over the files the config names.
    let mut new_ca = TestCa::new();
    let new = new_ca.leaf(&[NAME], KeyKind::Rsa);
    assert!(!kdig(tls, "+tls", &new_ca.cert_pem(), "b.blocked.test", "A").ok);
    replace(&new.key, &old.key);
    replace(&new.cert, &old.cert);
    wait_for_stderr(&d, "certificate of the DoT and DoH listeners read again");

    // New connections get the new certificate, over DoT and DoH alike.
    for (at, mode) in [(tls, "+tls"), (https, "+https")] {
        let k = kdig(at, mode, &new_ca.cert_pem(), "c.blocked.test", "A");
        assert!(k.ok, "{mode} with the new CA: {}", k.out);
        assert!(
            k.out.contains("RSA"),
            "{mode}: an RSA certificate: {}",
            k.out
        );
        let k = kdig(at, mode, &old_ca.cert_pem(), "d.blocked.test", "A");
        assert!(!k.ok, "{mode} still shows the old certificate: {}", k.out);
    }
    let mut fresh = DotConnection::open(tls, &new_ca.cert_pem());
    assert_eq!(
        first_a(&fresh.ask("f.blocked.test")),
        Some(Ipv4Addr::UNSPECIFIED)
    );
    assert_ne!(fresh.server_cert(), old_cert);
    // The connection opened before the renewal is still served, on its old session.
    assert_eq!(
        first_a(&open.ask("e.blocked.test")),
        Some(Ipv4Addr::UNSPECIFIED)
    );
    assert_eq!(open.server_cert(), old_cert);
}

#[test]
fn a_broken_renewal_keeps_the_running_certificate_and_says_why_in_a_warn() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let d = Daemon::start(&config(&upstream, &leaf), &[]);
    let tls = served_on(&d, "DNS over TLS");

    // A key that is not the certificate's: the pair does not load.
    let stranger = ca.leaf(&[NAME], KeyKind::Ecdsa);
    replace(&stranger.key, &leaf.key);
    let warn = wait_for_stderr(&d, "the new certificate does not load");
    assert!(warn.contains("WARN"), "{warn}");
    assert!(
        warn.contains("does not belong to the first certificate"),
        "{warn}"
    );
    let k = kdig(tls, "+tls", &ca.cert_pem(), "a.blocked.test", "A");
    assert!(k.ok, "the running certificate still serves: {}", k.out);

    // Garbage in the certificate file: the same.
    std::fs::write(leaf.cert.with_extension("junk"), "not a certificate\n").unwrap();
    replace(&leaf.cert.with_extension("junk"), &leaf.cert);
    wait_for_stderr(&d, "no certificate in it");
    let k = kdig(tls, "+tls", &ca.cert_pem(), "b.blocked.test", "A");
    assert!(k.ok, "the running certificate still serves: {}", k.out);
}

#[test]
fn check_refuses_a_key_that_is_not_the_certificate_s_naming_the_line() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let other = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winsink.toml");
    let good = config(&upstream, &leaf);
    std::fs::write(&path, &good).unwrap();
    let out = crate::support::run_winsink(&["check", "--config", path.to_str().unwrap()]);
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let stdout = crate::support::stdout(&out);
    assert!(
        stdout.contains("listen encrypted: tls 127.0.0.1:0, https https://127.0.0.1:0/dns-query"),
        "{stdout}"
    );

    let bad = good.replace(
        &leaf.key.display().to_string(),
        &other.key.display().to_string(),
    );
    std::fs::write(&path, &bad).unwrap();
    let line = bad.lines().position(|l| l.starts_with("key_file")).unwrap() + 1;
    let out = crate::support::run_winsink(&["check", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = crate::support::stderr(&out);
    assert!(
        stderr.starts_with(&format!(
            "error: {}:{line}: [tls] key_file {}: this key does not belong to the first \
             certificate of {}",
            path.display(),
            other.key.display(),
            leaf.cert.display()
        )),
        "{stderr}"
    );
    // `run` refuses it the same way, before binding anything.
    let out = crate::support::run_winsink(&["run", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        crate::support::stderr(&out).contains("this key does not belong"),
        "{}",
        crate::support::stderr(&out)
    );
}

/// The shell block of the README's DoH recipe that makes the lab CA and the certificate.
fn readme_openssl_recipe() -> String {
    let readme = std::fs::read_to_string(crate::support::repo_root().join("README.md")).unwrap();
    let from = readme
        .find("**A lab CA and a server certificate**")
        .expect("the README's DoH recipe");
    let block = &readme[from..];
    let start = block.find("```sh\n").expect("its sh block") + "```sh\n".len();
    let end = start + block[start..].find("```").expect("the block's end");
    block[start..end].to_owned()
}

/// A DNS query for `qname A` as DoH's POST body.
fn wire_query(qname: &str) -> Vec<u8> {
    query(qname, RecordType::A, false).to_vec().expect("encode")
}

#[test]
fn the_readme_s_openssl_recipe_makes_certificates_winsink_serves_ecdsa_and_rsa() {
    let recipe = readme_openssl_recipe();
    let upstream = TestUpstream::start();
    for (kind, script) in [
        ("ecdsa", recipe.clone()),
        // The README's RSA variant: the server key made with `-newkey rsa:2048`.
        (
            "rsa",
            recipe.replacen(
                "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj \"/CN=dns.lab.test\"",
                "-newkey rsa:2048 -nodes -subj \"/CN=dns.lab.test\"",
                1,
            ),
        ),
    ] {
        let lab = tempfile::tempdir().unwrap();
        let out = Command::new("bash")
            .args(["-euc", &script])
            .current_dir(lab.path())
            .output()
            .expect("bash");
        assert!(
            out.status.success(),
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tls = lab.path().join("config/tls");
        let leaf = Leaf {
            cert: tls.join("winsink.pem"),
            cert_only: tls.join("winsink.pem"),
            key: tls.join("winsink.key"),
        };
        let d = Daemon::start(&config(&upstream, &leaf), &[]);
        let ca = tls.join("ca.pem");
        let at = served_on(&d, "DNS over TLS");
        let k = Command::new("kdig")
            .arg(format!("@{}", at.ip()))
            .args(["-p", &at.port().to_string(), "+tls"])
            .arg(format!("+tls-ca={}", ca.display()))
            .args(["+tls-hostname=dns.lab.test", "+time=5", "+retry=0"])
            .args(["r.blocked.test", "A"])
            .output()
            .expect("kdig");
        let text = String::from_utf8_lossy(&k.stdout);
        assert_eq!(
            a_records(&text, "r.blocked.test"),
            [Ipv4Addr::UNSPECIFIED],
            "{kind}: {text}"
        );
        let key_kind = if kind == "rsa" { "RSA" } else { "ECDSA" };
        assert!(text.contains(key_kind), "{kind}: {text}");
        one_line(&d, "r.blocked.test", "tls");

        // DoH over HTTP/1.1 (curl), POST: the body is the engine's answer.
        let https = served_on(&d, "DNS over HTTPS");
        let body = lab.path().join("q.bin");
        std::fs::write(&body, wire_query(zone::WWW)).unwrap();
        let answer = lab.path().join("a.bin");
        let out = Command::new("curl")
            .args(["-sS", "--http1.1", "--max-time", "5"])
            .arg("--cacert")
            .arg(&ca)
            .arg("--resolve")
            .arg(format!("dns.lab.test:{}:127.0.0.1", https.port()))
            .args(["-H", "content-type: application/dns-message"])
            .arg("--data-binary")
            .arg(format!("@{}", body.display()))
            .arg("-o")
            .arg(&answer)
            .args(["-w", "%{http_version} %{http_code} %{content_type}"])
            .arg(format!("https://dns.lab.test:{}/dns-query", https.port()))
            .output()
            .expect("curl (Debian: apt-get install curl)");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "1.1 200 application/dns-message",
            "{kind}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let m = Message::from_vec(&std::fs::read(&answer).unwrap()).expect("a DNS answer");
        assert_eq!(first_a(&m), Some(Ipv4Addr::new(192, 0, 2, 1)));
        one_line(&d, zone::WWW, "https");
    }
}

#[test]
fn doh_answers_http_errors_for_what_is_not_a_dns_request() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let d = Daemon::start(&config(&upstream, &leaf), &[]);
    let https = served_on(&d, "DNS over HTTPS");
    let status = |args: &[&str], path: &str, want: &str, what: &str| {
        let (code, why) = http_status(&ca.cert_pem(), https, args, path);
        assert_eq!(code, want, "{what}: {why}");
    };
    status(&[], "/other", "404", "another path");
    status(&["-X", "PUT"], "/dns-query", "405", "PUT");
    status(&[], "/dns-query", "400", "GET without dns=");
    status(&[], "/dns-query?dns=%%%", "400", "dns= not base64url");
    status(
        &["-H", "content-type: text/plain", "--data", "x"],
        "/dns-query",
        "415",
        "POST of text/plain",
    );
    status(
        &[
            "-H",
            "content-type: application/dns-message",
            "--data",
            "ab",
        ],
        "/dns-query",
        "400",
        "two bytes are no DNS header",
    );
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(d.try_raw_line(), None, "none of these is a query");
}

#[test]
fn doh_connections_count_toward_the_tcp_per_client_limit() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let leaf = ca.leaf(&[NAME], KeyKind::Ecdsa);
    let config = config(&upstream, &leaf).replace(
        "tcp_idle_timeout_secs = 30",
        "tcp_idle_timeout_secs = 30\ntcp_max_connections_per_client = 1",
    );
    let d = Daemon::start(&config, &[]);
    let https = served_on(&d, "DNS over HTTPS");
    let get = || {
        let dns = base64url(&wire_query("g.blocked.test"));
        http_status(&ca.cert_pem(), https, &[], &format!("/dns-query?dns={dns}")).0
    };
    assert_eq!(get(), "200");
    d.log_line();
    // A plain TCP connection from the same address takes its one slot...
    let hold = TcpStream::connect_timeout(&d.addr, WAIT).expect("tcp");
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        get(),
        "000",
        "a DoH connection past the per-client limit is closed"
    );
    // ...and gives it back when it closes.
    drop(hold);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(get(), "200");
}

/// The HTTP status of a request to the DoH listener at `at` (as [`NAME`], trusting the CA
/// in `ca`) as curl prints it, "000" when no HTTP answer came, and curl's stderr to say
/// why. `args` are curl's, before the URL of `path`.
fn http_status(ca: &Path, at: SocketAddr, args: &[&str], path: &str) -> (String, String) {
    let out = Command::new("curl")
        .args([
            "-sS",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--max-time",
            "10",
        ])
        .arg("--cacert")
        .arg(ca)
        .arg("--resolve")
        .arg(format!("{NAME}:{}:127.0.0.1", at.port()))
        .args(args)
        .arg(format!("https://{NAME}:{}{path}", at.port()))
        .output()
        .expect("curl (Debian: apt-get install curl)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Base64url without padding (RFC 4648 §5), as DoH's GET carries the query.
fn base64url(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ABC[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

#[test]
fn check_and_run_say_when_the_certificate_has_expired_or_is_about_to() {
    let upstream = TestUpstream::start();
    let mut ca = TestCa::new();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("winsink.toml");
    let check = |leaf: &Leaf| {
        std::fs::write(&path, config(&upstream, leaf)).unwrap();
        let out = crate::support::run_winsink(&["check", "--config", path.to_str().unwrap()]);
        // A certificate out of its dates still loads: plain DNS must not go down with it.
        assert!(out.status.success(), "{}", crate::support::stderr(&out));
        (crate::support::stdout(&out), crate::support::stderr(&out))
    };

    let expired = ca.leaf_valid(&[NAME], (2020, 1, 1), (2021, 1, 1));
    let (stdout, stderr) = check(&expired);
    let said = format!(
        "warning: [tls] cert_file {}: the certificate expired on 2021-01-01 00:00 UTC (",
        expired.cert.display()
    );
    assert!(stderr.contains(&said), "{stderr}");
    assert!(
        stderr.contains("clients that check it refuse every connection"),
        "{stderr}"
    );
    assert!(stdout.contains("1 warning"), "{stdout}");

    // Six midnights from now: five whole days and some hours left.
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    let (y, m, d) = winsink_server::civil::civil_from_days(today + 6);
    let soon = ca.leaf_valid(&[NAME], (2020, 1, 1), (y as i32, m as u8, d as u8));
    let (_, stderr) = check(&soon);
    assert!(
        stderr.contains(&format!(
            "warning: [tls] cert_file {}: the certificate expires on {y:04}-{m:02}-{d:02} \
             00:00 UTC, in 5 days; renew it",
            soon.cert.display()
        )),
        "{stderr}"
    );

    let later = ca.leaf_valid(&[NAME], (2020, 1, 1), (y as i32 + 1, m as u8, 1));
    let (stdout, stderr) = check(&later);
    assert!(!stderr.contains("cert_file"), "{stderr}");
    assert!(stdout.contains("0 warnings"), "{stdout}");

    // `run` says it when it starts, and serves anyway; /metrics gives the date to alert on.
    let d = Daemon::start(&config(&upstream, &expired), &[]);
    let warn = wait_for_stderr(&d, "the certificate expired on 2021-01-01");
    assert!(warn.contains("WARN"), "{warn}");
    let metrics = crate::support::http::get(d.http(), "/metrics", &[]).body;
    assert!(
        metrics.contains("\nwinsink_tls_certificate_expiry_timestamp_seconds 1609459200\n"),
        "{metrics}"
    );
}
