//! Counting query lines: one [`Tally`] per thread, merged at the end.
//!
//! Memory is bounded by what is distinct — areas, endpoint patterns, clients, and the
//! names kept (the concrete names per catalog endpoint and the uncatalogued Microsoft
//! names) — never by the number of lines.
//!
//! # What each line counts for
//!
//! - `queries` of every area in the line's `areas` (the areas the name belongs to), and of
//!   each of those areas' endpoints among the line's `patterns`;
//! - `blocked`, `would_block` (decision `log`) or `allowed` of one area only: the one that
//!   decided. That is `decided_by` when the line has it (an area, or none when a rule or
//!   list decided); for older lines without it, the first area of the line whose action
//!   in the loaded config is the line's decision; else none when a pattern of the line is
//!   no catalog endpoint (a rule or list); else the line's first area. So the blocked
//!   figures of all areas add up to the blocked lines decided by areas, never more;
//! - the uncatalogued names when the line has no area, its name is under a Microsoft
//!   suffix and it was answered (not `refuse`d or `invalid`);
//! - per client, per day, per decision and per rcode.

use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::{FxHashMap, FxHashSet};

use super::index::{Index, Slot};
use super::logline::{self, LogLine};
use super::scan::Marks;
use super::time::{self, DAY_US};

/// The decisions the log writes, in report order.
pub(crate) const DECISIONS: [&str; 6] = ["block", "log", "allow", "pass", "refuse", "invalid"];
const BLOCK: usize = 0;
const LOG: usize = 1;
const ALLOW: usize = 2;
const REFUSE: usize = 4;
const INVALID: usize = 5;
/// The slot of decisions the log does not write (a newer daemon's?).
pub(crate) const OTHER: usize = DECISIONS.len();

/// How many broken lines are quoted (the rest are counted).
pub(crate) const BROKEN_EXAMPLES: usize = 5;

/// Which lines count.
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Lines before this (µs since the epoch) are left out.
    pub(crate) since: Option<i64>,
    /// Lines at or after this are left out.
    pub(crate) until: Option<i64>,
    /// Only these clients, when not empty.
    pub(crate) clients: Vec<IpNet>,
}

/// First and last time seen, µs since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub(crate) first: i64,
    pub(crate) last: i64,
}

impl Span {
    fn at(t: i64) -> Self {
        Self { first: t, last: t }
    }

    fn add(&mut self, t: i64) {
        self.first = self.first.min(t);
        self.last = self.last.max(t);
    }

    fn merge(slot: &mut Option<Self>, other: Option<Self>) {
        match (slot.as_mut(), other) {
            (Some(s), Some(o)) => {
                s.add(o.first);
                s.add(o.last);
            }
            (None, o) => *slot = o,
            (Some(_), None) => {}
        }
    }
}

fn seen(slot: &mut Option<Span>, t: i64) {
    match slot {
        Some(s) => s.add(t),
        None => *slot = Some(Span::at(t)),
    }
}

/// Figures of an area or an endpoint.
#[derive(Debug, Clone, Default)]
pub(crate) struct Figures {
    pub(crate) queries: u64,
    pub(crate) blocked: u64,
    pub(crate) would_block: u64,
    pub(crate) allowed: u64,
    pub(crate) clients: FxHashSet<u32>,
    pub(crate) seen: Option<Span>,
}

impl Figures {
    fn count(&mut self, client: u32, t: i64) {
        self.queries += 1;
        self.clients.insert(client);
        seen(&mut self.seen, t);
    }

    fn decided(&mut self, decision: usize) {
        match decision {
            BLOCK => self.blocked += 1,
            LOG => self.would_block += 1,
            ALLOW => self.allowed += 1,
            _ => {}
        }
    }

    fn merge(&mut self, o: Self, remap: &[u32]) {
        self.queries += o.queries;
        self.blocked += o.blocked;
        self.would_block += o.would_block;
        self.allowed += o.allowed;
        self.clients
            .extend(o.clients.into_iter().map(|c| remap[c as usize]));
        Span::merge(&mut self.seen, o.seen);
    }
}

