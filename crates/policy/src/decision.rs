//! What the policy says about one query, and why.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::{Entry, Policy};
use crate::settings::SinkholeSettings;

/// The action of an area, a rule or a list, as written in the config file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Answer with the sinkhole.
    Block,
    /// Forward, but log the query as "would be blocked" (audit mode).
    Log,
    /// Forward. On a rule or a list, this overrides every block (see the precedence).
    Allow,
}

impl Action {
    /// `"block"`, `"log"` or `"allow"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Log => "log",
            Self::Allow => "allow",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The outcome for one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Answer with the sinkhole.
    Block,
    /// Forward and log as "would be blocked".
    Log,
    /// Forward: an allow rule or list matched, or only `allow` areas did.
    Allow,
    /// Forward: nothing matched.
    Pass,
}

impl Verdict {
    /// `"block"`, `"log"`, `"allow"` or `"pass"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Block => "block",
            Self::Log => "log",
            Self::Allow => "allow",
            Self::Pass => "pass",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a matching pattern came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchSource<'p> {
    /// An endpoint of a catalog; the catalog's title.
    Catalog(&'p str),
    /// A custom rule (`[[rules]]` or `[[groups.rules]]`); its note, if it has one.
    Rule(Option<&'p str>),
    /// An entry of a list file; the list's label.
    List(&'p str),
}

impl fmt::Display for MatchSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Catalog(title) => write!(f, "catalog: {title}"),
            Self::Rule(Some(note)) => write!(f, "rule: {note}"),
            Self::Rule(None) => f.write_str("rule"),
            Self::List(label) => write!(f, "list: {label}"),
        }
    }
}

/// An area of a catalog, by id and name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AreaRef<'p> {
    /// The area id (`diagnostic-data`).
    pub id: &'p str,
    /// The area name (`Diagnostic Data`).
    pub name: &'p str,
}

/// One pattern that matched the query name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Match<'p> {
    /// Catalog, rule or list.
    pub source: MatchSource<'p>,
    /// The area, for catalog endpoints; `None` for rules and lists.
    pub area: Option<AreaRef<'p>>,
    /// The pattern as the catalog, rule or list wrote it (lists: the entry, e.g.
    /// `ads.example` or `||ads.example^`).
    pub pattern: &'p str,
    /// The action that applies to this match for this client (group overrides applied).
    pub action: Action,
    /// What stops working when this endpoint is blocked (catalog endpoints only).
    pub impact: Option<&'p str>,
}

/// How many matches a [`Decision`] stores inline.
///
/// The verdict always takes every match into account; only the *report* of matches is
/// capped. A name matching more than this many distinct rules is pathological (the whole
/// shipped catalog has no name in more than two areas); [`Decision::is_truncated`] says
/// when it happened.
pub const MAX_REPORTED_MATCHES: usize = 16;

/// The policy's answer for (client, name): a verdict and every match behind it.
///
/// Built without allocating: matches are kept as rule indices in a fixed inline array and
/// resolved to [`Match`] values only when iterated.
#[derive(Clone)]
pub struct Decision<'p> {
    /// What to do with the query.
    pub verdict: Verdict,
    /// The client group whose settings applied, if the client is in one.
    pub group: Option<&'p str>,
    /// The sinkhole answer to use for `block`: the group's override, or the global one.
    pub sinkhole: &'p SinkholeSettings,
    pub(crate) policy: &'p Policy,
    /// Which area-action set applied: 0 global, `g + 1` group `g`.
    pub(crate) set: usize,
    pub(crate) ids: [u32; MAX_REPORTED_MATCHES],
    pub(crate) len: u8,
    pub(crate) truncated: bool,
    pub(crate) decided_by: Option<u32>,
}

impl<'p> Decision<'p> {
    /// Every match, in a stable order: catalog endpoints (catalog and page order), then
    /// group rules, global rules, and list entries.
    pub fn matches(&self) -> impl Iterator<Item = Match<'p>> + '_ {
        self.ids[..usize::from(self.len)]
            .iter()
            .map(move |&id| self.policy.resolve(id, self.set))
    }

