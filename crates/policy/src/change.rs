//! What a reload reports: one [`Change`] per difference between two loads of the config,
//! formatted here and nowhere else.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::decision::Action;

/// An area, as a change names it: `Diagnostic Data (diagnostic-data)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaName {
    /// Its name.
    pub name: String,
    /// Its id.
    pub id: String,
}

impl fmt::Display for AreaName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name, self.id)
    }
}

/// One difference between two loads of the config: a setting ([`Policy::setting_changes`],
/// [`Startup::changes_from`]) or what the policy holds ([`Summary::diff`]).
///
/// [`Policy::setting_changes`]: crate::Policy::setting_changes
/// [`Startup::changes_from`]: crate::Startup::changes_from
/// [`Summary::diff`]: crate::Summary::diff
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A setting's value: `[sinkhole] mode: "null-ip" → "nxdomain"`.
    Setting {
        /// The table, as the file writes its header (`[server]`).
        table: &'static str,
        /// The key.
        key: &'static str,
        /// The old value, as JSON (`"null-ip"`, `["127.0.0.1:53"]`, `null` for none).
        before: String,
        /// The new value, the same way.
        after: String,
    },
    /// A catalog now loaded, as `catalogs` names it.
    CatalogAdded(String),
    /// A catalog no longer loaded.
    CatalogRemoved(String),
    /// The top-level `default_action`.
    DefaultAction {
        /// Before.
        before: Action,
        /// After.
        after: Action,
    },
    /// An area's global action.
    AreaAction {
        /// The area.
        area: AreaName,
        /// Before.
        before: Action,
        /// After.
        after: Action,
    },
    /// How many endpoints an area has (its catalog changed).
    AreaEndpoints {
        /// The area.
        area: AreaName,
        /// Before.
        before: usize,
        /// After.
        after: usize,
    },
    /// An area a catalog now has, with its action.
    AreaAdded {
        /// The area.
        area: AreaName,
        /// Its global action.
        action: Action,
    },
    /// An area no catalog has any more.
    AreaRemoved(AreaName),
    /// A rule, as `[group G] ACTION PATTERN (NOTE)`.
    RuleAdded(String),
    /// A rule removed, the same way.
    RuleRemoved(String),
    /// A list file now loaded.
    ListAdded {
        /// Its label.
        label: String,
        /// Its file.
        path: PathBuf,
        /// Its action.
        action: Action,
        /// Names loaded.
        names: usize,
    },
    /// A list's action or number of names.
    ListChanged {
        /// Its label.
        label: String,
        /// Action and names before.
        before: (Action, usize),
        /// Action and names after.
        after: (Action, usize),
    },
    /// A list no longer loaded.
    ListRemoved {
        /// Its label.
        label: String,
        /// Its file.
        path: PathBuf,
    },
    /// A client group now defined, with its networks.
    GroupAdded {
        /// Its name.
        group: String,
        /// Its networks.
        clients: Vec<String>,
    },
    /// A group's networks.
    GroupClients {
        /// The group.
        group: String,
        /// Before.
        before: Vec<String>,
        /// After.
        after: Vec<String>,
    },
    /// A group's override of one area: `None` is "not overridden".
    GroupArea {
        /// The group.
        group: String,
        /// The area id.
        id: String,
        /// Before.
        before: Option<Action>,
        /// After.
        after: Option<Action>,
    },
    /// A group's `default_action`: `None` is "the global actions".
    GroupDefaultAction {
        /// The group.
        group: String,
        /// Before.
        before: Option<Action>,
        /// After.
        after: Option<Action>,
    },
    /// A group's sinkhole override.
    GroupSinkhole(String),
    /// A group no longer defined.
    GroupRemoved(String),
}

impl fmt::Display for Change {
    /// One arm per variant: the one place where a reload's lines are worded (long only
    /// because there are many kinds of change).
    #[allow(clippy::too_many_lines)]
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let default = |a: &Option<Action>| a.map_or("global", Action::as_str);
        match self {
            Self::Setting {
                table,
                key,
                before,
                after,
            } => write!(f, "{table} {key}: {before} → {after}"),
            Self::CatalogAdded(c) => write!(f, "catalog added: {c}"),
            Self::CatalogRemoved(c) => write!(f, "catalog removed: {c}"),
            Self::DefaultAction { before, after } => {
                write!(f, "default_action: {before} → {after}")
            }
            Self::AreaAction {
                area,
                before,
                after,
            } => write!(f, "area {area}: {before} → {after}"),
            Self::AreaEndpoints {
                area,
                before,
                after,
            } => write!(f, "area {area}: {before} → {after} endpoints"),
            Self::AreaAdded { area, action } => write!(f, "area added: {area}: {action}"),
            Self::AreaRemoved(area) => write!(f, "area removed: {area}"),
            Self::RuleAdded(r) => write!(f, "rule added: {r}"),
            Self::RuleRemoved(r) => write!(f, "rule removed: {r}"),
            Self::ListAdded {
                label,
                path,
                action,
                names,
            } => write!(
                f,
                "list added: {label} ({}): {action} {names} names",
                path.display()
            ),
            Self::ListChanged {
                label,
                before: (was, had),
                after: (is, has),
            } if was == is => write!(f, "list {label}: {is} {had} → {has} names"),
            Self::ListChanged {
                label,
                before: (was, had),
                after: (is, has),
            } => write!(f, "list {label}: {was} {had} names → {is} {has} names"),
            Self::ListRemoved { label, path } => {
                write!(f, "list removed: {label} ({})", path.display())
            }
            Self::GroupAdded { group, clients } => {
                write!(f, "group added: {group} ({})", clients.join(", "))
            }
            Self::GroupClients {
                group,
                before,
                after,
            } => write!(
                f,
                "group {group}: clients {} → {}",
                before.join(", "),
                after.join(", ")
            ),
            Self::GroupArea {
                group,
                id,
                before,
                after,
            } => match (before, after) {
                (Some(b), Some(a)) => write!(f, "group {group}: area {id}: {b} → {a}"),
                (None, Some(a)) => write!(f, "group {group}: area {id} set to {a}"),
                (_, None) => write!(f, "group {group}: area {id} no longer overridden"),
            },
            Self::GroupDefaultAction {
                group,
                before,
                after,
            } => write!(
                f,
                "group {group}: default_action {} → {}",
                default(before),
                default(after)
            ),
            Self::GroupSinkhole(group) => write!(f, "group {group}: sinkhole changed"),
            Self::GroupRemoved(group) => write!(f, "group removed: {group}"),
        }
    }
}

/// Collects the [`Change::Setting`]s of one table. Callers destructure both values
/// without `..`, so that a field added to a settings type does not compile until it is
/// compared here (and cannot be reported as applied, or not at all, by omission).
pub(crate) struct Settings<'a> {
    out: &'a mut Vec<Change>,
    table: &'static str,
}

impl<'a> Settings<'a> {
    /// Changes of `table` go to `out`.
    pub(crate) fn new(out: &'a mut Vec<Change>, table: &'static str) -> Self {
        Self { out, table }
    }

    /// Records `key` if `before` and `after` differ.
    pub(crate) fn compare<T: PartialEq + Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        before: &T,
        after: &T,
    ) -> &mut Self {
        if before != after {
            self.out.push(Change::Setting {
                table: self.table,
                key,
                before: show(before),
                after: show(after),
            });
        }
        self
    }
}

fn show<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|e| format!("(cannot show: {e})"))
}
