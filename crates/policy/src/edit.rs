//! Changing the config file in place: one area's action, with every comment and the
//! layout kept, written atomically.
//!
//! The config file stays the single source of truth: the dashboard's "block this area"
//! button does not change the policy in force, it edits the file winsink was started
//! with, and the running reload picks the edit up as it would an editor's save. So the
//! change shows in `git diff` of the config, survives a restart, and goes through the
//! same validation as any other edit.
//!
//! - [`set_area_action`] edits text: `[areas] ID = "ACTION"` is set (the key is added to
//!   `[areas]`, or `[areas]` to the file, when absent), or the `action` of an area's
//!   table form (`ID = { action = "…", acknowledge_shared = […] }`, whose other keys stay);
//!   comments, blank lines, key order, quoting and a comment after the value are
//!   untouched (`toml_edit`).
//! - [`change_area_action`] does it to a file: the id must be an area of the policy in
//!   force, the new text must still parse, and the file is replaced atomically: a
//!   temporary file in the same folder (same permissions and, where allowed, owner),
//!   flushed to disk, renamed over the original (a symlink's target, so a symlinked
//!   config stays a symlink). A reader never sees half a file.
//! - [`writable`] says whether that can work, and why not, before anyone presses a
//!   button: a file whose mode has no write bit counts as read-only even for root, as the
//!   operator's explicit "do not change this".
//!
//! ```
//! use winsink_policy::{edit::set_area_action, Action};
//!
//! let text = "[areas]\n# Store apps cannot be installed.\nmicrosoft-store = \"log\"  # audit first\n";
//! let edited = set_area_action(text, "config.toml", "microsoft-store", Action::Block).unwrap();
//! assert_eq!(
//!     edited,
//!     "[areas]\n# Store apps cannot be installed.\nmicrosoft-store = \"block\"  # audit first\n"
//! );
//! ```

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use toml_edit::{DocumentMut, Item, Table, Value};

use crate::config;
use crate::decision::Action;
use crate::error::{closest, PolicyError};
use crate::policy::Policy;

/// One edit at a time in this process: two quick toggles must not both read the old text.
static EDITING: Mutex<()> = Mutex::new(());

/// What [`change_area_action`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AreaChange {
    /// The file written (a symlink's target).
    pub path: PathBuf,
    /// The area id.
    pub area: String,
    /// The action the file gave the area before (`None`: not named, `default_action`).
    pub before: Option<Action>,
    /// The action it gives now.
    pub after: Action,
    /// `false` when the file already said so and was left alone.
    pub written: bool,
}

/// `text` with `[areas] area = "action"`, everything else as it was.
///
/// `origin` names the text in errors. The id is not checked against any catalog here
/// (see [`change_area_action`]); it must be a bare TOML key, as every catalog id is.
pub fn set_area_action(
    text: &str,
    origin: &str,
    area: &str,
    action: Action,
) -> Result<String, PolicyError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| {
        let at = e.span().map_or(0, |s| s.start);
        let (line, column) = config::line_col(text, at);
        PolicyError::Syntax {
            origin: origin.to_owned(),
            line,
            column,
            message: e.message().trim().to_owned(),
        }
    })?;
    let not_a_table = || PolicyError::Invalid {
        origin: origin.to_owned(),
        message: "`areas` is not a table; cannot set an area's action in it".to_owned(),
    };
    if !doc.contains_key("areas") {
        doc.insert("areas", Item::Table(Table::new()));
    }
    let areas = doc
        .get_mut("areas")
        .and_then(Item::as_table_like_mut)
        .ok_or_else(not_a_table)?;
    // `id = "action"`, or the `action` of `id = { action = "…", acknowledge_shared = […] }`.
    let named = areas.contains_key(area);
    match areas.get_mut(area).and_then(|item| {
        if item.as_str().is_some() {
            item.as_value_mut()
        } else {
            item.as_table_like_mut()
                .and_then(|t| t.get_mut("action"))
                .filter(|a| a.as_str().is_some())
                .and_then(Item::as_value_mut)
        }
    }) {
        Some(value) => {
            // The comment after the value and the spaces around it belong to the value.
            let decor = value.decor().clone();
            *value = Value::from(action.as_str());
            *value.decor_mut() = decor;
        }
        None if named => {
            return Err(PolicyError::Invalid {
                origin: origin.to_owned(),
                message: format!("`areas.{area}` is not an action word"),
            })
        }
        None => {
            areas.insert(area, toml_edit::value(action.as_str()));
        }
    }
    Ok(doc.to_string())
}

