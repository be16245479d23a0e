//! What the running daemon loaded, recorded so that `winsink check` can say what a reload
//! would start or stop blocking.
//!
//! `winsink run` writes, at start and after every reload it swaps in, a snapshot file
//! `loaded-PID.json` into its state folder: `$STATE_DIRECTORY` (systemd's
//! `StateDirectory=`, `/var/lib/winsink` with the shipped unit), else
//! `$XDG_STATE_HOME/winsink`, else `~/.local/state/winsink`. It removes the file when it
//! exits. The snapshot holds the config file and the catalog endpoints the daemon blocks
//! (areas whose global action is `block`), and per client group those the group's
//! clients get blocked (its overrides, its `default_action`, else the global actions), as
//! they were when it loaded them: the catalog files may have changed since, which is the
//! point.
//!
//! `winsink check` reads the snapshots of the daemons still running (their process
//! exists) in those folders and in `/var/lib/winsink` (where root finds a systemd
//! daemon's), takes the one that loaded the same config file, and prints the catalog
//! endpoints that loading the config now would start and stop blocking: after an edit the
//! daemon has not picked up yet, or after an upgrade whose built-in catalog changed (the
//! old daemon still runs the old one; a restart loads the new). The global changes come
//! first; then each group whose clients would see other changes than those (its overrides
//! differ, or the group is new or gone) is listed with its own. A snapshot without
//! `groups` (written before groups were recorded) counts as a daemon without groups.
//!
//! ```json
//! {"pid": 4242, "config": "/etc/winsink/winsink.toml",
//!  "blocking": [{"area": "diagnostic-data", "pattern": "watson.*.microsoft.com"}],
//!  "groups": {"lab": [{"area": "diagnostic-data", "pattern": "watson.*.microsoft.com"},
//!                     {"area": "office", "pattern": "self.events.data.microsoft.com"}]}}
//! ```

use std::collections::{BTreeMap, BTreeSet};
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
    /// The catalog endpoints blocked for clients in no group.
    pub(crate) blocking: BTreeSet<Blocked>,
    /// Per client group, those blocked for its clients.
    #[serde(default)]
    pub(crate) groups: BTreeMap<String, BTreeSet<Blocked>>,
}

/// The catalog endpoints `policy` blocks for clients in no group, and per client group.
pub(crate) fn blocking(
    policy: &Policy,
) -> (BTreeSet<Blocked>, BTreeMap<String, BTreeSet<Blocked>>) {
    let blocked = |(area, pattern, action): (&str, &str, Action)| {
        (action == Action::Block).then(|| Blocked {
            area: area.to_owned(),
            pattern: pattern.to_owned(),
        })
    };
    let global = policy
        .catalog_endpoints()
        .filter_map(|(area, _, pattern, action)| blocked((area, pattern, action)))
        .collect();
    let groups = policy
        .group_catalog_endpoints()
        .map(|(name, endpoints)| (name.to_owned(), endpoints.filter_map(blocked).collect()))
        .collect();
    (global, groups)
}

/// What loading starts and stops blocking, going from `old` to `new`.
#[derive(Debug, PartialEq, Eq)]
struct Changes<'a> {
    start: Vec<&'a Blocked>,
    stop: Vec<&'a Blocked>,
}

impl<'a> Changes<'a> {
    fn between(old: &'a BTreeSet<Blocked>, new: &'a BTreeSet<Blocked>) -> Self {
        Self {
            start: new.difference(old).collect(),
            stop: old.difference(new).collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.start.is_empty() && self.stop.is_empty()
    }

    /// "start blocking N and stop blocking M catalog endpoint(s)".
    fn counts(&self) -> String {
        format!(
            "start blocking {} and stop blocking {} catalog endpoint{}",
            self.start.len(),
            self.stop.len(),
            if self.stop.len() == 1 { "" } else { "s" }
        )
    }

    fn list(&self, out: &mut String, indent: &str) {
        for b in &self.start {
            let _ = writeln!(out, "{indent}+ block {}  {}", b.area, b.pattern);
        }
        for b in &self.stop {
            let _ = writeln!(out, "{indent}- block {}  {}", b.area, b.pattern);
        }
    }
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
    let (blocking, groups) = blocking(policy);
    let snapshot = Snapshot {
        pid: std::process::id(),
        config: config_file(source),
        blocking,
        groups,
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
    let (global, groups) = blocking(policy);
    Some(describe(daemon, &global, &groups))
}

/// The changes from what `daemon` blocks to `global` and `groups`.
fn describe(
    daemon: &Snapshot,
    global: &BTreeSet<Blocked>,
    groups: &BTreeMap<String, BTreeSet<Blocked>>,
) -> String {
    let everyone = Changes::between(&daemon.blocking, global);
    // A group's clients get the global actions where the group is not (or no longer)
    // configured.
    let names: BTreeSet<&String> = daemon.groups.keys().chain(groups.keys()).collect();
    let per_group: Vec<(&String, Changes<'_>)> = names
        .into_iter()
        .map(|g| {
            let old = daemon.groups.get(g).unwrap_or(&daemon.blocking);
            let new = groups.get(g).unwrap_or(global);
            (g, Changes::between(old, new))
        })
        .filter(|(_, c)| *c != everyone)
        .collect();
    let mut s = format!("running daemon (pid {}): ", daemon.pid);
    if everyone.is_empty() && per_group.is_empty() {
        s.push_str("loading this config would start or stop blocking no catalog endpoint\n");
        return s;
    }
    let _ = writeln!(
        s,
        "loading this config would {}{}",
        everyone.counts(),
        if per_group.is_empty() {
            ""
        } else {
            " for clients in no group"
        }
    );
    everyone.list(&mut s, "  ");
    for (g, c) in per_group {
        let _ = writeln!(s, "  group {g}: {}", c.counts());
        c.list(&mut s, "    ");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(items: &[(&str, &str)]) -> BTreeSet<Blocked> {
        items
            .iter()
            .map(|(area, pattern)| Blocked {
                area: (*area).to_owned(),
                pattern: (*pattern).to_owned(),
            })
            .collect()
    }

    #[test]
    fn a_snapshot_written_before_groups_were_recorded_still_reads() {
        let s: Snapshot = serde_json::from_str(
            r#"{"pid": 7, "config": null, "blocking": [{"area": "a", "pattern": "x.test"}]}"#,
        )
        .unwrap();
        assert_eq!(s.blocking, set(&[("a", "x.test")]));
        assert!(s.groups.is_empty());
        // A group configured now gets the global changes: it is not listed apart.
        let groups = BTreeMap::from([("lab".to_owned(), set(&[("a", "x.test")]))]);
        assert_eq!(
            describe(&s, &set(&[("a", "x.test")]), &groups),
            "running daemon (pid 7): loading this config would start or stop blocking no \
             catalog endpoint\n"
        );
    }
}
