//! A real Unbound (Debian's `unbound`) started by a test on loopback: plain DNS, DNS over
//! TLS and DNS over HTTPS on ports of their own, serving a local zone and nothing else.
//!
//! Unbound cannot be told to pick its own ports, so each is found free by binding
//! `127.0.0.1:0` first; a start that loses that race (Unbound exits, not having bound
//! them) is retried on new ports.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::tls::Leaf;

/// The zone Unbound serves (`static`: anything else under `.` is NXDOMAIN, never asked
/// of the Internet). `. NS` is answered, so winsink's start-up probe succeeds.
pub(crate) const ZONE: &[&str] = &[
    r#"local-zone: "." static"#,
    r#"local-data: ". 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300""#,
    r#"local-data: ". 300 IN NS ns.lab.test.""#,
    r#"local-zone: "lab.test." static"#,
    r#"local-data: "lab.test. 300 IN SOA ns.lab.test. admin.lab.test. 1 3600 600 86400 300""#,
    r#"local-data: "ns.lab.test. 300 IN A 192.0.2.1""#,
    // The name of the test certificates, for upstreams given by name.
    r#"local-data: "dns.lab.test. 300 IN A 127.0.0.1""#,
    r#"local-data: "www.lab.test. 300 IN A 192.0.2.10""#,
    r#"local-data: "www.lab.test. 300 IN AAAA 2001:db8::10""#,
    r#"local-data: "alias.lab.test. 300 IN CNAME www.lab.test.""#,
    r#"local-data: "txt.lab.test. 300 IN TXT \"one\" \"two\"""#,
];

/// How long Unbound may take to serve all its ports.
const START: Duration = Duration::from_secs(15);

/// The `unbound` binary, or `None` when it is not installed and `WINSINK_REQUIRE_UNBOUND`
/// is not set (CI sets it, so there a missing Unbound fails the test).
pub(crate) fn binary() -> Option<PathBuf> {
    for p in ["/usr/sbin/unbound", "/usr/bin/unbound"] {
        if Path::new(p).exists() {
            return Some(PathBuf::from(p));
        }
    }
    assert!(
        std::env::var_os("WINSINK_REQUIRE_UNBOUND").is_none(),
        "WINSINK_REQUIRE_UNBOUND is set but Unbound is not installed"
    );
    eprintln!("skipped: Unbound is not installed (apt-get install unbound)");
    None
}

/// A running Unbound, killed on drop.
pub(crate) struct Unbound {
    child: Child,
    /// Plain DNS, UDP and TCP.
    pub(crate) plain: SocketAddr,
    /// DNS over TLS.
    pub(crate) tls: SocketAddr,
    /// DNS over HTTPS (HTTP/2, path `/dns-query`).
    pub(crate) https: SocketAddr,
    log: PathBuf,
    bin: PathBuf,
    leaf: Leaf,
    _dir: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Unbound {
    /// Starts `unbound` serving [`ZONE`], with `leaf` as its TLS certificate; `None`
    /// when Unbound is not installed (see [`binary`]).
    pub(crate) fn start(leaf: &Leaf) -> Option<Self> {
        let bin = binary()?;
        let mut last = String::new();
        for _ in 0..3 {
            let ports = (free_port(), free_port(), free_port());
            match Self::try_start(&bin, leaf, ports) {
                Ok(u) => return Some(u),
                Err(why) => last = why,
            }
        }
        panic!("unbound did not start: {last}");
    }

    /// Stops it and starts it again on the same ports (its clients' connections are
    /// gone).
    pub(crate) fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let ports = (self.plain.port(), self.tls.port(), self.https.port());
        *self = Self::try_start(&self.bin, &self.leaf, ports)
            .unwrap_or_else(|why| panic!("unbound did not start again: {why}"));
    }

    fn try_start(bin: &Path, leaf: &Leaf, ports: (u16, u16, u16)) -> Result<Self, String> {
        let dir = tempfile::tempdir().expect("tempdir");
        let (plain, tls, https) = ports;
        let log = dir.path().join("unbound.log");
        let mut conf = format!(
            "server:\n\
             \x20   interface: 127.0.0.1@{plain}\n\
             \x20   interface: 127.0.0.1@{tls}\n\
             \x20   interface: 127.0.0.1@{https}\n\
             \x20   tls-port: {tls}\n\
             \x20   https-port: {https}\n\
             \x20   tls-service-key: \"{key}\"\n\
             \x20   tls-service-pem: \"{cert}\"\n\
             \x20   http-endpoint: \"/dns-query\"\n\
             \x20   do-ip6: no\n\
             \x20   do-daemonize: no\n\
             \x20   chroot: \"\"\n\
             \x20   username: \"\"\n\
             \x20   directory: \"{dir}\"\n\
             \x20   pidfile: \"\"\n\
             \x20   use-syslog: no\n\
             \x20   logfile: \"{log}\"\n\
             \x20   verbosity: 1\n\
             \x20   access-control: 127.0.0.0/8 allow\n\
             \x20   module-config: \"iterator\"\n",
            key = leaf.key.display(),
            cert = leaf.cert.display(),
            dir = dir.path().display(),
            log = log.display(),
        );
        for line in ZONE {
            conf.push_str("    ");
            conf.push_str(line);
            conf.push('\n');
        }
        conf.push_str("remote-control:\n    control-enable: no\n");
        let path = dir.path().join("unbound.conf");
        std::fs::write(&path, conf).expect("write unbound.conf");
        let child = Command::new(bin)
            .arg("-d")
            .arg("-c")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn unbound");
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let mut unbound = Self {
            child,
            plain: addr(plain),
            tls: addr(tls),
            https: addr(https),
            log,
            bin: bin.to_owned(),
            leaf: leaf.clone(),
            _dir: dir,
        };
        let deadline = Instant::now() + START;
        loop {
            if let Some(status) = unbound.child.try_wait().expect("wait") {
                return Err(format!("exited ({status}); log:\n{}", unbound.log()));
            }
            // Its own "start of service" (a port that another test's Unbound took in the
            // meantime would answer too, but this one exits on failing to bind it).
            let up = unbound.log().contains("start of service")
                && [unbound.plain, unbound.tls, unbound.https]
                    .iter()
                    .all(|a| TcpStream::connect_timeout(a, Duration::from_millis(200)).is_ok());
            if up {
                std::thread::sleep(Duration::from_millis(50));
                if unbound.child.try_wait().expect("wait").is_none() {
                    return Ok(unbound);
                }
                continue;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "no port served in {START:?}; log:\n{}",
                    unbound.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// What Unbound logged so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Unbound {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
