//! Lists by URL: `[[lists]] url = "https://…"`, how often each is refreshed, and where
//! its last good download is kept.
//!
//! ```toml
//! [[lists]]
//! url = "https://example.org/lists/native.winoffice.txt"   # http:// or https://
//! refresh = "24h"          # default 24h; "90s", "30m", "12h", "7d"; at least 1s
//! format = "adblock"       # as for file lists
//! action = "block"
//! label = "hagezi-winoffice"   # default: the URL's last path segment
//!
//! [url_lists]              # one table for every URL list (not `[lists]`: TOML cannot
//!                          # have a `[lists]` table beside the `[[lists]]` array)
//! cache_dir = "list-cache" # default: $STATE_DIRECTORY/lists, else list-cache/ beside the config
//! max_size_mib = 64        # a download larger than this (after gzip) is refused; default 64
//! timeout = "2m"           # a download that takes longer is abandoned; default 2m
//! ```
//!
//! The policy never downloads anything: it knows nothing of HTTP. A URL list is read,
//! exactly like a file list, from its cached copy in `cache_dir` (one file per URL, named
//! after the URL's last segment and a hash of the whole URL); a list never downloaded
//! loads empty, with a warning, so that the daemon starts without network.
//! `winsink_server::fetch` downloads into that folder (conditional requests, a size cap,
//! gzip, the same refusal of empty or mostly malformed text as file lists) and asks for a
//! reload when a copy changed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::list::ListFormat;

/// `[url_lists]`: where and how lists by URL are downloaded.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct UrlListSettings {
    /// The folder downloads are kept in, relative to the config file's.
    /// Default: `$STATE_DIRECTORY/lists` when set (systemd's `StateDirectory=`), else
    /// `list-cache` beside the config file.
    pub(crate) cache_dir: Option<PathBuf>,
    /// The largest download accepted, in MiB, counted after gzip decoding (at least 1).
    /// Default: `64`.
    pub(crate) max_size_mib: Spanned<u64>,
    /// How long one download may take, as `"90s"`, `"2m"` (at least 1s). Default: `"2m"`.
    pub(crate) timeout: Spanned<String>,
}

impl Default for UrlListSettings {
    fn default() -> Self {
        Self {
            cache_dir: None,
            max_size_mib: Spanned::new(0..0, 64),
            timeout: Spanned::new(0..0, "2m".to_owned()),
        }
    }
}

/// The checked `[url_lists]` settings, as the downloader uses them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Downloads {
    /// The folder the last good copy of each URL list is kept in.
    pub cache_dir: PathBuf,
    /// The largest download accepted, in bytes (after gzip decoding).
    pub max_bytes: u64,
    /// How long one download may take.
    pub timeout: Duration,
}

/// The default refresh interval of a URL list.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(24 * 3600);

/// One `[[lists]]` entry with a `url`: what the downloader needs to keep its cached copy
/// current.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlList {
    /// The list's label (logs, `decided_by`).
    pub label: String,
    /// The `http://` or `https://` URL, as written.
    pub url: String,
    /// How often it is downloaded again.
    pub refresh: Duration,
    /// Where its last good copy is kept (inside [`Downloads::cache_dir`]).
    pub cache_file: PathBuf,
    /// Its syntax: a download is checked with it before it replaces the cached copy.
    pub format: ListFormat,
    /// `allow_empty` of the list: an empty or mostly malformed download is accepted.
    pub allow_empty: bool,
}

/// Parses a duration written as a whole number and a unit: `"90s"`, `"30m"`, `"24h"`,
/// `"7d"`.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let unit_secs = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => 0,
    };
    match digits.parse::<u64>() {
        Ok(n) if unit_secs > 0 => n
            .checked_mul(unit_secs)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("\"{text}\" is too long")),
        _ => Err(format!(
            "\"{text}\" is not a duration like \"90s\", \"30m\", \"24h\" or \"7d\""
        )),
    }
}

/// Checks a list URL: `http://` or `https://` with a host.
pub(crate) fn check_url(text: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(text).map_err(|e| format!("\"{text}\" is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "\"{text}\": only http:// and https:// lists can be downloaded"
        ));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("\"{text}\" names no host"));
    }
    Ok(url)
}

