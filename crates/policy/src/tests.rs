//! Unit tests of loading and deciding, on a small catalog written for them.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::{Action, Loaded, MatchSource, Policy, PolicyError, Summary, Verdict};

const CATALOG: &str = r#"
[source]
title = "Test Catalog"
url = "https://example.invalid/page"
date = "01/01/2025"

[[area]]
id = "diagnostic-data"
name = "Diagnostic Data"
[[area.endpoint]]
pattern = "self.events.data.microsoft.com"
original = "self.events.data.microsoft.com"
description = "Diagnostic data stops flowing."
[[area.endpoint]]
pattern = "watson.*.microsoft.com"
original = "watson.*.microsoft.com"
description = "Error reports are not sent."

[[area]]
id = "office"
name = "Office"
[[area.endpoint]]
pattern = "self.events.data.microsoft.com"
original = "self.events.data.microsoft.com"
description = "Office telemetry stops."

[[area]]
id = "windows-update"
name = "Windows Update"
[[area.endpoint]]
pattern = "*.update.microsoft.com"
original = "*.update.microsoft.com"
description = "No updates."

[[area]]
id = "cortana-and-live-tiles"
name = "Cortana and Live Tiles"
[[area.endpoint]]
pattern = "www.bing.com"
original = "www.bing.com*"
description = "No Live Tiles."
"#;

/// A folder of the tests', removed when dropped (a loaded policy needs its files no more).
struct Dir(PathBuf);

