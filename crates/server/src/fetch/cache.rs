//! The cached copy of a URL list and what is known about it, kept beside it.
//!
//! For a list whose copy is `cache_dir/NAME`, `cache_dir/NAME.meta.json` holds the
//! validators the server sent (`ETag`, `Last-Modified`, for the next conditional request)
//! and when the copy was downloaded and last confirmed current:
//!
//! ```json
//! {"url":"https://example.org/hosts.txt","etag":"\"5f2a\"","last_modified":null,"fetched":1764633600,"checked":1764637200}
//! ```
//!
//! Both files are written whole into a temporary file in the same folder and renamed
//! into place, so a reader (the policy's load, another `winsink lists update`, a restart
//! after a crash) sees the previous copy or the new one, never half of one. The copy is
//! written first: a crash between the two renames leaves a new copy with old validators,
//! which costs one full download, never a wrong `304`.

use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use winsink_policy::UrlList;

/// What is kept beside a cached copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// The URL the copy came from (a copy of another URL is not used for validators).
    pub(crate) url: String,
    /// The server's `ETag`, sent back as `If-None-Match`.
    pub(crate) etag: Option<String>,
    /// The server's `Last-Modified`, sent back as `If-Modified-Since`.
    pub(crate) last_modified: Option<String>,
    /// When the copy was downloaded (seconds since the epoch).
    pub(crate) fetched: Option<u64>,
    /// When the server last confirmed the copy current, by a download or a `304`.
    pub(crate) checked: Option<u64>,
}

/// What is on disk for one URL list, as `winsink check` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedCopy {
    /// When the copy was downloaded; `None`: never (no copy).
    pub fetched: Option<SystemTime>,
    /// When the server last confirmed it current (a download or a `304`).
    pub checked: Option<SystemTime>,
}

impl CachedCopy {
    /// What the cache folder holds for `list`.
    pub fn of(list: &UrlList) -> Self {
        let Ok(copy) = std::fs::metadata(&list.cache_file) else {
            return Self {
                fetched: None,
                checked: None,
            };
        };
        let meta = read_meta(list);
        let at = |secs: Option<u64>| secs.map(|s| UNIX_EPOCH + Duration::from_secs(s));
        // Without its meta file (written by hand, or a crash), the copy's own time.
        let fetched = at(meta.as_ref().and_then(|m| m.fetched)).or_else(|| copy.modified().ok());
        Self {
            fetched,
            checked: at(meta.and_then(|m| m.checked)).or(fetched),
        }
    }

    /// "downloaded 3 h 5 min ago", "downloaded 2 days ago, confirmed current 4 min ago",
    /// or "never downloaded".
    pub fn describe(&self, now: SystemTime) -> String {
        let ago = |t: SystemTime| age(now.duration_since(t).unwrap_or_default());
        match (self.fetched, self.checked) {
            (None, _) => "never downloaded".to_owned(),
            (Some(f), Some(c)) if c > f && ago(c) != ago(f) => {
                format!(
                    "downloaded {} ago, confirmed current {} ago",
                    ago(f),
                    ago(c)
                )
            }
            (Some(f), _) => format!("downloaded {} ago", ago(f)),
        }
    }
}

/// A duration as people say it: "12 s", "5 min", "3 h 5 min", "2 days".
pub fn age(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0..=119 => format!("{s} s"),
        120..=3599 => format!("{} min", s / 60),
        3600..=172_799 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => format!("{} days", s / 86_400),
    }
}

/// `NAME.meta.json` beside the copy `NAME`.
pub(crate) fn meta_path(cache_file: &Path) -> PathBuf {
    let mut name = cache_file.file_name().unwrap_or_default().to_owned();
    name.push(".meta.json");
    cache_file.with_file_name(name)
}

/// The meta file of `list`'s copy, if it is there, readable and about the same URL.
pub(crate) fn read_meta(list: &UrlList) -> Option<Meta> {
    let text = std::fs::read(meta_path(&list.cache_file)).ok()?;
    let meta: Meta = serde_json::from_slice(&text).ok()?;
    (meta.url == list.url).then_some(meta)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same folder, flushed to
/// disk, renamed over `path`. The folder is created if missing.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".download-")
        .tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    // Published lists, not secrets: readable by `winsink check` run as another user
    // (a temporary file is created 0600).
    {
        use std::os::unix::fs::PermissionsExt as _;
        tmp.as_file()
            .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    }
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Writes the meta file of `list`'s copy.
pub(crate) fn write_meta(list: &UrlList, meta: &Meta) -> io::Result<()> {
    let text = serde_json::to_vec(meta).map_err(io::Error::other)?;
    write_atomic(&meta_path(&list.cache_file), &text)
}

/// Seconds since the epoch, now.
pub(crate) fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_as_people_say_them() {
        let s = Duration::from_secs;
        assert_eq!(age(s(5)), "5 s");
        assert_eq!(age(s(300)), "5 min");
        assert_eq!(age(s(3600)), "1 h");
        assert_eq!(age(s(3 * 3600 + 5 * 60)), "3 h 5 min");
        assert_eq!(age(s(3 * 86_400)), "3 days");
    }

    #[test]
    fn describe_says_never_downloaded_or_how_old() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let never = CachedCopy {
            fetched: None,
            checked: None,
        };
        assert_eq!(never.describe(now), "never downloaded");
        let copy = CachedCopy {
            fetched: Some(now - Duration::from_secs(7200)),
            checked: Some(now - Duration::from_secs(240)),
        };
        assert_eq!(
            copy.describe(now),
            "downloaded 2 h ago, confirmed current 4 min ago"
        );
    }

    #[test]
    fn an_atomic_write_replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/list");
        write_atomic(&path, b"one\n").unwrap();
        write_atomic(&path, b"two\n").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two\n");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["list"]);
        assert_eq!(meta_path(&path), dir.path().join("sub/list.meta.json"));
    }
}