/// Sets area `area` to `action` in the config file at `path`, which `policy` (the policy
/// in force) was loaded from. Returns what changed; the running reload applies it.
///
/// Errors: an id that is no area of `policy` ([`PolicyError::NoSuchArea`], with the
/// closest id), a file that cannot be read, parsed or replaced
/// ([`PolicyError::NotWritable`]).
pub fn change_area_action(
    path: &Path,
    policy: &Policy,
    area: &str,
    action: Action,
) -> Result<AreaChange, PolicyError> {
    if !policy.areas.iter().any(|a| a.id == area) {
        return Err(PolicyError::NoSuchArea {
            id: area.to_owned(),
            suggestion: closest(area, policy.areas.iter().map(|a| a.id.as_str())),
        });
    }
    let _one_at_a_time = EDITING.lock().unwrap_or_else(|e| e.into_inner());
    let target = std::fs::canonicalize(path).map_err(|source| PolicyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let origin = path.display().to_string();
    let text = std::fs::read_to_string(&target).map_err(|source| PolicyError::Io {
        path: target.clone(),
        source,
    })?;
    let before = area_action(&text, &origin, area)?;
    if before == Some(action) {
        return Ok(AreaChange {
            path: target,
            area: area.to_owned(),
            before,
            after: action,
            written: false,
        });
    }
    let edited = set_area_action(&text, &origin, area, action)?;
    // The edit must read back as asked, through the same parser the reload uses.
    let after = area_action(&edited, &origin, area)?;
    if after != Some(action) {
        return Err(PolicyError::Invalid {
            origin,
            message: format!("setting `{area}` did not take (it reads back as {after:?})"),
        });
    }
    writable(&target)?;
    replace(&target, &edited)?;
    Ok(AreaChange {
        path: target,
        area: area.to_owned(),
        before,
        after: action,
        written: true,
    })
}

/// The action `[areas]` of `text` gives `area`, if it names it.
fn area_action(text: &str, origin: &str, area: &str) -> Result<Option<Action>, PolicyError> {
    let cfg = config::parse(text, origin)?;
    Ok(cfg
        .areas
        .iter()
        .find(|(k, _)| k.get_ref() == area)
        .map(|(_, a)| a.action))
}

/// Whether the config file at `path` can be changed in place; the error says why not.
///
/// Read-only mode bits count even for root; otherwise the file is opened for writing
/// (without changing it), which also finds read-only mounts (a Kubernetes ConfigMap).
pub fn writable(path: &Path) -> Result<(), PolicyError> {
    let not = |reason: String| PolicyError::NotWritable {
        path: path.to_path_buf(),
        reason,
    };
    let target = std::fs::canonicalize(path).map_err(|e| not(e.to_string()))?;
    let meta = std::fs::metadata(&target).map_err(|e| not(e.to_string()))?;
    if meta.permissions().readonly() {
        return Err(not(format!("the file is read-only ({})", mode(&meta))));
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&target)
        .map_err(|e| not(e.to_string()))?;
    Ok(())
}

#[cfg(unix)]
fn mode(meta: &std::fs::Metadata) -> String {
    use std::os::unix::fs::PermissionsExt as _;
    format!("mode {:04o}", meta.permissions().mode() & 0o7777)
}

#[cfg(not(unix))]
fn mode(_: &std::fs::Metadata) -> String {
    "read-only attribute".to_owned()
}

/// Replaces `target` with `text`: temporary file in the same folder, same permissions,
/// synced, renamed over it.
fn replace(target: &Path, text: &str) -> Result<(), PolicyError> {
    let not = |e: std::io::Error| PolicyError::NotWritable {
        path: target.to_path_buf(),
        reason: e.to_string(),
    };
    let dir = target.parent().unwrap_or(Path::new("."));
    let meta = std::fs::metadata(target).map_err(not)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".winsink-edit-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| PolicyError::NotWritable {
            path: target.to_path_buf(),
            reason: format!("cannot create a file in {}: {e}", dir.display()),
        })?;
    tmp.write_all(text.as_bytes()).map_err(not)?;
    tmp.as_file()
        .set_permissions(meta.permissions())
        .map_err(not)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        // Keep the owner when root edits someone else's file; without the right to,
        // the file becomes ours, as with any editor.
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    }
    tmp.as_file().sync_all().map_err(not)?;
    tmp.persist(target).map_err(|e| not(e.error))?;
    // The rename itself reaches the disk with the folder.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const CONFIG: &str = r#"# winsink configuration.
catalogs = ["builtin:windows11-enterprise"]
default_action = "log"

[areas]
# Diagnostic data is not sent.
diagnostic-data = "block"
# Store apps cannot be installed or updated.
microsoft-store = "log"   # audit for a week first
'windows-update' = "allow"

