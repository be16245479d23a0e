//! The query log's writer thread, and what it does when writing fails.
//!
//! A write error (disk full: `ENOSPC`, `EIO`, a vanished mount) does not stop the log.
//! The lines that could not be written are dropped and counted, and every
//! [`RETRY_EVERY`] the writer opens the file again by its path and tries the next batch;
//! as soon as one goes through, writing resumes. It says so three ways, never once per
//! line: one WARN when lines start being dropped, one every [`SUMMARY_EVERY`] while
//! they are (`query log: 12,345 lines dropped in the last 60 s: No space left on
//! device`), and one INFO when writing resumes, with the total dropped.
//!
//! A write that failed half-way through a line leaves the file ending in half a JSON
//! line: the writer cuts the file back to its last whole line (a full disk can always
//! shrink a file), or, where it cannot (a pipe), starts the next write with a newline.
//! Either way every line a reader sees is whole.
//!
//! [`QueryLog::reopen`](super::QueryLog::reopen) asks the writer to open the file again
//! by its path (SIGHUP, SIGUSR1): after `logrotate` or `mv q.log q.log.1`, lines go to a
//! fresh `q.log`.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use super::{Queue, FLUSH_AT, FLUSH_EVERY};

/// How often a failing log is tried again.
pub(crate) const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How often, while lines are being dropped, a line says how many.
pub(crate) const SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Where the writer writes.
pub(super) enum Sink {
    Stdout(io::Stdout),
    File { path: PathBuf, file: File },
}

/// Opens `path` for appending, creating it if missing.
pub(super) fn open(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    fn name(&self) -> String {
        match self {
            Self::Stdout(_) => "stdout".into(),
            Self::File { path, .. } => path.display().to_string(),
        }
    }

    /// Writes as much of `buf` as it can: `Err((bytes written, error))` when not all.
    fn write_all(&mut self, buf: &[u8]) -> Result<(), (usize, io::Error)> {
        let w: &mut dyn Write = match self {
            Self::Stdout(s) => s,
            Self::File { file, .. } => file,
        };
        let mut done = 0;
        while done < buf.len() {
            match w.write(&buf[done..]) {
                Ok(0) => return Err((done, io::ErrorKind::WriteZero.into())),
                Ok(n) => done += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err((done, e)),
            }
        }
        w.flush().map_err(|e| (done, e))
    }

    /// Opens the file again by its path; the old one stays if that fails.
    fn reopen(&mut self) -> io::Result<()> {
        if let Self::File { path, file } = self {
            *file = open(path)?;
        }
        Ok(())
    }

    /// Cuts the last `partial` bytes (half a line) off the file: whether it could.
    fn cut(&mut self, partial: usize) -> bool {
        let Self::File { file, .. } = self else {
            return false;
        };
        file.metadata()
            .and_then(|m| file.set_len(m.len().saturating_sub(partial as u64)))
            .is_ok()
    }
}

/// The error without its errno suffix: `No space left on device`.
fn describe(e: &io::Error) -> String {
    let text = e.to_string();
    match text.find(" (os error") {
        Some(i) => text[..i].to_owned(),
        None => text,
    }
}

/// `12345678` as `12,345,678`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn lines_in(bytes: &[u8]) -> u64 {
    bytes.iter().filter(|&&b| b == b'\n').count() as u64
}

/// While writes fail.
struct Failing {
    error: String,
    since: Instant,
    next_retry: Instant,
    window_start: Instant,
    window_dropped: u64,
    dropped: u64,
}

struct Writer {
    sink: Sink,
    failing: Option<Failing>,
    /// Bytes of half a line at the end of the output that could not be cut off.
    partial: usize,
}

