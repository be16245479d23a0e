//! Query names on the hot path: validation, label positions and the label hash, all
//! without allocating or building a lower-cased copy.

use crate::pattern::{MAX_LABEL, MAX_NAME};

/// Most labels a valid name can have (`a.a.….a`, 253 octets), rounded up to a power of
/// two so that an index can be masked into range.
pub(crate) const MAX_LABELS: usize = 128;

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;

/// High bit set in each lane of `x` (all lanes below 0x80) that lies in `lo..=hi`.
#[inline(always)]
fn in_range(x: u64, lo: u8, hi: u8) -> u64 {
    x.wrapping_add(ONES * u64::from(0x80 - lo))
        & !x.wrapping_add(ONES * u64::from(0x7f - hi))
        & HIGH
}

/// High bit set in each lane of `x` equal to `c`, exactly (no carries between lanes).
#[inline(always)]
fn equal(x: u64, c: u8) -> u64 {
    let t = x ^ (ONES * u64::from(c));
    !(((t & !HIGH) + !HIGH) | t) & HIGH
}

/// Validates a query name and records where each label starts. Returns the name without
/// its trailing dot and the number of labels, or `None` for anything that is not a valid
/// name (such a name matches no rule).
///
/// Eight octets at a time: allowed are letters, digits, `-`, `_` and `*` (a literal `*`
/// label is a legal DNS name, and the glob oracle treats it as an ordinary character);
/// only the dots cost a step each.
#[inline(always)]
pub(crate) fn split<'a>(name: &'a str, starts: &mut [u8; MAX_LABELS]) -> Option<(&'a [u8], usize)> {
    let bytes = name.as_bytes();
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    if bytes.is_empty() || bytes.len() > MAX_NAME {
        return None;
    }
    let (mut labels, mut label_start, mut bad) = (1usize, 0usize, false);
    starts[0] = 0;
    let mut at = 0;
    while at < bytes.len() {
        let chunk = &bytes[at..bytes.len().min(at + 8)];
        let lanes = match chunk.len() {
            8 => HIGH,
            n => HIGH & ((1u64 << (8 * n)) - 1),
        };
        let w = load_le(chunk);
        // Lanes at or above 0x80 make the name invalid; the arithmetic below may then
        // carry across lanes, which no longer matters.
        let dots = equal(w, b'.') & lanes;
        let ok = in_range(lower8(w), b'a', b'z')
            | in_range(w, b'0', b'9')
            | equal(w, b'-')
            | equal(w, b'_')
            | equal(w, b'*')
            | dots;
        bad |= (w & HIGH & lanes) != 0 || (!ok & lanes) != 0;
        let mut d = dots;
        while d != 0 {
            let dot = at + (d.trailing_zeros() / 8) as usize;
            let len = dot - label_start;
            bad |= len == 0 || len > MAX_LABEL;
            label_start = dot + 1;
            starts[labels & (MAX_LABELS - 1)] = label_start as u8;
            labels += 1;
            d &= d - 1;
        }
        at += 8;
    }
    let len = bytes.len() - label_start;
    (!bad && len != 0 && len <= MAX_LABEL).then_some((bytes, labels))
}

/// Label `i` of a name [`split`] into `labels` labels.
#[inline(always)]
pub(crate) fn label<'a>(
    bytes: &'a [u8],
    starts: &[u8; MAX_LABELS],
    labels: usize,
    i: usize,
) -> (usize, &'a [u8]) {
    let start = usize::from(starts[i]);
    let end = if i + 1 < labels {
        usize::from(starts[i + 1]) - 1
    } else {
        bytes.len()
    };
    (start, &bytes[start..end])
}

const K1: u64 = 0x9e37_79b9_7f4a_7c15;
const K2: u64 = 0xd6e8_feb8_6659_fd93;

#[inline(always)]
fn fold_mul(a: u64, b: u64) -> u64 {
    let p = u128::from(a) * u128::from(b);
    (p as u64) ^ ((p >> 64) as u64)
}

