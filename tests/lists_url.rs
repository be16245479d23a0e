//! Lists by URL against the real binary: an HTTP server on loopback, started by each test,
//! serves a list that `winsink run` downloads, caches, refreshes and answers from, and that
//! `winsink lists update` and `winsink check` report on.
//!
//! The server ([`ListServer`]) answers `GET` with what the test set: the list (with an
//! `ETag`, and `304 Not Modified` to a matching `If-None-Match`), gzipped or not, an error
//! status, a body cut short of its `Content-Length`, or a body larger than winsink's cap;
//! it records every request it got.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{RData, RecordType};

use crate::support::dns::{ask_udp, query, Daemon, TestUpstream};
use crate::support::http::{get, sample};
use crate::support::{run_winsink, stderr, stdout};

/// How long a test waits for what takes a second or two. Only a bound against hanging.
const PATIENCE: Duration = Duration::from_secs(20);

/// What the server sends to a `GET`.
#[derive(Debug, Clone)]
enum Reply {
    /// The list, with this `ETag`; `304` to a request that names it. `gzip`: sent with
    /// `Content-Encoding: gzip`.
    List {
        body: String,
        etag: &'static str,
        gzip: bool,
    },
    /// These bytes as they are (`application/gzip` for a `.gz` file), no validators.
    Raw(Vec<u8>),
    /// This status with a short HTML page.
    Status(u16, &'static str),
    /// `Content-Length: announced`, then only `body`, then the connection is closed.
    Truncated { body: String, announced: usize },
    /// `bytes` of well-formed hosts lines, without a `Content-Length` (or with one, if
    /// `announce`), written until done or until the client hangs up.
    Huge { bytes: usize, announce: bool },
}

/// One request as the server saw it, and what it answered.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    if_none_match: Option<String>,
    accept_encoding: Option<String>,
    status: u16,
    /// Body bytes written before the response ended or the client hung up.
    written: usize,
}

/// A tiny HTTP/1.1 server on 127.0.0.1:0 (one thread per connection, `Connection: close`).
struct ListServer {
    addr: SocketAddr,
    reply: Arc<Mutex<Reply>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl ListServer {
    fn start(reply: Reply) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let reply = Arc::new(Mutex::new(reply));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (r, s, flag) = (reply.clone(), seen.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let (r, s) = (r.clone(), s.clone());
                        std::thread::spawn(move || serve(stream, &r, &s));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Self {
            addr,
            reply,
            seen,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn set(&self, reply: Reply) {
        *self.reply.lock().expect("reply") = reply;
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().expect("seen").clone()
    }
}

impl Drop for ListServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve(mut stream: TcpStream, reply: &Mutex<Reply>, seen: &Mutex<Vec<Seen>>) {
    stream.set_nonblocking(false).expect("blocking");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let (mut if_none_match, mut accept_encoding) = (None, None);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 || line.trim().is_empty() {
            break;
        }
        if let Some((name, value)) = line.split_once(':') {
            let value = Some(value.trim().to_owned());
            match name.trim().to_ascii_lowercase().as_str() {
                "if-none-match" => if_none_match = value,
                "accept-encoding" => accept_encoding = value,
                _ => {}
            }
        }
    }
    let reply = reply.lock().expect("reply").clone();
    let mut written = 0;
    let mut send = |head: &str, body: &[u8], stream: &mut TcpStream| {
        let _ = stream.write_all(head.as_bytes());
        if stream.write_all(body).is_ok() {
            written += body.len();
        }
    };
    let status = match reply {
        Reply::List { etag, .. } if if_none_match.as_deref() == Some(etag) => {
            send(
                &format!("HTTP/1.1 304 Not Modified\r\nETag: {etag}\r\nConnection: close\r\n\r\n"),
                b"",
                &mut stream,
            );
            304
        }
        Reply::List { body, etag, gzip } => {
            let (body, encoding) = if gzip {
                (gzip_bytes(body.as_bytes()), "Content-Encoding: gzip\r\n")
            } else {
                (body.into_bytes(), "")
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nETag: {etag}\r\n{encoding}\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            send(&head, &body, &mut stream);
            200
        }
        Reply::Raw(body) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/gzip\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            send(&head, &body, &mut stream);
            200
        }
        Reply::Status(code, reason) => {
            let body = format!("<html><body><h1>{code} {reason}</h1></body></html>\n");
            let head = format!(
                "HTTP/1.1 {code} {reason}\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                body.len()
            );
            send(&head, body.as_bytes(), &mut stream);
            code
        }
        Reply::Truncated { body, announced } => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {announced}\r\n\
                 Connection: close\r\n\r\n"
            );
            send(&head, body.as_bytes(), &mut stream);
            200
        }
        Reply::Huge { bytes, announce } => {
            let length = if announce {
                format!("Content-Length: {bytes}\r\n")
            } else {
                String::new()
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n{length}Connection: close\r\n\r\n"
            );
            let _ = stream.write_all(head.as_bytes());
            let mut n = 0;
            while written < bytes {
                let chunk: String = (0..1000)
                    .map(|i| format!("0.0.0.0 h{}.huge.test\n", n * 1000 + i))
                    .collect();
                n += 1;
                if stream.write_all(chunk.as_bytes()).is_err() {
                    break;
                }
                written += chunk.len();
            }
            200
        }
    };
    let _ = stream.shutdown(std::net::Shutdown::Both);
    seen.lock().expect("seen").push(Seen {
        path,
        if_none_match,
        accept_encoding,
        status,
        written,
    });
}

