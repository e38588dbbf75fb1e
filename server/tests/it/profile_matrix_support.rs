//! Support for the per-profile conformance matrix (profile_matrix.rs): one row
//! of expectations per profile, and a live server with one client of that
//! profile driven over HTTP (authorization requests plain, signed, pushed or
//! both; token requests with the row's client authentication and sender
//! constraint; registration; CIBA).

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::SigningKey;
use outband_protocol::{
    ClientId, ClientMetadata, DeliveryMode, GrantType, Profile, Scope, SigningAlg, TokenEndpointAuthMethod as M,
};
use reqwest::header::HeaderMap;
use serde_json::{json, Map, Value};

use crate::browser_support::{Browser, Live, Page, CHALLENGE, PASSWORD, REDIRECT_URI};
use crate::consent_support::{payment_body, CONSENTS};
use crate::device_support::proof;
use crate::support::{client_assertion, ClientKey, TestServer, ISSUER, T0};

/// The client every row drives.
pub const APP: &str = "app";
/// Under FAPI 2 (sender [`Sender::DpopOrCertificate`]): a `private_key_jwt`
/// client (the keys of [`APP`]) registered for certificate-bound tokens.
pub const MTLS_APP: &str = "app-mtls";
/// Under FAPI 2: a `tls_client_auth` client registered for certificate-bound tokens.
pub const TLS_APP: &str = "app-tls";
/// A user with a password, for full code flows.
pub const BOB: &str = "bob";
const CERT_HEADER: &str = "x-ssl-client-cert";
/// The subject of [`crate::openbanking_br::certificates`]' client certificate.
pub const CERT_DN: &str = "CN=tpp-br,O=TPP Brasil,C=BR";
const INTERACTION: &str = "6d7c5b4a-3f2e-4d1c-8b0a-9f8e7d6c5b4a";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Every algorithm a client could sign with.
pub const EVERY_ALG: [SigningAlg; 4] = [
    SigningAlg::ES256,
    SigningAlg::PS256,
    SigningAlg::EdDSA,
    SigningAlg::RS256,
];
/// Every client authentication method.
pub const EVERY_METHOD: [M; 6] = [
    M::ClientSecretBasic,
    M::ClientSecretPost,
    M::PrivateKeyJwt,
    M::TlsClientAuth,
    M::SelfSignedTlsClientAuth,
    M::None,
];

/// How access tokens must be sender-constrained.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sender {
    /// Only when the client asks: a token request without proof or certificate gets a Bearer token.
    OnRequest,
    /// FAPI 2: a DPoP proof with a server nonce on every token request (RFC 9449),
    /// or, for a client registered with `tls_client_certificate_bound_access_tokens`,
    /// its client certificate (RFC 8705). [`APP`] uses DPoP.
    DpopOrCertificate,
    /// Bound to the client certificate (RFC 8705) whatever the client registered.
    Certificate,
}

/// One row of the table in docs/profiles.md.
pub struct Row {
    pub profile: Profile,
    /// `response_type=code` answered unsigned (query, fragment, form_post).
    pub unsigned_code: bool,
    /// `response_type=code id_token` (the hybrid flow).
    pub hybrid: bool,
    pub par_required: bool,
    /// PKCE required of a confidential client's request sent to `/authorize` directly.
    pub pkce_required: bool,
    /// PKCE required of a confidential client's request pushed to `/par`.
    pub pkce_required_pushed: bool,
    pub plain_pkce: bool,
    pub jar_required: bool,
    /// Algorithms accepted for request objects and client assertions.
    pub algs: &'static [SigningAlg],
    /// Client authentication methods that register and authenticate.
    pub auth_methods: &'static [M],
    pub sender: Sender,
    /// Client assertions: `aud` only the issuer, as a string.
    pub issuer_only_aud: bool,
    /// `nonce` with `openid`, `state` without it.
    pub nonce_and_state: bool,
    pub https_redirect_uris: bool,
    pub ciba_push: bool,
    pub ciba_signed_required: bool,
    pub binding_message_required: bool,
}

/// How an authorization request travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// Parameters in the `/authorize` query.
    Query,
    /// A `request` object at `/authorize`.
    Signed,
    /// Parameters pushed to `/par`, then `request_uri`.
    Pushed,
    /// A `request` object pushed to `/par`, then `request_uri`.
    PushedSigned,
}

