//! A real Outband server for other crates' tests (feature `test-support`):
//! on `127.0.0.1`, on its own runtime with real time, and a [`ManualClock`]
//! the test moves by hand (the test's own runtime may pause tokio time without
//! pausing the server). Its database is a fresh SQLite file, or a fresh
//! PostgreSQL database with `OUTBAND_TEST_BACKEND=postgres` (see
//! [`crate::store::testing`]).
//!
//! [`TestServer::restart`] stops the server (every connection drops, as in a
//! crash) and starts a new one on the same address, database and keys.
//!
//! This is test code: it panics instead of returning errors.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::TokenEndpointAuthMethod;
use outband_protocol::{AuthReqId, ClientId, ClientMetadata, ClientSecret, DeliveryMode, GrantType, Scope, Subject};
use serde_json::Value;
use sqlx::Connection;

use crate::clock::{Clock, ManualClock};
use crate::config::Config;
use crate::keys::Sealer;
use crate::state::{client_record, AppState};
use crate::store::testing::{BACKEND_VAR, DATABASE_URL_VAR, DEFAULT_DATABASE_URL, TEST_DATABASE_PREFIX};
use crate::store::{CibaDecision, CibaRequestRecord, KeyRecord, Store, TestDecision, UserRecord};

/// Where every test server's clock starts (2027-01-15).
pub const T0: i64 = 1_800_000_000;
const SEAL_KEY: [u8; 32] = [7u8; 32];
/// Lets the server call listeners on 127.0.0.1 over http (ping/push tests).
const LOOPBACK_OUTBOUND: &str = "[outbound]\nallow_insecure_http_loopback = true\nallow_private = [\"127.0.0.1/32\"]\n";

/// Server keys, made once per test process (RSA generation is slow).
fn shared_keys() -> &'static Vec<KeyRecord> {
    static KEYS: OnceLock<Vec<KeyRecord>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let sealer = Sealer::from_bytes(&SEAL_KEY).unwrap();
        crate::keys::new_generation(&sealer, 1, T0).unwrap()
    })
}

/// A running server. Dropping it stops it.
pub struct TestServer {
    /// `http://127.0.0.1:<port>` (`https` from [`start_tls`](Self::start_tls)):
    /// the issuer and the base URL.
    pub url: String,
    /// The running server's state (replaced by [`restart`](Self::restart)).
    pub state: AppState,
    /// The server's clock; it survives restarts.
    pub clock: Arc<ManualClock>,
    runtime: Option<tokio::runtime::Runtime>,
    addr: SocketAddr,
    config: String,
    database: String,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a development server (test users answer at once) whose outbound
    /// calls may reach 127.0.0.1.
    pub fn start() -> Self {
        Self::start_with("")
    }

    /// [`start`](Self::start) with `extra_toml` appended to the configuration.
    pub fn start_with(extra_toml: &str) -> Self {
        Self::start_at(T0, extra_toml)
    }

    /// [`start_with`](Self::start_with) with the clock starting at `now`
    /// instead of [`T0`]: e.g. the real time, for tests of another process
    /// that reads the system clock (its DPoP proofs must be fresh).
    pub fn start_at(now: i64, extra_toml: &str) -> Self {
        Self::start_scheme("http", now, extra_toml)
    }

    /// [`start_at`](Self::start_at) speaking TLS with the `[tls]` table
    /// `tls_toml` (the server's own listener code: [`crate::run`] with
    /// `tls.cert_file`); the issuer is `https://127.0.0.1:<port>`.
    pub fn start_tls(now: i64, tls_toml: &str) -> Self {
        Self::start_scheme("https", now, tls_toml)
    }

