//! Live reload against the real binary: a temp copy of the shipped config is edited while
//! `winsink run` answers real DNS queries from an in-process upstream on loopback.

use std::fs;
use std::io::{BufRead, BufReader};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, OpCode, ResponseCode};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{RData, Record, RecordType};

use crate::support::dns::{ask_udp, query};
use crate::support::repo_root;

/// What the in-process upstream answers for every A question.
const UPSTREAM_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// A Microsoft Store endpoint (`*.wns.windows.com`); the shipped config logs the area.
const STORE_NAME: &str = "x.wns.windows.com";
/// A Diagnostic Data endpoint; the shipped config blocks the area.
const DIAG_NAME: &str = "watson.events.data.microsoft.com";
/// How long a test waits for something that takes well under a second. Only a bound
/// against hanging; how long it really took is printed.
const PATIENCE: Duration = Duration::from_secs(15);

/// A UDP DNS server on 127.0.0.1:0 that answers every A question with [`UPSTREAM_A`]
/// (TTL 1) and every other question with NOERROR and no answer.
struct Upstream {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Upstream {
    fn start() -> Self {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind upstream");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let addr = socket.local_addr().expect("upstream addr");
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let mut buf = [0u8; 1500];
            while !flag.load(Ordering::Relaxed) {
                let Ok((len, from)) = socket.recv_from(&mut buf) else {
                    continue;
                };
                let reply = Message::from_vec(&buf[..len])
                    .ok()
                    .and_then(|q| upstream_answer(&q).to_vec().ok());
                if let Some(reply) = reply {
                    let _ = socket.send_to(&reply, from);
                }
            }
        });
        Self {
            addr,
            stop,
            thread: Some(thread),
        }
    }
}

