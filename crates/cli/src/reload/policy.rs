//! The reloader applied to winsink's policy: [`PolicySource`] loads the config file as
//! `winsink run` did at start, and [`start`] is what `winsink run` calls.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use tokio_util::sync::CancellationToken;
use winsink_policy::{Policy, PolicyError, Startup, Summary};

use super::{Changes, Loaded, Options, Reloader, Source};
use crate::config_path::ConfigSource;
use crate::run_cmd::Overrides;

/// What `winsink run` loaded at start, for the reloader to take over.
pub(crate) struct Watch {
    /// The config, as `winsink run` found it.
    pub(crate) config: ConfigSource,
    /// Every file the policy in force was read from.
    pub(crate) files: Vec<PathBuf>,
    /// The warnings of that load, already logged.
    pub(crate) warnings: Vec<String>,
    /// The settings the process runs with (the flags applied).
    pub(crate) startup: Startup,
    /// The flags, applied to every reload's settings too.
    pub(crate) overrides: Overrides,
}

/// Keeps `current` in step with the config file until `shutdown`: watches the files it
/// was loaded from. Send to the returned [`Reloader::force`] to reload now (SIGHUP).
pub(crate) fn start(
    watch: Watch,
    current: Arc<ArcSwap<Policy>>,
    metrics: Option<Arc<winsink_server::Metrics>>,
    shutdown: CancellationToken,
) -> Reloader {
    let source = Arc::new(PolicySource {
        config: watch.config,
        running: watch.startup,
        overrides: watch.overrides,
    });
    let mut options = Options::new(watch.files, watch.warnings);
    // Each attempt that loaded or failed is counted in winsink_policy_reloads_total.
    if let Some(m) = metrics {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        options.observer = Some(tx);
        tokio::spawn(async move {
            while let Some(outcome) = rx.recv().await {
                match outcome {
                    super::Outcome::Swapped(_) => m.reloaded(true),
                    super::Outcome::Failed(_) => m.reloaded(false),
                    super::Outcome::Unchanged => {}
                }
            }
        });
    }
    super::spawn(source, current, options, shutdown)
}

/// The policy in force, reloaded from its config file.
pub(crate) struct PolicySource {
    /// What `winsink run` was started with.
    config: ConfigSource,
    /// The settings the process runs with: a reload's are compared with these.
    running: Startup,
    /// The flags, which replace the file's values in every load.
    overrides: Overrides,
}

impl Source for PolicySource {
    type Snapshot = Policy;

    fn load(&self) -> anyhow::Result<Loaded<Policy>> {
        let loaded = self.config.load()?;
        let startup = self.overrides.apply(loaded.startup);
        Ok(Loaded {
            value: loaded.policy,
            files: loaded.files,
            warnings: loaded.warnings,
            need_restart: strings(startup.changes_from(&self.running)),
        })
    }

    fn changes(&self, old: &Policy, new: &Policy) -> Changes {
        let (before, after) = (old.summary(), new.summary());
        let mut applied = strings(Summary::diff(&before, &after));
        applied.extend(strings(new.setting_changes(old)));
        Changes {
            applied,
            // Filled from the load: compared with the running settings, not `old`'s.
            need_restart: Vec::new(),
            alarms: removals_past_half(&before, &after),
        }
    }

    fn swapped(&self, new: &Policy) {
        crate::loaded_state::record(&self.config, new);
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

fn strings<T: ToString>(changes: Vec<T>) -> Vec<String> {
    changes.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::config_path::Found;

    /// A source for `config` whose running settings are its current content's.
    fn source(config: &std::path::Path, overrides: Overrides) -> PolicySource {
        let running = overrides.apply(Policy::load(config).unwrap().startup);
        PolicySource {
            config: ConfigSource::File(config.to_path_buf(), Found::Flag),
            running,
            overrides,
        }
    }

    fn write(config: &std::path::Path, rule: &str, port: u16, mode: &str) {
        let text = format!(
            "catalogs = []\n[[rules]]\npattern = \"{rule}\"\naction = \"block\"\n\
             [server]\nlisten = [\"127.0.0.1:{port}\"]\n[sinkhole]\nmode = \"{mode}\"\n"
        );
        fs::write(config, text).unwrap();
    }

    #[test]
    fn policy_changes_list_rules_and_settings_that_need_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        write(&config, "a.example", 5353, "null-ip");
        let source = source(&config, Overrides::default());
        let old = source.load().unwrap();
        assert_eq!(old.files, vec![config.clone()]);
        assert!(old.need_restart.is_empty(), "{:?}", old.need_restart);
        write(&config, "b.example", 5454, "nxdomain");
        let new = source.load().unwrap();
        assert_eq!(
            source.changes(&old.value, &new.value).applied,
            [
                "rule added: block b.example",
                "rule removed: block a.example",
                r#"[sinkhole] mode: "null-ip" → "nxdomain""#,
            ]
        );
        assert_eq!(
            new.need_restart,
            [r#"[server] listen: ["127.0.0.1:5353"] → ["127.0.0.1:5454"]"#]
        );
    }

    /// Restart-only settings are compared with the running ones, not the last load's:
    /// a change stays reported until it is reverted, and then it is not.
    #[test]
    fn reverting_a_restart_only_change_stops_reporting_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        write(&config, "a.example", 5353, "null-ip");
        let source = source(&config, Overrides::default());
        write(&config, "a.example", 5454, "null-ip");
        assert_eq!(source.load().unwrap().need_restart.len(), 1);
        write(&config, "b.example", 5454, "null-ip");
        assert_eq!(source.load().unwrap().need_restart.len(), 1);
        write(&config, "b.example", 5353, "null-ip");
        assert_eq!(source.load().unwrap().need_restart, Vec::<String>::new());
    }

    /// A `--listen` flag replaces the file's addresses, at start and on every reload.
    #[test]
    fn a_setting_given_by_a_flag_is_not_a_change() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        write(&config, "a.example", 5353, "null-ip");
        let overrides = Overrides {
            listen: vec!["127.0.0.1:0".parse().unwrap()],
            ..Overrides::default()
        };
        let source = source(&config, overrides);
        write(&config, "a.example", 5454, "null-ip");
        assert_eq!(source.load().unwrap().need_restart, Vec::<String>::new());
    }

    #[test]
    fn a_list_file_that_cannot_be_read_is_watched_for() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        fs::write(&config, "catalogs = []\n").unwrap();
        let source = source(&config, Overrides::default());
        fs::write(
            &config,
            "catalogs = []\n[[lists]]\npath = \"lists/block.txt\"\naction = \"block\"\n",
        )
        .unwrap();
        let Err(err) = source.load() else {
            panic!("a missing list must fail the load")
        };
        let missing = source.missing_files(&err);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].ends_with("lists/block.txt"), "{missing:?}");
    }
}
