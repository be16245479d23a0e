//! The query log: one line per query, JSON or pretty, written off the answering path.
//!
//! Answering tasks format their line into a scratch buffer and append it to a shared
//! pending buffer (one short mutex hold, no allocation once the buffers have grown). A
//! dedicated writer thread swaps the pending buffer out every [`FLUSH_EVERY`], or as soon
//! as [`FLUSH_AT`] bytes are waiting, and writes it with one system call. The queue is
//! bounded in lines ([`LogSink::queue`](winsink_policy::LogSink)): past
//! it, lines are dropped and counted, and a warning gives the count at most every
//! [`WARN_EVERY`], so a slow disk or a stalled pipe never slows answers down. At
//! shutdown the writer gets [`CLOSE_WAIT`] to write out the queue, so a stalled pipe
//! cannot hang the daemon either. A write error does not stop the log, and SIGHUP or
//! SIGUSR1 make the writer reopen the file by its path ([`writer`]).
//!
//! The writer wakes rarely on purpose: on the test machine, waking it every 256 KiB
//! (about 240 times a second at 50k queries/s) made the answering thread sleep and wake
//! twice as often and cost about 1.5 µs of CPU per query; waking it every MiB costs next
//! to nothing.
//!
//! JSON fields, in order: `ts` (RFC 3339, UTC, microseconds), `client` (IP), `proto`
//! (`udp`/`tcp`), `qname` (lowercase, no trailing dot), `qtype`, `decision` (`block`,
//! `log`, `allow`, `pass`, `refuse`, or `invalid` for a packet answered FORMERR, NOTIMP or
//! BADVERS), `decided_by` (what decided, in the shape of
//! [`DecidedBy`](winsink_policy::DecidedBy), or `null`), `areas` (every area the name
//! belongs to, `{"id", "name"}` each), `patterns`, `impact` (arrays of strings),
//! `impact_scope` (`endpoint`, `area` when the page describes none of the endpoints and
//! the area's summary stands in, `mixed`, or `null` without impact), `rcode`, `answers` (the
//! number of answer records sent), `cached`, `upstream` (the upstream asked for this
//! query, else `null`), `duration_us`, and `cname` only when a name of the CNAME chain,
//! not the question, decided. `duration_us` runs from the moment the datagram (or its
//! batch) was received to the moment the line is formatted, just before the answer is
//! sent. A packet that gets no answer at all (shorter than a header, or a response
//! rather than a query) leaves no line.

use std::fmt::Write as _;
use std::io;
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hickory_proto::rr::RecordType;
use tracing::warn;

use crate::engine::Proto;
use crate::wire::rcode_name;
use crate::ServerError;

mod writer;

/// Longest time a line waits in the queue.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_millis(100);
/// Pending bytes that wake the writer early.
pub(crate) const FLUSH_AT: usize = 1024 * 1024;
/// Shortest interval between two "lines dropped" warnings.
pub(crate) const WARN_EVERY: Duration = Duration::from_secs(5);
/// How long [`QueryLog::close`] waits for the writer to write out what is queued.
pub(crate) const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// How query lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// One human-readable line per query.
    Pretty,
}

/// Where query lines go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogTarget {
    /// Standard output.
    Stdout,
    /// A file, appended to (created if missing).
    File(PathBuf),
}

/// Why a line is written: what the policy matched, told without the policy's types.
pub(crate) trait Explain {
    /// Calls `f` with each distinct area, as (id, name).
    fn areas(&self, f: &mut dyn FnMut(&str, &str));
    /// Calls `f` with each distinct matching pattern.
    fn patterns(&self, f: &mut dyn FnMut(&str));
    /// Calls `f` with each distinct impact text.
    fn impacts(&self, f: &mut dyn FnMut(&str));
    /// Whose words the impacts are (`endpoint`, `area`, `mixed`); `None` without any.
    fn impact_scope(&self) -> Option<&'static str>;
    /// The one impact a pretty line shows: the deciding endpoint's, else the first.
    fn impact(&self) -> Option<&str>;
    /// Appends the `decided_by` JSON object and returns `true`, or appends nothing and
    /// returns `false` when nothing decided.
    fn decided_by(&self, out: &mut String) -> bool;
}