impl std::ops::Deref for Dir {
    type Target = std::path::Path;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A fresh folder holding `catalog.toml` and the given extra files.
fn dir_with(files: &[(&str, &str)]) -> Dir {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "winsink-policy-unit-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("catalog.toml"), CATALOG).unwrap();
    for (name, text) in files {
        std::fs::write(dir.join(name), text).unwrap();
    }
    Dir(dir)
}

fn load_with(config: &str, files: &[(&str, &str)]) -> Result<Loaded, PolicyError> {
    let dir = dir_with(files);
    let text = format!("catalogs = [\"catalog.toml\"]\n{config}");
    Policy::from_config_str(&text, &dir, "test.toml")
}

fn load(config: &str) -> Policy {
    load_with(config, &[]).unwrap().policy
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

const ANY: &str = "127.0.0.1";

fn verdict(p: &Policy, name: &str) -> Verdict {
    p.decide(ip(ANY), name).verdict
}

fn summary_of(p: &Policy, client: &str, name: &str) -> Vec<String> {
    p.decide(ip(client), name)
        .matches()
        .map(|m| {
            format!(
                "{} | {} | {} | {}",
                m.source,
                m.area.map_or("-", |a| a.id),
                m.pattern,
                m.action
            )
        })
        .collect()
}

// --- precedence, line by line ---

#[test]
fn precedence_1_allow_rule_beats_a_blocked_area() {
    let p = load(
        "[areas]\ndiagnostic-data = \"block\"\n\
         [[rules]]\npattern = \"watson.telemetry.microsoft.com\"\naction = \"allow\"\nnote = \"needed\"\n",
    );
    let d = p.decide(ip(ANY), "watson.telemetry.microsoft.com");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(
        d.decided_by().unwrap().by.source,
        MatchSource::Rule(Some("needed"))
    );
    // The block it overrode is still reported.
    assert_eq!(d.matches().count(), 2);
    assert_eq!(verdict(&p, "watson.other.microsoft.com"), Verdict::Block);
}

#[test]
fn precedence_1_allow_list_beats_a_block_rule() {
    let p = load_with(
        "[[rules]]\npattern = \"*.example\"\naction = \"block\"\n\
         [[lists]]\npath = \"ok.txt\"\naction = \"allow\"\nlabel = \"ok\"\n",
        &[("ok.txt", "good.example\n")],
    )
    .unwrap()
    .policy;
    let d = p.decide(ip(ANY), "good.example");
    assert_eq!(d.verdict, Verdict::Allow);
    assert_eq!(d.decided_by().unwrap().by.source, MatchSource::List("ok"));
    assert_eq!(verdict(&p, "bad.example"), Verdict::Block);
}

#[test]
fn precedence_1_group_allow_rules_come_before_global_ones() {
    let p = load(
        "[[rules]]\npattern = \"x.example\"\naction = \"allow\"\nnote = \"global\"\n\
         [[rules]]\npattern = \"x.example\"\naction = \"block\"\n\
         [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\"]\n\
         [[groups.rules]]\npattern = \"x.example\"\naction = \"allow\"\nnote = \"group\"\n",
    );
    let member = p.decide(ip("10.1.2.3"), "x.example");
    assert_eq!(member.verdict, Verdict::Allow);
    assert_eq!(
        member.decided_by().unwrap().by.source,
        MatchSource::Rule(Some("group"))
    );
    let other = p.decide(ip("192.168.1.1"), "x.example");
    assert_eq!(other.verdict, Verdict::Allow);
    assert_eq!(
        other.decided_by().unwrap().by.source,
        MatchSource::Rule(Some("global"))
    );
    // The group's rule is not even reported for a client outside the group.
    assert_eq!(other.matches().count(), 2);
    assert_eq!(member.matches().count(), 3);
}

#[test]
fn precedence_1_a_global_allow_rule_beats_a_group_block_rule() {
    // Line 1 comes before line 2 whoever wrote the block: an allow rule is an exception
    // the operator wrote down, and a group's block rule does not undo it.
    let p = load(
        "[[rules]]\npattern = \"x.example\"\naction = \"allow\"\nnote = \"global\"\n\
         [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\"]\n\
         [[groups.rules]]\npattern = \"*.example\"\naction = \"block\"\n",
    );
    let member = p.decide(ip("10.1.2.3"), "x.example");
    assert_eq!(member.verdict, Verdict::Allow);
    assert_eq!(
        member.decided_by().unwrap().by.source,
        MatchSource::Rule(Some("global"))
    );
    assert_eq!(
        p.decide(ip("10.1.2.3"), "y.example").verdict,
        Verdict::Block
    );
}

#[test]
fn precedence_1_does_not_apply_to_allow_areas() {
    // An `allow` area does not override another area's block: only rules and lists do.
    let p = load("[areas]\ndiagnostic-data = \"block\"\noffice = \"allow\"\n");
    let d = p.decide(ip(ANY), "self.events.data.microsoft.com");
    assert_eq!(d.verdict, Verdict::Block);
    assert_eq!(
        d.decided_by().unwrap().by.area.unwrap().id,
        "diagnostic-data"
    );
}

#[test]
fn precedence_2_any_block_blocks() {
    let p = load_with(
        "default_action = \"log\"\n\
         [[rules]]\npattern = \"www.bing.com\"\naction = \"block\"\n\
         [[lists]]\npath = \"b.txt\"\naction = \"block\"\n",
        &[("b.txt", "0.0.0.0 listed.example\n")],
    )
    .unwrap()
    .policy;
    // Rule block beats the area's log.
    assert_eq!(verdict(&p, "www.bing.com"), Verdict::Block);
    // A list block alone.
    assert_eq!(verdict(&p, "listed.example"), Verdict::Block);
    // An area block beats another area's log.
    let p = load("[areas]\noffice = \"block\"\ndiagnostic-data = \"log\"\n");
    assert_eq!(
        verdict(&p, "self.events.data.microsoft.com"),
        Verdict::Block
    );
}

#[test]
fn precedence_3_any_log_logs() {
    let p = load("default_action = \"allow\"\n[areas]\noffice = \"log\"\n");
    assert_eq!(verdict(&p, "self.events.data.microsoft.com"), Verdict::Log);
    let p = load(
        "default_action = \"allow\"\n[[rules]]\npattern = \"www.bing.com\"\naction = \"log\"\n",
    );
    assert_eq!(verdict(&p, "www.bing.com"), Verdict::Log);
}

#[test]
fn precedence_4_only_allow_areas_allow_and_nothing_passes() {
    let p = load("default_action = \"allow\"\n");
    assert_eq!(verdict(&p, "www.bing.com"), Verdict::Allow);
    assert_eq!(verdict(&p, "example.org"), Verdict::Pass);
    let d = p.decide(ip(ANY), "example.org");
    assert!(!d.is_matched());
    assert!(d.decided_by().is_none());
}

// --- matches ---

#[test]
fn every_match_is_reported_with_area_and_impact() {
    let p = load("[areas]\ndiagnostic-data = \"block\"\n");
    let d = p.decide(ip(ANY), "self.events.data.microsoft.com");
    assert_eq!(d.verdict, Verdict::Block);
    let m: Vec<_> = d.matches().collect();
    assert_eq!(m.len(), 2);
    assert_eq!(m[0].area.unwrap().name, "Diagnostic Data");
    assert_eq!(m[0].action, Action::Block);
    assert_eq!(
        m[0].impact.map(|i| i.text),
        Some("Diagnostic data stops flowing.")
    );
    assert_eq!(m[0].source, MatchSource::Catalog("Test Catalog"));
    assert_eq!(m[1].area.unwrap().name, "Office");
    assert_eq!(m[1].action, Action::Log);
    assert_eq!(m[1].impact.map(|i| i.text), Some("Office telemetry stops."));
    let areas: Vec<_> = d.areas().map(|a| a.id).collect();
    assert_eq!(areas, ["diagnostic-data", "office"]);
}

#[test]
fn names_match_case_insensitively_with_a_trailing_dot() {
    let p = load("");
    let d = p.decide(ip(ANY), "WWW.Bing.COM.");
    assert_eq!(d.verdict, Verdict::Log);
    assert_eq!(
        d.decided_by().unwrap().by.area.unwrap().name,
        "Cortana and Live Tiles"
    );
}

#[test]
fn a_name_listed_twice_in_one_list_is_reported_once() {
    let p = load_with(
        "[[lists]]\npath = \"l.txt\"\naction = \"block\"\n",
        &[("l.txt", "0.0.0.0 dup.example\n0.0.0.0 dup.example\n")],
    )
    .unwrap()
    .policy;
    assert_eq!(
        summary_of(&p, ANY, "dup.example"),
        ["list: l.txt | - | dup.example | block"]
    );
}

#[test]
fn past_the_report_cap_the_verdict_still_counts_every_match() {
    let mut config = String::new();
    for i in 0..crate::MAX_REPORTED_MATCHES + 4 {
        config.push_str(&format!(
            "[[rules]]\npattern = \"*.example\"\naction = \"log\"\nnote = \"{i}\"\n"
        ));
    }
    // The allow is the last rule added, past the cap.
    config.push_str("[[rules]]\npattern = \"x.example\"\naction = \"allow\"\n");
    let p = load(&config);
    let d = p.decide(ip(ANY), "x.example");
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.is_truncated());
    assert_eq!(d.matches().count(), crate::MAX_REPORTED_MATCHES);
    assert_eq!(d.decided_by().unwrap().by.pattern, "x.example");
}

// --- groups ---

const GROUPS: &str = "[areas]\ndiagnostic-data = \"block\"\n\
    [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
    [groups.areas]\ndiagnostic-data = \"allow\"\nwindows-update = \"block\"\n\
    [[groups]]\nname = \"strict\"\nclients = [\"10.0.10.0/24\", \"10.9.9.9\"]\n\
    sinkhole = { mode = \"nxdomain\", ttl = 60 }\n\
    [groups.areas]\ncortana-and-live-tiles = \"block\"\n";

#[test]
fn group_area_actions_override_the_global_ones() {
    let p = load(GROUPS);
    assert_eq!(
        p.decide(ip("10.1.1.1"), "watson.x.microsoft.com").verdict,
        Verdict::Allow
    );
    assert_eq!(
        p.decide(ip("10.1.1.1"), "a.update.microsoft.com").verdict,
        Verdict::Block
    );
    assert_eq!(
        p.decide(ip("192.168.0.1"), "watson.x.microsoft.com")
            .verdict,
        Verdict::Block
    );
    assert_eq!(
        p.decide(ip("192.168.0.1"), "a.update.microsoft.com")
            .verdict,
        Verdict::Log
    );
    let d = p.decide(ip("10.1.1.1"), "a.update.microsoft.com");
    assert_eq!(d.group, Some("lab"));
    assert_eq!(d.matches().next().unwrap().action, Action::Block);
}

#[test]
fn the_most_specific_prefix_picks_the_group() {
    let p = load(GROUPS);
    assert_eq!(p.group_of(ip("10.0.10.7")), Some("strict"));
    assert_eq!(p.group_of(ip("10.9.9.9")), Some("strict"));
    assert_eq!(p.group_of(ip("10.0.11.7")), Some("lab"));
    assert_eq!(p.group_of(ip("fd00::1")), Some("lab"));
    assert_eq!(p.group_of(ip("::ffff:10.0.10.7")), Some("strict"));
    assert_eq!(p.group_of(ip("172.16.0.1")), None);
    // strict overrides only Cortana; its other areas follow the global config, not lab's.
    let d = p.decide(ip("10.0.10.7"), "www.bing.com");
    assert_eq!((d.verdict, d.group), (Verdict::Block, Some("strict")));
    assert_eq!(
        p.decide(ip("10.0.10.7"), "watson.x.microsoft.com").verdict,
        Verdict::Block
    );
}

#[test]
fn a_group_default_action_covers_the_areas_it_does_not_name() {
    let p = load(
        "[areas]\ndiagnostic-data = \"block\"\n\
         [[groups]]\nname = \"strict\"\nclients = [\"10.0.0.0/8\"]\ndefault_action = \"block\"\n\
         [groups.areas]\nwindows-update = \"allow\"\n",
    );
    let member = ip("10.0.0.1");
    assert_eq!(p.decide(member, "www.bing.com").verdict, Verdict::Block);
    assert_eq!(
        p.decide(member, "a.update.microsoft.com").verdict,
        Verdict::Allow
    );
    assert_eq!(verdict(&p, "www.bing.com"), Verdict::Log);
    let s = p.summary();
    assert_eq!(s.groups[0].default_action, Some(Action::Block));
    assert!(s.to_string().contains("  strict [10.0.0.0/8]: 1 area override (windows-update=allow), other areas block, 0 rules"), "{s}");
}

#[test]
fn a_group_sinkhole_overrides_the_global_one() {
    let p = load(GROUPS);
    let strict = p.decide(ip("10.0.10.7"), "www.bing.com");
    assert_eq!(strict.sinkhole.mode, crate::SinkholeMode::Nxdomain);
    assert_eq!(strict.sinkhole.ttl, 60);
    let lab = p.decide(ip("10.1.1.1"), "www.bing.com");
    assert_eq!(lab.sinkhole, p.sinkhole());
}

// --- errors ---

fn error(config: &str) -> String {
    let e = load_with(config, &[]).unwrap_err();
    let mut s = e.to_string();
    let mut cause = std::error::Error::source(&e);
    while let Some(c) = cause {
        s.push_str(&format!(": {c}"));
        cause = c.source();
    }
    s
}

#[test]
fn unknown_area_id_names_line_and_suggests() {
    assert_eq!(
        error("[areas]\ndiagnostics-data = \"block\"\n"),
        "test.toml:3: unknown area id `diagnostics-data` (did you mean `diagnostic-data`?)"
    );
    assert_eq!(
        error("[[groups]]\nname = \"g\"\nclients = []\n[groups.areas]\nofice = \"log\"\n"),
        "test.toml:6: unknown area id `ofice` in group `g` (did you mean `office`?)"
    );
}

#[test]
fn invalid_patterns_say_which_and_why() {
    let e = error("[[rules]]\npattern = \"bad..example\"\naction = \"block\"\n");
    assert!(
        e.starts_with("test.toml:3: invalid domain pattern \"bad..example\": "),
        "{e}"
    );
}

#[test]
fn invalid_cidrs_say_which_and_why() {
    let e = error("[[groups]]\nname = \"g\"\nclients = [\"10.0.0.0/33\"]\n");
    assert!(
        e.starts_with("test.toml:4: group `g`: invalid client network \"10.0.0.0/33\": "),
        "{e}"
    );
    let e = error("[[groups]]\nname = \"g\"\nclients = [\"10.0.0.1/24\"]\n");
    assert!(
        e.contains("host bits are set (the network is 10.0.0.0/24)"),
        "{e}"
    );
    let e = error("[[groups]]\nname = \"g\"\nclients = [\"lab-pcs\"]\n");
    assert!(e.contains("neither an IP address nor a CIDR"), "{e}");
}

#[test]
fn two_groups_claiming_one_network_is_an_error() {
    let e = error(
        "[[groups]]\nname = \"a\"\nclients = [\"10.0.0.0/24\"]\n\
         [[groups]]\nname = \"b\"\nclients = [\"10.0.0.0/24\"]\n",
    );
    assert!(
        e.contains("groups `a` and `b` both claim 10.0.0.0/24"),
        "{e}"
    );
    let e =
        error("[[groups]]\nname = \"a\"\nclients = []\n[[groups]]\nname = \"a\"\nclients = []\n");
    assert_eq!(e, "test.toml:6: group `a` is defined twice");
}

#[test]
fn several_problems_are_reported_together() {
    let e = error(
        "[areas]\nofice = \"block\"\n[[rules]]\npattern = \"a b\"\naction = \"log\"\n\
         [[lists]]\npath = \"missing.txt\"\naction = \"block\"\n",
    );
    assert!(e.starts_with("3 errors:\n"), "{e}");
    assert!(e.contains("unknown area id `ofice`"), "{e}");
    assert!(e.contains("invalid domain pattern \"a b\""), "{e}");
    assert!(e.contains("list `missing.txt`: cannot read"), "{e}");
}

#[test]
fn custom_sinkhole_needs_an_address() {
    let e = error("[sinkhole]\nmode = \"custom\"\n");
    assert_eq!(
        e,
        "test.toml: [sinkhole]: mode \"custom\" needs `ipv4`, `ipv6` or both"
    );
}

#[test]
fn unknown_builtin_catalog() {
    let e = Policy::from_config_str(
        "catalogs = [\"builtin:windows11-enterprize\"]",
        &dir_with(&[]),
        "t",
    )
    .unwrap_err()
    .to_string();
    assert_eq!(
        e,
        "t:1: unknown built-in catalog `windows11-enterprize` (did you mean `windows11-enterprise`?)"
    );
}

#[test]
fn a_catalog_that_does_not_load_names_it_and_its_line() {
    let e = Policy::from_config_str(
        "default_action = \"log\"\ncatalogs = [\n  \"catalog.toml\",\n  \"nope.toml\",\n]",
        &dir_with(&[]),
        "t",
    )
    .unwrap_err();
    assert!(e.to_string().starts_with("t:4: catalog nope.toml"), "{e}");
}

// --- lists, files, warnings ---

#[test]
fn lists_load_and_report_malformed_lines_as_warnings() {
    let dir = dir_with(&[(
        "hosts.txt",
        "# header\n127.0.0.1 localhost\n0.0.0.0 a.example b.example\nbogus line here\n||c.example^\n",
    )]);
    let text = "catalogs = [\"catalog.toml\"]\n[[lists]]\npath = \"hosts.txt\"\naction = \"block\"\nlabel = \"ads\"\n";
    let loaded = Policy::from_config_str(text, &dir, "test.toml").unwrap();
    let s = loaded.policy.summary();
    assert_eq!(s.lists.len(), 1);
    let l = &s.lists[0];
    assert_eq!((l.loaded, l.skipped, l.bad), (3, 1, 1));
    assert_eq!(l.bad_lines[0].line, 4);
    assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
    assert!(
        loaded.warnings[0].starts_with("list `ads` ("),
        "{}",
        loaded.warnings[0]
    );
    assert!(
        loaded.warnings[0].contains("1 malformed line ignored:\n    line 4: "),
        "{}",
        loaded.warnings[0]
    );
    assert_eq!(
        loaded.files,
        [dir.join("catalog.toml"), dir.join("hosts.txt")]
    );
    // Adblock `||name^` covers the name and everything below it.
    assert_eq!(verdict(&loaded.policy, "c.example"), Verdict::Block);
    assert_eq!(verdict(&loaded.policy, "x.c.example"), Verdict::Block);
    assert_eq!(verdict(&loaded.policy, "x.a.example"), Verdict::Pass);
}

#[test]
fn load_reads_the_config_file_and_resolves_paths_against_its_folder() {
    let dir = dir_with(&[(
        "winsink.toml",
        "catalogs = [\"catalog.toml\"]\n[log]\nfile = \"queries.log\"\n",
    )]);
    let loaded = Policy::load(&dir.join("winsink.toml")).unwrap();
    assert_eq!(
        loaded.files,
        [dir.join("winsink.toml"), dir.join("catalog.toml")]
    );
    assert_eq!(
        loaded.startup.log.file.as_deref(),
        Some(dir.join("queries.log").as_path())
    );
    let e = Policy::load(&dir.join("absent.toml"))
        .unwrap_err()
        .to_string();
    assert!(e.starts_with("cannot read "), "{e}");
}

#[test]
fn conflicting_areas_are_warned_about_with_their_names() {
    let loaded = load_with(
        "[areas]\ndiagnostic-data = \"block\"\noffice = \"allow\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "self.events.data.microsoft.com is blocked by area Diagnostic Data (diagnostic-data) \
          but also used by area Office (office) (allow): block wins (if that is meant, say so in the area's `acknowledge_shared` or with a \
          [[rules]] entry for the name)"
        ]
    );
    let quiet = load_with(
        "[areas]\ndiagnostic-data = \"block\"\noffice = \"block\"\n",
        &[],
    )
    .unwrap();
    assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
}

#[test]
fn a_block_rule_over_log_areas_is_not_a_conflict_but_over_an_allow_area_it_is() {
    let quiet = load_with(
        "[[rules]]\npattern = \"*.microsoft.com\"\naction = \"block\"\n",
        &[],
    )
    .unwrap();
    assert!(quiet.warnings.is_empty(), "{:?}", quiet.warnings);
    let loud = load_with(
        "[areas]\nwindows-update = \"allow\"\n\
         [[rules]]\npattern = \"*.microsoft.com\"\naction = \"block\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        loud.warnings,
        [
            "x.update.microsoft.com is blocked by rule *.microsoft.com but also used by \
          area Windows Update (windows-update) (allow): block wins (if that is meant, say so in the area's `acknowledge_shared` or with a \
          [[rules]] entry for the name)"
        ]
    );
}

#[test]
fn a_conflict_names_an_area_once_even_when_two_of_its_patterns_match() {
    // Office gets two patterns that both match x.update.microsoft.com.
    let dir = dir_with(&[(
        "two.toml",
        &CATALOG.replace(
            "description = \"Office telemetry stops.\"\n",
            "description = \"Office telemetry stops.\"\n\
             [[area.endpoint]]\npattern = \"*.microsoft.com\"\noriginal = \"*.microsoft.com\"\n\
             [[area.endpoint]]\npattern = \"x.update.microsoft.com\"\noriginal = \"x.update.microsoft.com\"\n",
        ),
    )]);
    let loaded = Policy::from_config_str(
        "catalogs = [\"two.toml\"]\n[areas]\nwindows-update = \"block\"\n",
        &dir,
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "x.update.microsoft.com is blocked by area Windows Update (windows-update) but \
          also used by area Office (office) (log): block wins (if that is meant, say so in the area's `acknowledge_shared` or with a \
          [[rules]] entry for the name)"
        ]
    );
}

