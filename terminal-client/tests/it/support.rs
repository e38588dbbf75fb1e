//! A real Outband server for the terminal's tests, on 127.0.0.1:0, on its own
//! thread and runtime with real time. Its clock is a `ManualClock`, so a test
//! moves the server's time by hand; the test's own runtime may pause tokio time
//! (polling intervals) without pausing the server.

use std::future::Future;
use std::sync::{Arc, OnceLock};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::SigningKey;
use outband_protocol::{
    AuthReqId, ClientId, ClientMetadata, ClientSecret, DeliveryMode, GrantType, Scope, SigningAlg, Subject,
    TokenEndpointAuthMethod,
};
use outband_server::clock::{Clock, ManualClock};
use outband_server::config::Config;
use outband_server::keys::Sealer;
use outband_server::state::{client_record, AppState};
use outband_server::store::{testing, CibaDecision, CibaRequestRecord, KeyRecord, TestDecision, UserRecord};
use outband_terminal::{CibaClient, CibaClientBuilder, ClientAuth};

/// Where every test server's clock starts (2027-01-15).
pub const T0: i64 = 1_800_000_000;
const SEAL_KEY: [u8; 32] = [7u8; 32];
/// Lets the server call the terminal's listener on 127.0.0.1 over http.
const LOOPBACK_OUTBOUND: &str = "[outbound]\nallow_insecure_http_loopback = true\nallow_private = [\"127.0.0.1/32\"]\n";

/// Server keys, made once per test process (RSA generation is slow).
fn shared_keys() -> &'static Vec<KeyRecord> {
    static KEYS: OnceLock<Vec<KeyRecord>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let sealer = Sealer::from_bytes(&SEAL_KEY).unwrap();
        outband_server::keys::SERVER_ALGS
            .iter()
            .map(|&alg| {
                let mut private = alg.generate_private_jwk().unwrap();
                let key = SigningKey::from_private_jwk(&private, alg).unwrap();
                private.set_key_id(key.kid());
                KeyRecord {
                    kid: key.kid().to_owned(),
                    alg,
                    generation: 1,
                    public_jwk: key.public_jwk().to_string(),
                    private_jwk_sealed: sealer.seal(private.to_string().as_bytes()).unwrap(),
                    created_at: T0,
                    retired_at: None,
                    publish_until: None,
                }
            })
            .collect()
    })
}

/// A running server. Dropping it stops it.
pub struct TestServer {
    /// `http://127.0.0.1:<port>`: the issuer and the base URL.
    pub url: String,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
}

impl TestServer {
    /// Starts a development server (test users answer at once) whose outbound
    /// calls may reach 127.0.0.1.
    pub fn start() -> Self {
        Self::boot("http", T0, String::new())
    }

    /// [`start`](Self::start) speaking TLS with the `[tls]` table `tls_toml`
    /// (its own listener code: `outband_server::run` with `tls.cert_file`);
    /// the issuer is `https://127.0.0.1:<port>`. The clock starts at `now`.
    pub fn start_tls(now: i64, tls_toml: &str) -> Self {
        Self::boot("https", now, tls_toml.to_owned())
    }

