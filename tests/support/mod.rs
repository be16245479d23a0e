//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Command, Output};

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

/// stdout as text.
pub(crate) fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// stderr as text.
pub(crate) fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// DNS helpers: a test upstream, a running `winsink run`, a client.
pub(crate) mod dns;

/// An HTTP client for the metrics and API listener.
pub(crate) mod http;

/// Test certificates: a CA and the leaves it signs, as PEM files.
pub(crate) mod tls;

/// A real Unbound on loopback: plain DNS, DoT and DoH.
pub(crate) mod unbound;
