//! Feeds arbitrary text to the policy loader as a config file.
//!
//! Loading must never panic: it compiles or fails with an error that names the file. The
//! folder that relative paths resolve against is empty, and an input naming a catalog or
//! list outside it (an absolute path, `..`) is skipped, so that the fuzzer cannot reach
//! `/dev/zero` or a large file and stall: every file the config names is then missing,
//! so a config that loads names no file.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use winsink_policy::{Policy, BUILTIN_PREFIX};

const ORIGIN: &str = "fuzz.toml";

fn empty_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("winsink-fuzz-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the empty base folder");
        dir
    })
}

/// Whether every catalog and list path of `text` stays inside the base folder.
fn paths_stay_inside(text: &str) -> bool {
    // Text that is not TOML fails to parse before any file is read; the loader uses the
    // same `toml` crate, so it sees the same strings as this check.
    let Ok(table) = text.parse::<toml::Table>() else {
        return true;
    };
    let inside = |v: &toml::Value| match v.as_str() {
        Some(p) if p.starts_with(BUILTIN_PREFIX) => true,
        Some(p) => Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir)),
        None => true,
    };
    let catalogs_ok = match table.get("catalogs").and_then(toml::Value::as_array) {
        Some(list) => list.iter().all(inside),
        None => true,
    };
    let lists_ok = match table.get("lists").and_then(toml::Value::as_array) {
        Some(list) => list.iter().filter_map(|l| l.get("path")).all(inside),
        None => true,
    };
    catalogs_ok && lists_ok
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if !paths_stay_inside(text) {
        return;
    }
    match Policy::from_config_str(text, empty_dir(), ORIGIN) {
        Ok(loaded) => {
            assert!(loaded.files.is_empty(), "read {:?}", loaded.files);
            let policy = &loaded.policy;
            let summary = policy.summary();
            assert!(summary.lists.is_empty());
            for client in [
                IpAddr::V4(Ipv4Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::new(10, 0, 10, 7)),
                IpAddr::V6(Ipv6Addr::new(0xfd00, 0x10, 0, 0, 0, 0, 0, 1)),
            ] {
                let _ = policy.group_of(client);
                // Names the rules are about (each `*` filled), and a few fixed ones.
                let names = summary
                    .rules
                    .iter()
                    .map(|r| r.pattern.replace('*', "a"))
                    .chain([
                        "self.events.data.microsoft.com".to_owned(),
                        "example.org.".to_owned(),
                    ]);
                for name in names {
                    let d = policy.decide(client, &name);
                    let e = d.explain(&name, client);
                    assert_eq!(e.decision, d.verdict);
                }
            }
        }
        Err(e) => {
            let message = format!("{e:#}");
            assert!(!message.is_empty());
        }
    }
});
