//! What the app says on its session bus, as a desktop would see it: `dbus-monitor` on the GUI
//! test's private session, its output parsed into messages. It watches the desktop notifications
//! (`org.freedesktop.Notifications.Notify`) and the tray icon (the AppIndicator's
//! `org.kde.StatusNotifierItem` signals carry its label).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::time::Instant;

use crate::webdriver::Killed;

/// The match rules: notifications, and the tray icon's label.
const RULES: [&str; 2] = [
    "interface='org.freedesktop.Notifications'",
    "interface='org.kde.StatusNotifierItem'",
];

/// One message as `dbus-monitor` prints it: the header line and the arguments, each as printed
/// (`string "..."`, `uint32 0`, nested containers flattened to their lines).
#[derive(Clone, Debug)]
pub struct Message {
    pub header: String,
    pub args: Vec<String>,
}

impl Message {
    /// Whether it is the method call or signal `member`.
    pub fn is(&self, member: &str) -> bool {
        self.header.contains(&format!("member={member}"))
    }

    /// The string arguments (also those inside variants and containers), unquoted, in order.
    pub fn strings(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|arg| arg.find("string \"").map(|at| &arg[at + 8..]))
            .map(|rest| rest.strip_suffix('"').unwrap_or(rest).to_owned())
            .collect()
    }
}

/// A running `dbus-monitor`, killed on drop.
pub struct Monitor {
    log: PathBuf,
    _dir: tempfile::TempDir,
    _process: Killed,
}

impl Monitor {
    /// Starts monitoring the bus at `address` and waits until the monitor is in place (it prints
    /// the `NameAcquired` it gets first).
    pub async fn start(address: &str) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let log = dir.path().join("monitor.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new("dbus-monitor")
            .arg("--address")
            .arg(address)
            .args(RULES)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::null())
            .spawn()
            .context("starting dbus-monitor")?;
        let monitor = Self {
            log,
            _dir: dir,
            _process: Killed::new(child),
        };
        monitor
            .wait_for("dbus-monitor to start", Duration::from_secs(20), |messages| {
                messages.iter().any(|m| m.is("NameAcquired")).then_some(())
            })
            .await?;
        Ok(monitor)
    }

    /// Everything seen so far.
    pub fn messages(&self) -> Result<Vec<Message>> {
        let text = std::fs::read_to_string(&self.log)?;
        Ok(parse(&text))
    }

    /// Waits until `found` picks something out of the messages seen so far.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        timeout: Duration,
        found: impl Fn(&[Message]) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages()?;
            if let Some(value) = found(&messages) {
                return Ok(value);
            }
            if Instant::now() > deadline {
                let seen: Vec<&str> = messages.iter().map(|m| m.header.as_str()).collect();
                bail!("{what}: not on the bus within {timeout:?}; seen: {seen:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// `dbus-monitor`'s default output: a header line per message, its arguments indented below.
fn parse(text: &str) -> Vec<Message> {
    let mut messages: Vec<Message> = Vec::new();
    for line in text.lines() {
        if line.starts_with(' ') {
            if let Some(last) = messages.last_mut() {
                last.args.push(line.trim().to_owned());
            }
        } else if !line.is_empty() {
            messages.push(Message {
                header: line.to_owned(),
                args: Vec::new(),
            });
        }
    }
    messages
}

/// The tray icon as a panel reads it: the AppIndicator's `org.kde.StatusNotifierItem` object
/// (its `XAyatanaLabel`, the count beside the icon) and its `com.canonical.dbusmenu` menu,
/// called with `gdbus`. libayatana-appindicator exports both on the session bus even when
/// no StatusNotifierWatcher runs. It has no `ToolTip` property: a tooltip is not shown on Linux.
pub struct Tray {
    address: String,
    sender: String,
    path: String,
}

impl Tray {
    /// The tray icon that sent the last `org.kde.StatusNotifierItem` signal in `messages`.
    pub fn find(address: &str, messages: &[Message]) -> Result<Self> {
        let signal = messages
            .iter()
            .rev()
            .find(|m| m.header.contains("interface=org.kde.StatusNotifierItem;"))
            .context("no signal from a tray icon on the bus")?;
        let field = |key| header_field(&signal.header, key).with_context(|| format!("no {key} in {}", signal.header));
        Ok(Self {
            address: address.to_owned(),
            sender: field("sender")?.to_owned(),
            path: field("path")?.to_owned(),
        })
    }

    fn property(&self, name: &str) -> Result<String> {
        call(
            &self.address,
            &self.sender,
            &self.path,
            "org.freedesktop.DBus.Properties.Get",
            &["org.kde.StatusNotifierItem", name],
        )
    }

    /// The label shown beside the icon (`XAyatanaLabel`).
    pub fn label(&self) -> Result<String> {
        let reply = self.property("XAyatanaLabel")?;
        // (<'1'>,)
        Ok(quoted_strings(&reply).into_iter().next().unwrap_or_default())
    }

    /// The labels of the menu's entries, in order (separators have none).
    pub fn menu(&self) -> Result<Vec<String>> {
        let reply = self.property("Menu")?;
        // (<objectpath '/org/ayatana/NotificationItem/.../Menu'>,)
        let menu = quoted_strings(&reply)
            .into_iter()
            .next()
            .with_context(|| format!("no menu path in {reply}"))?;
        let layout = call(
            &self.address,
            &self.sender,
            &menu,
            "com.canonical.dbusmenu.GetLayout",
            &["0", "-1", "[]"],
        )?;
        // (uint32 2, (0, {...}, [<(2, {'label': <'1 pending request'>}, @av [])>, ...]))
        Ok(layout
            .split("'label': <")
            .skip(1)
            .filter_map(|rest| quoted_strings(rest).into_iter().next())
            .collect())
    }

    /// Waits until the menu's entries are `entries`.
    pub async fn wait_for_menu(&self, timeout: Duration, entries: &[&str]) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let menu = self.menu()?;
            if menu == entries {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the tray menu is {menu:?}, not {entries:?}, after {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The single-quoted strings in GVariant text, in order (`\'` unescaped).
fn quoted_strings(text: &str) -> Vec<String> {
    let mut strings = Vec::new();
    let mut chars = text.chars();
    while chars.by_ref().any(|c| c == '\'') {
        let mut string = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => string.extend(chars.next()),
                '\'' => break,
                c => string.push(c),
            }
        }
        strings.push(string);
    }
    strings
}

/// Calls `method` (`interface.Member`) with `args` (GVariant text) on `path` of `dest` on the bus
/// at `address` with `gdbus`, and returns the reply as gdbus prints it (GVariant text).
fn call(address: &str, dest: &str, path: &str, method: &str, args: &[&str]) -> Result<String> {
    let output = Command::new("gdbus")
        .args(["call", "--address", address, "--dest", dest, "--object-path", path])
        .args(["--method", method, "--timeout", "10", "--"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running gdbus (Debian: libglib2.0-bin)")?;
    if !output.status.success() {
        bail!(
            "gdbus call {method} on {dest} {path}: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// The value after `key=` in a `dbus-monitor` header line (`sender=:1.5`, `path=/a/b;`).
fn header_field<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    header
        .split_whitespace()
        .find_map(|word| word.strip_prefix(key)?.strip_prefix('='))
        .map(|value| value.trim_end_matches(';'))
}
