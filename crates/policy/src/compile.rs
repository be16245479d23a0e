//! Phase two: a parsed config file → the immutable [`Policy`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ipnet::IpNet;
use toml::Spanned;
use winsink_catalog::Catalog;
use winsink_matcher::{Matcher, MatcherBuilder, PatternError, PatternErrorKind, SizeEstimate};

use crate::config::{self, line_col, ConfigFile, GroupConfig, ListConfig, RuleConfig};
use crate::decision::Action;
use crate::entries::Entries;
use crate::error::{closest, PolicyError};
use crate::list::{self, Item};
use crate::policy::{
    Acknowledged, AreaInfo, CatalogInfo, EndpointInfo, Entry, GroupInfo, ListInfo, LiveSettings,
    Policy, RuleInfo,
};
use crate::settings::{
    non_zero, CacheSettings, CacheTtls, HttpSettings, LogSettings, ServerSettings, SinkholeMode,
    SinkholeSettings, Timeout, TlsSettings, UdpPayload,
};
use crate::startup::{LogSink, RateLimit, Startup, TlsFiles};
use crate::upstream::{Upstream, UpstreamEntry};
use crate::url_list::{self, Downloads, UrlList, UrlListSettings, DEFAULT_REFRESH};

/// A compiled policy with what loading it had to say.
#[derive(Debug)]
pub struct Loaded {
    /// The policy.
    pub policy: Policy,
    /// The settings the server binds once at start.
    pub startup: Startup,
    /// Things worth an operator's attention that do not stop the load: malformed list
    /// lines, areas whose actions conflict on a shared name.
    pub warnings: Vec<String>,
    /// Every file read: the config file, catalog files, list files (for a reload watcher).
    pub files: Vec<PathBuf>,
}

/// The prefix of a catalog entry that names a catalog compiled into the binary.
pub const BUILTIN_PREFIX: &str = "builtin:";

/// The catalogs loaded when the config file has no `catalogs` key.
pub const DEFAULT_CATALOGS: &[&str] = &["builtin:windows11-enterprise"];

/// The names of the built-in catalogs (`builtin:NAME`).
pub const BUILTIN_CATALOGS: &[&str] = &["windows11-enterprise"];

/// The built-in catalog `NAME` (of `builtin:NAME`), if there is one.
pub fn builtin_catalog(name: &str) -> Option<&'static Catalog> {
    match name {
        "windows11-enterprise" => Some(winsink_catalog::windows11_enterprise()),
        _ => None,
    }
}

impl Policy {
    /// Reads and compiles a config file and every file it names.
    ///
    /// This is the one loading path of `winsink run`, `check` and `explain`. Relative
    /// paths in the file (catalogs, lists, the log file) are relative to its folder.
    pub fn load(config_path: &Path) -> Result<Loaded, PolicyError> {
        let text = std::fs::read_to_string(config_path).map_err(|source| PolicyError::Io {
            path: config_path.to_path_buf(),
            source,
        })?;
        if is_blank(&text) {
            return Err(PolicyError::EmptyConfig {
                path: config_path.to_path_buf(),
            });
        }
        let base = match config_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let mut loaded = Self::from_config_str(&text, base, &config_path.display().to_string())?;
        loaded.files.insert(0, config_path.to_path_buf());
        Ok(loaded)
    }

    /// Compiles config text; `base_dir` resolves relative paths, `origin` names the text
    /// in errors and warnings. `files` of the result lists only the files named by the
    /// text (catalogs, lists), not the text's own file.
    pub fn from_config_str(
        text: &str,
        base_dir: &Path,
        origin: &str,
    ) -> Result<Loaded, PolicyError> {
        let cfg = config::parse(text, origin)?;
        Compiler {
            text,
            base_dir,
            origin,
            errors: Vec::new(),
            warnings: Vec::new(),
            files: Vec::new(),
            url_lists: Vec::new(),
        }
        .compile(cfg)
    }
}

/// Whether a TOML text holds nothing but comments and whitespace (a BOM aside).
fn is_blank(text: &str) -> bool {
    text.trim_start_matches('\u{feff}')
        .lines()
        .map(str::trim)
        .all(|l| l.is_empty() || l.starts_with('#'))
}

struct Compiler<'a> {
    text: &'a str,
    base_dir: &'a Path,
    origin: &'a str,
    errors: Vec<PolicyError>,
    warnings: Vec<String>,
    files: Vec<PathBuf>,
    /// The `[[lists]]` entries with a `url`, in order.
    url_lists: Vec<UrlList>,
}

/// The loaded catalogs: what `catalogs` names, with every area once.
#[derive(Default)]
struct Catalogs {
    catalogs: Vec<CatalogInfo>,
    areas: Vec<AreaInfo>,
    /// Area id → index into `areas`.
    index: HashMap<String, u32>,
    endpoints: Vec<EndpointInfo>,
}

/// The area actions: `sets[0]` is the global set, `sets[g + 1]` group `g`'s.
struct AreaActions {
    default_action: Action,
    sets: Vec<Vec<Action>>,
    acknowledged: Vec<Acknowledged>,
    groups: Vec<GroupInfo>,
    /// Every group network with its group, longest prefix first.
    prefixes: Vec<(IpNet, u32)>,
}

/// Everything that goes into the matcher, collected in id order. Patterns are checked and
/// counted as they are read (the first pass); the matcher is built from the entries once
/// all are known ([`matcher`]), in a table of its final size.
struct Parts {
    estimate: SizeEstimate,
    entries: Entries,
}

