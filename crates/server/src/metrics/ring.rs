//! The recent-queries ring behind `/api/v1/queries`: the last N queries, lock-free.
//!
//! Each slot is a fixed block of atomic words guarded by a sequence number (a seqlock),
//! so that answering threads write without a lock or an allocation, and readers (the
//! HTTP handlers, the statistics task) copy a slot and keep it only if its sequence
//! number did not move meanwhile. A writer takes the next position with one
//! `fetch_add`; it writes its slot only if no newer writer owns it, so a writer
//! preempted for a whole lap of the ring (N queries) loses its entry instead of
//! overwriting a newer one. Names are stored inline, eight bytes to a word (qname, then
//! from the next word the deciding CNAME chain name when both fit in [`NAME_BYTES`]);
//! areas as label slots (see [`super::labels`]), at most [`MAX_AREAS`] per entry.

use std::borrow::Cow;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::atomic::{fence, AtomicU64, Ordering};

use super::{Decided, Path};
use crate::engine::Proto;

/// Bytes of names kept per entry.
pub(crate) const NAME_BYTES: usize = 264;
/// Areas kept per entry.
pub(crate) const MAX_AREAS: usize = 8;
const HEAD_WORDS: usize = 6;
const WORDS: usize = HEAD_WORDS + NAME_BYTES / 8;
/// `upstream` of an entry that asked none.
pub(crate) const NO_UPSTREAM: u8 = u8::MAX;

/// One query as the ring keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Position in the stream of queries (0 for the first since the start).
    pub(crate) seq: u64,
    /// Microseconds since the Unix epoch.
    pub(crate) ts_us: u64,
    pub(crate) client: IpAddr,
    pub(crate) proto: Proto,
    pub(crate) qname: String,
    pub(crate) cname: Option<String>,
    pub(crate) qtype: Option<u16>,
    pub(crate) decision: Decided,
    pub(crate) path: Path,
    /// The deciding label's slot.
    pub(crate) label: usize,
    /// The label slots of the areas matched.
    pub(crate) areas: Vec<usize>,
    pub(crate) rcode: u16,
    pub(crate) answers: u16,
    pub(crate) cached: bool,
    /// Index of the upstream asked, or [`NO_UPSTREAM`].
    pub(crate) upstream: u8,
    pub(crate) duration_us: u32,
}

/// What a writer hands to [`Ring::push`]: the entry without its `seq`, with borrowed
/// names and the areas as a fixed array.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Facts<'a> {
    pub(crate) ts_us: u64,
    pub(crate) client: IpAddr,
    pub(crate) proto: Proto,
    pub(crate) qname: &'a str,
    pub(crate) cname: Option<&'a str>,
    pub(crate) qtype: Option<u16>,
    pub(crate) decision: Decided,
    pub(crate) path: Path,
    pub(crate) label: usize,
    pub(crate) areas: [u8; MAX_AREAS],
    pub(crate) rcode: u16,
    pub(crate) answers: u16,
    pub(crate) cached: bool,
    pub(crate) upstream: u8,
    pub(crate) duration_us: u32,
}

/// One entry as [`Ring::read`] copies it, unpacked on demand: for a reader that looks
/// at each entry once and keeps none (the statistics task), so that reading allocates
/// nothing. [`Raw::to_entry`] makes the owned [`Entry`].
#[derive(Clone)]
pub(crate) struct Raw {
    pos: u64,
    w: [u64; HEAD_WORDS],
    names: [u8; NAME_BYTES],
}

impl Raw {
    pub(crate) fn new() -> Self {
        Self {
            pos: 0,
            w: [0; HEAD_WORDS],
            names: [0; NAME_BYTES],
        }
    }

    #[inline]
    fn name_len(&self) -> usize {
        (self.w[4] >> 48 & 0xff) as usize
    }

    #[inline]
    fn cname_len(&self) -> usize {
        (self.w[4] >> 56) as usize
    }

    #[inline]
    pub(crate) fn ts_us(&self) -> u64 {
        self.w[0]
    }

