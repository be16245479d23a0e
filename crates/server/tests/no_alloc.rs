//! The answering path allocates nothing once a task's buffers have grown: a refusal, a
//! FORMERR, a sinkhole answer and a cache hit, each with its JSON or pretty query-log
//! line. This is what the hand-written wire parsing and log writer are for; counted with
//! a global allocator (so this test is a binary of its own), on the answering thread only
//! (the query log's writer thread is not the answering path).

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

use winsink_policy::Policy;
use winsink_server::fuzzing::{Handled, Harness, Proto};
use winsink_server::LogFormat;

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::alloc_zeroed`'s contract.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CONFIG: &str = r#"
catalogs = ["builtin:windows11-enterprise"]
[areas]
diagnostic-data = "block"
[[rules]]
pattern = "*.tracker.test"
action = "block"
[server]
allow_clients = ["127.0.0.0/8"]
[cache]
size = 64
[log]
queries = "all"
"#;

/// A query for `name` (type A), with an OPT record when `edns`.
fn query(id: u16, name: &str, edns: bool) -> Vec<u8> {
    let mut p = id.to_be_bytes().to_vec();
    p.extend_from_slice(&[0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, u8::from(edns)]);
    for label in name.split('.') {
        p.push(label.len() as u8);
        p.extend_from_slice(label.as_bytes());
    }
    p.extend_from_slice(&[0, 0, 1, 0, 1]);
    if edns {
        p.extend_from_slice(&[0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0]);
    }
    p
}

/// An upstream's answer to `q` (without its OPT record): one A record, TTL 300.
fn upstream_answer(q: &[u8]) -> Vec<u8> {
    let question_end = q.len() - if q[11] == 1 { 11 } else { 0 };
    let mut a = q[..question_end].to_vec();
    a[2..4].copy_from_slice(&[0x81, 0x80]);
    a[6..8].copy_from_slice(&[0, 1]);
    a[10..12].copy_from_slice(&[0, 0]);
    a.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 1, 44, 0, 4, 192, 0, 2, 1]);
    a
}

/// Runs every case `rounds` times; returns the allocations counted on this thread.
fn run(h: &mut Harness, rounds: usize, counted: bool) -> usize {
    let allowed: SocketAddr = "127.0.0.1:5300".parse().unwrap();
    let refused: SocketAddr = "203.0.113.9:5300".parse().unwrap();
    let cases: Vec<(Vec<u8>, SocketAddr, Proto)> = vec![
        (query(1, "www.example.test", true), refused, Proto::Udp),
        (query(2, "x.tracker.test", true), allowed, Proto::Udp),
        (query(3, "x.tracker.test", false), allowed, Proto::Tcp),
        // Blocked by a catalog area: the line names it.
        (
            query(7, "watson.events.data.microsoft.com", true),
            allowed,
            Proto::Udp,
        ),
        // Two areas; decided_by and the area-level impact of an undescribed endpoint.
        (
            query(8, "self.events.data.microsoft.com", true),
            allowed,
            Proto::Udp,
        ),
        (
            query(9, "functional.events.data.microsoft.com", true),
            allowed,
            Proto::Udp,
        ),
        (query(4, "cached.example.test", true), allowed, Proto::Udp),
        (query(5, "cached.example.test", false), allowed, Proto::Tcp),
        // Two questions: FORMERR.
        (
            {
                let mut p = query(6, "two.example.test", false);
                p[5] = 2;
                p
            },
            allowed,
            Proto::Udp,
        ),
    ];
    let mut out = Vec::with_capacity(4096);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    COUNTING.with(|c| c.set(counted));
    for _ in 0..rounds {
        for (packet, client, proto) in &cases {
            let handled = h.answer(packet, *client, *proto, &mut out);
            assert_eq!(handled, Handled::Answer);
        }
    }
    COUNTING.with(|c| c.set(false));
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn refusals_errors_sinkhole_answers_and_cache_hits_allocate_nothing() {
    for format in [LogFormat::Json, LogFormat::Pretty] {
        let loaded = Policy::from_config_str(CONFIG, Path::new("."), "noalloc.toml").unwrap();
        let mut h = Harness::new(loaded.policy, &loaded.startup, format).unwrap();
        let q = query(4, "cached.example.test", true);
        assert!(h.cache_upstream(&q, &upstream_answer(&q), 0));
        // The counter counts: the same cases on fresh buffers allocate.
        assert!(
            run(&mut h, 1, true) > 0,
            "{format:?}: the counter saw nothing"
        );
        run(&mut h, 3, false);
        assert_eq!(run(&mut h, 200, true), 0, "{format:?}");
    }
}
