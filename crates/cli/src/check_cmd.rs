//! `winsink check`: load the config exactly as `run` would, and say what it holds.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use winsink_policy::{Loaded, Policy, SharedEndpoint};
use winsink_server::{upstreams_from_resolv_conf, Upstream, RESOLV_CONF};

/// The config file used when `--config` is not given (relative to the working directory).
pub(crate) const DEFAULT_CONFIG: &str = "config/winsink.toml";

/// `--config FILE`, as `check` and `explain` take it.
#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// The config file.
    #[arg(long, short, value_name = "FILE", default_value = DEFAULT_CONFIG)]
    pub(crate) config: PathBuf,
}

impl ConfigArg {
    /// Loads the config as `run` does; on failure prints why and gives exit code 2.
    pub(crate) fn load(&self) -> Result<Loaded, ExitCode> {
        Policy::load(&self.config)
            .with_context(|| format!("{} does not load", self.config.display()))
            .map_err(|e| {
                eprintln!("error: {e:#}");
                ExitCode::from(crate::EXIT_INPUT)
            })
    }
}

/// `winsink check [--config FILE]`.
#[derive(Debug, Args)]
pub(crate) struct CheckArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Print the summary as JSON (warnings stay on stderr).
    #[arg(long)]
    json: bool,
}

/// Exit 0 with a summary and warnings on a config that loads; exit 2 with the errors on
/// one that does not.
pub(crate) fn run(args: &CheckArgs) -> ExitCode {
    let mut loaded = match args.config.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let path = &args.config.config;
    // `run` parses the upstreams when it starts; a typo there must fail here too.
    let upstreams = match upstreams(path, &loaded.policy) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("error: {} does not load: {e}", path.display());
            return ExitCode::from(crate::EXIT_INPUT);
        }
    };
    if upstreams.is_empty() {
        loaded.warnings.push(format!(
            "no upstreams configured and {RESOLV_CONF} names none other than winsink \
             itself: `winsink run` would refuse to start here"
        ));
    }
    let summary = loaded.policy.summary();
    let out = if args.json {
        match serde_json::to_string_pretty(&summary) {
            Ok(s) => s + "\n",
            Err(e) => {
                eprintln!("error: cannot write the summary as JSON: {e}");
                return ExitCode::from(crate::EXIT_RUNTIME);
            }
        }
    } else {
        let server = loaded.policy.server();
        let listen: Vec<String> = server.listen.iter().map(ToString::to_string).collect();
        let from = if server.upstreams.is_empty() {
            format!(" (from {RESOLV_CONF})")
        } else {
            String::new()
        };
        let upstreams: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
        let n = loaded.warnings.len();
        let shared = shared_block(&loaded.policy.shared_endpoints());
        format!(
            "{}: OK\n{summary}\n{shared}listen: {}\nupstreams: {}{from}\n{n} warning{}\n",
            path.display(),
            listen.join(", "),
            upstreams.join(", "),
            if n == 1 { "" } else { "s" }
        )
    };
    for w in &loaded.warnings {
        eprintln!("warning: {w}");
    }
    if let Err(e) = crate::output::write_stdout(&out) {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::from(crate::EXIT_RUNTIME);
    }
    ExitCode::SUCCESS
}

/// The block of `check` that lists, per blocked area, the endpoints its block takes from
/// others: names a non-blocked area uses too, and general-purpose hosts. Each says what
/// the name gets and, when the operator acknowledged it, how (then loading does not warn).
fn shared_block(shared: &[SharedEndpoint]) -> String {
    let mut out = format!(
        "endpoints of blocked areas that are shared with other areas or general-purpose: {}\n",
        shared.len()
    );
    let mut last: Option<(&Option<String>, &str)> = None;
    for e in shared {
        if last != Some((&e.group, e.area_id.as_str())) {
            let group = e
                .group
                .as_ref()
                .map_or_else(String::new, |g| format!("group {g}: "));
            out.push_str(&format!("  {group}{} ({}):\n", e.area_name, e.area_id));
            last = Some((&e.group, e.area_id.as_str()));
        }
        let mut what = Vec::new();
        if let Some(g) = e.general_purpose {
            what.push(format!("general-purpose host ({g})"));
        }
        if !e.also_used_by.is_empty() {
            what.push(format!("also used by {}", e.also_used_by.join(", ")));
        }
        out.push_str(&format!(
            "    {}: {}; {}, decided by {}",
            e.name,
            what.join(", "),
            e.verdict,
            e.decided_by
        ));
        if let Some(how) = &e.acknowledged {
            out.push_str(&format!(" (acknowledged: {how})"));
        }
        out.push('\n');
    }
    out
}

/// The upstreams `run` would use: the configured ones, each parsed (an error names the
/// line), or else the nameservers of `/etc/resolv.conf` other than winsink itself.
fn upstreams(path: &Path, policy: &Policy) -> Result<Vec<Upstream>, String> {
    let server = policy.server();
    if server.upstreams.is_empty() {
        let text = std::fs::read_to_string(RESOLV_CONF).unwrap_or_default();
        return Ok(upstreams_from_resolv_conf(&text, &server.listen));
    }
    let text = std::fs::read_to_string(path).unwrap_or_default();
    server
        .upstreams
        .iter()
        .map(|u| {
            u.parse::<Upstream>().map_err(|e| {
                let quoted = format!("{u:?}");
                match text.lines().position(|l| l.contains(&quoted)) {
                    Some(i) => format!("{}:{}: [server] upstreams: {e}", path.display(), i + 1),
                    None => format!("{}: [server] upstreams: {e}", path.display()),
                }
            })
        })
        .collect()
}
