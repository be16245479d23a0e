//! Precedence: which of a name's matches decides its verdict, in one place (the crate
//! docs' "Actions and precedence" list is [`Rank`]'s order).

use std::net::IpAddr;

use crate::decision::{Action, Decision, Verdict, MAX_REPORTED_MATCHES};
use crate::policy::{Entry, Policy};

impl Policy {
    /// Decides what to do with a query for `qname` from `client`.
    ///
    /// One matcher walk over the name plus a scan of the group networks; no allocation.
    /// The precedence (see the crate docs): an `allow` rule or list wins (group rules
    /// first, then global ones); otherwise any `block` blocks; otherwise any `log` logs;
    /// otherwise a name in an `allow` area is allowed; otherwise it passes.
    pub fn decide(&self, client: IpAddr, qname: &str) -> Decision<'_> {
        self.decide_in(self.group_index(client), qname)
    }

    /// [`decide`](Self::decide) for a client of `group` (`None`: no group).
    pub(crate) fn decide_in(&self, group: Option<u32>, qname: &str) -> Decision<'_> {
        let set = group.map_or(0, |g| g as usize + 1);
        let actions = &self.area_actions[set];
        let mut ids = [0u32; MAX_REPORTED_MATCHES];
        let mut len = 0usize;
        let mut truncated = false;
        let mut best: Option<(Rank, u32)> = None;
        self.matcher.for_each_match(qname, |id| {
            let Some(entry) = self.entries.get(id) else {
                return;
            };
            let (action, in_group) = match entry {
                Entry::Endpoint(e) => (actions[self.endpoints[e as usize].area as usize], false),
                Entry::Rule(r) => {
                    let rule = &self.rules[r as usize];
                    match rule.group {
                        Some(g) if Some(g) != group => return,
                        g => (rule.action, g.is_some()),
                    }
                }
                Entry::List { list, .. } => (self.lists[list as usize].action, false),
            };
            let stored = &ids[..len];
            if stored.contains(&id) || self.repeats_list_entry(entry, stored) {
                return;
            }
            let rank = Rank::of(action, entry, in_group);
            if best.is_none_or(|(r, b)| rank > r || (rank == r && id < b)) {
                best = Some((rank, id));
            }
            if len < MAX_REPORTED_MATCHES {
                ids[len] = id;
                len += 1;
            } else {
                truncated = true;
            }
        });
        ids[..len].sort_unstable();
        let sinkhole = group
            .and_then(|g| self.groups[g as usize].sinkhole.as_ref())
            .unwrap_or(&self.live.sinkhole);
        Decision {
            verdict: best.map_or(Verdict::Pass, |(rank, _)| rank.verdict()),
            group: group.map(|g| self.groups[g as usize].name.as_str()),
            sinkhole,
            policy: self,
            set,
            ids,
            len: len as u8,
            truncated,
            decided_by: best.map(|(_, id)| id),
        }
    }

    /// A list that holds the same name twice reports it once.
    fn repeats_list_entry(&self, entry: Entry, stored: &[u32]) -> bool {
        let Entry::List { list, .. } = entry else {
            return false;
        };
        let text = self.list_text(entry);
        stored.iter().any(|&other| match self.entries.at(other) {
            e @ Entry::List { list: l, .. } => l == list && self.list_text(e) == text,
            _ => false,
        })
    }
}

/// How strongly a match pulls the verdict; the highest rank decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Rank {
    AllowArea = 1,
    Log = 2,
    Block = 3,
    AllowGlobal = 4,
    AllowGroup = 5,
}

impl Rank {
    fn of(action: Action, entry: Entry, in_group: bool) -> Self {
        match (action, entry) {
            (Action::Block, _) => Self::Block,
            (Action::Log, _) => Self::Log,
            (Action::Allow, Entry::Endpoint(_)) => Self::AllowArea,
            (Action::Allow, _) if in_group => Self::AllowGroup,
            (Action::Allow, _) => Self::AllowGlobal,
        }
    }

    fn verdict(self) -> Verdict {
        match self {
            Self::AllowArea | Self::AllowGlobal | Self::AllowGroup => Verdict::Allow,
            Self::Log => Verdict::Log,
            Self::Block => Verdict::Block,
        }
    }
}
