//! What the policy says about one query, and why.

use std::fmt;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use crate::policy::Policy;
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

/// Whose words an [`Impact`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImpactScope {
    /// The endpoint's own description on the source page.
    Endpoint,
    /// The area's impact summary ([`winsink_catalog::Area::impact`]): the page gives the
    /// endpoint no description of its own.
    Area,
}

impl ImpactScope {
    /// `"endpoint"` or `"area"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Endpoint => "endpoint",
            Self::Area => "area",
        }
    }
}

/// What blocking a catalog endpoint breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Impact<'p> {
    /// The text, from the catalog.
    pub text: &'p str,
    /// Whether it describes the endpoint or, for want of that, its whole area.
    pub scope: ImpactScope,
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
    /// What stops working when this endpoint is blocked: catalog endpoints only, and for
    /// them never empty (the endpoint's description, else its area's impact summary).
    pub impact: Option<Impact<'p>>,
    /// For a list entry, its 1-based line in the list file.
    pub line: Option<u32>,
}

/// What decided a [`Decision`]: the match whose action became the verdict, the client
/// group that supplied that action, and the CNAME chain name it matched, if not the
/// question.
///
/// It serialises (without allocating) to the `decided_by` object of the query log and of
/// `winsink explain --json`, innermost reason first:
///
/// - `{"kind":"area","id":…,"name":…,"pattern":…,"action":…}`: a catalog area;
/// - `{"kind":"rule","pattern":…,"note":…|null,"action":…}`: a `[[rules]]` or
///   `[[groups.rules]]` entry;
/// - `{"kind":"list","label":…,"line":…,"entry":…,"action":…}`: a list file's entry and
///   its line;
/// - `{"kind":"group","name":…,"inner":{…}}` around one of those when a client group
///   supplied the action (a group rule, a `[groups.areas]` override or the group's
///   `default_action`);
/// - `{"kind":"cname","name":…,"inner":{…}}` around all of it when a name of the
///   answer's CNAME chain decided, not the question.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecidedBy<'p> {
    /// The match that decided.
    pub by: Match<'p>,
    /// The client group that supplied the action, if one did.
    pub group: Option<&'p str>,
    /// The CNAME chain name that was decided on, when not the question.
    pub cname: Option<&'p str>,
}

impl<'p> DecidedBy<'p> {
    /// The same reason, for a name reached through the question's CNAME chain.
    pub fn via_cname<'a>(self, name: &'a str) -> DecidedBy<'a>
    where
        'p: 'a,
    {
        DecidedBy {
            by: self.by,
            group: self.group,
            cname: Some(name),
        }
    }
}

impl fmt::Display for DecidedBy<'_> {
    /// `area Diagnostic Data (diagnostic-data)`, `rule x.example (note)`, `list ads line
    /// 12 (ads.example)`, with `group lab: ` and `CNAME target x: ` in front when they
    /// apply.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(c) = self.cname {
            write!(f, "CNAME target {c}: ")?;
        }
        if let Some(g) = self.group {
            write!(f, "group {g}: ")?;
        }
        let m = &self.by;
        match (m.area, m.source) {
            (Some(a), _) => write!(f, "area {} ({})", a.name, a.id),
            (None, MatchSource::Rule(Some(note))) => write!(f, "rule {} ({note})", m.pattern),
            (None, MatchSource::Rule(None)) => write!(f, "rule {}", m.pattern),
            (None, MatchSource::List(label)) => match m.line {
                Some(line) => write!(f, "list {label} line {line} ({})", m.pattern),
                None => write!(f, "list {label} ({})", m.pattern),
            },
            (None, MatchSource::Catalog(title)) => {
                write!(f, "catalog {title} pattern {}", m.pattern)
            }
        }
    }
}