/// [`UPSTREAM_A`] for an A question, NOERROR with no answer for anything else.
fn upstream_answer(q: &Message) -> Message {
    let mut m = Message::response(q.metadata.id, OpCode::Query);
    m.metadata.authoritative = true;
    m.metadata.recursion_desired = q.metadata.recursion_desired;
    if let Some(question) = q.queries.first() {
        m.add_query(question.clone());
        if question.query_type() == RecordType::A {
            m.add_answer(Record::from_rdata(
                question.name().clone(),
                1,
                RData::A(A(UPSTREAM_A)),
            ));
        }
    }
    m
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// `winsink run` on a temp copy of `config/winsink.toml` (and the catalog it names),
/// listening on 127.0.0.1:0, forwarding to an [`Upstream`]. Killed on drop.
struct Daemon {
    child: Child,
    port: u16,
    stderr: Arc<Mutex<String>>,
    dir: tempfile::TempDir,
    _upstream: Upstream,
}

/// `listen` in the shipped config, and what the tests serve on instead.
const SHIPPED_LISTEN: &str = r#"listen = ["127.0.0.1:5353", "[::1]:5353"]"#;
const LISTEN: &str = r#"listen = ["127.0.0.1:0"]"#;

impl Daemon {
    fn start() -> Self {
        let upstream = Upstream::start();
        let dir = tempfile::tempdir().expect("temp dir");
        // The shipped layout, so the config's relative catalog path works unchanged.
        fs::create_dir(dir.path().join("config")).unwrap();
        fs::create_dir(dir.path().join("policies")).unwrap();
        fs::copy(
            repo_root().join("config/winsink.toml"),
            dir.path().join("config/winsink.toml"),
        )
        .unwrap();
        fs::copy(
            repo_root().join("policies/windows11-enterprise.toml"),
            dir.path().join("policies/windows11-enterprise.toml"),
        )
        .unwrap();
        let config = dir.path().join("config/winsink.toml");
        // Port 0 in the file rather than `--listen`: a flag replaces the file's value at
        // every reload, and a reload's change of `listen` is what a test here edits.
        let text = fs::read_to_string(&config).unwrap();
        assert!(text.contains(SHIPPED_LISTEN), "{text}");
        fs::write(&config, text.replacen(SHIPPED_LISTEN, LISTEN, 1)).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_winsink"))
            .arg("run")
            .arg("--config")
            .arg(&config)
            .arg("--upstream")
            .arg(format!("udp://{}", upstream.addr))
            .args(["--log-format", "json", "--http", "off"])
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn winsink run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = Arc::clone(&stderr);
        let pipe = child.stderr.take().expect("stderr");
        thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut text = sink.lock().unwrap();
                text.push_str(&line);
                text.push('\n');
            }
        });
        let mut daemon = Self {
            child,
            port: 0,
            stderr,
            dir,
            _upstream: upstream,
        };
        daemon.port = daemon.wait_for_port();
        daemon
    }

    /// The port winsink reports for its UDP listener on 127.0.0.1.
    fn wait_for_port(&mut self) -> u16 {
        let started = Instant::now();
        loop {
            if let Some(port) = listening_port(&self.log()) {
                return port;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("winsink exited ({status}):\n{}", self.log());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "winsink did not report its port:\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join("config/winsink.toml")
    }

    /// Replaces one line of the config the way editors save: a temporary file renamed
    /// over the original.
    fn edit(&self, from: &str, to: &str) {
        let text = fs::read_to_string(self.config()).unwrap();
        assert!(text.contains(from), "the config has no `{from}`");
        save(&self.config(), &text.replacen(from, to, 1));
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// winsink's answer to `name` A over UDP.
    fn ask(&self, name: &str) -> Reply {
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let answer = ask_udp(addr, &query(name, RecordType::A, true));
        Reply {
            rcode: answer.metadata.response_code,
            a: answer
                .answers
                .iter()
                .filter_map(|r| match &r.data {
                    RData::A(A(ip)) => Some(*ip),
                    _ => None,
                })
                .collect(),
        }
    }

    /// Asks until `want` holds; returns how long it took.
    fn ask_until(&self, name: &str, want: impl Fn(&Reply) -> bool) -> Duration {
        let started = Instant::now();
        loop {
            let reply = self.ask(name);
            if want(&reply) {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < PATIENCE,
                "{name} still answered {reply:?}\n{}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until the daemon's log contains `needle`.
    fn log_until(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            let log = self.log();
            if log.contains(needle) {
                return log;
            }
            assert!(
                started.elapsed() < PATIENCE,
                "the log never said `{needle}`:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn still_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn save(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.tmp");
    fs::write(&tmp, text).unwrap();
    fs::rename(&tmp, path).unwrap();
}

/// The port of winsink's "listening on 127.0.0.1:PORT" line.
fn listening_port(log: &str) -> Option<u16> {
    log.match_indices("listening on 127.0.0.1:")
        .find_map(|(at, m)| {
            let digits: String = log[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse().ok().filter(|&port| port != 0)
        })
}

/// What an answer to an A question said.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Reply {
    rcode: ResponseCode,
    a: Vec<Ipv4Addr>,
}

fn forwarded(reply: &Reply) -> bool {
    reply.rcode == ResponseCode::NoError && reply.a == [UPSTREAM_A]
}

fn sinkholed(reply: &Reply) -> bool {
    reply.rcode == ResponseCode::NoError && reply.a == [Ipv4Addr::UNSPECIFIED]
}

#[test]
fn setting_microsoft_store_to_block_sinkholes_it_without_restart_and_reverting_forwards_again() {
    let mut daemon = Daemon::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)), "before the edit");
    assert!(sinkholed(&daemon.ask(DIAG_NAME)));

    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "block""#);
    let took = daemon.ask_until(STORE_NAME, sinkholed);
    eprintln!("block took effect after {took:?}");
    let log = daemon.log_until("microsoft-store");
    assert!(
        log.contains("Microsoft Store (microsoft-store): log → block"),
        "the log says what changed:\n{log}"
    );

    daemon.edit(r#"microsoft-store = "block""#, r#"microsoft-store = "log""#);
    let took = daemon.ask_until(STORE_NAME, forwarded);
    eprintln!("revert took effect after {took:?}");
    daemon.log_until("Microsoft Store (microsoft-store): block → log");
    assert!(
        sinkholed(&daemon.ask(DIAG_NAME)),
        "the rest of the policy stays"
    );
    assert!(daemon.still_running(), "no restart");
}

#[test]
fn editing_a_list_file_the_config_references_reloads_it() {
    let daemon = Daemon::start();
    let lists = daemon.config().with_file_name("lists");
    fs::create_dir(&lists).unwrap();
    fs::write(lists.join("lab.txt"), "# names the lab blocks\n").unwrap();
    daemon.edit(
        "\n[server]\n",
        // Empty on purpose (a placeholder the lab fills later): an empty list is
        // refused as a failed download unless it says so.
        "\n[[lists]]\npath = \"lists/lab.txt\"\naction = \"block\"\nlabel = \"lab\"\nallow_empty = true\n\n[server]\n",
    );
    daemon.log_until("list added: lab");
    assert!(forwarded(&daemon.ask(STORE_NAME)));

    // Only the list changes: the watcher follows files the config names, too.
    save(
        &lists.join("lab.txt"),
        "# names the lab blocks\nx.wns.windows.com\n",
    );
    daemon.ask_until(STORE_NAME, sinkholed);
    daemon.log_until("list lab: block 0 names → block 1 names");
}

#[test]
fn a_listen_address_change_is_logged_as_needing_a_restart() {
    let daemon = Daemon::start();
    daemon.edit(LISTEN, r#"listen = ["0.0.0.0:53"]"#);
    let log = daemon.log_until("restart winsink");
    assert!(
        log.contains(r#"[server] listen: ["127.0.0.1:0"] → ["0.0.0.0:53"]"#),
        "{log}"
    );
    assert!(
        forwarded(&daemon.ask(STORE_NAME)),
        "still serving where it was"
    );

    // Reverting it leaves nothing to restart for: the file again says what runs.
    daemon.edit(r#"listen = ["0.0.0.0:53"]"#, LISTEN);
    let log = daemon.log_until("reloaded: no change to the policy");
    assert_eq!(log.matches("restart winsink").count(), 1, "{log}");
}

#[test]
fn an_invalid_edit_keeps_the_running_policy_and_logs_why_until_fixed() {
    let mut daemon = Daemon::start();
    let line = fs::read_to_string(daemon.config())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("microsoft-store"))
        .expect("microsoft-store line")
        + 1;

    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "blok""#);
    let log = daemon.log_until("reload failed");
    assert!(
        log.contains(&format!(
            "winsink.toml:{line}: `microsoft-store` = \"blok\""
        )),
        "the error names the file, line and key:\n{log}"
    );
    assert!(log.contains("did you mean `block`?"), "{log}");
    assert!(
        forwarded(&daemon.ask(STORE_NAME)),
        "the old policy still answers"
    );
    assert!(sinkholed(&daemon.ask(DIAG_NAME)));
    assert!(daemon.still_running());

    daemon.edit(
        r#"microsoft-store = "blok""#,
        r#"microsoft-store = "block""#,
    );
    daemon.ask_until(STORE_NAME, sinkholed);
    assert_eq!(
        daemon.log().matches("reload failed").count(),
        1,
        "the error is logged once:\n{}",
        daemon.log()
    );
}

#[test]
fn sighup_forces_a_reload_of_unchanged_files() {
    let daemon = Daemon::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)));
    // Once the edit is in force the files are unchanged: only SIGHUP makes it load again.
    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "block""#);
    daemon.ask_until(STORE_NAME, sinkholed);
    let status = Command::new("kill")
        .args(["-HUP", &daemon.child.id().to_string()])
        .status()
        .expect("kill -HUP");
    assert!(status.success());
    daemon.log_until("SIGHUP");
    daemon.log_until("reloaded: no change to the policy");
    assert!(sinkholed(&daemon.ask(STORE_NAME)));
}

#[test]
fn sigterm_stops_gracefully_with_exit_code_zero() {
    let mut daemon = Daemon::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)));
    let status = Command::new("kill")
        .args(["-TERM", &daemon.child.id().to_string()])
        .status()
        .expect("kill -TERM");
    assert!(status.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = daemon.child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < PATIENCE,
            "winsink did not stop on SIGTERM"
        );
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "{}", daemon.log());
}