/// Nothing matched.
pub(crate) struct NoMatch;

impl Explain for NoMatch {
    fn areas(&self, _: &mut dyn FnMut(&str, &str)) {}
    fn patterns(&self, _: &mut dyn FnMut(&str)) {}
    fn impacts(&self, _: &mut dyn FnMut(&str)) {}
    fn impact_scope(&self) -> Option<&'static str> {
        None
    }
    fn impact(&self) -> Option<&str> {
        None
    }
    fn decided_by(&self, _: &mut String) -> bool {
        false
    }
}

/// Lines formatted by one answering task and not yet queued.
#[derive(Debug, Default)]
pub(crate) struct LogBuf {
    text: String,
    lines: usize,
}

/// The facts of one query.
pub(crate) struct Line<'a> {
    pub(crate) ts: SystemTime,
    pub(crate) client: IpAddr,
    pub(crate) proto: Proto,
    pub(crate) qname: &'a str,
    pub(crate) qtype: Option<u16>,
    pub(crate) decision: &'static str,
    pub(crate) why: &'a dyn Explain,
    pub(crate) rcode: u16,
    pub(crate) answers: u16,
    pub(crate) cached: bool,
    pub(crate) upstream: Option<&'a str>,
    /// Microseconds from receiving the query to finishing its answer.
    pub(crate) took_us: u64,
    pub(crate) cname: Option<&'a str>,
}

struct Pending {
    buf: Vec<u8>,
    lines: usize,
    closed: bool,
}

struct Queue {
    pending: Mutex<Pending>,
    wake: Condvar,
    dropped: AtomicU64,
    dropped_total: AtomicU64,
    /// Lines dropped because writing them failed.
    write_dropped: AtomicU64,
    /// Set to make the writer open the file again by its path.
    reopen: AtomicBool,
    cap: usize,
    /// When the queue was made: the clock of `next_warning`.
    born: Instant,
    /// Milliseconds after `born` before which no "lines dropped" warning is given.
    next_warning: AtomicU64,
}

impl Queue {
    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Warns with the lines dropped since the last warning, at most every
    /// [`WARN_EVERY`] unless `now_anyway`. Called by the writer and by the answering
    /// side as it drops lines: the writer alone cannot be relied on, as a stalled pipe
    /// or disk blocks it in a write, which is exactly when lines are dropped.
    fn warn_dropped(&self, now_anyway: bool) {
        if self.dropped.load(Ordering::Relaxed) == 0 {
            return;
        }
        let now = self.born.elapsed().as_millis() as u64;
        let due = self.next_warning.load(Ordering::Relaxed);
        if !now_anyway && now < due {
            return;
        }
        let next = now + WARN_EVERY.as_millis() as u64;
        if self
            .next_warning
            .compare_exchange(due, next, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            // Another thread is warning right now.
            return;
        }
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            warn!(
                dropped,
                "query log: the writer could not keep up; {dropped} lines dropped"
            );
        }
    }
}

/// The query log's queue and writer thread.
pub struct QueryLog {
    queue: Arc<Queue>,
    format: LogFormat,
    writer: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for QueryLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryLog")
            .field("format", &self.format)
            .finish()
    }
}

