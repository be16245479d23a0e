//! Query names on the hot path: validation, label positions and the label hash, all
//! without allocating or building a lower-cased copy.

use crate::pattern::{MAX_LABEL, MAX_NAME};

/// Most labels a valid name can have (`a.a.….a`, 253 octets).
pub(crate) const MAX_LABELS: usize = MAX_NAME.div_ceil(2);

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

/// A validated query name: trailing dot removed, label start offsets recorded.
pub(crate) struct QueryName<'a> {
    pub(crate) bytes: &'a [u8],
    starts: [u8; MAX_LABELS],
    len: usize,
}

impl<'a> QueryName<'a> {
    /// `None` for anything that is not a valid name; such a name matches no rule.
    #[inline]
    pub(crate) fn parse(name: &'a str) -> Option<Self> {
        let bytes = name.as_bytes();
        let bytes = bytes.strip_suffix(b".").unwrap_or(bytes);
        if bytes.is_empty() || bytes.len() > MAX_NAME {
            return None;
        }
        let mut q = Self {
            bytes,
            starts: [0; MAX_LABELS],
            len: 1,
        };
        let mut start = 0;
        for (i, &b) in bytes.iter().enumerate() {
            if b == b'.' {
                let label = i - start;
                if label == 0 || label > MAX_LABEL {
                    return None;
                }
                start = i + 1;
                // Cannot overflow: 253 octets hold at most 127 labels.
                q.starts[q.len] = start as u8;
                q.len += 1;
            } else if !NAME_BYTE[b as usize] {
                return None;
            }
        }
        let last = bytes.len() - start;
        if last == 0 || last > MAX_LABEL {
            return None;
        }
        Some(q)
    }

    /// Number of labels.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Label `i`, counted from the left.
    #[inline]
    pub(crate) fn label(&self, i: usize) -> &'a [u8] {
        let start = self.starts[i] as usize;
        let end = if i + 1 < self.len {
            self.starts[i + 1] as usize - 1
        } else {
            self.bytes.len()
        };
        &self.bytes[start..end]
    }

    /// The labels left of label `i`, without the dot (empty for `i == 0`).
    #[inline]
    pub(crate) fn left_of(&self, i: usize) -> &'a [u8] {
        match i {
            0 => &[],
            _ => &self.bytes[..self.starts[i] as usize - 1],
        }
    }
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

/// Hash of the name suffix `label.<suffix hashed as h>`, case-insensitive: the trie keys
/// each node by the hash of its whole suffix, so a lookup can compute every level's
/// hash from the name alone and fetch all their table slots at once.
#[inline]
pub(crate) fn mix_label(h: u64, label: &[u8]) -> u64 {
    let mut h = h ^ (label.len() as u64).wrapping_mul(K2);
    let mut chunks = label.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes(c.try_into().expect("eight bytes"));
        h = fold_mul(h ^ lower8(w), K1);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut buf = [0u8; 8];
        buf[..rest.len()].copy_from_slice(rest);
        h = fold_mul(h ^ lower8(u64::from_le_bytes(buf)), K1);
    }
    fold_mul(h, K2)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(name: &str) -> Option<Vec<String>> {
        let q = QueryName::parse(name)?;
        Some(
            (0..q.len())
                .map(|i| String::from_utf8(q.label(i).to_vec()).unwrap())
                .collect(),
        )
    }

    #[test]
    fn splits_labels_and_drops_one_trailing_dot() {
        assert_eq!(
            labels("a.Bc.d."),
            Some(vec!["a".into(), "Bc".into(), "d".into()])
        );
        assert_eq!(labels("x"), Some(vec!["x".into()]));
        let q = QueryName::parse("a.bc.d").unwrap();
        assert_eq!(q.left_of(0), b"");
        assert_eq!(q.left_of(1), b"a");
        assert_eq!(q.left_of(2), b"a.bc");
    }

    #[test]
    fn invalid_names_are_refused() {
        for bad in [
            "", ".", "..", "a..b", ".a", "a..", "a b", "a/b", "é.com", "a\0", "a.b\n",
        ] {
            assert!(QueryName::parse(bad).is_none(), "{bad:?}");
        }
        assert!(QueryName::parse(&"a".repeat(63)).is_some());
        assert!(QueryName::parse(&"a".repeat(64)).is_none());
        let deepest = ["a"; 127].join(".");
        assert_eq!(deepest.len(), 253);
        assert_eq!(QueryName::parse(&deepest).unwrap().len(), 127);
        assert!(QueryName::parse(&format!("{deepest}.")).is_some());
        assert!(QueryName::parse(&format!("b{deepest}")).is_none());
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