    fn boot(scheme: &'static str, now: i64, extra_toml: String) -> Self {
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let dir = tempfile::tempdir().unwrap();
                let key_file = dir.path().join("outband.key");
                std::fs::write(&key_file, URL_SAFE_NO_PAD.encode(SEAL_KEY)).unwrap();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                let url = format!("{scheme}://{}", listener.local_addr().unwrap());
                let text = format!(
                    "issuer = \"{url}\"\nenvironment = \"development\"\nkey_file = \"{}\"\n{LOOPBACK_OUTBOUND}{extra_toml}",
                    key_file.display()
                );
                let settings = Config::from_toml(&text).unwrap().validate().unwrap();
                let store = testing::fresh_store().await;
                assert!(store.create_first_key_generation(shared_keys()).await.unwrap());
                let clock = Arc::new(ManualClock::new(now));
                let state = AppState::build(settings, store, clock.clone()).await.unwrap();
                let handle = tokio::runtime::Handle::current();
                ready_tx.send((url, state.clone(), clock, handle, dir)).unwrap();
                outband_server::run(listener, state, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        let (url, state, clock, handle, dir) = ready_rx.recv().expect("the test server did not start");
        Self {
            url,
            state,
            clock,
            handle,
            stop: Some(stop_tx),
            _dir: dir,
        }
    }

    /// Runs `work` on the server's runtime (where its database connections live).
    pub async fn on_server<F, T>(&self, work: impl FnOnce(AppState) -> F) -> T
    where
        F: Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        self.handle.spawn(work(self.state.clone())).await.unwrap()
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

    /// Creates user `name` (e-mail `name@example.com`, subject `sub-name`).
    pub async fn add_user(&self, name: &str, test: Option<TestDecision>) {
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

    /// The stored request of an `auth_req_id`.
    pub async fn request(&self, auth_req_id: &AuthReqId) -> CibaRequestRecord {
        let hash = auth_req_id.hash();
        self.on_server(|state| async move { state.store.ciba_request_by_hash(&hash).await.unwrap().unwrap() })
            .await
    }

    /// Approves or denies as a device would.
    pub async fn decide(&self, auth_req_id: &AuthReqId, approve: bool) {
        let id = self.request(auth_req_id).await.id;
        let decision = CibaDecision {
            approve,
            device_id: None,
            amr: Some("[\"hwk\",\"pin\"]".into()),
            acr: None,
            deny_reason: (!approve).then(|| "the customer said no".into()),
        };
        self.on_server(|state| async move {
            outband_server::ciba::lifecycle::decide(&state, &id, &decision)
                .await
                .unwrap()
        })
        .await;
    }

    /// [`decide`](Self::decide) from synchronous code (a progress callback):
    /// blocks until the server has applied the decision.
    pub fn decide_blocking(&self, auth_req_id: &AuthReqId, approve: bool) {
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        let state = self.state.clone();
        let hash = auth_req_id.hash();
        self.handle.spawn(async move {
            let record = state.store.ciba_request_by_hash(&hash).await.unwrap().unwrap();
            let decision = CibaDecision {
                approve,
                device_id: None,
                amr: None,
                acr: None,
                deny_reason: None,
            };
            outband_server::ciba::lifecycle::decide(&state, &record.id, &decision)
                .await
                .unwrap();
            done_tx.send(()).unwrap();
        });
        done_rx.recv().unwrap();
    }

    /// A client builder for client `id` (secret basic), with the server's
    /// clock and an HTTP client that keeps no timers, so paused tokio time only
    /// moves when the client sleeps.
    pub fn client(&self, id: &str) -> CibaClientBuilder {
        let clock = self.clock.clone();
        CibaClient::builder()
            .set_issuer(self.url.clone())
            .set_client_id(id)
            .set_client_auth(ClientAuth::ClientSecretBasic(ClientSecret::new(format!("{id}-secret"))))
            .set_http_client(test_http_client())
            .set_clock(Arc::new(move || clock.now()))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// No timeouts and no pool-idle timer: with paused time, tokio jumps to the
/// next timer whenever the runtime waits on the network, which would fire them.
pub fn test_http_client() -> reqwest::Client {
    reqwest::Client::builder().pool_idle_timeout(None).build().unwrap()
}

/// A fresh private key of `alg`.
pub fn new_key(alg: SigningAlg) -> SigningKey {
    SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap()
}

/// A sale of EUR 12.50 to `customer`.
pub fn sale(customer: &str) -> outband_terminal::SaleRequest {
    let mut sale = outband_terminal::SaleRequest::new(
        "12.50".parse().unwrap(),
        "EUR".parse().unwrap(),
        customer,
        "Corner Café",
    );
    sale.iban = Some("DE89370400440532013000".parse().unwrap());
    sale
}
