//! The one error type of the policy crate.

use std::path::PathBuf;

/// Why a config file (or a file it names) could not be turned into a [`Policy`](crate::Policy).
///
/// Every variant keeps the offending input and says where it is: `origin` is the config
/// file's path (or the name given to [`Policy::from_config_str`](crate::Policy::from_config_str)),
/// `line` is 1-based.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The text is not valid TOML, or a value has the wrong type.
    #[error("{origin}:{line}:{column}: {message}")]
    Syntax {
        /// The config file.
        origin: String,
        /// Line of the error.
        line: usize,
        /// Column of the error (1-based, in characters).
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A key that the config format does not have (usually a typo).
    #[error("{origin}:{line}: unknown key `{key}` in {table}{}", hint(suggestion))]
    UnknownKey {
        /// The config file.
        origin: String,
        /// Line of the key.
        line: usize,
        /// The key as written.
        key: String,
        /// The table it appeared in (`[server]`, `[[rules]]`, `the top level`).
        table: String,
        /// The closest valid key, if one is close.
        suggestion: Option<String>,
    },
    /// A value outside its set of allowed words (`action = "blok"`).
    #[error(
        "{origin}:{line}: `{key}` = {value:?} is not one of {}{}",
        expected.join(", "),
        hint(suggestion)
    )]
    InvalidValue {
        /// The config file.
        origin: String,
        /// Line of the value.
        line: usize,
        /// The key the value belongs to.
        key: String,
        /// The value as written.
        value: String,
        /// The allowed values.
        expected: Box<[String]>,
        /// The closest allowed value, if one is close.
        suggestion: Option<String>,
    },
    /// An area id that none of the loaded catalogs has.
    #[error(
        "{origin}:{line}: unknown area id `{id}`{}{}",
        in_group(group),
        hint(suggestion)
    )]
    UnknownArea {
        /// The config file.
        origin: String,
        /// Line of the id.
        line: usize,
        /// The id as written.
        id: String,
        /// The group whose `[groups.areas]` named it, if any.
        group: Option<String>,
        /// The closest area id of the loaded catalogs, if one is close.
        suggestion: Option<String>,
    },
    /// A rule whose pattern is not a domain pattern.
    #[error("{origin}:{line}: {error}")]
    Pattern {
        /// The config file.
        origin: String,
        /// Line of the pattern.
        line: usize,
        /// The matcher's complaint (pattern and reason).
        error: winsink_matcher::PatternError,
    },
    /// A catalog endpoint whose pattern the matcher rejects.
    #[error("catalog {catalog}, area `{area}`: {error}")]
    CatalogPattern {
        /// The catalog (path or built-in name).
        catalog: String,
        /// The area id.
        area: String,
        /// The matcher's complaint.
        error: winsink_matcher::PatternError,
    },
    /// A group client network that is not an address or CIDR.
    #[error("{origin}:{line}: group `{group}`: invalid client network {cidr:?}: {reason}")]
    Cidr {
        /// The config file.
        origin: String,
        /// Line of the network.
        line: usize,
        /// The group.
        group: String,
        /// The network as written.
        cidr: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Two groups with the same name.
    #[error("{origin}:{line}: group `{name}` is defined twice")]
    DuplicateGroup {
        /// The config file.
        origin: String,
        /// Line of the second definition.
        line: usize,
        /// The group name.
        name: String,
    },
    /// Two groups claim exactly the same network, so no group is the most specific.
    #[error(
        "{origin}:{line}: groups `{first}` and `{second}` both claim {network}; \
         a client must have one most specific group"
    )]
    AmbiguousGroups {
        /// The config file.
        origin: String,
        /// Line of the second claim.
        line: usize,
        /// The group that claimed it first.
        first: String,
        /// The group that claimed it again.
        second: String,
        /// The network.
        network: String,
    },
    /// A catalog named by `catalogs` that could not be loaded.
    #[error("{origin}: catalog {catalog}")]
    Catalog {
        /// The config file and the line naming the catalog (`file:line`); the file alone
        /// for the default catalog.
        origin: String,
        /// The catalog as written in `catalogs`.
        catalog: String,
        /// The catalog crate's error (boxed: it carries a whole TOML error).
        #[source]
        source: Box<winsink_catalog::CatalogError>,
    },
    /// A built-in catalog name that does not exist.
    #[error("{origin}: unknown built-in catalog `{name}`{}", hint(suggestion))]
    UnknownBuiltin {
        /// The config file and the line naming the catalog (`file:line`).
        origin: String,
        /// The name after `builtin:`.
        name: String,
        /// The closest built-in name.
        suggestion: Option<String>,
    },
    /// A list file that could not be read.
    #[error("{origin}: list `{label}`: cannot read {}", path.display())]
    List {
        /// The config file.
        origin: String,
        /// The list's label.
        label: String,
        /// The list file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A list file with no valid line, or more malformed lines than valid ones: most
    /// likely a failed download or garbage, refused unless the list says `allow_empty`.
    #[error(
        "{origin}: list `{label}` ({}): {valid} valid and {malformed} malformed lines: refused \
         (an empty or mostly malformed list is usually a failed download; \
         `allow_empty = true` on the list accepts it)",
        path.display()
    )]
    SuspectList {
        /// The config file and the line of the list's `path`.
        origin: String,
        /// The list's label.
        label: String,
        /// The list file.
        path: PathBuf,
        /// Entries that loaded.
        valid: usize,
        /// Malformed lines.
        malformed: usize,
    },
    /// The config file holds nothing but comments and whitespace. Read as all defaults it
    /// would turn every area to `log` and change listen addresses and upstreams, which
    /// no edit of a running config means.
    #[error("{} is empty (nothing but comments and whitespace): refused", path.display())]
    EmptyConfig {
        /// The file.
        path: PathBuf,
    },
    /// A value that parses but makes no sense (a `custom` sinkhole without addresses, ...).
    #[error("{origin}: {message}")]
    Invalid {
        /// The config file.
        origin: String,
        /// What is wrong.
        message: String,
    },
    /// An area id, asked to be changed, that no loaded catalog has.
    #[error("no catalog area has the id `{id}`{}", hint(suggestion))]
    NoSuchArea {
        /// The id as asked.
        id: String,
        /// The closest area id, if one is close.
        suggestion: Option<String>,
    },
    /// The config file cannot be changed in place.
    #[error("cannot change {}: {reason}", path.display())]
    NotWritable {
        /// The config file.
        path: PathBuf,
        /// Why not, in words (a read-only mode, the OS error).
        reason: String,
    },
    /// Several independent problems, all reported at once.
    #[error("{} errors:\n  {}", .0.len(), list(.0))]
    Several(Vec<Self>),
}

