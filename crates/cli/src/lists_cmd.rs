//! `winsink lists update`: download every list by URL now, into the cache `run` reads.
//!
//! The downloads are the daemon's ([`winsink_server::fetch`]): conditional requests, the
//! size cap, gzip, and the refusal of an empty or mostly malformed download, which keeps
//! the previous copy. A running daemon sees a new copy as a changed list file and
//! reloads it. One line per list; exit 1 if any download failed, 2 if the config does
//! not load.

use std::process::ExitCode;
use std::time::SystemTime;

use clap::{Args, Subcommand};
use winsink_policy::Policy;
use winsink_server::fetch::{CachedCopy, Fetched, Fetcher};

use crate::check_cmd::ConfigArg;

/// `winsink lists ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ListsCommand {
    /// Download every list by URL now, into the cache folder (exit 1 if any failed).
    Update(UpdateArgs),
}

/// `winsink lists update [--config FILE]`.
#[derive(Debug, Args)]
pub(crate) struct UpdateArgs {
    #[command(flatten)]
    config: ConfigArg,
}

pub(crate) fn run(cmd: ListsCommand) -> ExitCode {
    match cmd {
        ListsCommand::Update(args) => update(&args),
    }
}

fn update(args: &UpdateArgs) -> ExitCode {
    let source = args.config.source();
    let loaded = match args.config.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let lists = loaded.policy.url_lists();
    if lists.is_empty() {
        println!("{source}: no lists by URL");
        return ExitCode::SUCCESS;
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(crate::EXIT_RUNTIME);
        }
    };
    let failed = runtime.block_on(fetch_all(&loaded.policy));
    let n = lists.len();
    if failed > 0 {
        eprintln!(
            "{failed} of {n} list{} failed to download",
            if n == 1 { "" } else { "s" }
        );
        return ExitCode::from(crate::EXIT_RUNTIME);
    }
    ExitCode::SUCCESS
}

/// Downloads every URL list of `policy` at once; prints one line each; returns how many
/// failed.
async fn fetch_all(policy: &Policy) -> usize {
    let fetcher = match Fetcher::new() {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return policy.url_lists().len();
        }
    };
    let lists = policy.url_lists();
    let results =
        futures_util::future::join_all(lists.iter().map(|l| fetcher.fetch(l, policy.downloads())))
            .await;
    let mut failed = 0;
    for (list, result) in lists.iter().zip(results) {
        let head = format!("list {} ({})", list.label, list.url);
        match result {
            Ok(Fetched::Saved { bytes, counts }) => println!(
                "{head}: downloaded, {bytes} bytes, {} entries, saved as {}",
                counts.valid,
                list.cache_file.display()
            ),
            Ok(Fetched::NotModified) => println!("{head}: not modified (the copy is current)"),
            Ok(Fetched::Unchanged { bytes }) => {
                println!("{head}: downloaded, {bytes} bytes, the same as the copy");
            }
            Err(e) => {
                failed += 1;
                let copy = CachedCopy::of(list);
                let kept = match copy.fetched {
                    None => "no copy yet".to_owned(),
                    Some(_) => format!("keeping the copy {}", copy.describe(SystemTime::now())),
                };
                println!("{head}: FAILED: {e}; {kept}");
            }
        }
    }
    failed
}
