//! What the running daemon loaded, recorded so that `winsink check` can say what a reload
//! would start or stop blocking.
//!
//! `winsink run` writes, at start and after every reload it swaps in, a snapshot file
//! `loaded-PID.json` into its state folder: `$STATE_DIRECTORY` (systemd's
//! `StateDirectory=`, `/var/lib/winsink` with the shipped unit), else
//! `$XDG_STATE_HOME/winsink`, else `~/.local/state/winsink`. It removes the file when it
//! exits. The snapshot holds the config file and the catalog endpoints the daemon blocks
//! (areas whose global action is `block`), as they were when it loaded them: the catalog
//! files may have changed since, which is the point.
//!
//! `winsink check` reads the snapshots of the daemons still running (their process
//! exists) in those folders and in `/var/lib/winsink` (where root finds a systemd
//! daemon's), takes the one that loaded the same config file, and prints the catalog
//! endpoints that loading the config now would start and stop blocking: after an edit the
//! daemon has not picked up yet, or after an upgrade whose built-in catalog changed (the
//! old daemon still runs the old one; a restart loads the new).
//!
//! ```json
//! {"pid": 4242, "config": "/etc/winsink/winsink.toml",
//!  "blocking": [{"area": "diagnostic-data", "pattern": "watson.*.microsoft.com"}]}
//! ```

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use winsink_policy::{Action, Policy};

use crate::config_path::ConfigSource;

/// Where a systemd service's state lives when root runs `check` without its environment.
const SYSTEM_STATE: &str = "/var/lib/winsink";

/// A blocked catalog endpoint.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub(crate) struct Blocked {
    pub(crate) area: String,
    pub(crate) pattern: String,
}

/// What a daemon loaded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Snapshot {
    pub(crate) pid: u32,
    /// The config file (absolute), or `null` for the built-in defaults.
    pub(crate) config: Option<PathBuf>,
    pub(crate) blocking: BTreeSet<Blocked>,
}

/// The catalog endpoints `policy` blocks.
pub(crate) fn blocking(policy: &Policy) -> BTreeSet<Blocked> {
    policy
        .catalog_endpoints()
        .filter(|(_, _, _, action)| *action == Action::Block)
        .map(|(area, _, pattern, _)| Blocked {
            area: area.to_owned(),
            pattern: pattern.to_owned(),
        })
        .collect()
}

fn config_file(source: &ConfigSource) -> Option<PathBuf> {
    match source {
        ConfigSource::File(p, _) => Some(std::fs::canonicalize(p).unwrap_or_else(|_| p.clone())),
        ConfigSource::Builtin => None,
    }
}

/// The folder `run` writes its snapshot into, and whether it was given (systemd's
/// `$STATE_DIRECTORY`, which must be writable) rather than guessed.
fn own_dir_given() -> Option<(PathBuf, bool)> {
    if let Some(d) = std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        // systemd may list several, separated by colons: the first is ours.
        let first = d
            .to_string_lossy()
            .split(':')
            .next()
            .unwrap_or("")
            .to_owned();
        return Some((PathBuf::from(first), true));
    }
    if let Some(d) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return Some((PathBuf::from(d).join("winsink"), false));
    }
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(|h| (PathBuf::from(h).join(".local/state/winsink"), false))
}

fn own_dir() -> Option<PathBuf> {
    own_dir_given().map(|(d, _)| d)
}

fn own_file(dir: &Path) -> PathBuf {
    dir.join(format!("loaded-{}.json", std::process::id()))
}

/// Records what this process loaded; a failure is logged (a warning when systemd gave
/// the folder), never fatal (the daemon serves whether or not `check` can compare).
pub(crate) fn record(source: &ConfigSource, policy: &Policy) {
    let Some((dir, given)) = own_dir_given() else {
        return;
    };
    let snapshot = Snapshot {
        pid: std::process::id(),
        config: config_file(source),
        blocking: blocking(policy),
    };
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(&dir)?;
        let file = own_file(&dir);
        let tmp = file.with_extension("json.tmp");
        std::fs::write(&tmp, serde_json::to_vec(&snapshot).unwrap_or_default())?;
        std::fs::rename(&tmp, &file)
    };
    match write() {
        Ok(()) => {}
        // A folder systemd made for us must take it: say so.
        Err(e) if given => tracing::warn!(
            "cannot record the loaded policy in {} (winsink check cannot compare with it): {e}",
            dir.display()
        ),
        // A guessed one (a container's read-only root, a user without a home) is best
        // effort.
        Err(e) => tracing::debug!("not recording the loaded policy in {}: {e}", dir.display()),
    }
}

/// Removes this process's snapshot (at exit).
pub(crate) fn forget() {
    if let Some(dir) = own_dir() {
        let _ = std::fs::remove_file(own_file(&dir));
    }
}

/// The snapshots of daemons that are still running.
fn running() -> Vec<Snapshot> {
    let mut dirs: Vec<PathBuf> = own_dir().into_iter().collect();
    if !dirs.iter().any(|d| d == Path::new(SYSTEM_STATE)) {
        dirs.push(PathBuf::from(SYSTEM_STATE));
    }
    let mut out: Vec<Snapshot> = Vec::new();
    for dir in dirs {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !(name.starts_with("loaded-") && name.ends_with(".json")) {
                continue;
            }
            let Some(s) = std::fs::read(e.path())
                .ok()
                .and_then(|b| serde_json::from_slice::<Snapshot>(&b).ok())
            else {
                continue;
            };
            let alive = Path::new("/proc").join(s.pid.to_string()).exists();
            if alive && s.pid != std::process::id() && !out.iter().any(|o| o.pid == s.pid) {
                out.push(s);
            }
        }
    }
    out.sort_by_key(|s| s.pid);
    out
}

/// What `check` prints about the running daemon that loaded `source`, if there is one:
/// the catalog endpoints that loading `policy` would start and stop blocking.
pub(crate) fn compare(source: &ConfigSource, policy: &Policy) -> Option<String> {
    let daemons = running();
    let config = config_file(source);
    let daemon = daemons.iter().find(|d| d.config == config)?;
    let new = blocking(policy);
    let start: Vec<&Blocked> = new.difference(&daemon.blocking).collect();
    let stop: Vec<&Blocked> = daemon.blocking.difference(&new).collect();
    let mut s = format!("running daemon (pid {}): ", daemon.pid);
    if start.is_empty() && stop.is_empty() {
        s.push_str("loading this config would start or stop blocking no catalog endpoint\n");
        return Some(s);
    }
    let _ = writeln!(
        s,
        "loading this config would start blocking {} and stop blocking {} catalog \
         endpoint{}",
        start.len(),
        stop.len(),
        if stop.len() == 1 { "" } else { "s" }
    );
    for b in start {
        let _ = writeln!(s, "  + block {}  {}", b.area, b.pattern);
    }
    for b in stop {
        let _ = writeln!(s, "  - block {}  {}", b.area, b.pattern);
    }
    Some(s)
}
