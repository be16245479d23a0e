//! Phase one: the config file as plain serde data, and TOML errors made readable.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

use crate::decision::Action;
use crate::error::{closest, PolicyError};
use crate::list::ListFormat;
use crate::settings::{
    CacheSettings, HttpSettings, LogSettings, ServerSettings, SinkholeSettings, TlsSettings,
};
use crate::url_list::UrlListSettings;

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
    /// Area id → action (or `{ action, acknowledge_shared }`).
    #[serde(default)]
    pub(crate) areas: BTreeMap<Spanned<String>, AreaSetting>,
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
    #[serde(default)]
    pub(crate) http: HttpSettings,
    #[serde(default)]
    pub(crate) tls: TlsSettings,
    /// `[url_lists]`: where lists by URL are kept, their size cap and timeout.
    #[serde(default)]
    pub(crate) url_lists: UrlListSettings,
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

/// `[[lists]]`: a file (`path`) or a download (`url`, see [`crate::url_list`]).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ListConfig {
    /// The list file, relative to the config file. Exactly one of `path` and `url`.
    #[serde(default)]
    pub(crate) path: Option<Spanned<String>>,
    /// An `http://` or `https://` URL to download the list from.
    #[serde(default)]
    pub(crate) url: Option<Spanned<String>>,
    /// How often a `url` list is downloaded again. Default: `"24h"`.
    #[serde(default)]
    pub(crate) refresh: Option<Spanned<String>>,
    #[serde(default)]
    pub(crate) format: ListFormat,
    pub(crate) action: Action,
    /// Default: the file name.
    #[serde(default)]
    pub(crate) label: Option<String>,
    /// Accept the list when it has no valid line, or more malformed lines than valid
    /// ones (otherwise such a list is refused as a failed download). Default: `false`.
    #[serde(default)]
    pub(crate) allow_empty: bool,
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
    pub(crate) areas: BTreeMap<Spanned<String>, AreaSetting>,
    #[serde(default)]
    pub(crate) rules: Vec<RuleConfig>,
}

/// One area's line in `[areas]` or `[groups.areas]`: an action word
/// (`office = "log"`), or a table that also acknowledges names the area shares with
/// another area (`diagnostic-data = { action = "block", acknowledge_shared =
/// ["self.events.data.microsoft.com"] }`), which silences the shared-endpoint warning.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AreaSetting {
    pub(crate) action: Action,
    /// Names (as the catalog writes them, or a concrete name below a wildcard) whose
    /// sharing with another area the operator means. Default: none.
    pub(crate) acknowledge_shared: Vec<Spanned<String>>,
}

/// The table form of [`AreaSetting`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AreaTable {
    action: Action,
    #[serde(default)]
    acknowledge_shared: Vec<Spanned<String>>,
}

impl<'de> Deserialize<'de> for AreaSetting {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = AreaSetting;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("string or table")
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<AreaSetting, E> {
                use serde::de::IntoDeserializer as _;
                Ok(AreaSetting {
                    action: Action::deserialize(v.into_deserializer())?,
                    acknowledge_shared: Vec::new(),
                })
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<AreaSetting, A::Error> {
                let t = AreaTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(AreaSetting {
                    action: t.action,
                    acknowledge_shared: t.acknowledge_shared,
                })
            }
        }
        d.deserialize_any(Visitor)
    }
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
            table: match inline_parent(text, at) {
                Some(parent) => format!("{} `{parent}`", enclosing_table(text, at)),
                None => enclosing_table(text, at),
            },
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
    if let Some(field) = message
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        // serde points at the table that lacks the key: its header is on that line.
        let table = header_at(text, at).unwrap_or_else(|| enclosing_table(text, at));
        return PolicyError::Syntax {
            origin: origin.to_owned(),
            line,
            column,
            message: format!("{table} is missing the required key `{field}`"),
        };
    }
    let key = key_on_line(text, at);
    let message = match (key.is_empty(), message.as_str()) {
        (true, _) => message,
        // serde's words for "a unit enum got something other than a string", and
        // `AreaSetting`'s for "neither an action word nor a table".
        (false, m)
            if m == "wanted string or table" || m.ends_with(", expected string or table") =>
        {
            format!(
                "`{key}` must be one of {} in quotes",
                words_for(&key, &enclosing_table(text, at)).unwrap_or("the documented words")
            )
        }
        (false, _) => format!("`{key}`: {message}"),
    };
    PolicyError::Syntax {
        origin: origin.to_owned(),
        line,
        column,
        message,
    }
}

