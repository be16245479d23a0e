use super::*;

fn matcher(rules: &[(&str, RuleId)]) -> Matcher {
    let mut b = MatcherBuilder::new();
    for &(p, id) in rules {
        b.add(p, id).unwrap();
    }
    b.build()
}

fn one(pattern: &str) -> Matcher {
    matcher(&[(pattern, 7)])
}

#[track_caller]
fn hits(m: &Matcher, names: &[&str]) {
    for n in names {
        assert_eq!(m.matches(n), [7], "{n:?} should match");
    }
}

#[track_caller]
fn misses(m: &Matcher, names: &[&str]) {
    for n in names {
        assert!(m.matches(n).is_empty(), "{n:?} should not match");
    }
}

#[test]
fn host_matches_exactly_that_name() {
    let m = one("ctldl.windowsupdate.com");
    hits(
        &m,
        &[
            "ctldl.windowsupdate.com",
            "CTLDL.WindowsUpdate.com.",
            "cTlDl.wInDoWsUpDaTe.CoM",
        ],
    );
    misses(
        &m,
        &[
            "a.ctldl.windowsupdate.com",
            "windowsupdate.com",
            "ctldl.windowsupdate.co",
            "xctldl.windowsupdate.com",
        ],
    );
}

#[test]
fn star_dot_suffix_matches_strictly_below_at_any_depth() {
    let m = one("*.wns.windows.com");
    hits(
        &m,
        &[
            "a.wns.windows.com",
            "a.b.wns.windows.com",
            "A.B.C.WNS.windows.com.",
        ],
    );
    misses(
        &m,
        &[
            "wns.windows.com",
            "wns.windows.com.",
            "awns.windows.com",
            "windows.com",
            "a.wns.windows.co",
        ],
    );
}

#[test]
fn star_between_labels_matches_any_run_including_dots() {
    let m = one("watson.*.microsoft.com");
    hits(
        &m,
        &[
            "watson.telemetry.microsoft.com",
            "watson.events.data.microsoft.com",
            "WATSON.x.Microsoft.com",
        ],
    );
    misses(
        &m,
        &[
            "watson.microsoft.com",
            "a.watson.telemetry.microsoft.com",
            "watson.telemetry.microsoft.net",
        ],
    );
}

#[test]
fn star_glued_to_a_label_matches_any_run_including_dots() {
    let m = one("*displaycatalog.mp.microsoft.com");
    hits(
        &m,
        &[
            "displaycatalog.mp.microsoft.com",
            "bigdisplaycatalog.mp.microsoft.com",
            "a.displaycatalog.mp.microsoft.com",
            "a.b-displaycatalog.mp.microsoft.com",
        ],
    );
    misses(
        &m,
        &[
            "displaycatalog2.mp.microsoft.com",
            "mp.microsoft.com",
            "displaycatalog.microsoft.com",
        ],
    );
}

#[test]
fn trailing_star_matches_any_continuation() {
    let m = one("www.bing.com*");
    hits(
        &m,
        &[
            "www.bing.com",
            "www.bing.com.",
            "www.bing.com.au",
            "www.bing.community",
            "WWW.BING.COM",
        ],
    );
    misses(&m, &["bing.com", "a.www.bing.com", "www.bing.co"]);
}

#[test]
fn lone_star_matches_every_valid_name() {
    let m = one("*");
    hits(&m, &["a", "com.", "a.b.c.d"]);
    misses(&m, &["", ".", "a..b", "a b"]);
}

#[test]
fn star_dot_star_needs_two_labels() {
    let m = one("*.*");
    hits(&m, &["a.b", "a.b.c"]);
    misses(&m, &["a"]);
}