fn hint(suggestion: &Option<String>) -> String {
    match suggestion {
        Some(s) => format!(" (did you mean `{s}`?)"),
        None => String::new(),
    }
}

fn in_group(group: &Option<String>) -> String {
    match group {
        Some(g) => format!(" in group `{g}`"),
        None => String::new(),
    }
}

fn list(errors: &[PolicyError]) -> String {
    errors
        .iter()
        .map(|e| {
            let mut s = e.to_string();
            let mut cause = std::error::Error::source(e);
            while let Some(c) = cause {
                s.push_str(": ");
                s.push_str(&c.to_string());
                cause = c.source();
            }
            s
        })
        .collect::<Vec<_>>()
        .join("\n  ")
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub(crate) fn closest<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<String> {
    let word_l = word.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| {
            (
                strsim::damerau_levenshtein(&word_l, &c.to_ascii_lowercase()),
                c,
            )
        })
        .filter(|(d, c)| *d <= (c.len().max(word.len()) / 3).max(2))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c.to_owned())
}

#[cfg(test)]
mod tests {
    use super::closest;

    #[test]
    fn closest_suggests_typos_but_not_strangers() {
        let keys = ["default_action", "areas", "rules", "lists"];
        assert_eq!(
            closest("defualt_action", keys),
            Some("default_action".into())
        );
        assert_eq!(closest("rule", keys), Some("rules".into()));
        assert_eq!(closest("frobnicate", keys), None);
    }
}
