//! Every destination of Microsoft's Windows 11 Enterprise endpoint page (and of the shipped
//! catalog policy, when present) is accepted, and the matcher agrees with the globset
//! oracle on names built from all of them at once.

use std::collections::BTreeSet;

use globset::GlobBuilder;
use winsink_matcher::{normalize_pattern, MatcherBuilder, RuleId};

const DESTINATIONS: &str = include_str!("data/catalog-destinations.txt");
const POLICY: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../policies/windows11-enterprise.toml"
);

fn catalog() -> Vec<String> {
    let mut all: BTreeSet<String> = DESTINATIONS
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|p| normalize_pattern(p).unwrap_or_else(|e| panic!("{e}")))
        .collect();
    if let Ok(policy) = std::fs::read_to_string(POLICY) {
        let from_policy: Vec<&str> = policy
            .lines()
            .filter_map(|l| l.strip_prefix("pattern = \""))
            .map(|p| p.trim_end().trim_end_matches('"'))
            .collect();
        // The shipped catalog has about a hundred endpoints, or it is still a stub.
        assert!(
            from_policy.is_empty() || from_policy.len() >= 100,
            "{} patterns",
            from_policy.len()
        );
        for p in from_policy {
            all.insert(normalize_pattern(p).unwrap_or_else(|e| panic!("{e}")));
        }
    }
    all.into_iter().collect()
}

#[test]
fn the_catalog_holds_every_pattern_form() {
    let c = catalog();
    assert!(c.len() >= 100, "{}", c.len());
    let count = |f: fn(&str) -> bool| c.iter().filter(|p| f(p)).count();
    assert!(count(|p| !p.contains('*')) >= 80, "host");
    assert!(
        count(|p| p.starts_with("*.") && p.matches('*').count() == 1) >= 8,
        "*.suffix"
    );
    assert!(c.contains(&"watson.*.microsoft.com".to_owned()), "x.*.y");
    assert!(
        c.contains(&"*displaycatalog.mp.microsoft.com".to_owned()),
        "*x.y"
    );
    assert!(c.contains(&"www.bing.com*".to_owned()), "x*");
    assert!(c.contains(&"i-ring.msedge.net".to_owned()), "lower-cased");
}

#[test]
fn agrees_with_globset_on_names_around_every_catalog_pattern() {
    let c = catalog();
    let mut b = MatcherBuilder::new();
    for (i, p) in c.iter().enumerate() {
        b.add(p, i as RuleId).unwrap();
    }
    let m = b.build();
    let oracle: Vec<_> = c
        .iter()
        .map(|p| {
            GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .unwrap()
                .compile_matcher()
        })
        .collect();

    let mut names = BTreeSet::new();
    for p in &c {
        for fill in ["", "x", "x.y", "big", "a-b.c-d"] {
            let n = p.replace('*', fill);
            for variant in [
                n.clone(),
                format!("{n}."),
                n.to_uppercase(),
                format!("z.{n}"),
                format!("{n}.z"),
                format!("{n}z"),
            ] {
                names.insert(variant);
            }
            if let Some((_, parent)) = n.split_once('.') {
                names.insert(parent.to_owned());
            }
        }
    }
    let mut matched = 0;
    for n in &names {
        let valid = !n.starts_with('.') && !n.contains("..") && !n.is_empty();
        let bare = n.strip_suffix('.').unwrap_or(n);
        let want: Vec<RuleId> = if valid {
            (0..c.len() as RuleId)
                .filter(|&i| oracle[i as usize].is_match(bare))
                .collect()
        } else {
            Vec::new()
        };
        assert_eq!(m.matches(n), want, "{n:?}");
        matched += usize::from(!want.is_empty());
    }
    assert!(matched > names.len() / 3, "{matched} of {}", names.len());
}
