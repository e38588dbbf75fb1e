//! Test support: a fresh server state per test (its own database on the backend
//! `OUTBAND_TEST_BACKEND` selects), a manual clock, and in-process requests.

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::BodyExt;
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, ClientSecret, GrantType, Scope, SigningAlg, TokenEndpointAuthMethod};
use outband_server::clock::ManualClock;
use outband_server::config::Config;
use outband_server::keys::Sealer;
use outband_server::state::{client_record, AppState};
use outband_server::store::{testing, KeyRecord};
use serde_json::Value;
use tower::ServiceExt;

/// The issuer every test server uses.
pub const ISSUER: &str = "https://as.example.test";
/// Where every test clock starts (2027-01-15).
pub const T0: i64 = 1_800_000_000;
const SEAL_KEY: [u8; 32] = [42u8; 32];

/// One generation of server keys, made once per test process (RSA key generation
/// is slow) and copied into every test database.
fn shared_keys() -> &'static Vec<KeyRecord> {
    static KEYS: OnceLock<Vec<KeyRecord>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let sealer = Sealer::from_bytes(&SEAL_KEY).unwrap();
        outband_server::keys::new_generation(&sealer, 1, T0).unwrap()
    })
}

/// A server state on a fresh database, with a clock stopped at [`T0`].
pub struct TestServer {
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

/// A client key pair for `private_key_jwt` tests.
pub struct ClientKey {
    pub key: SigningKey,
}

impl TestServer {
    pub async fn new() -> Self {
        Self::with_config("").await
    }

    /// A server whose configuration adds `extra` TOML to the test defaults.
    pub async fn with_config(extra: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let key_file = dir.path().join("outband.key");
        std::fs::write(
            &key_file,
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(SEAL_KEY),
        )
        .unwrap();
        let text = format!(
            "issuer = \"{ISSUER}\"\nenvironment = \"development\"\nkey_file = \"{}\"\n{extra}",
            key_file.display()
        );
        let settings = Config::from_toml(&text).unwrap().validate().unwrap();
        let store = testing::fresh_store().await;
        assert!(store.create_first_key_generation(shared_keys()).await.unwrap());
        let clock = Arc::new(ManualClock::new(T0));
        let state = AppState::build(settings, store, clock.clone()).await.unwrap();
        Self {
            state,
            clock,
            _dir: dir,
        }
    }

    /// A server over a state built elsewhere (a second node of a cluster; its
    /// key file belongs to the first node's directory).
    pub fn from_parts(state: AppState, clock: Arc<ManualClock>) -> Self {
        Self {
            state,
            clock,
            _dir: tempfile::tempdir().unwrap(),
        }
    }

    /// Registers a `client_secret_basic` (or `_post`) client for client credentials.
    pub async fn add_secret_client(&self, id: &str, secret: &str, method: TokenEndpointAuthMethod, scope: &str) {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.token_endpoint_auth_method = method;
        meta.scope = Scope::new(scope);
        meta.grant_types = vec![GrantType::ClientCredentials];
        self.add_client(meta, Some(secret)).await;
    }

    /// Registers any client.
    pub async fn add_client(&self, meta: ClientMetadata, secret: Option<&str>) {
        let secret = secret.map(ClientSecret::new);
        let record = client_record(meta, secret.as_ref(), T0);
        self.state.store.insert_client(&record).await.unwrap();
    }

    /// Registers a `private_key_jwt` client with a fresh key of `alg`; returns the key.
    pub async fn add_jwt_client(&self, id: &str, alg: SigningAlg, profile: outband_protocol::Profile) -> ClientKey {
        let key = SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap();
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
        meta.scope = Scope::new("payments");
        meta.profile = profile;
        meta.jwks = Some(serde_json::json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] }));
        self.add_client(meta, None).await;
        ClientKey { key }
    }

    /// Sends a request through the router in-process.
    pub async fn send(&self, request: Request<Body>) -> Reply {
        let response = outband_server::app(self.state.clone()).oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            json,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    /// `GET path`.
    pub async fn get(&self, path: &str) -> Reply {
        self.send(Request::get(path).body(Body::empty()).unwrap()).await
    }

    /// `POST path` with a form body and optional Basic credentials.
    pub async fn post_form(&self, path: &str, body: &str, basic: Option<(&str, &str)>) -> Reply {
        let mut request = Request::post(path).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
        if let Some((id, secret)) = basic {
            request = request.header(header::AUTHORIZATION, basic_header(id, secret));
        }
        self.send(request.body(Body::from(body.to_owned())).unwrap()).await
    }
}

/// `Basic base64(id:secret)`, form-encoding both parts as RFC 6749 §2.3.1 asks.
pub fn basic_header(id: &str, secret: &str) -> String {
    let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    format!("Basic {}", STANDARD.encode(format!("{}:{}", enc(id), enc(secret))))
}

/// A response, read whole.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub json: Value,
    pub text: String,
}

impl Reply {
    /// Asserts an OAuth error with this status and code.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status.as_u16(), status, "body: {}", self.text);
        assert_eq!(self.json["error"], code, "body: {}", self.text);
    }
}

/// A client assertion for `client_id` at the test issuer, with claims overridable.
pub fn client_assertion(key: &ClientKey, client_id: &str, now: i64, overrides: Value) -> String {
    let mut claims = serde_json::json!({
        "iss": client_id,
        "sub": client_id,
        "aud": ISSUER,
        "iat": now,
        "exp": now + 60,
        "jti": uuid::Uuid::new_v4().to_string(),
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.key.sign(None, claims.as_object().unwrap()).unwrap()
}