impl Compiler<'_> {
    fn line(&self, span: std::ops::Range<usize>) -> usize {
        line_col(self.text, span.start).0
    }

    /// `origin:line`, or `origin` for what no line wrote (a default).
    fn at(&self, line: Option<usize>) -> String {
        match line {
            Some(l) => format!("{}:{l}", self.origin),
            None => self.origin.to_owned(),
        }
    }

    fn resolve(&self, path: &str) -> PathBuf {
        self.base_dir.join(path)
    }

    /// Phase two, section by section: catalogs, then area actions and groups, rules,
    /// lists and settings. Errors are collected across sections (all are reported at
    /// once); a catalog that does not load stops at once, since area ids depend on it.
    fn compile(mut self, cfg: ConfigFile) -> Result<Loaded, PolicyError> {
        let mut parts = Parts {
            estimate: SizeEstimate::new(),
            entries: Entries::default(),
        };
        let catalogs = self.catalogs(cfg.catalogs.as_deref(), &mut parts)?;
        let actions = self.area_actions(&cfg, &catalogs);
        let rules = self.rules(&cfg, &mut parts);
        let downloads = self.downloads(&cfg.url_lists);
        let lists = self.lists(&cfg.lists, &downloads, &mut parts);
        parts.entries.shrink_to_fit();

        self.check_sinkhole(&cfg.sinkhole, "[sinkhole]");
        self.check_groups_are_served(&cfg);
        let http = self.http(cfg.http);
        let tls = self.tls(&cfg.server, cfg.tls);
        let settings = self
            .settings(cfg.server, cfg.sinkhole, cfg.cache, cfg.log, http)
            .zip(tls)
            .map(|((startup, live), tls)| (Startup { tls, ..startup }, live));

        let (startup, live) = match (self.errors.len(), settings) {
            (0, Some(settings)) => settings,
            (1, _) => return Err(self.errors.remove(0)),
            _ => return Err(PolicyError::Several(self.errors)),
        };

        let matcher = matcher(&parts, &catalogs.endpoints, &rules, &lists);
        let policy = Policy {
            live,
            default_action: actions.default_action,
            catalogs: catalogs.catalogs,
            areas: catalogs.areas,
            area_actions: actions.sets,
            acknowledged: actions.acknowledged,
            endpoints: catalogs.endpoints,
            rules,
            lists,
            groups: actions.groups,
            prefixes: actions.prefixes,
            entries: parts.entries,
            matcher,
            downloads,
            url_lists: self.url_lists,
        };
        let mut warnings = self.warnings;
        warnings.extend(crate::shared::warnings(&policy));
        Ok(Loaded {
            policy,
            startup,
            warnings,
            files: self.files,
        })
    }

    /// `catalogs` (or the default): every area id once, across catalogs, so that one
    /// toggle covers an area that two catalogs (two Windows releases) both describe.
    fn catalogs(
        &mut self,
        names: Option<&[Spanned<String>]>,
        parts: &mut Parts,
    ) -> Result<Catalogs, PolicyError> {
        let mut out = Catalogs::default();
        // Each name with the line that wrote it (none for the defaults).
        let catalog_names: Vec<(String, Option<usize>)> = match names {
            Some(list) => list
                .iter()
                .map(|s| (s.get_ref().clone(), Some(self.line(s.span()))))
                .collect(),
            None => DEFAULT_CATALOGS
                .iter()
                .map(|s| ((*s).to_owned(), None))
                .collect(),
        };
        for (i, (name, at)) in catalog_names.iter().enumerate() {
            if catalog_names[..i].iter().any(|(n, _)| n == name) {
                // Loading it twice would report every endpoint twice.
                self.warnings.push(format!(
                    "{}: catalog {name} is listed twice; loaded once",
                    self.at(*at)
                ));
                continue;
            }
            let catalog = self.catalog(name, *at)?;
            let c = u32::try_from(out.catalogs.len()).unwrap_or(u32::MAX);
            let mut count = 0;
            for area in &catalog.areas {
                let a = *out.index.entry(area.id.clone()).or_insert_with(|| {
                    out.areas.push(AreaInfo {
                        id: area.id.clone(),
                        name: area.name.clone(),
                        impact: area.impact.clone(),
                        endpoints: 0,
                    });
                    u32::try_from(out.areas.len() - 1).unwrap_or(u32::MAX)
                });
                for ep in &area.endpoints {
                    if let Err(error) = parts.estimate.add(&ep.pattern) {
                        self.errors.push(PolicyError::CatalogPattern {
                            catalog: name.clone(),
                            area: area.id.clone(),
                            error,
                        });
                        continue;
                    }
                    parts.entries.push(Entry::Endpoint(
                        u32::try_from(out.endpoints.len()).unwrap_or(u32::MAX),
                    ));
                    out.endpoints.push(EndpointInfo {
                        catalog: c,
                        area: a,
                        pattern: ep.pattern.clone(),
                        impact: ep.description.clone(),
                    });
                    out.areas[a as usize].endpoints += 1;
                    count += 1;
                }
            }
            out.catalogs.push(CatalogInfo {
                title: catalog.source.title.clone(),
                origin: name.clone(),
                areas: catalog.areas.len(),
                endpoints: count,
            });
        }
        Ok(out)
    }

    /// `default_action`, `[areas]` and `[[groups]]`: the global set of area actions,
    /// then one per group, and the groups' networks.
    fn area_actions(&mut self, cfg: &ConfigFile, catalogs: &Catalogs) -> AreaActions {
        let default_action = cfg.default_action.unwrap_or(Action::Log);
        let mut global = vec![default_action; catalogs.areas.len()];
        let mut out = AreaActions {
            default_action,
            sets: Vec::new(),
            acknowledged: Vec::new(),
            groups: Vec::new(),
            prefixes: Vec::new(),
        };
        for (id, setting) in &cfg.areas {
            if let Some(a) = self.area(&catalogs.index, &catalogs.areas, id, None) {
                global[a as usize] = setting.action;
                self.acknowledge(&mut out.acknowledged, 0, a, setting);
            }
        }
        out.sets.push(global);
        for g in &cfg.groups {
            self.group(g, catalogs, &mut out);
        }
        // Longest prefix first: the first network containing a client is its group.
        out.prefixes
            .sort_by_key(|(net, _)| std::cmp::Reverse(net.prefix_len()));
        out
    }

    /// One `[[groups]]` entry: its networks, its set of area actions (from the global
    /// set, or its `default_action`), its overrides.
    fn group(&mut self, g: &GroupConfig, catalogs: &Catalogs, out: &mut AreaActions) {
        let name = g.name.get_ref().clone();
        let gi = u32::try_from(out.groups.len()).unwrap_or(u32::MAX);
        if out.groups.iter().any(|o| o.name == name) {
            self.errors.push(PolicyError::DuplicateGroup {
                origin: self.origin.to_owned(),
                line: self.line(g.name.span()),
                name: name.clone(),
            });
        }
        let clients = self.group_clients(g, gi, out);
        if g.clients.is_empty() {
            self.warnings.push(format!(
                "{}:{}: group `{name}` has no clients, so it applies to nobody",
                self.origin,
                self.line(g.name.span())
            ));
        }
        if let Some(s) = &g.sinkhole {
            self.check_sinkhole(s, &format!("group `{name}`: sinkhole"));
        }
        let mut actions = match g.default_action {
            Some(a) => vec![a; catalogs.areas.len()],
            None => out.sets[0].clone(),
        };
        let mut overrides = Vec::new();
        for (id, setting) in &g.areas {
            if let Some(a) = self.area(&catalogs.index, &catalogs.areas, id, Some(&name)) {
                actions[a as usize] = setting.action;
                overrides.push((a, setting.action));
                self.acknowledge(&mut out.acknowledged, gi as usize + 1, a, setting);
            }
        }
        overrides.sort_unstable_by_key(|&(a, _)| a);
        out.sets.push(actions);
        out.groups.push(GroupInfo {
            name,
            clients,
            sinkhole: g.sinkhole.clone(),
            default_action: g.default_action,
            areas: overrides,
        });
    }

    /// The networks of group `gi`, each added to `out.prefixes`; a network another group
    /// claims too is an error.
    fn group_clients(&mut self, g: &GroupConfig, gi: u32, out: &mut AreaActions) -> Vec<IpNet> {
        let name = g.name.get_ref();
        let mut clients = Vec::new();
        for c in &g.clients {
            let line = self.line(c.span());
            match parse_net(c.get_ref()) {
                Ok(net) => {
                    if let Some(&(_, other)) = out.prefixes.iter().find(|(n, _)| *n == net) {
                        if other != gi {
                            self.errors.push(PolicyError::AmbiguousGroups {
                                origin: self.origin.to_owned(),
                                line,
                                first: out.groups[other as usize].name.clone(),
                                second: name.clone(),
                                network: net.to_string(),
                            });
                        }
                        continue;
                    }
                    out.prefixes.push((net, gi));
                    clients.push(net);
                }
                Err(reason) => self.errors.push(PolicyError::Cidr {
                    origin: self.origin.to_owned(),
                    line,
                    group: name.clone(),
                    cidr: c.get_ref().clone(),
                    reason,
                }),
            }
        }
        clients
    }

    /// `[[rules]]` and `[[groups.rules]]`: group rules first, then global ones (the
    /// order explain reports them in).
    fn rules(&mut self, cfg: &ConfigFile, parts: &mut Parts) -> Vec<RuleInfo> {
        let mut rules = Vec::new();
        for (gi, g) in cfg.groups.iter().enumerate() {
            for r in &g.rules {
                self.rule(
                    parts,
                    &mut rules,
                    r,
                    Some(u32::try_from(gi).unwrap_or(u32::MAX)),
                );
            }
        }
        for r in &cfg.rules {
            self.rule(parts, &mut rules, r, None);
        }
        rules
    }

    /// `[[lists]]`: each file read and its entries added to the matcher.
    fn lists(
        &mut self,
        lists: &[ListConfig],
        downloads: &Downloads,
        parts: &mut Parts,
    ) -> Vec<ListInfo> {
        let mut out = Vec::new();
        for (n, l) in lists.iter().enumerate() {
            let li = u32::try_from(out.len()).unwrap_or(u32::MAX);
            let Some(source) = self.list_source(l, n, downloads) else {
                continue;
            };
            if let Some(list) = self.list(l, &source, li, parts) {
                out.push(list);
            }
        }
        out
    }

    /// `[url_lists]`, checked; a bad value is an error naming its line (and the
    /// defaults stand in, so that the lists still load and report their own errors).
    fn downloads(&mut self, s: &UrlListSettings) -> Downloads {
        let max_bytes = self
            .checked("[url_lists]", "max_size_mib", &s.max_size_mib, |mib| {
                if mib == 0 {
                    Err("0 would refuse every download".to_owned())
                } else {
                    mib.checked_mul(1 << 20)
                        .ok_or_else(|| format!("{mib} MiB is more than this machine can hold"))
                }
            })
            .unwrap_or(64 << 20);
        let timeout = self
            .checked_text("[url_lists]", "timeout", &s.timeout, |t| {
                url_list::parse_duration(t).and_then(|d| {
                    if d.is_zero() {
                        Err("0s would abandon every download".to_owned())
                    } else {
                        Ok(d)
                    }
                })
            })
            .unwrap_or(Duration::from_secs(120));
        let cache_dir = match &s.cache_dir {
            Some(d) if d.is_relative() => self.resolve(&d.to_string_lossy()),
            Some(d) => d.clone(),
            None => url_list::default_cache_dir(self.base_dir),
        };
        Downloads {
            cache_dir,
            max_bytes,
            timeout,
        }
    }

    /// Where list `l` is read from: its file, or the cached copy of its URL (recorded in
    /// `url_lists`). `None` after an error naming the line: neither or both of `path`
    /// and `url`, a bad URL or refresh.
    fn list_source(
        &mut self,
        l: &ListConfig,
        n: usize,
        downloads: &Downloads,
    ) -> Option<ListSource> {
        let invalid =
            |this: &Self, span: std::ops::Range<usize>, message: String| PolicyError::Invalid {
                origin: format!("{}:{}", this.origin, this.line(span)),
                message,
            };
        match (&l.path, &l.url) {
            (Some(path), None) => {
                if let Some(r) = &l.refresh {
                    let e = invalid(
                        self,
                        r.span(),
                        "[[lists]] `refresh` applies to lists with a `url`, not a `path` (a \
                         file list is reloaded when the file changes)"
                            .to_owned(),
                    );
                    self.errors.push(e);
                    return None;
                }
                Some(ListSource::File {
                    path: self.resolve(path.get_ref()),
                    written: path.clone(),
                })
            }
            (Some(path), Some(_)) => {
                let e = invalid(
                    self,
                    path.span(),
                    "[[lists]] has both `path` and `url`: a list is a file or a download, \
                     give one of them"
                        .to_owned(),
                );
                self.errors.push(e);
                None
            }
            (None, Some(url)) => self.url_source(l, url, downloads),
            (None, None) => {
                let e = PolicyError::Invalid {
                    origin: self.at(nth_header_line(self.text, "[[lists]]", n)),
                    message: "[[lists]] has neither `path` nor `url`: give the list's file or \
                              its URL"
                        .to_owned(),
                };
                self.errors.push(e);
                None
            }
        }
    }

    /// A `url` list: the URL and refresh checked, its cache file named.
    fn url_source(
        &mut self,
        l: &ListConfig,
        url: &Spanned<String>,
        downloads: &Downloads,
    ) -> Option<ListSource> {
        let parsed = match url_list::check_url(url.get_ref()) {
            Ok(u) => u,
            Err(why) => {
                self.errors.push(PolicyError::Invalid {
                    origin: format!("{}:{}", self.origin, self.line(url.span())),
                    message: format!("[[lists]] `url` = {why}"),
                });
                return None;
            }
        };
        let refresh = match &l.refresh {
            None => DEFAULT_REFRESH,
            Some(r) => self.checked_text("[[lists]]", "refresh", r, |t| {
                url_list::parse_duration(t).and_then(|d| {
                    if d < Duration::from_secs(1) {
                        Err(format!("\"{t}\" is shorter than the least refresh, 1s"))
                    } else {
                        Ok(d)
                    }
                })
            })?,
        };
        let cache_file = downloads.cache_dir.join(url_list::cache_name(&parsed));
        let label = l
            .label
            .clone()
            .unwrap_or_else(|| url_list::default_label(&parsed));
        self.url_lists.push(UrlList {
            label,
            url: url.get_ref().clone(),
            refresh,
            cache_file: cache_file.clone(),
            format: l.format,
            allow_empty: l.allow_empty,
        });
        Some(ListSource::Url {
            cache_file,
            written: url.clone(),
        })
    }

    /// A list's label: as written, else a URL list's (named with its cache file), else
    /// the file's name.
    fn list_label(&self, l: &ListConfig, is_url: bool, path: &Path, written: &str) -> String {
        match (&l.label, is_url) {
            (Some(label), _) => label.clone(),
            (None, true) => self
                .url_lists
                .last()
                .map_or_else(|| written.to_owned(), |u| u.label.clone()),
            (None, false) => path
                .file_name()
                .map_or_else(|| written.to_owned(), |n| n.to_string_lossy().into_owned()),
        }
    }

    /// One list, as list `li`: its file or its URL's cached copy. `None` (after an
    /// error) if a file cannot be read; a URL list not downloaded yet loads empty.
    fn list(
        &mut self,
        l: &ListConfig,
        source: &ListSource,
        li: u32,
        parts: &mut Parts,
    ) -> Option<ListInfo> {
        let (path, written) = match source {
            ListSource::File { path, written } => (path.clone(), written),
            ListSource::Url {
                cache_file,
                written,
            } => (cache_file.clone(), written),
        };
        let url = matches!(source, ListSource::Url { .. }).then(|| written.get_ref().clone());
        let label = self.list_label(l, url.is_some(), &path, written.get_ref());
        let list_error = |this: &Self, label, path, source| PolicyError::List {
            origin: format!("{}:{}", this.origin, this.line(written.span())),
            label,
            path,
            source,
        };
        let file = match std::fs::File::open(&path) {
            Ok(file) => file,
            Err(source) if url.is_some() && source.kind() == std::io::ErrorKind::NotFound => {
                self.warnings.push(format!(
                    "{}:{}: list `{label}` ({}) has not been downloaded yet (no copy in {}): \
                     it is empty until its first download",
                    self.origin,
                    self.line(written.span()),
                    written.get_ref(),
                    path.parent().unwrap_or(&path).display()
                ));
                return Some(ListInfo {
                    label,
                    path,
                    url,
                    format: l.format,
                    action: l.action,
                    loaded: 0,
                    skipped: 0,
                    bad: 0,
                    bad_lines: Vec::new(),
                });
            }
            Err(source) => {
                self.errors.push(list_error(self, label, path, source));
                return None;
            }
        };
        let stats = read_entries(file, l.format, li, parts);
        let stats = match stats {
            Ok(stats) => stats,
            Err(source) => {
                self.errors.push(list_error(self, label, path, source));
                return None;
            }
        };
        self.files.push(path.clone());
        // A list that lost every entry, or turned to garbage, is a failed download
        // far more often than intent: refused (a reload keeps the running policy,
        // with this list's previous contents), unless the list says it may be so.
        if !l.allow_empty && list::is_suspect(stats.loaded, stats.bad) {
            self.errors.push(PolicyError::SuspectList {
                origin: format!("{}:{}", self.origin, self.line(written.span())),
                label: label.clone(),
                path: path.clone(),
                valid: stats.loaded,
                malformed: stats.bad,
            });
        }
        if stats.bad > 0 {
            self.warnings.push(malformed_lines(&label, &path, &stats));
        }
        Some(ListInfo {
            label,
            path,
            url,
            format: l.format,
            action: l.action,
            loaded: stats.loaded,
            skipped: stats.skipped,
            bad: stats.bad,
            bad_lines: stats.bad_lines,
        })
    }

    fn catalog(
        &mut self,
        name: &str,
        line: Option<usize>,
    ) -> Result<std::borrow::Cow<'static, Catalog>, PolicyError> {
        if let Some(b) = name.strip_prefix(BUILTIN_PREFIX) {
            return builtin_catalog(b)
                .map(std::borrow::Cow::Borrowed)
                .ok_or_else(|| PolicyError::UnknownBuiltin {
                    origin: self.at(line),
                    name: b.to_owned(),
                    suggestion: closest(b, BUILTIN_CATALOGS.iter().copied()),
                });
        }
        let path = self.resolve(name);
        let catalog = Catalog::from_path(&path).map_err(|source| PolicyError::Catalog {
            origin: self.at(line),
            catalog: name.to_owned(),
            source: Box::new(source),
        })?;
        self.files.push(path);
        Ok(std::borrow::Cow::Owned(catalog))
    }

    fn area(
        &mut self,
        index: &HashMap<String, u32>,
        areas: &[AreaInfo],
        id: &Spanned<String>,
        group: Option<&str>,
    ) -> Option<u32> {
        if let Some(&a) = index.get(id.get_ref()) {
            return Some(a);
        }
        self.errors.push(PolicyError::UnknownArea {
            origin: self.origin.to_owned(),
            line: self.line(id.span()),
            id: id.get_ref().clone(),
            group: group.map(str::to_owned),
            suggestion: closest(id.get_ref(), areas.iter().map(|a| a.id.as_str())),
        });
        None
    }

    /// Records an area's `acknowledge_shared` names for area-action set `set`.
    fn acknowledge(
        &self,
        out: &mut Vec<Acknowledged>,
        set: usize,
        area: u32,
        setting: &config::AreaSetting,
    ) {
        for name in &setting.acknowledge_shared {
            out.push(Acknowledged {
                set,
                area,
                name: name.get_ref().trim_end_matches('.').to_ascii_lowercase(),
                at: format!("{}:{}", self.origin, self.line(name.span())),
            });
        }
    }

    fn rule(
        &mut self,
        parts: &mut Parts,
        rules: &mut Vec<RuleInfo>,
        r: &RuleConfig,
        group: Option<u32>,
    ) {
        if let Err(error) = parts.estimate.add(r.pattern.get_ref()) {
            self.errors.push(PolicyError::Pattern {
                origin: self.origin.to_owned(),
                line: self.line(r.pattern.span()),
                error,
            });
            return;
        }
        parts
            .entries
            .push(Entry::Rule(u32::try_from(rules.len()).unwrap_or(u32::MAX)));
        rules.push(RuleInfo {
            pattern: r.pattern.get_ref().clone(),
            action: r.action,
            note: r.note.clone(),
            group,
        });
    }

    fn check_sinkhole(&mut self, s: &SinkholeSettings, what: &str) {
        if s.mode == SinkholeMode::Custom && s.ipv4.is_none() && s.ipv6.is_none() {
            self.errors.push(PolicyError::Invalid {
                origin: self.origin.to_owned(),
                message: format!("{what}: mode \"custom\" needs `ipv4`, `ipv6` or both"),
            });
        }
        if s.mode != SinkholeMode::Custom && (s.ipv4.is_some() || s.ipv6.is_some()) {
            self.warnings.push(format!(
                "{}: {what}: `ipv4` and `ipv6` are used only with mode = \"custom\"; \
                 they are ignored",
                self.origin
            ));
        }
    }

    /// `[server]`, `[sinkhole]`, `[cache]` and `[log]`, checked, split into what the
    /// server binds at start and what the policy carries. A value the server could only
    /// honour by changing it is an error naming its line, so that nothing the file says
    /// is silently replaced; every such error is collected (`None` if there was one).
    /// Long because it is a list: one check per key, each run before any `?` so that one
    /// load reports every bad value.
    #[allow(clippy::too_many_lines)]
    fn settings(
        &mut self,
        server: ServerSettings,
        sinkhole: SinkholeSettings,
        cache: CacheSettings,
        log: LogSettings,
        http: Option<HttpSettings>,
    ) -> Option<(Startup, LiveSettings)> {
        let upstreams = self.upstreams(&server.upstreams);
        let bootstrap = self.bootstrap(&server.bootstrap);
        let upstream_timeout = self.checked(
            "[server]",
            "upstream_timeout_ms",
            &server.upstream_timeout_ms,
            |ms| Timeout::new(Duration::from_millis(ms), "fail every forwarded query"),
        );
        let udp_payload = self.checked(
            "[server]",
            "udp_payload",
            &server.udp_payload,
            UdpPayload::new,
        );
        let tcp_idle_timeout = self.checked(
            "[server]",
            "tcp_idle_timeout_secs",
            &server.tcp_idle_timeout_secs,
            |secs| {
                Timeout::new(
                    Duration::from_secs(secs),
                    "close every TCP connection before its first query",
                )
            },
        );
        let tcp_max_connections = self.checked(
            "[server]",
            "tcp_max_connections",
            &server.tcp_max_connections,
            |n| non_zero(n, "refuse every TCP connection"),
        );
        let tcp_max_connections_per_client = self.checked(
            "[server]",
            "tcp_max_connections_per_client",
            &server.tcp_max_connections_per_client,
            |n| non_zero(n, "refuse every TCP connection"),
        );
        let ratelimit_ipv6_prefix = self.checked(
            "[server]",
            "ratelimit_ipv6_prefix",
            &server.ratelimit_ipv6_prefix,
            |n| {
                if n <= 128 {
                    Ok(n)
                } else {
                    Err(format!("{n} is not a prefix length (0 to 128)"))
                }
            },
        );
        let ttls = self.checked("[cache]", "min_ttl", &cache.min_ttl, |min| {
            CacheTtls::new(min, cache.max_ttl, cache.negative_max_ttl)
        });
        let queue = self.checked("[log]", "queue", &log.queue, |n| {
            non_zero(n, "drop every query line")
        });
        let file = log.file.map(|f| {
            if f.is_relative() {
                self.resolve(&f.to_string_lossy())
            } else {
                f
            }
        });
        let startup = Startup {
            listen: server.listen,
            listen_tls: server.listen_tls,
            listen_https: server.listen_https,
            tls: None,
            udp_sockets: server.udp_sockets,
            upstreams: upstreams?,
            bootstrap: bootstrap?,
            upstream_timeout: upstream_timeout?,
            udp_payload: udp_payload?,
            tcp_idle_timeout: tcp_idle_timeout?,
            tcp_max_connections: tcp_max_connections?,
            tcp_max_connections_per_client: tcp_max_connections_per_client?,
            ratelimit: RateLimit {
                qps: server.ratelimit_qps,
                ipv6_prefix: ratelimit_ipv6_prefix?,
                action: server.ratelimit_action,
            },
            cache_enabled: cache.enabled,
            cache_size: cache.size,
            log: LogSink {
                format: log.format,
                file,
                queue: queue?,
            },
            http: http?,
        };
        let live = LiveSettings {
            allow_clients: server.allow_clients,
            sinkhole,
            cache: ttls?,
            log_queries: log.queries,
        };
        Some((startup, live))
    }

    /// `[http]`, checked, with `token_file` resolved against the config file's folder:
    /// a listen address beyond loopback needs a token file (else anyone who reaches it
    /// reads the query history), and the ring keeps at least one query.
    fn http(&mut self, mut http: HttpSettings) -> Option<HttpSettings> {
        let mut ok = true;
        if let Some(addr) = http.unprotected_address(&http.listen) {
            ok = false;
            self.errors.push(PolicyError::Invalid {
                origin: self.at(key_line(self.text, "[http]", "listen")),
                message: format!(
                    "[http] `listen` = {addr} is not a loopback address, so it needs [http] \
                     `token_file` (a bearer token), or anyone who reaches it reads the query \
                     history"
                ),
            });
        }
        if http.recent_queries == 0 {
            ok = false;
            self.errors.push(PolicyError::Invalid {
                origin: self.at(key_line(self.text, "[http]", "recent_queries")),
                message: "[http] `recent_queries` = 0 would keep no query for /api/v1/queries"
                    .to_owned(),
            });
        }
        if let Some(f) = &http.token_file {
            if f.is_relative() {
                http.token_file = Some(self.resolve(&f.to_string_lossy()));
            }
        }
        ok.then_some(http)
    }

    /// `[tls]`, checked against the encrypted listeners that need it: `listen_tls` or
    /// `listen_https` without both files is an error naming the listener's line, one
    /// file without the other an error naming its line, and files that no listener uses
    /// a warning. The files are only named here; the server reads them (`winsink check`
    /// too), since a certificate is the server's business.
    fn tls(&mut self, server: &ServerSettings, tls: TlsSettings) -> Option<Option<TlsFiles>> {
        let listener = [
            ("listen_tls", server.listen_tls.is_empty()),
            ("listen_https", server.listen_https.is_empty()),
        ]
        .into_iter()
        .find_map(|(key, empty)| (!empty).then_some(key));
        let files = match (tls.cert_file, tls.key_file) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            (cert, key) => {
                let (given, missing, span) = match (cert, key) {
                    (Some(c), _) => ("cert_file", "key_file", c.span()),
                    (None, k) => ("key_file", "cert_file", k.map_or(0..0, |k| k.span())),
                };
                self.errors.push(PolicyError::Invalid {
                    origin: self.at(Some(self.line(span))),
                    message: format!(
                        "[tls] `{given}` needs `{missing}` too (the certificate and its \
                         private key, PEM)"
                    ),
                });
                return None;
            }
        };
        let Some((cert, key)) = files else {
            if let Some(listener) = listener {
                self.errors.push(PolicyError::Invalid {
                    origin: self.at(key_line(self.text, "[server]", listener)),
                    message: format!(
                        "[server] `{listener}` needs [tls] `cert_file` and `key_file` (the \
                         certificate DoT and DoH clients verify, and its private key, PEM)"
                    ),
                });
                return None;
            }
            return Some(None);
        };
        if listener.is_none() {
            self.warnings.push(format!(
                "{}: [tls] is set but neither [server] `listen_tls` nor `listen_https` \
                 serves it; the certificate is not used",
                self.at(Some(self.line(cert.span())))
            ));
        }
        let resolve = |p: Spanned<PathBuf>| {
            let p = p.into_inner();
            if p.is_relative() {
                self.resolve(&p.to_string_lossy())
            } else {
                p
            }
        };
        Some(Some(TlsFiles {
            cert_file: resolve(cert),
            key_file: resolve(key),
        }))
    }

    /// Each entry of `[server] upstreams`; every bad one is an error naming its line.
    /// A `ca_file` is resolved against the config file's folder and must hold a PEM
    /// certificate.
    fn upstreams(&mut self, entries: &[Spanned<UpstreamEntry>]) -> Option<Vec<Upstream>> {
        let mut upstreams = Vec::with_capacity(entries.len());
        let mut ok = true;
        for entry in entries {
            let origin = self.at(Some(self.line(entry.span())));
            let mut u = match entry.get_ref().upstream() {
                Ok(u) => u,
                Err(e) => {
                    ok = false;
                    self.errors.push(PolicyError::Invalid {
                        origin,
                        message: format!("[server] upstreams: {e}"),
                    });
                    continue;
                }
            };
            if let Some(f) = u.verify.ca_file.take() {
                let path = self.resolve(&f.to_string_lossy());
                if let Err(why) = pem_certificates(&path) {
                    ok = false;
                    self.errors.push(PolicyError::Invalid {
                        origin,
                        message: format!(
                            "[server] upstreams: {}: ca_file {}: {why}",
                            entry.get_ref().url(),
                            path.display()
                        ),
                    });
                    continue;
                }
                u.verify.ca_file = Some(path);
            }
            upstreams.push(u);
        }
        ok.then_some(upstreams)
    }

    /// Each address of `[server] bootstrap`: plain DNS (`udp://`, `tcp://` or a bare
    /// address), since it is what finds the encrypted upstreams' addresses.
    fn bootstrap(&mut self, urls: &[Spanned<String>]) -> Option<Vec<Upstream>> {
        let mut out = Vec::with_capacity(urls.len());
        let mut ok = true;
        for url in urls {
            let message = match url.get_ref().parse::<Upstream>() {
                Ok(u) if !u.transport.is_encrypted() => {
                    out.push(u);
                    continue;
                }
                Ok(_) => format!(
                    "[server] bootstrap: {:?}: a bootstrap server is asked plain DNS \
                     (udp://, tcp:// or an address)",
                    url.get_ref()
                ),
                Err(e) => format!("[server] bootstrap: {e}"),
            };
            ok = false;
            self.errors.push(PolicyError::Invalid {
                origin: self.at(Some(self.line(url.span()))),
                message,
            });
        }
        ok.then_some(out)
    }

    /// `check(value)`, or `None` after an error that names `table`, `key` and the line.
    fn checked<V: Copy, T>(
        &mut self,
        table: &str,
        key: &str,
        value: &Spanned<V>,
        check: impl FnOnce(V) -> Result<T, String>,
    ) -> Option<T> {
        self.checked_ref(table, key, value, |v| check(*v))
    }

    /// Like [`Self::checked`], for a value written as text (a duration).
    fn checked_text<T>(
        &mut self,
        table: &str,
        key: &str,
        value: &Spanned<String>,
        check: impl FnOnce(&str) -> Result<T, String>,
    ) -> Option<T> {
        self.checked_ref(table, key, value, |v| check(v))
    }

    /// What [`Self::checked`] and [`Self::checked_text`] share: the check on a borrowed
    /// value, its error naming the line that wrote it.
    fn checked_ref<V, T>(
        &mut self,
        table: &str,
        key: &str,
        value: &Spanned<V>,
        check: impl FnOnce(&V) -> Result<T, String>,
    ) -> Option<T> {
        match check(value.get_ref()) {
            Ok(checked) => Some(checked),
            Err(why) => {
                // A default has an empty span: no line wrote it.
                let line = (!value.span().is_empty()).then(|| self.line(value.span()));
                self.errors.push(PolicyError::Invalid {
                    origin: self.at(line),
                    message: format!("{table} `{key}` = {why}"),
                });
                None
            }
        }
    }

    /// Warns about group networks the server refuses, and about refusing everyone: a
    /// toggle that can never apply.
    fn check_groups_are_served(&mut self, cfg: &ConfigFile) {
        let server = &cfg.server;
        for g in &cfg.groups {
            for c in &g.clients {
                let Ok(net) = parse_net(c.get_ref()) else {
                    continue;
                };
                if !server.allow_clients.iter().any(|a| a.contains(&net)) {
                    self.warnings.push(format!(
                        "{}:{}: group `{}`: {net} is not inside [server] allow_clients, so \
                         its clients are refused (REFUSED) before the group applies",
                        self.origin,
                        self.line(c.span()),
                        g.name.get_ref()
                    ));
                }
            }
        }
        if server.allow_clients.is_empty() {
            self.warnings.push(format!(
                "{}: [server] `allow_clients` is empty, so every client is refused",
                self.at(key_line(self.text, "[server]", "allow_clients"))
            ));
        }
    }
}

