//! Which config `run`, `check` and `explain` use: `--config FILE`, else
//! `$WINSINK_CONFIG`, else `./config/winsink.toml` (a checkout of the repository), else
//! `/etc/winsink/winsink.toml` (an installed service), else the built-in defaults — the
//! shipped `config/winsink.toml`, compiled into the binary, so `winsink run` works from
//! any directory. A file named by `--config` or `$WINSINK_CONFIG` must exist; the other
//! two places are only looked in.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use winsink_policy::{Loaded, Policy, PolicyError};

/// The environment variable naming the config file.
pub(crate) const ENV: &str = "WINSINK_CONFIG";
/// The config file of a checkout, relative to the working directory.
pub(crate) const LOCAL: &str = "config/winsink.toml";
/// The config file of an installed service.
pub(crate) const SYSTEM: &str = "/etc/winsink/winsink.toml";
/// The built-in defaults: the shipped config. It names only `builtin:` catalogs, so it
/// reads no file.
pub(crate) const BUILTIN: &str = include_str!("../../../config/winsink.toml");
/// How the built-in defaults are named in messages.
const BUILTIN_NAME: &str = "built-in defaults";

/// Where the config comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ConfigSource {
    /// A file, and why that one.
    File(PathBuf, Found),
    /// No file named and none found: [`BUILTIN`].
    Builtin,
}

/// Why a config file was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Found {
    /// `--config`.
    Flag,
    /// `$WINSINK_CONFIG`.
    Env,
    /// [`LOCAL`] exists.
    Local,
    /// [`SYSTEM`] exists.
    System,
}

impl ConfigSource {
    /// The config for `--config flag` (if given), this process's environment and file
    /// system.
    pub(crate) fn discover(flag: Option<&Path>) -> Self {
        Self::discover_in(flag, std::env::var_os(ENV), |p| p.is_file())
    }

    /// [`discover`](Self::discover) with the environment variable's value and the file
    /// test given.
    fn discover_in(
        flag: Option<&Path>,
        env: Option<OsString>,
        is_file: impl Fn(&Path) -> bool,
    ) -> Self {
        if let Some(path) = flag {
            return Self::File(path.to_path_buf(), Found::Flag);
        }
        if let Some(path) = env.filter(|v| !v.is_empty()) {
            return Self::File(path.into(), Found::Env);
        }
        for (place, found) in [(LOCAL, Found::Local), (SYSTEM, Found::System)] {
            if is_file(Path::new(place)) {
                return Self::File(place.into(), found);
            }
        }
        Self::Builtin
    }

    /// Loads the config exactly as `run` does.
    pub(crate) fn load(&self) -> Result<Loaded, PolicyError> {
        match self {
            Self::File(path, _) => Policy::load(path),
            Self::Builtin => Policy::from_config_str(BUILTIN, Path::new("."), BUILTIN_NAME),
        }
    }

    /// The text loaded, for finding the line of a value in messages.
    pub(crate) fn text(&self) -> String {
        match self {
            Self::File(path, _) => std::fs::read_to_string(path).unwrap_or_default(),
            Self::Builtin => BUILTIN.to_owned(),
        }
    }

    /// Where it came from, in one line: the daemon's first log line.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::File(path, found) => {
                let why = match found {
                    Found::Flag => "--config",
                    Found::Env => "$WINSINK_CONFIG",
                    Found::Local => "found in the working directory",
                    Found::System => "found in /etc/winsink",
                };
                format!("config: {} ({why})", path.display())
            }
            Self::Builtin => format!(
                "no config file found (looked in ${ENV}, ./{LOCAL}, {SYSTEM}): {BUILTIN_NAME}"
            ),
        }
    }
}

/// The file's path as given, or "built-in defaults".
impl fmt::Display for ConfigSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::File(path, _) => write!(f, "{}", path.display()),
            Self::Builtin => f.write_str(BUILTIN_NAME),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discover(flag: Option<&str>, env: Option<&str>, files: &[&str]) -> ConfigSource {
        ConfigSource::discover_in(flag.map(Path::new), env.map(OsString::from), |p| {
            files.iter().any(|f| Path::new(f) == p)
        })
    }

    #[test]
    fn the_flag_then_the_variable_then_the_working_directory_then_etc() {
        let all = [LOCAL, SYSTEM];
        assert_eq!(
            discover(Some("a.toml"), Some("b.toml"), &all),
            ConfigSource::File("a.toml".into(), Found::Flag)
        );
        assert_eq!(
            discover(None, Some("b.toml"), &all),
            ConfigSource::File("b.toml".into(), Found::Env)
        );
        assert_eq!(
            discover(None, None, &all),
            ConfigSource::File(LOCAL.into(), Found::Local)
        );
        assert_eq!(
            discover(None, Some(""), &[SYSTEM]),
            ConfigSource::File(SYSTEM.into(), Found::System)
        );
        assert_eq!(discover(None, None, &[]), ConfigSource::Builtin);
    }

    #[test]
    fn a_named_file_is_used_even_if_it_does_not_exist() {
        // A typo in --config or $WINSINK_CONFIG must fail, not fall back silently.
        assert_eq!(
            discover(None, Some("/nowhere.toml"), &[LOCAL]),
            ConfigSource::File("/nowhere.toml".into(), Found::Env)
        );
    }

    #[test]
    fn the_builtin_defaults_are_the_shipped_config_and_read_no_file() {
        let loaded = ConfigSource::Builtin
            .load()
            .expect("the shipped config loads");
        assert!(loaded.files.is_empty(), "{:?}", loaded.files);
        assert!(
            loaded.policy.rule_count() > 0,
            "the built-in catalog is loaded"
        );
        assert_eq!(
            ConfigSource::Builtin.describe(),
            "no config file found (looked in $WINSINK_CONFIG, ./config/winsink.toml, \
             /etc/winsink/winsink.toml): built-in defaults"
        );
    }
}
