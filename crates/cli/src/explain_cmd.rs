//! `winsink explain NAME`: the decision for one name, and every reason behind it.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use clap::Args;
use winsink_policy::{Decision, MatchSource};

use crate::check_cmd::ConfigArg;

/// `winsink explain NAME [--client IP] [--config FILE] [--json]`.
#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// The DNS name to explain (case and a trailing dot do not matter; a Unicode name is
    /// asked as its IDNA A-labels, as a client would send it).
    name: String,
    /// The client asking: decides which client group's settings apply.
    #[arg(long, value_name = "IP", default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    client: IpAddr,
    #[command(flatten)]
    config: ConfigArg,
    /// Print JSON: `{"name", "client", "decision", "matches": [{"source", "area",
    /// "pattern", "action", "impact"}]}` (a stable interface).
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &ExplainArgs) -> ExitCode {
    // A name no client could ask would otherwise "pass", which reads as an answer.
    let asked = match winsink_matcher::normalize_pattern(&args.name) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {:?} is not a DNS name: {}", args.name, e.kind);
            return ExitCode::from(crate::EXIT_INPUT);
        }
    };
    let loaded = match args.config.load() {
        Ok(l) => l,
        Err(code) => return code,
    };
    let decision = loaded.policy.decide(args.client, &asked);
    let out = if args.json {
        match serde_json::to_string(&decision.explain(&args.name, args.client)) {
            Ok(json) => json + "\n",
            Err(e) => {
                eprintln!("error: cannot write the decision as JSON: {e}");
                return ExitCode::from(crate::EXIT_RUNTIME);
            }
        }
    } else {
        let mut text = String::new();
        if !args.name.is_ascii() {
            text = format!("{} is asked as {asked}\n", args.name);
        }
        text += &to_text(&args.name, args.client, &decision);
        let client = args.client.to_canonical();
        if !loaded
            .policy
            .server()
            .allow_clients
            .iter()
            .any(|n| n.contains(&client))
        {
            text += &format!(
                "  but {client} is not in [server] allow_clients: `winsink run` answers it \
                 REFUSED\n"
            );
        }
        text
    };
    if let Err(e) = crate::output::write_stdout(&out) {
        eprintln!("error: cannot write to stdout: {e}");
        return ExitCode::from(crate::EXIT_RUNTIME);
    }
    ExitCode::SUCCESS
}

fn to_text(name: &str, client: IpAddr, d: &Decision<'_>) -> String {
    let mut out = format!("{name}: {}\n", d.verdict);
    out.push_str(&format!(
        "  client {client}{}\n",
        d.group
            .map_or_else(|| ", in no group".to_owned(), |g| format!(", group {g}"))
    ));
    match d.decided_by() {
        Some(m) => {
            let by = match (m.area, m.source) {
                (Some(a), _) => format!("area {} ({})", a.name, a.id),
                (None, MatchSource::Rule(Some(note))) => format!("rule {} ({note})", m.pattern),
                (None, MatchSource::Rule(None)) => format!("rule {}", m.pattern),
                (None, MatchSource::List(label)) => format!("list {label} entry {}", m.pattern),
                (None, MatchSource::Catalog(title)) => {
                    format!("catalog {title} pattern {}", m.pattern)
                }
            };
            out.push_str(&format!("  decided by {by}: {}\n", m.action));
        }
        None => out.push_str("  no area, rule or list matches: forwarded\n"),
    }
    for m in d.matches() {
        out.push_str(&format!("  - {:<5} {}", m.action.as_str(), m.pattern));
        if let Some(a) = m.area {
            out.push_str(&format!("  area {} ({})", a.name, a.id));
        }
        out.push_str(&format!("  [{}]\n", m.source));
        if let Some(i) = m.impact {
            out.push_str(&format!("          impact: {i}\n"));
        }
    }
    if d.is_truncated() {
        out.push_str(&format!(
            "  (more rules match; only the first {} are shown)\n",
            winsink_policy::MAX_REPORTED_MATCHES
        ));
    }
    out
}
