//! Installing and running winsink as a service: systemd's readiness protocol, the error
//! for a port already taken, shell completions and man pages, all against the real binary.

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{self, ask_udp, is_sinkholed, query, TestUpstream, WAIT};
use crate::support::process::{Process, Stdout};
use crate::support::{run_winsink, stderr, stdout, winsink};

/// A Diagnostic Data endpoint: blocked by every config below.
const BLOCKED: &str = "watson.events.data.microsoft.com";

/// A config on the built-in catalog that blocks Diagnostic Data.
const CONFIG: &str =
    "catalogs = [\"builtin:windows11-enterprise\"]\n\n[areas]\ndiagnostic-data = \"block\"\n";

/// `winsink run --config CONFIG --listen 127.0.0.1:0 --upstream UPSTREAM`, with no
/// HTTP listener (its default port would be shared by every test at once).
fn run_cmd(config: &Path, listen: &str, upstream: &str) -> Command {
    let mut cmd = winsink();
    cmd.arg("run").arg("--config").arg(config).args([
        "--listen",
        listen,
        "--upstream",
        upstream,
        "--log-format",
        "json",
        "--http",
        "off",
    ]);
    cmd
}

/// Asks for [`BLOCKED`] and checks the sinkhole answer came back.
fn assert_blocked(addr: SocketAddr) {
    let a = ask_udp(addr, &query(BLOCKED, RecordType::A, false));
    let ips: Vec<&RData> = a.answers.iter().map(|r| &r.data).collect();
    assert_eq!(
        ips,
        [&RData::A(Ipv4Addr::UNSPECIFIED.into())],
        "{BLOCKED} is sinkholed"
    );
}

/// The next datagram on the notify socket, as text.
fn next_notification(sock: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = sock.recv(&mut buf).expect("no sd_notify message in time");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn systemd_hears_ready_once_serving_reloading_around_a_reload_and_stopping() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("winsink.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let socket_path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&socket_path).expect("bind the notify socket");
    sock.set_read_timeout(Some(WAIT)).expect("timeout");

    let mut cmd = run_cmd(&config, "127.0.0.1:0", &upstream.url());
    cmd.env("NOTIFY_SOCKET", &socket_path);
    let mut winsink = Process::spawn(cmd, Stdout::Null);

    // READY=1 comes once the socket is bound and the policy loaded: the address in its
    // STATUS answers a blocked name at once.
    let ready = next_notification(&sock);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready:?}");
    let status = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=serving "))
        .unwrap_or_else(|| panic!("no STATUS line: {ready:?}"));
    let addr: SocketAddr = status.parse().expect("STATUS names the address");
    assert_eq!(
        addr,
        winsink.addr(),
        "STATUS and the log name the same address"
    );
    assert_blocked(addr);

    // SIGHUP (what ExecReload sends): RELOADING=1 with the monotonic time, then READY=1.
    winsink.signal("HUP");
    let reloading = next_notification(&sock);
    assert!(
        reloading.lines().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.lines().any(|l| l.starts_with("MONOTONIC_USEC=")),
        "{reloading:?}"
    );
    assert_eq!(next_notification(&sock).trim(), "READY=1");
    assert_blocked(addr);

    winsink.signal("TERM");
    assert_eq!(next_notification(&sock).trim(), "STOPPING=1");
    let status = winsink.wait();
    assert!(status.success(), "{status}; stderr:\n{}", winsink.stderr());
}

#[test]
fn a_listen_port_in_use_names_the_command_that_shows_who_holds_it() {
    let taken = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("addr");
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("winsink.toml");
    std::fs::write(&config, CONFIG).expect("write config");
    let mut winsink = Process::spawn(
        run_cmd(&config, &addr.to_string(), "udp://127.0.0.1:9"),
        Stdout::Null,
    );
    let status = winsink.wait();
    assert_eq!(status.code(), Some(1), "stderr:\n{}", winsink.stderr());
    let err = winsink.stderr();
    assert!(err.contains(&format!("cannot bind udp {addr}")), "{err}");
    let ss = format!("`ss -lunp 'sport = :{}'`", addr.port());
    assert!(err.contains(&ss), "{err}");
}

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

// --- where the config comes from ---

/// `winsink ARGS` run in `dir`, with `$WINSINK_CONFIG` unset.
fn winsink_in(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = winsink();
    cmd.current_dir(dir).env_remove("WINSINK_CONFIG").args(args);
    if args.first() == Some(&"run") {
        // The HTTP listener's default port would be shared by every test at once.
        cmd.args(["--http", "off"]);
    }
    cmd
}

/// The first line of stderr once `winsink` listens.
fn first_line(p: &Process) -> String {
    let _ = p.addr();
    p.stderr().lines().next().unwrap_or_default().to_owned()
}

/// The message of a log line, after `LEVEL target: `.
fn message(line: &str) -> &str {
    line.split_once(": ").map_or(line, |(_, m)| m)
}

