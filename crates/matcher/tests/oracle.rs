//! The matcher against its reference: a `globset` glob per pattern, built
//! case-insensitively with `literal_separator(false)`, applied to the name without its
//! trailing dot. Names that are not valid names must match nothing.

use globset::{GlobBuilder, GlobMatcher};
use proptest::prelude::*;
use winsink_matcher::{normalize_pattern, MatcherBuilder, RuleId, SizeEstimate};

struct Oracle {
    globs: Vec<GlobMatcher>,
}

impl Oracle {
    fn new(patterns: &[String]) -> Self {
        let globs = patterns
            .iter()
            .map(|p| {
                let p = normalize_pattern(p).expect("generated patterns are valid");
                GlobBuilder::new(&p)
                    .case_insensitive(true)
                    .literal_separator(false)
                    .build()
                    .expect("globset accepts every valid pattern")
                    .compile_matcher()
            })
            .collect();
        Self { globs }
    }

    fn matches(&self, name: &str) -> Vec<RuleId> {
        if !is_valid_name(name) {
            return Vec::new();
        }
        let name = name.strip_suffix('.').unwrap_or(name);
        (0..self.globs.len() as RuleId)
            .filter(|&i| self.globs[i as usize].is_match(name))
            .collect()
    }
}

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

/// Both ways of building: a trie that grows (rehashing as it does), and one sized by a
/// first pass over the patterns.
fn check(patterns: &[String], names: &[String]) -> Result<(), TestCaseError> {
    let mut estimate = SizeEstimate::new();
    for p in patterns {
        estimate.add(p).expect("generated patterns are valid");
    }
    let oracle = Oracle::new(patterns);
    for mut b in [
        MatcherBuilder::new(),
        MatcherBuilder::with_estimate(&estimate),
    ] {
        for (i, p) in patterns.iter().enumerate() {
            b.add(p, i as RuleId).expect("generated patterns are valid");
        }
        let m = b.build();
        for n in names {
            prop_assert_eq!(
                m.matches(n),
                oracle.matches(n),
                "name {:?}, patterns {:?}",
                n,
                patterns
            );
        }
    }
    Ok(())
}

/// Labels from a tiny alphabet so that patterns and names collide often.
fn pattern() -> impl Strategy<Value = String> {
    prop_oneof![
        // host
        "[abAB_-]{1,3}(\\.[abAB]{1,3}){0,3}\\.?",
        // *.suffix
        "\\*(\\.[abAB-]{1,3}){1,3}\\.?",
        // a star somewhere: x.*.y, *x.y, x.y*, *
        "[ab*]{0,2}\\*[ab-]{0,2}(\\.[ab*]{1,3}){0,3}\\.?",
        // adversarial: many stars, several labels of them
        "(\\*|a|b|\\*\\*){1,8}(\\.(\\*|a|b|\\*\\*){1,6}){0,4}",
    ]
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[abAB-]{1,3}(\\.[abAB_-]{1,3}){0,6}\\.?",
        // deep names
        1 => "[aAbB](\\.[aAbB]){20,126}\\.?",
        // a literal star, and things that are not names at all
        1 => "[ab.* \u{e9}\\\\]{0,8}",
    ]
}

/// A name built from a pattern by filling every `*` (fills may hold dots, and may make
/// the result invalid, which the oracle knows).
fn derived(pattern: &str, fills: &[String]) -> String {
    let mut fills = fills.iter().cycle();
    pattern
        .chars()
        .map(|c| match c {
            '*' => fills.next().cloned().unwrap_or_default(),
            c => c.to_string(),
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn agrees_with_globset_on_random_names(
        patterns in prop::collection::vec(pattern(), 1..16),
        names in prop::collection::vec(name(), 1..24),
    ) {
        check(&patterns, &names)?;
    }

    #[test]
    fn agrees_with_globset_on_names_built_from_the_patterns(
        patterns in prop::collection::vec(pattern(), 1..16),
        fills in prop::collection::vec("[abAB.-]{0,4}", 1..6),
        prefixes in prop::collection::vec("([abAB]{1,2}\\.){0,2}", 1..4),
    ) {
        let mut names = Vec::new();
        for (i, p) in patterns.iter().enumerate() {
            let d = derived(p, &fills);
            names.push(format!("{}{d}", prefixes[i % prefixes.len()]));
            names.push(d.to_uppercase());
            names.push(d);
        }
        check(&patterns, &names)?;
    }

    #[test]
    fn agrees_with_globset_on_long_labels(
        patterns in prop::collection::vec(prop_oneof![
            "([ab]a{5,20}[ab]?\\.){0,2}[ab]a{5,20}",
            "\\*(\\.[ab]a{5,20}[ab]?){1,3}",
            "[ab]a{5,20}\\*[ab]?(\\.[ab]a{5,20}){1,2}",
        ], 1..12),
        names in prop::collection::vec("([abAB][aA]{5,20}[ab]?\\.){0,3}[ab][aA]{5,20}\\.?", 1..24),
    ) {
        // Labels of 7 to 22 octets: stored whole in a slot up to 16, in the arena beyond.
        check(&patterns, &names)?;
    }

    #[test]
    fn agrees_with_globset_under_many_rules_at_one_node(
        globs in prop::collection::vec(
            "([ab]{1,2}\\.)?[ab]{0,2}\\*[ab]{0,2}\\*?[ab]{0,2}"
                .prop_filter("a glob, not a lone star", |g| g.bytes().any(|b| b != b'*')),
            16..40,
        ),
        names in prop::collection::vec("[abAB.]{1,8}", 1..24),
    ) {
        // Enough globs on one suffix to switch on the globset prefilter.
        let patterns: Vec<String> = globs.iter().map(|g| format!("{g}.example.com")).collect();
        let names: Vec<String> = names.iter().map(|n| format!("{n}.example.COM")).collect();
        check(&patterns, &names)?;
    }

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}", pattern in pattern()) {
        let mut b = MatcherBuilder::new();
        b.add(&pattern, 1).expect("generated patterns are valid");
        b.add("*", 2).expect("valid");
        let m = b.build();
        let got = m.matches(&text);
        prop_assert_eq!(got.is_empty(), !is_valid_name(&text));
        // Arbitrary patterns are either accepted or rejected with the input kept.
        let mut b = MatcherBuilder::new();
        if let Err(e) = b.add(&text, 3) {
            prop_assert_eq!(e.pattern, text);
        }
    }
}

#[test]
fn adversarial_patterns_agree_with_globset() {
    let patterns: Vec<String> = [
        "*a*a*a*a*a*a*a*a*a*b",
        "*.*.*.*.*",
        "a*.*.*a",
        "**",
        "***.a",
        "a.**",
        "*-*",
        "*_*",
        "*.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a",
        "a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a.a*",
    ]
    .map(String::from)
    .to_vec();
    let mut names: Vec<String> = vec![
        "a".repeat(63),
        format!("{}b", "a".repeat(62)),
        ["a"; 127].join("."),
        ["a"; 126].join(".") + ".b",
        "b.".repeat(120) + "a",
        "A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.A.".into(),
        "-".into(),
        "_.-".into(),
    ];
    for d in 1..30 {
        names.push(["a"; 30][..d].join("."));
        names.push(["aA"; 30][..d].join("."));
    }
    check(&patterns, &names).unwrap();
}