/// One area's tally.
#[derive(Debug, Clone, Default)]
pub(crate) struct AreaTally {
    pub(crate) figures: Figures,
    /// The decisions this area made (block/log/allow): count and span each.
    pub(crate) actions: [(u64, Option<Span>); 3],
    /// Per endpoint pattern.
    pub(crate) endpoints: FxHashMap<Box<str>, EndpointTally>,
}

/// What each area a line names counts of it.
struct LineFacts<'l> {
    client: u32,
    t: i64,
    /// An index of [`DECISIONS`] (or [`OTHER`]).
    decision: usize,
    /// The name that matched: the CNAME target that decided, else the question's.
    name: &'l str,
    /// The pattern `decided_by` names, if it names one.
    decided_pattern: Option<&'l str>,
    /// Whether the line names this area only.
    only_area: bool,
}

impl AreaTally {
    /// Counts `line` for the area in `slot`; `decides` if this area decided it.
    fn count(
        &mut self,
        index: &Index,
        slot: Slot,
        line: &LogLine<'_>,
        f: &LineFacts<'_>,
        decides: bool,
    ) {
        self.figures.count(f.client, f.t);
        if decides {
            self.figures.decided(f.decision);
            if f.decision <= ALLOW {
                let (n, span) = &mut self.actions[f.decision];
                *n += 1;
                seen(span, f.t);
            }
        }
        // The line's patterns that are this area's endpoints (or, for an area the
        // catalog does not know, every pattern of a line naming only it).
        let mut decided_one = false;
        for p in &line.patterns {
            let of_area = index.has_endpoint(slot, p) || (f.only_area && !index.is_endpoint(p));
            if !of_area {
                continue;
            }
            let e = match self.endpoints.get_mut(p.as_ref()) {
                Some(e) => e,
                None => self.endpoints.entry(p.as_ref().into()).or_default(),
            };
            e.figures.count(f.client, f.t);
            let pattern_decides = match f.decided_pattern {
                Some(dp) => dp == p,
                None => !decided_one,
            };
            if decides && pattern_decides {
                e.figures.decided(f.decision);
                decided_one = true;
            }
            match e.names.get_mut(f.name) {
                Some(n) => *n += 1,
                None => {
                    e.names.insert(f.name.into(), 1);
                }
            }
        }
    }
}

/// One endpoint's tally.
#[derive(Debug, Clone, Default)]
pub(crate) struct EndpointTally {
    pub(crate) figures: Figures,
    /// The concrete names that matched, with their counts.
    pub(crate) names: FxHashMap<Box<str>, u64>,
}

/// One uncatalogued name.
#[derive(Debug, Clone, Default)]
pub(crate) struct NameTally {
    pub(crate) queries: u64,
    pub(crate) clients: FxHashSet<u32>,
    pub(crate) seen: Option<Span>,
    /// Counts by decision (a rule or list may have decided).
    pub(crate) decisions: [u64; OTHER + 1],
}

/// One client.
#[derive(Debug, Clone, Default)]
pub(crate) struct ClientTally {
    pub(crate) queries: u64,
    pub(crate) blocked: u64,
    pub(crate) seen: Option<Span>,
    /// Queries per area slot.
    pub(crate) areas: FxHashMap<Slot, u64>,
}

/// An area the lines name and the catalog does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExtraArea {
    /// What the lines call it: its id when they give one, else its name.
    key: Box<str>,
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
}

/// A broken line, quoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broken {
    pub(crate) input: String,
    pub(crate) line: u64,
    pub(crate) error: String,
}

