//! Live reload: the config file and every file it references are watched; a change, or
//! SIGHUP, loads and validates a new snapshot off the hot path and swaps it in atomically.
//!
//! Directories are watched, not files. Editors save by writing a temporary file and
//! renaming it over the original, and Kubernetes mounts a ConfigMap as symlinks that it
//! repoints by renaming a `..data` symlink; a watch on the file itself would keep following
//! the replaced inode and go silent. A watch on the parent directory sees the rename.
//!
//! Events are only a hint. After a burst has gone quiet ([`QUIET`]), the files' resolved
//! targets and content hashes are compared with those the running snapshot was loaded
//! from, so a `touch`, an editor's swap file or a log file written next to the config
//! reloads nothing, and several writes in quick succession reload once.
//!
//! A snapshot that fails to load keeps the running one; its error is logged once per
//! distinct broken content, and the next change that loads is swapped in.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::hash::Hasher;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};
use winsink_policy::{Policy, PolicyError, Summary};

/// Time without a relevant event after which a burst of writes counts as finished.
pub(crate) const QUIET: Duration = Duration::from_millis(250);
/// A stream of writes that never goes quiet still reloads this long after it began, so a
/// busy directory cannot postpone a reload forever.
pub(crate) const MAX_DELAY: Duration = Duration::from_millis(1000);
/// How often the polling fallback looks at the watched files when inotify is unavailable.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// A freshly loaded snapshot and what its load produced.
pub(crate) struct Loaded<T> {
    /// The validated snapshot.
    pub(crate) value: T,
    /// Every file the load read (config, catalogs, lists): the next watch set.
    pub(crate) files: Vec<PathBuf>,
    /// Non-fatal findings (conflicts, bad list lines), logged after a swap.
    pub(crate) warnings: Vec<String>,
}

/// What changed between two snapshots, one line per change.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Changes {
    /// Changes now in force (area actions, rules, lists, ...).
    pub(crate) applied: Vec<String>,
    /// Changes that only a restart applies (listen addresses, ...).
    pub(crate) need_restart: Vec<String>,
}

/// Where snapshots come from: the reloader's only view of the policy, so that it can be
/// tested with any snapshot type.
pub(crate) trait Source: Send + Sync + 'static {
    /// The immutable snapshot the server reads.
    type Snapshot: Send + Sync + 'static;
    /// Loads and validates a snapshot. Blocking: it is run on a blocking thread.
    fn load(&self) -> anyhow::Result<Loaded<Self::Snapshot>>;
    /// What differs between the snapshot in force and a new one.
    fn changes(&self, old: &Self::Snapshot, new: &Self::Snapshot) -> Changes;
    /// Files a failed load could not read: watched too, so that creating them reloads.
    fn missing_files(&self, _err: &anyhow::Error) -> Vec<PathBuf> {
        Vec::new()
    }
}

/// What one reload attempt did; sent to an optional observer (tests) after it is logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// A new snapshot is in force.
    Swapped(Changes),
    /// The files changed but the new content does not load; the old snapshot stays.
    Failed(String),
}

/// Why a reload attempt runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    /// Watched files may have changed: reload only if their content did.
    Files,
    /// SIGHUP (or another explicit request): reload whatever the content.
    Forced,
}

/// Handles of a running reloader.
pub(crate) struct Reloader {
    /// The reload task; it ends when the shutdown token is cancelled.
    pub(crate) task: JoinHandle<()>,
    /// Send `()` to force a reload (what SIGHUP does).
    pub(crate) force: mpsc::Sender<()>,
}

/// Starts watching `files` (what the snapshot in force was loaded from, with `warnings`)
/// and reloading `current` from `source` until `shutdown` is cancelled. Must be called
/// inside a tokio runtime. `observer`, when given, receives each attempt's outcome.
pub(crate) fn spawn<S: Source>(
    source: Arc<S>,
    current: Arc<ArcSwap<S::Snapshot>>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
    shutdown: CancellationToken,
    observer: Option<mpsc::UnboundedSender<Outcome>>,
) -> Reloader {
    spawn_with(
        Backend::Native,
        source,
        current,
        files,
        warnings,
        shutdown,
        observer,
    )
}