#[test]
fn every_form_of_the_catalog_at_once() {
    let m = matcher(&[
        ("ctldl.windowsupdate.com", 1),
        ("*.windowsupdate.com", 2),
        ("*.wns.windows.com", 3),
        ("watson.*.microsoft.com", 4),
        ("*displaycatalog.mp.microsoft.com", 5),
        ("*.delivery.mp.microsoft.com", 6),
        ("*.dl.delivery.mp.microsoft.com", 7),
        ("login.live.com", 8),
        ("login.live.com*", 9),
        ("www.msftconnecttest.com*", 10),
    ]);
    assert_eq!(m.matches("ctldl.windowsupdate.com"), [1, 2]);
    assert_eq!(m.matches("x.ctldl.windowsupdate.com"), [2]);
    assert_eq!(m.matches("windowsupdate.com"), Vec::<RuleId>::new());
    assert_eq!(m.matches("a.dl.delivery.mp.microsoft.com"), [6, 7]);
    assert_eq!(m.matches("dl.delivery.mp.microsoft.com"), [6]);
    assert_eq!(m.matches("displaycatalog.mp.microsoft.com"), [5]);
    assert_eq!(m.matches("watson.displaycatalog.mp.microsoft.com"), [4, 5]);
    assert_eq!(m.matches("login.live.com"), [8, 9]);
    assert_eq!(m.matches("login.live.com.example"), [9]);
    assert_eq!(m.matches("www.msftconnecttest.com"), [10]);
    assert_eq!(m.len(), 10);
}

#[test]
fn all_ids_of_a_name_are_reported() {
    let m = matcher(&[
        ("a.example", 1),
        ("a.example", 2),
        ("*.example", 3),
        ("a.example", 1),
    ]);
    assert_eq!(m.matches("a.example"), [1, 2, 3]);
    let mut seen = Vec::new();
    m.for_each_match("A.EXAMPLE.", |id| seen.push(id));
    seen.sort_unstable();
    assert_eq!(
        seen,
        [1, 2, 3],
        "a duplicate (pattern, id) pair counts once"
    );
    assert_eq!(m.len(), 3);
}

#[test]
fn an_id_shared_by_several_patterns_is_reported_per_pattern() {
    let m = matcher(&[("a.example", 4), ("*.example", 4), ("a.*", 4)]);
    let mut n = 0;
    m.for_each_match("a.example", |id| {
        assert_eq!(id, 4);
        n += 1;
    });
    assert_eq!(n, 3);
    assert_eq!(m.matches("a.example"), [4]);
}

#[test]
fn host_and_subtree_under_one_id() {
    let m = matcher(&[
        ("ads.example", 9),
        ("*.ads.example", 9),
        ("other.example", 9),
    ]);
    assert_eq!(m.matches("ads.example"), [9]);
    assert_eq!(m.matches("x.ads.example"), [9]);
    assert_eq!(m.matches("other.example"), [9]);
    assert!(m.matches("x.other.example").is_empty());
    assert!(m.matches("example").is_empty());
}

#[test]
fn nodes_with_the_same_ids_share_one_rule_set() {
    let m = matcher(&[
        ("a.x", 1),
        ("a.x", 2),
        ("b.x", 1),
        ("b.x", 2),
        ("c.x", 2),
        ("c.x", 1),
    ]);
    assert_eq!(m.rules.sets.len(), 1);
    for n in ["a.x", "b.x", "c.x"] {
        assert_eq!(m.matches(n), [1, 2]);
    }
}

#[test]
fn many_globs_at_one_node_go_through_the_prefilter() {
    let mut rules: Vec<(String, RuleId)> = (0..40)
        .map(|i| (format!("ad{i}*.example.com"), i))
        .collect();
    rules.push(("*tracker*.example.com".into(), 100));
    rules.push(("exact.example.com".into(), 101));
    let refs: Vec<(&str, RuleId)> = rules.iter().map(|(p, i)| (p.as_str(), *i)).collect();
    let m = matcher(&refs);
    assert_eq!(m.rules.prefilters.len(), 1);
    assert_eq!(m.matches("ad17x.example.com"), [1, 17]);
    assert_eq!(m.matches("ad5x.example.com"), [5]);
    assert_eq!(m.matches("ad1.example.com"), [1]);
    assert_eq!(m.matches("AD1.B.example.com"), [1]);
    assert_eq!(m.matches("ad39.tracker.example.com"), [3, 39, 100]);
    assert_eq!(m.matches("exact.example.com"), [101]);
    assert!(m.matches("bd1.example.com").is_empty());
    assert!(m.matches("example.com").is_empty());
}

