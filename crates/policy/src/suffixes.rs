//! Domain suffixes by whole labels: the `[http] microsoft_suffixes` that make a name
//! Microsoft's, for the server's `/api/v1/uncatalogued` and `winsink report`'s
//! "not in the catalog" table (one definition, so the two agree).

use rustc_hash::FxHashSet;

/// A set of domain suffixes; see [`DomainSuffixes::contains`].
///
/// ```
/// use winsink_policy::DomainSuffixes;
/// let s = DomainSuffixes::new(&["microsoft.com", ".Live.COM."]);
/// assert!(s.contains("login.live.com"));
/// assert!(s.contains("microsoft.com"));
/// assert!(!s.contains("notmicrosoft.com"));
/// assert_eq!(s.as_slice(), ["microsoft.com", "live.com"]);
/// ```
#[derive(Debug, Clone, Default)]
pub struct DomainSuffixes {
    set: FxHashSet<String>,
    list: Vec<String>,
    /// Bit `n` (63 for 63 or more) set when a suffix has `n` labels.
    depths: u64,
    /// The most labels of a suffix.
    deepest: usize,
}

impl DomainSuffixes {
    /// The suffixes, compared without case or a leading or trailing dot; empty ones are
    /// left out.
    pub fn new<S: AsRef<str>>(suffixes: &[S]) -> Self {
        let list: Vec<String> = suffixes
            .iter()
            .map(|s| s.as_ref().trim_matches('.').to_ascii_lowercase())
            .filter(|s| !s.is_empty())
            .collect();
        let labels = |s: &String| s.matches('.').count() + 1;
        Self {
            set: list.iter().cloned().collect(),
            depths: list.iter().fold(0, |m, s| m | 1 << labels(s).min(63)),
            deepest: list.iter().map(labels).max().unwrap_or(0),
            list,
        }
    }

    /// Whether `name` (lower case, as the server and its query log write names; a
    /// trailing dot is ignored) is one of the suffixes or below one: whole labels only,
    /// so `notmicrosoft.com` is not under `microsoft.com`. It looks up only the tails of
    /// `name` with as many labels as some suffix has (one lookup when all have two, as
    /// the default list's do): the server asks this of every query no area matched.
    pub fn contains(&self, name: &str) -> bool {
        let name = name.strip_suffix('.').unwrap_or(name);
        let bytes = name.as_bytes();
        let mut end = name.len();
        for labels in 1..=self.deepest {
            // A byte search: `str::rfind('.')` compares each candidate with `memcmp`.
            let start = bytes[..end]
                .iter()
                .rposition(|&b| b == b'.')
                .map_or(0, |i| i + 1);
            if self.depths >> labels.min(63) & 1 == 1 && self.set.contains(&name[start..]) {
                return true;
            }
            if start == 0 {
                return false;
            }
            end = start - 1;
        }
        false
    }

    /// The suffixes as compared (lower case, no outer dots), in the order given.
    pub fn as_slice(&self) -> &[String] {
        &self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_match_whole_labels_only() {
        let s = DomainSuffixes::new(&["microsoft.com", ".Live.COM.", ""]);
        assert!(s.contains("microsoft.com"));
        assert!(s.contains("a.b.microsoft.com"));
        assert!(s.contains("login.live.com."));
        assert!(!s.contains("notmicrosoft.com"));
        assert!(!s.contains("microsoft.com.evil.example"));
        assert!(!s.contains("com"));
        assert!(!s.contains(""));
        assert_eq!(s.as_slice(), ["microsoft.com", "live.com"]);
    }

    /// Against the plain definition (the name or any tail after a dot is in the set), for
    /// suffixes of one to four labels and names with empty labels.
    #[test]
    fn only_tails_as_deep_as_a_suffix_are_looked_up_and_none_is_missed() {
        let suffixes = ["com", "live.net", "a.b.microsoft.com", "x..y"];
        let s = DomainSuffixes::new(&suffixes);
        let plain = |name: &str| {
            let name = name.strip_suffix('.').unwrap_or(name);
            std::iter::once(name)
                .chain(name.match_indices('.').map(|(i, _)| &name[i + 1..]))
                .any(|t| suffixes.contains(&t))
        };
        for name in [
            "com",
            "example.com",
            "live.net",
            "login.live.net",
            "notlive.net",
            "net",
            "b.microsoft.com",
            "a.b.microsoft.com",
            "z.a.b.microsoft.com",
            "x..y",
            "w.x..y",
            "..y",
            "",
            ".",
            "com.",
            "example.com..",
            "a.b.c.d.e.f.g",
            "live.net.example",
        ] {
            assert_eq!(s.contains(name), plain(name), "{name:?}");
        }
    }
}