[server]
listen = ["127.0.0.1:5353"]  # loopback only
"#;

    fn set(text: &str, area: &str, action: Action) -> String {
        set_area_action(text, "t.toml", area, action).unwrap()
    }

    #[test]
    fn setting_an_area_changes_only_its_value() {
        let edited = set(CONFIG, "microsoft-store", Action::Block);
        assert_eq!(
            edited,
            CONFIG.replace(
                "microsoft-store = \"log\"   # audit",
                "microsoft-store = \"block\"   # audit"
            )
        );
        // A quoted key keeps its quotes.
        let edited = set(CONFIG, "windows-update", Action::Log);
        assert!(edited.contains("'windows-update' = \"log\"\n"), "{edited}");
    }

    #[test]
    fn the_shipped_config_changes_by_one_line() {
        let shipped = include_str!("../../../config/winsink.toml");
        let edited = set(shipped, "microsoft-store", Action::Block);
        let changed: Vec<_> = shipped
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            [("microsoft-store = \"log\"", "microsoft-store = \"block\"")]
        );
        assert_eq!(shipped.lines().count(), edited.lines().count());
    }

    #[test]
    fn the_table_form_keeps_its_acknowledgements() {
        let shipped = include_str!("../../../config/winsink.toml");
        let edited = set(shipped, "diagnostic-data", Action::Log);
        let changed: Vec<_> = shipped
            .lines()
            .zip(edited.lines())
            .filter(|(a, b)| a != b)
            .collect();
        assert_eq!(
            changed,
            [(
                "diagnostic-data = { action = \"block\", acknowledge_shared = [\"self.events.data.microsoft.com\"] }",
                "diagnostic-data = { action = \"log\", acknowledge_shared = [\"self.events.data.microsoft.com\"] }"
            )]
        );
        assert_eq!(
            area_action(&edited, "x", "diagnostic-data").unwrap(),
            Some(Action::Log)
        );
    }

    #[test]
    fn an_area_not_named_is_added_to_areas() {
        let edited = set(CONFIG, "xbox-live", Action::Block);
        assert_eq!(
            edited,
            CONFIG.replace(
                "'windows-update' = \"allow\"\n",
                "'windows-update' = \"allow\"\nxbox-live = \"block\"\n"
            )
        );
    }

    #[test]
    fn a_file_without_areas_gets_the_table() {
        let text = "# mine\ndefault_action = \"log\"\n\n[server]\nlisten = []\n";
        let edited = set(text, "maps", Action::Block);
        assert_eq!(
            area_action(&edited, "t", "maps").unwrap(),
            Some(Action::Block)
        );
        assert!(edited.starts_with("# mine\ndefault_action = \"log\"\n\n[server]\nlisten = []\n"));
        // An inline table stays inline.
        let edited = set(
            "areas = { maps = \"log\" } # inline\n",
            "maps",
            Action::Allow,
        );
        assert_eq!(edited, "areas = { maps = \"allow\" } # inline\n");
    }

    #[test]
    fn areas_that_is_not_a_table_is_an_error_not_a_rewrite() {
        let e = set_area_action("areas = 3\n", "t.toml", "maps", Action::Block).unwrap_err();
        assert_eq!(
            e.to_string(),
            "t.toml: `areas` is not a table; cannot set an area's action in it"
        );
        let e = set_area_action(
            "[areas]\nmaps = { a = 1 }\n",
            "t.toml",
            "maps",
            Action::Block,
        )
        .unwrap_err();
        assert_eq!(e.to_string(), "t.toml: `areas.maps` is not an action word");
        let e = set_area_action("[areas\n", "t.toml", "maps", Action::Block).unwrap_err();
        assert!(e.to_string().starts_with("t.toml:1:"), "{e}");
    }

    fn policy() -> Policy {
        Policy::from_config_str(CONFIG, Path::new("."), "t.toml")
            .unwrap()
            .policy
    }

    #[test]
    fn a_file_is_replaced_with_the_edit_and_keeps_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("winsink.toml");
        std::fs::write(&path, CONFIG).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        let change =
            change_area_action(&path, &policy(), "microsoft-store", Action::Block).unwrap();
        assert_eq!(
            (change.before, change.after, change.written),
            (Some(Action::Log), Action::Block, true)
        );
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, set(CONFIG, "microsoft-store", Action::Block));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["winsink.toml"]);
        // Setting what the file already says writes nothing.
        let again = change_area_action(&path, &policy(), "microsoft-store", Action::Block).unwrap();
        assert!(!again.written);
    }

    #[test]
    fn a_symlinked_config_stays_a_symlink() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real.toml");
        let link = dir.path().join("winsink.toml");
        std::fs::write(&real, CONFIG).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();
        change_area_action(&link, &policy(), "maps", Action::Block).unwrap();
        assert!(std::fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
        let text = std::fs::read_to_string(&real).unwrap();
        assert_eq!(
            area_action(&text, "t", "maps").unwrap(),
            Some(Action::Block)
        );
    }

    #[test]
    fn an_unknown_area_is_refused_with_the_closest_id() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("winsink.toml");
        std::fs::write(&path, CONFIG).unwrap();
        let e = change_area_action(&path, &policy(), "microsoft-stor", Action::Block)
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "no catalog area has the id `microsoft-stor` (did you mean `microsoft-store`?)"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG);
    }

    #[test]
    fn a_read_only_config_is_not_writable_and_is_left_alone() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("winsink.toml");
        std::fs::write(&path, CONFIG).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        let reason = writable(&path).unwrap_err().to_string();
        assert_eq!(
            reason,
            format!(
                "cannot change {}: the file is read-only (mode 0444)",
                path.display()
            )
        );
        let e = change_area_action(&path, &policy(), "maps", Action::Block).unwrap_err();
        assert_eq!(e.to_string(), reason);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), CONFIG);
        let missing = dir.path().join("gone.toml");
        assert!(writable(&missing).is_err());
    }
}