impl Serialize for DecidedBy<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        if let Some(name) = self.cname {
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("kind", "cname")?;
            map.serialize_entry("name", name)?;
            map.serialize_entry(
                "inner",
                &Self {
                    cname: None,
                    ..*self
                },
            )?;
            return map.end();
        }
        if let Some(name) = self.group {
            let mut map = s.serialize_map(Some(3))?;
            map.serialize_entry("kind", "group")?;
            map.serialize_entry("name", name)?;
            map.serialize_entry(
                "inner",
                &Self {
                    group: None,
                    ..*self
                },
            )?;
            return map.end();
        }
        let m = &self.by;
        let mut map = s.serialize_map(None)?;
        match (m.area, m.source) {
            (Some(a), _) => {
                map.serialize_entry("kind", "area")?;
                map.serialize_entry("id", a.id)?;
                map.serialize_entry("name", a.name)?;
            }
            (None, MatchSource::Rule(note)) => {
                map.serialize_entry("kind", "rule")?;
                map.serialize_entry("note", &note)?;
            }
            (None, MatchSource::List(label)) => {
                map.serialize_entry("kind", "list")?;
                map.serialize_entry("label", label)?;
                map.serialize_entry("line", &m.line)?;
                map.serialize_entry("entry", m.pattern)?;
            }
            (None, MatchSource::Catalog(title)) => {
                // An endpoint always has an area; kept total for the type's sake.
                map.serialize_entry("kind", "catalog")?;
                map.serialize_entry("title", title)?;
            }
        }
        if !matches!(m.source, MatchSource::List(_)) {
            map.serialize_entry("pattern", m.pattern)?;
        }
        map.serialize_entry("action", &m.action)?;
        map.end()
    }
}

impl Serialize for AreaRef<'_> {
    /// `{"id":…,"name":…}`, as in the `areas` of the query log and of explain.
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = s.serialize_map(Some(2))?;
        map.serialize_entry("id", self.id)?;
        map.serialize_entry("name", self.name)?;
        map.end()
    }
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

    /// What decided the verdict, by the precedence: the first group allow rule, else the
    /// first global allow rule or list, else the first block, else the first log, else
    /// the first `allow` area; with the client group when the group's settings supplied
    /// that action. `None` for [`Verdict::Pass`].
    pub fn decided_by(&self) -> Option<DecidedBy<'p>> {
        let id = self.decided_by?;
        Some(DecidedBy {
            by: self.policy.resolve(id, self.set),
            group: self.policy.group_supplied(id, self.set),
            cname: None,
        })
    }

    /// The distinct impacts of the matches, in match order (no allocation).
    pub fn impacts(&self) -> impl Iterator<Item = Impact<'p>> + '_ {
        let ids = &self.ids[..usize::from(self.len)];
        let impact = move |id: u32| self.policy.resolve(id, self.set).impact;
        ids.iter().enumerate().filter_map(move |(i, &id)| {
            let imp = impact(id)?;
            let seen = ids[..i]
                .iter()
                .any(|&e| impact(e).is_some_and(|o| o.text == imp.text));
            (!seen).then_some(imp)
        })
    }

    /// Whose words [`impacts`](Self::impacts) are: `"endpoint"` when every one is an
    /// endpoint's own description, `"area"` when every one is an area summary, `"mixed"`
    /// otherwise; `None` when there is no impact (nothing from a catalog matched).
    pub fn impact_scope(&self) -> Option<&'static str> {
        let mut scopes = self.impacts().map(|i| i.scope);
        let first = scopes.next()?;
        Some(if scopes.all(|s| s == first) {
            first.as_str()
        } else {
            "mixed"
        })
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

/// A decision as owned data, in the stable JSON shape of `winsink explain --json`. Its
/// field names are the query log's for the same facts:
///
/// ```json
/// {"name": "…", "client": "…", "group": "…" | null, "decision": "block",
///  "decided_by": {"kind": "area", "id": "…", "name": "…", …} | null,
///  "areas": [{"id": "…", "name": "…"}], "patterns": ["…"],
///  "impact": ["…"], "impact_scope": "endpoint" | "area" | "mixed" | null,
///  "matches": [{"source": "…", "area": {"id": "…", "name": "…"} | null,
///               "pattern": "…", "action": "…", "impact": "…" | null,
///               "impact_scope": "endpoint" | "area" | null, "line": 3 | null}]}
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    /// The name as asked.
    pub name: String,
    /// The client address.
    pub client: String,
    /// The client group whose settings applied, if any.
    pub group: Option<String>,
    /// `block`, `log`, `allow` or `pass`.
    pub decision: Verdict,
    /// What decided, in the [`DecidedBy`] JSON shape; `null` for `pass`.
    pub decided_by: Option<DecidedByRecord>,
    /// Every area the name belongs to (what a block "would affect").
    pub areas: Vec<AreaRecord>,
    /// The distinct matching patterns.
    pub patterns: Vec<String>,
    /// The distinct impacts ([`Decision::impacts`]).
    pub impact: Vec<String>,
    /// [`Decision::impact_scope`].
    pub impact_scope: Option<&'static str>,
    /// Every match, in [`Decision::matches`] order.
    pub matches: Vec<MatchRecord>,
}