    #[inline]
    pub(crate) fn client(&self) -> IpAddr {
        let ip = Ipv6Addr::from((u128::from(self.w[1]) << 64) | u128::from(self.w[2]));
        if self.w[3] >> 17 & 1 == 1 {
            ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4)
        } else {
            IpAddr::V6(ip)
        }
    }

    #[inline]
    pub(crate) fn decision(&self) -> Decided {
        Decided::from_index((self.w[3] >> 20 & 0xf) as usize)
    }

    /// The deciding label's slot.
    #[inline]
    pub(crate) fn label(&self) -> usize {
        (self.w[4] >> 40 & 0xff) as usize
    }

    /// The label slots of the areas matched.
    #[inline]
    pub(crate) fn areas(&self) -> impl Iterator<Item = usize> {
        self.w[5]
            .to_le_bytes()
            .into_iter()
            .take_while(|&s| s != 0)
            .map(usize::from)
    }

    /// The query name (borrowed unless its bytes are not UTF-8: a multi-byte character
    /// cut at [`NAME_BYTES`]).
    #[inline]
    pub(crate) fn qname(&self) -> Cow<'_, str> {
        let bytes = &self.names[..self.name_len()];
        std::str::from_utf8(bytes).map_or_else(|_| String::from_utf8_lossy(bytes), Cow::Borrowed)
    }

    fn cname(&self) -> Option<Cow<'_, str>> {
        let (q, c) = (self.name_len().next_multiple_of(8), self.cname_len());
        (self.w[3] >> 56 & 1 == 1).then(|| String::from_utf8_lossy(&self.names[q..q + c]))
    }

    pub(crate) fn to_entry(&self) -> Entry {
        let (a, b) = (self.w[3], self.w[4]);
        Entry {
            seq: self.pos,
            ts_us: self.ts_us(),
            client: self.client(),
            proto: Proto::from_index((a >> 18 & 1 | (a >> 57 & 1) << 1) as usize),
            qname: self.qname().into_owned(),
            cname: self.cname().map(Cow::into_owned),
            qtype: (a >> 16 & 1 == 1).then_some(a as u16),
            decision: self.decision(),
            path: Path::from_index((a >> 24 & 0xf) as usize),
            label: self.label(),
            areas: self.areas().collect(),
            rcode: (a >> 28 & 0xfff) as u16,
            answers: (a >> 40) as u16,
            cached: a >> 19 & 1 == 1,
            upstream: (b >> 32) as u8,
            duration_us: b as u32,
        }
    }
}

/// An entry's words: 312 bytes in five cache lines, so that the head and a name of up
/// to 16 bytes are written and read in one line, a name of up to 80 in two.
#[repr(align(64))]
struct Slot {
    words: [AtomicU64; WORDS],
}

/// The ring.
pub(crate) struct Ring {
    /// Per slot: `2 * position + 1` while being written, `2 * position + 2` once
    /// written, 0 never. Apart from the slots so that a writer's claim (a load and a
    /// compare-exchange) finds its line in cache: the slot it writes was last written a
    /// whole lap ago (10,000 queries by default), and the stores into it do not wait for
    /// its lines the way the claim's load would.
    seqs: Box<[AtomicU64]>,
    slots: Box<[Slot]>,
    head: AtomicU64,
    /// Entries given up because a newer writer owned their slot.
    lost: AtomicU64,
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("capacity", &self.slots.len())
            .field("head", &self.head.load(Ordering::Relaxed))
            .finish()
    }
}