impl QueryLog {
    /// Opens `target` and starts the writer thread. `queue` bounds the lines waiting.
    pub fn start(
        target: &LogTarget,
        format: LogFormat,
        queue: NonZeroUsize,
    ) -> Result<Self, ServerError> {
        let sink = match target {
            LogTarget::Stdout => writer::Sink::Stdout(io::stdout()),
            LogTarget::File(path) => writer::Sink::File {
                file: writer::open(path).map_err(|source| ServerError::LogFile {
                    path: path.clone(),
                    source,
                })?,
                path: path.clone(),
            },
        };
        let queue = Arc::new(Queue {
            pending: Mutex::new(Pending {
                buf: Vec::with_capacity(FLUSH_AT * 2),
                lines: 0,
                closed: false,
            }),
            wake: Condvar::new(),
            dropped: AtomicU64::new(0),
            dropped_total: AtomicU64::new(0),
            write_dropped: AtomicU64::new(0),
            reopen: AtomicBool::new(false),
            cap: queue.get(),
            born: Instant::now(),
            next_warning: AtomicU64::new(0),
        });
        let q = queue.clone();
        let writer = std::thread::Builder::new()
            .name("winsink-querylog".into())
            .spawn(move || writer::run(&q, sink))
            .map_err(ServerError::Thread)?;
        Ok(Self {
            queue,
            format,
            writer: Mutex::new(Some(writer)),
        })
    }

    /// Formats `line` into `buf`; [`flush`](Self::flush) queues what `buf` holds.
    pub(crate) fn push(&self, line: &Line<'_>, buf: &mut LogBuf) {
        format_line(&mut buf.text, self.format, line);
        buf.lines += 1;
    }

    /// Queues the lines of `buf` (one lock for a whole batch of queries); those that do
    /// not fit are dropped and counted.
    pub(crate) fn flush(&self, buf: &mut LogBuf) {
        if buf.lines == 0 {
            return;
        }
        let mut p = self.queue.lock();
        let room = self.queue.cap.saturating_sub(p.lines);
        let (take, dropped) = if p.closed {
            (0, 0)
        } else if buf.lines <= room {
            (buf.text.len(), 0)
        } else {
            let cut = buf
                .text
                .match_indices('\n')
                .nth(room.wrapping_sub(1))
                .map_or(0, |(i, _)| i + 1);
            (if room == 0 { 0 } else { cut }, buf.lines - room)
        };
        let before = p.buf.len();
        p.buf.extend_from_slice(&buf.text.as_bytes()[..take]);
        p.lines += buf.lines - dropped;
        let wake = before < FLUSH_AT && p.buf.len() >= FLUSH_AT;
        drop(p);
        // Notified after unlocking, so that the writer does not wake only to wait for
        // the lock.
        if wake {
            self.queue.wake.notify_one();
        }
        if dropped > 0 {
            self.queue
                .dropped
                .fetch_add(dropped as u64, Ordering::Relaxed);
            self.queue
                .dropped_total
                .fetch_add(dropped as u64, Ordering::Relaxed);
            self.queue.warn_dropped(false);
        }
        buf.text.clear();
        buf.lines = 0;
    }

    /// Lines dropped since the start: the queue was full, or writing them failed.
    pub fn dropped(&self) -> u64 {
        self.queue.dropped_total.load(Ordering::Relaxed)
            + self.queue.write_dropped.load(Ordering::Relaxed)
    }

    /// Makes the writer open the log file again by its path, soon (for `logrotate`'s
    /// `create` mode, or `mv q.log q.log.1`); lines queued meanwhile go to the new file.
    /// Nothing to do for stdout.
    pub fn reopen(&self) {
        self.queue.reopen.store(true, Ordering::Relaxed);
        self.queue.wake.notify_one();
    }

    /// Writes out every queued line and stops the writer; then, if any lines were
    /// dropped over the run, says how many and why. Lines pushed afterwards are
    /// discarded. Idempotent. Waits at most two seconds: a writer blocked on a
    /// stalled pipe or disk is left behind, so that shutdown cannot hang on it.
    pub fn close(&self) {
        self.queue.lock().closed = true;
        self.queue.wake.notify_one();
        let handle = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        let Some(h) = handle else {
            return;
        };
        let deadline = Instant::now() + CLOSE_WAIT;
        while !h.is_finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        if h.is_finished() {
            let _ = h.join();
            self.say_total();
        } else {
            let pending = self.queue.lock().lines;
            warn!(
                pending,
                "query log: the writer is blocked writing after {CLOSE_WAIT:?}; it and {pending} queued lines are abandoned"
            );
            self.queue.warn_dropped(true);
        }
    }
}

