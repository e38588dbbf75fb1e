//! Test support for the browser flows: the server on a real socket, a browser
//! with a cookie jar that does not follow redirects, and a web client.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::sha256_b64url;
use outband_protocol::{ClientId, ClientMetadata, GrantType, Password, Profile, Scope, Subject};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::Value;

use crate::support::{TestServer, T0};

/// The web client of these tests (secret `web-secret`).
pub const WEB: &str = "web";
/// Its redirect URI.
pub const REDIRECT_URI: &str = "https://client.example/cb";
/// The PKCE verifier of these tests, and its S256 challenge (RFC 7636 Appendix B).
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
/// Alice's password.
pub const PASSWORD: &str = "correct horse battery";

/// The server on 127.0.0.1, stopped when dropped.
pub struct Live {
    pub base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestServer {
    /// Serves this state on a real socket.
    pub async fn live(&self) -> Live {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(outband_server::run(listener, self.state.clone(), async {
            let _ = stopped.await;
        }));
        Live {
            base: format!("http://{addr}"),
            stop: Some(stop),
        }
    }

    /// Registers a web client for the code flow with `profile`.
    pub async fn add_web_client(&self, id: &str, profile: Profile, edit: impl FnOnce(&mut ClientMetadata)) {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.client_name = Some("Demo Shop".into());
        meta.scope = Scope::new("openid profile email phone payments");
        meta.grant_types = vec![GrantType::AuthorizationCode, GrantType::RefreshToken];
        meta.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
        meta.profile = profile;
        edit(&mut meta);
        self.add_client(meta, Some(&format!("{id}-secret"))).await;
    }

    /// Creates `username` with [`PASSWORD`]; returns the subject.
    pub async fn add_password_user(&self, username: &str) -> Subject {
        let subject = Subject::new(self.add_user(username, None).await);
        let hash = outband_server::password::hash(&Password::new(PASSWORD)).unwrap();
        assert!(self.state.store.set_password_hash(&subject, Some(&hash)).await.unwrap());
        subject
    }
}

/// One response, read whole.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub headers: HeaderMap,
    pub text: String,
}

impl Page {
    /// The `Location` header.
    pub fn location(&self) -> Option<String> {
        self.headers.get(LOCATION).map(|v| v.to_str().unwrap().to_owned())
    }

    /// The value of hidden input `name`.
    pub fn hidden(&self, name: &str) -> String {
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .text
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} in {}", self.text))
            + marker.len();
        let rest = &self.text[start..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    /// The query parameters of the redirect.
    pub fn redirect_params(&self) -> BTreeMap<String, String> {
        let location = self
            .location()
            .unwrap_or_else(|| panic!("no redirect: {} {}", self.status, self.text));
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        url::Url::parse(&location).unwrap().query_pairs().into_owned().collect()
    }
}

/// A browser: a cookie jar over reqwest, redirects not followed.
pub struct Browser {
    http: reqwest::Client,
    base: String,
    pub cookies: BTreeMap<String, String>,
}

impl Browser {
    pub fn new(live: &Live) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            base: live.base.clone(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header("cookie", cookie)
        };
        let response = request.send().await.unwrap();
        let headers = response.headers().clone();
        for value in headers.get_all(SET_COOKIE) {
            let text = value.to_str().unwrap();
            assert!(text.contains("HttpOnly") && text.contains("SameSite=Lax"), "{text}");
            assert!(text.contains("Secure"), "the issuer is https: {text}");
            let (name, value) = text.split(';').next().unwrap().split_once('=').unwrap();
            self.cookies.insert(name.to_owned(), value.to_owned());
        }
        Page {
            status: response.status().as_u16(),
            headers,
            text: response.text().await.unwrap(),
        }
    }

    /// `GET path` (with query).
    pub async fn get(&mut self, path: &str) -> Page {
        let request = self.http.get(format!("{}{path}", self.base));
        self.send(request).await
    }

    /// `POST path` with a form.
    pub async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let request = self.http.post(format!("{}{path}", self.base)).form(form);
        self.send(request).await
    }

    /// Fills in the login form of `page`.
    pub async fn login(&mut self, page: &Page, username: &str, password: &str) -> Page {
        let (interaction, csrf) = (page.hidden("interaction"), page.hidden("csrf"));
        self.post(
            "/authorize/login",
            &[
                ("interaction", &interaction),
                ("csrf", &csrf),
                ("username", username),
                ("password", password),
            ],
        )
        .await
    }

    /// Answers the consent form of `page`.
    pub async fn decide(&mut self, page: &Page, decision: &str) -> Page {
        let (interaction, csrf) = (page.hidden("interaction"), page.hidden("csrf"));
        self.post(
            "/authorize/consent",
            &[("interaction", &interaction), ("csrf", &csrf), ("decision", decision)],
        )
        .await
    }

    /// From the login page to the redirect: log in as alice, then approve.
    pub async fn login_and_approve(&mut self, login_page: &Page) -> Page {
        assert_eq!(login_page.status, 200, "{}", login_page.text);
        let after_login = self.login(login_page, "alice", PASSWORD).await;
        assert_eq!(after_login.status, 303, "{}", after_login.text);
        let consent = self.get(&after_login.location().unwrap()).await;
        assert_eq!(consent.status, 200, "{}", consent.text);
        self.decide(&consent, "approve").await
    }
}

/// `/authorize?` with the standard code request of [`WEB`] and `extra` parameters
/// (an empty value removes a standard one).
pub fn authorize_path(client_id: &str, extra: &[(&str, &str)]) -> String {
    let mut params: BTreeMap<&str, &str> = [
        ("client_id", client_id),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid profile email"),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .collect();
    for (k, v) in extra {
        params.insert(k, v);
    }
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params.iter().filter(|(_, v)| !v.is_empty()))
        .finish();
    format!("/authorize?{query}")
}

/// `POST /token` for a code, as `client_id` with its secret.
pub async fn redeem(live: &Live, client_id: &str, code: &str, verifier: Option<&str>) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
    ];
    if let Some(verifier) = verifier {
        form.push(("code_verifier", verifier));
    }
    let reply = reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .basic_auth(client_id, Some(format!("{client_id}-secret")))
        .form(&form)
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

/// The claims of a JWT (its signature is checked elsewhere).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The `at_hash` of an access token for an RS256-signed ID token.
pub fn at_hash(access_token: &str) -> String {
    let digest = URL_SAFE_NO_PAD.decode(sha256_b64url(access_token.as_bytes())).unwrap();
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

/// When the tests' users log in.
pub const LOGIN_TIME: i64 = T0;

/// `POST /token` for a code as a `private_key_jwt` client.
pub async fn redeem_with(
    live: &Live,
    client_id: &str,
    key: &crate::support::ClientKey,
    code: &str,
    verifier: &str,
) -> (u16, Value) {
    let assertion = crate::support::client_assertion(key, client_id, T0, serde_json::json!({}));
    let reply = reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", verifier),
            ("client_id", client_id),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}
