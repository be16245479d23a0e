//! The glob left at a trie node once its literal suffix has been walked: only `*` is
//! special and it matches any run of bytes, dots included, as in a `globset` glob built
//! with `literal_separator(false)`.

/// Whether `text` (any ASCII case) matches `glob` (lower case, `*` = any run).
///
/// Greedy with one backtrack point, the classic algorithm for `*`-only globs: when a later
/// literal fails, only the most recent `*` needs to grow, because any earlier `*` could
/// equally have absorbed what the later one will. At most `glob.len() * text.len()` steps,
/// no allocation.
pub(crate) fn matches(glob: &[u8], text: &[u8]) -> bool {
    let (mut g, mut t) = (0, 0);
    // Position after the latest `*`, and the text position it was matched from.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match glob.get(g) {
            Some(b'*') => {
                g += 1;
                star = Some((g, t));
            }
            Some(&c) if c == text[t].to_ascii_lowercase() => {
                g += 1;
                t += 1;
            }
            _ => match star {
                Some((sg, st)) => {
                    g = sg;
                    t = st + 1;
                    star = Some((sg, st + 1));
                }
                None => return false,
            },
        }
    }
    glob[g..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::matches;

    #[test]
    fn stars_match_any_run_including_dots() {
        assert!(matches(b"watson.*", b"watson.telemetry"));
        assert!(matches(b"watson.*", b"watson.events.data"));
        assert!(matches(b"watson.*", b"watson."));
        assert!(!matches(b"watson.*", b"watson"));
        assert!(matches(b"*displaycatalog", b"displaycatalog"));
        assert!(matches(b"*displaycatalog", b"bigdisplaycatalog"));
        assert!(matches(b"*displaycatalog", b"a.displaycatalog"));
        assert!(!matches(b"*displaycatalog", b"displaycatalogs"));
        assert!(matches(b"www.bing.com*", b"www.bing.com.au"));
        assert!(matches(b"a*b*c", b"aXbYbZc"));
        assert!(!matches(b"a*b*c", b"aXbYbZ"));
        assert!(matches(b"*", b""));
        assert!(matches(b"", b""));
        assert!(!matches(b"", b"a"));
    }

    #[test]
    fn text_case_is_ignored() {
        assert!(matches(b"watson.*", b"WaTsOn.X"));
        assert!(!matches(b"watson.*", b"WaTsOn"));
    }

    #[test]
    fn a_literal_star_in_the_text_is_an_ordinary_byte() {
        assert!(matches(b"a*", b"a*"));
        assert!(!matches(b"ab", b"a*"));
    }
}