impl Via {
    pub fn of(pushed: bool, signed: bool) -> Self {
        match (pushed, signed) {
            (false, false) => Via::Query,
            (false, true) => Via::Signed,
            (true, false) => Via::Pushed,
            (true, true) => Via::PushedSigned,
        }
    }
}

/// What an authorization request led to.
#[derive(Debug, PartialEq, Eq)]
pub enum Answer {
    /// The login page: the request was accepted.
    Login,
    /// An error: 400 from `/par`, or at the redirect URI (query, fragment,
    /// form_post, or a signed JARM response in any of them).
    Refused(String),
}

pub fn refused(code: &str) -> Answer {
    Answer::Refused(code.to_owned())
}

/// A live server with [`APP`] of the row's profile.
pub struct Matrix {
    pub row: &'static Row,
    pub server: TestServer,
    pub live: Live,
    keys: Vec<(SigningAlg, ClientKey)>,
    /// URL-encoded PEM of a client certificate the trusted proxy passes on.
    cert: String,
    /// `x5t#S256` of that certificate (RFC 8705 §3.1).
    pub cert_x5t: String,
    /// `consent:{id}` for profiles that need a consent resource.
    consent_scope: Option<String>,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

/// A token endpoint answer.
pub struct TokenReply {
    pub status: u16,
    pub headers: HeaderMap,
    pub json: Value,
}

impl TokenReply {
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(
            (self.status, self.json["error"].as_str()),
            (status, Some(code)),
            "{}",
            self.json
        );
    }
}

fn key_of(alg: SigningAlg) -> ClientKey {
    ClientKey {
        key: SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap(),
    }
}

