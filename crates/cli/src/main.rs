//! `winsink`: a DNS sinkhole for Windows 11 labs.
#![forbid(unsafe_code)]
// Functions past 80 lines (clippy.toml) are split into named steps or say why not; tests may be long.
#![cfg_attr(not(test), warn(clippy::too_many_lines))]

use std::process::ExitCode;

use clap::{CommandFactory as _, Parser, Subcommand};

mod catalog_cmd;
mod catalog_diff;
mod catalog_source;
mod check_cmd;
mod config_path;
mod explain_cmd;
mod gen_cmd;
mod lists_cmd;
mod loaded_state;
mod notify;
mod output;
mod reload;
mod report;
mod run_cmd;
mod signals;

/// Exit code for bad input: a config, policy or page that does not load.
pub(crate) const EXIT_INPUT: u8 = 2;
/// Exit code for a runtime failure (a socket that cannot be bound, an I/O error).
pub(crate) const EXIT_RUNTIME: u8 = 1;

#[derive(Debug, Parser)]
#[command(
    name = "winsink",
    version,
    about = "DNS sinkhole for the endpoints Windows 11 talks to"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Import, show and inspect endpoint catalogs.
    #[command(subcommand)]
    Catalog(catalog_cmd::CatalogCommand),
    /// Load the config exactly as `run` would and summarise it (exit 2 on errors).
    Check(check_cmd::CheckArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(gen_cmd::CompletionsArgs),
    /// Show the decision for a name and every match behind it.
    Explain(explain_cmd::ExplainArgs),
    /// Download the lists by URL now (`lists update`).
    #[command(subcommand)]
    Lists(lists_cmd::ListsCommand),
    /// Print the man page winsink(1), or write every command's page into a folder.
    Man(gen_cmd::ManArgs),
    /// What each area did in this lab, from query logs (text, markdown, JSON or HTML).
    Report(report::ReportArgs),
    /// Serve DNS: sinkhole blocked names, forward the rest, log every query.
    Run(run_cmd::RunArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Catalog(cmd) => catalog_cmd::run(cmd),
        Command::Check(args) => check_cmd::run(&args),
        Command::Completions(args) => gen_cmd::completions(Cli::command(), &args),
        Command::Explain(args) => explain_cmd::run(&args),
        Command::Lists(cmd) => lists_cmd::run(cmd),
        Command::Man(args) => gen_cmd::man(Cli::command(), &args),
        Command::Report(args) => report::run(&args),
        Command::Run(args) => run_cmd::run(args),
    }
}