    /// Whether anything matched.
    pub fn is_matched(&self) -> bool {
        self.len > 0
    }

    /// Whether more than [`MAX_REPORTED_MATCHES`] rules matched, so that
    /// [`matches`](Self::matches) reports only the first ones.
    pub fn is_truncated(&self) -> bool {
        self.truncated
    }

    /// The match that decided the verdict, by the precedence: the first group allow rule,
    /// else the first global allow rule or list, else the first block, else the first log,
    /// else the first `allow` area. `None` for [`Verdict::Pass`].
    pub fn decided_by(&self) -> Option<Match<'p>> {
        self.decided_by.map(|id| self.policy.resolve(id, self.set))
    }

    /// The distinct areas among the matches, in match order.
    pub fn areas(&self) -> impl Iterator<Item = AreaRef<'p>> + '_ {
        let ids = &self.ids[..usize::from(self.len)];
        ids.iter().enumerate().filter_map(move |(i, &id)| {
            let area = self.policy.area_of(id)?;
            let seen = ids[..i]
                .iter()
                .any(|&e| self.policy.area_of(e) == Some(area));
            (!seen).then(|| self.policy.area_ref(area))
        })
    }
}

/// A decision as owned data, in the stable JSON shape of `winsink explain --json`:
/// `{"name", "client", "decision", "matches": [{"source", "area", "pattern", "action",
/// "impact"}]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The name as asked.
    pub name: String,
    /// The client address.
    pub client: String,
    /// `block`, `log`, `allow` or `pass`.
    pub decision: Verdict,
    /// Every match, in [`Decision::matches`] order.
    pub matches: Vec<MatchRecord>,
}

/// One [`Match`] as owned data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchRecord {
    /// `catalog: TITLE`, `rule`, `rule: NOTE` or `list: LABEL`.
    pub source: String,
    /// The area name; `None` (JSON `null`) for rules and lists.
    pub area: Option<String>,
    /// The pattern that matched.
    pub pattern: String,
    /// The action for this client.
    pub action: Action,
    /// What blocking it breaks (catalog endpoints only).
    pub impact: Option<String>,
}

impl Decision<'_> {
    /// This decision for `name` asked by `client`, as owned data (allocates; for
    /// `winsink explain` and tests, not for the query path).
    pub fn explain(&self, name: &str, client: IpAddr) -> Explanation {
        Explanation {
            name: name.to_owned(),
            client: client.to_string(),
            decision: self.verdict,
            matches: self
                .matches()
                .map(|m| MatchRecord {
                    source: m.source.to_string(),
                    area: m.area.map(|a| a.name.to_owned()),
                    pattern: m.pattern.to_owned(),
                    action: m.action,
                    impact: m.impact.map(str::to_owned),
                })
                .collect(),
        }
    }
}

impl fmt::Debug for Decision<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Decision")
            .field("verdict", &self.verdict)
            .field("group", &self.group)
            .field("matches", &self.matches().collect::<Vec<_>>())
            .field("truncated", &self.truncated)
            .finish()
    }
}

/// How strongly a match pulls the verdict; the highest rank decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Rank {
    AllowArea = 1,
    Log = 2,
    Block = 3,
    AllowGlobal = 4,
    AllowGroup = 5,
}

impl Rank {
    pub(crate) fn of(action: Action, entry: Entry, in_group: bool) -> Self {
        match (action, entry) {
            (Action::Block, _) => Self::Block,
            (Action::Log, _) => Self::Log,
            (Action::Allow, Entry::Endpoint(_)) => Self::AllowArea,
            (Action::Allow, _) if in_group => Self::AllowGroup,
            (Action::Allow, _) => Self::AllowGlobal,
        }
    }

    pub(crate) fn verdict(self) -> Verdict {
        match self {
            Self::AllowArea | Self::AllowGlobal | Self::AllowGroup => Verdict::Allow,
            Self::Log => Verdict::Log,
            Self::Block => Verdict::Block,
        }
    }
}
