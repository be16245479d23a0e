//! `cargo bench -p winsink-matcher`: the shipped catalog's patterns plus 1,000,000
//! generated blocklist names (deterministic), a query mix of hits and misses.
//!
//! Besides criterion's timings it prints, once, figures meant to be quoted: build time,
//! heap bytes held by the matcher after build (measured with a counting global
//! allocator), peak heap during build, and single-thread lookups per second for the
//! trie and for a plain `GlobSet` of the catalog's patterns.

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use winsink_matcher::{normalize_pattern, Matcher, MatcherBuilder, SizeEstimate};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the counters only
// observe sizes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: same contract as ours.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if new_size >= layout.size() {
            grew(new_size - layout.size());
        } else {
            CURRENT.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

const NAMES: usize = 1_000_000;
const QUERIES: usize = 1 << 16;

/// The Destination column of Microsoft's "Manage connection endpoints for Windows 11
/// Enterprise" page, which the shipped catalog is generated from, one per line.
const CATALOG: &str = include_str!("../tests/data/catalog-destinations.txt");

/// The embedded list, plus every `pattern = "…"` line of the shipped catalog policy.
fn catalog_patterns() -> Vec<String> {
    let mut seen = HashSet::new();
    let mut out: Vec<String> = Vec::new();
    let mut push = |out: &mut Vec<String>, p: &str| {
        if let Ok(n) = normalize_pattern(p) {
            if n.contains('.') && seen.insert(n.clone()) {
                out.push(n);
            }
        }
    };
    CATALOG
        .lines()
        .filter(|l| !l.starts_with('#'))
        .for_each(|p| push(&mut out, p));
    let embedded = out.len();
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../policies/windows11-enterprise.toml"
    );
    if let Ok(text) = std::fs::read_to_string(path) {
        for line in text.lines() {
            if let Some(p) = line.strip_prefix("pattern = \"") {
                push(&mut out, p.trim_end().trim_end_matches('"'));
            }
        }
    }
    println!(
        "catalog patterns: {} ({} embedded, {} more from policies/windows11-enterprise.toml)",
        out.len(),
        embedded,
        out.len() - embedded
    );
    out
}

/// xorshift64*: deterministic and dependency-free.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn label(&mut self, min: usize, max: usize) -> String {
        const CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz-";
        let len = min + self.below(max - min + 1);
        let mut s: String = (0..len)
            .map(|_| CHARS[self.below(CHARS.len() - 1)] as char)
            .collect();
        // A hyphen now and then, never at either end.
        if len > 4 && self.below(4) == 0 {
            s.replace_range(len / 2..len / 2 + 1, "-");
        }
        s
    }
}

const TLDS: &[&str] = &[
    "com", "com", "com", "com", "net", "net", "org", "io", "de", "ru", "info", "xyz", "co.uk",
    "com.br", "fr", "nl", "jp", "cn", "top", "biz", "online", "site", "tv", "me", "app", "cloud",
];
const SUBS: &[&str] = &[
    "ads",
    "ad",
    "tracker",
    "track",
    "metrics",
    "stats",
    "pixel",
    "cdn",
    "static",
    "img",
    "api",
    "www",
    "log",
    "logs",
    "t",
    "s",
    "collect",
    "analytics",
    "events",
    "telemetry",
    "beacon",
    "m",
];

/// Blocklist-like names: 200,000 registrable domains with a skewed number of subdomains,
/// some listed bare, most with one or two labels in front (a word or a random token).
fn generate_names(rng: &mut Rng) -> Vec<String> {
    let domains: Vec<String> = (0..200_000)
        .map(|_| format!("{}.{}", rng.label(4, 14), TLDS[rng.below(TLDS.len())]))
        .collect();
    let mut seen = HashSet::with_capacity(NAMES);
    let mut names = Vec::with_capacity(NAMES);
    while names.len() < NAMES {
        // Squaring skews towards the first domains: a few big trackers, a long tail.
        let r = rng.below(1 << 16) as u64;
        let d = &domains[((r * r * domains.len() as u64) >> 32) as usize];
        let name = match rng.below(10) {
            0 => d.clone(),
            1..=4 => format!("{}.{d}", SUBS[rng.below(SUBS.len())]),
            5..=8 => format!("{}.{d}", rng.label(3, 12)),
            _ => format!("{}.{}.{d}", rng.label(2, 8), SUBS[rng.below(SUBS.len())]),
        };
        if seen.insert(name.clone()) {
            names.push(name);
        }
    }
    names
}

fn mixed_case(rng: &mut Rng, name: &str) -> String {
    let mut s: String = name
        .chars()
        .map(|c| {
            if rng.below(2) == 0 {
                c.to_ascii_uppercase()
            } else {
                c
            }
        })
        .collect();
    if rng.below(10) == 0 {
        s.push('.');
    }
    s
}

