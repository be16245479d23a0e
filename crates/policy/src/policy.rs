//! The compiled policy and the per-query decision.

use crate::entries::Entries;
use std::net::IpAddr;
use std::path::PathBuf;

use ipnet::IpNet;
use winsink_matcher::Matcher;

use crate::change::{Change, Settings};
use crate::decision::{Action, AreaRef, Impact, ImpactScope, Match, MatchSource};
use crate::list::{BadLine, ListFormat};
use crate::settings::{CacheTtls, LogQueries, SinkholeSettings};
use crate::url_list::{Downloads, UrlList};

/// An immutable, compiled policy: every catalog endpoint, rule and list entry in one
/// matcher, plus the area actions of the global config and of each client group.
///
/// Build it with [`Policy::load`] (or [`Policy::from_config_str`]); ask it with
/// [`Policy::decide`]. It is `Send + Sync` and meant to be shared behind an `Arc` and
/// swapped whole on reload. It holds only what the server reads query by query; what it
/// binds once at start is the [`Startup`](crate::Startup) beside it.
pub struct Policy {
    pub(crate) live: LiveSettings,
    pub(crate) default_action: Action,
    pub(crate) catalogs: Vec<CatalogInfo>,
    pub(crate) areas: Vec<AreaInfo>,
    /// `area_actions[set][area]`: set 0 is the global config, set `g + 1` group `g`.
    pub(crate) area_actions: Vec<Vec<Action>>,
    /// Every `acknowledge_shared` entry.
    pub(crate) acknowledged: Vec<Acknowledged>,
    pub(crate) endpoints: Vec<EndpointInfo>,
    pub(crate) rules: Vec<RuleInfo>,
    pub(crate) lists: Vec<ListInfo>,
    pub(crate) groups: Vec<GroupInfo>,
    /// Every group network, longest prefix first, so the first hit is the most specific.
    pub(crate) prefixes: Vec<(IpNet, u32)>,
    /// Matcher id → what it stands for, and the text of every list entry.
    pub(crate) entries: Entries,
    pub(crate) matcher: Matcher,
    /// `[url_lists]`, checked.
    pub(crate) downloads: Downloads,
    /// The lists with a `url`, for the downloader.
    pub(crate) url_lists: Vec<UrlList>,
}

/// The settings a reload swaps, read by the server query by query.
#[derive(Debug, Clone)]
pub(crate) struct LiveSettings {
    /// `[server] allow_clients`.
    pub(crate) allow_clients: Vec<IpNet>,
    /// `[sinkhole]`.
    pub(crate) sinkhole: SinkholeSettings,
    /// `[cache]` `min_ttl`, `max_ttl` and `negative_max_ttl`.
    pub(crate) cache: CacheTtls,
    /// `[log] queries`.
    pub(crate) log_queries: LogQueries,
}

/// What a matcher id stands for. Kept small: there is one per list entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Entry {
    /// Index into `Policy::endpoints`.
    Endpoint(u32),
    /// Index into `Policy::rules`.
    Rule(u32),
    /// An entry of list `list`, whose text is `start..end` of the entries' text,
    /// written on line `line` of the file.
    List {
        list: u32,
        start: u32,
        end: u32,
        line: u32,
    },
}

