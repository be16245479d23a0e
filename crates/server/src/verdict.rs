//! What the server adds to the policy's decision: the decision over a CNAME chain, and
//! how a decision explains itself in the query log and in the Extended DNS Error text.

use std::net::IpAddr;

use std::fmt::Write as _;

use winsink_policy::{DecidedBy, Decision, MatchSource, Policy, Verdict};

use crate::querylog::{json_str, Explain};

/// The decision for a query after its CNAME chain was looked at too.
pub(crate) struct Outcome<'p> {
    pub(crate) decision: Decision<'p>,
    /// Index into the chain of the name that decided, when not the question.
    pub(crate) chain_index: Option<usize>,
}

impl<'p> Outcome<'p> {
    /// The outcome of a decision on the question itself.
    pub(crate) fn of(decision: Decision<'p>) -> Self {
        Self {
            decision,
            chain_index: None,
        }
    }

    /// Whether it sends the sinkhole answer.
    pub(crate) fn blocks(&self) -> bool {
        self.decision.verdict == Verdict::Block
    }
}

/// Looks at every name of an upstream answer's CNAME/DNAME chain. A blocked chain name
/// blocks the query unless an allow rule or list decided the question (allow wins over
/// block, as for names). A logged chain name turns a plain pass into a log.
pub(crate) fn inspect_chain<'p>(
    policy: &'p Policy,
    client: IpAddr,
    first: Decision<'p>,
    chain: &[Box<str>],
) -> Outcome<'p> {
    let mut out = Outcome::of(first);
    if out.decision.verdict == Verdict::Allow || chain.is_empty() {
        return out;
    }
    for (i, name) in chain.iter().enumerate() {
        let d = policy.decide(client, name);
        match d.verdict {
            Verdict::Block => {
                return Outcome {
                    decision: d,
                    chain_index: Some(i),
                }
            }
            Verdict::Log if out.decision.verdict == Verdict::Pass => {
                out = Outcome {
                    decision: d,
                    chain_index: Some(i),
                }
            }
            _ => {}
        }
    }
    out
}

/// What decided, the areas, patterns and impacts of a decision, for the log; `cname` is
/// the CNAME chain name that was decided on, when not the question.
pub(crate) struct Why<'a, 'p> {
    pub(crate) decision: &'a Decision<'p>,
    pub(crate) cname: Option<&'a str>,
}

impl<'a, 'p> Why<'a, 'p> {
    /// The reasons of a decision on the question itself.
    pub(crate) fn of(decision: &'a Decision<'p>) -> Self {
        Self {
            decision,
            cname: None,
        }
    }
}

impl Explain for Why<'_, '_> {
    fn areas(&self, f: &mut dyn FnMut(&str, &str)) {
        for a in self.decision.areas() {
            f(a.id, a.name);
        }
    }

    fn patterns(&self, f: &mut dyn FnMut(&str)) {
        let mut seen: [&str; winsink_policy::MAX_REPORTED_MATCHES] =
            [""; winsink_policy::MAX_REPORTED_MATCHES];
        let mut n = 0;
        for m in self.decision.matches() {
            if !seen[..n].contains(&m.pattern) {
                f(m.pattern);
                if n < seen.len() {
                    seen[n] = m.pattern;
                    n += 1;
                }
            }
        }
    }

    fn impacts(&self, f: &mut dyn FnMut(&str)) {
        for imp in self.decision.impacts() {
            f(imp.text);
        }
    }

    fn impact_scope(&self) -> Option<&'static str> {
        self.decision.impact_scope()
    }

    fn impact(&self) -> Option<&str> {
        self.decision
            .decided_by()
            .and_then(|d| d.by.impact)
            .or_else(|| self.decision.impacts().next())
            .map(|i| i.text)
    }

    fn decided_by(&self, out: &mut String) -> bool {
        let Some(by) = self.decision.decided_by() else {
            return false;
        };
        match self.cname {
            Some(c) => write_decided_by(out, &by.via_cname(c)),
            None => write_decided_by(out, &by),
        }
        true
    }
}

/// Appends `by` as JSON, in the shape `DecidedBy`'s `Serialize` gives `winsink explain
/// --json` (a test holds the two together), without serde on the query path.
fn write_decided_by(out: &mut String, by: &DecidedBy<'_>) {
    let wrap = |out: &mut String, kind: &str, name: &str| {
        out.push_str("{\"kind\":\"");
        out.push_str(kind);
        out.push_str("\",\"name\":");
        json_str(out, name);
        out.push_str(",\"inner\":");
    };
    if let Some(c) = by.cname {
        wrap(out, "cname", c);
        write_decided_by(out, &DecidedBy { cname: None, ..*by });
        out.push('}');
        return;
    }
    if let Some(g) = by.group {
        wrap(out, "group", g);
        write_decided_by(out, &DecidedBy { group: None, ..*by });
        out.push('}');
        return;
    }
    let m = &by.by;
    match (m.area, m.source) {
        (Some(a), _) => {
            out.push_str("{\"kind\":\"area\",\"id\":");
            json_str(out, a.id);
            out.push_str(",\"name\":");
            json_str(out, a.name);
        }
        (None, MatchSource::Rule(note)) => {
            out.push_str("{\"kind\":\"rule\",\"note\":");
            match note {
                Some(n) => json_str(out, n),
                None => out.push_str("null"),
            }
        }
        (None, MatchSource::List(label)) => {
            out.push_str("{\"kind\":\"list\",\"label\":");
            json_str(out, label);
            out.push_str(",\"line\":");
            match m.line {
                Some(l) => {
                    let _ = write!(out, "{l}");
                }
                None => out.push_str("null"),
            }
            out.push_str(",\"entry\":");
            json_str(out, m.pattern);
        }
        (None, MatchSource::Catalog(title)) => {
            out.push_str("{\"kind\":\"catalog\",\"title\":");
            json_str(out, title);
        }
    }
    if !matches!(m.source, MatchSource::List(_)) {
        out.push_str(",\"pattern\":");
        json_str(out, m.pattern);
    }
    out.push_str(",\"action\":\"");
    out.push_str(m.action.as_str());
    out.push_str("\"}");
}

