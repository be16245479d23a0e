//! Live reload: the config file and every file it references are watched; a change, or
//! SIGHUP, loads and validates a new snapshot off the hot path and swaps it in atomically.
//!
//! Three parts, one file each:
//! - [`watch`]: which file-system events may mean a change (directory watches, so that
//!   editors' renames and Kubernetes' ConfigMap symlink swaps are seen; a polling fallback).
//! - [`fingerprint`]: whether the files did change (resolved targets and content hashes).
//! - this module: the loop that debounces events, compares fingerprints, loads through a
//!   [`Source`] and swaps; [`policy`] is that source for winsink's policy, [`cert`] for
//!   the certificate of the DoT and DoH listeners.
//!
//! Events are only a hint. After a burst has gone quiet ([`QUIET`]), every file written to
//! has been closed again (a copy that pauses half-way with the file open is waited for,
//! up to [`MAX_WRITE_WAIT`]), and the files' sizes and modification times are the same
//! across two looks [`QUIET`] apart (all the polling fallback can tell), the files'
//! resolved targets and content hashes are compared with those the running snapshot was
//! loaded from, so a `touch`, an editor's swap file or a log file written next to the
//! config reloads nothing, and several writes in quick succession reload once. A reload
//! that removes more than half of the areas, rules, lists or a list's entries is applied
//! with a WARN naming what went ([`Changes::alarms`]).
//!
//! A snapshot that fails to load keeps the running one; its error is logged once per
//! distinct broken content, and the next change that loads is swapped in.

pub(crate) mod cert;
mod fingerprint;
mod policy;
#[cfg(test)]
mod tests;
mod watch;

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::Event;
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use self::fingerprint::Fingerprint;
pub(crate) use self::policy::{start, Watch};
pub(crate) use self::watch::Backend;
use self::watch::{DirWatcher, Stamp, POLL_INTERVAL};

/// Time without a relevant event after which a burst of writes counts as finished.
pub(crate) const QUIET: Duration = Duration::from_millis(250);
/// A stream of writes that never goes quiet still reloads this long after it began, so a
/// busy directory cannot postpone a reload forever.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(1000);
/// Longest wait for a file that was written to be closed (a writer that keeps it open
/// for good still reloads, this long after it began).
pub(crate) const MAX_WRITE_WAIT: Duration = Duration::from_secs(10);

/// Keeps `writing` as the set of watched paths written to and not closed since.
fn track_writes(event: &Event, writing: &mut HashSet<PathBuf>) {
    use notify::event::{AccessKind, AccessMode, ModifyKind};
    use notify::EventKind;
    match event.kind {
        EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any) => {
            writing.extend(event.paths.iter().cloned());
        }
        EventKind::Access(AccessKind::Close(AccessMode::Write)) | EventKind::Remove(_) => {
            for p in &event.paths {
                writing.remove(p);
            }
        }
        _ => {}
    }
}

/// A freshly loaded snapshot and what its load produced.
pub(crate) struct Loaded<T> {
    /// The validated snapshot.
    pub(crate) value: T,
    /// Every file the load read (config, catalogs, lists): the next watch set.
    pub(crate) files: Vec<PathBuf>,
    /// Non-fatal findings (conflicts, bad list lines), logged after a swap.
    pub(crate) warnings: Vec<String>,
    /// What the load read that differs from what the process runs with and that only a
    /// restart applies (listen addresses, ...), one line each.
    pub(crate) need_restart: Vec<String>,
}

/// What changed between two snapshots, one line per change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Changes now in force (area actions, rules, lists, ...).
    pub(crate) applied: Vec<String>,
    /// Changes that only a restart applies (listen addresses, ...).
    pub(crate) need_restart: Vec<String>,
    /// Changes applied that remove more than half of something (areas, rules, lists,
    /// a list's entries) in one step: said loudly, as a WARN naming what went.
    pub(crate) alarms: Vec<String>,
}

/// Where snapshots come from: the reloader's only view of the policy, so that it can be
/// tested with any snapshot type.
pub(crate) trait Source: Send + Sync + 'static {
    /// The immutable snapshot the server reads.
    type Snapshot: Send + Sync + 'static;
    /// Loads and validates a snapshot. Blocking: it is run on a blocking thread.
    fn load(&self) -> anyhow::Result<Loaded<Self::Snapshot>>;
    /// What differs between the snapshot in force and a new one. (Its `need_restart`
    /// is the load's [`Loaded::need_restart`], compared with what runs.)
    fn changes(&self, old: &Self::Snapshot, new: &Self::Snapshot) -> Changes;
    /// Called once a new snapshot is in force.
    fn swapped(&self, _new: &Self::Snapshot) {}
    /// Files a failed load could not read: watched too, so that creating them reloads.
    fn missing_files(&self, _err: &anyhow::Error) -> Vec<PathBuf> {
        Vec::new()
    }
    /// The line for a load that failed.
    fn failure_line(&self, err: &anyhow::Error) -> String {
        format!("reload failed; still serving the previous policy: {err:#}")
    }
    /// Logs a load that failed: [`failure_line`](Self::failure_line) as an ERROR.
    fn log_failure(&self, err: &anyhow::Error) {
        error!("{}", self.failure_line(err));
    }
}