#[test]
fn idna_patterns_match_their_a_labels() {
    let m = matcher(&[("*.Bücher.example", 1), ("münchen.de", 2)]);
    assert_eq!(m.matches("shop.xn--bcher-kva.example"), [1]);
    assert_eq!(m.matches("XN--MNCHEN-3YA.de."), [2]);
    assert!(
        m.matches("münchen.de").is_empty(),
        "queries arrive as A-labels"
    );
}

#[test]
fn underscores_are_ordinary_label_characters() {
    let m = matcher(&[("_ldap._tcp.dc.lab", 1), ("*._tcp.dc.lab", 2)]);
    assert_eq!(m.matches("_LDAP._tcp.dc.lab"), [1, 2]);
    assert_eq!(m.matches("_kerberos._tcp.dc.lab"), [2]);
}

#[test]
fn invalid_query_names_match_nothing_and_never_panic() {
    let m = matcher(&[("*", 1), ("*.example", 2), ("*a*", 3), ("a.example", 4)]);
    let long_label = format!("{}.example", "a".repeat(64));
    let long_name = format!("{}.example", ["a"; 124].join("."));
    assert_eq!(long_name.len(), 255);
    for bad in [
        "",
        ".",
        "..",
        "a..example",
        ".a.example",
        "a.example..",
        "a b.example",
        "a\0.example",
        "ä.example",
        "a/example",
        "a\\.example",
        "\u{1F600}",
        &long_label,
        &long_name,
    ] {
        assert!(m.matches(bad).is_empty(), "{bad:?}");
    }
    // The longest valid name still works, batches of levels included.
    let deep = format!("{}.example", ["a"; 123].join("."));
    assert_eq!(deep.len(), 253);
    assert_eq!(m.matches(&deep), [1, 2, 3]);
}

#[test]
fn a_literal_star_in_a_query_is_an_ordinary_character() {
    let m = matcher(&[("*.example", 1), ("x*y.example", 2)]);
    assert_eq!(m.matches("*.example"), [1]);
    assert_eq!(m.matches("x*y.example"), [1, 2]);
}

#[test]
fn deep_names_walk_past_one_batch_of_levels() {
    let labels: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    let name = labels.join(".");
    let suffix = labels[3..].join(".");
    let m = matcher(&[
        (&name, 1),
        (&format!("*.{suffix}"), 2),
        (&format!("l0.*.{}", labels[15..].join(".")), 3),
    ]);
    assert_eq!(m.matches(&name), [1, 2, 3]);
    assert_eq!(m.matches(&format!("x.{name}")), [2]);
    assert_eq!(m.matches(&labels[1..].join(".")), [2]);
}

#[test]
fn an_empty_matcher_matches_nothing() {
    let m = Matcher::default();
    assert!(m.is_empty());
    assert!(m.matches("example.com").is_empty());
    assert!(!m.is_match("a"));
    let m = MatcherBuilder::new().build();
    assert!(m.matches("a.b.c").is_empty());
}

#[test]
fn add_reports_bad_patterns_and_keeps_the_good_ones() {
    let mut b = MatcherBuilder::new();
    b.add("good.example", 1).unwrap();
    let e = b.add("bad..example", 2).unwrap_err();
    assert_eq!(e.pattern, "bad..example");
    assert_eq!(e.kind, PatternErrorKind::EmptyLabel);
    b.add("also.good.example", 3).unwrap();
    assert_eq!(b.len(), 2);
    let m = b.build();
    assert_eq!(m.matches("good.example"), [1]);
    assert_eq!(m.matches("also.good.example"), [3]);
}

#[test]
fn matcher_can_be_shared_across_threads() {
    fn assert_shareable<T: Send + Sync + 'static>() {}
    assert_shareable::<Matcher>();
    let m = std::sync::Arc::new(one("*.example"));
    let t = {
        let m = m.clone();
        std::thread::spawn(move || m.matches("a.example"))
    };
    assert_eq!(t.join().unwrap(), [7]);
}

#[test]
fn debug_output_summarises_instead_of_dumping() {
    let m = one("a.example");
    let s = format!("{m:?}");
    assert!(s.starts_with("Matcher { rules: 1, nodes: 3,"), "{s}");
    assert!(m.heap_bytes() >= 3 * 24, "{}", m.heap_bytes());
}
