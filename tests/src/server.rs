//! One `outband-server serve` process: its configuration, its admin CLI, and
//! `outband-pos` pointed at it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;

use crate::{binaries, free_port, path_str, Running, CLIENT_SECRET, CUSTOMER, CUSTOMER_EMAIL, READY_WITHIN};

/// One `outband-server serve` process with its configuration and log.
pub struct Server {
    /// The test's directory (shared by the nodes of a [`Cluster`](crate::Cluster)).
    home: Arc<tempfile::TempDir>,
    /// Names this node's configuration and log files.
    name: String,
    /// The issuer identifier, which clients use (a cluster's proxy).
    pub issuer: String,
    /// Where this process itself listens (the issuer for a lone server).
    pub url: String,
    /// Where the ping and push clients' notifications go (the POS listens there).
    pub notify_port: u16,
    config: PathBuf,
    /// Extra environment variables for the server process.
    env: Vec<(String, String)>,
    process: Option<Running>,
}

/// What a node's configuration file says.
pub(crate) struct NodeConfig<'a> {
    pub issuer: &'a str,
    pub port: u16,
    pub database_url: &'a str,
    pub notify_port: u16,
    pub extra_toml: &'a str,
}

impl Server {
    /// Starts a server with three CIBA clients, `pos-poll`, `pos-ping` and
    /// `pos-push` (client_secret_basic, [`CLIENT_SECRET`]), a user `alice`,
    /// and `extra_toml` appended to the configuration (`{notify}` in it
    /// stands for the POS's notification URL); waits until it is ready.
    pub async fn start(extra_toml: &str) -> Self {
        let database_url = outband_server::store::testing::fresh_database_url().await;
        Self::start_on(&database_url, extra_toml).await
    }

    /// [`Server::start`] on the database at `database_url` (which must exist).
    pub async fn start_on(database_url: &str, extra_toml: &str) -> Self {
        Self::start_with_env(database_url, extra_toml, &[]).await
    }

    /// [`Server::start_on`] with extra environment variables for the process.
    pub async fn start_with_env(database_url: &str, extra_toml: &str, env: &[(&str, &str)]) -> Self {
        binaries();
        let home = Arc::new(tempfile::tempdir().expect("a temporary directory"));
        let port = free_port();
        let issuer = format!("http://127.0.0.1:{port}");
        let config = NodeConfig {
            issuer: &issuer,
            port,
            database_url,
            notify_port: free_port(),
            extra_toml,
        };
        let mut server = Self::configure(home, "server", &config);
        server.env = env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        server.spawn().await;
        server
    }