/// What one reload attempt did; sent to an optional observer (tests) after it is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The watched files were touched but read as before: nothing was loaded.
    Unchanged,
    /// A new snapshot is in force.
    Swapped(Changes),
    /// The files changed but the new content does not load; the old snapshot stays.
    Failed(String),
}

/// How a reloader starts, besides its source and the snapshot it keeps current.
pub(crate) struct Options {
    /// Every file the snapshot in force was loaded from: the first watch set.
    pub(crate) files: Vec<PathBuf>,
    /// The warnings of that load, already logged: a reload repeats only new ones.
    pub(crate) warnings: Vec<String>,
    /// Receives each attempt's outcome after it is logged (tests); `None` in the daemon.
    pub(crate) observer: Option<mpsc::UnboundedSender<Outcome>>,
    /// Which watcher to start with.
    pub(crate) backend: Backend,
}

impl Options {
    /// Watches `files` natively, with no observer.
    pub(crate) fn new(files: Vec<PathBuf>, warnings: Vec<String>) -> Self {
        Self {
            files,
            warnings,
            observer: None,
            backend: Backend::Native,
        }
    }
}

/// Why a reload attempt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Watched files may have changed: reload only if their content did.
    Files,
    /// SIGHUP (or another explicit request): reload whatever the content.
    Forced,
    /// The last swap read files that were not watched yet (a list the config now
    /// names): a write to one before its watch began would go unseen, so they are read
    /// again once watched, whatever the content. Quiet when nothing changed.
    Recheck,
}

/// The handle of a running reloader; its task ends when the shutdown token is cancelled.
pub(crate) struct Reloader {
    /// Send `()` to force a reload (what SIGHUP does).
    pub(crate) force: mpsc::Sender<()>,
}

/// Starts watching the files in `options` and reloading `current` from `source` until
/// `shutdown` is cancelled. Must be called inside a tokio runtime.
pub(crate) fn spawn<S: Source>(
    source: Arc<S>,
    current: Arc<ArcSwap<S::Snapshot>>,
    options: Options,
    shutdown: CancellationToken,
) -> Reloader {
    let Options {
        files,
        warnings,
        observer,
        backend,
    } = options;
    let (force_tx, force_rx) = mpsc::channel(4);
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    // Watch before returning, so that a change made right after `spawn` is seen.
    let mut dirs = DirWatcher::new(event_tx, backend);
    dirs.set(&files);
    let mut state = State {
        source,
        current,
        stamp: Stamp::of(&files),
        fingerprint: Fingerprint::of(&files),
        files,
        warnings: warnings.into_iter().collect(),
        observer,
    };
    tokio::spawn(async move {
        run(&mut state, &mut dirs, event_rx, force_rx, shutdown).await;
    });
    Reloader { force: force_tx }
}

struct State<S: Source> {
    source: Arc<S>,
    current: Arc<ArcSwap<S::Snapshot>>,
    files: Vec<PathBuf>,
    /// The files' state when the snapshot in force (or the last failed attempt) was read.
    fingerprint: Fingerprint,
    /// The files' metadata at the last look of the polling fallback.
    stamp: Stamp,
    /// The warnings of the snapshot in force: a reload repeats only new ones.
    warnings: HashSet<String>,
    observer: Option<mpsc::UnboundedSender<Outcome>>,
}