impl Ring {
    /// A ring of `capacity` entries (at least 1).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.max(1);
        let slots = (0..capacity)
            .map(|_| Slot {
                words: std::array::from_fn(|_| AtomicU64::new(0)),
            })
            .collect();
        Self {
            seqs: (0..capacity).map(|_| AtomicU64::new(0)).collect(),
            slots,
            head: AtomicU64::new(0),
            lost: AtomicU64::new(0),
        }
    }

    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Positions handed out so far: the next entry's `seq`.
    pub(crate) fn head(&self) -> u64 {
        self.head.load(Ordering::Acquire)
    }

    /// Entries lost to a wrap-around race (see the module docs).
    pub(crate) fn lost(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    /// Appends `f`. No lock, no allocation.
    pub(crate) fn push(&self, f: &Facts<'_>) {
        let pos = self.head.fetch_add(1, Ordering::AcqRel);
        let i = (pos % self.slots.len() as u64) as usize;
        // The next slot's first two lines (its head and a name of up to 80 bytes), for
        // the next writer: see [`prefetch_for_write`].
        let next = &self.slots[(i + 1) % self.slots.len()].words;
        prefetch_for_write(&next[0]);
        prefetch_for_write(&next[8]);
        let (seq, slot) = (&self.seqs[i], &self.slots[i]);
        let writing = 2 * pos + 1;
        let mut cur = seq.load(Ordering::Relaxed);
        loop {
            if cur & 1 == 1 || cur >= writing {
                self.lost.fetch_add(1, Ordering::Relaxed);
                return;
            }
            match seq.compare_exchange_weak(cur, writing, Ordering::Acquire, Ordering::Relaxed) {
                Ok(_) => break,
                Err(now) => cur = now,
            }
        }
        // The words below must not become visible before the odd sequence number.
        fence(Ordering::Release);
        let w = &slot.words;
        let ip = match f.client {
            IpAddr::V4(v4) => v4.to_ipv6_mapped(),
            IpAddr::V6(v6) => v6,
        };
        let ip = u128::from(ip);
        let (qname, cname) = (f.qname.as_bytes(), f.cname.map(str::as_bytes));
        let qlen = qname.len().min(NAME_BYTES).min(255);
        let clen = cname.map_or(0, |c| {
            if qlen.next_multiple_of(8) + c.len() <= NAME_BYTES && c.len() <= 255 {
                c.len()
            } else {
                0
            }
        });
        let a = u64::from(f.qtype.unwrap_or(0))
            | u64::from(f.qtype.is_some()) << 16
            | u64::from(f.client.is_ipv4()) << 17
            | (f.proto.index() as u64 & 1) << 18
            | u64::from(f.cached) << 19
            | (f.decision as u64) << 20
            | (f.path as u64) << 24
            | u64::from(f.rcode & 0xfff) << 28
            | u64::from(f.answers) << 40
            | u64::from(f.cname.is_some() && clen > 0) << 56
            | (f.proto.index() as u64 >> 1) << 57;
        let b = u64::from(f.duration_us)
            | u64::from(f.upstream) << 32
            | (f.label.min(255) as u64) << 40
            | (qlen as u64) << 48
            | (clen as u64) << 56;
        let relaxed = Ordering::Relaxed;
        w[0].store(f.ts_us, relaxed);
        w[1].store((ip >> 64) as u64, relaxed);
        w[2].store(ip as u64, relaxed);
        w[3].store(a, relaxed);
        w[4].store(b, relaxed);
        w[5].store(u64::from_le_bytes(f.areas), relaxed);
        // Only the words the names fill, straight from the names' bytes: a short name
        // writes a few of the 33 (a copy through a buffer on the stack cost a
        // store-forwarding stall a word).
        let q_words = store_bytes(&w[HEAD_WORDS..], &qname[..qlen]);
        if let Some(c) = cname {
            store_bytes(&w[HEAD_WORDS + q_words..], &c[..clen]);
        }
        seq.store(writing + 1, Ordering::Release);
    }

    /// Entry `pos` if the ring still holds it whole.
    pub(crate) fn get(&self, pos: u64) -> Option<Entry> {
        let mut raw = Raw::new();
        self.read(pos, &mut raw).then(|| raw.to_entry())
    }

    /// Copies entry `pos` into `raw` if the ring still holds it whole; `false` if not
    /// (overwritten, or being written). No allocation.
    pub(crate) fn read(&self, pos: u64, raw: &mut Raw) -> bool {
        let i = (pos % self.slots.len() as u64) as usize;
        let (seq, slot) = (&self.seqs[i], &self.slots[i]);
        let want = 2 * pos + 2;
        if seq.load(Ordering::Acquire) != want {
            return false;
        }
        let relaxed = Ordering::Relaxed;
        for (word, atomic) in raw.w.iter_mut().zip(&slot.words[..HEAD_WORDS]) {
            *word = atomic.load(relaxed);
        }
        let words = raw.name_len().div_ceil(8) + raw.cname_len().div_ceil(8);
        for (bytes, atomic) in raw
            .names
            .chunks_exact_mut(8)
            .zip(&slot.words[HEAD_WORDS..])
            .take(words)
        {
            bytes.copy_from_slice(&atomic.load(relaxed).to_le_bytes());
        }
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) != want {
            return false;
        }
        raw.pos = pos;
        true
    }

    /// The entries still held, newest first, while `keep` returns true.
    pub(crate) fn newest_first(&self, mut keep: impl FnMut(Entry) -> bool) {
        let head = self.head();
        let oldest = head.saturating_sub(self.slots.len() as u64);
        for pos in (oldest..head).rev() {
            if let Some(e) = self.get(pos) {
                if !keep(e) {
                    return;
                }
            }
        }
    }
}

/// Asks the CPU to bring `word`'s cache line in for writing, without waiting for it.
///
/// A slot is written once a lap of the ring (10,000 queries by default), so its lines
/// have left the caches by then: without this, the writer's stores wait for them in the
/// store buffer, and the stores after them (the query-log line formatted next) stall
/// behind: perf put 0.8% of the server's CPU samples on a store in the log line's
/// timestamp, with metrics on only. A prefetch is a hint that costs no wait.
#[inline]
#[allow(unsafe_code)]
fn prefetch_for_write(word: &AtomicU64) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch never faults and changes no memory, whatever the address (and
    // this one is a live reference); SSE, which the intrinsic names, is part of the
    // x86-64 baseline. A CPU without PREFETCHW runs it as a no-op.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_ET0 }>(
            std::ptr::from_ref(word).cast(),
        );
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = word;
}

