//! What the server adds to the policy's decision: the decision over a CNAME chain, and
//! how a decision explains itself in the query log and in the Extended DNS Error text.

use std::net::IpAddr;

use winsink_policy::{Decision, Policy, Verdict};

use crate::querylog::Explain;

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

/// Areas, patterns and impacts of a decision, for the log.
pub(crate) struct Why<'a, 'p>(pub(crate) &'a Decision<'p>);

impl Explain for Why<'_, '_> {
    fn areas(&self, f: &mut dyn FnMut(&str)) {
        for a in self.0.areas() {
            f(a.name);
        }
    }

    fn patterns(&self, f: &mut dyn FnMut(&str)) {
        let mut seen: [&str; winsink_policy::MAX_REPORTED_MATCHES] =
            [""; winsink_policy::MAX_REPORTED_MATCHES];
        let mut n = 0;
        for m in self.0.matches() {
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
        for imp in self.0.impacts() {
            f(imp.text);
        }
    }
}

/// The EDE text of a block: the areas, else the patterns, that blocked.
pub(crate) fn block_text(d: &Decision<'_>, cname: Option<&str>, out: &mut String) {
    out.push_str("blocked by winsink: ");
    let start = out.len();
    let why = Why(d);
    why.areas(&mut |a| {
        if out.len() > start {
            out.push_str(", ");
        }
        out.push_str(a);
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
