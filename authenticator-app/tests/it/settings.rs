//! The settings screen's commands on the mock runtime, each test in a process of its own with
//! its own `HOME` ([`in_own_home`]): "start at login" writes the XDG autostart entry there.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::{in_own_home, MockApp};

/// The entry tauri-plugin-autostart (auto-launch) writes on Linux: `$HOME/.config/autostart`
/// (it ignores `XDG_CONFIG_HOME`), named after the product name in tauri.conf.json.
fn autostart_entry(home: &Path) -> std::path::PathBuf {
    home.join(".config/autostart/Outband Authenticator.desktop")
}

fn settings(start_at_login: bool, notifications: bool) -> Value {
    json!({"settings": {"start_at_login": start_at_login, "notifications": notifications}})
}

#[test]
fn start_at_login_writes_the_autostart_entry_and_removes_it() {
    in_own_home(
        "settings::start_at_login_writes_the_autostart_entry_and_removes_it",
        |home| async move {
            let dir = tempfile::tempdir().unwrap();
            let entry = autostart_entry(&home);
            let app = MockApp::new(dir.path());
            assert_eq!(
                app.call("get_settings", json!({})).await.unwrap()["start_at_login"],
                false
            );
            assert!(!entry.exists());

            let now = app.call("set_settings", settings(true, true)).await.unwrap();
            assert_eq!(now["start_at_login"], true, "{now}");
            let text = std::fs::read_to_string(&entry)
                .unwrap_or_else(|err| panic!("no autostart entry at {}: {err}", entry.display()));
            assert!(text.starts_with("[Desktop Entry]\n"), "{text}");
            assert!(text.lines().any(|line| line == "Type=Application"), "{text}");
            // It starts this very program, hidden in the tray.
            let exec = text
                .lines()
                .find_map(|line| line.strip_prefix("Exec="))
                .unwrap_or_else(|| panic!("no Exec line: {text}"));
            let exe = std::env::current_exe().unwrap();
            assert_eq!(exec, format!("{} --minimized", exe.display()));

            // The toggle shows what the OS has, also after a restart.
            drop(app);
            let app = MockApp::new(dir.path());
            assert_eq!(
                app.call("get_settings", json!({})).await.unwrap()["start_at_login"],
                true
            );
            // Changing another setting leaves the entry alone.
            app.call("set_settings", settings(true, false)).await.unwrap();
            assert!(entry.exists());

            let now = app.call("set_settings", settings(false, false)).await.unwrap();
            assert_eq!(now["start_at_login"], false, "{now}");
            assert!(!entry.exists(), "the autostart entry is still there");
            assert_eq!(
                app.call("get_settings", json!({})).await.unwrap()["start_at_login"],
                false
            );
        },
    );
}

#[test]
fn the_notifications_setting_is_kept() {
    in_own_home("settings::the_notifications_setting_is_kept", |home| async move {
        let dir = tempfile::tempdir().unwrap();
        {
            let app = MockApp::new(dir.path());
            let now = app.call("set_settings", settings(false, false)).await.unwrap();
            assert_eq!(now["notifications"], false);
        }
        let app = MockApp::new(dir.path());
        let now = app.call("get_settings", json!({})).await.unwrap();
        assert_eq!(now["notifications"], false);
        assert_eq!(now["start_at_login"], false);
        assert!(!autostart_entry(&home).exists());
    });
}