/// How a query picks which listed name (or which popular unlisted site) it asks for.
#[derive(Clone, Copy)]
enum Popularity {
    /// Every name equally likely: nearly every lookup is a cache miss (worst case).
    Uniform,
    /// Zipf (s = 1) over the names, the shape of real DNS traffic: a few names make up
    /// most queries.
    Zipf,
}

impl Popularity {
    fn pick(self, rng: &mut Rng, n: usize) -> usize {
        match self {
            Self::Uniform => rng.below(n),
            Self::Zipf => {
                // floor(n^u) - 1 for uniform u is log-uniform: P(k) ~ 1 / (k ln n).
                let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
                ((n as f64).powf(u) as usize).saturating_sub(1).min(n - 1)
            }
        }
    }
}

/// Half blocklist hits, a sixth catalog hits of every form, a third misses: unlisted
/// sites, and unlisted subdomains of listed names (which walk deep before failing).
/// Mixed case, a trailing dot now and then.
fn generate_queries(rng: &mut Rng, names: &[String], how: Popularity) -> Vec<String> {
    let catalog_hits = [
        "ctldl.windowsupdate.com",
        "a1.b2.wns.windows.com",
        "client.wns.windows.com",
        "watson.telemetry.microsoft.com",
        "watson.events.data.microsoft.com",
        "bigdisplaycatalog.mp.microsoft.com",
        "displaycatalog.mp.microsoft.com",
        "www.bing.com",
        "www.bing.com.au",
        "login.live.com",
        "x.dl.delivery.mp.microsoft.com",
        "settings-win.data.microsoft.com",
        "ocsp.digicert.com",
        "fp.msedge.net",
    ];
    let sites: Vec<String> = (0..100_000)
        .map(|_| {
            let sub = SUBS[rng.below(SUBS.len())];
            let tld = TLDS[rng.below(TLDS.len())];
            format!("{sub}.{}.{tld}", rng.label(4, 14))
        })
        .collect();
    (0..QUERIES)
        .map(|_| match rng.below(6) {
            0..=2 => {
                let n = &names[how.pick(rng, names.len())];
                mixed_case(rng, n)
            }
            3 => {
                let n = catalog_hits[rng.below(catalog_hits.len())];
                mixed_case(rng, n)
            }
            4 => {
                let n = &sites[how.pick(rng, sites.len())];
                mixed_case(rng, n)
            }
            _ => format!("q{}.{}", rng.below(4), names[how.pick(rng, names.len())]),
        })
        .collect()
}

/// The queries back to back in one buffer, as a server sees each name right after
/// parsing it, rather than scattered over the heap where every name would be a miss.
struct Queries {
    text: String,
    spans: Vec<(usize, usize)>,
}

impl Queries {
    fn new(generated: Vec<String>) -> Self {
        let mut spans = Vec::with_capacity(generated.len());
        let mut at = 0;
        for q in &generated {
            spans.push((at, at + q.len()));
            at += q.len();
        }
        Self {
            text: generated.concat(),
            spans,
        }
    }

    fn names(&self) -> Vec<&str> {
        self.spans.iter().map(|&(a, b)| &self.text[a..b]).collect()
    }
}

/// The first pass, as the policy makes it: every pattern checked and its nodes counted.
fn estimate(names: &[String], catalog: &[String]) -> SizeEstimate {
    let mut e = SizeEstimate::new();
    for p in catalog.iter().chain(names) {
        e.add(p).expect("generated names are valid");
    }
    e
}

/// The second pass: the patterns into a trie sized by the first.
fn fill(names: &[String], catalog: &[String], estimate: &SizeEstimate) -> MatcherBuilder {
    let mut b = MatcherBuilder::with_estimate(estimate);
    for (i, p) in catalog.iter().chain(names).enumerate() {
        b.add(p, i as u32).expect("generated names are valid");
    }
    b
}

fn catalog_globset(catalog: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in catalog {
        b.add(
            GlobBuilder::new(p)
                .case_insensitive(true)
                .literal_separator(false)
                .build()
                .expect("valid glob"),
        );
    }
    b.build().expect("valid set")
}

fn trie_pass(m: &Matcher, queries: &[&str]) -> u64 {
    let mut acc = 0u64;
    for q in queries {
        m.for_each_match(q, |id| acc = acc.wrapping_add(u64::from(id) + 1));
    }
    acc
}

fn globset_pass(set: &GlobSet, queries: &[&str], hits: &mut Vec<usize>) -> u64 {
    let mut acc = 0u64;
    for q in queries {
        set.matches_into(q.strip_suffix('.').unwrap_or(q), hits);
        acc = acc.wrapping_add(hits.iter().map(|&i| i as u64 + 1).sum::<u64>());
    }
    acc
}

