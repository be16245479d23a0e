//! Cell-level clean-up: destinations, protocols, descriptions, area names and links.
//!
//! These are the normalisation rules of the importer, one function per kind of cell, so
//! that each rule is documented where it is implemented.

use std::fmt;

/// Why a piece of a Destination cell is not an endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotADestination {
    /// The text is a sentence (words separated by spaces), not a host name.
    Prose,
    /// A Markdown link that is not the area's "turn off" link.
    Link,
    /// Something left after clean-up that is not a DNS name pattern.
    Invalid(String),
}

impl fmt::Display for NotADestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Prose => f.write_str("prose, not a host name"),
            Self::Link => f.write_str("a link, not a host name"),
            Self::Invalid(why) => f.write_str(why),
        }
    }
}

/// One destination of a Destination cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    /// The DNS name pattern.
    pub pattern: String,
    /// The text as the page wrote it (trimmed).
    pub original: String,
}

/// Splits a cell at its `<br>`, `<br/>`, `<br />` and `</br>` tags.
pub(crate) fn split_br(cell: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = cell;
    while let Some((start, end)) = find_br(rest) {
        parts.push(&rest[..start]);
        rest = &rest[end..];
    }
    parts.push(rest);
    parts
}

/// The byte range of the first line-break tag in `s`.
fn find_br(s: &str) -> Option<(usize, usize)> {
    let bytes = s.as_bytes();
    let mut from = 0;
    while let Some(pos) = s[from..].find('<') {
        let start = from + pos;
        let mut i = start + 1;
        let skip_ws = |i: &mut usize| {
            while *i < bytes.len() && bytes[*i].is_ascii_whitespace() {
                *i += 1;
            }
        };
        skip_ws(&mut i);
        if bytes.get(i) == Some(&b'/') {
            i += 1;
            skip_ws(&mut i);
        }
        if bytes.len() >= i + 2 && bytes[i..i + 2].eq_ignore_ascii_case(b"br") {
            i += 2;
            skip_ws(&mut i);
            if bytes.get(i) == Some(&b'/') {
                i += 1;
                skip_ws(&mut i);
            }
            if bytes.get(i) == Some(&b'>') {
                return Some((start, i + 1));
            }
        }
        from = start + 1;
    }
    None
}

/// A Markdown inline link `[text](target)` found in a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Link<'a> {
    pub(crate) text: &'a str,
    pub(crate) target: &'a str,
    /// Byte range of the whole link in the cell (including a leading `!` for images).
    pub(crate) range: (usize, usize),
}

/// All inline links in `s`, left to right (nested brackets in the text are allowed).
pub(crate) fn links(s: &str) -> Vec<Link<'_>> {
    let bytes = s.as_bytes();
    let close = bracket_pairs(bytes);
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'[' {
            if let Some(c) = close[i] {
                if bytes.get(c + 1) == Some(&b'(') {
                    if let Some(end) = close[c + 1] {
                        let start = if i > 0 && bytes[i - 1] == b'!' {
                            i - 1
                        } else {
                            i
                        };
                        out.push(Link {
                            text: &s[i + 1..c],
                            target: link_target(&s[c + 2..end]),
                            range: (start, end + 1),
                        });
                        i = end + 1;
                        continue;
                    }
                }
            }
        }
        i += 1;
    }
    out
}