    /// Writes `<name>.toml` in `home`; starts nothing. The key file is
    /// `home/outband.key`, shared by every node configured in `home`.
    pub(crate) fn configure(home: Arc<tempfile::TempDir>, name: &str, node: &NodeConfig<'_>) -> Self {
        let notify = format!("http://127.0.0.1:{}/ciba/notify", node.notify_port);
        let config = home.path().join(format!("{name}.toml"));
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
            issuer = node.issuer,
            port = node.port,
            database_url = node.database_url,
            key = home.path().join("outband.key").display(),
            poll = ciba_client("pos-poll", "poll", None, ""),
            ping = ciba_client("pos-ping", "ping", Some(&notify), ""),
            push = ciba_client("pos-push", "push", Some(&notify), ""),
            extra_toml = node.extra_toml.replace("{notify}", &notify),
        );
        std::fs::write(&config, text).expect("writing the server configuration");
        Self {
            home,
            name: name.to_owned(),
            issuer: node.issuer.to_owned(),
            url: format!("http://127.0.0.1:{}", node.port),
            notify_port: node.notify_port,
            config,
            env: Vec::new(),
            process: None,
        }
    }

    /// The test's directory.
    pub fn dir(&self) -> &Path {
        self.home.path()
    }

    /// Starts the process without waiting for it.
    pub(crate) fn launch(&mut self) {
        let mut command = Command::new(&binaries().server);
        command
            .args(["--config", path_str(&self.config), "serve"])
            .env_remove("OUTBAND_CONFIG")
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(k, v)| (k, v)));
        self.process = Some(Running::spawn(command, &self.log_path()));
    }

    /// Starts the process and waits until it is ready.
    pub async fn spawn(&mut self) {
        self.launch();
        self.wait_ready().await;
    }

    /// Waits until `/readyz` answers 200; panics when the process exits or hangs.
    pub(crate) async fn wait_ready(&mut self) {
        let url = format!("{}/readyz", self.url);
        let client = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Ok(response) = client.get(&url).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self.process.as_mut().and_then(Running::exited) {
                panic!("{} exited ({status}):\n{}", self.name, self.log());
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} was not ready within {READY_WITHIN:?}:\n{}",
                self.name,
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Whether the process is still running (it did not exit or crash).
    pub fn is_running(&mut self) -> bool {
        self.process.as_mut().is_some_and(|process| process.exited().is_none())
    }

    /// `kill -9` the process (no restart).
    pub fn kill(&mut self) {
        if let Some(mut process) = self.process.take() {
            process.kill();
        }
    }

    /// `kill -9` the server and start it again on the same port and database.
    pub async fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn().await;
    }

    fn log_path(&self) -> PathBuf {
        self.home.path().join(format!("{}.log", self.name))
    }

    /// The server's log so far (every run of this node).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
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

    /// `admin(args)` with `--json`, parsed; panics when it fails.
    pub fn admin_json(&self, args: &[&str]) -> Value {
        let out = self.admin(&[&["--json"], args].concat());
        assert!(
            out.status.success(),
            "outband-server {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("--json prints JSON")
    }

    /// `ciba list` (newest first), optionally only the requests in `state`.
    pub fn ciba_requests(&self, state: Option<&str>) -> Vec<Value> {
        let mut args = vec!["ciba", "list", "--limit", "1000"];
        if let Some(state) = state {
            args.extend(["--state", state]);
        }
        match self.admin_json(&args) {
            Value::Array(requests) => requests,
            other => panic!("ciba list printed {other}"),
        }
    }

    /// `notifications list`: still to deliver, or (`failed`) given up.
    pub fn notifications(&self, failed: bool) -> Vec<Value> {
        let mut args = vec!["notifications", "list"];
        if failed {
            args.push("--failed");
        }
        match self.admin_json(&args) {
            Value::Array(list) => list,
            other => panic!("notifications list printed {other}"),
        }
    }

    /// An enrollment link for `user`'s authenticator.
    pub fn invite(&self, user: &str) -> String {
        let invite = self.admin_json(&["users", "invite", user]);
        invite["link"].as_str().expect("the invite's link").to_owned()
    }

    /// `outband-pos` pointed at this server as `client_id`, with the data
    /// directory `pos-<client_id>` in the test's directory.
    pub fn pos(&self, client_id: &str) -> Command {
        self.pos_in(client_id, &format!("pos-{client_id}"))
    }

    /// `outband-pos` as `client_id` with its own data directory `data_dir`
    /// (in the test's directory): one per till running at the same time.
    pub fn pos_in(&self, client_id: &str, data_dir: &str) -> Command {
        let mut command = Command::new(&binaries().pos);
        command
            .args(["--issuer", &self.issuer, "--client-id", client_id])
            .arg("--data-dir")
            .arg(self.home.path().join(data_dir))
            .env("OUTBAND_POS_CLIENT_SECRET", CLIENT_SECRET)
            .env_remove("OUTBAND_POS_CONFIG")
            .stdin(Stdio::null());
        command
    }

    /// Runs `outband-pos pay` for [`CUSTOMER_EMAIL`] in `mode` and returns its output.
    pub fn pay(&self, mode: &str, amount: &str, reference: &str) -> Output {
        self.pay_as(&format!("pos-{mode}"), mode, amount, reference, &[])
    }

    /// `outband-pos [extra] pay` as `client_id` in `mode` (ping and push
    /// listen on [`Server::notify_port`]).
    pub fn pay_as(&self, client_id: &str, mode: &str, amount: &str, reference: &str, extra: &[&str]) -> Output {
        let listen = format!("127.0.0.1:{}", self.notify_port);
        self.pos(client_id)
            .args(extra)
            .args(["pay", "--json", "--amount", amount, "--currency", "EUR"])
            .args(["--customer", CUSTOMER_EMAIL, "--mode", mode, "--reference", reference])
            .args(["--iban", "DE89370400440532013000", "--listen", &listen])
            .output()
            .expect("running outband-pos")
    }
}

/// A `[[clients]]` table for a CIBA till (client_secret_basic, [`CLIENT_SECRET`]),
/// with `extra` lines (more client metadata) at its end.
pub fn ciba_client(id: &str, mode: &str, endpoint: Option<&str>, extra: &str) -> String {
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
{extra}
"#
    )
}