/// `run` and `check` both read upstreams here, so they fail the same way.
#[test]
fn a_bad_upstream_is_an_error_naming_its_line() {
    assert_eq!(
        error("[server]\nupstreams = [\n  \"udp://192.0.2.1:53\",\n  \"udp//192.0.2.2\",\n]\n"),
        "test.toml:5: [server] upstreams: upstream \"udp//192.0.2.2\": expected an IP address \
         with an optional port, like 192.0.2.1:53 or [2001:db8::1]:53"
    );
    let loaded = load_with(
        "[server]\nupstreams = [\"tcp://192.0.2.1:5300\", \"192.0.2.2\"]\n",
        &[],
    )
    .unwrap();
    let shown: Vec<String> = loaded
        .startup
        .upstreams
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(shown, ["tcp://192.0.2.1:5300", "udp://192.0.2.2:53"]);
}

/// Encrypted upstreams: URLs and tables are typed at load, a `ca_file` is found beside
/// the config and must hold a certificate, and each bad entry names its line.
#[test]
fn encrypted_upstreams_are_checked_at_load_with_their_line() {
    let ca = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
    let loaded = load_with(
        "[server]\nbootstrap = [\"192.0.2.53\", \"tcp://192.0.2.54:5300\"]\nupstreams = [\n  \
         \"tls://192.0.2.1#dns.example\",\n  { url = \"https://dns.example/q\", ca_file = \"ca.pem\" },\n]\n",
        &[("ca.pem", ca)],
    )
    .unwrap();
    let s = &loaded.startup;
    let shown: Vec<String> = s.upstreams.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            "tls://192.0.2.1:853#dns.example",
            "https://dns.example:443/q"
        ]
    );
    let ca_file = s.upstreams[1].verify.ca_file.as_ref().unwrap();
    assert!(
        ca_file.is_absolute() && ca_file.ends_with("ca.pem"),
        "{ca_file:?}"
    );
    let shown: Vec<String> = s.bootstrap.iter().map(ToString::to_string).collect();
    assert_eq!(shown, ["udp://192.0.2.53:53", "tcp://192.0.2.54:5300"]);

    let e = error(
        "[server]\nupstreams = [\n  { url = \"tls://192.0.2.1\", ca_file = \"missing.pem\" },\n]\n",
    );
    assert!(
        e.starts_with("test.toml:4: [server] upstreams: tls://192.0.2.1: ca_file /")
            && e.ends_with("/missing.pem: No such file or directory (os error 2)"),
        "{e}"
    );
    let e = load_with(
        "[server]\nupstreams = [{ url = \"tls://192.0.2.1\", ca_file = \"key.pem\" }]\n",
        &[("key.pem", "-----BEGIN PRIVATE KEY-----\n")],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.ends_with("key.pem: no PEM certificate (-----BEGIN CERTIFICATE-----) in it"),
        "{e}"
    );
    assert_eq!(
        error("[server]\nupstreams = [\n  { url = \"udp://192.0.2.1\", tls_name = \"x.example\" },\n]\n"),
        "test.toml:4: [server] upstreams: upstream \"udp://192.0.2.1\": tls_name, ca_file and \
         insecure_skip_verify are for tls:// and https:// upstreams"
    );
    assert_eq!(
        error("[server]\nupstreams = [\n  { url = \"tls://192.0.2.1\", tls_nam = \"x\" },\n]\n"),
        "test.toml:4: unknown key `tls_nam` in [server] (did you mean `tls_name`?)"
    );
    assert_eq!(
        error("[server]\nbootstrap = [\"tls://192.0.2.1\"]\n"),
        "test.toml:3: [server] bootstrap: \"tls://192.0.2.1\": a bootstrap server is asked \
         plain DNS (udp://, tcp:// or an address)"
    );
}