/// For each `[` and `(`, the position of the bracket that closes it, found in one pass
/// (a stack per kind; a backslash escapes the next byte), so that a line full of
/// unmatched brackets costs linear time.
fn bracket_pairs(bytes: &[u8]) -> Vec<Option<usize>> {
    let mut close = vec![None; bytes.len()];
    let (mut squares, mut rounds) = (Vec::new(), Vec::new());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'[' => squares.push(i),
            b'(' => rounds.push(i),
            b']' => {
                if let Some(open) = squares.pop() {
                    close[open] = Some(i);
                }
            }
            b')' => {
                if let Some(open) = rounds.pop() {
                    close[open] = Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    close
}

/// The URL of a link destination, without an optional `"title"` and `<>` brackets.
fn link_target(inside: &str) -> &str {
    let t = inside.trim();
    if let Some(rest) = t.strip_prefix('<') {
        return rest.split('>').next().unwrap_or(rest).trim();
    }
    t.split_whitespace().next().unwrap_or("")
}

/// Whether a link is the "Learn how to turn off traffic ..." link of an area.
pub(crate) fn is_turn_off_link(link: &Link<'_>) -> bool {
    let text = link.text.to_lowercase();
    text.contains("turn off") || text.contains("turn-off")
}

/// Resolves a link on the page to an absolute URL.
///
/// `page_url` is the page's public address. Rules, as Microsoft Learn renders its links:
/// absolute `http(s)` links are kept; a site-relative path (`/microsoft-365/...`) gets the
/// page's origin and locale (`https://learn.microsoft.com/en-us/microsoft-365/...`); a
/// relative path is taken from the page's directory (`../` climbs one folder); a `.md`
/// file name loses its extension (Learn serves `page.md` as `page`); a bare `#anchor`
/// points into the page itself. Surrounding spaces inside the parentheses are ignored.
pub fn resolve_link(target: &str, page_url: &str) -> String {
    let target = target.trim();
    let lower = target.to_ascii_lowercase();
    if lower.starts_with("http://") || lower.starts_with("https://") {
        return target.to_owned();
    }
    let split = target.find(['?', '#']).unwrap_or(target.len());
    let (path, suffix) = target.split_at(split);
    let path = path.strip_suffix(".md").unwrap_or(path);
    let (origin, page_path) = split_url(page_url);
    if path.is_empty() {
        let page = page_url.split('#').next().unwrap_or(page_url);
        return format!("{page}{suffix}");
    }
    if let Some(rest) = path.strip_prefix("//") {
        let scheme = page_url.split("://").next().unwrap_or("https");
        return format!("{scheme}://{rest}{suffix}");
    }
    if path.starts_with('/') {
        let locale = page_path
            .split('/')
            .find(|s| !s.is_empty())
            .filter(|s| is_locale(s));
        let first = path.split('/').find(|s| !s.is_empty());
        return match locale {
            Some(loc) if !first.is_some_and(is_locale) => format!("{origin}/{loc}{path}{suffix}"),
            _ => format!("{origin}{path}{suffix}"),
        };
    }
    let mut segments: Vec<&str> = page_path.split('/').filter(|s| !s.is_empty()).collect();
    if !page_path.ends_with('/') {
        segments.pop();
    }
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    format!("{origin}/{}{suffix}", segments.join("/"))
}

/// `https://host/a/b` → (`https://host`, `/a/b`).
fn split_url(url: &str) -> (&str, &str) {
    let url = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = url.find("://").map_or(0, |p| p + 3);
    match url[after_scheme..].find('/') {
        Some(p) => url.split_at(after_scheme + p),
        None => (url, "/"),
    }
}

/// A Learn locale path segment: `en-us`, `zh-cn`, `sr-latn-rs`.
fn is_locale(seg: &str) -> bool {
    let parts: Vec<&str> = seg.split('-').collect();
    parts.len() >= 2
        && parts[0].len() == 2
        && parts
            .iter()
            .all(|p| (2..=4).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// Decodes the HTML character references the pages use (`&amp;`, `&#42;`, `&#x2A;`, ...).
pub(crate) fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(pos) = rest.find('&') {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        // A reference is short: look for its `;` in the next few bytes only.
        let semicolon = tail.bytes().take(12).position(|b| b == b';');
        let decoded = semicolon.and_then(|end| {
            let name = &tail[1..end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                "ast" => Some('*'),
                "lowbar" => Some('_'),
                _ => name
                    .strip_prefix("#x")
                    .or_else(|| name.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| name.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end + 1))
        });
        match decoded {
            Some((c, used)) => {
                out.push(c);
                rest = &tail[used..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes Markdown backslash escapes (`\*` → `*`).
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(&next) = chars.peek() {
                if next.is_ascii_punctuation() {
                    out.push(next);
                    chars.next();
                    continue;
                }
            }
        }
        out.push(c);
    }
    out
}

/// Strips `**bold**` / `__bold__` markers and backticks.
fn strip_emphasis(s: &str) -> String {
    s.replace("**", "").replace("__", "").replace('`', "")
}

/// Whitespace the pages use, including the zero-width kinds `char::is_whitespace` misses.
fn is_space(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{200B}' | '\u{200C}' | '\u{200D}' | '\u{2060}' | '\u{FEFF}'
        )
}

/// Cleans a one-line cell (area names, header cells, headings): links become their text,
/// emphasis, escapes and tags go, whitespace collapses.
pub(crate) fn clean_inline(cell: &str) -> String {
    let mut s = String::with_capacity(cell.len());
    let mut last = 0;
    for link in links(cell) {
        s.push_str(&cell[last..link.range.0]);
        s.push_str(link.text);
        last = link.range.1;
    }
    s.push_str(&cell[last..]);
    let s = split_br(&s).join(" ");
    let s = strip_tags(&s);
    let s = unescape(&decode_entities(&strip_emphasis(&s)));
    collapse_spaces(&s)
}

/// Removes HTML tags (`<a name="x"></a>`), keeping the text between them.
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(start) = rest.find('<') {
        let after = &rest[start + 1..];
        let is_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/' || c == '!');
        if !is_tag {
            out.push_str(&rest[..=start]);
            rest = after;
            continue;
        }
        // No `>` after this `<` means none after any later one either: stop looking.
        let Some(end) = after.find('>') else {
            break;
        };
        out.push_str(&rest[..start]);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// Runs of spaces become one; control characters (never meant as text on a page) count as
/// spaces.
fn collapse_spaces(s: &str) -> String {
    s.split(|c: char| is_space(c) || c.is_control())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Turns a Description cell into plain text.
///
/// - Two or more `<br>` tags in a row (spaces between them allowed) are a paragraph break
///   (`\n\n`); a single `<br>` is a line wrap inside the cell and becomes a space.
/// - A Markdown link keeps its text, followed by the absolute target in parentheses
///   (`see [Office 365 URLs](/microsoft-365/...)` → `see Office 365 URLs
///   (https://learn.microsoft.com/en-us/microsoft-365/...)`), so the sentence reads as
///   prose and the reference is kept. A link whose text already is its URL stays just the
///   URL; an image keeps its alt text.
/// - Bold markers, backticks, other HTML tags and backslash escapes go; character
///   references are decoded; runs of spaces become one.
pub fn clean_description(cell: &str, page_url: &str) -> String {
    let mut s = String::with_capacity(cell.len());
    let mut last = 0;
    for link in links(cell) {
        s.push_str(&cell[last..link.range.0]);
        let text = clean_inline(link.text);
        let image = cell[link.range.0..].starts_with('!');
        let url = resolve_link(link.target, page_url);
        if image || link.target.is_empty() || text == url || text == link.target {
            s.push_str(if text.is_empty() { &url } else { &text });
        } else {
            s.push_str(&format!("{text} ({url})"));
        }
        last = link.range.1;
    }
    s.push_str(&cell[last..]);

    let pieces = split_br(&s);
    let mut paragraphs: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut breaks = 0;
    for (i, piece) in pieces.iter().enumerate() {
        if i > 0 {
            breaks += 1;
        }
        let piece_clean = collapse_spaces(&unescape(&decode_entities(&strip_emphasis(
            &strip_tags(piece),
        ))));
        if piece_clean.is_empty() {
            continue;
        }
        if breaks >= 2 && !current.is_empty() {
            paragraphs.push(std::mem::take(&mut current));
        } else if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(&piece_clean);
        breaks = 0;
    }
    if !current.is_empty() {
        paragraphs.push(current);
    }
    paragraphs.join("\n\n")
}

/// Splits a Protocol cell into canonical protocol names, in a fixed order.
///
/// Names are separated by `/`, `\`, `,`, `;` or `<br>`; spaces inside a name go
/// (`TLS v1.2` → `TLSv1.2`); `tls1.2`, `TLS 1.2` and `TLSV1.2` all read `TLSv1.2`;
/// names made of letters only are upper-cased (`https` → `HTTPS`). The list is ordered
/// TLS versions, `HTTPS`, `HTTP`, then the rest as written, without repeats, so that a
/// merged endpoint lists its protocols the way the page does.
pub fn protocols(cell: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for part in split_br(cell) {
        for name in part.split(['/', '\\', ',', ';']) {
            let name: String = clean_inline(name)
                .chars()
                .filter(|c| !is_space(*c))
                .collect();
            if name.is_empty() {
                continue;
            }
            let name = canonical_protocol(&name);
            if !out.contains(&name) {
                out.push(name);
            }
        }
    }
    sort_protocols(&mut out);
    out
}

/// Puts protocol names in the order the pages use (stable for the others).
pub(crate) fn sort_protocols(list: &mut [String]) {
    list.sort_by_key(|p| match p.as_str() {
        p if p.starts_with("TLSv") => 0,
        "HTTPS" => 1,
        "HTTP" => 2,
        _ => 3,
    });
}

fn canonical_protocol(name: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if let Some(rest) = lower.strip_prefix("tls") {
        let version = rest.strip_prefix('v').unwrap_or(rest);
        if !version.is_empty() && version.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
            return format!("TLSv{version}");
        }
    }
    if name.bytes().all(|b| b.is_ascii_alphabetic()) {
        return name.to_ascii_uppercase();
    }
    name.to_owned()
}

/// Normalises one destination (one `<br>`-separated piece of a Destination cell).
///
/// Steps, in order: markup goes (backticks, bold, `\*` escapes, character references,
/// HTML tags, `<...>` autolink brackets; a cell that is only a link keeps the link text);
/// a piece with spaces *between* words is prose and rejected, other spaces go
/// (` logincdn.msauth.net`); lower-case; URL parts go (`https://`, a path or query after
/// the host, a `:port`); a `*` that ends a complete host name means "any URL on this
/// host" and goes (`www.bing.com*` → `www.bing.com`), while wildcards that are DNS stay
/// (`*.wns.windows.com`, `watson.*.microsoft.com`, `*displaycatalog.mp.microsoft.com`);
/// a trailing dot goes. What remains must be a domain pattern: two or more labels of
/// letters, digits, `-`, `_` and `*`, each 1 to 63 octets, 253 in all, at least one
/// label with a letter or digit.
pub fn destination(piece: &str) -> Result<Destination, NotADestination> {
    let original = piece.trim_matches(is_space).to_owned();
    let found = links(&original);
    let pattern = match found.as_slice() {
        [] => host_pattern(&original)?,
        // A cell that is just a link to the host (`[www.microsoft.com](https://...)`)
        // names the host in its text; any other link is not a destination.
        [link]
            if original[..link.range.0].trim().is_empty()
                && original[link.range.1..].trim().is_empty() =>
        {
            host_pattern(link.text).map_err(|_| NotADestination::Link)?
        }
        _ => return Err(NotADestination::Link),
    };
    Ok(Destination { pattern, original })
}

/// The pattern of a destination without links; see [`destination`].
fn host_pattern(text: &str) -> Result<String, NotADestination> {
    let text = unescape(&decode_entities(&strip_emphasis(text)));
    let text = text.trim_matches(is_space);
    let text = match text.strip_prefix('<').and_then(|t| t.strip_suffix('>')) {
        Some(autolink) if autolink.contains("://") => autolink.to_owned(),
        _ => strip_tags(text),
    };
    let chars: Vec<char> = text.chars().collect();
    let prose = chars
        .windows(3)
        .any(|w| w[0].is_alphanumeric() && is_space(w[1]) && w[2].is_alphanumeric())
        || text.split(is_space).filter(|w| !w.is_empty()).count() > 2;
    if prose {
        return Err(NotADestination::Prose);
    }
    let mut host: String = text.chars().filter(|c| !is_space(*c)).collect();
    host.make_ascii_lowercase();
    if let Some(p) = host.find("://") {
        host.drain(..p + 3);
    }
    if let Some(p) = host.find(['/', '?', '#']) {
        host.truncate(p);
    }
    if let Some(p) = host.rfind(':') {
        if host[p + 1..].bytes().all(|b| b.is_ascii_digit()) {
            host.truncate(p);
        } else {
            return Err(NotADestination::Invalid(format!(
                "{host:?} is not a host name (a ':' that is not a port)"
            )));
        }
    }
    while host.ends_with('*') && host.len() > 1 {
        let before = host[..host.len() - 1].trim_end_matches('*');
        if before.ends_with('.') || !before.contains('.') {
            break;
        }
        host.truncate(before.len());
    }
    if let Some(h) = host.strip_suffix('.') {
        host.truncate(h.len());
    }
    check_pattern(&host)?;
    Ok(host)
}

/// The domain-pattern rule of [`destination`].
fn check_pattern(p: &str) -> Result<(), NotADestination> {
    let bad = |why: String| Err(NotADestination::Invalid(why));
    if p.is_empty() {
        return bad("empty destination".to_owned());
    }
    if p.len() > 253 {
        return bad(format!("{p:?} is longer than 253 octets"));
    }
    let labels: Vec<&str> = p.split('.').collect();
    if labels.len() < 2 {
        return bad(format!("{p:?} is not a host name (a single label)"));
    }
    for label in &labels {
        if label.is_empty() {
            return bad(format!("{p:?} has an empty label"));
        }
        if label.len() > 63 {
            return bad(format!("{p:?} has a label longer than 63 octets"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '*')))
        {
            return bad(format!("{p:?} is not a host name ({c:?} is not allowed)"));
        }
    }
    if !labels
        .iter()
        .any(|l| l.bytes().any(|b| b.is_ascii_alphanumeric()))
    {
        return bad(format!("{p:?} matches every name"));
    }
    Ok(())
}

/// The stable id of an area, derived from its name.
///
/// The rule: lower-case the name; drop apostrophes (`'`, `’`); replace every run of
/// characters that are not letters or digits with one `-`; drop `-` at both ends.
/// `Diagnostic Data` → `diagnostic-data`, `Microsoft Store` → `microsoft-store`,
/// `Network Connection Status Indicator (NCSI)` →
/// `network-connection-status-indicator-ncsi`. Two names that differ only in case or
/// punctuation have the same id, and the importer treats them as one area.
pub fn slug(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars().flat_map(char::to_lowercase) {
        if matches!(c, '\'' | '’') {
            continue;
        }
        if c.is_alphanumeric() {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.push(c);
        } else {
            dash = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str =
        "https://learn.microsoft.com/en-us/windows/privacy/manage-windows-11-endpoints";

    fn dest(s: &str) -> String {
        destination(s)
            .map(|d| d.pattern)
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn br_variants_split_a_cell() {
        assert_eq!(
            split_br("a.com<br>b.com</br>c.com<br/>d.com<BR />e.com"),
            ["a.com", "b.com", "c.com", "d.com", "e.com"]
        );
        assert_eq!(split_br("no tags <b>here</b>"), ["no tags <b>here</b>"]);
    }

    #[test]
    fn url_parts_are_not_dns() {
        assert_eq!(dest("host.example.com/path/*"), "host.example.com");
        assert_eq!(dest("go.microsoft.com/?Language=en-US"), "go.microsoft.com");
        assert_eq!(
            dest("https://www.msftconnecttest.com/connecttest.txt"),
            "www.msftconnecttest.com"
        );
        assert_eq!(dest("<https://a.example.com:443/x>"), "a.example.com");
    }

    #[test]
    fn star_after_a_complete_host_means_any_url() {
        let d = destination("www.bing.com*").unwrap();
        assert_eq!(d.pattern, "www.bing.com");
        assert_eq!(d.original, "www.bing.com*");
        assert_eq!(dest("login.live.com*"), "login.live.com");
    }

    #[test]
    fn dns_wildcards_stay() {
        for p in [
            "*.wns.windows.com",
            "watson.*.microsoft.com",
            "*displaycatalog.mp.microsoft.com",
        ] {
            assert_eq!(dest(p), p);
        }
    }

    #[test]
    fn markup_case_and_spaces_go() {
        assert_eq!(
            dest(r"\*.smartscreen.microsoft.com"),
            "*.smartscreen.microsoft.com"
        );
        assert_eq!(dest("`cdn.onenote.net`"), "cdn.onenote.net");
        assert_eq!(dest(" logincdn.msauth.net "), "logincdn.msauth.net");
        assert_eq!(dest("I-ring.msedge.net"), "i-ring.msedge.net");
        assert_eq!(dest("&#42;.update.microsoft.com"), "*.update.microsoft.com");
        assert_eq!(dest("**fs.microsoft.com**"), "fs.microsoft.com");
        assert_eq!(dest("ctldl.windowsupdate.com."), "ctldl.windowsupdate.com");
        assert_eq!(
            dest(r#"cs12.<span class="anchor" id="_Hlk5"></span>wpc.v0cdn.net"#),
            "cs12.wpc.v0cdn.net"
        );
        let linked = destination("[www.microsoft.com](https://www.microsoft.com/)").unwrap();
        assert_eq!(linked.pattern, "www.microsoft.com");
        assert_eq!(
            linked.original,
            "[www.microsoft.com](https://www.microsoft.com/)"
        );
    }

    #[test]
    fn text_that_is_not_a_destination_is_rejected_with_a_reason() {
        assert_eq!(dest("See the note below"), "error: prose, not a host name");
        assert_eq!(dest("[Learn more](x.md)"), "error: a link, not a host name");
        assert_eq!(
            dest("localhost"),
            "error: \"localhost\" is not a host name (a single label)"
        );
        assert_eq!(dest("*.*"), "error: \"*.*\" matches every name");
        assert!(dest("bad!name.com").starts_with("error: "));
        assert!(dest("a..b.com").contains("empty label"));
    }

    #[test]
    fn protocol_spellings_are_canonical() {
        assert_eq!(
            protocols("TLS v1.2/HTTPS/HTTP"),
            ["TLSv1.2", "HTTPS", "HTTP"]
        );
        assert_eq!(protocols(" tlsv1.2 / https "), ["TLSv1.2", "HTTPS"]);
        assert_eq!(
            protocols("HTTP, TLS 1.3<br>quic"),
            ["TLSv1.3", "HTTP", "QUIC"]
        );
        assert_eq!(protocols(r"HTTP \ HTTPS"), ["HTTPS", "HTTP"]);
        assert!(protocols("").is_empty());
    }

    #[test]
    fn slug_rule() {
        assert_eq!(slug("Diagnostic Data"), "diagnostic-data");
        assert_eq!(slug("Microsoft Store"), "microsoft-store");
        assert_eq!(
            slug("Network Connection Status Indicator (NCSI)"),
            "network-connection-status-indicator-ncsi"
        );
        assert_eq!(slug("  Xbox Live's  "), "xbox-lives");
        assert_eq!(slug("()"), "");
    }

    #[test]
    fn links_resolve_against_the_page() {
        let t = "manage-connections-from-windows-operating-system-components-to-microsoft-services.md#bkmk-cortana";
        assert_eq!(
            resolve_link(t, PAGE),
            "https://learn.microsoft.com/en-us/windows/privacy/manage-connections-from-windows-operating-system-components-to-microsoft-services#bkmk-cortana"
        );
        assert_eq!(
            resolve_link("/microsoft-365/enterprise/urls", PAGE),
            "https://learn.microsoft.com/en-us/microsoft-365/enterprise/urls"
        );
        assert_eq!(
            resolve_link("../deployment/x.md", PAGE),
            "https://learn.microsoft.com/en-us/windows/deployment/x"
        );
        assert_eq!(resolve_link("#anchor", PAGE), format!("{PAGE}#anchor"));
        assert_eq!(
            resolve_link("https://example.com/a.md", PAGE),
            "https://example.com/a.md"
        );
    }

    #[test]
    fn descriptions_read_as_prose() {
        assert_eq!(
            clean_description("First.<br> <br>Second <br>line.", PAGE),
            "First.\n\nSecond line."
        );
        assert_eq!(
            clean_description("See [Office 365 URLs](/microsoft-365/urls). Then **stop**.", PAGE),
            "See Office 365 URLs (https://learn.microsoft.com/en-us/microsoft-365/urls). Then stop."
        );
        assert_eq!(clean_description("  spaced   out  ", PAGE), "spaced out");
    }

    #[test]
    fn inline_cells_lose_markup() {
        assert_eq!(clean_inline("**Area**"), "Area");
        assert_eq!(clean_inline("<a name=\"x\"></a>Apps "), "Apps");
        assert_eq!(clean_inline("[Apps](apps.md)"), "Apps");
    }
}