impl QueryLog {
    fn say_total(&self) {
        let total = self.dropped();
        if total == 0 {
            return;
        }
        let queue = self.queue.dropped_total.load(Ordering::Relaxed);
        let failed = self.queue.write_dropped.load(Ordering::Relaxed);
        warn!(
            dropped = total,
            "query log: {} lines dropped over the run ({} could not be written, {} found the queue full)",
            writer::thousands(total),
            writer::thousands(failed),
            writer::thousands(queue)
        );
    }
}

impl Drop for QueryLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// Whether any of the eight bytes in `chunk` needs a JSON escape: below 0x20, `"` or
/// `\`. (Bit tricks from "Bit Twiddling Hacks": a byte is zero exactly when subtracting
/// one borrows into its high bit; bytes of multi-byte UTF-8 have the high bit set and
/// never match.)
fn needs_escape(chunk: u64) -> bool {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let below_space = chunk.wrapping_sub(ONES * 0x20) & !chunk & HIGH;
    let q = chunk ^ (ONES * u64::from(b'"'));
    let quote = q.wrapping_sub(ONES) & !q & HIGH;
    let b = chunk ^ (ONES * u64::from(b'\\'));
    let backslash = b.wrapping_sub(ONES) & !b & HIGH;
    (below_space | quote | backslash) != 0
}

/// Appends `s` as a JSON string.
pub(crate) fn json_str(out: &mut String, s: &str) {
    out.push('"');
    let bytes = s.as_bytes();
    // Copy runs of characters that need no escape in one go, eight bytes at a time.
    let mut run = 0;
    let mut i = 0;
    while i < bytes.len() {
        if let Some(chunk) = bytes.get(i..i + 8) {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            if !needs_escape(u64::from_le_bytes(word)) {
                i += 8;
                continue;
            }
        }
        let b = bytes[i];
        let esc = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1F => "",
            _ => {
                i += 1;
                continue;
            }
        };
        out.push_str(&s[run..i]);
        if esc.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(esc);
        }
        i += 1;
        run = i;
    }
    out.push_str(&s[run..]);
    out.push('"');
}

/// Appends `n` in decimal.
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The digits are ASCII.
    out.push_str(std::str::from_utf8(&digits[at..]).unwrap_or("0"));
}

/// Appends an IP address; IPv4 (the common case) without the formatting machinery.
fn push_ip(out: &mut String, ip: IpAddr) {
    match ip.to_canonical() {
        IpAddr::V4(v4) => {
            for (i, o) in v4.octets().into_iter().enumerate() {
                if i > 0 {
                    out.push('.');
                }
                push_u64(out, u64::from(o));
            }
        }
        v6 => {
            let _ = write!(out, "{v6}");
        }
    }
}

/// Calls its argument with each string of a list.
type ForEach<'a> = &'a dyn Fn(&mut dyn FnMut(&str));

fn json_list(out: &mut String, key: &str, each: ForEach<'_>) {
    out.push_str(",\"");
    out.push_str(key);
    out.push_str("\":[");
    let mut first = true;
    each(&mut |s| {
        if !first {
            out.push(',');
        }
        first = false;
        json_str(out, s);
    });
    out.push(']');
}

/// Appends the mnemonic of a record type (hickory-proto's names), or `TYPE<n>` (RFC
/// 3597) for one without a name.
pub(crate) fn qtype_text(out: &mut String, qtype: Option<u16>) {
    if let Some(t) = qtype {
        match RecordType::from(t) {
            // ZERO is hickory's name for the reserved type 0, not a mnemonic.
            RecordType::Unknown(_) | RecordType::ZERO => {
                let _ = write!(out, "TYPE{t}");
            }
            rt => out.push_str(rt.into()),
        }
    }
}

/// Appends `line` in `format`, with its newline.
pub(crate) fn format_line(out: &mut String, format: LogFormat, line: &Line<'_>) {
    match format {
        LogFormat::Json => write_json(out, line),
        LogFormat::Pretty => write_pretty(out, line),
    }
    out.push('\n');
}