#[test]
fn settings_the_server_would_silently_change_are_errors_with_their_line() {
    assert_eq!(
        error("[server]\nudp_payload = 100\n"),
        "test.toml:3: [server] `udp_payload` = 100 is below 512, the smallest payload every \
         DNS client accepts"
    );
    assert_eq!(
        error("[cache] # answers\nmax_ttl = 60\nmin_ttl = 300\n"),
        "test.toml:4: [cache] `min_ttl` = 300 is above max_ttl = 60"
    );
    let e = error(
        "[server]\nupstream_timeout_ms = 0\ntcp_idle_timeout_secs = 0\ntcp_max_connections = 0\n\
         [log]\nqueue = 0\n",
    );
    assert!(e.starts_with("4 errors:\n"), "{e}");
    for (line, key) in [
        (3, "upstream_timeout_ms"),
        (4, "tcp_idle_timeout_secs"),
        (5, "tcp_max_connections"),
        (7, "queue"),
    ] {
        assert!(e.contains(&format!("test.toml:{line}: [")), "{e}");
        assert!(e.contains(&format!("`{key}` = 0 would ")), "{e}");
    }
}

#[test]
fn sinkhole_addresses_without_custom_mode_and_an_empty_allow_list_are_warned_about() {
    let loaded = load_with(
        "[server]\nallow_clients = []\n[sinkhole]\nmode = \"nxdomain\"\nipv4 = \"192.0.2.1\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "test.toml: [sinkhole]: `ipv4` and `ipv6` are used only with mode = \"custom\"; \
             they are ignored",
            "test.toml:3: [server] `allow_clients` is empty, so every client is refused",
        ]
    );
}