    fn start_scheme(scheme: &str, now: i64, extra_toml: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("outband.key");
        std::fs::write(&key_file, URL_SAFE_NO_PAD.encode(SEAL_KEY)).unwrap();
        let database = match std::env::var(BACKEND_VAR).as_deref() {
            Err(_) | Ok("" | "sqlite") => dir.path().join("outband.db").to_str().unwrap().to_owned(),
            Ok("postgres") => postgres_database(),
            Ok(other) => panic!("{BACKEND_VAR}={other:?}: expected sqlite or postgres"),
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let url = format!("{scheme}://{addr}");
        let config = format!(
            "issuer = \"{url}\"\nenvironment = \"development\"\nkey_file = \"{}\"\n{LOOPBACK_OUTBOUND}{extra_toml}",
            key_file.display()
        );
        let clock = Arc::new(ManualClock::new(now));
        let (runtime, state) = boot(listener, &config, &database, clock.clone(), true);
        Self {
            url,
            state,
            clock,
            runtime: Some(runtime),
            addr,
            config,
            database,
            _dir: dir,
        }
    }

    /// Stops the server, dropping every connection (open event streams break),
    /// and starts a new one on the same address with the same database, keys and clock.
    pub fn restart(&mut self) {
        self.stop();
        let listener = std::net::TcpListener::bind(self.addr)
            .unwrap_or_else(|err| panic!("rebinding {} for the restarted server: {err}", self.addr));
        let (runtime, state) = boot(listener, &self.config, &self.database, self.clock.clone(), false);
        self.runtime = Some(runtime);
        self.state = state;
    }

    /// Stops the server and waits until its connections are closed. Calls
    /// before [`restart`](Self::restart) find nobody listening.
    pub fn stop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Blocking shutdown is not allowed on an async thread: do it on one of its own.
            std::thread::spawn(move || runtime.shutdown_timeout(Duration::from_secs(10)))
                .join()
                .unwrap();
        }
    }

    /// Runs `work` on the server's runtime (where its database connections live).
    pub async fn on_server<F, T>(&self, work: impl FnOnce(AppState) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let runtime = self.runtime.as_ref().expect("the test server is stopped");
        runtime.handle().spawn(work(self.state.clone())).await.unwrap()
    }

    /// Registers a CIBA client `id` (secret `<id>-secret`, also allowed client
    /// credentials) in `mode`, notified at `endpoint`; `edit` adjusts it.
    pub async fn add_client(
        &self,
        id: &str,
        mode: DeliveryMode,
        endpoint: Option<&str>,
        edit: impl FnOnce(&mut ClientMetadata),
    ) {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.client_name = Some("Corner Café".into());
        meta.scope = Scope::new("openid payments");
        meta.grant_types = vec![GrantType::Ciba, GrantType::ClientCredentials];
        meta.backchannel_token_delivery_mode = Some(mode);
        meta.backchannel_client_notification_endpoint = endpoint.map(|e| url::Url::parse(e).unwrap());
        edit(&mut meta);
        let secret = (meta.token_endpoint_auth_method == TokenEndpointAuthMethod::ClientSecretBasic)
            .then(|| ClientSecret::new(format!("{id}-secret")));
        let record = client_record(meta, secret.as_ref(), T0);
        self.on_server(|state| async move { state.store.insert_client(&record).await.unwrap() })
            .await;
    }

    /// [`add_client`](Self::add_client) without a notification endpoint or edits (poll mode).
    pub async fn add_ciba_client(&self, id: &str, mode: DeliveryMode) {
        self.add_client(id, mode, None, |_| {}).await;
    }

    /// Creates user `name` (e-mail `name@example.com`, subject `sub-name`) who
    /// answers through enrolled devices.
    pub async fn add_user(&self, name: &str) {
        self.add_test_user(name, None).await;
    }

    /// Creates user `name` whose requests `test` answers at once (when `Some`).
    pub async fn add_test_user(&self, name: &str, test: Option<TestDecision>) {
        let user = UserRecord {
            subject: Subject::new(format!("sub-{name}")),
            username: name.to_owned(),
            email: Some(format!("{name}@example.com")),
            phone: None,
            name: None,
            password_hash: None,
            user_code_hash: None,
            locked: false,
            test_decision: test,
            created_at: T0,
        };
        self.on_server(|state| async move { state.store.insert_user(&user).await.unwrap() })
            .await;
    }

    /// An activation code for `name`, as `outband-server users invite` makes it:
    /// `(code, outband://enroll link)`.
    pub async fn invite(&self, name: &str) -> (String, String) {
        let name = name.to_owned();
        self.on_server(|state| async move {
            let user = state.store.user_by_login_hint(&name).await.unwrap().unwrap();
            let invitation = crate::device::enroll::invite(
                &state.store,
                &state.keys,
                &state.settings.issuer,
                &user.subject,
                crate::device::enroll::DEFAULT_CODE_TTL,
                state.now(),
            )
            .await
            .unwrap();
            (invitation.code.secret().to_owned(), invitation.link)
        })
        .await
    }

    /// `POST /bc-authorize` over HTTP as client `client` (secret basic) for
    /// `user` with scope `openid payments`; panics unless it succeeds.
    pub async fn bc_authorize(
        &self,
        client: &str,
        user: &str,
        binding_message: Option<&str>,
        authorization_details: Option<&Value>,
    ) -> AuthReqId {
        let details = authorization_details.map(Value::to_string);
        let mut form = vec![("scope", "openid payments"), ("login_hint", user)];
        form.extend(binding_message.map(|m| ("binding_message", m)));
        form.extend(details.as_deref().map(|d| ("authorization_details", d)));
        let (status, body) = self.post_form(client, "/bc-authorize", &form).await;
        assert_eq!(status, 200, "bc-authorize: {body}");
        AuthReqId::new(body["auth_req_id"].as_str().expect("an auth_req_id"))
    }

    /// One CIBA poll at `/token`: the status and the JSON body.
    pub async fn poll_token(&self, client: &str, auth_req_id: &AuthReqId) -> (u16, Value) {
        let form = [
            ("grant_type", "urn:openid:params:grant-type:ciba"),
            ("auth_req_id", auth_req_id.secret()),
        ];
        self.post_form(client, "/token", &form).await
    }

    async fn post_form(&self, client: &str, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
        // No pooled connections: they would not survive a restart.
        let http = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
        let response = http
            .post(format!("{}{path}", self.url))
            .basic_auth(client, Some(format!("{client}-secret")))
            .form(form)
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// The stored request of an `auth_req_id`.
    pub async fn request(&self, auth_req_id: &AuthReqId) -> CibaRequestRecord {
        let hash = auth_req_id.hash();
        self.on_server(|state| async move { state.store.ciba_request_by_hash(&hash).await.unwrap().unwrap() })
            .await
    }

    /// Approves or denies a request as a device would (without one).
    pub async fn decide(&self, auth_req_id: &AuthReqId, approve: bool) {
        let id = self.request(auth_req_id).await.id;
        let decision = device_decision(approve);
        self.on_server(|state| async move { crate::ciba::lifecycle::decide(&state, &id, &decision).await.unwrap() })
            .await;
    }

    /// [`decide`](Self::decide) from synchronous code (e.g. a progress
    /// callback of a test's client): blocks until the server has applied it.
    pub fn decide_blocking(&self, auth_req_id: &AuthReqId, approve: bool) {
        let runtime = self.runtime.as_ref().expect("the test server is stopped");
        let state = self.state.clone();
        let hash = auth_req_id.hash();
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        runtime.spawn(async move {
            let record = state.store.ciba_request_by_hash(&hash).await.unwrap().unwrap();
            crate::ciba::lifecycle::decide(&state, &record.id, &device_decision(approve))
                .await
                .unwrap();
            done_tx.send(()).unwrap();
        });
        done_rx
            .recv()
            .expect("the decision was not applied (see the panic above)");
    }

    /// Revokes device `device_id` as an operator would (`devices revoke`); its
    /// open event streams on this server end at once with `revoked`.
    pub async fn revoke_device(&self, device_id: &str) {
        let id = device_id.to_owned();
        self.on_server(|state| async move {
            assert!(
                state.store.revoke_device(&id, state.now()).await.unwrap(),
                "device {id} was live"
            );
            crate::device::streams::announce_revoked(&id);
        })
        .await;
    }

    /// A forgery of the request of `auth_req_id`, as an attacker between the AS
    /// and the device would make it: a new pending request (its own id) whose
    /// request JWT carries the original's claims changed by `edit` under the
    /// original's header and signature. It is stored and announced to the
    /// user's devices; returns its id.
    pub async fn forge_request(&self, auth_req_id: &AuthReqId, edit: impl FnOnce(&mut Value)) -> String {
        let mut record = self.request(auth_req_id).await;
        let parts: Vec<&str> = record.request_jwt.split('.').collect();
        let mut claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
        let id = crate::tokens::random_token();
        claims["jti"] = Value::String(id.clone());
        edit(&mut claims);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        record.request_jwt = format!("{}.{payload}.{}", parts[0], parts[2]);
        record.id = id.clone();
        record.auth_req_id_hash = AuthReqId::new(crate::tokens::random_token()).hash();
        self.on_server(|state| async move {
            state.store.insert_ciba_request(&record).await.unwrap();
            crate::ciba::lifecycle::publish(&state, &record, crate::events::DeviceEventKind::Request);
        })
        .await;
        id
    }

    /// The server's time.
    pub fn now(&self) -> i64 {
        self.clock.now()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A device's answer (approve, or deny with a reason), without a device.
fn device_decision(approve: bool) -> CibaDecision {
    CibaDecision {
        approve,
        device_id: None,
        amr: Some("[\"hwk\",\"pin\"]".into()),
        acr: None,
        deny_reason: (!approve).then(|| "the customer said no".into()),
    }
}

/// Starts a server on `listener` in a new runtime; returns once it serves.
fn boot(
    listener: std::net::TcpListener,
    config: &str,
    database: &str,
    clock: Arc<ManualClock>,
    first: bool,
) -> (tokio::runtime::Runtime, AppState) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("test-server")
        .enable_all()
        .build()
        .unwrap();
    let settings = Config::from_toml(config).unwrap().validate().unwrap();
    let database = database.to_owned();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    runtime.spawn(async move {
        let store = Store::connect(&database).await.unwrap();
        store.migrate().await.unwrap();
        if first {
            assert!(store.create_first_key_generation(shared_keys()).await.unwrap());
        }
        let state = AppState::build(settings, store, clock).await.unwrap();
        listener.set_nonblocking(true).unwrap();
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        ready_tx.send(state.clone()).unwrap();
        crate::run(listener, state, std::future::pending()).await.unwrap();
    });
    let state = ready_rx
        .recv()
        .expect("the test server did not start (see the panic above)");
    (runtime, state)
}

/// A new database `outband_t_<uuid>` on the server of `DATABASE_URL` (dropped
/// with the others by `store::testing::drop_test_databases`); returns its URL.
fn postgres_database() -> String {
    let admin_url = std::env::var(DATABASE_URL_VAR).unwrap_or_else(|_| DEFAULT_DATABASE_URL.to_owned());
    let name = format!("{TEST_DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let create = format!("CREATE DATABASE {name}");
    let admin = admin_url.clone();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            sqlx::any::install_default_drivers();
            let mut connection = sqlx::AnyConnection::connect(&admin)
                .await
                .unwrap_or_else(|err| panic!("cannot reach PostgreSQL at {DATABASE_URL_VAR} ({err})"));
            sqlx::raw_sql(&create).execute(&mut connection).await.unwrap();
            let _ = connection.close().await;
        });
    })
    .join()
    .unwrap();
    let mut url = url::Url::parse(&admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}
