//! External name lists: hosts files, plain lists and adblock-style lists.
//!
//! # Formats
//!
//! - **hosts**: `ADDRESS NAME [NAME...]`, e.g. `0.0.0.0 ads.example`,
//!   `127.0.0.1 a.example b.example`, `:: ads.example`. Any address is accepted (the list's
//!   action applies, not the address). Each name matches exactly that name. The entries
//!   every hosts file carries for the machine itself (`localhost`, `broadcasthost`,
//!   `ip6-localhost`, `0.0.0.0`, ...) are skipped, not counted as malformed.
//! - **plain**: one pattern per line, `ads.example` (exactly that name) or `*.ads.example`
//!   (every name below it), with the matcher's syntax.
//! - **adblock**: `||ads.example^` matches `ads.example` *and every name below it* (as
//!   AdGuard Home and uBlock read it); `||*.ads.example^` only the names below it.
//!   Rules with options (`$third-party`), exception rules (`@@||...`) and cosmetic rules
//!   (`##`) are counted as malformed: they have no meaning for DNS that could be honoured
//!   here. `[Adblock Plus 2.0]` headers are ignored.
//! - **auto** (the default): each line is read by its look: `||`/`@@`/`[` → adblock, a
//!   first word that is an IP address → hosts, anything else → plain.
//!
//! In every format blank lines and comments are ignored: `#` starts a comment anywhere
//! (after whitespace), `!` starts a comment line in adblock lists. Lines may end in LF or
//! CRLF; the file is UTF-8 (a BOM is ignored) or UTF-16 with a BOM. A malformed line is
//! counted and reported with its line number; it never stops the load. Malformed are:
//! names the matcher rejects, bytes that are not UTF-8, and entries that would match
//! every name (`*`, `*.`, `||*^`): in a downloaded list those are mistakes, not intent
//! (a `[[rules]]` entry can still say `*`). A hosts line with one bad name among good
//! ones loads the good ones and is reported for the bad one.
//!
//! A list with no valid entry at all, or with more malformed lines than valid ones, is
//! refused (the load fails, naming the file and both counts): a download that failed
//! half-way, an HTML error page or binary garbage looks exactly like that, and loading
//! it would unblock everything the list blocked. `allow_empty = true` on the list
//! accepts it.

use std::borrow::Cow;
use std::io::BufRead;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

/// The syntax of a list file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ListFormat {
    /// Decide per line by its look. The default.
    #[default]
    Auto,
    /// `/etc/hosts` syntax: `0.0.0.0 name [name...]`.
    Hosts,
    /// One name or pattern per line.
    Plain,
    /// `||name^` rules.
    Adblock,
}

impl ListFormat {
    /// `"auto"`, `"hosts"`, `"plain"` or `"adblock"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Hosts => "hosts",
            Self::Plain => "plain",
            Self::Adblock => "adblock",
        }
    }
}

/// A malformed line of a list file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadLine {
    /// 1-based line number.
    pub line: usize,
    /// The line as written (trimmed, at most 200 characters).
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

/// How many malformed lines of one list are kept with their text; the rest are counted.
pub const MAX_BAD_LINES_KEPT: usize = 10;

/// What one list entry adds to the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Item<'a> {
    /// A pattern in matcher syntax, as written.
    Pattern(&'a str),
    /// An adblock `||name^`: `name` and `*.name`.
    DomainAndBelow(&'a str),
}

/// Counts of one list's load.
#[derive(Debug, Default)]
pub(crate) struct ListStats {
    pub(crate) loaded: usize,
    pub(crate) skipped: usize,
    pub(crate) bad: usize,
    pub(crate) bad_lines: Vec<BadLine>,
}

impl ListStats {
    fn bad(&mut self, line: usize, text: &str, reason: impl Into<String>) {
        self.bad += 1;
        if self.bad_lines.len() < MAX_BAD_LINES_KEPT {
            self.bad_lines.push(BadLine {
                line,
                text: text.chars().take(200).collect(),
                reason: reason.into(),
            });
        }
    }
}

/// Whether a list with `valid` entries and `malformed` lines is refused as a failed
/// download (see the module docs): no valid entry at all, or more malformed than valid.
pub fn is_suspect(valid: usize, malformed: usize) -> bool {
    valid == 0 || malformed > valid
}

/// What a list's text holds, counted without building a matcher: what a download is
/// checked with before it replaces the cached copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ListCounts {
    /// Entries that would load.
    pub valid: usize,
    /// Malformed lines.
    pub malformed: usize,
}

