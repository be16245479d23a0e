//! `winsink completions SHELL` and `winsink man`: files generated from the command-line
//! definition itself, so they never drift from the flags `winsink --help` shows.
//!
//! Packagers install them where their shell and `man` look:
//!
//! ```sh
//! winsink completions bash > /usr/share/bash-completion/completions/winsink
//! winsink completions zsh  > /usr/share/zsh/vendor-completions/_winsink
//! winsink completions fish > /usr/share/fish/vendor_completions.d/winsink.fish
//! winsink man --out-dir /usr/share/man/man1    # winsink.1, winsink-run.1, ...
//! ```

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use clap_complete::Shell;

/// `winsink completions bash|zsh|fish|elvish|powershell`.
#[derive(Debug, Args)]
pub(crate) struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    shell: Shell,
}

/// `winsink man [--out-dir DIR]`.
#[derive(Debug, Args)]
pub(crate) struct ManArgs {
    /// Write one page per command (`winsink.1`, `winsink-run.1`, ...) into this folder
    /// instead of printing `winsink(1)` on stdout.
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
}

/// Prints the completion script for `args.shell` on stdout.
pub(crate) fn completions(mut cmd: clap::Command, args: &CompletionsArgs) -> ExitCode {
    let name = cmd.get_name().to_owned();
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, name, &mut script);
    write(&script)
}

/// Prints `winsink(1)`, or writes every command's page into `--out-dir`.
pub(crate) fn man(cmd: clap::Command, args: &ManArgs) -> ExitCode {
    match &args.out_dir {
        None => {
            let mut page = Vec::new();
            if let Err(e) = clap_mangen::Man::new(cmd).render(&mut page) {
                eprintln!("error: cannot render the man page: {e}");
                return ExitCode::from(crate::EXIT_RUNTIME);
            }
            write(&page)
        }
        Some(dir) => match std::fs::create_dir_all(dir)
            .and_then(|()| clap_mangen::generate_to(cmd, dir))
            .with_context(|| format!("cannot write the man pages into {}", dir.display()))
        {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e:#}");
                ExitCode::from(crate::EXIT_RUNTIME)
            }
        },
    }
}

fn write(bytes: &[u8]) -> ExitCode {
    // Both generators write ASCII/UTF-8 text.
    match crate::output::write_stdout(&String::from_utf8_lossy(bytes)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot write to stdout: {e}");
            ExitCode::from(crate::EXIT_RUNTIME)
        }
    }
}