/// ASCII lower case of eight bytes at once; every byte must be below 0x80, which
/// validation guarantees.
#[inline(always)]
fn lower8(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let ge_a = x.wrapping_add(ONES * (0x80 - u64::from(b'A')));
    let gt_z = x.wrapping_add(ONES * (0x80 - u64::from(b'Z') - 1));
    let upper = ge_a & !gt_z & (ONES * 0x80);
    x | (upper >> 2)
}

/// Up to eight octets as a little-endian word, zero-padded, without the copy into a
/// stack buffer that would stall the load behind it: two overlapping loads instead.
#[inline(always)]
fn load_le(b: &[u8]) -> u64 {
    let n = b.len();
    if n >= 8 {
        u64::from_le_bytes(b[..8].try_into().expect("eight bytes"))
    } else if n >= 4 {
        let lo = u32::from_le_bytes(b[..4].try_into().expect("four bytes"));
        let hi = u32::from_le_bytes(b[n - 4..n].try_into().expect("four bytes"));
        u64::from(lo) | (u64::from(hi) << (8 * (n - 4)))
    } else if n >= 2 {
        let lo = u16::from_le_bytes(b[..2].try_into().expect("two bytes"));
        let hi = u16::from_le_bytes(b[n - 2..n].try_into().expect("two bytes"));
        u64::from(lo) | (u64::from(hi) << (8 * (n - 2)))
    } else if n == 1 {
        u64::from(b[0])
    } else {
        0
    }
}

/// The first eight octets of a label, lower case, zero-padded: how the trie stores a
/// short label, and the prefix it keeps of a long one.
#[inline(always)]
pub(crate) fn label_key(label: &[u8]) -> u64 {
    lower8(load_le(label))
}

/// Hash of the name suffix `label.<suffix hashed as h>`, case-insensitive: the trie keys
/// each node by the hash of its whole suffix, so a lookup can compute every level's
/// hash from the name alone and fetch all their table slots at once. Returns the hash
/// and the [`label_key`] of the label's first two eight-octet chunks (0 if absent).
#[inline(always)]
pub(crate) fn mix_label_key(h: u64, label: &[u8]) -> (u64, [u64; 2]) {
    let k0 = label_key(label);
    let mut h = fold_mul(h ^ (label.len() as u64).wrapping_mul(K2) ^ k0, K1);
    let mut k1 = 0;
    if label.len() > 8 {
        k1 = label_key(&label[8..]);
        h = fold_mul(h ^ k1, K1);
        let mut at = 16;
        while at < label.len() {
            h = fold_mul(h ^ label_key(&label[at..]), K1);
            at += 8;
        }
    }
    (fold_mul(h, K2), [k0, k1])
}