/// Where a `[[lists]]` entry is read from, with the key that said so (for its line).
enum ListSource {
    /// `path`: the file.
    File {
        path: PathBuf,
        written: Spanned<String>,
    },
    /// `url`: the cached copy of the download.
    Url {
        cache_file: PathBuf,
        written: Spanned<String>,
    },
}

/// Reads list `li` line by line into the entries (the file's text is never held whole),
/// each entry's patterns checked and counted for the matcher.
fn read_entries(
    file: std::fs::File,
    format: list::ListFormat,
    li: u32,
    parts: &mut Parts,
) -> std::io::Result<list::ListStats> {
    // Names are at most the file's text: reserving it once avoids copying a
    // growing arena again and again (the excess is returned after the build; untouched
    // reserved pages cost no memory).
    let size = file.metadata().map_or(0, |m| m.len());
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    parts.entries.start_list(li, size);
    let mut star = String::new();
    let file = std::io::BufReader::with_capacity(64 * 1024, file);
    list::read(file, format, |line, shown, item| {
        item_patterns(item, &mut star, |p| parts.estimate.add(p))
            .map_err(|e| e.kind.to_string())?;
        Ok(parts.entries.push_list(shown, line)?)
    })
}

/// Gives `add` the patterns of one list item, in both passes. For `||name^`, `*.name` and
/// `name`; a name of 252–253 octets has nothing below it (any such name would be over
/// 253), so only the name itself is added.
fn item_patterns(
    item: Item<'_>,
    star: &mut String,
    mut add: impl FnMut(&str) -> Result<(), PatternError>,
) -> Result<(), PatternError> {
    match item {
        Item::Pattern(p) => add(p),
        Item::DomainAndBelow(name) => {
            star.clear();
            star.push_str("*.");
            star.push_str(name);
            match add(star) {
                Err(e) if matches!(e.kind, PatternErrorKind::NameTooLong(_)) => Ok(()),
                other => other,
            }
            .and_then(|()| add(name))
        }
    }
}