/// The URL's last non-empty path segment without a `.gz` (the default label), or its
/// host.
pub(crate) fn default_label(url: &url::Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.rfind(|x| !x.is_empty()))
        .map(|s| s.strip_suffix(".gz").unwrap_or(s).to_owned());
    match last {
        Some(s) if !s.is_empty() => s,
        _ => url.host_str().unwrap_or("list").to_owned(),
    }
}

/// The cached copy's file name: the URL's last segment (readable) and a hash of the
/// whole URL (so that two lists called `hosts` do not share a file, and a changed URL
/// does not read the old one's copy).
pub(crate) fn cache_name(url: &url::Url) -> String {
    let readable: String = default_label(url)
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    format!(
        "{}-{:016x}",
        readable.trim_start_matches('.'),
        fnv1a(url.as_str())
    )
}

/// FNV-1a, 64 bits: stable across releases and platforms (the file names must be), and
/// not a security boundary.
fn fnv1a(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The default cache folder: `$STATE_DIRECTORY/lists` (the first of its folders) when
/// systemd set it, else `list-cache` in `base_dir`.
pub(crate) fn default_cache_dir(base_dir: &Path) -> PathBuf {
    match std::env::var_os("STATE_DIRECTORY").filter(|d| !d.is_empty()) {
        Some(d) => {
            let d = d.to_string_lossy();
            PathBuf::from(d.split(':').next().unwrap_or(&d)).join("lists")
        }
        None => base_dir.join("list-cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_one_unit() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("24h"), Ok(DEFAULT_REFRESH));
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86_400)));
        for bad in ["", "24", "h", "1.5h", "-1h", "1w", "1h30m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host() {
        assert!(check_url("https://example.org/a.txt").is_ok());
        assert!(check_url("http://127.0.0.1:8080/x").is_ok());
        assert!(check_url("ftp://example.org/a.txt")
            .unwrap_err()
            .contains("only http:// and https://"));
        assert!(check_url("file:///etc/hosts").is_err());
        assert!(check_url("example.org/a.txt")
            .unwrap_err()
            .contains("not a URL"));
    }

    #[test]
    fn labels_and_cache_names_come_from_the_url() {
        let u = check_url("https://cdn.example/hagezi/native.winoffice.txt").unwrap();
        assert_eq!(default_label(&u), "native.winoffice.txt");
        let gz = check_url("https://cdn.example/spy.txt.gz?x=1").unwrap();
        assert_eq!(default_label(&gz), "spy.txt");
        let bare = check_url("https://lists.example/").unwrap();
        assert_eq!(default_label(&bare), "lists.example");
        let name = cache_name(&u);
        assert!(name.starts_with("native.winoffice.txt-"), "{name}");
        assert_eq!(name.len(), "native.winoffice.txt-".len() + 16);
        // The same file name every time, another for another URL.
        assert_eq!(name, cache_name(&u));
        let other = check_url("https://cdn.example/other/native.winoffice.txt").unwrap();
        assert_ne!(name, cache_name(&other));
        let odd = check_url("https://x.example/a%20b/..hosts").unwrap();
        assert!(!cache_name(&odd).starts_with('.'), "{}", cache_name(&odd));
    }

    fn load(text: &str, dir: &Path) -> Result<crate::Loaded, String> {
        crate::Policy::from_config_str(text, dir, "t.toml").map_err(|e| e.to_string())
    }

    const HEAD: &str = "catalogs = []\n[url_lists]\ncache_dir = \"cache\"\n";

    #[test]
    fn a_list_with_both_a_path_and_a_url_is_an_error_naming_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEAD}[[lists]]\npath = \"a.txt\"\nurl = \"https://x.example/a.txt\"\naction = \"block\"\n"
        );
        assert_eq!(
            load(&text, dir.path()).unwrap_err(),
            "t.toml:5: [[lists]] has both `path` and `url`: a list is a file or a download, \
             give one of them"
        );
        let text = format!("{HEAD}[[lists]]\naction = \"block\"\n");
        assert_eq!(
            load(&text, dir.path()).unwrap_err(),
            "t.toml:4: [[lists]] has neither `path` nor `url`: give the list's file or its URL"
        );
    }

    #[test]
    fn bad_urls_and_refreshes_name_their_lines() {
        let dir = tempfile::tempdir().unwrap();
        let list = |keys: &str| format!("{HEAD}[[lists]]\naction = \"block\"\n{keys}");
        assert_eq!(
            load(&list("url = \"ftp://x.example/a\"\n"), dir.path()).unwrap_err(),
            "t.toml:6: [[lists]] `url` = \"ftp://x.example/a\": only http:// and https:// lists \
             can be downloaded"
        );
        assert_eq!(
            load(
                &list("url = \"https://x.example/a\"\nrefresh = \"soon\"\n"),
                dir.path()
            )
            .unwrap_err(),
            "t.toml:7: [[lists]] `refresh` = \"soon\" is not a duration like \"90s\", \"30m\", \
             \"24h\" or \"7d\""
        );
        assert_eq!(
            load(
                &list("url = \"https://x.example/a\"\nrefresh = \"0s\"\n"),
                dir.path()
            )
            .unwrap_err(),
            "t.toml:7: [[lists]] `refresh` = \"0s\" is shorter than the least refresh, 1s"
        );
        assert_eq!(
            load(&list("path = \"a.txt\"\nrefresh = \"1h\"\n"), dir.path()).unwrap_err(),
            "t.toml:7: [[lists]] `refresh` applies to lists with a `url`, not a `path` (a file \
             list is reloaded when the file changes)"
        );
        let text = "catalogs = []\n[url_lists]\nmax_size_mib = 0\ntimeout = \"fast\"\n";
        let e = load(text, dir.path()).unwrap_err();
        assert!(
            e.contains("t.toml:3: [url_lists] `max_size_mib` = 0 would refuse every download")
                && e.contains("t.toml:4: [url_lists] `timeout` = \"fast\" is not a duration"),
            "{e}"
        );
    }

    #[test]
    fn a_list_never_downloaded_loads_empty_and_a_cached_copy_loads_like_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{HEAD}[[lists]]\nurl = \"https://x.example/lists/spy.txt\"\nrefresh = \"1h\"\n\
             format = \"hosts\"\naction = \"block\"\n"
        );
        let loaded = load(&text, dir.path()).unwrap();
        let urls = loaded.policy.url_lists();
        assert_eq!(urls.len(), 1);
        let u = &urls[0];
        assert_eq!(
            (u.label.as_str(), u.url.as_str(), u.refresh, u.format),
            (
                "spy.txt",
                "https://x.example/lists/spy.txt",
                Duration::from_secs(3600),
                ListFormat::Hosts
            )
        );
        assert_eq!(
            u.cache_file.parent(),
            Some(dir.path().join("cache").as_path())
        );
        assert_eq!(loaded.policy.downloads().max_bytes, 64 << 20);
        assert_eq!(loaded.policy.downloads().timeout, Duration::from_secs(120));
        assert!(
            loaded.warnings.iter().any(|w| w.starts_with(
                "t.toml:5: list `spy.txt` \
                (https://x.example/lists/spy.txt) has not been downloaded yet"
            )),
            "{:?}",
            loaded.warnings
        );
        let client = std::net::IpAddr::from([127, 0, 0, 1]);
        let decide = |p: &crate::Policy| p.decide(client, "spy.example").verdict;
        assert_eq!(decide(&loaded.policy), crate::Verdict::Pass);

        std::fs::create_dir_all(dir.path().join("cache")).unwrap();
        std::fs::write(&u.cache_file, "0.0.0.0 spy.example\n").unwrap();
        let loaded = load(&text, dir.path()).unwrap();
        assert_eq!(decide(&loaded.policy), crate::Verdict::Block);
        assert!(loaded.files.contains(&u.cache_file), "{:?}", loaded.files);
        let summary = loaded.policy.summary();
        assert_eq!(summary.lists[0].url.as_deref(), Some(u.url.as_str()));
        assert_eq!(summary.lists[0].loaded, 1);
    }
}
