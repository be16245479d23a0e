//! Pattern syntax: validation, normalisation (case, trailing dot, IDNA) and the split of a
//! pattern into the literal label suffix the trie indexes and the part left to a glob.

/// Longest name, in octets, without the trailing dot (RFC 1035: 255 on the wire).
pub(crate) const MAX_NAME: usize = 253;
/// Longest label, in octets (RFC 1035).
pub(crate) const MAX_LABEL: usize = 63;

/// A pattern that cannot be a domain pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid domain pattern {pattern:?}: {kind}")]
pub struct PatternError {
    /// The pattern as given.
    pub pattern: String,
    /// What is wrong with it.
    pub kind: PatternErrorKind,
}

/// What is wrong with a rejected pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PatternErrorKind {
    /// Nothing left once the trailing dot is removed.
    #[error("the pattern is empty")]
    Empty,
    /// Two dots in a row, or a leading dot.
    #[error("empty label (a leading dot or two dots in a row)")]
    EmptyLabel,
    /// A label longer than 63 octets (after IDNA conversion).
    #[error("label {label:?} is {len} octets long, at most 63 are allowed")]
    LabelTooLong {
        /// The offending label.
        label: String,
        /// Its length in octets.
        len: usize,
    },
    /// A name longer than 253 octets (after IDNA conversion, without the trailing dot).
    #[error("the name is {0} octets long, at most 253 are allowed")]
    NameTooLong(usize),
    /// A character outside letters, digits, `-`, `_`, `*` and `.`.
    #[error("character {0:?} is not allowed (letters, digits, '-', '_', '*' and '.' only)")]
    InvalidChar(char),
    /// A `*` in a label that also holds non-ASCII characters: IDNA would encode the star
    /// into the A-label, so the glob could never mean what it says.
    #[error("label {0:?} mixes '*' with non-ASCII characters, which IDNA cannot encode as a glob")]
    WildcardInUnicodeLabel(String),
    /// A non-ASCII label that IDNA (UTS #46) refuses.
    #[error("label {0:?} is not a valid internationalised label")]
    Idna(String),
}

impl PatternError {
    fn new(pattern: &str, kind: PatternErrorKind) -> Self {
        Self {
            pattern: pattern.to_owned(),
            kind,
        }
    }
}

/// Checks and normalises a pattern: ASCII lower case, Unicode labels converted to IDNA
/// A-labels, one trailing dot removed.
///
/// ```
/// use winsink_matcher::normalize_pattern;
/// assert_eq!(normalize_pattern("*.WNS.Windows.com.").unwrap(), "*.wns.windows.com");
/// assert_eq!(normalize_pattern("Bücher.example").unwrap(), "xn--bcher-kva.example");
/// assert!(normalize_pattern("a..example").is_err());
/// ```
pub fn normalize_pattern(pattern: &str) -> Result<String, PatternError> {
    let mut out = String::with_capacity(pattern.len());
    normalize_into(pattern, &mut out)?;
    Ok(out)
}

/// [`normalize_pattern`], appending to `out` (the builder keeps every pattern in one
/// arena). On error `out` is left as it was.
pub(crate) fn normalize_into(pattern: &str, out: &mut String) -> Result<(), PatternError> {
    let mark = out.len();
    let res = if pattern.is_ascii() {
        push_ascii(pattern, pattern, out)
    } else {
        to_ascii(pattern).and_then(|ascii| push_ascii(pattern, &ascii, out))
    };
    if res.is_err() {
        out.truncate(mark);
    }
    res
}

/// Converts every non-ASCII label to its A-label; ASCII labels are left to [`push_ascii`].
fn to_ascii(pattern: &str) -> Result<String, PatternError> {
    // UTS #46 treats these three as label separators too.
    let dotted: String = pattern
        .chars()
        .map(|c| match c {
            '\u{3002}' | '\u{ff0e}' | '\u{ff61}' => '.',
            c => c,
        })
        .collect();
    // A trailing dot survives as a trailing empty label, for `push_ascii` to strip.
    let mut out = String::with_capacity(dotted.len() + 8);
    for (i, label) in dotted.split('.').enumerate() {
        if i > 0 {
            out.push('.');
        }
        if label.is_ascii() {
            out.push_str(label);
            continue;
        }
        if label.contains('*') {
            return Err(PatternError::new(
                pattern,
                PatternErrorKind::WildcardInUnicodeLabel(label.to_owned()),
            ));
        }
        match idna::domain_to_ascii(label) {
            Ok(a) => out.push_str(&a),
            Err(_) => {
                return Err(PatternError::new(
                    pattern,
                    PatternErrorKind::Idna(label.to_owned()),
                ))
            }
        }
    }
    Ok(out)
}

