//! The reloader applied to winsink's policy: [`PolicySource`] loads the config file as
//! `winsink run` did at start, and [`start`] is what `winsink run` calls.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use winsink_policy::{Policy, PolicyError, Summary};

use super::{Changes, Loaded, Options, Reloader, Source};
use crate::config_path::ConfigSource;

/// What `winsink run` loaded at start, for the reloader to take over.
pub(crate) struct Watch {
    /// The config, as `winsink run` found it.
    pub(crate) config: ConfigSource,
    /// Every file the policy in force was read from.
    pub(crate) files: Vec<PathBuf>,
    /// The warnings of that load, already logged.
    pub(crate) warnings: Vec<String>,
}

/// Keeps `current` in step with the config file until `shutdown`: watches the files it
/// was loaded from. Send to the returned [`Reloader::force`] to reload now (SIGHUP).
pub(crate) fn start(
    watch: Watch,
    current: Arc<ArcSwap<Policy>>,
    shutdown: CancellationToken,
) -> Reloader {
    let source = Arc::new(PolicySource::new(watch.config));
    super::spawn(
        source,
        current,
        Options::new(watch.files, watch.warnings),
        shutdown,
    )
}

/// The policy in force, reloaded from its config file.
pub(crate) struct PolicySource {
    config: ConfigSource,
}

impl PolicySource {
    /// Reloads from `config`, what `winsink run` was started with.
    pub(crate) fn new(config: ConfigSource) -> Self {
        Self { config }
    }
}

impl Source for PolicySource {
    type Snapshot = Policy;

    fn load(&self) -> anyhow::Result<Loaded<Policy>> {
        let loaded = self.config.load()?;
        Ok(Loaded {
            value: loaded.policy,
            files: loaded.files,
            warnings: loaded.warnings,
        })
    }

    fn changes(&self, old: &Policy, new: &Policy) -> Changes {
        let (before, after) = (old.summary(), new.summary());
        let mut changes = Changes {
            applied: Summary::diff(&before, &after),
            need_restart: Vec::new(),
            alarms: removals_past_half(&before, &after),
        };
        let sections = [
            ("server", json(old.server()), json(new.server())),
            ("sinkhole", json(old.sinkhole()), json(new.sinkhole())),
            ("cache", json(old.cache()), json(new.cache())),
            ("log", json(old.log()), json(new.log())),
        ];
        for (section, before, after) in sections {
            let keys: BTreeSet<&String> = before.keys().chain(after.keys()).collect();
            for key in keys {
                let (b, a) = (before.get(key), after.get(key));
                if b == a {
                    continue;
                }
                let show =
                    |v: Option<&serde_json::Value>| v.map_or("(none)".into(), ToString::to_string);
                let line = format!("[{section}] {key}: {} → {}", show(b), show(a));
                if RESTART_ONLY.contains(&(section, key.as_str())) {
                    changes.need_restart.push(line);
                } else {
                    changes.applied.push(line);
                }
            }
        }
        changes
    }

    fn failure_line(&self, err: &anyhow::Error) -> String {
        match err.downcast_ref::<PolicyError>() {
            // Not an edit anyone means: the exact words the operator should see.
            Some(PolicyError::EmptyConfig { path }) => {
                format!("{} is empty: keeping the running policy", path.display())
            }
            _ => format!("reload failed; still serving the previous policy: {err:#}"),
        }
    }

    fn missing_files(&self, err: &anyhow::Error) -> Vec<PathBuf> {
        fn collect(err: &PolicyError, out: &mut Vec<PathBuf>) {
            match err {
                PolicyError::Io { path, .. } | PolicyError::List { path, .. } => {
                    out.push(path.clone());
                }
                PolicyError::Several(errors) => errors.iter().for_each(|e| collect(e, out)),
                _ => {}
            }
        }
        let mut out = Vec::new();
        if let Some(err) = err.downcast_ref::<PolicyError>() {
            collect(err, &mut out);
        }
        out
    }
}

/// Names at most this many of the things a removal alarm is about.
const NAMED: usize = 10;

