//! # outband-e2e
//!
//! The whole system as a user runs it: the real `outband-server`,
//! `outband-device` and `outband-pos` binaries as separate processes talking
//! HTTP on 127.0.0.1. Each test gets its own server on a free port, with its own
//! data directory and a fresh database on the backend `OUTBAND_TEST_BACKEND`
//! names (a SQLite file, or a new PostgreSQL database on `DATABASE_URL`).
//!
//! The binaries are built once per test process (`cargo build --bins` of the
//! three packages: a no-op when the workspace build is fresh). Every child
//! process is killed when its guard drops, so a failing test leaves nothing
//! running; its output goes to a log file in the test's directory, which
//! failures print.
//!
//! This is test code: it panics instead of returning errors.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

/// The PIN every test authenticator is enrolled with.
pub const PIN: &str = "482916";
/// The demo user whose device approves or denies.
pub const CUSTOMER: &str = "alice";
/// Her e-mail address: the POS's `login_hint`.
pub const CUSTOMER_EMAIL: &str = "alice@example.com";
/// The secret of every CIBA client in [`Server::start`]'s configuration.
pub const CLIENT_SECRET: &str = "e2e-secret-0123456789";
/// How long anything may take to become ready before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Where the three binaries are.
pub struct Binaries {
    pub server: PathBuf,
    pub device: PathBuf,
    pub pos: PathBuf,
}

/// Builds the binaries once per test process and returns their paths.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "--quiet", "--bins"])
            .args(["-p", "outband-server", "-p", "outband-terminal", "-p", "outband-authenticator-core"])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
        // The test binary is target/<profile>/deps/<name>; the binaries are in target/<profile>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe.parent().and_then(Path::parent).expect("target/<profile>").to_path_buf();
        let bin = |name: &str| {
            let path = dir.join(name);
            assert!(path.exists(), "{} was not built", path.display());
            path
        };
        Binaries {
            server: bin("outband-server"),
            device: bin("outband-device"),
            pos: bin("outband-pos"),
        }
    })
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding a free port")
        .port()
}

/// A child process killed (SIGKILL) when dropped.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let out = File::options().create(true).append(true).open(log).expect("opening a log file");
        let err = out.try_clone().expect("cloning a log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {command:?}: {err}"));
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("polling a child process")
    }

    /// `kill -9`, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `outband-server serve` process with its data directory.
pub struct Server {
    pub dir: tempfile::TempDir,
    pub issuer: String,
    /// Where the ping and push clients' notifications go (the POS listens there).
    pub notify_port: u16,
    config: PathBuf,
    process: Option<Running>,
}

impl Server {
    /// Starts a server with three CIBA clients, `pos-poll`, `pos-ping` and
    /// `pos-push` (client_secret_basic, [`CLIENT_SECRET`]), a user `alice`,
    /// and `extra_toml` appended to the configuration; waits until it is ready.
    pub async fn start(extra_toml: &str) -> Self {
        binaries();
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = free_port();
        let notify_port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let database_url = outband_server::store::testing::fresh_database_url().await;
        let notify = format!("http://127.0.0.1:{notify_port}/ciba/notify");
        let config = dir.path().join("outband.toml");
        let text = format!(
            r#"
issuer = "{issuer}"
listen = "127.0.0.1:{port}"
database_url = "{database_url}"
key_file = "{key}"
environment = "development"

[outbound]
allow_insecure_http_loopback = true
allow_private = ["127.0.0.1/32"]

{poll}
{ping}
{push}

[[users]]
username = "{CUSTOMER}"
email = "{CUSTOMER_EMAIL}"
name = "Alice Example"
{extra_toml}
"#,
            key = dir.path().join("outband.key").display(),
            poll = ciba_client("pos-poll", "poll", None),
            ping = ciba_client("pos-ping", "ping", Some(&notify)),
            push = ciba_client("pos-push", "push", Some(&notify)),
        );
        std::fs::write(&config, text).expect("writing the server configuration");
        let mut server = Self {
            dir,
            issuer,
            notify_port,
            config,
            process: None,
        };
        server.spawn().await;
        server
    }

    async fn spawn(&mut self) {
        let mut command = Command::new(&binaries().server);
        command
            .args(["--config", path_str(&self.config), "serve"])
            .env_remove("OUTBAND_CONFIG")
            .env("RUST_LOG", "info");
        let log = self.dir.path().join("server.log");
        self.process = Some(Running::spawn(command, &log));
        self.wait_ready().await;
    }

