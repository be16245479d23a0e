//! A running `winsink` process: stderr collected as it comes, the addresses it reports
//! (`listening on ADDR`, `http: serving … on ADDR`) picked out of it, signals, a bounded
//! wait for the exit; killed on drop. [`super::dns::Daemon`] is one of these with a
//! config in a folder of its own; tests that need a command of their own (another
//! working directory, `$WINSINK_CONFIG`, `NOTIFY_SOCKET`) spawn it here directly.

use std::cell::OnceCell;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use super::WAIT;

/// What happens to the process's stdout (the query log when it goes to stdout).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stdout {
    /// Discarded.
    Null,
    /// Piped: take it with [`Process::take_stdout`].
    Piped,
}

/// A `winsink` child process; see the module docs.
pub(crate) struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
    /// DNS addresses as `listening on ADDR` lines report them.
    listening: mpsc::Receiver<SocketAddr>,
    /// HTTP addresses as `http: serving … on ADDR` lines report them.
    http: mpsc::Receiver<SocketAddr>,
    /// Closed when the stderr reader has read the last line.
    stderr_done: mpsc::Receiver<()>,
    /// The first of `listening`, once read.
    first: OnceCell<SocketAddr>,
}

impl Process {
    /// Spawns `cmd` with `RUST_LOG=info`, stdin closed, stderr collected.
    pub(crate) fn spawn(mut cmd: Command, stdout: Stdout) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(match stdout {
                Stdout::Null => Stdio::null(),
                Stdout::Piped => Stdio::piped(),
            })
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn winsink");
        let (addr_tx, listening) = mpsc::channel();
        let (http_tx, http) = mpsc::channel();
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr");
        let sink = Arc::clone(&stderr);
        let (done_tx, stderr_done) = mpsc::channel::<()>();
        std::thread::spawn(move || {
            let _done = done_tx;
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("http: serving") {
                    if let Some(addr) = line.rsplit(' ').next().and_then(|a| a.parse().ok()) {
                        let _ = http_tx.send(addr);
                    }
                }
                if let Some(addr) = line
                    .split("listening on ")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|a| a.parse().ok())
                {
                    let _ = addr_tx.send(addr);
                }
                let mut text = sink.lock().expect("stderr");
                text.push_str(&line);
                text.push('\n');
            }
        });
        Self {
            child,
            stderr,
            listening,
            http,
            stderr_done,
            first: OnceCell::new(),
        }
    }

    /// Once it has exited: waits (briefly) until its last stderr line is collected.
    fn stderr_complete(&self) {
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
    }

    /// Its stdout pipe, once (with [`Stdout::Piped`]).
    pub(crate) fn take_stdout(&mut self) -> ChildStdout {
        self.child
            .stdout
            .take()
            .expect("stdout is piped, and taken once")
    }

    /// The first DNS address it reports listening on, waiting at most [`WAIT`]; panics
    /// with its stderr when none comes.
    pub(crate) fn addr(&self) -> SocketAddr {
        *self
            .first
            .get_or_init(|| match self.listening.recv_timeout(WAIT) {
                Ok(addr) => addr,
                Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                    "winsink closed its stderr (exited) before it reported a listening address; \
                 stderr:\n{}",
                    self.stderr()
                ),
                Err(mpsc::RecvTimeoutError::Timeout) => panic!(
                    "winsink did not report a listening address in {WAIT:?}; stderr:\n{}",
                    self.stderr()
                ),
            })
    }

    /// The HTTP address it has reported, if any yet. (The HTTP listener reports before
    /// the DNS sockets: once [`Process::addr`] returned, it is there if it will be.)
    pub(crate) fn http_addr(&self) -> Option<SocketAddr> {
        self.http.try_recv().ok()
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What it wrote on stderr so far.
    pub(crate) fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr").clone()
    }

    /// Waits until its stderr contains `needle` and returns all of it; panics with the
    /// stderr after [`WAIT`].
    pub(crate) fn stderr_until(&self, needle: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "no {needle:?} on stderr in time; stderr:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends the signal `name` (`HUP`, `TERM`, …) with kill(1).
    pub(crate) fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.pid().to_string()])
            .status();
        assert!(ok.expect("kill").success(), "kill -s {name} failed");
    }

    /// Whether it is still running.
    pub(crate) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits for the exit, at most [`WAIT`], and for the last line of its stderr.
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                self.stderr_complete();
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "winsink did not exit; stderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGTERM, then [`Process::wait`].
    pub(crate) fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