#[derive(Debug, Clone)]
pub(crate) struct CatalogInfo {
    /// The catalog's title.
    pub(crate) title: String,
    /// As written in `catalogs` (a path or `builtin:NAME`).
    pub(crate) origin: String,
    pub(crate) areas: usize,
    pub(crate) endpoints: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct AreaInfo {
    pub(crate) id: String,
    pub(crate) name: String,
    /// The area's impact summary, for endpoints without a description of their own.
    pub(crate) impact: String,
    pub(crate) endpoints: usize,
}

/// A name an area's `acknowledge_shared` lists.
#[derive(Debug, Clone)]
pub(crate) struct Acknowledged {
    /// The area-action set whose `[areas]` table said it: 0 global, `g + 1` group `g`.
    pub(crate) set: usize,
    pub(crate) area: u32,
    /// Lower case, no trailing dot.
    pub(crate) name: String,
    /// `file:line` of the entry.
    pub(crate) at: String,
}

#[derive(Debug, Clone)]
pub(crate) struct EndpointInfo {
    pub(crate) catalog: u32,
    pub(crate) area: u32,
    pub(crate) pattern: String,
    pub(crate) impact: String,
}

#[derive(Debug, Clone)]
pub(crate) struct RuleInfo {
    pub(crate) pattern: String,
    pub(crate) action: Action,
    pub(crate) note: Option<String>,
    /// The group whose `[[groups.rules]]` holds it; `None` for `[[rules]]`.
    pub(crate) group: Option<u32>,
}

#[derive(Debug, Clone)]
pub(crate) struct ListInfo {
    pub(crate) label: String,
    /// The file, or the cached copy of the download.
    pub(crate) path: PathBuf,
    /// The URL of a list by URL.
    pub(crate) url: Option<String>,
    pub(crate) format: ListFormat,
    pub(crate) action: Action,
    /// Names added to the matcher.
    pub(crate) loaded: usize,
    /// Well-formed lines that name nothing to block (`127.0.0.1 localhost`).
    pub(crate) skipped: usize,
    /// Malformed lines, counted.
    pub(crate) bad: usize,
    /// The first malformed lines, with line numbers and reasons.
    pub(crate) bad_lines: Vec<BadLine>,
}

#[derive(Debug, Clone)]
pub(crate) struct GroupInfo {
    pub(crate) name: String,
    pub(crate) clients: Vec<IpNet>,
    pub(crate) sinkhole: Option<SinkholeSettings>,
    pub(crate) default_action: Option<Action>,
    /// Area overrides as written, in area order.
    pub(crate) areas: Vec<(u32, Action)>,
}

impl Policy {
    /// `[server] allow_clients`: the client networks that may query.
    pub fn allow_clients(&self) -> &[IpNet] {
        &self.live.allow_clients
    }

    /// The global `[sinkhole]` settings (a group may override them; see
    /// [`Decision::sinkhole`](crate::Decision::sinkhole)).
    pub fn sinkhole(&self) -> &SinkholeSettings {
        &self.live.sinkhole
    }

    /// The lists with a `url`: what to download, and where the copies are kept.
    pub fn url_lists(&self) -> &[UrlList] {
        &self.url_lists
    }

    /// `[url_lists]`: the cache folder, size cap and timeout of downloads.
    pub fn downloads(&self) -> &Downloads {
        &self.downloads
    }

    /// The `[cache]` TTL bounds.
    pub fn cache(&self) -> &CacheTtls {
        &self.live.cache
    }

    /// `[log] queries`: which queries produce a query-log line.
    pub fn log_queries(&self) -> LogQueries {
        self.live.log_queries
    }

    /// The settings that differ from `old`'s: each applies to the next query. (What
    /// the policy holds besides settings, areas, rules and lists, is compared by
    /// [`Summary::diff`](crate::Summary::diff).)
    pub fn setting_changes(&self, old: &Self) -> Vec<Change> {
        let LiveSettings {
            allow_clients,
            sinkhole:
                SinkholeSettings {
                    mode,
                    ttl,
                    ipv4,
                    ipv6,
                },
            cache,
            log_queries,
        } = &old.live;
        let new = &self.live;
        let mut out = Vec::new();
        Settings::new(&mut out, "[server]").compare(
            "allow_clients",
            allow_clients,
            &new.allow_clients,
        );
        Settings::new(&mut out, "[sinkhole]")
            .compare("mode", mode, &new.sinkhole.mode)
            .compare("ttl", ttl, &new.sinkhole.ttl)
            .compare("ipv4", ipv4, &new.sinkhole.ipv4)
            .compare("ipv6", ipv6, &new.sinkhole.ipv6);
        Settings::new(&mut out, "[cache]")
            .compare("min_ttl", &cache.min_ttl(), &new.cache.min_ttl())
            .compare("max_ttl", &cache.max_ttl(), &new.cache.max_ttl())
            .compare(
                "negative_max_ttl",
                &cache.negative_max_ttl(),
                &new.cache.negative_max_ttl(),
            );
        Settings::new(&mut out, "[log]").compare("queries", log_queries, &new.log_queries);
        out
    }

    /// The client group a client belongs to: the group with the longest prefix containing
    /// it. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as IPv4.
    pub fn group_of(&self, client: IpAddr) -> Option<&str> {
        self.group_index(client)
            .map(|g| self.groups[g as usize].name.as_str())
    }

    pub(crate) fn group_index(&self, client: IpAddr) -> Option<u32> {
        let client = client.to_canonical();
        self.prefixes
            .iter()
            .find(|(net, _)| net.contains(&client))
            .map(|&(_, g)| g)
    }

    pub(crate) fn list_text(&self, entry: Entry) -> &str {
        self.entries.text(entry)
    }

