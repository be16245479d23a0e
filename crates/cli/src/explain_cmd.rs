//! `winsink explain NAME`: the decision for one name, and every reason behind it.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;

use clap::Args;
use winsink_policy::{Decision, ImpactScope};

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
    /// Print JSON (a stable interface; the field names are the query log's): `{"name",
    /// "client", "group", "decision", "decided_by", "areas", "patterns", "impact",
    /// "impact_scope", "matches": [{"source", "area", "pattern", "action", "impact",
    /// "impact_scope", "line"}]}`.
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
            .allow_clients()
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

/// The text form: one line that says it all (the verdict, what decided it, and every
/// other match it overrides or shares the name with), then the client, then each match
/// with its impact.
fn to_text(name: &str, client: IpAddr, d: &Decision<'_>) -> String {
    let mut out = headline(name, d);
    out.push_str(&format!(
        "  client {client}{}\n",
        d.group
            .map_or_else(|| ", in no group".to_owned(), |g| format!(", group {g}"))
    ));
    for m in d.matches() {
        out.push_str(&format!("  - {:<5} {}", m.action.as_str(), m.pattern));
        if let Some(a) = m.area {
            out.push_str(&format!("  area {} ({})", a.name, a.id));
        }
        if let Some(line) = m.line {
            out.push_str(&format!("  line {line}"));
        }
        out.push_str(&format!("  [{}]\n", m.source));
        if let Some(i) = m.impact {
            let whose = match i.scope {
                ImpactScope::Endpoint => "",
                ImpactScope::Area => " (the area's: the page describes none for this endpoint)",
            };
            out.push_str(&format!("          impact{whose}: {}\n", i.text));
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

/// `NAME: VERDICT, decided by WHAT; also: OTHER MATCH: ACTION, …` on one line.
fn headline(name: &str, d: &Decision<'_>) -> String {
    let Some(by) = d.decided_by() else {
        return format!(
            "{name}: {}: no area, rule or list matches: forwarded\n",
            d.verdict
        );
    };
    let mut line = format!("{name}: {}, decided by {by}", d.verdict);
    let mut others: Vec<String> = Vec::new();
    for m in d.matches().filter(|m| *m != by.by) {
        let what = match m.area {
            Some(a) => format!("area {} ({}): {}", a.name, a.id, m.action),
            None => format!("{} {}: {}", m.source, m.pattern, m.action),
        };
        if !others.contains(&what) {
            others.push(what);
        }
    }
    if !others.is_empty() {
        line.push_str("; also: ");
        line.push_str(&others.join(", "));
    }
    line.push('\n');
    line
}
