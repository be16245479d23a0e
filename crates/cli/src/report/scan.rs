//! The fast path of [`logline::parse_with`](super::logline::parse_with): one pass over a line's
//! bytes that reads the report's fields in place and skips the rest, checking the JSON
//! grammar as it goes.
//!
//! It gives up (`None`) on whatever it does not handle exactly as the serde path would:
//! a byte below 0x20 anywhere (a tab between tokens is JSON, in a string it is not; the
//! daemon writes neither), a key with an escape, a field twice, a value of an unexpected
//! type, a `\u` escape of a surrogate, nesting deeper than [`MAX_DEPTH`], any syntax
//! error.
//!
//! A line in the daemon's own layout (the keys `write_json` writes, in its order, without
//! whitespace) is read first by [`Scan::daemon`], which takes each key, with its quotes,
//! colon and the comma before it, as the few bytes expected there instead of reading the
//! key and looking it up; the values are read by the same functions as in the general
//! object walk ([`Scan::top`]), so the layout path gives what the general one gives. At
//! the first difference (another key order, a space, a key twice) the line is read again
//! by the general walk from its start (what this saves: `bench/report.sh`'s header).
//!
//! One pass over the line's words first (eight bytes at a time, without branches) marks
//! every `"` and `\` and looks for control bytes; the end of each string is then the
//! next mark, found a word at a time. (memchr's SIMD search, tried first, pays its set-up
//! on every one of a line's fifty-odd strings, most of them a few bytes long.) The caller then
//! parses the line with serde_json, which gives the same [`LogLine`] or the error the
//! report quotes, so the scan changes no result, only the time taken: on the daemon's
//! lines it never gives up (measured in `bench/report.sh`). A unit test holds the two
//! paths together on lines built to hit every branch.

use std::borrow::Cow;

use super::logline::{AreaItem, DecidedBy, LogLine};

/// Containers nested deeper than this in a skipped value send the line to serde_json
/// (whose own limit is 128).
pub(crate) const MAX_DEPTH: u32 = 64;

/// Reads `text` as a query line into `out` (written in place: the line is a few hundred
/// bytes, and moving it out through `Option`s and `Result`s took a twentieth of the
/// report's time); `false` when the serde path must decide, `out` then left in any state.
pub(crate) fn line<'a>(text: &'a str, marks: &mut Marks, out: &mut LogLine<'a>) -> bool {
    if !marks.mark(text.as_bytes()) {
        return false;
    }
    let mut s = Scan {
        text,
        i: 0,
        marks: &marks.words,
    };
    if s.daemon(out).is_none() {
        s.i = 0;
        match s.top() {
            Some(l) => *out = l,
            None => return false,
        }
    }
    s.ws();
    s.i == text.len()
}