pub(crate) fn write_json(out: &mut String, l: &Line<'_>) {
    out.push_str("{\"ts\":\"");
    write_ts(out, l.ts);
    out.push_str("\",\"client\":\"");
    push_ip(out, l.client);
    out.push_str("\",\"proto\":\"");
    out.push_str(l.proto.as_str());
    out.push_str("\",\"qname\":");
    json_str(out, l.qname);
    out.push_str(",\"qtype\":\"");
    qtype_text(out, l.qtype);
    out.push_str("\",\"decision\":\"");
    out.push_str(l.decision);
    out.push_str("\",\"decided_by\":");
    if !l.why.decided_by(out) {
        out.push_str("null");
    }
    out.push_str(",\"areas\":[");
    let mut first = true;
    l.why.areas(&mut |id, name| {
        out.push_str(if first { "{\"id\":" } else { ",{\"id\":" });
        first = false;
        json_str(out, id);
        out.push_str(",\"name\":");
        json_str(out, name);
        out.push('}');
    });
    out.push(']');
    json_list(out, "patterns", &|f| l.why.patterns(f));
    json_list(out, "impact", &|f| l.why.impacts(f));
    out.push_str(",\"impact_scope\":");
    match l.why.impact_scope() {
        Some(scope) => {
            out.push('"');
            out.push_str(scope);
            out.push('"');
        }
        None => out.push_str("null"),
    }
    out.push_str(",\"rcode\":\"");
    out.push_str(rcode_name(l.rcode));
    let _ = write!(
        out,
        "\",\"answers\":{},\"cached\":{},\"upstream\":",
        l.answers, l.cached
    );
    match l.upstream {
        Some(u) => json_str(out, u),
        None => out.push_str("null"),
    }
    out.push_str(",\"duration_us\":");
    push_u64(out, l.took_us);
    if let Some(c) = l.cname {
        out.push_str(",\"cname\":");
        json_str(out, c);
    }
    out.push('}');
}

fn write_pretty(out: &mut String, l: &Line<'_>) {
    write_ts(out, l.ts);
    let _ = write!(
        out,
        " {:<15} {} ",
        l.client.to_canonical(),
        l.proto.as_str()
    );
    let at = out.len();
    qtype_text(out, l.qtype);
    while out.len() < at + 5 {
        out.push(' ');
    }
    let _ = write!(
        out,
        " {} -> {} {}",
        l.qname,
        l.decision,
        rcode_name(l.rcode)
    );
    let _ = write!(out, " answers={}", l.answers);
    let areas_at = out.len();
    out.push_str(" [");
    let mut areas = false;
    l.why.areas(&mut |_, name| {
        if areas {
            out.push_str(", ");
        }
        areas = true;
        out.push_str(name);
    });
    if areas {
        out.push(']');
    } else {
        out.truncate(areas_at);
        let mut first = true;
        l.why.patterns(&mut |p| {
            out.push_str(if first { " rule=" } else { "," });
            first = false;
            out.push_str(p);
        });
    }
    if let Some(c) = l.cname {
        let _ = write!(out, " via cname {c}");
    }
    if l.cached {
        out.push_str(" cached");
    } else if let Some(u) = l.upstream {
        let _ = write!(out, " from {u}");
    }
    let _ = write!(out, " {}us", l.took_us);
    if matches!(l.decision, "block" | "log") {
        if let Some(impact) = l.why.impact() {
            out.push_str(" | ");
            if l.why.impact_scope() == Some("area") {
                out.push_str("(area) ");
            }
            one_line(out, impact, PRETTY_IMPACT);
        }
    }
}

/// Characters of an impact a pretty line shows.
const PRETTY_IMPACT: usize = 120;

/// Appends `text` on one line: runs of whitespace (line breaks included) as one space,
/// cut after at most `max` characters at a word boundary, with `…` when cut.
fn one_line(out: &mut String, text: &str, max: usize) {
    let mut shown = 0;
    for (i, word) in text.split_whitespace().enumerate() {
        let len = word.chars().count();
        if shown + len + usize::from(i > 0) > max {
            if i == 0 {
                out.extend(word.chars().take(max));
            }
            out.push('…');
            return;
        }
        if i > 0 {
            out.push(' ');
            shown += 1;
        }
        out.push_str(word);
        shown += len;
    }
}

