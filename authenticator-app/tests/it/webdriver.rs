//! Just enough of a W3C WebDriver client (plain HTTP through reqwest), a headless X server and
//! WebKitWebDriver, to drive the real app the way tauri-driver does on Linux: the session's
//! `webkitgtk:browserOptions` name our binary, and `TAURI_WEBVIEW_AUTOMATION=true` lets WebKitGTK
//! be automated. Every process is killed on drop; every wait has a deadline.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};
use tokio::time::Instant;

/// The key of an element reference in WebDriver answers.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Kills the child process when dropped. A child that leads its own process group (see
/// [`own_group`]) is killed with its whole group: WebKitWebDriver, the D-Bus daemon and the app
/// are grandchildren of `dbus-run-session` and would outlive it.
pub struct Killed {
    child: Child,
    group: bool,
}

impl Killed {
    pub fn new(child: Child) -> Self {
        Self { child, group: false }
    }

    pub fn group(child: Child) -> Self {
        Self { child, group: true }
    }
}

impl Drop for Killed {
    fn drop(&mut self) {
        if self.group {
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.child.id())])
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `command`'s process the leader of a new process group, for [`Killed::group`].
fn own_group(command: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt as _;
    command.process_group(0)
}

/// Whether `program` is on PATH.
fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// The programs the GUI test needs, with the Debian package of each (`cargo xtask setup` installs them).
pub const GUI_PROGRAMS: [(&str, &str); 6] = [
    ("Xvfb", "xvfb"),
    ("WebKitWebDriver", "webkit2gtk-driver"),
    ("dbus-run-session", "dbus-daemon"),
    ("dbus-monitor", "dbus-bin"),
    ("gdbus", "libglib2.0-bin"),
    ("xdotool", "xdotool"),
];

/// The missing ones among [`GUI_PROGRAMS`], as "program (package)".
pub fn missing_gui_programs() -> Vec<String> {
    GUI_PROGRAMS
        .iter()
        .filter(|(program, _)| !on_path(program))
        .map(|(program, package)| format!("{program} (Debian package {package})"))
        .collect()
}

/// A fresh Xvfb on a free display it picks itself: never the `$DISPLAY` the tests run under.
pub struct Display {
    pub name: String,
    _xvfb: Killed,
}

