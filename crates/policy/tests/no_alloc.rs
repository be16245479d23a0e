//! `Policy::decide` allocates nothing: counted with a global allocator, which is why this
//! test is a binary of its own.

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use winsink_policy::{Policy, Verdict};

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded to `System` unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller upholds `GlobalAlloc::dealloc`'s contract.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn decide_and_reading_its_matches_allocate_nothing() {
    let dir = std::env::temp_dir().join(format!("winsink-policy-noalloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("list.txt"),
        "0.0.0.0 ads.example\n||track.example^\n",
    )
    .unwrap();
    let catalog =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../policies/windows11-enterprise.toml");
    let config = format!(
        "catalogs = [{:?}]\n[areas]\ndiagnostic-data = \"block\"\n\
         [[rules]]\npattern = \"*.lab.example\"\naction = \"log\"\n\
         [[lists]]\npath = \"list.txt\"\naction = \"block\"\n\
         [[groups]]\nname = \"strict\"\nclients = [\"10.0.10.0/24\", \"fd00::/8\"]\ndefault_action = \"block\"\n\
         [[groups.rules]]\npattern = \"login.live.com\"\naction = \"allow\"\n",
        catalog.display().to_string()
    );
    let loaded = Policy::from_config_str(&config, &dir, "noalloc.toml").unwrap();
    let policy = &loaded.policy;
    let clients: Vec<IpAddr> = ["127.0.0.1", "10.0.10.7", "fd00::1", "::ffff:10.0.10.7"]
        .iter()
        .map(|c| c.parse().unwrap())
        .collect();
    let names = [
        "self.events.data.microsoft.com",
        "WATSON.Events.Data.Microsoft.COM.",
        "www.bing.com",
        "a.b.wns.windows.com",
        "x.lab.example",
        "ads.example",
        "deep.track.example",
        "login.live.com",
        "example.org",
        "",
        ".",
        "not a name",
    ];

    // The query log serialises `decided_by` into a buffer that has grown once.
    let mut json: Vec<u8> = Vec::with_capacity(64 * 1024);
    COUNTING.store(true, Ordering::SeqCst);
    let mut seen = 0usize;
    let mut blocked = 0usize;
    for &client in &clients {
        for name in names {
            let d = policy.decide(client, name);
            for m in d.matches() {
                seen += m.pattern.len() + m.impact.map_or(0, |i| i.text.len());
            }
            seen += d.areas().count() + usize::from(d.decided_by().is_some());
            seen += d.impacts().count() + d.impact_scope().map_or(0, str::len);
            if let Some(by) = d.decided_by() {
                json.clear();
                serde_json::to_writer(&mut json, &by).unwrap();
                serde_json::to_writer(&mut json, &by.via_cname("cdn.example")).unwrap();
                seen += json.len();
            }
            blocked += usize::from(d.verdict == Verdict::Block);
        }
    }
    COUNTING.store(false, Ordering::SeqCst);

    assert_eq!(ALLOCATIONS.load(Ordering::SeqCst), 0, "decide allocated");
    assert!(seen > 0 && blocked > 0);
    std::fs::remove_dir_all(&dir).ok();
}
