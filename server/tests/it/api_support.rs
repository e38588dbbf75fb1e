//! Test support for the resource API and DPoP at the token endpoint: a POS
//! client, payment tokens from an approved CIBA request (DPoP-bound to a key, or
//! Bearer), merchant client-credentials tokens, and `/api` calls with proofs.

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, DeliveryMode, GrantType, Scope, SigningAlg};
use serde_json::{json, Value};

use crate::device_support::{device_key, nonce_of, proof};
use crate::support::{basic_header, Reply, TestServer};

/// The POS client of these tests (secret `pos-secret`).
pub const POS: &str = "pos";
/// Its scope.
pub const POS_SCOPE: &str = "openid payments accounts refunds";

/// The payment the user approves in these tests.
pub fn detail(amount: &str, reference: &str) -> Value {
    json!({
        "instructedAmount": {"currency": "EUR", "amount": amount},
        "creditorName": "Demo Shop",
        "creditorAccount": {"iban": "DE89370400440532013000"},
        "remittanceInformationUnstructured": reference,
    })
}

/// A fresh ES256 key for proofs.
pub fn key() -> SigningKey {
    device_key(SigningAlg::ES256)
}

/// An access token, and the key it is bound to (none for Bearer).
pub struct Token {
    pub access: String,
    pub refresh: Option<String>,
    pub key: Option<SigningKey>,
}

/// How a test calls the API.
#[derive(Default)]
pub struct Call<'a> {
    /// Override the scheme (`Bearer`/`DPoP`); default: by the token's binding.
    pub scheme: Option<&'a str>,
    /// Sign the proof with this key instead of the token's.
    pub key: Option<&'a SigningKey>,
    /// The proof's nonce.
    pub nonce: Option<&'a str>,
    /// Claim overrides of the proof (`null` removes a claim).
    pub overrides: Option<Value>,
    /// Send no proof.
    pub no_proof: bool,
    /// A proof to send as is.
    pub raw_proof: Option<String>,
    /// `Idempotency-Key`.
    pub idempotency_key: Option<&'a str>,
    /// Extra headers.
    pub headers: Vec<(&'a str, String)>,
}

impl TestServer {
    /// Registers the POS client (CIBA poll + client credentials, secret basic).
    pub async fn add_pos_client(&self) {
        let mut meta = ClientMetadata::new(ClientId::new(POS));
        meta.client_name = Some("Corner Café".into());
        meta.scope = Scope::new(POS_SCOPE);
        meta.grant_types = vec![GrantType::Ciba, GrantType::ClientCredentials, GrantType::RefreshToken];
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
        self.add_client(meta, Some("pos-secret")).await;
    }

