//! A real Outband server in this process (`outband_server::test_server`), seen as the app and a
//! client see it: over HTTP on 127.0.0.1.
//!
//! The app is a separate party with the real clock (it signs its DPoP proofs with it, and the GUI
//! test runs it as another process), so the server's clock follows real time here instead of
//! standing at the test server's fixed start.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use outband_protocol::{DeliveryMode, Subject};
use outband_server::clock::{Clock, ManualClock, SystemClock};
use outband_server::test_server::TestServer;
use serde_json::Value;

/// The CIBA client (poll mode, `client_secret_basic`) that starts requests: a café's till.
pub const CLIENT_ID: &str = "corner-cafe";
/// Its secret (the test server's convention: `<id>-secret`).
pub const CLIENT_SECRET: &str = "corner-cafe-secret";

/// The server, its clock kept at real time, and an HTTP client for the client's calls.
pub struct Server {
    inner: TestServer,
    http: reqwest::Client,
    clock_task: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.clock_task.abort();
    }
}

impl Server {
    /// Starts a server with the client [`CLIENT_ID`].
    pub async fn start() -> Result<Self> {
        // Booting blocks (it waits for the server's own runtime): keep it off the test's workers.
        // Started at the real time, not moved there afterwards: the first housekeeping round
        // would otherwise run at the default start time and purge codes made at the real one.
        let inner = tokio::task::spawn_blocking(|| TestServer::start_at(SystemClock.now(), "")).await?;
        let clock_task = tokio::spawn(follow_real_time(inner.clock.clone()));
        inner.add_ciba_client(CLIENT_ID, DeliveryMode::Poll).await;
        Ok(Self {
            inner,
            http: reqwest::Client::new(),
            clock_task,
        })
    }

    /// Creates user `name` and returns the `outband://enroll` link that
    /// `outband-server users invite <name>` prints.
    pub async fn invite_link(&self, name: &str) -> Result<String> {
        self.inner.add_user(name).await;
        let (_code, link) = self.inner.invite(name).await;
        ensure!(link.starts_with("outband://enroll?"), "unexpected link {link}");
        Ok(link)
    }

    /// How many devices of user `name` are enrolled and not revoked.
    pub async fn devices_of(&self, name: &str) -> Result<usize> {
        let subject = Subject::new(format!("sub-{name}"));
        let devices = self
            .inner
            .on_server(|state| async move { state.store.devices_of_subject(&subject).await })
            .await?;
        Ok(devices.iter().filter(|d| d.revoked_at.is_none()).count())
    }

    /// `POST /bc-authorize` as [`CLIENT_ID`] with `form`; the `auth_req_id`.
    pub async fn bc_authorize(&self, form: &[(&str, &str)]) -> Result<String> {
        let reply = self.post("/bc-authorize", form).await?;
        reply["auth_req_id"]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("bc-authorize answered {reply}"))
    }

    /// One CIBA poll at `/token` as [`CLIENT_ID`]: the JSON answer (tokens or an OAuth error).
    pub async fn poll_token(&self, auth_req_id: &str) -> Result<Value> {
        self.post(
            "/token",
            &[
                ("grant_type", "urn:openid:params:grant-type:ciba"),
                ("auth_req_id", auth_req_id),
            ],
        )
        .await
    }

    /// `POST /introspect` of `token` as [`CLIENT_ID`] (RFC 7662): the JSON answer.
    pub async fn introspect(&self, token: &str) -> Result<Value> {
        self.post("/introspect", &[("token", token)]).await
    }

    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Value> {
        let reply = self
            .http
            .post(format!("{}{path}", self.inner.url))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .form(form)
            .timeout(Duration::from_secs(30))
            .send()
            .await
            .with_context(|| format!("POST {path}"))?;
        let status = reply.status();
        let body: Value = reply.json().await.with_context(|| format!("POST {path}: not JSON"))?;
        ensure!(
            status.is_success() || body.get("error").is_some(),
            "POST {path}: {status} {body}"
        );
        Ok(body)
    }
}

/// Keeps the server's manual clock at the system time (DPoP proofs must be within a minute of it).
async fn follow_real_time(clock: Arc<ManualClock>) {
    loop {
        clock.set(SystemClock.now());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