/// The second pass: every entry's patterns, in id order, into a trie sized by the first
/// pass's count, so that the build holds no more than the matcher it returns (the reload
/// of a million-name list stays within the old and the new policy). Every pattern was
/// accepted by the first pass, which the matcher checks the same way.
fn matcher(
    parts: &Parts,
    endpoints: &[EndpointInfo],
    rules: &[RuleInfo],
    lists: &[ListInfo],
) -> Matcher {
    let mut b = MatcherBuilder::with_estimate(&parts.estimate);
    let mut star = String::new();
    for id in 0..parts.entries.next_id() {
        let mut add = |p: &str| b.add(p, id);
        let added = match parts.entries.at(id) {
            Entry::Endpoint(e) => add(&endpoints[e as usize].pattern),
            Entry::Rule(r) => add(&rules[r as usize].pattern),
            entry @ Entry::List { list, .. } => {
                let format = lists[list as usize].format;
                let item = list::item_of(format, parts.entries.text(entry));
                item_patterns(item, &mut star, add)
            }
        };
        debug_assert!(added.is_ok(), "entry {id} was checked: {added:?}");
    }
    b.build()
}

/// The warning for a list's malformed lines: how many, and the first ones.
fn malformed_lines(label: &str, path: &Path, stats: &list::ListStats) -> String {
    let shown: Vec<String> = stats
        .bad_lines
        .iter()
        .map(|b| format!("line {}: {} ({:?})", b.line, b.reason, b.text))
        .collect();
    let more = stats.bad - stats.bad_lines.len();
    format!(
        "list `{label}` ({}): {} malformed line{} ignored:\n    {}{}",
        path.display(),
        stats.bad,
        if stats.bad == 1 { "" } else { "s" },
        shown.join("\n    "),
        if more > 0 {
            format!("\n    ... and {more} more")
        } else {
            String::new()
        }
    )
}

