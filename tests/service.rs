//! Installing and running winsink as a service: shell completions and man pages
//! generated from the real binary's command line.

use std::process::Command;

use crate::support::{run_winsink, stderr, stdout};

#[test]
fn completions_are_generated_for_bash_zsh_and_fish() {
    for (shell, marker) in [
        ("bash", "complete -F _winsink"),
        ("zsh", "#compdef winsink"),
        ("fish", "complete -c winsink"),
    ] {
        let out = run_winsink(&["completions", shell]);
        assert!(out.status.success(), "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        assert!(script.contains(marker), "{shell} script lacks {marker:?}");
        // Every subcommand and `run`'s flags are offered (fish names flags without `--`).
        for word in ["run", "check", "explain", "config", "listen", "upstream"] {
            assert!(script.contains(word), "{shell} script lacks {word}");
        }
    }
    // The bash script is valid bash.
    let out = run_winsink(&["completions", "bash"]);
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("winsink.bash");
    std::fs::write(&file, &out.stdout).expect("write");
    let status = Command::new("bash").arg("-n").arg(&file).status();
    assert!(
        status.expect("bash").success(),
        "bash -n rejects the script"
    );
}

#[test]
fn an_unknown_shell_is_refused_with_the_valid_ones() {
    let out = run_winsink(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("tcsh") && err.contains("bash") && err.contains("fish"),
        "{err}"
    );
}

#[test]
fn man_pages_cover_every_command() {
    let out = run_winsink(&["man"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = stdout(&out);
    assert!(page.contains(".TH winsink 1"), "{page}");
    assert!(page.contains("winsink\\-run(1)"), "{page}");

    let dir = tempfile::tempdir().expect("tempdir");
    let out_dir = dir.path().join("man1");
    let out = run_winsink(&["man", "--out-dir", out_dir.to_str().expect("utf-8")]);
    assert!(out.status.success(), "{}", stderr(&out));
    for name in [
        "winsink.1",
        "winsink-run.1",
        "winsink-check.1",
        "winsink-completions.1",
    ] {
        assert!(out_dir.join(name).is_file(), "{name} not written");
    }
    let run = std::fs::read_to_string(out_dir.join("winsink-run.1")).expect("read");
    assert!(
        run.contains("\\-\\-listen") && run.contains("\\-\\-config"),
        "{run}"
    );
}