impl ListCounts {
    /// Counts the entries of a list's bytes (decoded as a list file is) in `format`.
    pub fn of(bytes: &[u8], format: ListFormat) -> Self {
        // The reader a list file is loaded with, so the counts are the load's.
        let stats = read(bytes, format, |_, _, item| {
            let name = match item {
                Item::Pattern(p) | Item::DomainAndBelow(p) => p,
            };
            winsink_matcher::normalize_pattern(name)
                .map(drop)
                .map_err(|e| e.kind.to_string())
        })
        .unwrap_or_default();
        Self {
            valid: stats.loaded,
            malformed: stats.bad,
        }
    }

    /// Whether a list like this is refused as a failed download ([`is_suspect`]).
    pub fn is_suspect(self) -> bool {
        is_suspect(self.valid, self.malformed)
    }
}

/// Names that hosts files map for the machine itself, not for blocking.
const HOSTS_SELF_NAMES: &[&str] = &[
    "localhost",
    "localhost.localdomain",
    "local",
    "broadcasthost",
    "ip6-localhost",
    "ip6-loopback",
    "ip6-localnet",
    "ip6-mcastprefix",
    "ip6-allnodes",
    "ip6-allrouters",
    "ip6-allhosts",
    "0.0.0.0",
];

/// The text of a list file's bytes.
///
/// UTF-8, with or without a byte-order mark, is the norm; a UTF-16 file with its BOM (what
/// some Windows editors save) is decoded too. Bytes that are not valid UTF-8 are replaced
/// with U+FFFD rather than refusing the whole file, so that a stray Latin-1 byte costs
/// one malformed line (or nothing, in a comment), as every other malformed line does.
pub(crate) fn decode(bytes: &[u8]) -> Cow<'_, str> {
    let utf16 = |bytes: &[u8], unit: fn([u8; 2]) -> u16| {
        let units = bytes
            .chunks(2)
            .map(|c| unit([c[0], *c.get(1).unwrap_or(&0)]));
        char::decode_utf16(units)
            .map(|c| c.unwrap_or(char::REPLACEMENT_CHARACTER))
            .collect::<String>()
    };
    if let Some(rest) = bytes.strip_prefix(b"\xff\xfe") {
        return Cow::Owned(utf16(rest, u16::from_le_bytes));
    }
    if let Some(rest) = bytes.strip_prefix(b"\xfe\xff") {
        return Cow::Owned(utf16(rest, u16::from_be_bytes));
    }
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    // `from_utf8` validates valid text faster than the lossy decoder walks it.
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(bytes),
    }
}