/// Stores `bytes` into the first words of `words`, eight bytes to a word in little-endian
/// order (the last word padded with zeros); returns the words written.
#[inline]
fn store_bytes(words: &[AtomicU64], bytes: &[u8]) -> usize {
    let chunks = bytes.chunks_exact(8);
    let rest = chunks.remainder();
    let mut n = 0;
    for (word, chunk) in words.iter().zip(chunks) {
        word.store(
            u64::from_le_bytes(chunk.try_into().unwrap_or_default()),
            Ordering::Relaxed,
        );
        n += 1;
    }
    if let (false, Some(word)) = (rest.is_empty(), words.get(n)) {
        let mut last = [0u8; 8];
        last[..rest.len()].copy_from_slice(rest);
        word.store(u64::from_le_bytes(last), Ordering::Relaxed);
        n += 1;
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts<'a>(qname: &'a str, cname: Option<&'a str>) -> Facts<'a> {
        Facts {
            ts_us: 1_700_000_000_000_000,
            client: "10.0.10.5".parse().unwrap(),
            proto: Proto::Https,
            qname,
            cname,
            qtype: Some(28),
            decision: Decided::Block,
            path: Path::Sinkhole,
            label: 7,
            areas: [7, 9, 0, 0, 0, 0, 0, 0],
            rcode: 3,
            answers: 2,
            cached: false,
            upstream: NO_UPSTREAM,
            duration_us: 41,
        }
    }

    #[test]
    fn an_entry_reads_back_as_written() {
        let r = Ring::new(4);
        r.push(&facts(
            "watson.events.data.microsoft.com",
            Some("x.example"),
        ));
        let e = r.get(0).unwrap();
        assert_eq!(e.qname, "watson.events.data.microsoft.com");
        assert_eq!(e.cname.as_deref(), Some("x.example"));
        assert_eq!(e.client, "10.0.10.5".parse::<IpAddr>().unwrap());
        assert_eq!(
            (e.qtype, e.rcode, e.answers, e.duration_us, e.label),
            (Some(28), 3, 2, 41, 7)
        );
        assert_eq!(e.areas, [7, 9]);
        assert_eq!(
            (e.decision, e.path, e.proto, e.cached),
            (Decided::Block, Path::Sinkhole, Proto::Https, false)
        );
        // A name of one byte: the CNAME starts at the next word.
        let mut v6 = facts("a", Some("c.example"));
        v6.client = "2001:db8::1".parse().unwrap();
        v6.qtype = None;
        r.push(&v6);
        let e = r.get(1).unwrap();
        assert_eq!(e.client, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.qname, "a");
        assert_eq!((e.qtype, e.cname.as_deref()), (None, Some("c.example")));
    }

    #[test]
    fn a_full_ring_keeps_the_newest_entries() {
        let r = Ring::new(3);
        let names: Vec<String> = (0..5).map(|i| format!("n{i}.example")).collect();
        for n in &names {
            r.push(&facts(n, None));
        }
        let mut seen = Vec::new();
        r.newest_first(|e| {
            seen.push(e.qname);
            true
        });
        assert_eq!(seen, ["n4.example", "n3.example", "n2.example"]);
        assert!(r.get(0).is_none(), "overwritten");
    }

    #[test]
    fn the_longest_names_fit_and_a_cname_that_does_not_is_left_out() {
        let long = format!("{}.example", "a".repeat(240));
        let r = Ring::new(2);
        r.push(&facts(
            &long,
            Some("b.example.with.a.longish.cname.that.does.not.fit"),
        ));
        let e = r.get(0).unwrap();
        assert_eq!(e.qname, long);
        assert_eq!(e.cname, None);
    }

    #[test]
    fn concurrent_writers_leave_only_whole_entries() {
        let r = std::sync::Arc::new(Ring::new(64));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let r = r.clone();
                std::thread::spawn(move || {
                    let name = format!("t{t}.example");
                    for _ in 0..5000 {
                        r.push(&facts(&name, None));
                    }
                })
            })
            .collect();
        let mut reads = 0;
        while reads < 2000 {
            r.newest_first(|e| {
                assert!(
                    e.qname.starts_with('t') && e.qname.ends_with(".example"),
                    "{e:?}"
                );
                assert_eq!(e.duration_us, 41);
                reads += 1;
                true
            });
            if threads.iter().all(|t| t.is_finished()) {
                break;
            }
        }
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(r.head(), 20_000);
    }
}
