//! Which events may mean a change: directory watches for a set of files, with a polling
//! fallback.
//!
//! Directories are watched, not files. Editors save by writing a temporary file and
//! renaming it over the original, and Kubernetes mounts a ConfigMap as symlinks that it
//! repoints by renaming a `..data` symlink; a watch on the file itself would keep following
//! the replaced inode and go silent. A watch on the parent directory sees the rename, and
//! [`DirWatcher::is_relevant`] drops the events about the directory's other files.

use std::collections::{BTreeSet, HashSet};
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecursiveMode, Watcher};
use tokio::sync::mpsc;
use tracing::warn;

/// How often the polling fallback looks at the watched files when inotify is unavailable.
pub(super) const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// Which watcher a reloader starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) enum Backend {
    /// inotify (on Linux), falling back to polling if it fails.
    #[default]
    Native,
    /// Polling from the start (what the fallback does; tests choose it directly).
    #[cfg_attr(not(test), allow(dead_code))]
    Polling,
}

/// What the polling fallback compares between two looks: where each watched file resolves
/// to, its size and its modification time (nanoseconds where the file system has them).
/// Cheap (a few system calls per file); a difference only triggers the content check.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Stamp(Vec<Option<(PathBuf, u64, Option<SystemTime>)>>);

impl Stamp {
    pub(super) fn of(files: &[PathBuf]) -> Self {
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

/// Directory watches for a set of files, with a polling fallback.
pub(super) struct DirWatcher {
    backend: Option<Box<dyn Watcher + Send>>,
    /// No watcher runs: the reload loop looks at the files' [`Stamp`] every
    /// [`POLL_INTERVAL`] instead.
    pub(super) polling: bool,
    events: mpsc::UnboundedSender<notify::Result<Event>>,
    dirs: BTreeSet<PathBuf>,
    names: HashSet<OsString>,
}

impl DirWatcher {
    pub(super) fn new(
        events: mpsc::UnboundedSender<notify::Result<Event>>,
        backend: Backend,
    ) -> Self {
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
    /// targets, and forgets the rest. Returns whether a file name is watched that was
    /// not before: a write to it before now may have gone unseen.
    pub(super) fn set(&mut self, files: &[PathBuf]) -> bool {
        let (dirs, names) = watch_targets(files);
        let added = names.difference(&self.names).next().is_some();
        self.names = names;
        let Some(backend) = self.backend.as_mut() else {
            return added;
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
        added
    }

    /// Whether `event` may be about a watched file: our own reads and the directory's
    /// other files (a query log, an editor's swap file) are not.
    pub(super) fn is_relevant(&self, event: &notify::Result<Event>) -> bool {
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

#[cfg(test)]
mod tests {
    use std::fs;

    use notify::event::{CreateKind, DataChange, ModifyKind};

    use super::*;

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

    /// The filter keeps writes to the watched files and Kubernetes' `..data` swaps, and
    /// drops our own reads and every other file in the directory.
    #[test]
    fn only_writes_to_watched_names_are_relevant() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("winsink.toml");
        fs::write(&config, "x").unwrap();
        let (tx, _rx) = mpsc::unbounded_channel();
        let mut watcher = DirWatcher::new(tx, Backend::Polling);
        watcher.set(std::slice::from_ref(&config));
        let event = |kind, path: &Path| Ok(Event::new(kind).add_path(path.to_path_buf()));
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Content));
        let closed = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        let opened = EventKind::Access(AccessKind::Open(AccessMode::Any));
        let created = EventKind::Create(CreateKind::File);

        assert!(watcher.is_relevant(&event(write, &config)));
        assert!(watcher.is_relevant(&event(closed, &config)));
        assert!(watcher.is_relevant(&event(created, &dir.path().join("..data"))));
        assert!(!watcher.is_relevant(&event(read, &config)));
        assert!(!watcher.is_relevant(&event(opened, &config)));
        assert!(!watcher.is_relevant(&event(write, &dir.path().join("queries.log"))));
        assert!(!watcher.is_relevant(&event(closed, &dir.path().join("notes.txt"))));
    }
}