/// [`mix_label_key`] without the keys.
#[cfg(test)]
pub(crate) fn mix_label(h: u64, label: &[u8]) -> u64 {
    mix_label_key(h, label).0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Option<Vec<&str>> {
        let mut starts = [0; MAX_LABELS];
        let (bytes, n) = split(name, &mut starts)?;
        Some(
            (0..n)
                .map(|i| std::str::from_utf8(label(bytes, &starts, n, i).1).unwrap())
                .collect(),
        )
    }

    #[test]
    fn splits_labels_and_drops_one_trailing_dot() {
        assert_eq!(labels("a.Bc.d."), Some(vec!["a", "Bc", "d"]));
        assert_eq!(labels("x"), Some(vec!["x"]));
        assert_eq!(labels("*._tcp.x-y"), Some(vec!["*", "_tcp", "x-y"]));
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in [
            "", ".", "..", "a..b", ".a", "a..", "a b", "a/b", "é.com", "a\0", "a.b\n",
        ] {
            assert!(labels(bad).is_none(), "{bad:?}");
        }
        assert!(labels(&"a".repeat(63)).is_some());
        assert!(labels(&"a".repeat(64)).is_none());
        assert!(labels(&format!("{}.b", "a".repeat(64))).is_none());
        assert!(labels(&format!("b.{}.b", "a".repeat(64))).is_none());
        assert!(labels(&".".repeat(253)).is_none());
        let deepest = ["a"; 127].join(".");
        assert_eq!(deepest.len(), 253);
        assert_eq!(labels(&deepest).unwrap().len(), 127);
        assert!(labels(&format!("{deepest}.")).is_some());
        assert!(labels(&format!("b{deepest}")).is_none());
    }

    /// The definition, one octet at a time.
    fn reference(name: &[u8]) -> Option<Vec<&[u8]>> {
        let name = name.strip_suffix(b".").unwrap_or(name);
        let labels: Vec<&[u8]> = name.split(|&b| b == b'.').collect();
        let ok = !name.is_empty()
            && name.len() <= 253
            && labels.iter().all(|l| {
                (1..=63).contains(&l.len())
                    && l.iter()
                        .all(|&b| b.is_ascii_alphanumeric() || b"-_*".contains(&b))
            });
        ok.then_some(labels)
    }

    proptest::proptest! {
        #[test]
        fn split_agrees_with_the_definition(
            name in proptest::string::bytes_regex("(?s-u:[a-zA-Z0-9.*_ \\-\\x00\\x7f\\x80\\xff/]{0,40}|(a{0,70}\\.){0,5}a{0,70}\\.?)").unwrap()
        ) {
            let Ok(text) = std::str::from_utf8(&name) else { return Ok(()) };
            let mut starts = [0; MAX_LABELS];
            let got = split(text, &mut starts).map(|(bytes, n)| {
                (0..n).map(|i| label(bytes, &starts, n, i).1).collect::<Vec<_>>()
            });
            proptest::prop_assert_eq!(got, reference(&name));
        }

        #[test]
        fn split_agrees_on_arbitrary_text(text in "\\PC{0,80}") {
            let mut starts = [0; MAX_LABELS];
            let got = split(&text, &mut starts).map(|(bytes, n)| {
                (0..n).map(|i| label(bytes, &starts, n, i).1).collect::<Vec<_>>()
            });
            proptest::prop_assert_eq!(got, reference(text.as_bytes()));
        }
    }

    #[test]
    fn every_octet_is_classified_like_the_definition() {
        for b in 0u8..=255 {
            for pos in 0..9 {
                let mut name = vec![b'a'; 9];
                name[pos] = b;
                if let Ok(text) = std::str::from_utf8(&name) {
                    let mut starts = [0; MAX_LABELS];
                    assert_eq!(
                        split(text, &mut starts).is_some(),
                        reference(&name).is_some(),
                        "{b:#x} at {pos}"
                    );
                }
            }
        }
    }

    #[test]
    fn label_hash_ignores_ascii_case_only() {
        let all: Vec<u8> = (0x20u8..0x7f).collect();
        for w in all.chunks(13) {
            let lower = w.to_ascii_lowercase();
            assert_eq!(mix_label(7, w), mix_label(7, &lower));
        }
        assert_ne!(mix_label(7, b"ab"), mix_label(7, b"ab\0"));
        assert_ne!(mix_label(7, b"a-b"), mix_label(7, b"a\rb"));
        assert_ne!(mix_label(1, b"com"), mix_label(2, b"com"));
    }

    #[test]
    fn partial_loads_pad_with_zeros() {
        let bytes = b"abcdefghij";
        for n in 0..=10 {
            let mut want = [0u8; 8];
            let k = n.min(8);
            want[..k].copy_from_slice(&bytes[..k]);
            assert_eq!(load_le(&bytes[..n]), u64::from_le_bytes(want), "{n}");
        }
        assert_eq!(label_key(b"ABc"), u64::from_le_bytes(*b"abc\0\0\0\0\0"));
    }

    #[test]
    fn swar_lower_case_matches_the_byte_rule() {
        for b in 0u8..0x80 {
            let x = u64::from_le_bytes([b, 0, b'Z', b'A', b'@', b'[', b, 0x7f]);
            let want = u64::from_le_bytes(
                [b, 0, b'Z', b'A', b'@', b'[', b, 0x7f].map(|c| c.to_ascii_lowercase()),
            );
            assert_eq!(lower8(x), want, "{b:#x}");
        }
    }
}
