//! `winsink report`: what each area did in this lab, from the daemon's query logs.
//!
//! Microsoft compiled its endpoint page from a week of captured traffic, per area; winsink
//! sees every DNS query of a lab, so it can make that report for the lab it serves: per
//! area the queries, what was blocked or would have been, by how many clients and when;
//! per endpoint pattern the concrete names that matched it; per client its areas; the
//! names under Microsoft-owned domains that no catalog area lists; totals by decision and
//! rcode, per day.
//!
//! The logs are read streaming, line by line, and counted into a [`tally::Tally`] whose
//! size depends on what is distinct (areas, patterns, clients, names), never on the number
//! of lines. Lines are parsed by borrowing from the line's bytes ([`logline`]): serde_json
//! skips the fields the report does not need (`impact`, the longest) without keeping
//! them. `--jobs N` counts N inputs at once, one tally per thread, merged at the end.
//! Measured: see `bench/report.sh`.
//!
//! Output formats: `text` (default), `json` ([`model`] documents its shape), `markdown`
//! (Microsoft's table layout, which `winsink catalog import` reads back: [`markdown`]) and
//! `html` (one self-contained file: [`html`]).

mod html;
mod index;
mod input;
mod logline;
mod markdown;
mod model;
mod tally;
mod text;
mod time;

use std::io::{BufRead, IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use ipnet::IpNet;
use rustc_hash::FxHashMap;
use winsink_catalog::Catalog;

use crate::catalog_source::{self, PageText};
use crate::check_cmd::ConfigArg;
use crate::config_path::ConfigSource;
use index::Index;
use input::Input;
use model::{FilterReport, InputReport, Report, Request};
use tally::{Filter, Tally};

/// Lines between two progress updates.
const PROGRESS_EVERY: u64 = 1 << 16;

/// `winsink report [LOG…]`.
#[derive(Debug, Args)]
pub(crate) struct ReportArgs {
    /// Query log files (JSON lines, as `winsink run` writes them): plain or gzip (found
    /// by the first bytes, so `queries.log.2.gz` and `queries.log.1` both work),
    /// rotated names read oldest first; `-` or nothing reads stdin.
    logs: Vec<String>,
    /// Only lines at or after this time: RFC 3339 (`2026-11-26T08:00:00Z`) or a date
    /// (`2026-11-26`, midnight UTC).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only lines before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only these clients: an address or a CIDR (repeatable).
    #[arg(long, value_name = "CIDR")]
    client: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Write the report to this file instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The config whose catalogs, area actions and Microsoft suffixes (`[http]
    /// microsoft_suffixes`, as the API's) the report uses
    /// (found as `run` finds it).
    #[command(flatten)]
    config: ConfigArg,
    /// Inputs counted at once, one thread each [default: the CPUs, at most one per
    /// input].
    #[arg(long, short, value_name = "N")]
    jobs: Option<usize>,
    /// Uncatalogued names listed (the most asked first).
    #[arg(long, value_name = "N", default_value_t = 50)]
    top: usize,
}

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// Readable text.
    Text,
    /// A page in Microsoft's table layout (Area | Description | Protocol | Destination),
    /// which `winsink catalog import` reads back.
    Markdown,
    /// The report's data (a stable interface).
    Json,
    /// One self-contained HTML file: tables, a bar chart per area, a timeline per day.
    Html,
}

pub(crate) fn run(args: &ReportArgs) -> ExitCode {
    match report(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_INPUT)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    }
}

enum Failure {
    Input(anyhow::Error),
    Runtime(anyhow::Error),
}

fn report(args: &ReportArgs) -> Result<(), Failure> {
    let filter = filter(args).map_err(Failure::Input)?;
    let inputs = input::inputs(&args.logs).map_err(Failure::Input)?;
    let index = load_index(&args.config.source()).map_err(Failure::Input)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from))
        .clamp(1, inputs.len().max(1));
    let (tally, input_reports) = count(&inputs, &index, &filter.0, jobs);
    for i in &input_reports {
        if let Some(e) = &i.error {
            eprintln!("warning: {}: {e} (the lines before it are counted)", i.name);
        }
    }
    let report = model::build(
        tally,
        Request {
            filter: filter.1,
            inputs: input_reports,
            top: args.top,
            index: &index,
        },
    );
    let out = render(&report, args.format).map_err(Failure::Runtime)?;
    match &args.output {
        Some(path) => std::fs::write(path, out)
            .with_context(|| format!("cannot write {}", path.display()))
            .map_err(Failure::Runtime),
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout
                .write_all(out.as_bytes())
                .and_then(|()| stdout.flush())
            {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(Failure::Runtime(
                    anyhow::Error::new(e).context("cannot write to stdout"),
                )),
                _ => Ok(()),
            }
        }
    }
}

fn render(report: &Report, format: Format) -> anyhow::Result<String> {
    Ok(match format {
        Format::Text => text::render(report),
        Format::Markdown => markdown::render(report),
        Format::Json => serde_json::to_string_pretty(report)? + "\n",
        Format::Html => html::render(report),
    })
}

fn filter(args: &ReportArgs) -> anyhow::Result<(Filter, FilterReport)> {
    let time = |flag: &str, v: &Option<String>| -> anyhow::Result<Option<i64>> {
        v.as_deref()
            .map(|s| {
                time::parse(s).with_context(|| {
                    format!(
                        "{flag} {s:?} is not a time: give RFC 3339 (2026-11-26T08:00:00Z) or a \
                         date (2026-11-26)"
                    )
                })
            })
            .transpose()
    };
    let since = time("--since", &args.since)?;
    let until = time("--until", &args.until)?;
    let mut clients = Vec::new();
    for c in &args.client {
        let net = c
            .parse::<IpNet>()
            .or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from))
            .with_context(|| {
                format!("--client {c:?} is neither an IP address nor a CIDR like 10.0.0.0/24")
            })?;
        clients.push(net);
    }
    let report = FilterReport {
        since: since.map(time::format),
        until: until.map(time::format),
        clients: clients.iter().map(ToString::to_string).collect(),
    };
    Ok((
        Filter {
            since,
            until,
            clients,
        },
        report,
    ))
}