/// The EDE text of a block: the areas, else the patterns, that blocked.
pub(crate) fn block_text(d: &Decision<'_>, cname: Option<&str>, out: &mut String) {
    out.push_str("blocked by winsink: ");
    let start = out.len();
    let why = Why::of(d);
    why.areas(&mut |_, name| {
        if out.len() > start {
            out.push_str(", ");
        }
        out.push_str(name);
    });
    if out.len() == start {
        why.patterns(&mut |p| {
            if out.len() > start {
                out.push_str(", ");
            }
            out.push_str(p);
        });
    }
    if let Some(c) = cname {
        out.push_str(" (via CNAME ");
        out.push_str(c);
        out.push(')');
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn policy() -> Policy {
        let text = r#"
catalogs = []
[[rules]]
pattern = "*.tracker.test"
action = "block"
[[rules]]
pattern = "audit.test"
action = "log"
[[rules]]
pattern = "trusted.test"
action = "allow"
"#;
        Policy::from_config_str(text, Path::new("."), "test")
            .unwrap()
            .policy
    }

    fn chain(names: &[&str]) -> Vec<Box<str>> {
        names.iter().map(|n| Box::from(*n)).collect()
    }

    #[test]
    fn the_log_writes_decided_by_as_explain_serialises_it() {
        let dir = std::env::temp_dir().join(format!("winsink-verdict-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("l.txt"), "# x\n0.0.0.0 listed.test\n").unwrap();
        let text = r#"
catalogs = ["builtin:windows11-enterprise"]
[areas]
diagnostic-data = "block"
[[rules]]
pattern = "*.tracker.test"
action = "block"
note = "a \"quoted\" note"
[[lists]]
path = "l.txt"
action = "log"
[[groups]]
name = "lab"
clients = ["10.0.0.0/8"]
default_action = "block"
[[groups.rules]]
pattern = "lab.test"
action = "allow"
"#;
        let p = Policy::from_config_str(text, &dir, "test").unwrap().policy;
        std::fs::remove_dir_all(&dir).ok();
        let cases = [
            ("127.0.0.1", "self.events.data.microsoft.com", None),
            ("127.0.0.1", "x.tracker.test", None),
            ("127.0.0.1", "listed.test", None),
            ("10.1.1.1", "lab.test", None),
            ("10.1.1.1", "www.bing.com", Some("cdn.example.test")),
            ("127.0.0.1", "x.tracker.test", Some("edge.example.test")),
        ];
        let mut kinds = Vec::new();
        for (client, name, cname) in cases {
            let d = p.decide(client.parse().unwrap(), name);
            let mut out = String::new();
            assert!(Why {
                decision: &d,
                cname
            }
            .decided_by(&mut out));
            let ours: serde_json::Value = serde_json::from_str(&out).unwrap();
            let by = d.decided_by().unwrap();
            let theirs = match cname {
                Some(c) => serde_json::to_string(&by.via_cname(c)),
                None => serde_json::to_string(&by),
            }
            .unwrap();
            // The same keys, values and order.
            assert_eq!(out, theirs, "{name}");
            kinds.push(ours["kind"].as_str().unwrap().to_owned());
        }
        assert_eq!(kinds, ["area", "rule", "list", "group", "cname", "cname"]);
        let d = p.decide("127.0.0.1".parse().unwrap(), "example.org");
        assert!(!Why::of(&d).decided_by(&mut String::new()));
    }

    #[test]
    fn a_blocked_chain_name_blocks_and_is_named() {
        let p = policy();
        let ip = "127.0.0.1".parse().unwrap();
        let first = p.decide(ip, "www.example.test");
        let out = inspect_chain(
            &p,
            ip,
            first,
            &chain(&["cdn.example.test", "x.tracker.test"]),
        );
        assert!(out.blocks());
        assert_eq!(out.chain_index, Some(1));
        let mut text = String::new();
        block_text(&out.decision, Some("x.tracker.test"), &mut text);
        assert_eq!(
            text,
            "blocked by winsink: *.tracker.test (via CNAME x.tracker.test)"
        );
    }

    #[test]
    fn an_allowed_question_is_not_blocked_by_its_chain() {
        let p = policy();
        let ip = "127.0.0.1".parse().unwrap();
        let first = p.decide(ip, "trusted.test");
        let out = inspect_chain(&p, ip, first, &chain(&["x.tracker.test"]));
        assert_eq!(out.decision.verdict.as_str(), "allow");
        assert_eq!(out.chain_index, None);
    }

    #[test]
    fn a_logged_chain_name_turns_a_pass_into_a_log() {
        let p = policy();
        let ip = "127.0.0.1".parse().unwrap();
        let first = p.decide(ip, "www.example.test");
        assert_eq!(first.verdict.as_str(), "pass");
        let out = inspect_chain(&p, ip, first, &chain(&["audit.test", "edge.example.test"]));
        assert_eq!(out.decision.verdict.as_str(), "log");
        assert_eq!(out.chain_index, Some(0));
        assert!(out.decision.is_matched());
    }
}