fn gzip_bytes(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).expect("gzip");
    gz.finish().expect("gzip")
}

/// A hosts list of `names`.
fn hosts(names: &[&str]) -> String {
    let mut text = String::from("# test list\n127.0.0.1 localhost\n");
    for n in names {
        text.push_str(&format!("0.0.0.0 {n}\n"));
    }
    text
}

fn list(body: String, etag: &'static str) -> Reply {
    Reply::List {
        body,
        etag,
        gzip: false,
    }
}

/// A config with one URL list `lab` (hosts format, block) and the cache in `cache`.
fn config(url: &str, refresh: &str, cache: &Path, extra: &str) -> String {
    format!(
        r#"catalogs = []

[[lists]]
url = "{url}"
refresh = "{refresh}"
format = "hosts"
action = "block"
label = "lab"

[url_lists]
cache_dir = "{}"
{extra}
[server]
allow_clients = ["127.0.0.1/32"]
"#,
        cache.display()
    )
}

fn start(upstream: &TestUpstream, config: &str) -> Daemon {
    Daemon::start(config, &["--upstream", &upstream.url()])
}

/// The A answer for `name`: `Some(address)`, or `None` for NXDOMAIN (the upstream's
/// answer for names it does not know).
fn answer(d: &Daemon, name: &str) -> Option<Ipv4Addr> {
    let a = ask_udp(d.addr, &query(name, RecordType::A, false));
    if a.metadata.response_code == ResponseCode::NXDomain {
        return None;
    }
    a.answers.iter().find_map(|r| match &r.data {
        RData::A(a) => Some(a.0),
        _ => None,
    })
}

const SINKHOLE: Option<Ipv4Addr> = Some(Ipv4Addr::UNSPECIFIED);

