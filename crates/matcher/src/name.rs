//! Query names on the hot path: validation, label positions and the label hash, all
//! without allocating or building a lower-cased copy.

use crate::pattern::{MAX_LABEL, MAX_NAME};

/// Bytes a query name may hold: letters, digits, `-`, `_`, and `*` (a literal `*` label
/// is a legal DNS name; treating it as an ordinary character is what the glob oracle does).
const fn name_bytes() -> [bool; 256] {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'*';
        b += 1;
    }
    t
}
static NAME_BYTE: [bool; 256] = name_bytes();

/// The name without its trailing dot, or `None` for anything that is not a valid name
/// (such a name matches no rule).
#[inline(always)]
pub(crate) fn validate(name: &str) -> Option<&[u8]> {
    let bytes = name.as_bytes();
    let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
    if bytes.is_empty() || bytes.len() > MAX_NAME {
        return None;
    }
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'.' {
            if i == start || i - start > MAX_LABEL {
                return None;
            }
            start = i + 1;
        } else if !NAME_BYTE[b as usize] {
            return None;
        }
    }
    let last = bytes.len() - start;
    (last != 0 && last <= MAX_LABEL).then_some(bytes)
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

    #[test]
    fn drops_one_trailing_dot() {
        assert_eq!(validate("a.Bc.d."), Some(&b"a.Bc.d"[..]));
        assert_eq!(validate("x"), Some(&b"x"[..]));
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in [
            "", ".", "..", "a..b", ".a", "a..", "a b", "a/b", "é.com", "a\0", "a.b\n",
        ] {
            assert!(validate(bad).is_none(), "{bad:?}");
        }
        assert!(validate(&"a".repeat(63)).is_some());
        assert!(validate(&"a".repeat(64)).is_none());
        assert!(validate(&format!("{}.b", "a".repeat(64))).is_none());
        let deepest = ["a"; 127].join(".");
        assert_eq!(deepest.len(), 253);
        assert!(validate(&deepest).is_some());
        assert!(validate(&format!("{deepest}.")).is_some());
        assert!(validate(&format!("b{deepest}")).is_none());
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