/// Which watcher [`spawn_with`] starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// inotify (on Linux), falling back to polling if it fails.
    Native,
    /// Polling from the start (what the fallback does; tests choose it directly).
    #[cfg_attr(not(test), allow(dead_code))]
    Polling,
}

fn spawn_with<S: Source>(
    backend: Backend,
    source: Arc<S>,
    current: Arc<ArcSwap<S::Snapshot>>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
    shutdown: CancellationToken,
    observer: Option<mpsc::UnboundedSender<Outcome>>,
) -> Reloader {
    let (force_tx, force_rx) = mpsc::channel(4);
    let (event_tx, event_rx) = mpsc::unbounded_channel();
    // Watch before returning, so that a change made right after `spawn` is seen.
    let mut dirs = DirWatcher::new(event_tx, backend);
    dirs.set(&files);
    let mut state = State {
        source,
        current,
        stamp: Stamp::of(&files),
        fingerprint: fingerprint(&files),
        files,
        warnings: warnings.into_iter().collect(),
        observer,
    };
    let task = tokio::spawn(async move {
        run(&mut state, &mut dirs, event_rx, force_rx, shutdown).await;
    });
    Reloader {
        task,
        force: force_tx,
    }
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
    loop {
        let polling = dirs.polling;
        let mut cause = tokio::select! {
            () = shutdown.cancelled() => return,
            Some(event) = events.recv() => {
                if !dirs.is_relevant(&event) {
                    continue;
                }
                Cause::Files
            }
            Some(()) = force.recv() => Cause::Forced,
            _ = poll.tick(), if polling => {
                if Stamp::of(&state.files) == state.stamp {
                    continue;
                }
                Cause::Files
            }
        };
        // Debounce: absorb the rest of the burst.
        let started = Instant::now();
        let mut last = started;
        loop {
            let wake = (last + QUIET).min(started + MAX_DELAY);
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = sleep_until(wake) => break,
                Some(event) = events.recv() => {
                    if dirs.is_relevant(&event) {
                        last = Instant::now();
                    }
                }
                Some(()) = force.recv() => cause = Cause::Forced,
            }
        }
        attempt(state, cause).await;
        // The set of files, or where their symlinks point, may have changed.
        dirs.set(&state.files);
        state.stamp = Stamp::of(&state.files);
    }
}

/// What the polling fallback compares between two looks: where each watched file resolves
/// to, its size and its modification time (nanoseconds where the file system has them).
/// Cheap (a few system calls per file); a difference only triggers the content check.
#[derive(Debug, PartialEq, Eq)]
struct Stamp(Vec<Option<(PathBuf, u64, Option<std::time::SystemTime>)>>);

impl Stamp {
    fn of(files: &[PathBuf]) -> Self {
        Self(
            files
                .iter()
                .map(|file| {
                    let resolved = std::fs::canonicalize(file).ok()?;
                    let meta = std::fs::metadata(&resolved).ok()?;
                    Some((resolved, meta.len(), meta.modified().ok()))
                })
                .collect(),
        )
    }
}

