//! Query-log faults: a full disk, and log rotation by rename.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::RecordType;

use super::{assert_sinkholed, count_lines, start, upstream, BLOCKED};
use crate::support::dns::{ask_udp, query, Daemon, WAIT};

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one (root only); `None` where that is not allowed.
    fn mount(size: &str) -> Option<Self> {
        let dir = tempfile::tempdir().expect("tempdir");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Self { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes a file that takes every free byte of the file system `dir` is on.
fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).expect("filler");
    let block = vec![b'x'; 4096];
    while f.write(&block).is_ok_and(|n| n > 0) {}
    path
}

fn signal(daemon: &Daemon, sig: &str) {
    let ok = Command::new("kill")
        .args([sig, &daemon.pid().to_string()])
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig}");
}

/// Asks for the blocked name `n` times, each answered with the sinkhole.
fn ask_blocked(daemon: &Daemon, n: usize) {
    for _ in 0..n {
        assert_sinkholed(&ask_udp(daemon.addr, &query(BLOCKED, RecordType::A, false)));
    }
}

/// Every line of the file parses as JSON; how many there are.
fn whole_json_lines(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).expect("read the log");
    for l in text.lines() {
        serde_json::from_str::<serde_json::Value>(l)
            .unwrap_or_else(|e| panic!("half a line or not JSON ({e}): {l:?}"));
    }
    assert!(text.is_empty() || text.ends_with('\n'), "ends mid-line");
    text.lines().count()
}

#[test]
fn a_full_disk_drops_and_counts_query_lines_then_writing_resumes_on_a_whole_line() {
    let Some(fs) = Tmpfs::mount("256k") else {
        assert!(
            std::env::var_os("WINSINK_REQUIRE_TMPFS").is_none(),
            "WINSINK_REQUIRE_TMPFS is set but a tmpfs cannot be mounted here"
        );
        eprintln!("cannot mount a tmpfs here: the /dev/full variant runs instead");
        return a_log_that_cannot_be_written_is_retried_by_path();
    };
    let log = fs.path().join("q.log");
    let up = upstream();
    let mut daemon = start(
        &[up.url()],
        &format!(
            "[log]\nfile = {:?}\nformat = \"json\"",
            log.display().to_string()
        ),
    );
    let mut sent = 0;
    ask_blocked(&daemon, 20);
    sent += 20;
    let filler = fill(fs.path());

    // The disk is full: answers go on, lines are dropped, and it is said once.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        ask_blocked(&daemon, 20);
        sent += 20;
        std::thread::sleep(Duration::from_millis(20));
    }
    let err = daemon.stderr_until("No space left on device");
    assert_eq!(count_lines(&err, "query log: cannot write to"), 1, "{err}");

    // Space is back: writing resumes within the retry interval.
    std::fs::remove_file(&filler).expect("remove filler");
    let deadline = Instant::now() + WAIT;
    while !daemon.stderr().contains("query log: writing to") {
        assert!(Instant::now() < deadline, "{}", daemon.stderr());
        ask_blocked(&daemon, 1);
        sent += 1;
        std::thread::sleep(Duration::from_millis(50));
    }
    ask_blocked(&daemon, 10);
    sent += 10;
    let (status, _) = daemon.terminate();
    assert!(status.success());
    let err = daemon.stderr();
    let written = whole_json_lines(&log);
    let dropped = dropped_over_the_run(&err);
    assert!(dropped > 0, "{err}");
    assert_eq!(
        written + dropped,
        sent,
        "every line written or counted:\n{err}"
    );
}

/// The count of the shutdown line `query log: N lines dropped over the run`.
fn dropped_over_the_run(err: &str) -> usize {
    let line = err
        .lines()
        .find(|l| l.contains("lines dropped over the run"))
        .unwrap_or_else(|| panic!("no shutdown total:\n{err}"));
    let n = line
        .split("query log: ")
        .nth(1)
        .and_then(|r| r.split(' ').next())
        .expect("count");
    n.replace(',', "").parse().expect("a number")
}

/// Where no tmpfs can be mounted: the log path points at `/dev/full` (every write
/// fails with ENOSPC) after a SIGUSR1, then at a file again: the same code path.
fn a_log_that_cannot_be_written_is_retried_by_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("q.log");
    let up = upstream();
    let mut daemon = start(
        &[up.url()],
        &format!(
            "[log]\nfile = {:?}\nformat = \"json\"",
            log.display().to_string()
        ),
    );
    ask_blocked(&daemon, 5);
    std::fs::rename(&log, dir.path().join("q.log.1")).expect("mv");
    std::os::unix::fs::symlink("/dev/full", &log).expect("symlink");
    signal(&daemon, "-USR1");
    daemon.stderr_until("reopened");
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        ask_blocked(&daemon, 5);
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon.stderr_until("No space left on device");
    std::fs::remove_file(&log).expect("rm symlink");
    let deadline = Instant::now() + WAIT;
    while !daemon.stderr().contains("query log: writing to") {
        assert!(Instant::now() < deadline, "{}", daemon.stderr());
        ask_blocked(&daemon, 1);
        std::thread::sleep(Duration::from_millis(50));
    }
    let (status, _) = daemon.terminate();
    assert!(status.success());
    assert!(whole_json_lines(&log) > 0);
    assert!(dropped_over_the_run(&daemon.stderr()) > 0);
}

#[test]
fn sighup_and_sigusr1_reopen_a_renamed_query_log() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = dir.path().join("q.log");
    let up = upstream();
    let mut daemon = start(
        &[up.url()],
        &format!(
            "[log]\nfile = {:?}\nformat = \"json\"",
            log.display().to_string()
        ),
    );
    for (n, sig) in [(1, "-HUP"), (2, "-USR1")] {
        ask_blocked(&daemon, 3);
        let rotated = dir.path().join(format!("q.log.{n}"));
        // Lines are written within 100 ms; the file must hold them before it moves.
        let deadline = Instant::now() + WAIT;
        while std::fs::read_to_string(&log).map_or(0, |t| t.lines().count()) < 3 {
            assert!(Instant::now() < deadline, "lines not written");
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::rename(&log, &rotated).expect("mv");
        let before = count_lines(&daemon.stderr(), "query log: reopened");
        signal(&daemon, sig);
        let deadline = Instant::now() + WAIT;
        while count_lines(&daemon.stderr(), "query log: reopened") == before {
            assert!(Instant::now() < deadline, "{}", daemon.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(whole_json_lines(&rotated), 3, "{sig}");
    }
    ask_blocked(&daemon, 2);
    let (status, _) = daemon.terminate();
    assert!(status.success());
    assert_eq!(whole_json_lines(&log), 2, "the lines after the last signal");
    assert!(daemon
        .stderr()
        .contains("SIGHUP: reloading the config, reopening the query log"));
}