/// `x5t#S256` of the (first) certificate of a PEM: base64url SHA-256 of its DER.
fn x5t_of_pem(pem: &str) -> String {
    let body: String = pem
        .lines()
        .skip_while(|line| !line.starts_with("-----BEGIN CERTIFICATE"))
        .skip(1)
        .take_while(|line| !line.starts_with("-----END"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD.decode(body).unwrap();
    outband_protocol::jose::sha256_b64url(&der)
}

fn claims_of(jwt: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').nth(1).unwrap()).unwrap()).unwrap()
}

impl Matrix {
    /// A server (registration on, client certificates from a trusted proxy on
    /// 127.0.0.1) with [`APP`]: `private_key_jwt` with a key of every
    /// algorithm, code flow, client credentials and CIBA (poll).
    pub async fn new(row: &'static Row) -> Self {
        let (ca_pem, cert_pem) = crate::openbanking_br::certificates();
        let dir = tempfile::tempdir().unwrap();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, ca_pem).unwrap();
        let config = format!(
            "[registration]\nenabled = true\n[tls]\nclient_cert_header = \"{CERT_HEADER}\"\n\
             trusted_proxies = [\"127.0.0.1/32\"]\nclient_ca_file = {:?}\n",
            ca_file.display().to_string()
        );
        let server = TestServer::with_config(&config).await;
        let keys: Vec<_> = EVERY_ALG.iter().map(|alg| (*alg, key_of(*alg))).collect();
        let mut meta = ClientMetadata::new(ClientId::new(APP));
        meta.profile = row.profile;
        meta.token_endpoint_auth_method = M::PrivateKeyJwt;
        meta.jwks = Some(json!({ "keys": keys
            .iter()
            .map(|(_, k)| Value::Object(k.key.public_jwk().as_ref().clone()))
            .collect::<Vec<_>>() }));
        meta.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
        meta.grant_types = vec![
            GrantType::AuthorizationCode,
            GrantType::ClientCredentials,
            GrantType::Ciba,
            GrantType::RefreshToken,
        ];
        meta.scope = Scope::new("openid payments consents");
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
        server.add_client(meta.clone(), None).await;
        server.add_user("alice", None).await;
        let live = server.live().await;
        let cert_x5t = x5t_of_pem(&cert_pem);
        if row.sender == Sender::DpopOrCertificate {
            for (id, method) in [(MTLS_APP, M::PrivateKeyJwt), (TLS_APP, M::TlsClientAuth)] {
                let mut bound = meta.clone();
                bound.client_id = ClientId::new(id);
                bound.token_endpoint_auth_method = method;
                bound.tls_client_certificate_bound_access_tokens = true;
                if method == M::TlsClientAuth {
                    bound.tls_client_auth_subject_dn = Some(CERT_DN.into());
                }
                server.add_client(bound, None).await;
            }
            server.add_password_user(BOB).await;
        }
        let cert = url::form_urlencoded::byte_serialize(cert_pem.as_bytes())
            .collect::<String>()
            .replace('+', "%20");
        let mut matrix = Self {
            row,
            server,
            live,
            keys,
            cert,
            cert_x5t,
            consent_scope: None,
            http: reqwest::Client::new(),
            _dir: dir,
        };
        if Profile::OpenbankingBr == row.profile {
            matrix.consent_scope = Some(format!("consent:{}", matrix.create_consent().await));
        }
        matrix
    }

    /// The algorithm the client signs with when a test does not say: the row's first.
    pub fn alg(&self) -> SigningAlg {
        self.row.algs[0]
    }

    fn key(&self, alg: SigningAlg) -> &ClientKey {
        &self.keys.iter().find(|(a, _)| *a == alg).unwrap().1
    }

    /// The form fields of `private_key_jwt` for [`APP`], the assertion signed
    /// with `alg` and its claims overridden.
    pub fn client_auth(&self, alg: SigningAlg, overrides: Value) -> Vec<(String, String)> {
        self.client_auth_of(APP, alg, overrides)
    }

    /// The form fields that authenticate `client`: `private_key_jwt` with the
    /// keys of [`APP`], or only `client_id` for [`TLS_APP`] (its certificate
    /// authenticates it).
    pub fn client_auth_of(&self, client: &str, alg: SigningAlg, overrides: Value) -> Vec<(String, String)> {
        if client == TLS_APP {
            return vec![("client_id".into(), client.into())];
        }
        vec![
            ("client_id".into(), client.into()),
            ("client_assertion_type".into(), JWT_BEARER.into()),
            (
                "client_assertion".into(),
                client_assertion(self.key(alg), client, T0, overrides),
            ),
        ]
    }

    /// The valid authorization request of the row (JARM where unsigned
    /// responses are refused), with `edits` applied (`None` removes a parameter).
    pub fn request(&self, edits: &[(&str, Option<&str>)]) -> BTreeMap<String, String> {
        let scope = match &self.consent_scope {
            Some(consent) => format!("openid payments {consent}"),
            None => "openid payments".to_owned(),
        };
        let mut params: BTreeMap<String, String> = [
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", &scope),
            ("state", "st-matrix"),
            ("nonce", "n-matrix"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
        if !self.row.unsigned_code {
            params.insert("response_mode".into(), "jwt".into());
        }
        for (name, value) in edits {
            match value {
                Some(value) => params.insert((*name).to_owned(), (*value).to_owned()),
                None => params.remove(*name),
            };
        }
        params
    }

    /// The way the row's profile wants requests sent.
    pub fn via(&self) -> Via {
        Via::of(self.row.par_required, self.row.jar_required)
    }

    /// A request object of [`APP`] carrying `params`, signed with `alg`
    /// (`None`: an unsecured `alg: none` JWT).
    pub fn request_object(&self, params: &BTreeMap<String, String>, alg: Option<SigningAlg>) -> String {
        self.request_object_of(APP, params, alg)
    }

    /// [`Self::request_object`] of `client` (signed with the keys of [`APP`]).
    fn request_object_of(&self, client: &str, params: &BTreeMap<String, String>, alg: Option<SigningAlg>) -> String {
        let mut claims: Map<String, Value> = params.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        for (name, value) in [
            ("iss", json!(client)),
            ("client_id", json!(client)),
            ("aud", json!(ISSUER)),
            ("iat", json!(T0)),
            ("nbf", json!(T0)),
            ("exp", json!(T0 + 300)),
            ("jti", json!(uuid::Uuid::new_v4().to_string())),
        ] {
            claims.insert(name.to_owned(), value);
        }
        match alg {
            Some(alg) => self.key(alg).key.sign(None, &claims).unwrap(),
            None => {
                let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
                let payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
                format!("{header}.{payload}.")
            }
        }
    }

    /// Sends `params` the way `via` says, objects signed with `alg`, and reads the answer.
    pub async fn authorize_signed(
        &self,
        params: &BTreeMap<String, String>,
        via: Via,
        alg: Option<SigningAlg>,
    ) -> Answer {
        let mut browser = Browser::new(&self.live);
        let query = |pairs: &[(&str, &str)]| {
            let mut query = url::form_urlencoded::Serializer::new(String::new());
            query.append_pair("client_id", APP);
            query.extend_pairs(pairs);
            format!("/authorize?{}", query.finish())
        };
        let page = match via {
            Via::Query => {
                let pairs: Vec<_> = params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                browser.get(&query(&pairs)).await
            }
            Via::Signed => {
                // The redirect URI beside the object, so errors about the object itself can be reported.
                let object = self.request_object(params, alg);
                browser
                    .get(&query(&[("request", &object), ("redirect_uri", REDIRECT_URI)]))
                    .await
            }
            Via::Pushed | Via::PushedSigned => {
                let mut form = self.client_auth(self.alg(), json!({}));
                if via == Via::Pushed {
                    form.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
                } else {
                    form.push(("request".into(), self.request_object(params, alg)));
                }
                let reply = self
                    .http
                    .post(format!("{}/par", self.live.base))
                    .form(&form)
                    .send()
                    .await
                    .unwrap();
                let status = reply.status().as_u16();
                let body: Value = reply.json().await.unwrap();
                if status != 201 {
                    assert_eq!(status, 400, "{body}");
                    return Answer::Refused(body["error"].as_str().unwrap().to_owned());
                }
                assert_eq!(body["expires_in"], 60, "pushed requests live 60 s: {body}");
                browser
                    .get(&query(&[("request_uri", body["request_uri"].as_str().unwrap())]))
                    .await
            }
        };
        self.answer(&page).await
    }

    /// [`Self::authorize_signed`] with the row's first algorithm.
    pub async fn authorize(&self, params: &BTreeMap<String, String>, via: Via) -> Answer {
        self.authorize_signed(params, via, Some(self.alg())).await
    }

    /// The answer a page gives; JARM responses are verified against `/jwks`
    /// and must be signed with an algorithm of the profile.
    async fn answer(&self, page: &Page) -> Answer {
        let params: BTreeMap<String, String> = if page.status == 200 && page.text.contains("name=\"interaction\"") {
            return Answer::Login;
        } else if page.status == 200 && page.text.contains(&format!("action=\"{REDIRECT_URI}\"")) {
            // form_post: the answer is in hidden inputs.
            ["error", "response"]
                .into_iter()
                .filter(|name| page.text.contains(&format!("name=\"{name}\"")))
                .map(|name| (name.to_owned(), page.hidden(name)))
                .collect()
        } else {
            let location = page
                .location()
                .unwrap_or_else(|| panic!("neither login nor redirect: {} {}", page.status, page.text));
            assert!(location.starts_with(REDIRECT_URI), "{location}");
            let url = url::Url::parse(&location).unwrap();
            let mut params: BTreeMap<String, String> = url.query_pairs().into_owned().collect();
            params.extend(url::form_urlencoded::parse(url.fragment().unwrap_or_default().as_bytes()).into_owned());
            params
        };
        if let Some(jwt) = params.get("response") {
            let (alg, claims) = crate::jarm::verify_with_jwks(&self.live, jwt).await;
            assert!(
                self.row.algs.iter().any(|a| a.as_str() == alg),
                "{}: JARM signed with {alg}",
                self.row.profile
            );
            return Answer::Refused(
                claims["error"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{claims}"))
                    .to_owned(),
            );
        }
        Answer::Refused(params.get("error").unwrap_or_else(|| panic!("{params:?}")).clone())
    }

    /// `POST /token` as is: `form`, a DPoP proof, the client certificate.
    pub async fn token_raw(&self, form: &[(String, String)], dpop: Option<&str>, cert: bool) -> TokenReply {
        let mut request = self.http.post(format!("{}/token", self.live.base)).form(form);
        if let Some(dpop) = dpop {
            request = request.header("DPoP", dpop);
        }
        if cert {
            request = request.header(CERT_HEADER, &self.cert);
        }
        let reply = request.send().await.unwrap();
        TokenReply {
            status: reply.status().as_u16(),
            headers: reply.headers().clone(),
            json: reply.json().await.unwrap_or(Value::Null),
        }
    }

    /// `POST /token` with `form` plus the client authentication `auth` makes
    /// (called again for a retry) and the client certificate if `cert`, meeting
    /// the row's sender constraint: a DPoP proof, first without a nonce (which
    /// the profile must refuse with `use_dpop_nonce`), then with the server's.
    pub async fn token(
        &self,
        form: &[(&str, &str)],
        cert: bool,
        auth: impl Fn() -> Vec<(String, String)>,
    ) -> TokenReply {
        let full = || {
            let mut full: Vec<(String, String)> =
                form.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
            full.extend(auth());
            full
        };
        match self.row.sender {
            Sender::OnRequest | Sender::Certificate => self.token_raw(&full(), None, cert).await,
            Sender::DpopOrCertificate => {
                let dpop_key = crate::api_support::key();
                let first = proof(&dpop_key, T0, "POST", "/token", None, None, &json!({}));
                let reply = self.token_raw(&full(), Some(&first), cert).await;
                if reply.status != 400 {
                    return reply;
                }
                reply.assert_error(400, "use_dpop_nonce");
                let nonce = reply.headers["dpop-nonce"].to_str().unwrap().to_owned();
                let second = proof(&dpop_key, T0, "POST", "/token", None, Some(&nonce), &json!({}));
                self.token_raw(&full(), Some(&second), cert).await
            }
        }
    }

    /// `POST /token` with `form` and HTTP Basic client credentials (no sender constraint).
    pub async fn token_basic(&self, form: &[(&str, &str)], id: &str, secret: &str) -> TokenReply {
        let reply = self
            .http
            .post(format!("{}/token", self.live.base))
            .basic_auth(id, Some(secret))
            .form(form)
            .send()
            .await
            .unwrap();
        TokenReply {
            status: reply.status().as_u16(),
            headers: reply.headers().clone(),
            json: reply.json().await.unwrap_or(Value::Null),
        }
    }

    /// Client credentials (scope `payments`) as [`APP`], the assertion signed
    /// with `alg` and its claims overridden, meeting the sender constraint.
    pub async fn client_credentials(&self, alg: SigningAlg, overrides: Value) -> TokenReply {
        let cert = self.row.sender == Sender::Certificate;
        self.token(
            &[("grant_type", "client_credentials"), ("scope", "payments")],
            cert,
            || self.client_auth(alg, overrides.clone()),
        )
        .await
    }

    /// A code for `client` (pushed, signed where the row wants it, as the
    /// request of [`Self::request`]) after [`BOB`] logs in and approves.
    pub async fn code_of(&self, client: &str) -> String {
        let params = self.request(&[]);
        let mut form = self.client_auth_of(client, self.alg(), json!({}));
        if self.row.jar_required {
            form.push((
                "request".into(),
                self.request_object_of(client, &params, Some(self.alg())),
            ));
        } else {
            form.extend(params.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        let mut request = self.http.post(format!("{}/par", self.live.base)).form(&form);
        if client == TLS_APP {
            request = request.header(CERT_HEADER, &self.cert);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 201);
        let pushed: Value = reply.json().await.unwrap();
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        query.append_pair("client_id", client);
        query.append_pair("request_uri", pushed["request_uri"].as_str().unwrap());
        let mut browser = Browser::new(&self.live);
        let login = browser.get(&format!("/authorize?{}", query.finish())).await;
        assert_eq!(login.status, 200, "{}", login.text);
        let after_login = browser.login(&login, BOB, PASSWORD).await;
        assert_eq!(after_login.status, 303, "{}", after_login.text);
        let consent = browser.get(&after_login.location().unwrap()).await;
        let redirect = browser.decide(&consent, "approve").await;
        redirect.redirect_params()["code"].clone()
    }

    /// `GET /userinfo` with `Authorization: {scheme} {token}`, over mutual TLS
    /// if `cert`: the status, the body and `WWW-Authenticate`.
    pub async fn userinfo(&self, scheme: &str, token: &str, cert: bool) -> (u16, Value, String) {
        let mut request = self
            .http
            .get(format!("{}/userinfo", self.live.base))
            .header("authorization", format!("{scheme} {token}"));
        if cert {
            request = request.header(CERT_HEADER, &self.cert);
        }
        let reply = request.send().await.unwrap();
        let status = reply.status().as_u16();
        let challenge = reply
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (status, reply.json().await.unwrap_or(Value::Null), challenge)
    }

    /// The claims of a JWT access token.
    pub fn access_claims(reply: &TokenReply) -> Value {
        claims_of(
            reply.json["access_token"]
                .as_str()
                .unwrap_or_else(|| panic!("{}", reply.json)),
        )
    }

    /// Puts another client of the row's profile in the store directly, past
    /// the registration checks, so the token endpoint's own check shows.
    pub async fn add_raw_client(&self, id: &str, method: M, secret: Option<&str>) {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.profile = self.row.profile;
        meta.token_endpoint_auth_method = method;
        meta.grant_types = vec![GrantType::ClientCredentials];
        meta.scope = Scope::new("payments");
        if method == M::TlsClientAuth {
            meta.tls_client_auth_subject_dn = Some(CERT_DN.into());
        }
        self.server.add_client(meta, secret).await;
    }

    /// `POST /register` with `body` plus the row's profile: (status, body).
    pub async fn register(&self, mut body: Value) -> (u16, Value) {
        body["profile"] = json!(self.row.profile.to_string());
        let reply = self
            .http
            .post(format!("{}/register", self.live.base))
            .json(&body)
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    }

    /// A public JWKS for registrations (an ES256 key, a PS256 key).
    pub fn public_jwks(&self) -> Value {
        let keys: Vec<_> = [SigningAlg::ES256, SigningAlg::PS256]
            .iter()
            .map(|alg| Value::Object(self.key(*alg).key.public_jwk().as_ref().clone()))
            .collect();
        json!({ "keys": keys })
    }

    /// `POST /bc-authorize` as [`APP`] with `fields`: (status, body).
    pub async fn bc_authorize(&self, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut form = self.client_auth(self.alg(), json!({}));
        form.extend(fields.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let reply = self
            .http
            .post(format!("{}/bc-authorize", self.live.base))
            .form(&form)
            .send()
            .await
            .unwrap();
        (reply.status().as_u16(), reply.json().await.unwrap())
    }

    /// A signed CIBA request object of [`APP`] for alice, signed with `alg`,
    /// claims overridden (`null` removes one).
    pub fn ciba_object(&self, alg: SigningAlg, overrides: Value) -> String {
        let mut claims = json!({
            "iss": APP, "aud": ISSUER, "iat": T0, "nbf": T0, "exp": T0 + 300,
            "jti": uuid::Uuid::new_v4().to_string(),
            "scope": "openid payments", "login_hint": "alice", "binding_message": "MATRIX-1",
        });
        for (k, v) in overrides.as_object().unwrap() {
            if v.is_null() {
                claims.as_object_mut().unwrap().remove(k);
            } else {
                claims[k] = v.clone();
            }
        }
        self.key(alg).key.sign(None, claims.as_object().unwrap()).unwrap()
    }

    /// Creates a payment consent of [`APP`] through the consent API; returns its id.
    async fn create_consent(&self) -> String {
        let token = self
            .token(
                &[("grant_type", "client_credentials"), ("scope", "consents")],
                self.row.sender == Sender::Certificate,
                || self.client_auth(self.alg(), json!({})),
            )
            .await;
        assert_eq!(token.status, 200, "{}", token.json);
        let mut request = self
            .http
            .post(format!("{}{CONSENTS}", self.live.base))
            .bearer_auth(token.json["access_token"].as_str().unwrap())
            .header("x-fapi-interaction-id", INTERACTION)
            .json(&payment_body("1.00"));
        if self.row.sender == Sender::Certificate {
            request = request.header(CERT_HEADER, &self.cert);
        }
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), 201);
        let body: Value = reply.json().await.unwrap();
        body["data"]["consentId"].as_str().unwrap().to_owned()
    }
}