/// The line of `key = ...` under the header `table` (`[server]`), if the text has one.
fn key_line(text: &str, table: &str, key: &str) -> Option<usize> {
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.starts_with('[') {
            current = line
                .split_once('#')
                .map_or(line, |(h, _)| h)
                .trim_end()
                .replace(' ', "");
        } else if current == table
            && line
                .strip_prefix(key)
                .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return Some(i + 1);
        }
    }
    None
}

/// The line of the `n`-th (0-based) `header` (`[[lists]]`) of the text, outside comments.
fn nth_header_line(text: &str, header: &str, n: usize) -> Option<usize> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| {
            let l = l.trim_start();
            l.strip_prefix(header).is_some_and(|rest| {
                rest.trim_start().is_empty() || rest.trim_start().starts_with('#')
            })
        })
        .nth(n)
        .map(|(i, _)| i + 1)
}

/// A CIDR (`10.0.0.0/24`, `fd00::/64`) or a single address (`10.0.0.5`).
fn parse_net(s: &str) -> Result<IpNet, String> {
    let s = s.trim();
    if s.contains('/') {
        let net: IpNet = s
            .parse()
            .map_err(|e: ipnet::AddrParseError| e.to_string())?;
        if net.trunc() != net {
            return Err(format!(
                "host bits are set (the network is {})",
                net.trunc()
            ));
        }
        Ok(net)
    } else {
        s.parse::<std::net::IpAddr>()
            .map(IpNet::from)
            .map_err(|_| "neither an IP address nor a CIDR like 10.0.0.0/24".to_owned())
    }
}

/// Checks that `path` can be read and holds at least one PEM certificate (the server
/// parses them when it starts).
fn pem_certificates(path: &Path) -> Result<(), String> {
    let text = std::fs::read(path).map_err(|e| e.to_string())?;
    if text
        .windows(b"-----BEGIN CERTIFICATE-----".len())
        .any(|w| w == b"-----BEGIN CERTIFICATE-----")
    {
        Ok(())
    } else {
        Err("no PEM certificate (-----BEGIN CERTIFICATE-----) in it".to_owned())
    }
}