/// The catalogs, actions and suffixes of the config.
fn load_index(source: &ConfigSource) -> anyhow::Result<Index> {
    let loaded = source
        .load()
        .with_context(|| format!("{source} does not load"))?;
    let base = match source {
        ConfigSource::File(path, _) => match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        },
        ConfigSource::Builtin => PathBuf::from("."),
    };
    let summary = loaded.policy.summary();
    let mut catalogs: Vec<Catalog> = Vec::new();
    for c in &summary.catalogs {
        let name = if c.origin.starts_with(winsink_policy::BUILTIN_PREFIX) {
            c.origin.clone()
        } else {
            base.join(&c.origin).display().to_string()
        };
        catalogs.push(catalog_source::load(&name, PageText::Repaired)?);
    }
    let configured: FxHashMap<String, winsink_policy::Action> = summary
        .areas
        .iter()
        .map(|a| (a.id.clone(), a.action))
        .collect();
    Ok(Index::new(
        &catalogs,
        &configured,
        // The list the API's /api/v1/uncatalogued uses: `[http] microsoft_suffixes`.
        winsink_policy::DomainSuffixes::new(&loaded.startup.http.microsoft_suffixes),
    ))
}

/// Counts every input, `jobs` at a time; the merged tally and what each input gave.
fn count(
    inputs: &[Input],
    index: &Index,
    filter: &Filter,
    jobs: usize,
) -> (Tally, Vec<InputReport>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let lines = AtomicU64::new(0);
    let progress = progress_bar(inputs);
    let next = AtomicUsize::new(0);
    let reports: Mutex<Vec<Option<InputReport>>> = Mutex::new(vec![None; inputs.len()]);
    let started = Instant::now();
    let tallies: Vec<Tally> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..jobs)
            .map(|_| {
                s.spawn(|| {
                    let mut tally = Tally::new(index);
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(input) = inputs.get(i) else {
                            break;
                        };
                        let r =
                            count_one(input, index, filter, &mut tally, &bytes, &lines, &|| {
                                if let Some(pb) = &progress {
                                    pb.set_position(bytes.load(Ordering::Relaxed));
                                    let n = lines.load(Ordering::Relaxed);
                                    let secs = started.elapsed().as_secs_f64().max(1e-3);
                                    pb.set_message(format!(
                                        "{n} lines, {:.0} lines/s",
                                        n as f64 / secs
                                    ));
                                }
                            });
                        reports.lock().unwrap_or_else(|e| e.into_inner())[i] = Some(r);
                    }
                    tally
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    });
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    let mut iter = tallies.into_iter();
    let mut total = iter.next().unwrap_or_else(|| Tally::new(index));
    for t in iter {
        total.merge(index, t);
    }
    let reports = reports
        .into_inner()
        .unwrap_or_else(|e| e.into_inner())
        .into_iter()
        .zip(inputs)
        .map(|(r, i)| {
            r.unwrap_or_else(|| InputReport {
                name: i.name(),
                lines: 0,
                broken: 0,
                error: Some("not read".to_owned()),
            })
        })
        .collect();
    (total, reports)
}

/// Reads one input into `tally`, calling `tick` every [`PROGRESS_EVERY`] lines.
fn count_one(
    input: &Input,
    index: &Index,
    filter: &Filter,
    tally: &mut Tally,
    bytes: &Arc<AtomicU64>,
    lines: &AtomicU64,
    tick: &dyn Fn(),
) -> InputReport {
    let name = input.name();
    let (lines_before, broken_before) = (tally.lines, tally.broken);
    let mut error = None;
    match input.open(Arc::clone(bytes)) {
        Err(e) => error = Some(format!("cannot read: {e}")),
        Ok(mut reader) => {
            let mut buf = Vec::with_capacity(1024);
            let mut number = 0u64;
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => {
                        error = Some(format!("read error after line {number}: {e}"));
                        break;
                    }
                }
                number += 1;
                let mut line = &buf[..];
                if let [rest @ .., b'\n'] = line {
                    line = rest;
                }
                if let [rest @ .., b'\r'] = line {
                    line = rest;
                }
                tally.line(index, filter, line, &name, number);
                if number % PROGRESS_EVERY == 0 {
                    lines.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
                    tick();
                }
            }
            lines.fetch_add(number % PROGRESS_EVERY, Ordering::Relaxed);
        }
    }
    InputReport {
        name,
        lines: tally.lines - lines_before,
        broken: tally.broken - broken_before,
        error,
    }
}

/// A bar over the inputs' bytes on stderr, with lines/s, when stderr is a terminal.
fn progress_bar(inputs: &[Input]) -> Option<ProgressBar> {
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let sizes: Option<u64> = inputs.iter().map(Input::size).sum();
    let pb = match sizes {
        Some(total) => ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr())
            .with_style(
                ProgressStyle::with_template(
                    "{bar:30} {binary_bytes}/{binary_total_bytes} {msg} ({elapsed}, {eta} left)",
                )
                .ok()?,
            ),
        None => ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()).with_style(
            ProgressStyle::with_template("{spinner} {binary_bytes} {msg} ({elapsed})").ok()?,
        ),
    };
    pb.enable_steady_tick(Duration::from_millis(200));
    Some(pb)
}
