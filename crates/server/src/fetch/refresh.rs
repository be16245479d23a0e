//! The daemon's downloads: every URL list of the policy in force, each every `refresh`.
//!
//! At start a list whose copy was confirmed current less than `refresh` ago waits for the
//! rest of its interval (a restart does not download everything again); any other list
//! is downloaded at once. A failed download is tried again after [`RETRY`] (or `refresh`,
//! if shorter), said each time as a WARN naming the list, the reason and the copy kept.
//! Lists a reload adds are picked up within a second; lists it removes are dropped.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use futures_util::future::join_all;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};
use winsink_policy::{Policy, UrlList};

use super::{CachedCopy, FetchError, Fetched, Fetcher};

/// A failed download is tried again this long after (or after the list's `refresh`, if
/// that is shorter).
pub const RETRY: Duration = Duration::from_secs(300);

/// How long the task sleeps at most before looking at the policy again (for lists a
/// reload added).
const LOOK: Duration = Duration::from_secs(1);

/// Keeps the URL lists of the policy in `current` downloaded until `shutdown`; sends on
/// `changed` after a round of downloads that saved a new copy (the reloader's "reload
/// now", so that the new copy is applied, logged and counted as a reload).
///
/// The HTTP client is made when the first list is due (a config without URL lists never
/// pays for loading the root certificates).
pub async fn refresh(
    current: Arc<ArcSwap<Policy>>,
    changed: mpsc::Sender<()>,
    shutdown: CancellationToken,
) {
    let mut due: HashMap<(String, PathBuf), Instant> = HashMap::new();
    let mut fetcher: Option<Fetcher> = None;
    loop {
        let policy = current.load_full();
        let now = Instant::now();
        due.retain(|(url, file), _| {
            policy
                .url_lists()
                .iter()
                .any(|l| &l.url == url && &l.cache_file == file)
        });
        for list in policy.url_lists() {
            due.entry((list.url.clone(), list.cache_file.clone()))
                .or_insert_with(|| now + first_wait(list));
        }
        let ready: Vec<&UrlList> = policy
            .url_lists()
            .iter()
            .filter(|l| due[&(l.url.clone(), l.cache_file.clone())] <= now)
            .collect();
        if !ready.is_empty() && fetcher.is_none() {
            match Fetcher::new() {
                Ok(f) => fetcher = Some(f),
                Err(e) => {
                    warn!("lists by URL are not downloaded: {e}");
                    for l in &ready {
                        due.insert((l.url.clone(), l.cache_file.clone()), now + RETRY);
                    }
                }
            }
        }
        if let (false, Some(fetcher)) = (ready.is_empty(), &fetcher) {
            let downloads = policy.downloads();
            let results = join_all(ready.iter().map(|l| fetcher.fetch(l, downloads))).await;
            let mut saved = false;
            for (list, result) in ready.iter().zip(results) {
                let wait = match &result {
                    Ok(_) => list.refresh,
                    Err(_) => list.refresh.min(RETRY),
                };
                due.insert(
                    (list.url.clone(), list.cache_file.clone()),
                    Instant::now() + wait,
                );
                saved |= matches!(result, Ok(Fetched::Saved { .. }));
                log(list, &result);
            }
            if saved {
                // A reload already queued will read the new copy too.
                let _ = changed.try_send(());
            }
        }
        let next = due.values().min().copied().unwrap_or(now + LOOK);
        let wake = next.min(Instant::now() + LOOK);
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep_until(wake) => {}
        }
    }
}

/// How long after start `list` is first downloaded: the rest of its interval if its copy
/// was confirmed current within it, else now.
fn first_wait(list: &UrlList) -> Duration {
    let Some(checked) = CachedCopy::of(list).checked else {
        return Duration::ZERO;
    };
    let since = SystemTime::now()
        .duration_since(checked)
        .unwrap_or_default();
    list.refresh.saturating_sub(since)
}

/// One line per download: INFO for a new copy, DEBUG for none, WARN for a failure.
fn log(list: &UrlList, result: &Result<Fetched, FetchError>) {
    let label = &list.label;
    match result {
        Ok(Fetched::Saved { bytes, counts }) => info!(
            "list {label}: downloaded {}: {bytes} bytes, {} entries{}",
            list.url,
            counts.valid,
            if counts.malformed > 0 {
                format!(", {} malformed lines", counts.malformed)
            } else {
                String::new()
            }
        ),
        Ok(Fetched::NotModified) => debug!("list {label}: not modified"),
        Ok(Fetched::Unchanged { bytes }) => debug!("list {label}: unchanged ({bytes} bytes)"),
        Err(e) => warn!(
            "list {label} ({}): download failed: {e}; {}",
            list.url,
            kept(list)
        ),
    }
}

/// What stays in force after a failed download, for its WARN.
pub(crate) fn kept(list: &UrlList) -> String {
    let copy = CachedCopy::of(list);
    if copy.fetched.is_none() {
        "no copy yet: the list is empty until a download succeeds".to_owned()
    } else {
        format!("keeping the copy {}", copy.describe(SystemTime::now()))
    }
}