#[test]
fn a_group_outside_allow_clients_is_warned_about() {
    let loaded = load_with(
        "[server]\nallow_clients = [\"10.0.0.0/8\"]\n\
         [[groups]]\nname = \"lab\"\nclients = [\"10.1.0.0/16\", \"192.0.2.0/24\"]\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "test.toml:6: group `lab`: 192.0.2.0/24 is not inside [server] allow_clients, so \
          its clients are refused (REFUSED) before the group applies"
        ]
    );
}

#[test]
fn a_list_file_with_latin1_and_utf16_text_loads_instead_of_failing_the_config() {
    let dir = dir_with(&[]);
    std::fs::write(
        dir.join("latin1.txt"),
        b"# Liste f\xfcr das Labor\n0.0.0.0 ads.example\n0.0.0.0 b\xe9d.example\n",
    )
    .unwrap();
    let utf16: Vec<u8> = [0xff, 0xfe]
        .into_iter()
        .chain(
            "0.0.0.0 wide.example\r\n"
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    std::fs::write(dir.join("utf16.txt"), utf16).unwrap();
    let loaded = Policy::from_config_str(
        "catalogs = []\n[[lists]]\npath = \"latin1.txt\"\naction = \"block\"\n\
         [[lists]]\npath = \"utf16.txt\"\naction = \"block\"\n",
        &dir,
        "test.toml",
    )
    .unwrap();
    let s = loaded.policy.summary();
    assert_eq!((s.lists[0].loaded, s.lists[0].bad), (1, 1));
    assert_eq!(s.lists[0].bad_lines[0].line, 3);
    assert_eq!((s.lists[1].loaded, s.lists[1].bad), (1, 0));
    assert_eq!(verdict(&loaded.policy, "ads.example"), Verdict::Block);
    assert_eq!(verdict(&loaded.policy, "wide.example"), Verdict::Block);
}

// --- summary ---

#[test]
fn summary_counts_and_diff_names_every_change() {
    let old = load(GROUPS).summary();
    assert_eq!(old.areas.len(), 4);
    let dd = &old.areas[0];
    assert_eq!(
        (dd.id.as_str(), dd.action, dd.endpoints),
        ("diagnostic-data", Action::Block, 2)
    );
    assert_eq!(old.groups[1].clients, ["10.0.10.0/24", "10.9.9.9/32"]);
    let new = load(
        "[areas]\noffice = \"block\"\n[[rules]]\npattern = \"x.example\"\naction = \"block\"\n\
         [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\", \"fd00::/8\"]\n\
         [groups.areas]\ndiagnostic-data = \"log\"\n",
    )
    .summary();
    let lines = |changes: Vec<crate::Change>| -> Vec<String> {
        changes.iter().map(ToString::to_string).collect()
    };
    assert_eq!(
        lines(Summary::diff(&old, &new)),
        [
            "area Diagnostic Data (diagnostic-data): block → log",
            "area Office (office): log → block",
            "rule added: block x.example",
            "group lab: area diagnostic-data: allow → log",
            "group lab: area windows-update no longer overridden",
            "group removed: strict",
        ]
    );
    assert!(Summary::diff(&new, &new).is_empty());
    let mut fewer = new.clone();
    fewer.areas[0].endpoints = 1;
    assert_eq!(
        lines(Summary::diff(&new, &fewer)),
        ["area Diagnostic Data (diagnostic-data): 2 → 1 endpoints"]
    );
    let text = new.to_string();
    assert!(
        text.contains("  block  office                  Office (1 endpoint)"),
        "{text}"
    );
}

#[test]
fn explanation_json_has_the_stable_shape() {
    let p = load("[areas]\ndiagnostic-data = \"block\"\n[[rules]]\npattern = \"self.events.data.microsoft.com\"\naction = \"log\"\n");
    let d = p.decide(ip("10.0.0.1"), "Self.Events.Data.Microsoft.com.");
    let json = serde_json::to_string(&d.explain("Self.Events.Data.Microsoft.com.", ip("10.0.0.1")))
        .unwrap();
    assert_eq!(
        json,
        r#"{"name":"Self.Events.Data.Microsoft.com.","client":"10.0.0.1","group":null,"decision":"block","decided_by":{"kind":"area","id":"diagnostic-data","name":"Diagnostic Data","pattern":"self.events.data.microsoft.com","action":"block"},"areas":[{"id":"diagnostic-data","name":"Diagnostic Data"},{"id":"office","name":"Office"}],"patterns":["self.events.data.microsoft.com"],"impact":["Diagnostic data stops flowing.","Office telemetry stops."],"impact_scope":"endpoint","matches":[{"source":"catalog: Test Catalog","area":{"id":"diagnostic-data","name":"Diagnostic Data"},"pattern":"self.events.data.microsoft.com","action":"block","impact":"Diagnostic data stops flowing.","impact_scope":"endpoint","line":null},{"source":"catalog: Test Catalog","area":{"id":"office","name":"Office"},"pattern":"self.events.data.microsoft.com","action":"log","impact":"Office telemetry stops.","impact_scope":"endpoint","line":null},{"source":"rule","area":null,"pattern":"self.events.data.microsoft.com","action":"log","impact":null,"impact_scope":null,"line":null}]}"#
    );
}

// --- decided_by, impact scope, shared endpoints ---

fn decided_by_json(p: &Policy, client: &str, name: &str) -> String {
    serde_json::to_string(&p.decide(ip(client), name).decided_by()).unwrap()
}

#[test]
fn decided_by_names_the_rule_the_list_line_and_the_group_around_them() {
    let p = load_with(
        "[areas]\ndiagnostic-data = \"block\"\n\
         [[rules]]\npattern = \"ok.example\"\naction = \"allow\"\nnote = \"needed\"\n\
         [[lists]]\npath = \"l.txt\"\naction = \"block\"\nlabel = \"ads\"\n\
         [[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\"]\n\
         [groups.areas]\noffice = \"block\"\n\
         [[groups.rules]]\npattern = \"*.lab.example\"\naction = \"log\"\n\
         [[groups]]\nname = \"quiet\"\nclients = [\"192.168.0.0/16\"]\n",
        &[("l.txt", "# ads\n\n0.0.0.0 x.example\n||ads.example^\n")],
    )
    .unwrap()
    .policy;
    assert_eq!(
        decided_by_json(&p, ANY, "ok.example"),
        r#"{"kind":"rule","note":"needed","pattern":"ok.example","action":"allow"}"#
    );
    assert_eq!(
        decided_by_json(&p, ANY, "deep.ads.example"),
        r#"{"kind":"list","label":"ads","line":4,"entry":"||ads.example^","action":"block"}"#
    );
    // The group's own rule, and the group's override of an area.
    assert_eq!(
        decided_by_json(&p, "10.1.1.1", "x.lab.example"),
        r#"{"kind":"group","name":"lab","inner":{"kind":"rule","note":null,"pattern":"*.lab.example","action":"log"}}"#
    );
    let office = p.decide(ip("10.1.1.1"), "self.events.data.microsoft.com");
    // Both block; the first (Diagnostic Data) decides, with the global action.
    assert_eq!(
        office.decided_by().unwrap().to_string(),
        "area Diagnostic Data (diagnostic-data)"
    );
    // A group without overrides supplies nothing.
    assert_eq!(
        decided_by_json(&p, "192.168.1.1", "watson.x.microsoft.com"),
        r#"{"kind":"area","id":"diagnostic-data","name":"Diagnostic Data","pattern":"watson.*.microsoft.com","action":"block"}"#
    );
    let grouped = load(
        "[[groups]]\nname = \"lab\"\nclients = [\"10.0.0.0/8\"]\ndefault_action = \"block\"\n",
    );
    let by = grouped
        .decide(ip("10.0.0.1"), "www.bing.com")
        .decided_by()
        .unwrap();
    assert_eq!(by.group, Some("lab"));
    assert_eq!(
        by.via_cname("www.bing.com").to_string(),
        "CNAME target www.bing.com: group lab: area Cortana and Live Tiles (cortana-and-live-tiles)"
    );
    assert_eq!(
        serde_json::to_string(&by.via_cname("edge.example")).unwrap(),
        r#"{"kind":"cname","name":"edge.example","inner":{"kind":"group","name":"lab","inner":{"kind":"area","id":"cortana-and-live-tiles","name":"Cortana and Live Tiles","pattern":"www.bing.com","action":"block"}}}"#
    );
}

#[test]
fn an_endpoint_without_a_description_carries_its_area_impact_marked_as_such() {
    let dir = dir_with(&[(
        "c.toml",
        &CATALOG.replace(
            "[[area.endpoint]]\npattern = \"self.events.data.microsoft.com\"\n\
             original = \"self.events.data.microsoft.com\"\n\
             description = \"Diagnostic data stops flowing.\"\n",
            "impact = \"Diagnostic data stops flowing.\"\n\
             [[area.endpoint]]\npattern = \"self.events.data.microsoft.com\"\n\
             original = \"self.events.data.microsoft.com\"\n",
        ),
    )]);
    let p = Policy::from_config_str("catalogs = [\"c.toml\"]\n", &dir, "test.toml")
        .unwrap()
        .policy;
    let d = p.decide(ip(ANY), "self.events.data.microsoft.com");
    let m: Vec<_> = d.matches().collect();
    assert_eq!(
        m[0].impact,
        Some(crate::Impact {
            text: "Diagnostic data stops flowing.",
            scope: crate::ImpactScope::Area
        })
    );
    assert_eq!(m[1].impact.unwrap().scope, crate::ImpactScope::Endpoint);
    assert_eq!(d.impacts().count(), 2);
    assert_eq!(d.impact_scope(), Some("mixed"));
    let d = p.decide(ip(ANY), "watson.x.microsoft.com");
    assert_eq!(d.impact_scope(), Some("endpoint"));
    assert_eq!(p.decide(ip(ANY), "example.org").impact_scope(), None);
}

#[test]
fn acknowledge_shared_or_an_explicit_rule_silences_the_shared_warning() {
    let acknowledged = load_with(
        "[areas]\ndiagnostic-data = { action = \"block\", acknowledge_shared = [\"Self.Events.Data.Microsoft.com\"] }\n\
         office = \"allow\"\n",
        &[],
    )
    .unwrap();
    assert!(
        acknowledged.warnings.is_empty(),
        "{:?}",
        acknowledged.warnings
    );
    let shared = acknowledged.policy.shared_endpoints();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].name, "self.events.data.microsoft.com");
    assert_eq!(shared[0].also_used_by, ["Office (office): allow"]);
    assert_eq!(
        shared[0].acknowledged.as_deref(),
        Some("acknowledge_shared of area diagnostic-data at test.toml:3")
    );

    let by_rule = load_with(
        "[areas]\ndiagnostic-data = \"block\"\n\
         [[rules]]\npattern = \"self.events.data.microsoft.com\"\naction = \"block\"\n",
        &[],
    )
    .unwrap();
    assert!(by_rule.warnings.is_empty(), "{:?}", by_rule.warnings);
    assert_eq!(
        by_rule.policy.shared_endpoints()[0].acknowledged.as_deref(),
        Some("rule self.events.data.microsoft.com")
    );

    // An acknowledgement that acknowledges nothing is a typo until proven otherwise.
    let typo = load_with(
        "[areas]\ndiagnostic-data = { action = \"block\", acknowledge_shared = [\"slef.events.data.microsoft.com\"] }\n",
        &[],
    )
    .unwrap();
    assert_eq!(
        typo.warnings,
        [
            "self.events.data.microsoft.com is blocked by area Diagnostic Data (diagnostic-data) \
             but also used by area Office (office) (log): block wins (if that is meant, say so in \
             the area's `acknowledge_shared` or with a [[rules]] entry for the name)",
            "test.toml:3: acknowledge_shared of area diagnostic-data: \
             slef.events.data.microsoft.com is not an endpoint it shares with another area, nor \
             a general-purpose host it blocks; nothing to acknowledge"
        ]
    );
    // The table form takes only its two keys.
    assert_eq!(
        load_with(
            "[areas]\noffice = { action = \"log\", acknowledge = [] }\n",
            &[]
        )
        .unwrap_err()
        .to_string(),
        "test.toml:3: unknown key `acknowledge` in [areas] `office`"
    );
}

