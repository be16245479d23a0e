//! `winsink check`: load the config exactly as `run` would, and say what it holds.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use winsink_policy::Policy;

/// The config file used when `--config` is not given (relative to the working directory).
pub(crate) const DEFAULT_CONFIG: &str = "config/winsink.toml";

/// `winsink check [--config FILE]`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    /// The config file.
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// Print the summary as JSON (warnings stay on stderr).
    #[arg(long)]
    json: bool,
}

/// Exit 0 with a summary and warnings on a config that loads; exit 2 with the errors on
/// one that does not.
pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let loaded = match Policy::load(&args.config)
        .with_context(|| format!("{} does not load", args.config.display()))
    {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(crate::EXIT_INPUT);
        }
    };
    let summary = loaded.policy.summary();
    if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: cannot write the summary as JSON: {e}");
                return ExitCode::from(crate::EXIT_RUNTIME);
            }
        }
    } else {
        println!("{}: OK", args.config.display());
        println!("{summary}");
    }
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if !args.json {
        println!(
            "{} warning{}",
            loaded.warnings.len(),
            if loaded.warnings.len() == 1 { "" } else { "s" }
        );
    }
    ExitCode::SUCCESS
}