async fn attempt<S: Source>(state: &mut State<S>, cause: Cause) {
    let files = state.files.clone();
    let before = blocking(move || fingerprint(&files)).await;
    let Some(before) = before else { return };
    if cause == Cause::Files && before == state.fingerprint {
        debug!("watched files touched but unchanged; nothing to reload");
        return;
    }
    let source = Arc::clone(&state.source);
    let loaded = match blocking(move || source.load()).await {
        Some(loaded) => loaded,
        None => Err(anyhow::anyhow!("the loader panicked")),
    };
    let outcome = match loaded {
        Ok(loaded) => {
            let new = Arc::new(loaded.value);
            let changes = state.source.changes(&state.current.load(), &new);
            state.current.store(new);
            log_swap(&changes, &loaded.warnings, &state.warnings);
            state.warnings = loaded.warnings.into_iter().collect();
            // Keep the fingerprint taken before the load when the file set is the same:
            // a write that raced the load then still differs from it and reloads again.
            state.fingerprint = if same_files(&state.files, &loaded.files) {
                before
            } else {
                let files = loaded.files.clone();
                blocking(move || fingerprint(&files))
                    .await
                    .unwrap_or(before)
            };
            state.files = loaded.files;
            Outcome::Swapped(changes)
        }
        Err(err) => {
            let message = format!("{err:#}");
            error!("reload failed; still serving the previous policy: {message}");
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
    if let Some(observer) = &state.observer {
        // A gone observer only means nobody is interested any more.
        let _ = observer.send(outcome);
    }
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

/// The state of a set of files: where each resolves to and a hash of its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fingerprint(Vec<FileState>);

#[derive(Debug, Clone, PartialEq, Eq)]
enum FileState {
    /// The file could not be read; the error kind is kept so that a file that goes from
    /// "missing" to "permission denied" still counts as a change.
    Unreadable(io::ErrorKind),
    Present {
        resolved: PathBuf,
        len: u64,
        hash: u64,
    },
}

pub(crate) fn fingerprint(files: &[PathBuf]) -> Fingerprint {
    Fingerprint(files.iter().map(|file| file_state(file)).collect())
}

fn file_state(file: &Path) -> FileState {
    let read = || -> io::Result<FileState> {
        let resolved = std::fs::canonicalize(file)?;
        let content = std::fs::read(&resolved)?;
        // Change detection, not security: SipHash over the content is plenty.
        let mut hasher = std::hash::DefaultHasher::new();
        hasher.write(&content);
        Ok(FileState::Present {
            resolved,
            len: content.len() as u64,
            hash: hasher.finish(),
        })
    };
    read().unwrap_or_else(|err| FileState::Unreadable(err.kind()))
}

/// Directory watches for a set of files, with a polling fallback.
struct DirWatcher {
    backend: Option<Box<dyn Watcher + Send>>,
    polling: bool,
    events: mpsc::UnboundedSender<notify::Result<Event>>,
    dirs: BTreeSet<PathBuf>,
    names: HashSet<OsString>,
}

impl DirWatcher {
    fn new(events: mpsc::UnboundedSender<notify::Result<Event>>, backend: Backend) -> Self {
        let mut this = Self {
            backend: None,
            polling: false,
            events,
            dirs: BTreeSet::new(),
            names: HashSet::new(),
        };
        if backend == Backend::Polling {
            this.start_polling();
            return this;
        }
        match notify::recommended_watcher(this.handler()) {
            Ok(native) => this.backend = Some(Box::new(native)),
            Err(err) => this.fall_back_to_polling(&err),
        }
        this
    }

    fn handler(&self) -> impl FnMut(notify::Result<Event>) + Send + 'static {
        let events = self.events.clone();
        move |event| {
            // A closed channel means the reloader is shutting down.
            let _ = events.send(event);
        }
    }

    fn fall_back_to_polling(&mut self, why: &notify::Error) {
        warn!(
            "file change notification unavailable ({why}); polling the config files every {}s instead",
            POLL_INTERVAL.as_secs()
        );
        self.start_polling();
    }

    /// Polling is done by the reload loop itself, on the watched files only (see
    /// [`Stamp`]): notify's `PollWatcher` compares whole-second mtimes, and would hash
    /// every file in the directories to do better, a growing query log included.
    fn start_polling(&mut self) {
        self.backend = None;
        self.polling = true;
        self.dirs.clear();
    }

    /// Watches the directories that hold `files`, and those that hold their symlinks'
    /// targets, and forgets the rest.
    fn set(&mut self, files: &[PathBuf]) {
        let (dirs, names) = watch_targets(files);
        self.names = names;
        let Some(backend) = self.backend.as_mut() else {
            return;
        };
        for gone in self.dirs.difference(&dirs) {
            // The directory may already be gone (an old ConfigMap generation).
            let _ = backend.unwatch(gone);
        }
        let mut watched = BTreeSet::new();
        let mut failure = None;
        for dir in &dirs {
            if self.dirs.contains(dir) {
                watched.insert(dir.clone());
                continue;
            }
            match backend.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => {
                    watched.insert(dir.clone());
                }
                Err(err) if is_missing(&err) => {
                    warn!("cannot watch {}: it does not exist", dir.display());
                }
                Err(err) => {
                    failure = Some(err);
                    break;
                }
            }
        }
        self.dirs = watched;
        if let Some(err) = failure {
            // Typically the inotify watch limit; polling a handful of files is cheap.
            self.fall_back_to_polling(&err);
        }
    }

    fn is_relevant(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            Err(err) => {
                warn!("file watch error: {err}");
                // Something may have been missed: let the fingerprint decide.
                return true;
            }
        };
        if event.need_rescan() {
            return true;
        }
        match event.kind {
            // Our own reads open the files: only a write that closes counts.
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => {}
            EventKind::Access(_) => return false,
            _ => {}
        }
        event.paths.iter().any(|path| {
            path.file_name().is_some_and(|name| {
                // `..data` and `..2024_...` are how Kubernetes swaps a ConfigMap.
                self.names.contains(name) || name.as_bytes().starts_with(b"..")
            })
        })
    }
}

