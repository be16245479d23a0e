//! What "the watched files changed" means: where each file resolves to and a hash of its
//! content. Events and metadata only say that something may have changed; this says
//! whether it did, so a `touch` or a rewrite with the same bytes reloads nothing.

use std::hash::Hasher;
use std::io;
use std::path::{Path, PathBuf};

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

impl Fingerprint {
    /// Reads every file in `files` (blocking).
    pub(crate) fn of(files: &[PathBuf]) -> Self {
        Self(files.iter().map(|file| file_state(file)).collect())
    }
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

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;

    #[test]
    fn fingerprint_sees_content_and_target_changes_only() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.toml");
        fs::write(&file, "x").unwrap();
        let files = vec![file.clone()];
        let first = Fingerprint::of(&files);
        fs::write(&file, "x").unwrap();
        assert_eq!(Fingerprint::of(&files), first);
        fs::write(&file, "y").unwrap();
        assert_ne!(Fingerprint::of(&files), first);
        fs::remove_file(&file).unwrap();
        assert_eq!(
            Fingerprint::of(&files),
            Fingerprint(vec![FileState::Unreadable(io::ErrorKind::NotFound)])
        );
    }
}