/// Parses a list, calling `add(line, text, item)` for every entry; `line` is its 1-based
/// line number, `text` the entry as written (what explain shows); `add` returns the
/// matcher's complaint for a bad pattern.
#[cfg(test)]
pub(crate) fn parse(
    text: &str,
    format: ListFormat,
    mut add: impl FnMut(usize, &str, Item<'_>) -> Result<(), String>,
) -> ListStats {
    let mut stats = ListStats::default();
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    for (i, raw) in text.lines().enumerate() {
        parse_line(i + 1, raw, format, &mut stats, &mut add);
    }
    stats
}

/// [`parse`] over a list file's bytes as they are read, one line at a time, so that a
/// million-name list is never held as text: each line's entries go to `add` (the
/// matcher) before the next line is read. The same decoding as [`decode`]: a UTF-8 BOM is
/// skipped, bytes that are not UTF-8 become U+FFFD (line by line, which gives the same
/// text, since a newline ends every invalid sequence), and a UTF-16 file (rare, and
/// recognised by its BOM) is read whole and decoded.
pub(crate) fn read(
    mut file: impl BufRead,
    format: ListFormat,
    mut add: impl FnMut(usize, &str, Item<'_>) -> Result<(), String>,
) -> std::io::Result<ListStats> {
    let mut stats = ListStats::default();
    let head = file.fill_buf()?;
    if head.starts_with(b"\xff\xfe") || head.starts_with(b"\xfe\xff") {
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let text = decode(&bytes);
        let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
        for (i, raw) in text.lines().enumerate() {
            parse_line(i + 1, raw, format, &mut stats, &mut add);
        }
        return Ok(stats);
    }
    if head.starts_with(b"\xef\xbb\xbf") {
        file.consume(3);
    }
    let mut buf = Vec::with_capacity(256);
    let mut line_no = 0;
    loop {
        buf.clear();
        if file.read_until(b'\n', &mut buf)? == 0 {
            return Ok(stats);
        }
        line_no += 1;
        let bytes = buf.strip_suffix(b"\n").unwrap_or(&buf);
        let text = String::from_utf8_lossy(bytes);
        let raw = if line_no == 1 {
            text.strip_prefix('\u{feff}').unwrap_or(&text)
        } else {
            &text
        };
        parse_line(line_no, raw, format, &mut stats, &mut add);
    }
}

/// One line of a list, `line_no` counted from 1.
fn parse_line(
    line_no: usize,
    raw: &str,
    format: ListFormat,
    stats: &mut ListStats,
    add: &mut impl FnMut(usize, &str, Item<'_>) -> Result<(), String>,
) {
    let line = raw.trim();
    if line.is_empty() {
        return;
    }
    let format = match format {
        ListFormat::Auto => detect(line),
        f => f,
    };
    let mut add = |text: &str, item: Item<'_>| add(line_no, text, item);
    let result = match format {
        ListFormat::Adblock => adblock_line(line, stats, &mut add),
        ListFormat::Hosts => hosts_line(line, stats, &mut add),
        ListFormat::Plain | ListFormat::Auto => plain_line(line, stats, &mut add),
    };
    if let Err(reason) = result {
        stats.bad(line_no, line, reason);
    }
}

fn detect(line: &str) -> ListFormat {
    let b = line.as_bytes();
    if b.starts_with(b"||") || b.starts_with(b"@@") || b[0] == b'!' || b[0] == b'[' {
        return ListFormat::Adblock;
    }
    let first = line.split_ascii_whitespace().next().unwrap_or("");
    if is_address(first) {
        ListFormat::Hosts
    } else {
        ListFormat::Plain
    }
}

fn is_address(word: &str) -> bool {
    // A scoped IPv6 address (`fe80::1%lo0 localhost`, in StevenBlack's header) is an
    // address too.
    let word = match word.split_once('%') {
        Some((address, zone)) if !zone.is_empty() => address,
        _ => word,
    };
    // The common cases first: parsing an address costs more than comparing a string.
    matches!(word, "0.0.0.0" | "127.0.0.1" | "::" | "::1")
        || (word.len() >= 2
            && word
                .bytes()
                .all(|c| c.is_ascii_hexdigit() || c == b'.' || c == b':')
            && word.parse::<IpAddr>().is_ok())
}

fn strip_comment(line: &str) -> &str {
    match line.find('#') {
        Some(0) => "",
        // A `#` glued to a word (`name#x`) is part of it, and the matcher rejects it.
        Some(i) if line.as_bytes()[i - 1].is_ascii_whitespace() => line[..i].trim_end(),
        _ => line,
    }
}

type Add<'f> = dyn FnMut(&str, Item<'_>) -> Result<(), String> + 'f;

fn hosts_line(line: &str, stats: &mut ListStats, add: &mut Add<'_>) -> Result<(), String> {
    let line = strip_comment(line);
    let mut words = line.split_ascii_whitespace();
    let Some(address) = words.next() else {
        return Ok(());
    };
    if !is_address(address) {
        return Err(format!(
            "`{address}` is not an IP address (hosts format: ADDRESS NAME...)"
        ));
    }
    // One bad name does not cost the line's other names: each is loaded or not on its
    // own, and the line is reported once, with its first complaint.
    let mut any = false;
    let mut first_error = None;
    for name in words {
        any = true;
        if HOSTS_SELF_NAMES.contains(&name) || is_address(name) {
            stats.skipped += 1;
            continue;
        }
        let added = if name.contains('*') {
            Err("wildcards are not hosts syntax (use a plain list)".to_owned())
        } else {
            add(name, Item::Pattern(name))
        };
        match added {
            Ok(()) => stats.loaded += 1,
            Err(e) => {
                first_error.get_or_insert_with(|| format!("`{name}`: {e}"));
            }
        }
    }
    match (any, first_error) {
        (false, _) => Err("an address without a name".to_owned()),
        (true, Some(e)) => Err(e),
        (true, None) => Ok(()),
    }
}

/// A list entry must name some domain: `*`, `*.` or `**` would match every name, which
/// in a downloaded list is a mistake that would sinkhole the whole lab.
fn names_a_domain(pattern: &str) -> Result<(), String> {
    if pattern.bytes().all(|b| b == b'*' || b == b'.') {
        Err("matches every name; a list entry must name a domain".to_owned())
    } else {
        Ok(())
    }
}

fn plain_line(line: &str, stats: &mut ListStats, add: &mut Add<'_>) -> Result<(), String> {
    let line = strip_comment(line);
    if line.is_empty() {
        return Ok(());
    }
    if line.contains(char::is_whitespace) {
        return Err("more than one word (plain format: one name per line)".to_owned());
    }
    names_a_domain(line)?;
    add(line, Item::Pattern(line))?;
    stats.loaded += 1;
    Ok(())
}

fn adblock_line(line: &str, stats: &mut ListStats, add: &mut Add<'_>) -> Result<(), String> {
    if line.starts_with('!') || line.starts_with('#') && !line.starts_with("##") {
        return Ok(());
    }
    if line.starts_with('[') && line.ends_with(']') {
        return Ok(());
    }
    if line.starts_with("@@") {
        return Err(
            "exception rules (`@@`) are not supported; put the name in an allow list".to_owned(),
        );
    }
    if line.contains("##") || line.contains("#@#") || line.contains("#?#") {
        return Err("cosmetic (element hiding) rules have no meaning for DNS".to_owned());
    }
    let Some(rest) = line.strip_prefix("||") else {
        return Err("not an adblock `||name^` rule".to_owned());
    };
    let Some(name) = rest.strip_suffix('^').or_else(|| rest.strip_suffix("^|")) else {
        return Err(if rest.contains('$') {
            "rule options (`$...`) are not supported".to_owned()
        } else {
            "an adblock rule must end with `^`".to_owned()
        });
    };
    if name.contains(['^', '/', '|', '$']) {
        return Err("only `||name^` and `||*.name^` rules are supported".to_owned());
    }
    names_a_domain(name)?;
    if name.starts_with("*.") {
        add(line, Item::Pattern(name))?;
    } else {
        add(line, Item::DomainAndBelow(name))?;
    }
    stats.loaded += 1;
    Ok(())
}

/// The item of an entry that [`read`] gave as `shown` for a list of `format`. Only the
/// entries' text is kept, and the matcher is built from it in a second pass (sized by
/// the first), so each entry's item is read back from its text: a hosts or plain entry is
/// its pattern; an adblock one (in an `auto` list, one that starts with `||`, as no
/// other entry can) is parsed as [`adblock_line`] did.
pub(crate) fn item_of(format: ListFormat, shown: &str) -> Item<'_> {
    let adblock = match format {
        ListFormat::Adblock => true,
        ListFormat::Auto => shown.starts_with("||"),
        ListFormat::Hosts | ListFormat::Plain => false,
    };
    if !adblock {
        return Item::Pattern(shown);
    }
    let rest = shown.strip_prefix("||").unwrap_or(shown);
    let name = rest
        .strip_suffix('^')
        .or_else(|| rest.strip_suffix("^|"))
        .unwrap_or(rest);
    if name.starts_with("*.") {
        Item::Pattern(name)
    } else {
        Item::DomainAndBelow(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_entry_reads_back_as_the_item_it_was_loaded_as() {
        let text = "0.0.0.0 a.example B.Example.\n\
                    ||c.example^\n\
                    ||*.d.example^\n\
                    ||e.example^|\n\
                    f.example\n\
                    *.g.example\n\
                    ::1 h.example # comment\n";
        for format in [
            ListFormat::Auto,
            ListFormat::Hosts,
            ListFormat::Plain,
            ListFormat::Adblock,
        ] {
            let mut n = 0;
            parse(text, format, |_, shown, item| {
                assert_eq!(item_of(format, shown), item, "{format:?} {shown:?}");
                n += 1;
                Ok(())
            });
            let want = match format {
                ListFormat::Auto => 8,
                ListFormat::Hosts => 3,
                ListFormat::Plain => 5,
                ListFormat::Adblock => 3,
            };
            assert_eq!(n, want, "{format:?}");
        }
    }

    fn run(text: &str, format: ListFormat) -> (Vec<(String, String)>, ListStats) {
        let mut got = Vec::new();
        let stats = parse(text, format, |_, shown, item| {
            let p = match item {
                Item::Pattern(p) => p.to_owned(),
                Item::DomainAndBelow(n) => format!("{n} +below"),
            };
            if p.contains('!') {
                return Err("bad char".to_owned());
            }
            got.push((shown.to_owned(), p));
            Ok(())
        });
        (got, stats)
    }

    fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
            .collect()
    }

    #[test]
    fn hosts_lines_with_several_names_comments_and_self_entries() {
        let text = "# a hosts file\n\
                    127.0.0.1 localhost\n\
                    ::1 localhost ip6-localhost ip6-loopback\n\
                    0.0.0.0 0.0.0.0\n\
                    0.0.0.0 ads.example   # trailing comment\n\
                    127.0.0.1\ta.example b.example\n\
                    :: v6.example\n\
                    \n\
                    255.255.255.255 broadcasthost\n";
        let (got, stats) = run(text, ListFormat::Hosts);
        assert_eq!(
            got,
            pairs(&[
                ("ads.example", "ads.example"),
                ("a.example", "a.example"),
                ("b.example", "b.example"),
                ("v6.example", "v6.example"),
            ])
        );
        assert_eq!((stats.loaded, stats.skipped, stats.bad), (4, 6, 0));
    }

    #[test]
    fn stevenblack_header_is_all_self_entries() {
        let text = "127.0.0.1 localhost\n127.0.0.1 localhost.localdomain\n127.0.0.1 local\n\
                    255.255.255.255 broadcasthost\n::1 localhost\n::1 ip6-localhost\n\
                    ::1 ip6-loopback\nfe80::1%lo0 localhost\nff00::0 ip6-localnet\n\
                    ff00::0 ip6-mcastprefix\nff02::1 ip6-allnodes\nff02::2 ip6-allrouters\n\
                    ff02::3 ip6-allhosts\n0.0.0.0 0.0.0.0\n0.0.0.0 ads.example\n";
        for format in [ListFormat::Hosts, ListFormat::Auto] {
            let (got, stats) = run(text, format);
            assert_eq!(got, pairs(&[("ads.example", "ads.example")]));
            assert_eq!(
                (stats.loaded, stats.skipped, stats.bad),
                (1, 14, 0),
                "{format:?}"
            );
        }
    }

    #[test]
    fn malformed_hosts_lines_are_counted_with_line_numbers() {
        let text = "0.0.0.0 good.example\nnot-an-ip bad.example\n0.0.0.0\n0.0.0.0 *.wild.example\n";
        let (got, stats) = run(text, ListFormat::Hosts);
        assert_eq!(got, pairs(&[("good.example", "good.example")]));
        assert_eq!(stats.bad, 3);
        let lines: Vec<_> = stats.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, [2, 3, 4]);
        assert!(
            stats.bad_lines[0].reason.contains("not an IP address"),
            "{:?}",
            stats.bad_lines
        );
    }

    #[test]
    fn plain_lines() {
        let text = "ads.example\n# comment\n*.track.example # why\ntwo words\n";
        let (got, stats) = run(text, ListFormat::Plain);
        assert_eq!(
            got,
            pairs(&[
                ("ads.example", "ads.example"),
                ("*.track.example", "*.track.example")
            ])
        );
        assert_eq!(stats.bad, 1);
        assert_eq!(stats.bad_lines[0].line, 4);
    }

    #[test]
    fn adblock_lines() {
        let text = "[Adblock Plus 2.0]\n! Title: x\n||ads.example^\n||*.cdn.example^\n\
                    @@||ok.example^\n||opt.example^$third-party\nexample.com##.banner\n\
                    plain.example\n||x.example^|\n";
        let (got, stats) = run(text, ListFormat::Adblock);
        assert_eq!(
            got,
            pairs(&[
                ("||ads.example^", "ads.example +below"),
                ("||*.cdn.example^", "*.cdn.example"),
                ("||x.example^|", "x.example +below"),
            ])
        );
        assert_eq!(stats.bad, 4);
        let lines: Vec<_> = stats.bad_lines.iter().map(|b| b.line).collect();
        assert_eq!(lines, [5, 6, 7, 8]);
    }

    #[test]
    fn auto_reads_each_line_by_its_look() {
        let text = "0.0.0.0 h.example\n||a.example^\np.example\n! comment\n";
        let (got, stats) = run(text, ListFormat::Auto);
        assert_eq!(
            got,
            pairs(&[
                ("h.example", "h.example"),
                ("||a.example^", "a.example +below"),
                ("p.example", "p.example")
            ])
        );
        assert_eq!(stats.bad, 0);
    }

    #[test]
    fn a_rejected_pattern_is_a_bad_line_not_a_failure() {
        let (got, stats) = run("bad!.example\nok.example\n", ListFormat::Plain);
        assert_eq!(got.len(), 1);
        assert_eq!(stats.bad_lines[0].line, 1);
        assert_eq!(stats.bad_lines[0].reason, "bad char");
    }

    #[test]
    fn a_hosts_line_with_one_bad_name_still_loads_its_other_names() {
        let (got, stats) = run(
            "0.0.0.0 a.example bad!.example c.example\n",
            ListFormat::Hosts,
        );
        assert_eq!(
            got,
            pairs(&[("a.example", "a.example"), ("c.example", "c.example")])
        );
        assert_eq!((stats.loaded, stats.bad), (2, 1));
        assert_eq!(stats.bad_lines[0].reason, "`bad!.example`: bad char");
    }

    #[test]
    fn list_entries_that_match_every_name_are_malformed() {
        let text = "*\n*.\n**\nok.example\n";
        let (got, stats) = run(text, ListFormat::Plain);
        assert_eq!(got, pairs(&[("ok.example", "ok.example")]));
        assert_eq!(stats.bad, 3);
        assert!(stats.bad_lines[0].reason.contains("matches every name"));
        let (got, stats) = run("||*^\n||*.^\n||*.ok.example^\n", ListFormat::Adblock);
        assert_eq!(got, pairs(&[("||*.ok.example^", "*.ok.example")]));
        assert_eq!(stats.bad, 2);
    }

    #[test]
    fn crlf_bom_and_blank_lines_are_read_like_plain_lf() {
        let text =
            "\u{feff}# title\r\n\r\n0.0.0.0 a.example\r\n   \t\r\nb.example\r\n||c.example^\r\n";
        let (got, stats) = run(text, ListFormat::Auto);
        assert_eq!(
            got,
            pairs(&[
                ("a.example", "a.example"),
                ("b.example", "b.example"),
                ("||c.example^", "c.example +below")
            ])
        );
        assert_eq!(stats.bad, 0);
    }

    #[test]
    fn a_list_that_is_not_utf8_is_decoded_not_refused() {
        assert_eq!(decode(b"a.example\n"), "a.example\n");
        assert_eq!(decode(b"\xef\xbb\xbfa.example"), "a.example");
        // Latin-1 in a comment and in a name: one replacement character each.
        let text = decode(b"# caf\xe9\nb\xe9d.example\nok.example\n");
        assert_eq!(text, "# caf\u{fffd}\nb\u{fffd}d.example\nok.example\n");
        // UTF-16 with a BOM, as Windows editors save it, both byte orders.
        let le: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "0.0.0.0 x.example\r\n"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        assert_eq!(decode(&le), "0.0.0.0 x.example\r\n");
        let be: Vec<u8> = [0xfe, 0xff]
            .into_iter()
            .chain("x.example".encode_utf16().flat_map(u16::to_be_bytes))
            .collect();
        assert_eq!(decode(&be), "x.example");
    }

    /// Every call `add` gets, and the counts, for a file read line by line.
    fn calls_of_read(bytes: &[u8], format: ListFormat) -> (Vec<(usize, String)>, ListStats) {
        let mut got = Vec::new();
        let stats = read(bytes, format, |line, shown, _| {
            got.push((line, shown.to_owned()));
            Ok(())
        })
        .unwrap();
        (got, stats)
    }

    /// The same for the whole file decoded first (what loading did before it streamed).
    fn calls_of_parse(bytes: &[u8], format: ListFormat) -> (Vec<(usize, String)>, ListStats) {
        let mut got = Vec::new();
        let stats = parse(&decode(bytes), format, |line, shown, _| {
            got.push((line, shown.to_owned()));
            Ok(())
        });
        (got, stats)
    }

    fn same_reading(bytes: &[u8], format: ListFormat) {
        let (a, sa) = calls_of_read(bytes, format);
        let (b, sb) = calls_of_parse(bytes, format);
        assert_eq!(a, b, "{bytes:?}");
        assert_eq!(
            (sa.loaded, sa.skipped, sa.bad, sa.bad_lines),
            (sb.loaded, sb.skipped, sb.bad, sb.bad_lines),
            "{bytes:?}"
        );
    }

    #[test]
    fn a_file_read_line_by_line_reads_like_its_decoded_text() {
        let utf16: Vec<u8> = [0xff, 0xfe]
            .into_iter()
            .chain(
                "0.0.0.0 x.example\r\n\r\n# c\r\n0.0.0.0 y.example"
                    .encode_utf16()
                    .flat_map(u16::to_le_bytes),
            )
            .collect();
        for bytes in [
            &b"0.0.0.0 a.example\n\n  \nb.example\n"[..],
            b"\xef\xbb\xbf\xef\xbb\xbfa.example\r\nb.example",
            b"# caf\xe9\nb\xe9d.example\nok.example\n\xff\xfe",
            b"a.example\rb.example\r\n\r\n||c.example^\n",
            b"",
            b"\n\n\n",
            &utf16,
        ] {
            for format in [ListFormat::Auto, ListFormat::Hosts, ListFormat::Plain] {
                same_reading(bytes, format);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_read_line_by_line_read_like_their_decoded_text(
            bytes in proptest::collection::vec(proptest::sample::select(
                b"ab.0:| ^*#!\r\n\t\xef\xbb\xbf\xe9\xff\xfe".to_vec()), 0..60)
        ) {
            same_reading(&bytes, ListFormat::Auto);
        }
    }

    #[test]
    fn only_the_first_bad_lines_are_kept() {
        let text = "x y z\n".repeat(25);
        let (_, stats) = run(&text, ListFormat::Plain);
        assert_eq!(stats.bad, 25);
        assert_eq!(stats.bad_lines.len(), MAX_BAD_LINES_KEPT);
    }
}
