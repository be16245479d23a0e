//! Repair of UTF-8 text that was once decoded as Windows-1252 and saved again.
//!
//! Microsoft's pages carry such text: the apostrophe `’` is the UTF-8 bytes `E2 80 99`,
//! which Windows-1252 reads as `â€™`, so the page says `wonâ€™t`. The repair maps each
//! character back to its Windows-1252 byte and, where those bytes form one well-formed
//! UTF-8 sequence, puts back the character they encode.
//!
//! The byte table is `encoding_rs`'s WHATWG `windows-1252` (the table browsers use), not a
//! hand-written one: it is maintained, tested against the standard, and covers the five
//! bytes Windows-1252 leaves undefined (they decode to C1 controls). Characters in
//! `U+0080..=U+009F` that the table does not produce map to their own byte, which repairs
//! text that went through ISO-8859-1 instead.
//!
//! Only complete sequences are replaced: a lone `â` or `é` in real text has no valid
//! continuation after it and is left alone.

use std::borrow::Cow;

use encoding_rs::WINDOWS_1252;

/// How many times the repair runs over text that was mangled more than once.
const MAX_PASSES: usize = 3;

/// Repairs mojibake in `text`; returns the text and how many characters were put back.
pub(crate) fn repair(text: &str) -> (Cow<'_, str>, usize) {
    let mut total = 0;
    let mut current = Cow::Borrowed(text);
    for _ in 0..MAX_PASSES {
        let (fixed, count) = repair_once(&current);
        if count == 0 {
            break;
        }
        total += count;
        current = Cow::Owned(fixed);
    }
    (current, total)
}

fn repair_once(text: &str) -> (String, usize) {
    if text.is_ascii() {
        return (text.to_owned(), 0);
    }
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut count = 0;
    let mut i = 0;
    while i < chars.len() {
        if let Some((ch, used)) = decode_at(&chars[i..]) {
            out.push(ch);
            count += 1;
            i += used;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    (out, count)
}

/// Decodes one UTF-8 sequence spelled as Windows-1252 characters at the start of `chars`.
fn decode_at(chars: &[char]) -> Option<(char, usize)> {
    let lead = byte_of(*chars.first()?)?;
    let len = match lead {
        0xC2..=0xDF => 2,
        0xE0..=0xEF => 3,
        0xF0..=0xF4 => 4,
        _ => return None,
    };
    if chars.len() < len {
        return None;
    }
    let mut bytes = [lead, 0, 0, 0];
    for (slot, &c) in bytes[1..len].iter_mut().zip(&chars[1..len]) {
        let b = byte_of(c)?;
        if !(0x80..=0xBF).contains(&b) {
            return None;
        }
        *slot = b;
    }
    let decoded = std::str::from_utf8(&bytes[..len]).ok()?;
    decoded.chars().next().map(|c| (c, len))
}

/// The single byte Windows-1252 (or, failing that, ISO-8859-1) encodes `c` as.
fn byte_of(c: char) -> Option<u8> {
    if c.is_ascii() {
        return None;
    }
    let mut buf = [0u8; 4];
    let (bytes, _, unmappable) = WINDOWS_1252.encode(c.encode_utf8(&mut buf));
    match (&*bytes, unmappable) {
        ([b], false) => Some(*b),
        _ => match u32::from(c) {
            cp @ 0x80..=0x9F => u8::try_from(cp).ok(),
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::repair;

    #[test]
    fn apostrophe_read_as_windows_1252_is_put_back() {
        let (text, n) = repair("Microsoft Edge wonâ€™t be able to check");
        assert_eq!(text, "Microsoft Edge won’t be able to check");
        assert_eq!(n, 1);
    }

    #[test]
    fn two_byte_and_four_byte_sequences_are_put_back() {
        assert_eq!(repair("cafÃ© Ã¼ber").0, "café über");
        assert_eq!(repair("ðŸ˜€").0, "😀");
    }

    /// What happens to UTF-8 text that is read as Windows-1252 and saved as UTF-8.
    fn mangle(text: &str) -> String {
        encoding_rs::WINDOWS_1252
            .decode_without_bom_handling(text.as_bytes())
            .0
            .into_owned()
    }

    #[test]
    fn text_mangled_twice_is_repaired_fully() {
        let twice = mangle(&mangle("won’t"));
        assert_ne!(twice, mangle("won’t"));
        assert_eq!(repair(&twice).0, "won’t");
    }

    #[test]
    fn every_mangled_character_of_the_first_planes_comes_back() {
        let text: String = (0xA0u32..0x3000).filter_map(char::from_u32).collect();
        assert_eq!(repair(&mangle(&text)).0, text);
    }

    #[test]
    fn correct_text_is_left_alone() {
        for text in [
            "won’t",
            "café",
            "naïve “quoted” – dash",
            "Straße",
            "plain ascii",
        ] {
            let (fixed, n) = repair(text);
            assert_eq!(fixed, text);
            assert_eq!(n, 0);
        }
    }

    #[test]
    fn an_incomplete_sequence_is_left_alone() {
        assert_eq!(repair("â€ alone").0, "â€ alone");
        assert_eq!(repair("ends with â").0, "ends with â");
    }
}