/// Waits until `done` holds; panics with `what` and winsink's stderr after [`PATIENCE`].
fn wait_for(d: &Daemon, what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(
            started.elapsed() < PATIENCE,
            "{what}: not within {PATIENCE:?}; stderr:\n{}",
            d.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn wait_for_log(d: &Daemon, line: &str) {
    wait_for(d, &format!("stderr line {line:?}"), || {
        d.stderr().contains(line)
    });
}

fn reloads_ok(d: &Daemon) -> f64 {
    let m = get(d.http(), "/metrics", &[]).body;
    sample(&m, "winsink_policy_reloads_total", r#"result="ok""#)
}

/// The only cached copy in `cache` (the list file, not its `.meta.json`).
fn cached_copy(cache: &Path) -> PathBuf {
    let files: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("the cache folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| !p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    assert_eq!(files.len(), 1, "{files:?}");
    files[0].clone()
}

/// Writes `config` into `dir` and runs `winsink ARGS --config it`.
fn winsink_with(dir: &Path, config: &str, args: &[&str]) -> std::process::Output {
    let path = dir.join("winsink.toml");
    std::fs::write(&path, config).expect("write config");
    let path = path.to_string_lossy().into_owned();
    let mut all = args.to_vec();
    all.extend(["--config", &path]);
    run_winsink(&all)
}

#[test]
fn a_url_list_is_downloaded_at_start_cached_and_blocks() {
    let server = ListServer::start(list(
        hosts(&["spy.example.test", "tel.example.test"]),
        "\"v1\"",
    ));
    let upstream = TestUpstream::start();
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&server.url("/lists/spy.txt"), "1h", cache.path(), "");

    let scratch = tempfile::tempdir().unwrap();
    let out = winsink_with(scratch.path(), &cfg, &["check"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains(&format!(
            "  lab ({}): never downloaded; refreshed every 1 h\n",
            server.url("/lists/spy.txt")
        )),
        "{}",
        stdout(&out)
    );

    let d = start(&upstream, &cfg);
    wait_for(&d, "spy.example.test blocked", || {
        answer(&d, "spy.example.test") == SINKHOLE
    });
    assert_eq!(answer(&d, "tel.example.test"), SINKHOLE);
    assert_eq!(
        answer(&d, "www.example.test"),
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
    let err = d.stderr();
    assert!(
        err.contains("list `lab` (") && err.contains("has not been downloaded yet"),
        "{err}"
    );
    assert!(err.contains("list lab: downloaded http://"), "{err}");
    wait_for_log(&d, "reloaded: list lab: block 0 → 2 names");

    let copy = cached_copy(cache.path());
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        hosts(&["spy.example.test", "tel.example.test"])
    );
    let meta = std::fs::read_to_string(format!("{}.meta.json", copy.display())).unwrap();
    assert!(meta.contains(r#""etag":"\"v1\"""#), "{meta}");
    let seen = server.seen();
    assert_eq!(seen.len(), 1, "one download at start: {seen:?}");
    assert_eq!(
        (seen[0].path.as_str(), seen[0].if_none_match.as_deref()),
        ("/lists/spy.txt", None)
    );

    let out = winsink_with(scratch.path(), &cfg, &["check"]);
    let text = stdout(&out);
    assert!(
        text.contains(": downloaded ") && text.contains(" s ago; refreshed every 1 h"),
        "{text}"
    );
}

#[test]
fn not_modified_downloads_nothing_and_leaves_the_policy_alone() {
    let server = ListServer::start(list(hosts(&["spy.example.test"]), "\"v1\""));
    let upstream = TestUpstream::start();
    let cache = tempfile::tempdir().unwrap();
    let d = start(
        &upstream,
        &config(&server.url("/spy.txt"), "1s", cache.path(), ""),
    );
    wait_for_log(&d, "reloaded: list lab: block 0 → 1 names");
    wait_for(&d, "three conditional requests answered 304", || {
        server.seen().iter().filter(|s| s.status == 304).count() >= 3
    });
    let seen = server.seen();
    assert_eq!(
        seen.iter().filter(|s| s.status == 200).count(),
        1,
        "{seen:?}"
    );
    for s in &seen[1..] {
        assert_eq!(s.if_none_match.as_deref(), Some("\"v1\""), "{seen:?}");
        assert_eq!((s.status, s.written), (304, 0), "{seen:?}");
    }
    assert_eq!(answer(&d, "spy.example.test"), SINKHOLE);
    let err = d.stderr();
    assert_eq!(err.matches("reloaded:").count(), 1, "{err}");
    assert_eq!(err.matches("list lab: downloaded").count(), 1, "{err}");
    assert_eq!(reloads_ok(&d), 1.0);
}

#[test]
fn changed_content_is_applied_with_the_diff_line_and_counted_as_a_reload() {
    let server = ListServer::start(list(
        hosts(&["spy.example.test", "old.example.test"]),
        "\"v1\"",
    ));
    let upstream = TestUpstream::start();
    let cache = tempfile::tempdir().unwrap();
    let d = start(
        &upstream,
        &config(&server.url("/spy.txt"), "1s", cache.path(), ""),
    );
    wait_for_log(&d, "reloaded: list lab: block 0 → 2 names");
    assert_eq!(answer(&d, "old.example.test"), SINKHOLE);
    assert_eq!(answer(&d, "new1.example.test"), None);

    server.set(list(
        hosts(&["spy.example.test", "new1.example.test", "new2.example.test"]),
        "\"v2\"",
    ));
    wait_for_log(&d, "reloaded: list lab: block 2 → 3 names");
    assert_eq!(answer(&d, "new1.example.test"), SINKHOLE);
    assert_eq!(answer(&d, "new2.example.test"), SINKHOLE);
    assert_eq!(answer(&d, "spy.example.test"), SINKHOLE);
    // Gone from the list: forwarded, and the upstream knows no such name.
    assert_eq!(answer(&d, "old.example.test"), None);
    assert_eq!(reloads_ok(&d), 2.0);
    let seen = server.seen();
    assert!(
        seen.iter()
            .any(|s| s.status == 200 && s.if_none_match.as_deref() == Some("\"v1\"")),
        "the changed list was asked for with the old ETag: {seen:?}"
    );
}

#[test]
fn with_the_server_down_at_start_the_cached_copy_is_used() {
    let server = ListServer::start(list(hosts(&["spy.example.test"]), "\"v1\""));
    let url = server.url("/spy.txt");
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&url, "24h", cache.path(), "");
    let scratch = tempfile::tempdir().unwrap();
    let out = winsink_with(scratch.path(), &cfg, &["lists", "update"]);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).starts_with(&format!("list lab ({url}): downloaded, ")),
        "{}",
        stdout(&out)
    );
    drop(server);

    let upstream = TestUpstream::start();
    // A copy confirmed current within `refresh` is not asked for again at start: make
    // it due, as after a day offline.
    let cfg = config(&url, "1s", cache.path(), "");
    let d = start(&upstream, &cfg);
    // The copy is in force from the first query on, before any download could succeed.
    assert_eq!(answer(&d, "spy.example.test"), SINKHOLE);
    wait_for_log(&d, &format!("list lab ({url}): download failed: "));
    let err = d.stderr();
    let warn = err.lines().find(|l| l.contains("download failed")).unwrap();
    assert!(
        warn.contains(" WARN ") && warn.contains("; keeping the copy downloaded "),
        "{warn}"
    );
    assert!(!err.contains("has not been downloaded yet"), "{err}");
    assert_eq!(answer(&d, "spy.example.test"), SINKHOLE);

    let out = winsink_with(scratch.path(), &cfg, &["lists", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with(&format!("list lab ({url}): FAILED: "))
            && text.contains("; keeping the copy downloaded "),
        "{text}"
    );
    assert!(
        stderr(&out).contains("1 of 1 list failed to download"),
        "{}",
        stderr(&out)
    );
}

/// Downloads a good copy with `winsink lists update`, switches the server to `bad`, and
/// starts the daemon: the download fails with `reason` and the good copy stays in force
/// and on disk.
fn a_bad_download_keeps_the_copy(bad: Reply, extra: &str, reason: &str) -> (ListServer, Daemon) {
    let good = hosts(&["spy.example.test", "tel.example.test"]);
    let server = ListServer::start(list(good.clone(), "\"v1\""));
    let url = server.url("/spy.txt");
    let cache = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let cfg = config(&url, "1s", cache.path(), extra);
    let out = winsink_with(scratch.path(), &cfg, &["lists", "update"]);
    assert!(out.status.success(), "{}", stdout(&out));
    server.set(bad);

    let upstream = TestUpstream::start();
    let d = start(&upstream, &cfg);
    wait_for_log(&d, &format!("list lab ({url}): download failed: {reason}"));
    assert_eq!(answer(&d, "spy.example.test"), SINKHOLE);
    assert_eq!(answer(&d, "tel.example.test"), SINKHOLE);
    assert_eq!(
        std::fs::read_to_string(cached_copy(cache.path())).unwrap(),
        good
    );
    assert!(!d.stderr().contains("reloaded:"), "{}", d.stderr());

    let out = winsink_with(scratch.path(), &cfg, &["lists", "update"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(
        stdout(&out).contains(&format!("list lab ({url}): FAILED: {reason}")),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        std::fs::read_to_string(cached_copy(cache.path())).unwrap(),
        good
    );
    drop(cache);
    (server, d)
}

#[test]
fn a_truncated_body_keeps_the_previous_copy() {
    let body = hosts(&["spy.example.test", "a.example.test", "b.example.test"]);
    a_bad_download_keeps_the_copy(
        Reply::Truncated {
            announced: body.len(),
            body: body[..body.len() / 2].to_owned(),
        },
        "",
        "the download broke off after ",
    );
}

#[test]
fn a_404_keeps_the_previous_copy() {
    a_bad_download_keeps_the_copy(Reply::Status(404, "Not Found"), "", "HTTP 404 Not Found");
}

#[test]
fn an_error_page_sent_as_200_keeps_the_previous_copy() {
    a_bad_download_keeps_the_copy(
        list(
            "<html>\n<head><title>Rate limited</title></head>\n<body>Try later</body>\n</html>\n"
                .to_owned(),
            "\"oops\"",
        ),
        "",
        "0 valid and 4 malformed lines: not a list",
    );
}

#[test]
fn a_huge_body_stops_at_the_cap_and_keeps_the_previous_copy() {
    let total = 8 << 20;
    let (server, _d) = a_bad_download_keeps_the_copy(
        Reply::Huge {
            bytes: total,
            announce: false,
        },
        "max_size_mib = 1\n",
        "larger than the 1 MiB cap ([url_lists] max_size_mib)",
    );
    // winsink hung up once past the cap: the server did not get to write it all.
    let huge: Vec<Seen> = server
        .seen()
        .into_iter()
        .filter(|s| s.status == 200 && s.written > 0 && s.if_none_match.is_some())
        .collect();
    assert!(!huge.is_empty(), "{:?}", server.seen());
    for s in &huge {
        assert!(s.written < total, "{s:?}");
    }
    // Announced too large: refused before the body is read.
    server.set(Reply::Huge {
        bytes: 2 << 20,
        announce: true,
    });
    let cache = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let cfg = config(
        &server.url("/big.txt"),
        "1h",
        cache.path(),
        "max_size_mib = 1\n",
    );
    let out = winsink_with(scratch.path(), &cfg, &["lists", "update"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out)
            .contains("FAILED: larger than the 1 MiB cap ([url_lists] max_size_mib); no copy yet"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn gzip_lists_are_decoded_whether_the_encoding_or_the_file_is_gzip() {
    let encoded = ListServer::start(Reply::List {
        body: hosts(&["enc.example.test"]),
        etag: "\"gz\"",
        gzip: true,
    });
    let file = ListServer::start(Reply::Raw(gzip_bytes(
        hosts(&["file.example.test"]).as_bytes(),
    )));
    let cache = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"catalogs = []

[[lists]]
url = "{}"
refresh = "1h"
action = "block"
label = "encoded"

[[lists]]
url = "{}"
refresh = "1h"
action = "block"

[url_lists]
cache_dir = "{}"

[server]
allow_clients = ["127.0.0.1/32"]
"#,
        encoded.url("/hosts.txt"),
        file.url("/spy.txt.gz"),
        cache.path().display()
    );
    let upstream = TestUpstream::start();
    let d = start(&upstream, &cfg);
    wait_for(&d, "both gzip lists in force", || {
        answer(&d, "enc.example.test") == SINKHOLE && answer(&d, "file.example.test") == SINKHOLE
    });
    let err = d.stderr();
    assert!(err.contains("list encoded: downloaded"), "{err}");
    // The default label of a `.gz` URL is its name without `.gz`.
    assert!(err.contains("list spy.txt: downloaded"), "{err}");
    let asked = encoded.seen();
    assert!(
        asked[0]
            .accept_encoding
            .as_deref()
            .is_some_and(|a| a.contains("gzip")),
        "{asked:?}"
    );
    assert_eq!(
        answer(&d, "www.example.test"),
        Some(Ipv4Addr::new(192, 0, 2, 1))
    );
}

#[test]
fn a_list_with_both_a_path_and_a_url_does_not_load() {
    let scratch = tempfile::tempdir().unwrap();
    let cfg = "catalogs = []\n\n[[lists]]\npath = \"a.txt\"\nurl = \"https://x.example/a.txt\"\naction = \"block\"\n";
    let out = winsink_with(scratch.path(), cfg, &["check"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(
            "winsink.toml:4: [[lists]] has both `path` and `url`: a list is a file or a download"
        ),
        "{}",
        stderr(&out)
    );
    let out = winsink_with(scratch.path(), cfg, &["lists", "update"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn lists_update_has_a_man_page_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("man1");
    let out = run_winsink(&["man", "--out-dir", out_dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let page = std::fs::read_to_string(out_dir.join("winsink-lists-update.1")).unwrap();
    assert!(page.contains("\\-\\-config"), "{page}");
    let out = run_winsink(&["completions", "bash"]);
    assert!(
        stdout(&out).contains("winsink__subcmd__lists__subcmd__update"),
        "{}",
        stdout(&out)
    );
}