impl Writer {
    fn write(&mut self, q: &Queue, buf: &[u8]) {
        let now = Instant::now();
        if let Some(f) = &mut self.failing {
            if now < f.next_retry {
                let n = lines_in(buf);
                f.dropped += n;
                f.window_dropped += n;
                q.write_dropped.fetch_add(n, Ordering::Relaxed);
                return;
            }
            // The file may be gone, or its file system remounted: by its path, as new.
            let _ = self.sink.reopen();
        }
        if self.partial > 0 && (self.sink.cut(self.partial) || self.sink.write_all(b"\n").is_ok()) {
            self.partial = 0;
        }
        let Err((written, e)) = self.sink.write_all(buf) else {
            if let Some(f) = self.failing.take() {
                info!(
                    dropped = f.dropped,
                    "query log: writing to {} again after {:.1} s; {} lines dropped while it failed",
                    self.sink.name(),
                    f.since.elapsed().as_secs_f64(),
                    thousands(f.dropped)
                );
            }
            return;
        };
        // The lines not written whole are dropped; half of one may be in the file.
        let whole = buf[..written]
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1);
        let partial = written - whole;
        if partial > 0 && !self.sink.cut(partial) {
            self.partial = partial;
        }
        let n = lines_in(&buf[whole..]);
        q.write_dropped.fetch_add(n, Ordering::Relaxed);
        let error = describe(&e);
        match &mut self.failing {
            Some(f) => {
                f.dropped += n;
                f.window_dropped += n;
                f.next_retry = now + RETRY_EVERY;
                f.error = error;
            }
            None => {
                warn!(
                    error = %error,
                    "query log: cannot write to {}: {error}; query lines are dropped and counted, and writing is tried again every {} s",
                    self.sink.name(),
                    RETRY_EVERY.as_secs()
                );
                self.failing = Some(Failing {
                    error,
                    since: now,
                    next_retry: now + RETRY_EVERY,
                    window_start: now,
                    window_dropped: n,
                    dropped: n,
                });
            }
        }
    }

    /// The minute's summary while failing.
    fn tick(&mut self) {
        let Some(f) = &mut self.failing else {
            return;
        };
        if f.window_start.elapsed() < SUMMARY_EVERY {
            return;
        }
        warn!(
            dropped = f.window_dropped,
            "query log: {} lines dropped in the last {} s: {}",
            thousands(f.window_dropped),
            SUMMARY_EVERY.as_secs(),
            f.error
        );
        f.window_start = Instant::now();
        f.window_dropped = 0;
    }

    fn reopen(&mut self) {
        let Sink::File { path, .. } = &self.sink else {
            return;
        };
        let path = path.display().to_string();
        match self.sink.reopen() {
            // A new file starts whole: nothing of the old one's half line to finish.
            Ok(()) => {
                self.partial = 0;
                info!("query log: reopened {path}");
            }
            Err(e) => warn!(
                "query log: cannot reopen {path}: {}; still writing to the file open before",
                describe(&e)
            ),
        }
    }
}

/// The writer thread: swaps the queue's buffer out and writes it, until closed.
pub(super) fn run(q: &Queue, sink: Sink) {
    let mut spare: Vec<u8> = Vec::with_capacity(FLUSH_AT * 2);
    let mut w = Writer {
        sink,
        failing: None,
        partial: 0,
    };
    loop {
        let closed = {
            let mut p = q.lock();
            if !p.closed && p.buf.len() < FLUSH_AT && !q.reopen.load(Ordering::Relaxed) {
                p = q
                    .wake
                    .wait_timeout(p, FLUSH_EVERY)
                    .unwrap_or_else(|e| e.into_inner())
                    .0;
            }
            std::mem::swap(&mut p.buf, &mut spare);
            p.lines = 0;
            p.closed
        };
        if q.reopen.swap(false, Ordering::Relaxed) {
            w.reopen();
        }
        if !spare.is_empty() {
            w.write(q, &spare);
        }
        spare.clear();
        w.tick();
        q.warn_dropped(closed);
        if closed {
            if let Some(f) = &w.failing {
                warn!(
                    "query log: still failing at shutdown ({}); {} lines dropped in the last {:.0} s",
                    f.error,
                    thousands(f.dropped),
                    f.since.elapsed().as_secs_f64()
                );
            }
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_with_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(12_345), "12,345");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn errors_read_without_their_errno() {
        let e = io::Error::from_raw_os_error(28);
        assert_eq!(describe(&e), "No space left on device");
    }
}
