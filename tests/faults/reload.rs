//! Reload faults: an emptied config, a file written in two parts, a list that turned to
//! nothing or garbage, a deleted config, an unreadable list. None may unblock a name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;

use super::{assert_blocked, count_lines, start, upstream, Prober};
use crate::support::dns::{ask_udp, query, Daemon, TestUpstream};
use crate::support::{run_winsink, stderr};

/// A name only the list blocks.
const LISTED: &str = "listed.example.test";

/// A list file of `names` in `dir`, one per line, plus `LISTED` last.
fn list_text(names: usize) -> String {
    let mut text: String = (0..names)
        .map(|i| format!("name{i}.example.test\n"))
        .collect();
    text.push_str(LISTED);
    text.push('\n');
    text
}

/// A daemon whose config blocks `*.blocked.test` by a rule and `LISTED` by a list (in a
/// folder of the test's own, returned with it).
fn with_list(extra: &str) -> (Daemon, tempfile::TempDir, PathBuf, TestUpstream) {
    let lists = tempfile::tempdir().expect("tempdir");
    let list = lists.path().join("block.txt");
    fs::write(&list, list_text(200)).expect("list");
    let up = upstream();
    let daemon = start(&[up.url()], &list_config(&list, extra));
    assert_listed_blocked(&daemon);
    (daemon, lists, list, up)
}

fn list_config(list: &Path, extra: &str) -> String {
    format!(
        "[[lists]]\npath = {:?}\naction = \"block\"\n{extra}\n",
        list.display().to_string()
    )
}

fn assert_listed_blocked(daemon: &Daemon) {
    let a = ask_udp(daemon.addr, &query(LISTED, RecordType::A, false));
    super::assert_sinkholed(&a);
}

/// Writes `text` to `path` in place in two parts with a pause between them, the file
/// open all along (as `cp` of a slow source, or an editor that flushes twice).
fn write_in_two_parts(path: &Path, text: &str, pause: Duration) {
    let mut f = fs::File::create(path).expect("create");
    let half = text.len() / 2;
    f.write_all(&text.as_bytes()[..half]).expect("first half");
    f.flush().expect("flush");
    std::thread::sleep(pause);
    f.write_all(&text.as_bytes()[half..]).expect("rest");
}

#[test]
fn an_emptied_config_keeps_the_running_policy_and_says_so() {
    let up = upstream();
    let daemon = start(&[up.url()], "");
    assert_blocked(&daemon);
    let config = daemon.config_path();
    let words = format!("{} is empty: keeping the running policy", config.display());
    for (n, text) in [
        (1, ""),
        (2, "# nothing but comments\n\n   \n# and blanks\n"),
    ] {
        fs::write(&config, text).expect("empty the config");
        let deadline = std::time::Instant::now() + crate::support::dns::WAIT;
        while count_lines(&daemon.stderr(), &words) < n {
            assert!(std::time::Instant::now() < deadline, "{}", daemon.stderr());
            std::thread::sleep(Duration::from_millis(20));
        }
        let err = daemon.stderr();
        assert!(
            err.lines()
                .any(|l| l.contains(&words) && l.contains("ERROR")),
            "{err}"
        );
        assert_blocked(&daemon);
    }
    // `winsink check` refuses it in the same words.
    let out = run_winsink(&["check", "--config", config.to_str().expect("utf-8")]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{} is empty", config.display())),
        "{err}"
    );
}

#[test]
fn a_list_and_a_config_written_in_two_parts_keep_a_listed_name_blocked_throughout() {
    let (daemon, _lists, list, _up) = with_list("");
    let prober = Prober::start(&daemon, LISTED);
    // The first half of the new list lacks LISTED; loaded, it would unblock it.
    write_in_two_parts(&list, &list_text(400), Duration::from_millis(500));
    daemon.stderr_until("reloaded:");
    // The config too: its first half names no list.
    let config = daemon.config_path();
    let text = format!(
        "{}\n[[rules]]\npattern = \"*.blocked.test\"\naction = \"block\"\n# {}\n",
        list_config(&list, ""),
        "padding ".repeat(20)
    );
    let full = format!("{}{}", "# a long comment line first\n".repeat(8), text);
    write_in_two_parts(&config, &full, Duration::from_millis(500));
    std::thread::sleep(Duration::from_millis(1500));
    let asked = prober.finish();
    assert!(asked > 50, "{asked} probes");
    let err = daemon.stderr();
    assert!(
        !err.contains("reload failed"),
        "a half file was loaded:\n{err}"
    );
    assert_listed_blocked(&daemon);
    assert_blocked(&daemon);
}