    async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.issuer);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.process.as_mut().and_then(Running::exited) {
                panic!("the server exited ({status}):\n{}", self.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the server was not ready within {READY_WITHIN:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `kill -9` the server and start it again on the same port and database.
    pub async fn crash_and_restart(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
        self.spawn().await;
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `outband-server --config <this server's> <args>`: an admin command.
    pub fn admin(&self, args: &[&str]) -> Output {
        Command::new(&binaries().server)
            .args(["--config", path_str(&self.config)])
            .args(args)
            .env_remove("OUTBAND_CONFIG")
            .output()
            .expect("running outband-server")
    }

    /// An enrollment link for `user`'s authenticator.
    pub fn invite(&self, user: &str) -> String {
        let out = self.admin(&["--json", "users", "invite", user]);
        assert!(out.status.success(), "users invite: {}", String::from_utf8_lossy(&out.stderr));
        let invite: Value = serde_json::from_slice(&out.stdout).expect("users invite --json prints JSON");
        invite["link"].as_str().expect("the invite's link").to_owned()
    }

    /// `outband-pos` pointed at this server as `client_id`, with its own data directory.
    pub fn pos(&self, client_id: &str) -> Command {
        let mut command = Command::new(&binaries().pos);
        command
            .args(["--issuer", &self.issuer, "--client-id", client_id])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("pos-{client_id}")))
            .env("OUTBAND_POS_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("OUTBAND_POS_CONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `outband-pos pay` for [`CUSTOMER_EMAIL`] in `mode` and returns its output.
    pub fn pay(&self, mode: &str, amount: &str, reference: &str) -> Output {
        let client_id = format!("pos-{mode}");
        let listen = format!("127.0.0.1:{}", self.notify_port);
        self.pos(&client_id)
            .args(["pay", "--json", "--amount", amount, "--currency", "EUR"])
            .args(["--customer", CUSTOMER_EMAIL, "--mode", mode, "--reference", reference])
            .args(["--iban", "DE89370400440532013000", "--listen", &listen])
            .output()
            .expect("running outband-pos")
    }
}

/// A `[[clients]]` table for a CIBA till.
fn ciba_client(id: &str, mode: &str, endpoint: Option<&str>) -> String {
    let endpoint = endpoint
        .map(|url| format!("backchannel_client_notification_endpoint = \"{url}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[[clients]]
client_id = "{id}"
client_name = "Corner Café ({mode})"
client_secret = "{CLIENT_SECRET}"
token_endpoint_auth_method = "client_secret_basic"
grant_types = ["client_credentials", "urn:openid:params:grant-type:ciba"]
backchannel_token_delivery_mode = "{mode}"
{endpoint}scope = "openid payments accounts refunds"
"#
    )
}

/// An `outband-device` data directory enrolled for a user, and its watch process.
pub struct Device {
    pub dir: tempfile::TempDir,
    watch: Option<Running>,
}

impl Device {
    /// Enrolls a new authenticator for `user` at `server`, with PIN [`PIN`].
    pub fn enroll(server: &Server, user: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("pin"), PIN).expect("writing the PIN file");
        let device = Self { dir, watch: None };
        let link = server.invite(user);
        let out = device
            .command(&["enroll", &link, "--name", "e2e authenticator"])
            .output()
            .expect("running outband-device");
        assert!(
            out.status.success(),
            "outband-device enroll: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        device
    }

    /// `outband-device --dir <dir> --pin-file <pin> <args>`.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&binaries().device);
        command
            .arg("--dir")
            .arg(self.dir.path().join("data"))
            .arg("--pin-file")
            .arg(self.dir.path().join("pin"))
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Starts `outband-device watch --auto <decision>` in the background.
    pub fn watch(&mut self, decision: &str) {
        let command = self.command(&["--json", "watch", "--auto", decision]);
        self.watch = Some(Running::spawn(command, &self.dir.path().join("watch.log")));
    }

    /// What the watch printed so far.
    pub fn log(&self) -> String {
        self.watch.as_ref().map(Running::log).unwrap_or_default()
    }
}

/// The JSON object `outband-pos pay --json` printed, or a panic that shows everything.
pub fn pay_json(out: &Output, server: &Server, device: &Device) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "outband-pos printed no JSON ({err}), exit {}:\nstdout: {}\nstderr: {}\n--- device:\n{}\n--- server:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            device.log(),
            server.log()
        )
    })
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