/// Nanoseconds this thread has spent on a CPU (Linux), so that the figure holds even when
/// other processes share the machine.
fn cpu_ns() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

/// Lookups per second over `passes` rounds of the query set on this thread: per second of
/// wall-clock time, and per second of this thread's CPU time.
fn rate(passes: usize, mut pass: impl FnMut() -> u64) -> String {
    black_box(pass());
    let (wall, cpu) = (Instant::now(), cpu_ns());
    for _ in 0..passes {
        black_box(pass());
    }
    let n = (passes * QUERIES) as f64;
    let wall = n / wall.elapsed().as_secs_f64() / 1e6;
    match (cpu, cpu_ns()) {
        (Some(a), Some(b)) => format!(
            "{wall:.2} M/s wall, {:.2} M/s on-CPU",
            n / ((b - a) as f64 / 1e9) / 1e6
        ),
        _ => format!("{wall:.2} M/s wall"),
    }
}

fn mib(bytes: usize) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

fn benches(c: &mut Criterion) {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let catalog = catalog_patterns();
    let names = generate_names(&mut rng);
    let uniform = Queries::new(generate_queries(&mut rng, &names, Popularity::Uniform));
    let zipf = Queries::new(generate_queries(&mut rng, &names, Popularity::Zipf));
    let mixes = [("zipf", zipf.names()), ("uniform", uniform.names())];

    // One measured build for the quotable figures.
    let before = CURRENT.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let (t0, c0) = (Instant::now(), cpu_ns());
    let sized = estimate(&names, &catalog);
    let ce = cpu_ns();
    let builder = fill(&names, &catalog, &sized);
    let c1 = cpu_ns();
    let big = builder.build();
    let (t2, c2) = (Instant::now(), cpu_ns());
    let held = CURRENT.load(Ordering::Relaxed) - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    let small = fill(&[], &catalog, &estimate(&[], &catalog)).build();
    let set = catalog_globset(&catalog);

    println!(
        "rules: {} catalog patterns + {} generated names",
        catalog.len(),
        names.len()
    );
    println!("matcher: {big:?}");
    let secs = |a: Option<u64>, b: Option<u64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.3} s", (b - a) as f64 / 1e9),
        _ => "n/a".into(),
    };
    println!(
        "trie nodes estimated by the first pass: {} (`nodes` above counts the root too)",
        sized.nodes()
    );
    println!(
        "build (estimate + add + build): {:.3} s wall, {} on-CPU ({} estimating, {} adding/validating, {} compiling)",
        (t2 - t0).as_secs_f64(),
        secs(c0, c2),
        secs(c0, ce),
        secs(ce, c1),
        secs(c1, c2),
    );
    println!(
        "heap held by the matcher after build: {held} bytes ({:.1} MiB; Matcher::heap_bytes says {}), peak during build {:.1} MiB",
        mib(held),
        big.heap_bytes(),
        mib(peak)
    );
    let mut hits = Vec::new();
    for (mix, queries) in &mixes {
        let hit = queries.iter().filter(|q| big.is_match(q)).count();
        let distinct = queries
            .iter()
            .map(|q| q.trim_end_matches('.').to_ascii_lowercase())
            .collect::<HashSet<_>>()
            .len();
        println!(
            "lookups, one thread, {mix} mix ({QUERIES} queries, {distinct} distinct names, {:.1}% match a rule):",
            100.0 * hit as f64 / QUERIES as f64
        );
        println!(
            "  trie, 1M names + catalog: {}",
            rate(30, || trie_pass(&big, queries))
        );
        println!(
            "  trie, catalog only:       {}",
            rate(30, || trie_pass(&small, queries))
        );
        println!(
            "  GlobSet, catalog only:    {}",
            rate(10, || globset_pass(&set, queries, &mut hits))
        );
    }

    let mut g = c.benchmark_group("build");
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    g.bench_function("estimate+add+build 1M names + catalog", |b| {
        b.iter(|| fill(&names, &catalog, &estimate(&names, &catalog)).build())
    });
    g.finish();

    for (mix, queries) in &mixes {
        let mut g = c.benchmark_group(format!("lookup {mix} mix"));
        g.throughput(Throughput::Elements(QUERIES as u64))
            .sample_size(20)
            .warm_up_time(Duration::from_secs(1))
            .measurement_time(Duration::from_secs(4));
        g.bench_function("trie 1M names + catalog", |b| {
            b.iter(|| trie_pass(&big, queries))
        });
        g.bench_function("trie catalog only", |b| {
            b.iter(|| trie_pass(&small, queries))
        });
        g.bench_function("GlobSet catalog only", |b| {
            b.iter(|| globset_pass(&set, queries, &mut hits))
        });
        g.finish();
    }
}

criterion_group!(matcher, benches);
criterion_main!(matcher);