    /// Resolves a matcher id into a [`Match`] under area-action set `set`.
    pub(crate) fn resolve(&self, id: u32, set: usize) -> Match<'_> {
        match self.entries.at(id) {
            Entry::Endpoint(e) => {
                let ep = &self.endpoints[e as usize];
                let impact = if ep.impact.is_empty() {
                    Impact {
                        text: &self.areas[ep.area as usize].impact,
                        scope: ImpactScope::Area,
                    }
                } else {
                    Impact {
                        text: &ep.impact,
                        scope: ImpactScope::Endpoint,
                    }
                };
                Match {
                    source: MatchSource::Catalog(&self.catalogs[ep.catalog as usize].title),
                    area: Some(self.area_ref(ep.area)),
                    pattern: &ep.pattern,
                    action: self.area_actions[set][ep.area as usize],
                    impact: (!impact.text.is_empty()).then_some(impact),
                    line: None,
                }
            }
            Entry::Rule(r) => {
                let rule = &self.rules[r as usize];
                Match {
                    source: MatchSource::Rule(rule.note.as_deref()),
                    area: None,
                    pattern: &rule.pattern,
                    action: rule.action,
                    impact: None,
                    line: None,
                }
            }
            entry @ Entry::List { list, line, .. } => Match {
                source: MatchSource::List(&self.lists[list as usize].label),
                area: None,
                pattern: self.list_text(entry),
                action: self.lists[list as usize].action,
                impact: None,
                line: Some(line),
            },
        }
    }

    /// The client group whose settings gave matcher id `id` its action under area-action
    /// set `set`: the group of a group rule, or the client's group when its
    /// `[groups.areas]` or `default_action` set the area's action. `None` when the
    /// global config did.
    pub(crate) fn group_supplied(&self, id: u32, set: usize) -> Option<&str> {
        let group = &self.groups[set.checked_sub(1)?];
        let supplied = match self.entries.at(id) {
            Entry::Rule(r) => self.rules[r as usize].group.is_some(),
            Entry::Endpoint(e) => {
                let area = self.endpoints[e as usize].area;
                group.default_action.is_some()
                    || group.areas.binary_search_by_key(&area, |&(a, _)| a).is_ok()
            }
            Entry::List { .. } => false,
        };
        supplied.then_some(group.name.as_str())
    }

    pub(crate) fn area_of(&self, id: u32) -> Option<u32> {
        match self.entries.at(id) {
            Entry::Endpoint(e) => Some(self.endpoints[e as usize].area),
            _ => None,
        }
    }

    pub(crate) fn area_ref(&self, area: u32) -> AreaRef<'_> {
        let a = &self.areas[area as usize];
        AreaRef {
            id: &a.id,
            name: &a.name,
        }
    }
    /// Every catalog endpoint with its area (id, name) and the area's global action
    /// (client groups aside: see [`group_catalog_endpoints`](Self::group_catalog_endpoints)),
    /// in catalog order: what `winsink check` compares with the running daemon's to say
    /// what a reload starts or stops blocking.
    pub fn catalog_endpoints(&self) -> impl Iterator<Item = (&str, &str, &str, Action)> + '_ {
        self.endpoints.iter().map(|e| {
            let area = &self.areas[e.area as usize];
            let action = self.area_actions[0][e.area as usize];
            (
                area.id.as_str(),
                area.name.as_str(),
                e.pattern.as_str(),
                action,
            )
        })
    }

    /// For each client group (in config order): its name and every catalog endpoint with
    /// its area's id and the action the group gives the area (its `[groups.areas]`
    /// override, else its `default_action`, else the global action), in catalog order.
    pub fn group_catalog_endpoints(
        &self,
    ) -> impl Iterator<Item = (&str, impl Iterator<Item = (&str, &str, Action)> + '_)> + '_ {
        self.groups.iter().enumerate().map(move |(g, group)| {
            let actions = &self.area_actions[g + 1];
            let endpoints = self.endpoints.iter().map(move |e| {
                (
                    self.areas[e.area as usize].id.as_str(),
                    e.pattern.as_str(),
                    actions[e.area as usize],
                )
            });
            (group.name.as_str(), endpoints)
        })
    }

    /// The number of patterns in the matcher (catalog endpoints, rules and list entries).
    pub fn rule_count(&self) -> usize {
        self.entries.len()
    }
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("catalogs", &self.catalogs.len())
            .field("areas", &self.areas.len())
            .field("rules", &self.rules.len())
            .field("lists", &self.lists.len())
            .field("groups", &self.groups.len())
            .field("entries", &self.entries.len())
            .finish()
    }
}

#[allow(dead_code)]
fn assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Policy>();
}
