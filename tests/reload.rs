//! Live reload against the real binary: a temp copy of the shipped config is edited while
//! `winsink run` answers real DNS queries from an in-process upstream on loopback.

use std::fs;
use std::net::Ipv4Addr;
use std::time::Duration;

use hickory_proto::op::Message;

use crate::support::dns::{self, is_sinkholed, Daemon, Launch, TestUpstream, LISTEN_ANY_PORT};
use crate::support::save;

/// What the test upstream answers for every A question outside its zone.
const UPSTREAM_A: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// A Microsoft Store endpoint (`*.wns.windows.com`); the shipped config logs the area.
const STORE_NAME: &str = "x.wns.windows.com";
/// A Diagnostic Data endpoint; the shipped config blocks the area.
const DIAG_NAME: &str = "watson.events.data.microsoft.com";

/// `winsink run` on a temp copy of the shipped config ([`Launch::shipped`]), forwarding
/// to a test upstream that answers every A question with [`UPSTREAM_A`].
struct Lab {
    daemon: Daemon,
    _upstream: TestUpstream,
}

impl std::ops::Deref for Lab {
    type Target = Daemon;
    fn deref(&self) -> &Daemon {
        &self.daemon
    }
}

impl std::ops::DerefMut for Lab {
    fn deref_mut(&mut self) -> &mut Daemon {
        &mut self.daemon
    }
}

impl Lab {
    fn start() -> Self {
        let upstream = TestUpstream::answering_every_a(UPSTREAM_A);
        let daemon = Launch::shipped()
            .args(&["--upstream", &upstream.url(), "--http", "off"])
            .discard_stdout()
            .start();
        Self {
            daemon,
            _upstream: upstream,
        }
    }

    /// winsink's answer to `name` A over UDP.
    fn ask(&self, name: &str) -> Message {
        dns::ask_udp(
            self.addr,
            &dns::query(name, hickory_proto::rr::RecordType::A, true),
        )
    }

    /// Asks until `want` holds; returns how long it took (printed by the tests: the
    /// bound is only against hanging).
    fn ask_until(&self, name: &str, want: impl Fn(&Message) -> bool) -> Duration {
        dns::ask_until(self.addr, name, want)
    }
}

fn forwarded(answer: &Message) -> bool {
    answer.metadata.response_code == hickory_proto::op::ResponseCode::NoError
        && dns::a_records(answer) == [UPSTREAM_A]
}

#[test]
fn setting_microsoft_store_to_block_sinkholes_it_without_restart_and_reverting_forwards_again() {
    let mut daemon = Lab::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)), "before the edit");
    assert!(is_sinkholed(&daemon.ask(DIAG_NAME)));

    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "block""#);
    let took = daemon.ask_until(STORE_NAME, is_sinkholed);
    eprintln!("block took effect after {took:?}");
    let log = daemon.stderr_until("microsoft-store");
    assert!(
        log.contains("Microsoft Store (microsoft-store): log → block"),
        "the log says what changed:\n{log}"
    );

    daemon.edit(r#"microsoft-store = "block""#, r#"microsoft-store = "log""#);
    let took = daemon.ask_until(STORE_NAME, forwarded);
    eprintln!("revert took effect after {took:?}");
    daemon.stderr_until("Microsoft Store (microsoft-store): block → log");
    assert!(
        is_sinkholed(&daemon.ask(DIAG_NAME)),
        "the rest of the policy stays"
    );
    assert!(daemon.running(), "no restart");
}

#[test]
fn editing_a_list_file_the_config_references_reloads_it() {
    let daemon = Lab::start();
    let lists = daemon.config_path().with_file_name("lists");
    fs::create_dir(&lists).unwrap();
    fs::write(lists.join("lab.txt"), "# names the lab blocks\n").unwrap();
    daemon.edit(
        "\n[server]\n",
        // Empty on purpose (a placeholder the lab fills later): an empty list is
        // refused as a failed download unless it says so.
        "\n[[lists]]\npath = \"lists/lab.txt\"\naction = \"block\"\nlabel = \"lab\"\nallow_empty = true\n\n[server]\n",
    );
    daemon.stderr_until("list added: lab");
    assert!(forwarded(&daemon.ask(STORE_NAME)));

    // Only the list changes: the watcher follows files the config names, too.
    save(
        &lists.join("lab.txt"),
        "# names the lab blocks\nx.wns.windows.com\n",
    );
    daemon.ask_until(STORE_NAME, is_sinkholed);
    daemon.stderr_until("list lab: block 0 → 1 names");
}

#[test]
fn a_listen_address_change_is_logged_as_needing_a_restart() {
    let daemon = Lab::start();
    daemon.edit(LISTEN_ANY_PORT, r#"listen = ["0.0.0.0:53"]"#);
    let log = daemon.stderr_until("restart winsink");
    assert!(
        log.contains(r#"[server] listen: ["127.0.0.1:0"] → ["0.0.0.0:53"]"#),
        "{log}"
    );
    assert!(
        forwarded(&daemon.ask(STORE_NAME)),
        "still serving where it was"
    );

    // Reverting it leaves nothing to restart for: the file again says what runs.
    daemon.edit(r#"listen = ["0.0.0.0:53"]"#, LISTEN_ANY_PORT);
    let log = daemon.stderr_until("reloaded: no change to the policy");
    assert_eq!(log.matches("restart winsink").count(), 1, "{log}");
}

#[test]
fn an_invalid_edit_keeps_the_running_policy_and_logs_why_until_fixed() {
    let mut daemon = Lab::start();
    let line = fs::read_to_string(daemon.config_path())
        .unwrap()
        .lines()
        .position(|l| l.starts_with("microsoft-store"))
        .expect("microsoft-store line")
        + 1;

    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "blok""#);
    let log = daemon.stderr_until("reload failed");
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
    assert!(is_sinkholed(&daemon.ask(DIAG_NAME)));
    assert!(daemon.running());

    daemon.edit(
        r#"microsoft-store = "blok""#,
        r#"microsoft-store = "block""#,
    );
    daemon.ask_until(STORE_NAME, is_sinkholed);
    assert_eq!(
        daemon.stderr().matches("reload failed").count(),
        1,
        "the error is logged once:\n{}",
        daemon.stderr()
    );
}

#[test]
fn sighup_forces_a_reload_of_unchanged_files() {
    let daemon = Lab::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)));
    // Once the edit is in force the files are unchanged: only SIGHUP makes it load again.
    daemon.edit(r#"microsoft-store = "log""#, r#"microsoft-store = "block""#);
    daemon.ask_until(STORE_NAME, is_sinkholed);
    daemon.signal("HUP");
    daemon.stderr_until("SIGHUP");
    daemon.stderr_until("reloaded: no change to the policy");
    assert!(is_sinkholed(&daemon.ask(STORE_NAME)));
}

#[test]
fn sigterm_stops_gracefully_with_exit_code_zero() {
    let mut daemon = Lab::start();
    assert!(forwarded(&daemon.ask(STORE_NAME)));
    let (status, _) = daemon.terminate();
    assert_eq!(status.code(), Some(0), "{}", daemon.stderr());
}