#[test]
fn a_blocked_general_purpose_host_is_listed_with_what_it_gets() {
    // Listed by check, not warned about on every load: a strict lab blocks it on purpose.
    let loaded = load_with("[areas]\ncortana-and-live-tiles = \"block\"\n", &[]).unwrap();
    assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);
    let listed = loaded.policy.shared_endpoints();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].name.as_str(),
            listed[0].verdict,
            listed[0].acknowledged.as_deref()
        ),
        ("www.bing.com", Verdict::Block, None)
    );
    let allowed = load_with(
        "[areas]\ncortana-and-live-tiles = \"block\"\n\
         [[rules]]\npattern = \"www.bing.com\"\naction = \"allow\"\nnote = \"search\"\n",
        &[],
    )
    .unwrap();
    assert!(allowed.warnings.is_empty(), "{:?}", allowed.warnings);
    let shared = allowed.policy.shared_endpoints();
    assert_eq!(shared.len(), 1);
    assert_eq!(shared[0].general_purpose, Some("Bing search"));
    assert_eq!(shared[0].verdict, Verdict::Allow);
    assert_eq!(shared[0].decided_by, "rule www.bing.com (search)");
}

#[test]
fn a_catalog_listed_twice_loads_once_and_an_empty_group_is_warned_about() {
    let loaded = Policy::from_config_str(
        "catalogs = [\"catalog.toml\", \"catalog.toml\"]\n[[groups]]\nname = \"nobody\"\nclients = []\n",
        &dir_with(&[]),
        "test.toml",
    )
    .unwrap();
    assert_eq!(
        loaded.warnings,
        [
            "test.toml:1: catalog catalog.toml is listed twice; loaded once",
            "test.toml:3: group `nobody` has no clients, so it applies to nobody",
        ]
    );
    assert_eq!(summary_of(&loaded.policy, ANY, "www.bing.com").len(), 1);
}