/// The `"` and `\` of a line: for each eight bytes, a word with the high bit of each of
/// those bytes set. Kept from line to line to spare the allocation.
#[derive(Debug, Default)]
pub(crate) struct Marks {
    words: Vec<u64>,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

impl Marks {
    /// Marks `b`'s bytes; `false` when one is a control byte.
    fn mark(&mut self, b: &[u8]) -> bool {
        let quote = ONES * u64::from(b'"');
        let backslash = ONES * u64::from(b'\\');
        let mut control = 0u64;
        let mut mark = |w: u64| {
            control |= w.wrapping_sub(ONES * 0x20) & !w & HIGH;
            zero_bytes(w ^ quote) | zero_bytes(w ^ backslash)
        };
        self.words.clear();
        self.words.resize(b.len().div_ceil(8), 0);
        let words = b.chunks_exact(8);
        let rest = words.remainder();
        // Into a slice of the right length, without a push per word: the loop vectorises.
        for (m, w) in self.words.iter_mut().zip(words) {
            *m = mark(<[u8; 8]>::try_from(w).map_or(0, u64::from_le_bytes));
        }
        if !rest.is_empty() {
            // Padded with spaces: neither marked nor control.
            let mut bytes = [b' '; 8];
            bytes[..rest.len()].copy_from_slice(rest);
            if let Some(last) = self.words.last_mut() {
                *last = mark(u64::from_le_bytes(bytes));
            }
        }
        control == 0
    }
}

/// The high bit of each zero byte of `v`, exactly (no false marks above a zero byte).
fn zero_bytes(v: u64) -> u64 {
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    !(((v & LOW7).wrapping_add(LOW7)) | v | LOW7)
}

struct Scan<'a, 'm> {
    text: &'a str,
    i: usize,
    marks: &'m [u64],
}

/// The top-level fields, as bits of a "seen" mask (serde refuses a field named twice).
const TS: u16 = 1;
const CLIENT: u16 = 1 << 1;
const QNAME: u16 = 1 << 2;
const DECISION: u16 = 1 << 3;
const AREAS: u16 = 1 << 4;
const PATTERNS: u16 = 1 << 5;
const RCODE: u16 = 1 << 6;
const CNAME: u16 = 1 << 7;
const DECIDED_BY: u16 = 1 << 8;

impl<'a> Scan<'a, '_> {
    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.i).copied()
    }

    /// Skips spaces (the only whitespace a line with no control byte can have).
    fn ws(&mut self) {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
    }

    /// Skips whitespace, then takes `c`.
    fn eat(&mut self, c: u8) -> Option<()> {
        self.ws();
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// After whitespace: `true` at `c` (taken), `false` at `,` (taken), else `None`.
    fn end_or_comma(&mut self, end: u8) -> Option<bool> {
        self.ws();
        match self.peek()? {
            b',' => {
                self.i += 1;
                Some(false)
            }
            c if c == end => {
                self.i += 1;
                Some(true)
            }
            _ => None,
        }
    }

    /// `{`, then `true` when the object is empty (its `}` taken).
    fn open(&mut self, open: u8, close: u8) -> Option<bool> {
        self.eat(open)?;
        self.ws();
        if self.peek()? == close {
            self.i += 1;
            return Some(true);
        }
        Some(false)
    }

    /// A key without escapes and its `:`.
    fn key(&mut self) -> Option<&'a str> {
        match self.string()? {
            Cow::Borrowed(k) => {
                self.eat(b':')?;
                Some(k)
            }
            Cow::Owned(_) => None,
        }
    }

    /// The object's fields, `f` reading each value (its key given).
    fn object(&mut self, mut f: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        if self.open(b'{', b'}')? {
            return Some(());
        }
        loop {
            self.ws();
            let k = self.key()?;
            f(self, k)?;
            if self.end_or_comma(b'}')? {
                return Some(());
            }
        }
    }

    /// The array's items, `f` reading each.
    fn array(&mut self, mut f: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        if self.open(b'[', b']')? {
            return Some(());
        }
        loop {
            f(self)?;
            if self.end_or_comma(b']')? {
                return Some(());
            }
        }
    }

    /// `null` (taken): `true`; anything else is left in place.
    fn null(&mut self) -> bool {
        self.ws();
        if self.bytes()[self.i..].starts_with(b"null") {
            self.i += 4;
            return true;
        }
        false
    }

    /// A string, borrowed unless it holds escapes.
    fn string(&mut self) -> Option<Cow<'a, str>> {
        self.eat(b'"')?;
        let start = self.i;
        let end = self.plain_run();
        if self.bytes().get(end)? == &b'"' {
            self.i = end + 1;
            return self.text.get(start..end).map(Cow::Borrowed);
        }
        let mut out = String::with_capacity(end - start + 8);
        out.push_str(self.text.get(start..end)?);
        self.i = end;
        loop {
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(Cow::Owned(out));
                }
                b'\\' => {
                    self.i += 1;
                    out.push(self.escape()?);
                }
                _ => {
                    let run = self.plain_run();
                    out.push_str(self.text.get(self.i..run)?);
                    self.i = run;
                }
            }
        }
    }

    /// The end of the run from `self.i` of bytes that need no attention in a string:
    /// the position of the next `"` or `\` (or the line's end).
    fn plain_run(&self) -> usize {
        let len = self.text.len();
        let mut w = self.i / 8;
        let Some(&first) = self.marks.get(w) else {
            return len;
        };
        let mut bits = first & (u64::MAX << ((self.i % 8) * 8));
        loop {
            if bits != 0 {
                return w * 8 + bits.trailing_zeros() as usize / 8;
            }
            w += 1;
            match self.marks.get(w) {
                Some(&m) => bits = m,
                None => return len,
            }
        }
    }

    /// The character of an escape, after its `\`. A `\u` of a surrogate gives up (serde
    /// pairs them or refuses a lone one).
    fn escape(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.i += 1;
        Some(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let hex = self.text.get(self.i..self.i + 4)?;
                if !hex.bytes().all(|h| h.is_ascii_hexdigit()) {
                    return None;
                }
                self.i += 4;
                char::from_u32(u32::from_str_radix(hex, 16).ok()?)?
            }
            _ => return None,
        })
    }

    /// Skips any value, checking its grammar.
    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            b'-' | b'0'..=b'9' => self.number(),
            _ => None,
        }
    }

    /// Skips a string without copying it (escapes checked as serde_json checks them).
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            self.i = self.plain_run();
            match self.peek()? {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => {
                    self.i += 1;
                    match self.peek()? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 1,
                        b'u' => {
                            let hex = self.bytes().get(self.i + 1..self.i + 5)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return None;
                            }
                            self.i += 5;
                        }
                        _ => return None,
                    }
                }
                // The line's end.
                _ => return None,
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.bytes()[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
    fn number(&mut self) -> Option<()> {
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => {
                self.i += 1;
                if self.peek().is_some_and(|c| c.is_ascii_digit()) {
                    return None;
                }
            }
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.some_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.some_digits()?;
        }
        Some(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn some_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// Takes `lit` if the line goes on with exactly these bytes.
    #[inline]
    fn lit<const N: usize>(&mut self, lit: &[u8; N]) -> Option<()> {
        let next: &[u8; N] = self.bytes().get(self.i..self.i + N)?.try_into().ok()?;
        (next == lit).then(|| self.i += N)
    }

    /// The line's object in the daemon's own layout (`write_json` in the server's
    /// querylog.rs: these keys in this order, no whitespace), its keys taken as the bytes
    /// expected instead of being read and looked up. Each value is read as in
    /// [`top`](Self::top), so a line this reads gives what `top` gives; `None` at the
    /// first difference, and the caller reads the line again with `top`.
    fn daemon(&mut self, out: &mut LogLine<'a>) -> Option<()> {
        self.lit(b"{\"ts\":")?;
        out.ts = self.required()?;
        self.lit(b",\"client\":")?;
        out.client = self.required()?;
        self.lit(b",\"proto\":")?;
        self.skip(1)?;
        self.lit(b",\"qname\":")?;
        out.qname = self.required()?;
        self.lit(b",\"qtype\":")?;
        self.skip(1)?;
        self.lit(b",\"decision\":")?;
        out.decision = self.required()?;
        self.lit(b",\"decided_by\":")?;
        out.decided_by = if self.null() {
            None
        } else {
            Some(self.decided_by(1)?)
        };
        self.lit(b",\"areas\":")?;
        out.areas.clear();
        self.array(|s| {
            out.areas.push(s.area()?);
            Some(())
        })?;
        self.lit(b",\"patterns\":")?;
        out.patterns.clear();
        self.array(|s| {
            out.patterns.push(s.required()?);
            Some(())
        })?;
        self.lit(b",\"impact\":")?;
        self.skip(1)?;
        self.lit(b",\"impact_scope\":")?;
        self.skip(1)?;
        self.lit(b",\"rcode\":")?;
        out.rcode = self.required()?;
        self.lit(b",\"answers\":")?;
        self.skip(1)?;
        self.lit(b",\"cached\":")?;
        self.skip(1)?;
        self.lit(b",\"upstream\":")?;
        self.skip(1)?;
        self.lit(b",\"duration_us\":")?;
        self.skip(1)?;
        out.cname = match self.lit(b",\"cname\":") {
            Some(()) if !self.null() => Some(self.required()?),
            _ => None,
        };
        self.lit(b"}")?;
        Some(())
    }

    /// A string that must be one (serde's `Cow<str>` and `Str` refuse anything else).
    fn required(&mut self) -> Option<Cow<'a, str>> {
        self.ws();
        if self.peek()? != b'"' {
            return None;
        }
        self.string()
    }

    /// The line's object.
    fn top(&mut self) -> Option<LogLine<'a>> {
        let mut seen = 0u16;
        let mut once = |bit: u16| -> Option<()> {
            let first = seen & bit == 0;
            seen |= bit;
            first.then_some(())
        };
        let (mut ts, mut client, mut qname, mut decision) = (None, None, None, None);
        let mut areas = Vec::new();
        let mut patterns = Vec::new();
        let mut rcode = Cow::Borrowed("");
        let mut cname = None;
        let mut decided_by = None;
        self.object(|s, key| {
            match key {
                "ts" => {
                    once(TS)?;
                    ts = Some(s.required()?);
                }
                "client" => {
                    once(CLIENT)?;
                    client = Some(s.required()?);
                }
                "qname" => {
                    once(QNAME)?;
                    qname = Some(s.required()?);
                }
                "decision" => {
                    once(DECISION)?;
                    decision = Some(s.required()?);
                }
                "areas" => {
                    once(AREAS)?;
                    s.ws();
                    s.array(|s| {
                        areas.push(s.area()?);
                        Some(())
                    })?;
                }
                "patterns" => {
                    once(PATTERNS)?;
                    s.ws();
                    s.array(|s| {
                        patterns.push(s.required()?);
                        Some(())
                    })?;
                }
                "rcode" => {
                    once(RCODE)?;
                    rcode = s.required()?;
                }
                "cname" => {
                    once(CNAME)?;
                    cname = if s.null() { None } else { Some(s.required()?) };
                }
                "decided_by" => {
                    once(DECIDED_BY)?;
                    decided_by = if s.null() {
                        None
                    } else {
                        Some(s.decided_by(1)?)
                    };
                }
                _ => s.skip(1)?,
            }
            Some(())
        })?;
        Some(LogLine {
            ts: ts?,
            client: client?,
            qname: qname?,
            decision: decision?,
            areas,
            patterns,
            rcode,
            cname,
            decided_by,
        })
    }

    /// An entry of `areas`: a name, or an object with `name` (and `id`).
    fn area(&mut self) -> Option<AreaItem<'a>> {
        self.ws();
        match self.peek()? {
            b'"' => Some(AreaItem {
                id: None,
                name: self.string()?,
            }),
            b'{' => {
                let start = self.i;
                if let Some(area) = self.daemon_area() {
                    return Some(area);
                }
                self.i = start;
                let (mut id, mut name) = (None, None);
                self.object(|s, key| {
                    match key {
                        "id" => id = Some(s.required()?),
                        "name" => name = Some(s.required()?),
                        _ => s.skip(2)?,
                    }
                    Some(())
                })?;
                Some(AreaItem { id, name: name? })
            }
            _ => None,
        }
    }

    /// An area object as the daemon writes it, `{"id":…,"name":…}`; `None` (and the
    /// caller reads it again) at the first difference.
    fn daemon_area(&mut self) -> Option<AreaItem<'a>> {
        self.lit(b"{\"id\":")?;
        let id = self.required()?;
        self.lit(b",\"name\":")?;
        let name = self.required()?;
        self.lit(b"}")?;
        Some(AreaItem { id: Some(id), name })
    }

    /// An area's `decided_by` as the daemon writes it,
    /// `{"kind":"area","id":…,"name":…,"pattern":…,"action":…}`; `None` (and the caller
    /// reads it again) at the first difference.
    fn daemon_decided_by(&mut self, depth: u32) -> Option<DecidedBy<'a>> {
        self.lit(b"{\"kind\":\"area\",\"id\":")?;
        let id = self.required()?;
        self.lit(b",\"name\":")?;
        let name = self.required()?;
        self.lit(b",\"pattern\":")?;
        let pattern = self.required()?;
        self.lit(b",\"action\":")?;
        self.skip(depth + 1)?;
        self.lit(b"}")?;
        let kind = Cow::Borrowed("area");
        Some(DecidedBy::flatten(
            kind,
            Some(id),
            Some(name),
            Some(pattern),
            None,
        ))
    }

    /// A `decided_by` object, flattened as the serde path flattens it.
    fn decided_by(&mut self, depth: u32) -> Option<DecidedBy<'a>> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        let start = self.i;
        if let Some(by) = self.daemon_decided_by(depth) {
            return Some(by);
        }
        self.i = start;
        let (mut kind, mut id, mut name, mut pattern, mut inner) = (None, None, None, None, None);
        self.object(|s, key| {
            match key {
                "kind" => kind = Some(s.required()?),
                "id" => id = Some(s.required()?),
                "name" => name = Some(s.required()?),
                "pattern" | "entry" => pattern = Some(s.required()?),
                "inner" => inner = Some(s.decided_by(depth + 1)?),
                _ => s.skip(depth + 1)?,
            }
            Some(())
        })?;
        Some(DecidedBy::flatten(kind?, id, name, pattern, inner))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::logline::parse_with_serde;

    /// A line as the daemon writes it today.
    const DAEMON: &str = r#"{"ts":"2026-11-26T01:02:03.456789Z","client":"192.168.56.101","proto":"udp","qname":"watson.events.data.microsoft.com","qtype":"A","decision":"block","decided_by":{"kind":"area","id":"diagnostic-data","name":"Diagnostic Data","pattern":"watson.*.microsoft.com","action":"block"},"areas":[{"id":"diagnostic-data","name":"Diagnostic Data"}],"patterns":["watson.*.microsoft.com"],"impact":["This means error reporting information won\u2019t be sent \"quoted\" \\ \/ \t"],"impact_scope":null,"rcode":"NOERROR","answers":1,"cached":false,"upstream":null,"duration_us":41}"#;

    /// More lines of the daemon's layout: a name no area lists, and a block decided on the
    /// CNAME chain by a group's area (the top-level `cname` last).
    const DAEMON_PASS: &str = r#"{"ts":"2026-11-26T01:02:04Z","client":"::1","proto":"tcp","qname":"host1.example.org","qtype":"HTTPS","decision":"pass","decided_by":null,"areas":[],"patterns":[],"impact":[],"impact_scope":null,"rcode":"NXDOMAIN","answers":0,"cached":true,"upstream":"udp://192.168.56.1:53","duration_us":20000}"#;
    const DAEMON_CNAME: &str = r#"{"ts":"2026-11-26T01:02:05.5Z","client":"10.0.0.7","proto":"udp","qname":"cdn.example.test","qtype":"AAAA","decision":"block","decided_by":{"kind":"cname","name":"t.test","inner":{"kind":"group","name":"lab","inner":{"kind":"area","id":"a","name":"Area A","pattern":"t.test","action":"block"}}},"areas":[{"id":"a","name":"Area A"},{"id":"b","name":"B \"2\""}],"patterns":["t.test","*.test"],"impact":["x","y"],"impact_scope":"mixed","rcode":"NOERROR","answers":1,"cached":false,"upstream":null,"duration_us":7,"cname":"t.test"}"#;

    /// Holds the scan to the serde path on `text`: when the scan decides, serde gives the
    /// same line; when serde refuses the line, the scan does not decide. Returns whether
    /// the scan decided.
    fn agrees(text: &str) -> bool {
        let mut read = LogLine::default();
        let fast = line(text, &mut Marks::default(), &mut read).then_some(read);
        match (&fast, parse_with_serde(text)) {
            (Some(f), Ok(s)) => assert_eq!(f, &s, "{text}"),
            (Some(f), Err(e)) => panic!("the scan read {f:?} where serde says {e}: {text}"),
            (None, _) => {}
        }
        fast.is_some()
    }

    #[test]
    fn the_scan_reads_what_serde_reads_and_gives_up_where_it_must() {
        let deep = |n: usize| {
            format!(
                r#"{{"ts":"t","client":"c","qname":"q","decision":"pass","x":{}1{}}}"#,
                "[".repeat(n),
                "]".repeat(n)
            )
        };
        let decided = [
            DAEMON.to_owned(),
            // The older format: areas as names, no decided_by.
            r#"{"ts":"t","client":"::1","qname":"a.test","decision":"log","areas":["Area A","B"],"patterns":["*.test"],"rcode":"NXDOMAIN"}"#.to_owned(),
            // Escapes in the fields read; raw UTF-8; spaces between the tokens.
            r#" { "ts" : "t" , "client":"c","qname":"caf\u00e9.\"x\"\n.test","decision":"pass","areas":[ {"id":"l\u0061b","name":"Lab \"T\" é 🙂","n":[1,2]} ],"patterns":["\/p"]}  "#.to_owned(),
            // decided_by: group, cname, list (`entry`), rule; keys in any order.
            r#"{"decided_by":{"inner":{"kind":"group","name":"g","inner":{"action":"block","pattern":"t.test","name":"Lab","id":"lab","kind":"area"}},"kind":"cname","name":"t.test"},"ts":"t","client":"c","qname":"q","decision":"block","cname":"t.test"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"block","decided_by":{"kind":"list","label":"ads","line":12,"entry":"q","action":"block"},"cname":null}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"block","decided_by":{"kind":"rule","note":null,"pattern":"*.q","action":"block"}}"#.to_owned(),
            // Duplicate keys inside an area or decided_by: the last one counts, as in serde.
            r#"{"ts":"t","client":"c","qname":"q","decision":"block","areas":[{"name":"a","name":"b"}],"decided_by":{"kind":"rule","pattern":"1","entry":"2"}}"#.to_owned(),
            // Unknown fields of every JSON type, numbers of every form.
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","n":[0,-0,12,-3.25,1e9,2E-3,4.5e+6,true,false,null,{},[],{"a":{"b":[{}]}}],"dup":1,"dup":2}"#.to_owned(),
            deep(MAX_DEPTH as usize - 2),
        ];
        for text in &decided {
            assert!(agrees(text), "the scan gives up on {text}");
        }
        let undecided = [
            // Serde reads these, the scan leaves them to it.
            "{\t\"ts\":\"t\",\r\n\"client\":\"c\",\"qname\":\"q\",\"decision\":\"pass\"}\n"
                .to_owned(),
            r#"{"ts":"t","client":"c","qname":"\ud83d\ude00.test","decision":"pass"}"#.to_owned(),
            r#"{"t\u0073":"t","client":"c","qname":"q","decision":"pass"}"#.to_owned(),
            deep(MAX_DEPTH as usize + 10),
            // Broken or not a query line: serde says why.
            r#"{"ts":"t","ts":"t","client":"c","qname":"q","decision":"pass"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass",}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass"} x"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":5,"decision":"pass"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":null,"decision":"pass"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","areas":null}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","areas":[5]}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","areas":[{"id":"x"}]}"#
                .to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","patterns":[null]}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","rcode":null}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","cname":1}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","decided_by":{"id":"x"}}"#
                .to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","decided_by":[]}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":01}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":1.}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":-}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":1e}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":tru}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":"\q"}"#.to_owned(),
            r#"{"ts":"t","client":"c","qname":"q","decision":"pass","x":"\u12g4"}"#.to_owned(),
            "{\"ts\":\"t\",\"client\":\"c\",\"qname\":\"q\u{1}\",\"decision\":\"pass\"}".to_owned(),
            "{\"ts\":\"t\",\"client\":\"c\",\"qname\":\"q\",\"decision\":\"pass\",\"x\":\"\t\"}"
                .to_owned(),
            r#"["t","c","q","pass"]"#.to_owned(),
            deep(200),
            "{".to_owned(),
            r#"{"ts":"#.to_owned(),
            String::new(),
        ];
        for text in &undecided {
            assert!(!agrees(text), "the scan decides {text}");
        }
    }

    #[test]
    fn the_scan_agrees_with_serde_on_every_mutation_of_a_daemon_line() {
        // Small deterministic generator (xorshift): the same lines every run.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let alphabet: Vec<char> =
            r#"{}[]":,\/ u0e9-+.tfnl\x"#.chars().chain(['\u{1}', 'é']).collect();
        let mut decided = 0;
        for n in 0..30_000 {
            let base = [DAEMON, DAEMON_PASS, DAEMON_CNAME][n % 3];
            let mut chars: Vec<char> = base.chars().collect();
            for _ in 0..=next() % 3 {
                let at = (next() as usize) % chars.len();
                let c = alphabet[(next() as usize) % alphabet.len()];
                match next() % 3 {
                    0 => chars[at] = c,
                    1 => chars.insert(at, c),
                    _ => {
                        chars.remove(at);
                    }
                }
            }
            let text: String = chars.into_iter().collect();
            decided += usize::from(agrees(&text));
        }
        // Most mutations land in the skipped `impact` text or keep the line valid.
        assert!(decided > 1_500, "{decided}");
    }

    #[test]
    fn the_daemon_s_lines_are_read_in_its_layout_and_as_the_general_scan_reads_them() {
        // Beside the samples above, a line from the daemon's own writer: if its layout
        // drifts from the one `daemon` expects, this fails instead of every report
        // quietly taking the general walk.
        let mut written = String::new();
        winsink_server::fuzzing::write_sample_line(&mut written, winsink_server::LogFormat::Json);
        let written = written.trim_end_matches('\n');
        for text in [DAEMON, DAEMON_PASS, DAEMON_CNAME, written] {
            let mut marks = Marks::default();
            assert!(marks.mark(text.as_bytes()));
            let scan = |i| Scan {
                text,
                i,
                marks: &marks.words,
            };
            let (mut layout, mut general) = (scan(0), scan(0));
            let mut read = LogLine::default();
            assert!(
                layout.daemon(&mut read).is_some(),
                "not in the layout: {text}"
            );
            assert_eq!(Some(read), general.top(), "{text}");
            assert_eq!(layout.i, text.len());
            assert!(agrees(text));
        }
    }

    #[test]
    fn marks_are_exactly_the_quotes_and_backslashes_and_control_bytes_are_found() {
        let mut marks = Marks::default();
        let line = "abcdefgh_\"x\\y\"é🙂~\u{7f}_ \"";
        assert!(marks.mark(line.as_bytes()));
        let marked: Vec<usize> = (0..line.len())
            .filter(|&i| marks.words[i / 8] >> ((i % 8) * 8 + 7) & 1 == 1)
            .collect();
        let want: Vec<usize> = line
            .bytes()
            .enumerate()
            .filter(|(_, c)| *c == b'"' || *c == b'\\')
            .map(|(i, _)| i)
            .collect();
        assert_eq!(marked, want);
        let plain = "x".repeat(40);
        for at in 0..40 {
            for c in [0u8, b'\t', b'\n', b'\r', 0x1f] {
                let mut b = plain.clone().into_bytes();
                b[at] = c;
                assert!(!marks.mark(&b), "{c:#x} at {at}");
            }
        }
        assert!(marks.mark(plain.as_bytes()));
    }
}
