//! "Start at login" on Linux. tauri-plugin-autostart (auto-launch) writes the XDG autostart
//! entry `$HOME/.config/autostart/<product name>.desktop` with `Exec=<program> --minimized`,
//! the program's path unquoted: a path with a space (or any character the Desktop Entry
//! spec reserves) starts nothing at login. Right after the plugin writes the entry,
//! [`quote_exec`] rewrites that line with the path quoted as the spec's "The Exec key" says.

use std::path::{Path, PathBuf};

use tauri::{AppHandle, Manager, Runtime};

use crate::MINIMIZED_ARG;

/// The entry the plugin writes (it ignores `XDG_CONFIG_HOME`).
fn entry_path<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<PathBuf> {
    Ok(app
        .path()
        .home_dir()?
        .join(".config")
        .join("autostart")
        .join(format!("{}.desktop", app.package_info().name)))
}

/// The program the plugin starts: the AppImage when running from one, else this executable.
fn program<R: Runtime>(app: &AppHandle<R>) -> std::io::Result<PathBuf> {
    match app.env().appimage {
        Some(appimage) => Ok(appimage.into()),
        None => std::env::current_exe(),
    }
}

/// Rewrites the `Exec=` line of the autostart entry with the program's path quoted.
pub(crate) fn quote_exec<R: Runtime>(app: &AppHandle<R>) -> Result<(), String> {
    let entry = entry_path(app).map_err(|err| format!("no home directory: {err}"))?;
    let program = program(app).map_err(|err| format!("cannot find this program: {err}"))?;
    rewrite_exec(&entry, &program).map_err(|err| format!("cannot write {}: {err}", entry.display()))
}

fn rewrite_exec(entry: &Path, program: &Path) -> std::io::Result<()> {
    let text = std::fs::read_to_string(entry)?;
    let exec = format!("Exec={}", exec_line(program));
    let mut lines: Vec<&str> = text.lines().collect();
    match lines.iter_mut().find(|line| line.starts_with("Exec=")) {
        Some(line) => *line = &exec,
        None => lines.push(&exec),
    }
    let mut rewritten = lines.join("\n");
    rewritten.push('\n');
    let temp = entry.with_extension("desktop.tmp");
    std::fs::write(&temp, rewritten)?;
    std::fs::rename(&temp, entry)
}

/// The value of `Exec=` that starts `program --minimized`.
fn exec_line(program: &Path) -> String {
    let program = program.to_string_lossy();
    desktop_string(&format!("{} {MINIMIZED_ARG}", exec_arg(&program)))
}

/// Characters that make the spec require quotes around an argument.
const RESERVED: &[char] = &[
    ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')', '`',
];

/// One argument of an Exec key: `%` doubled (no field code), and in double quotes with `"`,
/// `` ` ``, `$` and `\` backslash-escaped when it has a reserved character (or is empty).
fn exec_arg(arg: &str) -> String {
    let arg = arg.replace('%', "%%");
    if !arg.is_empty() && !arg.contains(RESERVED) {
        return arg;
    }
    let mut quoted = String::with_capacity(arg.len() + 2);
    quoted.push('"');
    for c in arg.chars() {
        if matches!(c, '"' | '`' | '$' | '\\') {
            quoted.push('\\');
        }
        quoted.push(c);
    }
    quoted.push('"');
    quoted
}

/// A value of type string in a desktop entry: backslash, newline, tab and carriage return
/// escaped (readers undo this before they apply the Exec quoting rules).
fn desktop_string(value: &str) -> String {
    let mut escaped = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '\n' => escaped.push_str("\\n"),
            '\t' => escaped.push_str("\\t"),
            '\r' => escaped.push_str("\\r"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_quoted_as_the_desktop_entry_spec_says() {
        assert_eq!(
            exec_line(Path::new("/usr/bin/outband-authenticator")),
            "/usr/bin/outband-authenticator --minimized"
        );
        assert_eq!(
            exec_line(Path::new("/home/a b/Outband Authenticator")),
            "\"/home/a b/Outband Authenticator\" --minimized"
        );
        // `$` and `"` escaped for the Exec rules; the backslash that escapes them doubled
        // again as a string value (the spec: four backslashes for one literal backslash).
        assert_eq!(exec_line(Path::new("/opt/$x")), "\"/opt/\\\\$x\" --minimized");
        assert_eq!(exec_line(Path::new("/opt/a\\b")), "\"/opt/a\\\\\\\\b\" --minimized");
        assert_eq!(exec_line(Path::new("/opt/100%")), "/opt/100%% --minimized");
        assert_eq!(exec_line(Path::new("/opt/a\tb")), "\"/opt/a\\tb\" --minimized");
    }

    #[test]
    fn only_the_exec_line_changes() {
        let dir = tempfile::tempdir().unwrap();
        let entry = dir.path().join("x.desktop");
        std::fs::write(
            &entry,
            "[Desktop Entry]\nType=Application\nExec=/a b/c --minimized\nTerminal=false",
        )
        .unwrap();
        rewrite_exec(&entry, Path::new("/a b/c")).unwrap();
        assert_eq!(
            std::fs::read_to_string(&entry).unwrap(),
            "[Desktop Entry]\nType=Application\nExec=\"/a b/c\" --minimized\nTerminal=false\n"
        );
    }
}
