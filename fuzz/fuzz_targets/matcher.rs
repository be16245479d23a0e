//! Feeds arbitrary patterns and names to the matcher and holds it to its reference.
//!
//! Input: UTF-8 text; the lines before the first empty line are patterns (ids 0, 1, ...),
//! the lines after it are names. Every pattern also gives names of its own: each `*`
//! filled with ``, `a` and `a.b`, so that matches are common.
//!
//! The matcher must never panic; it accepts exactly the patterns `normalize_pattern`
//! accepts; `for_each_match`, `matches` and `is_match` agree; and the rules a name
//! matches are those whose `globset` glob (case-insensitive, `*` crossing dots) matches
//! the name without its trailing dot, for valid names, and none for invalid ones: the
//! reference the crate's property tests use.
#![no_main]

use globset::{GlobBuilder, GlobMatcher};
use libfuzzer_sys::fuzz_target;
use winsink_matcher::{normalize_pattern, MatcherBuilder, RuleId};

const MAX_PATTERNS: usize = 64;
const MAX_NAMES: usize = 256;

/// The crate's definition of a query name, restated independently.
fn is_valid_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_*".contains(&b))
        })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let patterns: Vec<&str> = lines
        .by_ref()
        .take_while(|l| !l.is_empty())
        .take(MAX_PATTERNS)
        .collect();
    let mut names: Vec<String> = lines.take(MAX_NAMES).map(str::to_owned).collect();

    let mut builder = MatcherBuilder::new();
    let mut globs: Vec<(RuleId, GlobMatcher)> = Vec::new();
    for (i, p) in patterns.iter().enumerate() {
        let id = i as RuleId;
        let added = builder.add(p, id);
        let normal = normalize_pattern(p);
        assert_eq!(
            added.is_ok(),
            normal.is_ok(),
            "add and normalize_pattern disagree on {p:?}"
        );
        if let Ok(n) = normal {
            let glob = GlobBuilder::new(&n)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .unwrap_or_else(|e| panic!("globset rejects normalized {n:?}: {e}"))
                .compile_matcher();
            globs.push((id, glob));
            for fill in ["", "a", "a.b"] {
                names.push(n.replace('*', fill));
            }
        }
    }
    let m = builder.build();
    assert!(m.len() <= globs.len());

    for name in &names {
        let got = m.matches(name);
        let mut each = Vec::new();
        m.for_each_match(name, |id| each.push(id));
        each.sort_unstable();
        each.dedup();
        assert_eq!(got, each, "for_each_match and matches disagree on {name:?}");
        assert_eq!(m.is_match(name), !got.is_empty());

        let expected: Vec<RuleId> = if is_valid_name(name) {
            let bare = name.strip_suffix('.').unwrap_or(name);
            globs
                .iter()
                .filter(|(_, g)| g.is_match(bare))
                .map(|&(id, _)| id)
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(got, expected, "name {name:?}, patterns {patterns:?}");
    }
});