fn is_missing(err: &notify::Error) -> bool {
    match &err.kind {
        notify::ErrorKind::PathNotFound => true,
        notify::ErrorKind::Io(io) => io.kind() == io::ErrorKind::NotFound,
        _ => false,
    }
}

/// The directories to watch for `files` and the file names that matter in them: each
/// file as named (it may be a symlink that gets replaced) and as resolved.
fn watch_targets(files: &[PathBuf]) -> (BTreeSet<PathBuf>, HashSet<OsString>) {
    let mut dirs = BTreeSet::new();
    let mut names = HashSet::new();
    let mut add = |path: &Path| {
        if let (Some(dir), Some(name)) = (path.parent(), path.file_name()) {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            dirs.insert(dir.to_path_buf());
            names.insert(name.to_os_string());
        }
    };
    for file in files {
        let named = std::path::absolute(file).unwrap_or_else(|_| file.clone());
        add(&named);
        if let Ok(resolved) = std::fs::canonicalize(&named) {
            if resolved != named {
                add(&resolved);
            }
        }
    }
    (dirs, names)
}

/// What `winsink run` loaded at start, for the reloader to take over.
pub(crate) struct Watch {
    /// The config file, as given on the command line.
    pub(crate) config: PathBuf,
    /// Every file the policy in force was read from.
    pub(crate) files: Vec<PathBuf>,
    /// The warnings of that load, already logged.
    pub(crate) warnings: Vec<String>,
}

/// Keeps `current` in step with the config file until `shutdown`: watches the files it
/// was loaded from and reloads on SIGHUP. This is what `winsink run` calls.
pub(crate) fn start(
    watch: Watch,
    current: Arc<ArcSwap<Policy>>,
    shutdown: CancellationToken,
) -> io::Result<JoinHandle<()>> {
    let source = Arc::new(PolicySource::new(watch.config));
    let reloader = spawn(
        source,
        current,
        watch.files,
        watch.warnings,
        shutdown.clone(),
        None,
    );
    crate::signals::on_hangup(reloader.force, shutdown)?;
    Ok(reloader.task)
}

/// The policy in force, reloaded from its config file.
pub(crate) struct PolicySource {
    config: PathBuf,
}

impl PolicySource {
    /// Reloads from `config`, the file `winsink run` was started with.
    pub(crate) fn new(config: PathBuf) -> Self {
        Self { config }
    }
}

impl Source for PolicySource {
    type Snapshot = Policy;

    fn load(&self) -> anyhow::Result<Loaded<Policy>> {
        let loaded = Policy::load(&self.config)?;
        Ok(Loaded {
            value: loaded.policy,
            files: loaded.files,
            warnings: loaded.warnings,
        })
    }