impl Display {
    pub fn start() -> Result<Self> {
        // -displayfd 1: Xvfb picks a free display and prints its number once it accepts clients.
        let mut child = Command::new("Xvfb")
            .args(["-displayfd", "1", "-screen", "0", "1280x900x24", "-nolisten", "tcp"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Xvfb")?;
        let stdout = child.stdout.take().context("Xvfb stdout")?;
        let xvfb = Killed::new(child);
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .context("Xvfb did not report a display within 20 s")?;
        let number: u32 = line.trim().parse().with_context(|| format!("Xvfb printed {line:?}"))?;
        Ok(Self {
            name: format!(":{number}"),
            _xvfb: xvfb,
        })
    }
}

/// A free TCP port on 127.0.0.1 (free when asked; the driver binds it right after).
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// A running WebKitWebDriver.
pub struct Driver {
    pub base: String,
    /// The address of its private D-Bus session (the app's session bus), for `dbus-monitor`.
    pub bus_address: String,
    http: reqwest::Client,
    _process: Killed,
}

impl Driver {
    /// Starts WebKitWebDriver inside its own D-Bus session (so notifications and the
    /// single-instance lock never touch the user's session) with `envs`, which the app it
    /// launches inherits.
    pub async fn start(envs: &[(&str, &str)]) -> Result<Self> {
        let port = free_port()?;
        // The session's address is written (whole, by a rename) where the test can read it.
        let dir = tempfile::tempdir()?;
        let address_file = dir.path().join("bus-address");
        let mut command = Command::new("dbus-run-session");
        own_group(&mut command)
            .args([
                "--",
                "sh",
                "-c",
                r#"printf %s "$DBUS_SESSION_BUS_ADDRESS" > "$0.tmp" && mv "$0.tmp" "$0" && exec WebKitWebDriver "$@""#,
            ])
            .arg(&address_file)
            .arg(format!("--port={port}"))
            .arg("--host=127.0.0.1")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        let process = Killed::group(command.spawn().context("starting WebKitWebDriver")?);
        let deadline = Instant::now() + Duration::from_secs(20);
        let bus_address = loop {
            if let Ok(address) = std::fs::read_to_string(&address_file) {
                break address;
            }
            if Instant::now() > deadline {
                bail!("dbus-run-session did not start a session bus within 20 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        let driver = Self {
            base: format!("http://127.0.0.1:{port}"),
            bus_address,
            http: reqwest::Client::new(),
            _process: process,
        };
        loop {
            if let Ok(reply) = driver.http.get(format!("{}/status", driver.base)).send().await {
                if reply.status().is_success() {
                    return Ok(driver);
                }
            }
            if Instant::now() > deadline {
                bail!("WebKitWebDriver did not answer on {} within 20 s", driver.base);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Launches `binary` and opens a session on its webview.
    pub async fn session(&self, binary: &Path, args: &[&str]) -> Result<Session> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "webkitgtk:browserOptions": {"binary": binary, "args": args},
                }
            }
        });
        let value = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(capabilities),
        )
        .await
        .context("creating the WebDriver session (launching the app)")?;
        let id = value["sessionId"].as_str().context("no sessionId")?.to_owned();
        Ok(Session {
            url: format!("{}/session/{id}", self.base),
            http: self.http.clone(),
        })
    }
}

async fn call(http: &reqwest::Client, method: reqwest::Method, url: &str, body: Option<Value>) -> Result<Value> {
    let mut request = http.request(method.clone(), url).timeout(Duration::from_secs(60));
    if let Some(body) = body {
        request = request.json(&body);
    } else if method == reqwest::Method::POST {
        request = request.json(&json!({}));
    }
    let reply = request.send().await.with_context(|| format!("{method} {url}"))?;
    let status = reply.status();
    let json: Value = reply
        .json()
        .await
        .with_context(|| format!("{method} {url}: not JSON"))?;
    if !status.is_success() {
        bail!("{method} {url}: {status}: {}", json["value"]);
    }
    Ok(json["value"].clone())
}

/// A WebDriver session on the app's webview.
pub struct Session {
    url: String,
    http: reqwest::Client,
}

/// A reference to an element of the page.
#[derive(Clone)]
pub struct Element(String);

impl Session {
    async fn post(&self, path: &str, body: Value) -> Result<Value> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.url),
            Some(body),
        )
        .await
    }

    async fn get(&self, path: &str) -> Result<Value> {
        call(&self.http, reqwest::Method::GET, &format!("{}{path}", self.url), None).await
    }

    /// Runs `script` (a function body; `arguments` are `args`) in the page and returns its value.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({"script": script, "args": args}))
            .await
    }

    /// Waits until `script` returns something truthy (not null/false/""), and returns it.
    pub async fn wait_for(&self, what: &str, timeout: Duration, script: &str) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let value = self.execute(script, vec![]).await?;
            let truthy = !matches!(&value, Value::Null | Value::Bool(false)) && value != json!("");
            if truthy {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("timed out after {timeout:?} waiting for {what}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The element that `css` selects.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let value = self
            .post("/element", json!({"using": "css selector", "value": css}))
            .await
            .with_context(|| format!("finding {css}"))?;
        let id = value[ELEMENT_KEY]
            .as_str()
            .ok_or_else(|| anyhow!("finding {css}: no element in {value}"))?;
        Ok(Element(id.to_owned()))
    }

    /// Types `text` into the element `css` selects (it gets the focus first, as a user's click would).
    pub async fn type_into(&self, css: &str, text: &str) -> Result<()> {
        let element = self.find(css).await?;
        self.post(&format!("/element/{}/click", element.0), json!({})).await?;
        self.post(&format!("/element/{}/clear", element.0), json!({})).await?;
        self.post(&format!("/element/{}/value", element.0), json!({"text": text}))
            .await
            .with_context(|| format!("typing into {css}"))?;
        Ok(())
    }

    /// Clicks the element `css` selects.
    pub async fn click(&self, css: &str) -> Result<()> {
        let element = self.find(css).await?;
        self.post(&format!("/element/{}/click", element.0), json!({}))
            .await
            .with_context(|| format!("clicking {css}"))?;
        Ok(())
    }

    /// The rendered text of the element `css` selects.
    pub async fn text(&self, css: &str) -> Result<String> {
        let element = self.find(css).await?;
        let value = self.get(&format!("/element/{}/text", element.0)).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// A PNG of the window's content.
    pub async fn screenshot(&self) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let value = self.get("/screenshot").await?;
        let data = value.as_str().context("screenshot is not a string")?;
        Ok(base64::engine::general_purpose::STANDARD.decode(data)?)
    }

    /// Ends the session (WebKitWebDriver closes the app).
    pub async fn close(self) -> Result<()> {
        call(&self.http, reqwest::Method::DELETE, &self.url, None)
            .await
            .map(|_| ())
    }
}
