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
//! them. `--jobs N` counts with N threads: each takes an input, or a byte range of a
//! large plain file ([`input::pieces`]), into a tally of its own; the tallies are merged
//! in input order, so the report does not depend on N.
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
mod scan;
mod tally;
mod text;
mod time;

use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
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
use input::{Input, Piece};
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
    /// Threads counting at once [default: the CPUs]: each takes an input, or a piece of a
    /// large plain (not gzip) file, cut at line boundaries.
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
        .max(1);
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

/// Counts every input, `jobs` threads at a time; the merged tally and what each input
/// gave.
///
/// Each [`Piece`] is counted into a tally of its own, and the tallies are merged in piece
/// order as they come in, so the report is the one a single thread reading every line in
/// order makes: the same first-seen order of the areas only the log names, the same
/// first broken lines quoted, with their line numbers in the file.
fn count(
    inputs: &[Input],
    index: &Index,
    filter: &Filter,
    jobs: usize,
) -> (Tally, Vec<InputReport>) {
    let bytes = Arc::new(AtomicU64::new(0));
    let lines = AtomicU64::new(0);
    let progress = progress_bar(inputs);
    let pieces = input::pieces(inputs, jobs);
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    let tick = || {
        if let Some(pb) = &progress {
            pb.set_position(bytes.load(Ordering::Relaxed));
            let n = lines.load(Ordering::Relaxed);
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            pb.set_message(format!("{n} lines, {:.0} lines/s", n as f64 / secs));
        }
    };
    let counting = Counting {
        index,
        filter,
        bytes: &bytes,
        lines: &lines,
        tick: &tick,
    };
    let mut merged = Merged::new(inputs, index);
    std::thread::scope(|s| {
        let (done, results) = std::sync::mpsc::channel::<(usize, Tally, PieceEnd)>();
        for _ in 0..jobs.min(pieces.len()) {
            let done = done.clone();
            let (next, pieces, counting) = (&next, &pieces, &counting);
            s.spawn(move || loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(piece) = pieces.get(i) else {
                    break;
                };
                let mut tally = Tally::new(index);
                let end = counting.piece(&inputs[piece.input], piece, &mut tally);
                if done.send((i, tally, end)).is_err() {
                    break;
                }
            });
        }
        drop(done);
        // In piece order: a piece that comes early waits for those before it.
        let mut waiting = std::collections::BTreeMap::new();
        for (i, tally, c) in results {
            waiting.insert(i, (tally, c));
            while let Some((tally, c)) = waiting.remove(&merged.pieces) {
                merged.add(index, &pieces[merged.pieces], tally, c);
            }
        }
    });
    if let Some(pb) = progress {
        pb.finish_and_clear();
    }
    merged.finish()
}

/// How counting a piece ended (besides its tally).
#[derive(Debug, Default)]
struct PieceEnd {
    /// Lines read (blank ones too): the line numbers of the input's next piece start
    /// after them.
    read: u64,
    /// Why the piece ended early: (the line after which, the error).
    error: Option<(u64, String)>,
    /// The input could not be opened.
    unopened: Option<String>,
}

/// The tallies merged so far, in piece order, and each input's report.
struct Merged {
    tally: Tally,
    reports: Vec<InputReport>,
    /// Lines read so far of each input (for the line numbers of its next piece).
    read: Vec<u64>,
    /// Pieces merged.
    pieces: usize,
}

impl Merged {
    fn new(inputs: &[Input], index: &Index) -> Self {
        Self {
            tally: Tally::new(index),
            reports: inputs
                .iter()
                .map(|i| InputReport {
                    name: i.name(),
                    lines: 0,
                    broken: 0,
                    error: None,
                })
                .collect(),
            read: vec![0; inputs.len()],
            pieces: 0,
        }
    }

    /// Adds the next piece. A piece after one that ended its input early is left out,
    /// as one thread reading the input would have stopped there.
    fn add(&mut self, index: &Index, piece: &Piece, mut tally: Tally, c: PieceEnd) {
        self.pieces += 1;
        let report = &mut self.reports[piece.input];
        if report.error.is_some() {
            return;
        }
        let before = self.read[piece.input];
        tally.renumber(before);
        report.lines += tally.lines;
        report.broken += tally.broken;
        report.error = c.unopened.map(|e| format!("cannot read: {e}")).or_else(|| {
            c.error
                .map(|(after, e)| format!("read error after line {}: {e}", before + after))
        });
        self.read[piece.input] += c.read;
        self.tally.merge(index, tally);
    }

    fn finish(self) -> (Tally, Vec<InputReport>) {
        (self.tally, self.reports)
    }
}

/// What the threads counting pieces share.
struct Counting<'a> {
    index: &'a Index,
    filter: &'a Filter,
    /// Bytes taken from the files (for the progress bar).
    bytes: &'a Arc<AtomicU64>,
    /// Lines counted, updated every [`PROGRESS_EVERY`] lines.
    lines: &'a AtomicU64,
    /// Redraws the progress bar.
    tick: &'a (dyn Fn() + Sync),
}

impl Counting<'_> {
    /// Reads the lines of `piece` of `input` into `tally`.
    fn piece(&self, input: &Input, piece: &Piece, tally: &mut Tally) -> PieceEnd {
        let name = input.name();
        let mut c = PieceEnd::default();
        let mut reader = match piece.open(input, Arc::clone(self.bytes)) {
            Ok(l) => l,
            Err(e) => {
                c.unopened = Some(e.to_string());
                return c;
            }
        };
        let mut number = 0u64;
        let read = reader.each(|mut line| {
            number += 1;
            if let [rest @ .., b'\r'] = line {
                line = rest;
            }
            tally.line(self.index, self.filter, line, &name, number);
            if number % PROGRESS_EVERY == 0 {
                self.lines.fetch_add(PROGRESS_EVERY, Ordering::Relaxed);
                (self.tick)();
            }
        });
        if let Err(e) = read {
            c.error = Some((number, e.to_string()));
        }
        self.lines
            .fetch_add(number % PROGRESS_EVERY, Ordering::Relaxed);
        c.read = number;
        c
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