#[test]
fn run_from_a_folder_without_a_config_uses_the_builtin_defaults_and_blocks() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let cmd = winsink_in(
        dir.path(),
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ],
    );
    let winsink = Process::spawn(cmd, Stdout::Null);
    let first = first_line(&winsink);
    let system = Path::new("/etc/winsink/winsink.toml");
    if system.is_file() {
        // This machine has an installed config: that one is found instead.
        assert_eq!(
            message(&first),
            "config: /etc/winsink/winsink.toml (found in /etc/winsink)"
        );
    } else {
        assert_eq!(
            message(&first),
            "no config file found (looked in $WINSINK_CONFIG, ./config/winsink.toml, \
             /etc/winsink/winsink.toml): built-in defaults"
        );
    }
    // The built-in defaults are the shipped config: Diagnostic Data is blocked.
    assert_blocked(winsink.addr());
}

#[test]
fn winsink_config_names_the_file_and_a_missing_one_is_an_error() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lab.toml");
    std::fs::write(&config, "[areas]\ndiagnostic-data = \"block\"\n").expect("write");
    let mut cmd = winsink_in(
        dir.path(),
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ],
    );
    cmd.env("WINSINK_CONFIG", &config);
    let winsink = Process::spawn(cmd, Stdout::Null);
    assert_eq!(
        message(&first_line(&winsink)),
        format!("config: {} ($WINSINK_CONFIG)", config.display())
    );
    assert_blocked(winsink.addr());

    // A file the variable names must exist: no silent fall-back to other places.
    let missing = dir.path().join("typo.toml");
    let out = winsink_in(dir.path(), &["check"])
        .env("WINSINK_CONFIG", &missing)
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("{} does not load", missing.display())),
        "{}",
        stderr(&out)
    );
}

#[test]
fn run_in_a_checkout_finds_config_winsink_toml() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("config")).expect("mkdir");
    std::fs::write(dir.path().join("config/winsink.toml"), CONFIG).expect("write");
    let cmd = winsink_in(
        dir.path(),
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ],
    );
    let winsink = Process::spawn(cmd, Stdout::Null);
    assert_eq!(
        message(&first_line(&winsink)),
        "config: config/winsink.toml (found in the working directory)"
    );
}

#[test]
fn the_shipped_configs_check_wherever_they_are_copied() {
    let root = crate::support::repo_root();
    let dir = tempfile::tempdir().expect("tempdir");
    let copies = dir.path().join("x");
    std::fs::create_dir(&copies).expect("mkdir");
    let mut shipped = vec![root.join("config/winsink.toml")];
    for entry in std::fs::read_dir(root.join("config/examples")).expect("examples") {
        shipped.push(entry.expect("entry").path());
    }
    for file in shipped {
        let copy = copies.join(file.file_name().expect("name"));
        std::fs::copy(&file, &copy).expect("copy");
        // Run from another folder still, so nothing resolves against the checkout.
        let out = winsink_in(
            dir.path(),
            &["check", "--config", copy.to_str().expect("utf-8")],
        )
        .output()
        .expect("run");
        assert!(
            out.status.success(),
            "{} copied to {}: {}",
            file.display(),
            copy.display(),
            stderr(&out)
        );
        assert!(stdout(&out).starts_with(&format!("{}: OK\n", copy.display())));
    }
}

/// `winsink check` and `winsink run` on `config`: their exit codes and stderr.
fn check_and_run(config: &str) -> ((Option<i32>, String), (Option<i32>, String)) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("winsink.toml");
    std::fs::write(&path, config).expect("write");
    let path = path.to_str().expect("utf-8");
    let check = winsink_in(dir.path(), &["check", "--config", path])
        .output()
        .expect("check");
    let mut run = Process::spawn(
        winsink_in(
            dir.path(),
            &["run", "--config", path, "--listen", "127.0.0.1:0"],
        ),
        Stdout::Null,
    );
    let status = run.wait();
    let scrub = |s: String| s.replace(dir.path().to_str().expect("utf-8"), "DIR");
    (
        (check.status.code(), scrub(stderr(&check))),
        (status.code(), scrub(run.stderr())),
    )
}

#[test]
fn check_refuses_a_log_file_that_run_could_not_open() {
    let config = "catalogs = []\n\n[log]\nfile = \"missing-dir/queries.log\"\n";
    let ((check, check_err), (run, run_err)) = check_and_run(config);
    assert_eq!(check, Some(2), "{check_err}");
    assert!(
        check_err.contains(
            "error: DIR/winsink.toml:4: [log] file DIR/missing-dir/queries.log: \
             `winsink run` could not open it: No such file or directory"
        ),
        "{check_err}"
    );
    // ... because run does fail on it.
    assert_ne!(run, Some(0), "{run_err}");
    assert!(run_err.contains("missing-dir/queries.log"), "{run_err}");

    // A log file that can be created passes, and check leaves none behind.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("winsink.toml");
    std::fs::write(&path, "catalogs = []\n[log]\nfile = \"queries.log\"\n").expect("write");
    let out = winsink_in(
        dir.path(),
        &["check", "--config", path.to_str().expect("utf-8")],
    )
    .output()
    .expect("check");
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        !dir.path().join("queries.log").exists(),
        "check created the log"
    );
}

