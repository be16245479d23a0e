//! `winsink check`: load the config exactly as `run` would, and say what it holds.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use winsink_policy::{Loaded, SharedEndpoint, Upstream};
use winsink_server::fetch::{age, CachedCopy};
use winsink_server::http::HttpConfig;
use winsink_server::tls::Certificate;
use winsink_server::{ServerConfig, ServerError, DNS_QUERY_PATH, RESOLV_CONF};

use crate::config_path::ConfigSource;

/// `--config FILE`, as `check` and `explain` take it.
#[derive(Debug, Args)]
pub(crate) struct ConfigArg {
    /// The config file. Default: $WINSINK_CONFIG, else ./config/winsink.toml, else
    /// /etc/winsink/winsink.toml, else the built-in defaults (the shipped config).
    #[arg(long, short, value_name = "FILE")]
    pub(crate) config: Option<PathBuf>,
}

impl ConfigArg {
    /// Where the config comes from.
    pub(crate) fn source(&self) -> ConfigSource {
        ConfigSource::discover(self.config.as_deref())
    }

    /// Loads the config as `run` does; on failure prints why and gives exit code 2.
    pub(crate) fn load(&self) -> Result<Loaded, ExitCode> {
        load(&self.source())
    }
}

/// Loads `source` as `run` does; on failure prints why and gives exit code 2.
fn load(source: &ConfigSource) -> Result<Loaded, ExitCode> {
    source
        .load()
        .with_context(|| format!("{source} does not load"))
        .map_err(|e| {
            eprintln!("error: {e:#}");
            ExitCode::from(crate::EXIT_INPUT)
        })
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
    let source = args.config.source();
    if source == ConfigSource::Builtin {
        eprintln!("note: {}", source.describe());
    }
    let mut loaded = match load(&source) {
        Ok(l) => l,
        Err(code) => return code,
    };
    // What `run` checks only when it starts must fail here too: the query log can be
    // opened, and there is an upstream to forward to (found as `run` finds it).
    let upstreams = match ServerConfig::from_startup(&loaded.startup) {
        Ok(config) => config.upstreams,
        Err(e) => {
            loaded
                .warnings
                .push(format!("{e}: `winsink run` would refuse to start here"));
            Vec::new()
        }
    };
    if let Some(file) = &loaded.startup.log.file {
        if let Err(e) = log_file_opens(file) {
            let text = source.text();
            let at = line_of(&text, |l| {
                l.strip_prefix("file")
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or_else(String::new, |n| format!(":{n}"));
            eprintln!(
                "error: {source}{at}: [log] file {}: `winsink run` could not open it: {e}",
                file.display()
            );
            return ExitCode::from(crate::EXIT_INPUT);
        }
    }
    // `run` reads the token file when it starts; a missing one must fail here too.
    if let Err(e) = HttpConfig::from_settings(&loaded.startup.http, None) {
        eprintln!("error: {source}: {e}");
        return ExitCode::from(crate::EXIT_INPUT);
    }
    // `run` reads the certificate when it starts; one that does not load fails here too.
    let cert_warning = match check_certificate(&source, &loaded) {
        Ok(w) => w,
        Err(code) => return code,
    };
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
        text_summary(
            &source,
            &loaded,
            &upstreams,
            usize::from(cert_warning.is_some()),
        )
    };
    for w in loaded.warnings.iter().chain(&cert_warning) {
        eprintln!("warning: {w}");
    }
    let mut out = out;
    if !args.json {
        if let Some(running) = crate::loaded_state::compare(&source, &loaded.policy) {
            out.push_str(&running);
        }
    }
    if let Err(e) = crate::output::write_stdout(&out) {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::from(crate::EXIT_RUNTIME);
    }
    ExitCode::SUCCESS
}

/// The block of `check` that says, per list by URL, how old its cached copy is (or that
/// there is none yet); empty without such lists.
fn url_lists_block(policy: &winsink_policy::Policy) -> String {
    let lists = policy.url_lists();
    if lists.is_empty() {
        return String::new();
    }
    let now = std::time::SystemTime::now();
    let mut out = format!(
        "lists by URL: {} (copies in {})\n",
        lists.len(),
        policy.downloads().cache_dir.display()
    );
    for l in lists {
        out.push_str(&format!(
            "  {} ({}): {}; refreshed every {}\n",
            l.label,
            l.url,
            CachedCopy::of(l).describe(now),
            age(l.refresh)
        ));
    }
    out
}

/// Loads `[tls]`'s certificate as `run` would: the warning about its dates if it loads,
/// else the error printed with the config line of the file it names, and exit 2.
fn check_certificate(source: &ConfigSource, loaded: &Loaded) -> Result<Option<String>, ExitCode> {
    let Some(files) = &loaded.startup.tls else {
        return Ok(None);
    };
    match Certificate::load(files) {
        Ok(c) => Ok(c.validity_warning(std::time::SystemTime::now())),
        Err(e) => {
            let key = match &e {
                ServerError::Tls { key, .. } => *key,
                _ => "cert_file",
            };
            let text = source.text();
            let at = line_of(&text, |l| {
                l.strip_prefix(key)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            })
            .map_or_else(String::new, |n| format!(":{n}"));
            eprintln!("error: {source}{at}: {e}");
            Err(ExitCode::from(crate::EXIT_INPUT))
        }
    }
}

/// `check`'s text output: `SOURCE: OK`, the policy summary, the shared endpoints, where
/// it would listen, forward and serve HTTP, and the warning count (the config's and
/// `more_warnings` others, such as the certificate's).
fn text_summary(
    source: &ConfigSource,
    loaded: &Loaded,
    upstreams: &[Upstream],
    more_warnings: usize,
) -> String {
    let summary = loaded.policy.summary();
    let startup = &loaded.startup;
    let listen: Vec<String> = startup.listen.iter().map(ToString::to_string).collect();
    let from = if startup.upstreams.is_empty() {
        format!(" (from {RESOLV_CONF})")
    } else {
        String::new()
    };
    let upstreams: Vec<String> = upstreams.iter().map(ToString::to_string).collect();
    let n = loaded.warnings.len() + more_warnings;
    let shared = shared_block(&loaded.policy.shared_endpoints());
    let http = &startup.http;
    let http_line = if http.listen.is_empty() {
        "off".to_owned()
    } else {
        let addrs: Vec<String> = http.listen.iter().map(ToString::to_string).collect();
        format!(
            "{} ({})",
            addrs.join(", "),
            if http.token_file.is_some() {
                "bearer token required"
            } else {
                "no token: loopback only"
            }
        )
    };
    let mut encrypted: Vec<String> = startup
        .listen_tls
        .iter()
        .map(|a| format!("tls {a}"))
        .collect();
    encrypted.extend(
        startup
            .listen_https
            .iter()
            .map(|a| format!("https https://{a}{DNS_QUERY_PATH}")),
    );
    let encrypted = if encrypted.is_empty() {
        String::new()
    } else {
        format!("listen encrypted: {}\n", encrypted.join(", "))
    };
    let url_lists = url_lists_block(&loaded.policy);
    format!(
        "{source}: OK
{summary}
{url_lists}{shared}listen: {}
{encrypted}upstreams: {}{from}
http: {http_line}
{n} warning{}
",
        listen.join(", "),
        upstreams.join(", "),
        if n == 1 { "" } else { "s" }
    )
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

/// Whether the query log opens as `run` opens it (appending, created if missing). A file
/// this creates is removed again: `check` leaves no trace.
fn log_file_opens(path: &Path) -> std::io::Result<()> {
    let existed = path.symlink_metadata().is_ok();
    OpenOptions::new().create(true).append(true).open(path)?;
    if !existed {
        std::fs::remove_file(path)?;
    }
    Ok(())
}

/// The 1-based number of the first line, outside comments, that `is_it` accepts (given
/// without its indentation).
fn line_of(text: &str, is_it: impl Fn(&str) -> bool) -> Option<usize> {
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            !l.starts_with('#') && is_it(l)
        })
        .map(|i| i + 1)
}