    fn changes(&self, old: &Policy, new: &Policy) -> Changes {
        let mut changes = Changes {
            applied: Summary::diff(&old.summary(), &new.summary()),
            need_restart: Vec::new(),
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
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    /// A toy snapshot: the trimmed text of a file; "invalid" content fails to load.
    struct TextSource {
        path: PathBuf,
        extra: Vec<PathBuf>,
        loads: AtomicUsize,
    }

    impl Source for TextSource {
        type Snapshot = String;

        fn load(&self) -> anyhow::Result<Loaded<String>> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let text = fs::read_to_string(&self.path)?;
            let text = text.trim().to_owned();
            if text.starts_with("invalid") {
                anyhow::bail!("{}: line 1: `{text}` is not valid", self.path.display());
            }
            let mut files = vec![self.path.clone()];
            files.extend(self.extra.iter().cloned());
            Ok(Loaded {
                value: text,
                files,
                warnings: Vec::new(),
            })
        }

        fn changes(&self, old: &String, new: &String) -> Changes {
            let applied = if old == new {
                Vec::new()
            } else {
                vec![format!("{old} → {new}")]
            };
            Changes {
                applied,
                need_restart: Vec::new(),
            }
        }
    }

    struct Harness {
        dir: tempfile::TempDir,
        source: Arc<TextSource>,
        current: Arc<ArcSwap<String>>,
        outcomes: mpsc::UnboundedReceiver<Outcome>,
        reloader: Reloader,
        shutdown: CancellationToken,
    }

    impl Harness {
        /// `config` names the watched file inside the temp dir; `setup` lays out files.
        fn start(config: &str, setup: impl FnOnce(&Path)) -> Self {
            let dir = tempfile::tempdir().unwrap();
            setup(dir.path());
            let source = Arc::new(TextSource {
                path: dir.path().join(config),
                extra: Vec::new(),
                loads: AtomicUsize::new(0),
            });
            let first = source.load().unwrap();
            let current = Arc::new(ArcSwap::from_pointee(first.value));
            let (tx, outcomes) = mpsc::unbounded_channel();
            let shutdown = CancellationToken::new();
            let reloader = spawn(
                Arc::clone(&source),
                Arc::clone(&current),
                first.files,
                Vec::new(),
                shutdown.clone(),
                Some(tx),
            );
            Self {
                dir,
                source,
                current,
                outcomes,
                reloader,
                shutdown,
            }
        }

        fn path(&self, name: &str) -> PathBuf {
            self.dir.path().join(name)
        }

        /// The next reload outcome. The bound only keeps a broken watcher from hanging
        /// the test suite; it is far beyond the debounce delay.
        async fn next(&mut self) -> Outcome {
            tokio::time::timeout(Duration::from_secs(30), self.outcomes.recv())
                .await
                .expect("a reload within 30 s")
                .expect("reloader running")
        }

        fn loads(&self) -> usize {
            self.source.loads.load(Ordering::SeqCst)
        }
    }

    impl Drop for Harness {
        fn drop(&mut self) {
            self.shutdown.cancel();
        }
    }

    fn swapped(line: &str) -> Outcome {
        Outcome::Swapped(Changes {
            applied: vec![line.to_owned()],
            need_restart: Vec::new(),
        })
    }

    /// Writing in place, replacing by rename (how editors save) and writing several times
    /// in a row each reload once, with the final content.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_place_writes_and_editor_renames_reload_once_each() {
        let mut h = Harness::start("winsink.toml", |dir| {
            fs::write(dir.join("winsink.toml"), "one").unwrap();
        });
        fs::write(h.path("winsink.toml"), "two").unwrap();
        assert_eq!(h.next().await, swapped("one → two"));
        assert_eq!(**h.current.load(), "two");

        // The editor's way: a temporary file renamed over the original.
        fs::write(h.path(".winsink.toml.swp"), "three").unwrap();
        fs::rename(h.path(".winsink.toml.swp"), h.path("winsink.toml")).unwrap();
        assert_eq!(h.next().await, swapped("two → three"));

        // A burst of writes: one reload, with the last content.
        for n in 0..20 {
            fs::write(h.path("winsink.toml"), format!("burst {n}")).unwrap();
        }
        assert_eq!(h.next().await, swapped("three → burst 19"));
        // Had the burst reloaded more than once, this would see an intermediate outcome.
        fs::write(h.path("winsink.toml"), "four").unwrap();
        assert_eq!(h.next().await, swapped("burst 19 → four"));
        assert_eq!(h.loads(), 1 + 4);
    }