// --- parsers never panic ---

proptest::proptest! {
    #[test]
    fn any_list_text_loads_without_panicking(
        text in "(([0-9a-f:.]{0,16}|\\|\\||@@|!|#|\\^|\\$|\\*|[a-zA-Z0-9._-]{0,20}|[ \t]|\r?\n)){0,40}",
        format in proptest::sample::select(vec![
            crate::ListFormat::Auto,
            crate::ListFormat::Hosts,
            crate::ListFormat::Plain,
            crate::ListFormat::Adblock,
        ]),
    ) {
        let mut added = 0usize;
        let stats = crate::list::parse(&text, format, |_, _, _| {
            added += 1;
            Ok(())
        });
        proptest::prop_assert_eq!(stats.loaded, added);
        proptest::prop_assert!(stats.bad <= text.lines().count());
    }

    #[test]
    fn any_config_text_loads_or_fails_without_panicking(
        text in "((catalogs|default_action|areas|rules|lists|groups|pattern|action|clients|name|server|sinkhole|mode|diagnostic-data|office|block|log|allow|10\\.0\\.0\\.0/8|[a-z*.-]{0,12})|\\[|\\]|\\[\\[|\\]\\]|=|\"|,|\\{|\\}| |\n){0,60}",
    ) {
        let _ = Policy::from_config_str(&format!("catalogs = [\"catalog.toml\"]\n{text}"), &fixture_dir(), "fuzz.toml");
    }
}

