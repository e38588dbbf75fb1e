//! The app's own settings, kept beside the core's files as `app-settings.json`.
//!
//! "Start at login" is not stored here: the OS autostart entry (managed by
//! tauri-plugin-autostart) is the truth, so the toggle always shows what will happen.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{CommandError, CommandResult};

const FILE_NAME: &str = "app-settings.json";

/// What the settings screen shows and changes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settings {
    /// Start the app (hidden, in the tray) when the user logs in.
    #[serde(default)]
    pub start_at_login: bool,
    /// Show a desktop notification when a request arrives while the window is in the background.
    #[serde(default = "yes")]
    pub notifications: bool,
}

fn yes() -> bool {
    true
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            start_at_login: false,
            notifications: true,
        }
    }
}

/// Where the settings live.
pub(crate) fn path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// Reads the settings; a missing file means the defaults.
pub(crate) fn load(path: &Path) -> CommandResult<Settings> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|err| CommandError::internal("reading settings", err)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
        Err(err) => Err(CommandError::internal("reading settings", err)),
    }
}

/// Writes the settings (to a temporary file first, so a crash never leaves half a file).
pub(crate) fn save(path: &Path, settings: &Settings) -> CommandResult<()> {
    let json = serde_json::to_vec_pretty(settings).map_err(|err| CommandError::internal("writing settings", err))?;
    let tmp = path.with_extension("json.tmp");
    std::fs::write(&tmp, json).map_err(|err| CommandError::internal("writing settings", err))?;
    std::fs::rename(&tmp, path).map_err(|err| CommandError::internal("writing settings", err))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_file_is_defaults_and_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let file = path(dir.path());
        assert_eq!(load(&file).unwrap(), Settings::default());
        let changed = Settings {
            start_at_login: true,
            notifications: false,
        };
        save(&file, &changed).unwrap();
        assert_eq!(load(&file).unwrap(), changed);
    }
}