    /// Touching the file or writing other files in its directory reloads nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn touch_and_unrelated_files_do_not_reload() {
        let mut h = Harness::start("winsink.toml", |dir| {
            fs::write(dir.join("winsink.toml"), "one").unwrap();
        });
        fs::write(h.path("winsink.toml"), "one").unwrap();
        fs::write(h.path("queries.log"), "{}\n").unwrap();
        fs::write(h.path("notes.txt"), "x").unwrap();
        // The marker: the first outcome is this change, so nothing before it reloaded.
        fs::write(h.path("winsink.toml"), "two").unwrap();
        assert_eq!(h.next().await, swapped("one → two"));
        assert_eq!(h.loads(), 2);
    }

    /// Kubernetes mounts a ConfigMap key as `name -> ..data/name`, `..data -> ..TIMESTAMP`,
    /// and updates it by renaming a fresh `..data` symlink over the old one.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn configmap_symlink_swap_is_followed() {
        use std::os::unix::fs::symlink;
        let mut h = Harness::start("winsink.toml", |dir| {
            fs::create_dir(dir.join("..2024_01_01")).unwrap();
            fs::write(dir.join("..2024_01_01/winsink.toml"), "one").unwrap();
            symlink("..2024_01_01", dir.join("..data")).unwrap();
            symlink("..data/winsink.toml", dir.join("winsink.toml")).unwrap();
        });
        fs::create_dir(h.path("..2024_01_02")).unwrap();
        fs::write(h.path("..2024_01_02/winsink.toml"), "two").unwrap();
        symlink("..2024_01_02", h.path("..data_tmp")).unwrap();
        fs::rename(h.path("..data_tmp"), h.path("..data")).unwrap();
        fs::remove_dir_all(h.path("..2024_01_01")).unwrap();
        assert_eq!(h.next().await, swapped("one → two"));

        // And the next generation too: the watch set followed the swap.
        fs::create_dir(h.path("..2024_01_03")).unwrap();
        fs::write(h.path("..2024_01_03/winsink.toml"), "three").unwrap();
        symlink("..2024_01_03", h.path("..data_tmp")).unwrap();
        fs::rename(h.path("..data_tmp"), h.path("..data")).unwrap();
        assert_eq!(h.next().await, swapped("two → three"));
    }

    /// An invalid edit keeps the running snapshot and is reported once; fixing it loads.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn invalid_edit_keeps_old_snapshot_until_fixed() {
        let mut h = Harness::start("winsink.toml", |dir| {
            fs::write(dir.join("winsink.toml"), "one").unwrap();
        });
        fs::write(h.path("winsink.toml"), "invalid 1").unwrap();
        let Outcome::Failed(why) = h.next().await else {
            panic!("an invalid edit must fail")
        };
        assert!(why.contains("line 1: `invalid 1` is not valid"), "{why}");
        assert_eq!(**h.current.load(), "one");

        // Saving the broken content again, then fixing it, loads the fix.
        fs::write(h.path("winsink.toml"), "invalid 1").unwrap();
        fs::write(h.path("winsink.toml"), "two").unwrap();
        assert_eq!(h.next().await, swapped("one → two"));
        assert_eq!(**h.current.load(), "two");
    }

    /// The polling fallback (no inotify) sees an editor's save too, only later.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn polling_fallback_sees_a_rename_save() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        fs::write(&config, "one").unwrap();
        let source = Arc::new(TextSource {
            path: config.clone(),
            extra: Vec::new(),
            loads: AtomicUsize::new(0),
        });
        let first = source.load().unwrap();
        let current = Arc::new(ArcSwap::from_pointee(first.value));
        let (tx, mut outcomes) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let _reloader = spawn_with(
            Backend::Polling,
            Arc::clone(&source),
            Arc::clone(&current),
            first.files,
            Vec::new(),
            shutdown.clone(),
            Some(tx),
        );
        fs::write(dir.path().join(".winsink.toml.swp"), "two, longer").unwrap();
        fs::rename(dir.path().join(".winsink.toml.swp"), &config).unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await
            .expect("a reload within 30 s");
        assert_eq!(outcome, Some(swapped("one → two, longer")));
        shutdown.cancel();
    }

    /// A forced reload (SIGHUP) loads even when nothing changed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn forced_reload_loads_unchanged_files() {
        let mut h = Harness::start("winsink.toml", |dir| {
            fs::write(dir.join("winsink.toml"), "one").unwrap();
        });
        h.reloader.force.send(()).await.unwrap();
        assert_eq!(h.next().await, Outcome::Swapped(Changes::default()));
        assert_eq!(h.loads(), 2);
    }

    /// A referenced file in another directory is watched too.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn referenced_file_in_other_directory_is_watched() {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("lists")).unwrap();
        fs::write(dir.path().join("winsink.toml"), "one").unwrap();
        fs::write(dir.path().join("lists/block.txt"), "a.example").unwrap();
        let source = Arc::new(TextSource {
            path: dir.path().join("winsink.toml"),
            extra: vec![dir.path().join("lists/block.txt")],
            loads: AtomicUsize::new(0),
        });
        let first = source.load().unwrap();
        let current = Arc::new(ArcSwap::from_pointee(first.value));
        let (tx, mut outcomes) = mpsc::unbounded_channel();
        let shutdown = CancellationToken::new();
        let _reloader = spawn(
            Arc::clone(&source),
            current,
            first.files,
            Vec::new(),
            shutdown.clone(),
            Some(tx),
        );
        fs::write(dir.path().join("lists/block.txt"), "b.example").unwrap();
        let outcome = tokio::time::timeout(Duration::from_secs(30), outcomes.recv())
            .await
            .expect("a reload within 30 s");
        // The toy snapshot is the config's text only, so the policy itself is unchanged.
        assert_eq!(outcome, Some(Outcome::Swapped(Changes::default())));
        shutdown.cancel();
    }

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
        let source = PolicySource::new(config.clone());
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
        let source = PolicySource::new(config);
        let Err(err) = source.load() else {
            panic!("a missing list must fail the load")
        };
        let missing = source.missing_files(&err);
        assert_eq!(missing.len(), 1, "{missing:?}");
        assert!(missing[0].ends_with("lists/block.txt"), "{missing:?}");
    }

    #[test]
    fn watch_targets_cover_symlink_and_target_directories() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::create_dir(&real).unwrap();
        fs::write(real.join("policy.toml"), "x").unwrap();
        symlink(real.join("policy.toml"), dir.path().join("winsink.toml")).unwrap();
        let (dirs, names) = watch_targets(&[dir.path().join("winsink.toml")]);
        let root = fs::canonicalize(dir.path()).unwrap();
        assert!(dirs.contains(dir.path()));
        assert!(dirs.contains(&root.join("real")));
        assert!(names.contains(&OsString::from("winsink.toml")));
        assert!(names.contains(&OsString::from("policy.toml")));
    }

    #[test]
    fn fingerprint_sees_content_and_target_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        fs::write(&file, "x").unwrap();
        let files = vec![file.clone()];
        let first = fingerprint(&files);
        fs::write(&file, "x").unwrap();
        assert_eq!(fingerprint(&files), first);
        fs::write(&file, "y").unwrap();
        assert_ne!(fingerprint(&files), first);
        fs::remove_file(&file).unwrap();
        assert_eq!(
            fingerprint(&files),
            Fingerprint(vec![FileState::Unreadable(io::ErrorKind::NotFound)])
        );
    }
}
