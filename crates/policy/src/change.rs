//! What a reload reports: one [`Change`] per difference between two loads of the config,
//! formatted here and nowhere else.

use std::fmt;

use serde::Serialize;

/// One difference between two loads of the config.
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
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Setting {
                table,
                key,
                before,
                after,
            } => write!(f, "{table} {key}: {before} → {after}"),
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