/// Everything counted from some lines.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    /// Non-blank lines read.
    pub(crate) lines: u64,
    /// Lines that are not query lines (other formats, broken JSON, bad fields).
    pub(crate) broken: u64,
    pub(crate) broken_examples: Vec<Broken>,
    /// Query lines left out by the filter.
    pub(crate) filtered: u64,
    /// Query lines counted.
    pub(crate) queries: u64,
    pub(crate) seen: Option<Span>,
    pub(crate) decisions: [u64; OTHER + 1],
    pub(crate) other_decisions: FxHashMap<Box<str>, u64>,
    pub(crate) rcodes: FxHashMap<Box<str>, u64>,
    /// Per day (days since the epoch): counts by decision.
    pub(crate) days: FxHashMap<i64, [u64; OTHER + 1]>,
    /// Per area slot (the index's areas, then the ones only the log names).
    pub(crate) areas: Vec<AreaTally>,
    /// Areas the catalog does not have, in slot order after the index's.
    pub(crate) extra_areas: Vec<ExtraArea>,
    extra_by_key: FxHashMap<Box<str>, Slot>,
    /// Clients, by their number in `client_ids`.
    pub(crate) clients: Vec<(IpAddr, ClientTally)>,
    client_ids: FxHashMap<IpAddr, u32>,
    pub(crate) uncatalogued: FxHashMap<Box<str>, NameTally>,
    /// Lines with no area whose name is not under a Microsoft suffix.
    pub(crate) other_names: u64,
    /// Blocked, would-block and allowed lines decided by a rule or list (no area).
    pub(crate) decided_by_rules: [u64; 3],
    /// The area slots of the line being counted (kept to spare an allocation a line).
    slots: Vec<Slot>,
    /// The line scan's buffer (kept likewise).
    marks: Marks,
}

impl Tally {
    /// An empty tally for `index`'s areas.
    pub(crate) fn new(index: &Index) -> Self {
        Self {
            areas: vec![AreaTally::default(); index.areas.len()],
            ..Self::default()
        }
    }