/// What a reload from `old` to `new` removes that is more than half of its kind: areas,
/// rules, lists, or the entries of one list. One line each, naming what went.
fn removals_past_half(old: &Summary, new: &Summary) -> Vec<String> {
    fn gone<T: Ord + Clone>(old: &[T], new: &[T]) -> Vec<T> {
        let kept: BTreeSet<&T> = new.iter().collect();
        old.iter().filter(|x| !kept.contains(x)).cloned().collect()
    }
    fn names(items: &[String]) -> String {
        let mut text = items
            .iter()
            .take(NAMED)
            .cloned()
            .collect::<Vec<_>>()
            .join(", ");
        if items.len() > NAMED {
            text.push_str(&format!(", and {} more", items.len() - NAMED));
        }
        text
    }
    let past_half = |removed: usize, of: usize| of > 0 && removed * 2 > of;
    let mut out = Vec::new();
    let mut kind = |what: &str, old_ids: Vec<String>, new_ids: Vec<String>| {
        let removed = gone(&old_ids, &new_ids);
        if past_half(removed.len(), old_ids.len()) {
            out.push(format!(
                "{} of {} {what}: {}",
                removed.len(),
                old_ids.len(),
                names(&removed)
            ));
        }
    };
    kind(
        "areas",
        old.areas.iter().map(|a| a.id.clone()).collect(),
        new.areas.iter().map(|a| a.id.clone()).collect(),
    );
    let rule = |r: &winsink_policy::RuleSummary| match &r.group {
        Some(g) => format!("{} {} (group {g})", r.action, r.pattern),
        None => format!("{} {}", r.action, r.pattern),
    };
    kind(
        "rules",
        old.rules.iter().map(rule).collect(),
        new.rules.iter().map(rule).collect(),
    );
    let list = |l: &winsink_policy::ListSummary| format!("`{}` ({})", l.label, l.path.display());
    kind(
        "lists",
        old.lists.iter().map(list).collect(),
        new.lists.iter().map(list).collect(),
    );
    for l in &new.lists {
        if let Some(o) = old.lists.iter().find(|o| o.path == l.path) {
            if past_half(o.loaded.saturating_sub(l.loaded), o.loaded) {
                out.push(format!(
                    "{} of the {} entries of list {}: {} are left",
                    o.loaded - l.loaded,
                    o.loaded,
                    list(l),
                    l.loaded
                ));
            }
        }
    }
    out
}

/// Settings the server reads once at start (sockets, upstreams, cache size, log sink);
/// every other setting is read from the policy in force, query by query.
const RESTART_ONLY: &[(&str, &str)] = &[
    ("server", "listen"),
    ("server", "upstreams"),
    ("server", "upstream_timeout_ms"),
    ("server", "udp_sockets"),
    ("server", "udp_payload"),
    ("server", "tcp_idle_timeout_secs"),
    ("server", "tcp_max_connections"),
    ("cache", "enabled"),
    ("cache", "size"),
    ("log", "format"),
    ("log", "file"),
    ("log", "queue"),
];

/// A settings table as JSON, to compare key by key.
fn json<T: serde::Serialize>(settings: &T) -> serde_json::Map<String, serde_json::Value> {
    match serde_json::to_value(settings) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config_path::Found;

    #[test]
    fn policy_changes_list_rules_and_settings_that_need_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        let write = |rule: &str, port: u16, mode: &str| {
            let text = format!(
                "catalogs = []\n[[rules]]\npattern = \"{rule}\"\naction = \"block\"\n\
                 [server]\nlisten = [\"127.0.0.1:{port}\"]\n[sinkhole]\nmode = \"{mode}\"\n"
            );
            fs::write(&config, text).unwrap();
        };
        let source = PolicySource::new(ConfigSource::File(config.clone(), Found::Flag));
        write("a.example", 5353, "null-ip");
        let old = source.load().unwrap();
        assert_eq!(old.files, vec![config.clone()]);
        write("b.example", 5454, "nxdomain");
        let new = source.load().unwrap();
        let changes = source.changes(&old.value, &new.value);
        assert_eq!(
            changes.applied,
            [
                "rule added: block b.example",
                "rule removed: block a.example",
                r#"[sinkhole] mode: "null-ip" → "nxdomain""#,
            ]
        );
        assert_eq!(
            changes.need_restart,
            [r#"[server] listen: ["127.0.0.1:5353"] → ["127.0.0.1:5454"]"#]
        );
    }

    #[test]
    fn a_list_file_that_cannot_be_read_is_watched_for() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        fs::write(
            &config,
            "catalogs = []\n[[lists]]\npath = \"lists/block.txt\"\naction = \"block\"\n",
        )
        .unwrap();
        let source = PolicySource::new(ConfigSource::File(config, Found::Flag));
        let Err(err) = source.load() else {
            panic!("a missing list must fail the load")
        };
        let missing = source.missing_files(&err);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].ends_with("lists/block.txt"), "{missing:?}");
    }
}
