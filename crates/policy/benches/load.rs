//! `cargo bench -p winsink-policy --bench load`
//!
//! - `load/catalog+1M-hosts`: [`Policy::load`] of a config with the shipped catalog and a
//!   generated 1,000,000-line hosts file (deterministic; written once to a temp folder):
//!   read, parse, build the matcher. Target: ≤ 1.5 s on the 2-core lab machine.
//! - `decide/*`: one [`Policy::decide`] on that policy, for a catalog hit, a list hit and
//!   a miss.
//!
//! Set `WINSINK_BENCH_LINES` to change the list size.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use winsink_policy::{Policy, Verdict};

/// A deterministic hosts file: `lines` lines, mostly `0.0.0.0 NAME`, with the comments,
/// blank lines, `127.0.0.1 localhost` entries and multi-name lines real lists carry.
fn hosts_file(lines: usize) -> String {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        // xorshift64*: fast, deterministic, good enough to vary label shapes.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        state.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    const TLDS: [&str; 6] = ["com", "net", "org", "io", "example", "info"];
    let mut out = String::with_capacity(lines * 32);
    out.push_str("# generated blocklist\n127.0.0.1 localhost\n::1 localhost ip6-localhost\n\n");
    for i in 0..lines.saturating_sub(4) {
        let r = next();
        if i % 1000 == 999 {
            out.push_str("# section\n");
            continue;
        }
        out.push_str(if r % 10 == 0 {
            "127.0.0.1 "
        } else {
            "0.0.0.0 "
        });
        let labels = 1 + (r >> 8) % 3;
        for l in 0..labels {
            let len = 3 + (r >> (16 + 4 * l)) % 9;
            for k in 0..len {
                out.push(char::from(b'a' + ((r >> (k * 3 + l)) % 26) as u8));
            }
            out.push('.');
        }
        out.push_str(&format!("n{i}.{}\n", TLDS[(r >> 40) as usize % TLDS.len()]));
    }
    out
}

fn setup() -> PathBuf {
    let lines = std::env::var("WINSINK_BENCH_LINES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dir = std::env::temp_dir().join(format!("winsink-policy-bench-{lines}"));
    std::fs::create_dir_all(&dir).unwrap();
    let hosts = dir.join("hosts.txt");
    if !hosts.exists() {
        std::fs::write(&hosts, hosts_file(lines)).unwrap();
    }
    let catalog =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/windows11-enterprise.toml");
    let config = dir.join("winsink.toml");
    std::fs::write(
        &config,
        format!(
            "catalogs = [{:?}]\n[areas]\ndiagnostic-data = \"block\"\n\
             [[lists]]\npath = \"hosts.txt\"\nformat = \"hosts\"\naction = \"block\"\nlabel = \"1M\"\n",
            catalog.display().to_string()
        ),
    )
    .unwrap();
    config
}

fn bench(c: &mut Criterion) {
    let config = setup();

    // One cold load first, reported plainly: the figure the issue asks for.
    let t = Instant::now();
    let loaded = Policy::load(&config).unwrap();
    let cold = t.elapsed();
    let s = loaded.policy.summary();
    eprintln!(
        "cold load: {:.3} s for {} list entries ({} bad lines) + {} catalog endpoints; {} patterns",
        cold.as_secs_f64(),
        s.lists[0].loaded,
        s.lists[0].bad,
        s.catalogs.iter().map(|c| c.endpoints).sum::<usize>(),
        s.patterns
    );

    let mut g = c.benchmark_group("load");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    g.bench_function("catalog+1M-hosts", |b| {
        b.iter(|| black_box(Policy::load(&config).unwrap()))
    });
    g.finish();

    let policy = &loaded.policy;
    let client = IpAddr::V4(Ipv4Addr::LOCALHOST);
    assert_eq!(
        policy
            .decide(client, "self.events.data.microsoft.com")
            .verdict,
        Verdict::Block
    );
    let listed = std::fs::read_to_string(config.with_file_name("hosts.txt"))
        .unwrap()
        .lines()
        .nth(5000)
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    assert_eq!(policy.decide(client, &listed).verdict, Verdict::Block);
    let mut g = c.benchmark_group("decide");
    for (what, name) in [
        ("catalog-hit", "self.events.data.microsoft.com"),
        ("list-hit", listed.as_str()),
        ("miss", "www.example.org"),
    ] {
        g.bench_function(what, |b| {
            b.iter(|| black_box(policy.decide(client, black_box(name)).verdict))
        });
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
