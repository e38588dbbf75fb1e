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