/// The words an enum-valued key accepts, for "wanted string or table" errors.
fn words_for(key: &str, table: &str) -> Option<&'static str> {
    match (table, key) {
        ("[areas]" | "[groups.areas]", _) | (_, "action" | "default_action") => {
            Some("block, log, allow")
        }
        ("[[lists]]", "format") => Some("auto, hosts, plain, adblock"),
        ("[log]", "format") => Some("auto, json, pretty"),
        ("[log]", "queries") => Some("all, matched, none"),
        (_, "mode") => Some("null-ip, nxdomain, nodata, refused, custom"),
        _ => None,
    }
}

/// The `[table]` or `[[array]]` header on the line holding byte offset `at`, if that
/// line is one.
fn header_at(text: &str, at: usize) -> Option<String> {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].lines().next().unwrap_or("").trim();
    line.starts_with('[').then(|| strip_header_comment(line))
}

fn strip_header_comment(line: &str) -> String {
    // `[server] # where we listen` → `[server]`.
    let end = line.rfind(']').map_or(line.len(), |i| i + 1);
    line[..end].to_owned()
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
        .map_or_else(|| "the top level".to_owned(), strip_header_comment)
}

/// The text of the line holding byte offset `at`, up to `at`, and the whole line.
fn line_around(text: &str, at: usize) -> (&str, &str) {
    let at = at.min(text.len());
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let line = text[start..].split('\n').next().unwrap_or("");
    (&text[start..at], line)
}

/// The key whose value holds byte offset `at`: on `key = value` lines the key, inside an
/// inline table (`sinkhole = { mode = "x" }`) the inner key.
fn key_on_line(text: &str, at: usize) -> String {
    let (before, line) = line_around(text, at);
    let key = match before.rfind('=') {
        Some(eq) => before[..eq].rsplit(['{', ',']).next().unwrap_or(""),
        None => line.split_once('=').map_or("", |(k, _)| k),
    };
    key.trim().trim_matches('"').to_owned()
}

/// The key of the inline table (`sinkhole = { ... }`) that byte offset `at` is inside.
fn inline_parent(text: &str, at: usize) -> Option<String> {
    let (before, _) = line_around(text, at);
    let open = before.rfind('{')?;
    if before[open..].contains('}') {
        return None;
    }
    let key = before[..open].trim_end().strip_suffix('=')?;
    Some(key.trim().trim_matches('"').to_owned())
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
    fn a_missing_key_names_the_table_that_lacks_it() {
        assert_eq!(
            err("[[rules]]\npattern = \"a.example\"\naction = \"block\"\n\n[[rules]]\npattern = \"b.example\"\n"),
            "test.toml:5:1: [[rules]] is missing the required key `action`"
        );
        assert_eq!(
            err("[[groups]] # lab\nname = \"g\"\n"),
            "test.toml:1:1: [[groups]] is missing the required key `clients`"
        );
    }

    #[test]
    fn a_value_of_the_wrong_type_names_its_key() {
        assert_eq!(
            err("[server]\nudp_payload = \"big\"\n"),
            "test.toml:2:15: `udp_payload`: invalid type: string \"big\", expected u16"
        );
        assert_eq!(
            err("default_action = 3\n"),
            "test.toml:1:18: `default_action` must be one of block, log, allow in quotes"
        );
        assert_eq!(
            err("[areas]\napps = true\n"),
            "test.toml:2:8: `apps` must be one of block, log, allow in quotes"
        );
        assert_eq!(
            err("[log]\nformat = [\"json\"]\n"),
            "test.toml:2:10: `format` must be one of auto, json, pretty in quotes"
        );
    }

    #[test]
    fn errors_inside_an_inline_table_name_the_inner_key() {
        let group = "[[groups]]\nname = \"g\"\nclients = []\n";
        assert_eq!(
            err(&format!(
                "{group}sinkhole = {{ mode = \"nxdomain\", tll = 3 }}\n"
            )),
            "test.toml:4: unknown key `tll` in [[groups]] `sinkhole` (did you mean `ttl`?)"
        );
        assert_eq!(
            err(&format!("{group}sinkhole = {{ ttl = 3, mode = \"nxdomian\" }}\n")),
            "test.toml:4: `mode` = \"nxdomian\" is not one of null-ip, nxdomain, nodata, refused, custom (did you mean `nxdomain`?)"
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