thread_local! {
    /// The date and time of the last second formatted on this thread: every query in
    /// the same second reuses it.
    static SECOND: std::cell::RefCell<(u64, String)> = const { std::cell::RefCell::new((u64::MAX, String::new())) };
}

/// Appends `ts` as `YYYY-MM-DDTHH:MM:SS.uuuuuuZ`.
pub(crate) fn write_ts(out: &mut String, ts: SystemTime) {
    let d = ts.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    SECOND.with_borrow_mut(|(cached, text)| {
        if *cached != secs {
            text.clear();
            write_date_time(text, secs);
            *cached = secs;
        }
        out.push_str(text);
    });
    let micros = d.subsec_micros();
    out.push('.');
    let mut digits = [b'0'; 6];
    let mut m = micros;
    for d in digits.iter_mut().rev() {
        *d = b'0' + (m % 10) as u8;
        m /= 10;
    }
    out.push_str(std::str::from_utf8(&digits).unwrap_or("000000"));
    out.push('Z');
}

/// Appends `YYYY-MM-DDTHH:MM:SS` for `secs` since the epoch.
fn write_date_time(out: &mut String, secs: u64) {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = crate::civil::civil_from_days(days as i64);
    let _ = write!(
        out,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Areas;
    impl Explain for Areas {
        fn areas(&self, f: &mut dyn FnMut(&str, &str)) {
            f("diagnostic-data", "Diagnostic Data");
            f("quote", "Quote \"x\"");
        }
        fn patterns(&self, f: &mut dyn FnMut(&str)) {
            f("*.events.data.microsoft.com");
        }
        fn impacts(&self, f: &mut dyn FnMut(&str)) {
            f(IMPACT);
        }
        fn impact_scope(&self) -> Option<&'static str> {
            Some("area")
        }
        fn impact(&self) -> Option<&str> {
            Some(IMPACT)
        }
        fn decided_by(&self, out: &mut String) -> bool {
            out.push_str(r#"{"kind":"rule","note":null,"pattern":"x","action":"block"}"#);
            true
        }
    }

    const IMPACT: &str = "The following endpoints are used by the Connected User \
        Experiences and Telemetry component.\n\nIf you turn off traffic for this endpoint, \
        diagnostic and usage information won't be sent back to Microsoft.";

    fn line(why: &dyn Explain) -> Line<'_> {
        Line {
            ts: UNIX_EPOCH + Duration::from_micros(1_764_119_454_123_456),
            client: "::ffff:127.0.0.1".parse().unwrap(),
            proto: Proto::Udp,
            qname: "v10.events.data.microsoft.com",
            qtype: Some(65),
            decision: "block",
            why,
            rcode: 0,
            answers: 0,
            cached: false,
            upstream: None,
            took_us: 41,
            cname: Some("x.example"),
        }
    }

    #[test]
    fn json_line_is_json_with_every_field() {
        let mut s = String::new();
        write_json(&mut s, &line(&Areas));
        let v: serde_json::Value = serde_json::from_str(&s).unwrap();
        assert_eq!(v["ts"], "2025-11-26T01:10:54.123456Z");
        assert_eq!(v["client"], "127.0.0.1");
        assert_eq!(v["qtype"], "HTTPS");
        assert_eq!(
            v["areas"],
            serde_json::json!([{"id": "diagnostic-data", "name": "Diagnostic Data"},
                               {"id": "quote", "name": "Quote \"x\""}])
        );
        assert_eq!(v["patterns"][0], "*.events.data.microsoft.com");
        assert_eq!(v["impact"], serde_json::json!([IMPACT]));
        assert_eq!(v["impact_scope"], "area");
        assert_eq!(v["decided_by"]["kind"], "rule");
        let mut none = String::new();
        write_json(&mut none, &line(&NoMatch));
        let v: serde_json::Value = serde_json::from_str(&none).unwrap();
        assert_eq!(v["decided_by"], serde_json::Value::Null);
        assert_eq!(v["impact_scope"], serde_json::Value::Null);
        assert_eq!(v["areas"], serde_json::json!([]));
        assert_eq!(v["upstream"], serde_json::Value::Null);
        assert_eq!(v["cname"], "x.example");
        assert_eq!(v["rcode"], "NOERROR");
        assert!(v["duration_us"].is_u64());
    }

    #[test]
    fn escapes_exactly_what_json_needs() {
        for s in [
            "plain text that is long enough",
            "a\"b\\c\nd\u{1}e",
            "Ünïcödé — ok \"",
            "",
            "1234567\"",
        ] {
            let mut out = String::new();
            json_str(&mut out, s);
            assert_eq!(serde_json::from_str::<String>(&out).unwrap(), s, "{out}");
            assert_eq!(out, serde_json::to_string(s).unwrap());
        }
        let mut n = String::new();
        push_u64(&mut n, 0);
        push_u64(&mut n, 1_234_567);
        assert_eq!(n, "01234567");
        push_ip(&mut n, "::ffff:10.1.2.3".parse().unwrap());
        assert!(n.ends_with("10.1.2.3"));
    }

    #[test]
    fn timestamps_are_civil_dates() {
        let mut s = String::new();
        write_ts(&mut s, UNIX_EPOCH);
        assert_eq!(s, "1970-01-01T00:00:00.000000Z");
        s.clear();
        write_ts(&mut s, UNIX_EPOCH + Duration::from_secs(951_782_400)); // 2000-02-29
        assert_eq!(s, "2000-02-29T00:00:00.000000Z");
    }

    #[test]
    fn pretty_line_reads_well() {
        let mut s = String::new();
        write_pretty(&mut s, &line(&Areas));
        assert!(
            s.starts_with("2025-11-26T01:10:54.123456Z 127.0.0.1       udp HTTPS v10.events"),
            "{s}"
        );
        assert!(
            s.contains(
                "-> block NOERROR answers=0 [Diagnostic Data, Quote \"x\"] via cname x.example"
            ),
            "{s}"
        );
        // Block and log lines end with the impact, on one line, shortened.
        assert!(
            s.ends_with(
                "us | (area) The following endpoints are used by the Connected User \
                 Experiences and Telemetry component. If you turn off traffic for…"
            ),
            "{s}"
        );
        assert!(!s.contains('\n'), "{s}");
        let mut pass = String::new();
        write_pretty(
            &mut pass,
            &Line {
                decision: "pass",
                ..line(&Areas)
            },
        );
        assert!(pass.ends_with("us"), "{pass}");
    }

    #[test]
    fn one_line_cuts_at_a_word_and_collapses_breaks() {
        let mut s = String::new();
        one_line(&mut s, "a  b\n\nc", 10);
        assert_eq!(s, "a b c");
        s.clear();
        one_line(&mut s, "word another", 8);
        assert_eq!(s, "word…");
        s.clear();
        one_line(&mut s, "überlangeswort", 4);
        assert_eq!(s, "über…");
    }

    #[test]
    fn every_line_is_written_or_counted_as_dropped() {
        let path = std::env::temp_dir().join(format!("winsink-qlog-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let log = QueryLog::start(
            &LogTarget::File(path.clone()),
            LogFormat::Json,
            NonZeroUsize::new(2).unwrap(),
        )
        .unwrap();
        let mut buf = LogBuf::default();
        for i in 0..1000 {
            log.push(&line(&NoMatch), &mut buf);
            if i % 3 == 0 {
                log.flush(&mut buf);
            }
        }
        log.flush(&mut buf);
        log.close();
        let dropped = log.dropped();
        let text = std::fs::read_to_string(&path).unwrap();
        let _ = std::fs::remove_file(&path);
        let written = text.lines().count() as u64;
        assert!(written >= 2);
        assert_eq!(written + dropped, 1000);
        for l in text.lines() {
            serde_json::from_str::<serde_json::Value>(l).unwrap();
        }
    }
}
