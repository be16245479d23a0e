//! Phase one: the config file as plain serde data, and TOML errors made readable.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::decision::Action;
use crate::error::{closest, PolicyError};
use crate::list::ListFormat;
use crate::settings::{CacheSettings, LogSettings, ServerSettings, SinkholeSettings};

/// The whole config file. See the crate docs for the layout.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigFile {
    /// Catalog files (relative to the config file) or `builtin:NAME`.
    /// Default: `["builtin:windows11-enterprise"]`.
    #[serde(default)]
    pub(crate) catalogs: Option<Vec<Spanned<String>>>,
    /// The action of areas not named in `[areas]`. Default: `log`.
    #[serde(default)]
    pub(crate) default_action: Option<Action>,
    /// Area id → action.
    #[serde(default)]
    pub(crate) areas: BTreeMap<Spanned<String>, Action>,
    /// Custom rules.
    #[serde(default)]
    pub(crate) rules: Vec<RuleConfig>,
    /// External lists.
    #[serde(default)]
    pub(crate) lists: Vec<ListConfig>,
    /// Client groups.
    #[serde(default)]
    pub(crate) groups: Vec<GroupConfig>,
    #[serde(default)]
    pub(crate) server: ServerSettings,
    #[serde(default)]
    pub(crate) sinkhole: SinkholeSettings,
    #[serde(default)]
    pub(crate) cache: CacheSettings,
    #[serde(default)]
    pub(crate) log: LogSettings,
}

/// `[[rules]]` and `[[groups.rules]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleConfig {
    pub(crate) pattern: Spanned<String>,
    pub(crate) action: Action,
    #[serde(default)]
    pub(crate) note: Option<String>,
}

/// `[[lists]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListConfig {
    pub(crate) path: Spanned<String>,
    #[serde(default)]
    pub(crate) format: ListFormat,
    pub(crate) action: Action,
    /// Default: the file name.
    #[serde(default)]
    pub(crate) label: Option<String>,
}

/// `[[groups]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GroupConfig {
    pub(crate) name: Spanned<String>,
    pub(crate) clients: Vec<Spanned<String>>,
    #[serde(default)]
    pub(crate) sinkhole: Option<SinkholeSettings>,
    /// The action of the areas that this group's `[groups.areas]` does not name.
    /// Default: none, meaning the global actions.
    #[serde(default)]
    pub(crate) default_action: Option<Action>,
    #[serde(default)]
    pub(crate) areas: BTreeMap<Spanned<String>, Action>,
    #[serde(default)]
    pub(crate) rules: Vec<RuleConfig>,
}

/// Parses the config text; errors name `origin`, the line, the key and a likely fix.
pub(crate) fn parse(text: &str, origin: &str) -> Result<ConfigFile, PolicyError> {
    toml::from_str(text).map_err(|e| readable(text, origin, &e))
}

/// 1-based line and column of byte offset `at`.
pub(crate) fn line_col(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn readable(text: &str, origin: &str, e: &toml::de::Error) -> PolicyError {
    let message = e.message().trim().to_owned();
    let at = e.span().map_or(0, |s| s.start);
    let (line, column) = line_col(text, at);
    if let Some((word, expected)) = unknown(&message, "unknown field `") {
        return PolicyError::UnknownKey {
            origin: origin.to_owned(),
            line,
            suggestion: closest(&word, expected.iter().map(String::as_str)),
            key: word,
            table: enclosing_table(text, at),
        };
    }
    if let Some((word, expected)) = unknown(&message, "unknown variant `") {
        return PolicyError::InvalidValue {
            origin: origin.to_owned(),
            line,
            key: key_on_line(text, at),
            suggestion: closest(&word, expected.iter().map(String::as_str)),
            value: word,
            expected: expected.into(),
        };
    }
    PolicyError::Syntax {
        origin: origin.to_owned(),
        line,
        column,
        message,
    }
}

/// Splits serde's "unknown field `x`, expected one of `a`, `b`" into `x` and `[a, b]`.
fn unknown(message: &str, prefix: &str) -> Option<(String, Vec<String>)> {
    let rest = message.strip_prefix(prefix)?;
    let (word, tail) = rest.split_once('`')?;
    let expected = tail
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect();
    Some((word.to_owned(), expected))
}

/// The `[table]` or `[[array]]` header above byte offset `at`.
fn enclosing_table(text: &str, at: usize) -> String {
    text[..at.min(text.len())]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map_or_else(
            || "the top level".to_owned(),
            |l| {
                // Drop a trailing comment: `[server] # where we listen`.
                let end = l.rfind(']').map_or(l.len(), |i| i + 1);
                l[..end].to_owned()
            },
        )
}

/// The key of the `key = value` line holding byte offset `at`.
fn key_on_line(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = &text[start..];
    let line = line.split('\n').next().unwrap_or("");
    line.split_once('=')
        .map(|(k, _)| k.trim().trim_matches('"').to_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text, "test.toml").unwrap_err().to_string()
    }

    #[test]
    fn unknown_top_level_key_names_line_and_suggests() {
        assert_eq!(
            err("default_action = \"log\"\ndefualt_action = \"block\"\n"),
            "test.toml:2: unknown key `defualt_action` in the top level (did you mean `default_action`?)"
        );
    }

    #[test]
    fn unknown_key_in_a_table_names_the_table() {
        assert_eq!(
            err("[server]\nlisten = []\nupstream = [\"udp://127.0.0.1:53\"]\n"),
            "test.toml:3: unknown key `upstream` in [server] (did you mean `upstreams`?)"
        );
        assert_eq!(
            err("[[rules]]\npattern = \"a.example\"\nactoin = \"block\"\n"),
            "test.toml:3: unknown key `actoin` in [[rules]] (did you mean `action`?)"
        );
        assert_eq!(
            err("[[groups]]\nname = \"g\"\nclients = []\n[[groups.rules]]\npattern = \"x\"\naction = \"log\"\nnotes = \"n\"\n"),
            "test.toml:7: unknown key `notes` in [[groups.rules]] (did you mean `note`?)"
        );
    }

    #[test]
    fn unknown_action_word_suggests_the_closest() {
        assert_eq!(
            err("[areas]\ndiagnostic-data = \"blok\"\n"),
            "test.toml:2: `diagnostic-data` = \"blok\" is not one of block, log, allow (did you mean `block`?)"
        );
    }

    #[test]
    fn syntax_errors_have_line_and_column() {
        let e = err("default_action = \n");
        assert!(e.starts_with("test.toml:1:"), "{e}");
    }

    #[test]
    fn empty_config_is_all_defaults() {
        let c = parse("", "x").unwrap();
        assert!(c.catalogs.is_none() && c.areas.is_empty() && c.rules.is_empty());
        assert_eq!(c.server, ServerSettings::default());
    }
}
