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
        Self {
            set: list.iter().cloned().collect(),
            list,
        }
    }

    /// Whether `name` (lower case, as the server and its query log write names; a
    /// trailing dot is ignored) is one of the suffixes or below one: one lookup per label
    /// boundary, so `notmicrosoft.com` is not under `microsoft.com`.
    pub fn contains(&self, name: &str) -> bool {
        let mut rest = name.strip_suffix('.').unwrap_or(name);
        loop {
            if self.set.contains(rest) {
                return true;
            }
            match rest.find('.') {
                Some(i) => rest = &rest[i + 1..],
                None => return false,
            }
        }
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
}