#[test]
fn check_refuses_listen_addresses_and_upstreams_that_run_would_refuse() {
    for (config, says) in [
        (
            "catalogs = []\n[server]\nlisten = [\"127.0.0.1\"]\n",
            "listen",
        ),
        (
            "catalogs = []\n[server]\nupstreams = [\"udp://resolver.lab\"]\n",
            "upstreams",
        ),
    ] {
        let ((check, check_err), (run, run_err)) = check_and_run(config);
        assert_eq!(check, Some(2), "{config}: {check_err}");
        assert!(check_err.contains(says), "{config}: {check_err}");
        assert!(
            check_err.contains("DIR/winsink.toml:3"),
            "{config}: {check_err}"
        );
        assert_eq!(run, Some(2), "{config}: {run_err}");
    }
}

// --- Kubernetes: a ConfigMap volume, updated as the kubelet updates it ---

/// A ConfigMap volume as the kubelet's atomic writer lays it out: the payload in a
/// timestamped folder `..2026_12_01_21_00_00.<n>`, a `..data` symlink to it, and for each
/// key a symlink `KEY -> ..data/KEY`. [`ConfigMapVolume::update`] does what the kubelet
/// does on a ConfigMap change: writes a new timestamped folder, points a fresh
/// `..data_tmp` symlink at it, renames that over `..data` (the atomic step), and removes
/// the old folder.
struct ConfigMapVolume {
    dir: std::path::PathBuf,
    generation: u32,
}

impl ConfigMapVolume {
    fn new(dir: &Path, key: &str, value: &str) -> Self {
        let mut volume = Self {
            dir: dir.to_path_buf(),
            generation: 0,
        };
        let payload = volume.write_payload(key, value);
        std::os::unix::fs::symlink(&payload, dir.join("..data")).expect("..data");
        std::os::unix::fs::symlink(format!("..data/{key}"), dir.join(key)).expect("key link");
        volume
    }

    /// Writes `..TIMESTAMP/KEY` and returns the folder's name.
    fn write_payload(&mut self, key: &str, value: &str) -> String {
        self.generation += 1;
        let name = format!("..2026_12_01_21_00_00.{:09}", self.generation);
        std::fs::create_dir(self.dir.join(&name)).expect("payload dir");
        std::fs::write(self.dir.join(&name).join(key), value).expect("payload");
        name
    }

    fn update(&mut self, key: &str, value: &str) {
        let old = std::fs::read_link(self.dir.join("..data")).expect("read ..data");
        let payload = self.write_payload(key, value);
        std::os::unix::fs::symlink(&payload, self.dir.join("..data_tmp")).expect("..data_tmp");
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).expect("swap");
        std::fs::remove_dir_all(self.dir.join(old)).expect("remove the old payload");
    }
}

/// The config of the ConfigMap test: Microsoft Store set to `store`.
fn store_config(store: &str) -> String {
    format!("{CONFIG}microsoft-store = \"{store}\"\n")
}

/// Asks for a Microsoft Store name until it is (or is not) sinkholed; panics after
/// [`WAIT`]. Returns how long it took.
fn until_store_sinkholed(addr: SocketAddr, sinkholed: bool) -> Duration {
    dns::ask_until(addr, "x.wns.windows.com", |a| is_sinkholed(a) == sinkholed)
}

#[test]
fn a_configmap_update_swapped_in_as_the_kubelet_does_is_reloaded() {
    let upstream = TestUpstream::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut volume = ConfigMapVolume::new(dir.path(), "winsink.toml", &store_config("log"));
    // The image's layout: $WINSINK_CONFIG names the key's symlink in the mounted folder.
    let mut cmd = winsink_in(
        dir.path(),
        &[
            "run",
            "--listen",
            "127.0.0.1:0",
            "--upstream",
            &upstream.url(),
        ],
    );
    cmd.env("WINSINK_CONFIG", dir.path().join("winsink.toml"));
    let winsink = Process::spawn(cmd, Stdout::Null);
    let addr = winsink.addr();
    until_store_sinkholed(addr, false);
    assert_blocked(addr);

    volume.update("winsink.toml", &store_config("block"));
    let took = until_store_sinkholed(addr, true);
    eprintln!("first ConfigMap update in force after {took:?}");
    // The old payload folder is gone; the next update is followed as well.
    volume.update("winsink.toml", &store_config("log"));
    let took = until_store_sinkholed(addr, false);
    eprintln!("second ConfigMap update in force after {took:?}");
    assert_blocked(addr);
    // The swap is logged just after it takes effect: wait for the second line.
    let deadline = Instant::now() + WAIT;
    while winsink.stderr().matches("reloaded: ").count() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let log = winsink.stderr();
    assert_eq!(
        log.matches("reloaded: ").count(),
        2,
        "one reload per update:\n{log}"
    );
}