/// One fixture folder shared by the property tests (they run many cases).
fn fixture_dir() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    // Kept for the whole run (statics are never dropped): one folder left behind.
    DIR.get_or_init(|| std::mem::ManuallyDrop::new(dir_with(&[])).0.clone())
        .clone()
}

/// `[tls]` and the encrypted listeners that need it.
mod tls_settings {
    use super::*;

    fn error(config: &str) -> String {
        load_with(config, &[]).unwrap_err().to_string()
    }

    #[test]
    fn an_encrypted_listener_without_a_certificate_names_its_line() {
        // Line 1 is the `catalogs` line `load_with` adds.
        let e = error("[server]\nlisten = []\nlisten_https = [\"0.0.0.0:443\"]\n");
        assert!(e.contains("test.toml:4"), "{e}");
        assert!(
            e.contains("[server] `listen_https` needs [tls] `cert_file` and `key_file`"),
            "{e}"
        );
        let e = error("[server]\nlisten_tls = [\"0.0.0.0:853\"]\n");
        assert!(e.contains("test.toml:3"), "{e}");
        assert!(e.contains("`listen_tls` needs [tls]"), "{e}");
    }

    #[test]
    fn a_certificate_without_its_key_names_the_line_that_gave_it() {
        let e = error("[tls]\n\nkey_file = \"k.pem\"\n");
        assert!(e.contains("test.toml:4"), "{e}");
        assert!(e.contains("[tls] `key_file` needs `cert_file` too"), "{e}");
        let e = error("[tls]\ncert_file = \"c.pem\"\n");
        assert!(e.contains("test.toml:3"), "{e}");
        assert!(e.contains("[tls] `cert_file` needs `key_file` too"), "{e}");
    }

    #[test]
    fn an_unknown_tls_key_is_refused_with_the_closest_one() {
        assert_eq!(
            error("[tls]\ncert_flie = \"c.pem\"\n"),
            "test.toml:3: unknown key `cert_flie` in [tls] (did you mean `cert_file`?)"
        );
    }

    #[test]
    fn tls_files_are_resolved_against_the_config_folder_and_unused_ones_warn() {
        let config = "[server]\nlisten_tls = [\"127.0.0.1:853\"]\n\
                      [tls]\ncert_file = \"tls/c.pem\"\nkey_file = \"/etc/k.pem\"\n";
        let dir = dir_with(&[]);
        let text = format!("catalogs = [\"catalog.toml\"]\n{config}");
        let loaded = Policy::from_config_str(&text, &dir, "test.toml").unwrap();
        let tls = loaded.startup.tls.expect("[tls]");
        assert_eq!(tls.cert_file, dir.join("tls/c.pem"));
        assert_eq!(tls.key_file, PathBuf::from("/etc/k.pem"));
        assert_eq!(
            loaded.startup.listen_tls,
            ["127.0.0.1:853".parse().unwrap()]
        );
        assert!(loaded.warnings.is_empty(), "{:?}", loaded.warnings);

        let unused =
            load_with("[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n", &[]).unwrap();
        assert!(
            unused
                .warnings
                .iter()
                .any(|w| w.starts_with("test.toml:3: [tls] is set but")),
            "{:?}",
            unused.warnings
        );
    }

    #[test]
    fn moving_an_encrypted_listener_or_its_certificate_files_needs_a_restart() {
        let dir = dir_with(&[]);
        let start = |extra: &str| {
            let config = format!(
                "catalogs = [\"catalog.toml\"]\n[server]\nlisten_tls = [\"127.0.0.1:853\"]\n\
                 {extra}[tls]\ncert_file = \"c.pem\"\nkey_file = \"k.pem\"\n"
            );
            Policy::from_config_str(&config, &dir, "test.toml")
                .unwrap()
                .startup
        };
        let running = start("");
        assert!(start("").changes_from(&running).is_empty());
        let moved = start("listen_https = [\"127.0.0.1:443\"]\n");
        let changes: Vec<String> = moved
            .changes_from(&running)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(changes.len(), 1, "{changes:?}");
        assert!(changes[0].contains("listen_https"), "{changes:?}");
        let mut other_files = running.clone();
        other_files.tls = Some(crate::TlsFiles {
            cert_file: "/elsewhere/c.pem".into(),
            key_file: "/elsewhere/k.pem".into(),
        });
        let changes = other_files.changes_from(&running);
        assert_eq!(changes.len(), 2, "{changes:?}");
    }
}

#[test]
fn an_adblock_name_with_no_room_below_it_blocks_itself_and_keeps_later_lines_their_own() {
    // 253 octets: `*.` in front of it would be 255, over the limit. It used to go into the
    // matcher while its wildcard failed, so the line had no entry: the next line's entry
    // took its id (decided by the wrong line), or, as the last line, a lookup panicked.
    let long = format!(
        "{}.{}.{}.{}",
        "a".repeat(63),
        "b".repeat(63),
        "c".repeat(63),
        "d".repeat(61)
    );
    assert_eq!(long.len(), 253);
    for (text, long_line) in [
        (format!("||{long}^\n||e.example^\n"), 1),
        (format!("||e.example^\n||{long}^\n"), 2),
    ] {
        let dir = dir_with(&[("ads.txt", text.as_str())]);
        let config = "catalogs = [\"catalog.toml\"]\n[[lists]]\npath = \"ads.txt\"\nformat = \"adblock\"\naction = \"block\"\nlabel = \"ads\"\n";
        let loaded = Policy::from_config_str(config, &dir, "test.toml").unwrap();
        assert_eq!(loaded.policy.summary().lists[0].loaded, 2);
        assert_eq!(verdict(&loaded.policy, &long), Verdict::Block);
        assert_eq!(verdict(&loaded.policy, "x.e.example"), Verdict::Block);
        let decided = loaded.policy.decide(ip(ANY), &long);
        let lines: Vec<_> = decided.matches().map(|m| m.line).collect();
        assert_eq!(lines, [Some(long_line)]);
        let other: Vec<_> = loaded
            .policy
            .decide(ip(ANY), "e.example")
            .matches()
            .map(|m| m.line)
            .collect();
        assert_eq!(other, [Some(3 - long_line)]);
    }
}
