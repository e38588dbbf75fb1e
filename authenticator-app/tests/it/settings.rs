//! The settings screen's commands on the mock runtime, each test in a process of its own with
//! its own `HOME` ([`in_own_home`]): "start at login" writes the XDG autostart entry there.

use std::path::Path;

use serde_json::{json, Value};

use crate::support::{in_own_home, in_own_home_from, MockApp};

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

/// The words of an `Exec=` value, unquoted as the Desktop Entry spec says (string escapes
/// first, then double quotes with `\` escapes), as a launcher splits them.
fn exec_words(value: &str) -> Vec<String> {
    let mut unescaped = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            unescaped.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => unescaped.push(' '),
            Some('n') => unescaped.push('\n'),
            Some('t') => unescaped.push('\t'),
            Some('r') => unescaped.push('\r'),
            Some(other) => unescaped.push(other),
            None => panic!("a lone backslash in {value:?}"),
        }
    }
    let (mut words, mut word, mut quoted, mut started) = (Vec::new(), String::new(), false, false);
    let mut chars = unescaped.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            '\\' if quoted => word.push(chars.next().expect("an escape at the end")),
            ' ' if !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    assert!(!quoted, "an unclosed quote in {value:?}");
    if started {
        words.push(word);
    }
    words
}

#[test]
fn start_at_login_quotes_a_program_path_with_a_space() {
    in_own_home_from(
        "settings::start_at_login_quotes_a_program_path_with_a_space",
        Some("Outband test dir"),
        |home| async move {
            let exe = std::env::current_exe().unwrap();
            assert!(exe.to_string_lossy().contains(' '), "{}", exe.display());
            let dir = tempfile::tempdir().unwrap();
            let app = MockApp::new(dir.path());
            let now = app.call("set_settings", settings(true, true)).await.unwrap();
            assert_eq!(now["start_at_login"], true, "{now}");
            let text = std::fs::read_to_string(autostart_entry(&home)).unwrap();
            let exec = text
                .lines()
                .find_map(|line| line.strip_prefix("Exec="))
                .unwrap_or_else(|| panic!("no Exec line: {text}"));
            assert_eq!(exec, format!("\"{}\" --minimized", exe.display()));
            // What a launcher runs: this program (its path with the space) and --minimized.
            assert_eq!(
                exec_words(exec),
                vec![exe.to_string_lossy().into_owned(), "--minimized".to_owned()]
            );
            assert_eq!(
                text.lines().filter(|line| line.starts_with("Exec=")).count(),
                1,
                "{text}"
            );
            assert!(text.lines().any(|line| line == "Type=Application"), "{text}");
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
