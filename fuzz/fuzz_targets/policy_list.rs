//! Feeds arbitrary text to the list parser, as a list file named by a config.
//!
//! The first byte picks the format (auto, hosts, plain, adblock); the rest is the file.
//! A list never stops a load: any bytes load (UTF-8, UTF-16 with a BOM, or decoded with
//! replacement characters), malformed lines are counted, and the first ones are kept in
//! line order with their line numbers. In a plain UTF-8 list, every line that is a valid
//! pattern naming a domain blocks the names it stands for (each `*` filled).
//!
//! The list parser is crate-private, so the file is written to a private folder and
//! loaded through the public config path (`Policy::from_config_str`), as `winsink run`
//! loads it.
#![no_main]

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use winsink_policy::list::MAX_BAD_LINES_KEPT;
use winsink_policy::{Policy, Verdict};

const FORMATS: [&str; 4] = ["auto", "hosts", "plain", "adblock"];

fn dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // Memory-backed when there is one: the file is rewritten for every input.
        let shm = Path::new("/dev/shm");
        let root = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let dir = root.join(format!("winsink-fuzz-list-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the list folder");
        dir
    })
}

/// The parser's comment rule, restated: `#` at the start, or after whitespace.
fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(0) => "",
        Some(i) if line.as_bytes()[i - 1].is_ascii_whitespace() => line[..i].trim_end(),
        _ => line,
    }
}

/// The matcher's definition of a query name, restated.
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
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let format = FORMATS[usize::from(selector) % FORMATS.len()];
    std::fs::write(dir().join("list.txt"), rest).expect("write the list file");
    let config = format!(
        "catalogs = []\n[[lists]]\npath = \"list.txt\"\nformat = \"{format}\"\naction = \"block\"\n"
    );
    let loaded = match Policy::from_config_str(&config, dir(), "fuzz.toml") {
        Ok(l) => l,
        Err(e) => panic!("a list must never fail the load: {e:#}"),
    };
    let summary = loaded.policy.summary();
    let [list] = &summary.lists[..] else {
        panic!("one list, got {:?}", summary.lists);
    };
    assert_eq!(list.bad_lines.len(), list.bad.min(MAX_BAD_LINES_KEPT));
    assert!(list.bad_lines.windows(2).all(|w| w[0].line < w[1].line));
    // Every line ends in LF, CRLF or the end of the file, in UTF-8 or UTF-16.
    let lines = rest.iter().filter(|&&b| b == b'\n').count() + 1;
    assert!(list.bad_lines.iter().all(|b| (1..=lines).contains(&b.line)));

    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };

    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    for line in body.lines() {
        let entry = strip_comment(line.trim());
        // `*`, `*.`, `**`: entries that would block every name are refused.
        let names_a_domain = !entry.bytes().all(|b| b == b'*' || b == b'.');
        if format == "plain" && names_a_domain && !entry.contains(char::is_whitespace) {
            let Ok(pattern) = winsink_matcher::normalize_pattern(entry) else {
                continue;
            };
            let name = pattern.replace('*', "a");
            if is_valid_name(&name) {
                let d = loaded.policy.decide(client, &name);
                assert_eq!(
                    d.verdict,
                    Verdict::Block,
                    "plain entry {entry:?} does not block {name:?}"
                );
            }
        } else {
            for word in entry.split_whitespace() {
                let _ = loaded.policy.decide(client, word);
            }
        }
    }
});