/// Validates the ASCII form `ascii` of `pattern` and appends it, lower-cased and without
/// its trailing dot, to `out`.
fn push_ascii(pattern: &str, ascii: &str, out: &mut String) -> Result<(), PatternError> {
    let err = |kind| Err(PatternError::new(pattern, kind));
    let body = ascii.strip_suffix('.').unwrap_or(ascii);
    if body.is_empty() {
        return err(PatternErrorKind::Empty);
    }
    if body.len() > MAX_NAME {
        return err(PatternErrorKind::NameTooLong(body.len()));
    }
    let bytes = body.as_bytes();
    let mut start = 0;
    for i in 0..=bytes.len() {
        if i < bytes.len() && bytes[i] != b'.' {
            if !is_pattern_byte(bytes[i]) {
                let c = body[i..]
                    .chars()
                    .next()
                    .unwrap_or(char::REPLACEMENT_CHARACTER);
                return err(PatternErrorKind::InvalidChar(c));
            }
            continue;
        }
        let label = &body[start..i];
        if label.is_empty() {
            return err(PatternErrorKind::EmptyLabel);
        }
        if label.len() > MAX_LABEL {
            return err(PatternErrorKind::LabelTooLong {
                label: label.to_owned(),
                len: label.len(),
            });
        }
        start = i + 1;
    }
    let mark = out.len();
    out.push_str(body);
    out[mark..].make_ascii_lowercase();
    Ok(())
}

fn is_pattern_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'*'
}

/// How a normalised pattern is indexed: its literal label suffix (a trie node, `""` for the
/// root) and what must hold for the rest of the name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Shape<'a> {
    /// The longest run of trailing labels without a `*`.
    pub(crate) suffix: &'a str,
    pub(crate) kind: ShapeKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ShapeKind {
    /// No `*` at all: the name equals the suffix.
    Exact,
    /// The labels left of the suffix are a lone `*` (or `**`…): at least one label below.
    Below,
    /// Anything else: the part of the name left of `.suffix` must match this glob, in which
    /// runs of `*` have been collapsed into one.
    Glob(String),
}

