//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// How long any single wait may take before the test fails.
pub(crate) const WAIT: Duration = Duration::from_secs(10);

/// The repository root (where `config/` and `policies/` live).
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root")
}

/// A `Command` for the real `winsink` binary, run from the repository root.
pub(crate) fn winsink() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_winsink"));
    cmd.current_dir(repo_root());
    cmd
}

/// Runs `winsink ARGS...` to completion.
pub(crate) fn run_winsink(args: &[&str]) -> Output {
    winsink().args(args).output().expect("spawn winsink")
}

/// Runs `winsink ARGS...` to completion with `input` on its stdin.
pub(crate) fn run_winsink_with_stdin(args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = winsink()
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn winsink");
    // Written from a thread: winsink may answer before it has read all of it.
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("wait for winsink");
    writer.join().expect("stdin writer").expect("write stdin");
    out
}

/// stdout as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Saves `text` to `path` the way editors do: a temporary file beside it, renamed over it.
pub(crate) fn save(path: &Path, text: &str) {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    std::fs::write(&tmp, text).expect("write the temporary file");
    std::fs::rename(&tmp, path).expect("rename it over the file");
}

/// DNS helpers: a test upstream, a running `winsink run`, a client.
pub(crate) mod dns;

/// A running `winsink` process: stderr, reported addresses, signals, exit.
pub(crate) mod process;

/// An HTTP client for the metrics and API listener.
pub(crate) mod http;

/// Test certificates: a CA and the leaves it signs, as PEM files.
pub(crate) mod tls;

/// A real Unbound on loopback: plain DNS, DoT and DoH.
pub(crate) mod unbound;