/// An area by id and name, as owned data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaRecord {
    /// The area id.
    pub id: String,
    /// The area name.
    pub name: String,
}

/// One [`Match`] as owned data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MatchRecord {
    /// `catalog: TITLE`, `rule`, `rule: NOTE` or `list: LABEL`.
    pub source: String,
    /// The area; `None` (JSON `null`) for rules and lists.
    pub area: Option<AreaRecord>,
    /// The pattern that matched.
    pub pattern: String,
    /// The action for this client.
    pub action: Action,
    /// What blocking it breaks (catalog endpoints only).
    pub impact: Option<String>,
    /// Whose words `impact` is.
    pub impact_scope: Option<ImpactScope>,
    /// For a list entry, its line in the list file.
    pub line: Option<u32>,
}

/// A [`DecidedBy`] as owned data; it serialises exactly as [`DecidedBy`] does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecidedByRecord {
    /// Catalog title, rule note or list label, by kind.
    pub source: SourceRecord,
    /// The area, for a catalog endpoint.
    pub area: Option<AreaRecord>,
    /// The pattern (lists: the entry).
    pub pattern: String,
    /// The action.
    pub action: Action,
    /// For a list entry, its line.
    pub line: Option<u32>,
    /// The group that supplied the action.
    pub group: Option<String>,
    /// The CNAME chain name decided on.
    pub cname: Option<String>,
}

/// A [`MatchSource`] as owned data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRecord {
    /// A catalog's title.
    Catalog(String),
    /// A rule's note.
    Rule(Option<String>),
    /// A list's label.
    List(String),
}

impl From<DecidedBy<'_>> for DecidedByRecord {
    fn from(d: DecidedBy<'_>) -> Self {
        let m = d.by;
        Self {
            source: match m.source {
                MatchSource::Catalog(t) => SourceRecord::Catalog(t.to_owned()),
                MatchSource::Rule(n) => SourceRecord::Rule(n.map(str::to_owned)),
                MatchSource::List(l) => SourceRecord::List(l.to_owned()),
            },
            area: m.area.map(AreaRecord::from),
            pattern: m.pattern.to_owned(),
            action: m.action,
            line: m.line,
            group: d.group.map(str::to_owned),
            cname: d.cname.map(str::to_owned),
        }
    }
}

impl DecidedByRecord {
    /// The borrowed form, to print or serialise.
    pub fn borrow(&self) -> DecidedBy<'_> {
        DecidedBy {
            by: Match {
                source: match &self.source {
                    SourceRecord::Catalog(t) => MatchSource::Catalog(t),
                    SourceRecord::Rule(n) => MatchSource::Rule(n.as_deref()),
                    SourceRecord::List(l) => MatchSource::List(l),
                },
                area: self.area.as_ref().map(|a| AreaRef {
                    id: &a.id,
                    name: &a.name,
                }),
                pattern: &self.pattern,
                action: self.action,
                impact: None,
                line: self.line,
            },
            group: self.group.as_deref(),
            cname: self.cname.as_deref(),
        }
    }
}

impl Serialize for DecidedByRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.borrow().serialize(s)
    }
}

impl From<AreaRef<'_>> for AreaRecord {
    fn from(a: AreaRef<'_>) -> Self {
        Self {
            id: a.id.to_owned(),
            name: a.name.to_owned(),
        }
    }
}

impl Decision<'_> {
    /// This decision for `name` asked by `client`, as owned data (allocates; for
    /// `winsink explain` and tests, not for the query path).
    pub fn explain(&self, name: &str, client: IpAddr) -> Explanation {
        let mut patterns: Vec<String> = Vec::new();
        for m in self.matches() {
            if !patterns.iter().any(|p| p == m.pattern) {
                patterns.push(m.pattern.to_owned());
            }
        }
        Explanation {
            name: name.to_owned(),
            client: client.to_string(),
            group: self.group.map(str::to_owned),
            decision: self.verdict,
            decided_by: self.decided_by().map(DecidedByRecord::from),
            areas: self.areas().map(AreaRecord::from).collect(),
            patterns,
            impact: self.impacts().map(|i| i.text.to_owned()).collect(),
            impact_scope: self.impact_scope(),
            matches: self
                .matches()
                .map(|m| MatchRecord {
                    source: m.source.to_string(),
                    area: m.area.map(AreaRecord::from),
                    pattern: m.pattern.to_owned(),
                    action: m.action,
                    impact: m.impact.map(|i| i.text.to_owned()),
                    impact_scope: m.impact.map(|i| i.scope),
                    line: m.line,
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