/// Splits a normalised pattern (see [`normalize_pattern`]).
pub(crate) fn shape(pattern: &str) -> Shape<'_> {
    let Some(star) = pattern.rfind('*') else {
        return Shape {
            suffix: pattern,
            kind: ShapeKind::Exact,
        };
    };
    let (prefix, suffix) = match pattern[star..].find('.') {
        Some(dot) => (&pattern[..star + dot], &pattern[star + dot + 1..]),
        None => (pattern, ""),
    };
    let kind = if prefix.bytes().all(|b| b == b'*') {
        ShapeKind::Below
    } else {
        let mut glob = String::with_capacity(prefix.len());
        for c in prefix.chars() {
            if !(c == '*' && glob.ends_with('*')) {
                glob.push(c);
            }
        }
        ShapeKind::Glob(glob)
    };
    Shape { suffix, kind }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(p: &str) -> PatternErrorKind {
        normalize_pattern(p).unwrap_err().kind
    }

    #[test]
    fn normalises_case_trailing_dot_and_idna() {
        assert_eq!(normalize_pattern("WWW.Bing.COM*").unwrap(), "www.bing.com*");
        assert_eq!(normalize_pattern("example.com.").unwrap(), "example.com");
        assert_eq!(
            normalize_pattern("_ldap._tcp.dc.lab").unwrap(),
            "_ldap._tcp.dc.lab"
        );
        assert_eq!(
            normalize_pattern("*.Bücher.example").unwrap(),
            "*.xn--bcher-kva.example"
        );
        assert_eq!(
            normalize_pattern("例え。テスト").unwrap(),
            "xn--r8jz45g.xn--zckzah"
        );
        assert_eq!(normalize_pattern("xn--*.example").unwrap(), "xn--*.example");
    }

    #[test]
    fn rejects_what_cannot_be_a_domain_pattern() {
        assert_eq!(kind(""), PatternErrorKind::Empty);
        assert_eq!(kind("."), PatternErrorKind::Empty);
        assert_eq!(kind("a..b"), PatternErrorKind::EmptyLabel);
        assert_eq!(kind(".a"), PatternErrorKind::EmptyLabel);
        assert_eq!(kind("a.."), PatternErrorKind::EmptyLabel);
        assert_eq!(kind("a b.com"), PatternErrorKind::InvalidChar(' '));
        assert_eq!(kind("a/b.com"), PatternErrorKind::InvalidChar('/'));
        assert_eq!(kind("a?.com"), PatternErrorKind::InvalidChar('?'));
        assert_eq!(kind("[ab].com"), PatternErrorKind::InvalidChar('['));
        let long = "a".repeat(64);
        assert_eq!(
            kind(&format!("{long}.com")),
            PatternErrorKind::LabelTooLong {
                label: long.clone(),
                len: 64
            }
        );
        let name = ["a".repeat(63).as_str(); 4].join(".");
        assert_eq!(name.len(), 255);
        assert_eq!(kind(&name), PatternErrorKind::NameTooLong(255));
        assert_eq!(
            kind("*ü.example"),
            PatternErrorKind::WildcardInUnicodeLabel("*ü".into())
        );
        assert_eq!(kind("a\u{0}b.com"), PatternErrorKind::InvalidChar('\0'));
        assert_eq!(kind("ü.."), PatternErrorKind::EmptyLabel);
        assert_eq!(kind("ü.a b"), PatternErrorKind::InvalidChar(' '));
        assert_eq!(normalize_pattern("ü.").unwrap(), "xn--tda");
    }

    #[test]
    fn errors_name_the_pattern_and_the_reason() {
        let e = normalize_pattern("bad name.com").unwrap_err();
        assert_eq!(e.pattern, "bad name.com");
        assert_eq!(
            e.to_string(),
            "invalid domain pattern \"bad name.com\": character ' ' is not allowed \
             (letters, digits, '-', '_', '*' and '.' only)"
        );
    }

    #[test]
    fn limits_apply_to_the_name_without_its_trailing_dot() {
        let name = format!(
            "{}.{}.{}.{}",
            "a".repeat(63),
            "b".repeat(63),
            "c".repeat(63),
            "d".repeat(61)
        );
        assert_eq!(name.len(), 253);
        assert!(normalize_pattern(&name).is_ok());
        assert!(normalize_pattern(&format!("{name}.")).is_ok());
    }

    #[test]
    fn failed_normalisation_leaves_the_arena_alone() {
        let mut out = String::from("kept");
        assert!(normalize_into("a..b", &mut out).is_err());
        assert_eq!(out, "kept");
    }

    #[test]
    fn shapes_of_every_catalog_form() {
        let s = |p| shape(p);
        assert_eq!(
            s("ctldl.windowsupdate.com"),
            Shape {
                suffix: "ctldl.windowsupdate.com",
                kind: ShapeKind::Exact
            }
        );
        assert_eq!(
            s("*.wns.windows.com"),
            Shape {
                suffix: "wns.windows.com",
                kind: ShapeKind::Below
            }
        );
        assert_eq!(
            s("**.wns.windows.com"),
            Shape {
                suffix: "wns.windows.com",
                kind: ShapeKind::Below
            }
        );
        assert_eq!(
            s("watson.*.microsoft.com"),
            Shape {
                suffix: "microsoft.com",
                kind: ShapeKind::Glob("watson.*".into())
            }
        );
        assert_eq!(
            s("*displaycatalog.mp.microsoft.com"),
            Shape {
                suffix: "mp.microsoft.com",
                kind: ShapeKind::Glob("*displaycatalog".into())
            }
        );
        assert_eq!(
            s("www.bing.com*"),
            Shape {
                suffix: "",
                kind: ShapeKind::Glob("www.bing.com*".into())
            }
        );
        assert_eq!(
            s("*"),
            Shape {
                suffix: "",
                kind: ShapeKind::Below
            }
        );
        assert_eq!(
            s("a***b.*.c"),
            Shape {
                suffix: "c",
                kind: ShapeKind::Glob("a*b.*".into())
            }
        );
    }
}