    /// `POST /token` as the POS with `body`, and a DPoP proof when given.
    pub async fn token_with_proof(&self, body: &str, proof: Option<&str>) -> Reply {
        let mut request = Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, basic_header(POS, "pos-secret"));
        if let Some(proof) = proof {
            request = request.header("DPoP", proof);
        }
        self.send(request.body(Body::from(body.to_owned())).unwrap()).await
    }

    /// A token-endpoint proof by `key` (with `nonce`).
    pub fn token_proof(&self, key: &SigningKey, nonce: Option<&str>, overrides: &Value) -> String {
        proof(key, self.state.now(), "POST", "/token", None, nonce, overrides)
    }

    /// An approved CIBA request of `username` for `details` (scope `scope`); returns its auth_req_id.
    pub async fn approved_request(&self, username: &str, scope: &str, details: &Value) -> String {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("scope", scope)
            .append_pair("login_hint", username)
            .append_pair("binding_message", "CAFE-7Q2K")
            .append_pair("authorization_details", &details.to_string())
            .finish();
        let reply = self.bc_authorize(POS, &body).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
        self.decide(&auth_req_id, true).await;
        auth_req_id
    }

    /// Polls for the tokens of `auth_req_id` with a proof by `key` (Bearer without one).
    pub async fn redeem(&self, auth_req_id: &str, key: Option<SigningKey>) -> Token {
        let body = format!("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={auth_req_id}");
        let proof = key.as_ref().map(|k| self.token_proof(k, None, &json!({})));
        let reply = self.token_with_proof(&body, proof.as_deref()).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        let expected = if key.is_some() { "DPoP" } else { "Bearer" };
        assert_eq!(reply.json["token_type"], expected);
        Token {
            access: reply.json["access_token"].as_str().unwrap().to_owned(),
            refresh: reply.json["refresh_token"].as_str().map(str::to_owned),
            key,
        }
    }

    /// A DPoP-bound token for `alice` that authorises `details` (scope payments + accounts).
    pub async fn payment_token(&self, details: &[Value]) -> Token {
        let auth_req_id = self
            .approved_request("alice", "openid payments accounts", &Value::Array(details.to_vec()))
            .await;
        self.redeem(&auth_req_id, Some(key())).await
    }

    /// The merchant's client-credentials token for `scope`, DPoP-bound.
    pub async fn merchant_token(&self, scope: &str) -> Token {
        let key = key();
        let body = format!("grant_type=client_credentials&scope={}", scope.replace(' ', "%20"));
        let reply = self
            .token_with_proof(&body, Some(&self.token_proof(&key, None, &json!({}))))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        Token {
            access: reply.json["access_token"].as_str().unwrap().to_owned(),
            refresh: None,
            key: Some(key),
        }
    }

    /// Calls the API as `token` says (and `call` overrides).
    pub async fn api(
        &self,
        method: &str,
        path: &str,
        token: Option<&Token>,
        body: Option<Value>,
        call: Call<'_>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(token) = token {
            let scheme = call
                .scheme
                .unwrap_or(if token.key.is_some() { "DPoP" } else { "Bearer" });
            request = request.header(header::AUTHORIZATION, format!("{scheme} {}", token.access));
            let signer = call.key.or(token.key.as_ref());
            let htu = path.split('?').next().unwrap();
            let overrides = call.overrides.unwrap_or(json!({}));
            let value = match (call.raw_proof, signer) {
                (Some(raw), _) => Some(raw),
                (None, Some(signer)) if !call.no_proof => Some(proof(
                    signer,
                    self.state.now(),
                    method,
                    htu,
                    Some(&token.access),
                    call.nonce,
                    &overrides,
                )),
                _ => None,
            };
            if let Some(value) = value {
                request = request.header("DPoP", value);
            }
        }
        if let Some(key) = call.idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        for (name, value) in call.headers {
            request = request.header(name, value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(body.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    /// `POST /api/payments` with `body` under `key`.
    pub async fn pay(&self, token: &Token, body: &Value, idempotency_key: &str) -> Reply {
        let call = Call {
            idempotency_key: Some(idempotency_key),
            ..Call::default()
        };
        self.api("POST", "/api/payments", Some(token), Some(body.clone()), call)
            .await
    }
}

/// The `WWW-Authenticate` of a reply.
pub fn challenge(reply: &Reply) -> String {
    reply
        .headers
        .get(header::WWW_AUTHENTICATE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// The reply's server nonce.
pub fn nonce(reply: &Reply) -> String {
    nonce_of(reply).expect("a DPoP-Nonce header")
}

/// Proofs for `method` on `path` that must each be refused, named: every
/// rejection case of RFC 9449 §4.3 a client can get wrong. `token` adds the
/// `ath` cases.
pub fn bad_proofs(
    key: &SigningKey,
    now: i64,
    method: &str,
    path: &str,
    token: Option<&str>,
    nonce: Option<&str>,
) -> Vec<(&'static str, String)> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use josekit::jws::JwsHeader;
    use outband_protocol::jose::sha256_b64url;

    let with = |overrides: Value| proof(key, now, method, path, token, nonce, &overrides);
    let claims = json!({
        "htm": method,
        "htu": format!("{}{path}", crate::support::ISSUER),
        "iat": now,
        "jti": uuid::Uuid::new_v4().to_string(),
        "ath": token.map(|t| sha256_b64url(t.as_bytes())),
        "nonce": nonce,
    });
    let claims = crate::device_support::with_overrides(claims, &json!({}));
    let claims: serde_json::Map<String, Value> = claims.into_iter().filter(|(_, v)| !v.is_null()).collect();
    // typ is "JWT".
    let mut header = JwsHeader::new();
    header.set_token_type("JWT");
    header.set_jwk(key.public_jwk().clone());
    let bad_typ = key.sign_with_header(header, &claims).unwrap();
    // alg none.
    let encode = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let none_header =
        json!({"typ": "dpop+jwt", "alg": "none", "jwk": Value::Object(key.public_jwk().as_ref().clone())});
    let alg_none = format!("{}.{}.", encode(&none_header), encode(&Value::Object(claims.clone())));
    // The private key in the header (signed by it, so only that is wrong).
    let private = SigningAlg::ES256.generate_private_jwk().unwrap();
    let private_signer = SigningKey::from_private_jwk(&private, SigningAlg::ES256).unwrap();
    let mut header = JwsHeader::new();
    header.set_token_type("dpop+jwt");
    header.set_jwk(private);
    let private_jwk = private_signer.sign_with_header(header, &claims).unwrap();
    let mut proofs = vec![
        ("typ JWT", bad_typ),
        ("alg none", alg_none),
        ("private key in jwk", private_jwk),
        (
            "wrong htm",
            with(json!({"htm": if method == "GET" { "POST" } else { "GET" }})),
        ),
        (
            "wrong htu",
            with(json!({"htu": format!("{}/elsewhere", crate::support::ISSUER)})),
        ),
        (
            "wrong htu host",
            with(json!({"htu": format!("https://evil.example{path}")})),
        ),
        ("stale iat", with(json!({"iat": now - 300}))),
        ("future iat", with(json!({"iat": now + 300}))),
        ("no jti", with(json!({"jti": null}))),
        ("not a JWT", "not.a.jwt".to_owned()),
    ];
    if token.is_some() {
        proofs.push(("missing ath", with(json!({"ath": null}))));
        proofs.push(("wrong ath", with(json!({"ath": sha256_b64url(b"another token")}))));
    }
    proofs
}

impl TestServer {
    /// A second server node on the same PostgreSQL database (its own pool,
    /// the same key file and configuration, the same clock).
    pub async fn second_node(&self) -> TestServer {
        let store = self
            .state
            .store
            .connect_another_node()
            .await
            .expect("a PostgreSQL store")
            .unwrap();
        let settings = (*self.state.settings).clone();
        let state = outband_server::state::AppState::build(settings, store, self.clock.clone())
            .await
            .unwrap();
        TestServer::from_parts(state, self.clock.clone())
    }
}