async fn run<S: Source>(
    state: &mut State<S>,
    dirs: &mut DirWatcher,
    mut events: mpsc::UnboundedReceiver<notify::Result<Event>>,
    mut force: mpsc::Receiver<()>,
    shutdown: CancellationToken,
) {
    let mut poll = tokio::time::interval(POLL_INTERVAL);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    // Set after a swap that read files not watched before: see [`Cause::Recheck`].
    let mut recheck = false;
    loop {
        let polling = dirs.polling;
        let mut first_event = None;
        let mut cause = if recheck {
            Cause::Recheck
        } else {
            tokio::select! {
            () = shutdown.cancelled() => return,
            Some(event) = events.recv() => {
                if !dirs.is_relevant(&event) {
                    continue;
                }
                first_event = event.ok();
                Cause::Files
            }
            Some(()) = force.recv() => Cause::Forced,
            _ = poll.tick(), if polling => {
                if Stamp::of(&state.files) == state.stamp {
                    continue;
                }
                Cause::Files
            }
            }
        };
        // Debounce: absorb the rest of the burst, and wait for files being written.
        let started = Instant::now();
        let mut last = started;
        let mut writing = HashSet::new();
        if let Some(event) = &first_event {
            track_writes(event, &mut writing);
        }
        loop {
            let wake = if writing.is_empty() {
                (last + QUIET).min(started + MAX_DELAY)
            } else {
                // A writer that pauses with the file open (a copy in two parts) has not
                // finished: wait for its close, within reason.
                started + MAX_WRITE_WAIT
            };
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = sleep_until(wake) => {
                    // Where the platform says nothing of closes (polling): size and
                    // modification time unchanged across two looks.
                    let files = state.files.clone();
                    let first = Stamp::of(&files);
                    tokio::time::sleep(QUIET).await;
                    if Stamp::of(&files) == first || Instant::now() >= started + MAX_WRITE_WAIT {
                        break;
                    }
                    last = Instant::now();
                }
                Some(event) = events.recv() => {
                    if dirs.is_relevant(&event) {
                        last = Instant::now();
                        if let Ok(event) = &event {
                            track_writes(event, &mut writing);
                        }
                    }
                }
                Some(()) = force.recv() => cause = Cause::Forced,
            }
        }
        let outcome = attempt(state, cause).await;
        let swapped = matches!(outcome, Some(Outcome::Swapped(_)));
        if let (Some(outcome), Some(observer)) = (outcome, &state.observer) {
            // A gone observer only means nobody is interested any more.
            let _ = observer.send(outcome);
        }
        // The set of files, or where their symlinks point, may have changed.
        let added = dirs.set(&state.files);
        recheck = swapped && added && cause != Cause::Recheck;
        state.stamp = Stamp::of(&state.files);
    }
}

/// One reload attempt, logged; `None` if reading the files failed outright (a panic).
async fn attempt<S: Source>(state: &mut State<S>, cause: Cause) -> Option<Outcome> {
    let files = state.files.clone();
    let before = blocking(move || Fingerprint::of(&files)).await?;
    if cause == Cause::Files && before == state.fingerprint {
        debug!("watched files touched but unchanged; nothing to reload");
        return Some(Outcome::Unchanged);
    }
    let source = Arc::clone(&state.source);
    crate::notify::reloading();
    let loaded = match blocking(move || source.load()).await {
        Some(loaded) => loaded,
        None => Err(anyhow::anyhow!("the loader panicked")),
    };
    // Swapped in or not, winsink serves on: the reload is over for the service manager.
    crate::notify::reloaded();
    let outcome = match loaded {
        Ok(loaded) => {
            let new = Arc::new(loaded.value);
            let changes = Changes {
                need_restart: loaded.need_restart,
                ..state.source.changes(&state.current.load(), &new)
            };
            state.source.swapped(&new);
            state.current.store(new);
            // The build's tables, and the old policy once no query holds it, are freed:
            // give their pages back (glibc keeps them otherwise).
            blocking(winsink_server::memory::release_freed).await;
            if cause == Cause::Recheck && changes == Changes::default() {
                debug!("newly watched files read again: unchanged");
                return Some(Outcome::Unchanged);
            }
            log_swap(&changes, &loaded.warnings, &state.warnings);
            state.warnings = loaded.warnings.into_iter().collect();
            // Keep the fingerprint taken before the load when the file set is the same:
            // a write that raced the load then still differs from it and reloads again.
            state.fingerprint = if same_files(&state.files, &loaded.files) {
                before
            } else {
                let files = loaded.files.clone();
                blocking(move || Fingerprint::of(&files))
                    .await
                    .unwrap_or(before)
            };
            state.files = loaded.files;
            Outcome::Swapped(changes)
        }
        Err(err) => {
            let message = format!("{err:#}");
            state.source.log_failure(&err);
            // Remember the broken content so that it is reported once, not on every event.
            state.fingerprint = before;
            for file in state.source.missing_files(&err) {
                if !state.files.contains(&file) {
                    state.files.push(file);
                }
            }
            Outcome::Failed(message)
        }
    };
    Some(outcome)
}

fn log_swap(changes: &Changes, warnings: &[String], known: &HashSet<String>) {
    if changes.applied.is_empty() && changes.need_restart.is_empty() {
        info!("reloaded: no change to the policy");
    } else if !changes.applied.is_empty() {
        info!("reloaded: {}", changes.applied.join("; "));
    }
    for line in &changes.need_restart {
        warn!("{line}: not applied, restart winsink to apply it");
    }
    for line in &changes.alarms {
        warn!("reload removes {line}");
    }
    for line in warnings.iter().filter(|w| !known.contains(*w)) {
        warn!("{line}");
    }
}

fn same_files(a: &[PathBuf], b: &[PathBuf]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// Runs blocking file work off the runtime's worker threads; `None` if it panicked.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => Some(value),
        Err(err) => {
            error!("reload worker failed: {err}");
            None
        }
    }
}
