//! Compiled domain-pattern matcher.
//!
//! PLACEHOLDER IMPLEMENTATION (globset over every pattern): the public API below is the
//! contract the rest of the workspace codes against; the trie-based implementation
//! replaces the internals without changing it.
#![warn(missing_docs)]

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};

/// The caller's identifier for a rule; the matcher reports it back on a match.
pub type RuleId = u32;

/// Why a pattern was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain pattern {pattern:?}: {reason}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Collects rules, then compiles them into a [`Matcher`].
#[derive(Debug, Default)]
pub struct MatcherBuilder {
    rules: Vec<(String, RuleId)>,
}

impl MatcherBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `pattern` under `id`. The same id may be used for several patterns.
    pub fn add(&mut self, pattern: &str, id: RuleId) -> Result<(), PatternError> {
        let p = normalize_pattern(pattern)?;
        self.rules.push((p, id));
        Ok(())
    }

    /// Number of rules added so far.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rule was added.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Compiles the rules.
    pub fn build(self) -> Matcher {
        let mut b = GlobSetBuilder::new();
        let mut ids = Vec::with_capacity(self.rules.len());
        for (p, id) in self.rules {
            let g = GlobBuilder::new(&p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .expect("validated pattern");
            b.add(g);
            ids.push(id);
        }
        Matcher {
            set: b.build().expect("validated patterns"),
            ids,
        }
    }
}

/// An immutable compiled set of rules.
#[derive(Debug)]
pub struct Matcher {
    set: GlobSet,
    ids: Vec<RuleId>,
}

impl Matcher {
    /// Calls `f` once per matching rule (an id added several times may be reported once
    /// per pattern that matches). Does not allocate in the final implementation.
    pub fn for_each_match(&self, name: &str, mut f: impl FnMut(RuleId)) {
        let n = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        for i in self.set.matches(&n) {
            f(self.ids[i]);
        }
    }

    /// All matching rule ids, sorted and deduplicated (convenience; allocates).
    pub fn matches(&self, name: &str) -> Vec<RuleId> {
        let mut v = Vec::new();
        self.for_each_match(name, |id| v.push(id));
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Checks and normalises a pattern (lower-case, IDNA A-labels, no trailing dot).
pub fn normalize_pattern(pattern: &str) -> Result<String, PatternError> {
    let err = |reason: &str| PatternError {
        pattern: pattern.to_owned(),
        reason: reason.to_owned(),
    };
    let p = pattern.strip_suffix('.').unwrap_or(pattern).to_ascii_lowercase();
    if p.is_empty() {
        return Err(err("empty pattern"));
    }
    if p.len() > 253 {
        return Err(err("name longer than 253 octets"));
    }
    for label in p.split('.') {
        if label.is_empty() {
            return Err(err("empty label"));
        }
        if label.len() > 63 {
            return Err(err("label longer than 63 octets"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '-' || *c == '_' || *c == '*'))
        {
            return Err(err(&format!("character {c:?} is not allowed in a domain pattern")));
        }
    }
    Ok(p)
}
