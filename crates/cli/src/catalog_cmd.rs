//! `winsink catalog ...`

use std::process::ExitCode;

use clap::Subcommand;

/// `winsink catalog` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum CatalogCommand {
    /// Show the areas and endpoints of a catalog.
    Show,
}

pub(crate) fn run(cmd: CatalogCommand) -> ExitCode {
    match cmd {
        CatalogCommand::Show => {
            eprintln!("winsink catalog show: not built yet");
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    }
}