#[test]
fn a_reload_that_removes_more_than_half_of_the_rules_says_which_loudly() {
    let rules: String = ["a", "b", "c", "d"]
        .iter()
        .map(|n| format!("[[rules]]\npattern = \"{n}.example.test\"\naction = \"block\"\n"))
        .collect();
    let up = upstream();
    let daemon = start(&[up.url()], &rules);
    let config = daemon.config_path();
    let text = fs::read_to_string(&config).expect("config");
    let kept = text
        .replace(
            "[[rules]]\npattern = \"a.example.test\"\naction = \"block\"\n",
            "",
        )
        .replace(
            "[[rules]]\npattern = \"b.example.test\"\naction = \"block\"\n",
            "",
        )
        .replace(
            "[[rules]]\npattern = \"c.example.test\"\naction = \"block\"\n",
            "",
        );
    fs::write(&config, kept).expect("edit");
    let err = daemon.stderr_until("reload removes 3 of 5 rules: ");
    let line = err
        .lines()
        .find(|l| l.contains("reload removes"))
        .expect("line");
    assert!(line.contains("WARN"), "{line}");
    for name in [
        "block a.example.test",
        "block b.example.test",
        "block c.example.test",
    ] {
        assert!(line.contains(name), "{line}");
    }
    // Applied, all the same: the operator may mean it.
    let a = ask_udp(daemon.addr, &query("a.example.test", RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NXDomain);
}

#[test]
fn a_list_emptied_or_turned_to_garbage_is_refused_and_its_names_stay_blocked() {
    let (daemon, _lists, list, _up) = with_list("");
    let refused = format!("({}): 0 valid and ", list.display());
    // A failed download: zero bytes.
    fs::write(&list, "").expect("truncate");
    let err = daemon.stderr_until(&format!("{refused}0 malformed lines: refused"));
    assert!(
        err.contains("reload failed; still serving the previous policy"),
        "{err}"
    );
    assert_listed_blocked(&daemon);
    // An error page instead of the list.
    fs::write(
        &list,
        "<html>\n<head><title>502 Bad Gateway</title></head>\n<body>\n<center><h1>502 Bad Gateway</h1></center>\n</body>\n</html>\n",
    )
    .expect("garbage");
    daemon.stderr_until(&format!("{refused}6 malformed lines: refused"));
    assert_listed_blocked(&daemon);
    // A list that is meant to be empty says so.
    let config = daemon.config_path();
    let text = fs::read_to_string(&config).expect("config");
    fs::write(&list, "# nothing blocked this week\n").expect("empty list");
    fs::write(
        &config,
        text.replace("[[lists]]\n", "[[lists]]\nallow_empty = true\n"),
    )
    .expect("allow_empty");
    daemon.stderr_until("reloaded:");
    let a = ask_udp(daemon.addr, &query(LISTED, RecordType::A, false));
    assert_eq!(a.metadata.response_code, ResponseCode::NXDomain, "{a:?}");
    assert_blocked(&daemon);
}

#[test]
fn a_deleted_config_or_an_unreadable_list_keeps_the_running_policy() {
    let (daemon, _lists, list, _up) = with_list("");
    let config = daemon.config_path();
    let text = fs::read_to_string(&config).expect("config");
    fs::remove_file(&config).expect("rm config");
    let err = daemon.stderr_until(&format!("cannot read {}", config.display()));
    assert!(
        err.contains("reload failed; still serving the previous policy"),
        "{err}"
    );
    assert_listed_blocked(&daemon);
    assert_blocked(&daemon);
    fs::write(&config, &text).expect("restore");
    // A list that cannot be read: a symlink to nowhere.
    fs::remove_file(&list).expect("rm list");
    std::os::unix::fs::symlink("/nonexistent/block.txt", &list).expect("symlink");
    daemon.stderr_until(&format!("cannot read {}", list.display()));
    assert_listed_blocked(&daemon);
    assert_blocked(&daemon);
}
