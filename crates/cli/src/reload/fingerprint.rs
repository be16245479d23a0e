//! What "the watched files changed" means: where each file resolves to and a hash of its
//! content. Events and metadata only say that something may have changed; this says
//! whether it did, so a `touch` or a rewrite with the same bytes reloads nothing.

use std::hash::Hasher;
use std::io::{self, Read};
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
        let mut f = std::fs::File::open(&resolved)?;
        // Change detection, not security: SipHash over the content is plenty. Read in
        // pieces: a million-name list read whole would cost its size in memory beside
        // the policy, at start and before each reload.
        let mut hasher = std::hash::DefaultHasher::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut len = 0u64;
        loop {
            match f.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.write(&buf[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(FileState::Present {
            resolved,
            len,
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