    /// Counts one line (without its newline). `input` and `number` name it in the
    /// quoted examples of broken lines.
    pub(crate) fn line(
        &mut self,
        index: &Index,
        filter: &Filter,
        bytes: &[u8],
        input: &str,
        number: u64,
    ) {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return;
        }
        self.lines += 1;
        let mut line = LogLine::default();
        if let Err(e) = logline::parse_with(bytes, &mut self.marks, &mut line) {
            let why = if bytes.first() == Some(&b'{') {
                format!("not a query line: {e}")
            } else {
                "not JSON (another log format?)".to_owned()
            };
            return self.broken(input, number, why);
        }
        let Some(t) = time::parse(&line.ts) else {
            return self.broken(input, number, format!("bad ts {:?}", line.ts));
        };
        let Ok(client) = line.client.parse::<IpAddr>() else {
            return self.broken(input, number, format!("bad client {:?}", line.client));
        };
        if filter.since.is_some_and(|s| t < s)
            || filter.until.is_some_and(|u| t >= u)
            || (!filter.clients.is_empty() && !filter.clients.iter().any(|n| n.contains(&client)))
        {
            self.filtered += 1;
            return;
        }
        self.count(index, &line, t, client);
    }

    /// Moves the line numbers of the quoted broken lines `by` lines on: the tally counted
    /// a piece of a file that starts after that many lines.
    pub(crate) fn renumber(&mut self, by: u64) {
        for b in &mut self.broken_examples {
            b.line += by;
        }
    }

    fn broken(&mut self, input: &str, line: u64, error: String) {
        self.broken += 1;
        if self.broken_examples.len() < BROKEN_EXAMPLES {
            self.broken_examples.push(Broken {
                input: input.to_owned(),
                line,
                error,
            });
        }
    }

    fn client(&mut self, ip: IpAddr) -> u32 {
        if let Some(&id) = self.client_ids.get(&ip) {
            return id;
        }
        let id = u32::try_from(self.clients.len()).unwrap_or(u32::MAX);
        self.clients.push((ip, ClientTally::default()));
        self.client_ids.insert(ip, id);
        id
    }

    /// The slot of an area the line names: the catalog's, else one of its own.
    fn area_slot(&mut self, index: &Index, id: Option<&str>, name: &str) -> Slot {
        if let Some(s) = id.and_then(|i| index.area(i)).or_else(|| index.area(name)) {
            return s;
        }
        let key = id.unwrap_or(name);
        if let Some(&s) = self.extra_by_key.get(key) {
            return s;
        }
        let id = id.map_or_else(|| winsink_catalog::slug(name), str::to_owned);
        self.extra_slot(ExtraArea {
            key: key.into(),
            id: id.into(),
            name: name.into(),
        })
    }

    fn extra_slot(&mut self, area: ExtraArea) -> Slot {
        if let Some(&s) = self.extra_by_key.get(&area.key) {
            return s;
        }
        let slot = Slot::try_from(self.areas.len()).unwrap_or(Slot::MAX);
        self.areas.push(AreaTally::default());
        self.extra_by_key.insert(area.key.clone(), slot);
        self.extra_areas.push(area);
        slot
    }

    /// Counts one parsed line: the totals, its client, then the areas it names (or, with
    /// none, the uncatalogued Microsoft names and the rest).
    fn count(&mut self, index: &Index, line: &LogLine<'_>, t: i64, ip: IpAddr) {
        let decision = self.count_totals(line, t);
        let client = self.client(ip);
        {
            let c = &mut self.clients[client as usize].1;
            c.queries += 1;
            if decision == BLOCK {
                c.blocked += 1;
            }
            seen(&mut c.seen, t);
        }

        if line.areas.is_empty() {
            self.count_without_area(index, line, decision, client, t);
            return;
        }

        // The areas of the line, as slots (a name belongs to a handful at most).
        let mut slots = std::mem::take(&mut self.slots);
        slots.clear();
        for a in &line.areas {
            let s = self.area_slot(index, a.id.as_deref(), &a.name);
            if !slots.contains(&s) {
                slots.push(s);
            }
        }
        let decider = self.decider(index, line, decision, &slots);
        let facts = LineFacts {
            client,
            t,
            decision,
            name: line.cname.as_deref().unwrap_or(&line.qname),
            decided_pattern: line.decided_by.as_ref().and_then(|d| d.pattern.as_deref()),
            only_area: slots.len() == 1,
        };
        for &slot in &slots {
            *self.clients[client as usize]
                .1
                .areas
                .entry(slot)
                .or_default() += 1;
            let decides = decider == Some(slot);
            self.areas[slot as usize].count(index, slot, line, &facts, decides);
        }
        if decider.is_none() && (BLOCK..=ALLOW).contains(&decision) {
            self.decided_by_rules[decision] += 1;
        }
        self.slots = slots;
    }

    /// The whole-report totals of a line (queries, decisions, rcodes, days); returns the
    /// line's decision as an index of [`DECISIONS`] (or [`OTHER`]).
    fn count_totals(&mut self, line: &LogLine<'_>, t: i64) -> usize {
        self.queries += 1;
        seen(&mut self.seen, t);
        let decision = DECISIONS
            .iter()
            .position(|d| *d == line.decision)
            .unwrap_or(OTHER);
        self.decisions[decision] += 1;
        if decision == OTHER {
            *self
                .other_decisions
                .entry(line.decision.as_ref().into())
                .or_default() += 1;
        }
        match self.rcodes.get_mut(line.rcode.as_ref()) {
            Some(n) => *n += 1,
            None => {
                self.rcodes.insert(line.rcode.as_ref().into(), 1);
            }
        }
        self.days.entry(t.div_euclid(DAY_US)).or_default()[decision] += 1;
        decision
    }

    /// A line that names no area: a Microsoft name the policy answered is uncatalogued;
    /// anything else counts among the other names (and the rules' decisions).
    fn count_without_area(
        &mut self,
        index: &Index,
        line: &LogLine<'_>,
        decision: usize,
        client: u32,
        t: i64,
    ) {
        if decision != REFUSE && decision != INVALID && index.suffixes.contains(&line.qname) {
            let n = match self.uncatalogued.get_mut(line.qname.as_ref()) {
                Some(n) => n,
                None => self
                    .uncatalogued
                    .entry(line.qname.as_ref().into())
                    .or_default(),
            };
            n.queries += 1;
            n.clients.insert(client);
            seen(&mut n.seen, t);
            n.decisions[decision] += 1;
        } else {
            self.other_names += 1;
            if (BLOCK..=ALLOW).contains(&decision) {
                self.decided_by_rules[decision] += 1;
            }
        }
    }

    /// The area that decided the line (see the module documentation).
    fn decider(
        &mut self,
        index: &Index,
        line: &LogLine<'_>,
        decision: usize,
        slots: &[Slot],
    ) -> Option<Slot> {
        if decision > ALLOW {
            return None;
        }
        if let Some(d) = &line.decided_by {
            if d.kind != "area" {
                return None;
            }
            let name = d.area_name.as_deref().unwrap_or_default();
            return Some(self.area_slot(index, d.area_id.as_deref(), name));
        }
        let configured = slots.iter().copied().find(|&s| {
            index
                .configured(s)
                .is_some_and(|a| a == DECISIONS[decision])
        });
        if configured.is_some() {
            return configured;
        }
        if decision == BLOCK && line.patterns.iter().any(|p| !index.is_endpoint(p)) {
            return None;
        }
        slots.first().copied()
    }

    /// Adds `other` (counted over other lines with the same index) to this tally.
    pub(crate) fn merge(&mut self, index: &Index, other: Self) {
        self.lines += other.lines;
        self.broken += other.broken;
        for b in other.broken_examples {
            if self.broken_examples.len() < BROKEN_EXAMPLES {
                self.broken_examples.push(b);
            }
        }
        self.filtered += other.filtered;
        self.queries += other.queries;
        Span::merge(&mut self.seen, other.seen);
        for (i, n) in other.decisions.iter().enumerate() {
            self.decisions[i] += n;
        }
        for (k, n) in other.other_decisions {
            *self.other_decisions.entry(k).or_default() += n;
        }
        for (k, n) in other.rcodes {
            *self.rcodes.entry(k).or_default() += n;
        }
        for (day, counts) in other.days {
            let mine = self.days.entry(day).or_default();
            for (i, n) in counts.iter().enumerate() {
                mine[i] += n;
            }
        }
        self.other_names += other.other_names;
        for (i, n) in other.decided_by_rules.iter().enumerate() {
            self.decided_by_rules[i] += n;
        }

        // Clients: their numbers in `other` → numbers here.
        let remap: Vec<u32> = other
            .clients
            .iter()
            .map(|(ip, _)| self.client(*ip))
            .collect();
        // Areas: slots in `other` → slots here.
        let known = index.areas.len();
        let area_map: Vec<Slot> = (0..known)
            .map(|s| Slot::try_from(s).unwrap_or(Slot::MAX))
            .chain(other.extra_areas.into_iter().map(|a| self.extra_slot(a)))
            .collect();
        for (i, (_, c)) in other.clients.into_iter().enumerate() {
            let mine = &mut self.clients[remap[i] as usize].1;
            mine.queries += c.queries;
            mine.blocked += c.blocked;
            Span::merge(&mut mine.seen, c.seen);
            for (slot, n) in c.areas {
                *mine.areas.entry(area_map[slot as usize]).or_default() += n;
            }
        }
        for (s, a) in other.areas.into_iter().enumerate() {
            let mine = &mut self.areas[area_map[s] as usize];
            mine.figures.merge(a.figures, &remap);
            for (i, (n, span)) in a.actions.into_iter().enumerate() {
                mine.actions[i].0 += n;
                Span::merge(&mut mine.actions[i].1, span);
            }
            for (p, e) in a.endpoints {
                let me = mine.endpoints.entry(p).or_default();
                me.figures.merge(e.figures, &remap);
                for (name, n) in e.names {
                    *me.names.entry(name).or_default() += n;
                }
            }
        }
        for (name, n) in other.uncatalogued {
            let mine = self.uncatalogued.entry(name).or_default();
            mine.queries += n.queries;
            mine.clients
                .extend(n.clients.into_iter().map(|c| remap[c as usize]));
            Span::merge(&mut mine.seen, n.seen);
            for (i, d) in n.decisions.iter().enumerate() {
                mine.decisions[i] += d;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use winsink_policy::DomainSuffixes;

    fn index() -> Index {
        let catalog = winsink_catalog::Catalog::from_toml_str(
            r#"
[source]
title = "t"
url = "https://example.invalid/"
date = ""
[[area]]
id = "a"
name = "Area A"
[[area.endpoint]]
pattern = "*.shared.test"
original = "*.shared.test"
[[area]]
id = "b"
name = "Area B"
[[area.endpoint]]
pattern = "x.shared.test"
original = "x.shared.test"
"#,
            "t",
        )
        .unwrap();
        let configured = [
            ("a".to_owned(), winsink_policy::Action::Block),
            ("b".to_owned(), winsink_policy::Action::Log),
        ]
        .into_iter()
        .collect();
        Index::new(
            &[catalog],
            &configured,
            DomainSuffixes::new(&["microsoft.com"]),
        )
    }

    fn line(decision: &str, areas: &str, patterns: &str, decided_by: &str) -> String {
        format!(
            r#"{{"ts":"2026-11-26T01:02:03Z","client":"10.0.0.1","qname":"x.shared.test","decision":"{decision}","areas":{areas},"patterns":{patterns},"rcode":"NOERROR"{decided_by}}}"#
        )
    }

    fn count(lines: &[String]) -> Tally {
        let index = index();
        let mut t = Tally::new(&index);
        for (i, l) in lines.iter().enumerate() {
            t.line(&index, &Filter::default(), l.as_bytes(), "t", i as u64 + 1);
        }
        t
    }

    #[test]
    fn the_deciding_area_gets_the_block_from_decided_by_else_from_the_config() {
        let both = r#"["Area A","Area B"]"#;
        let pats = r#"["*.shared.test","x.shared.test"]"#;
        // Older line: the configured block area decides.
        let t = count(&[line("block", both, pats, "")]);
        assert_eq!(
            (t.areas[0].figures.blocked, t.areas[1].figures.blocked),
            (1, 0)
        );
        assert_eq!(
            (t.areas[0].figures.queries, t.areas[1].figures.queries),
            (1, 1)
        );
        // decided_by says B (a group override, say): B gets it.
        let by_b = r#","decided_by":{"kind":"group","name":"g","inner":{"kind":"area","id":"b","name":"Area B","pattern":"x.shared.test","action":"block"}}"#;
        let t = count(&[line(
            "block",
            r#"[{"id":"a","name":"Area A"},{"id":"b","name":"Area B"}]"#,
            pats,
            by_b,
        )]);
        assert_eq!(
            (t.areas[0].figures.blocked, t.areas[1].figures.blocked),
            (0, 1)
        );
        assert_eq!(t.areas[1].endpoints["x.shared.test"].figures.blocked, 1);
        assert_eq!(t.areas[0].endpoints["*.shared.test"].figures.blocked, 0);
        // A rule decided: no area gets it.
        let by_rule =
            r#","decided_by":{"kind":"rule","pattern":"*.test","note":null,"action":"block"}"#;
        let t = count(&[line("block", both, pats, by_rule)]);
        assert_eq!(
            (t.areas[0].figures.blocked, t.areas[1].figures.blocked),
            (0, 0)
        );
        assert_eq!(t.decided_by_rules[BLOCK], 1);
    }

    #[test]
    fn merged_tallies_equal_one_tally_over_all_lines() {
        let both = r#"["Area A","Area B"]"#;
        let pats = r#"["*.shared.test","x.shared.test"]"#;
        let lines: Vec<String> = (0..10)
            .map(|i| match i % 3 {
                0 => line("block", both, pats, ""),
                1 => line(
                    "log",
                    r#"["Area B","Area C"]"#,
                    r#"["x.shared.test","c.test"]"#,
                    "",
                ),
                _ => line("pass", "[]", "[]", ""),
            })
            .chain(["not json".to_owned()])
            .collect();
        let index = index();
        let whole = count(&lines);
        let (l, r) = lines.split_at(4);
        let mut merged = count(l);
        merged.merge(&index, count(r));
        let view = |t: &Tally| {
            (
                t.lines,
                t.broken,
                t.queries,
                t.decisions,
                t.areas
                    .iter()
                    .map(|a| {
                        let f = &a.figures;
                        (
                            f.queries,
                            f.blocked,
                            f.would_block,
                            f.clients.len(),
                            a.endpoints.len(),
                        )
                    })
                    .collect::<Vec<_>>(),
                t.extra_areas.clone(),
                t.clients.len(),
            )
        };
        assert_eq!(view(&merged), view(&whole));
        // "Area C" is not in the catalog: an area of its own.
        assert_eq!(&*whole.extra_areas[0].name, "Area C");
        assert_eq!(&*whole.extra_areas[0].id, "area-c");
    }
}
