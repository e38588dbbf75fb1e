//! HTTP to the AS's device API (`docs/device-api.md`): enrollment, DPoP proofs
//! with the server's nonces, the device access token, and authenticated calls.
//!
//! Every answer carries a fresh `DPoP-Nonce`; [`DeviceApi`] keeps the latest
//! one and puts it in the next proof. When the AS still says `use_dpop_nonce`
//! (400 at `/token`, 401 challenge elsewhere) the call is retried once with the
//! new nonce. The access token (5 minutes) is fetched when missing or expired
//! and once more when a call is refused with `invalid_token`.

use std::sync::{Mutex, PoisonError};

use josekit::jws::JwsHeader;
use outband_protocol::jose::{parse_jwk, sha256_b64url, Jwk, SigningKey};
use reqwest::header::{HeaderMap, AUTHORIZATION, WWW_AUTHENTICATE};
use reqwest::{Method, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};
use url::Url;
use zeroize::Zeroizing;

use crate::{Clock, Error};

const DPOP_NONCE: &str = "dpop-nonce";
/// Refresh the token this many seconds before it expires.
const TOKEN_MARGIN: i64 = 15;

/// `{issuer}{path}`: the issuer as the AS spells it (no trailing slash) plus the path.
pub(crate) fn endpoint(issuer: &Url, path: &str) -> String {
    format!("{}{path}", issuer.as_str().trim_end_matches('/'))
}

/// A fresh random id for `jti`.
pub(crate) fn random_id() -> String {
    use base64::Engine;
    use rand::RngCore;
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
    error_description: Option<String>,
}

/// An error answer as [`Error::Server`] (409 as [`Error::RequestGone`]).
pub(crate) async fn server_error(response: Response) -> Error {
    let status = response.status();
    let challenge = challenge_error(response.headers());
    let text = response.text().await.unwrap_or_default();
    let (error, description) = match serde_json::from_str::<OAuthError>(&text) {
        Ok(body) => (body.error, body.error_description),
        Err(_) => match challenge {
            Some((error, description)) => (error, description),
            None => (
                format!("http_{}", status.as_u16()),
                Some(text.chars().take(200).collect::<String>()).filter(|t| !t.trim().is_empty()),
            ),
        },
    };
    if status == StatusCode::CONFLICT {
        return Error::RequestGone(description.unwrap_or(error));
    }
    if status == StatusCode::UNAUTHORIZED && description.as_deref() == Some("device revoked") {
        return Error::Revoked;
    }
    Error::Server {
        status: status.as_u16(),
        error,
        description,
    }
}

/// `error` and `error_description` of a `WWW-Authenticate: DPoP ...` challenge.
fn challenge_error(headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let value = headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let param = |name: &str| {
        let start = value.find(&format!("{name}=\""))? + name.len() + 2;
        let rest = value.get(start..)?;
        Some(rest.get(..rest.find('"')?)?.to_owned())
    };
    Some((param("error")?, param("error_description")))
}

/// `GET {issuer}/jwks`.
pub(crate) async fn fetch_jwks(http: &reqwest::Client, issuer: &Url) -> Result<Vec<Jwk>, Error> {
    let response = http.get(endpoint(issuer, "/jwks")).send().await?;
    if !response.status().is_success() {
        return Err(server_error(response).await);
    }
    let body: Value = response
        .json()
        .await
        .map_err(|e| Error::Network(format!("the issuer's JWKS is not JSON ({})", e.without_url())))?;
    let keys = body
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Network("the issuer's JWKS has no keys".into()))?;
    Ok(keys.iter().filter_map(|key| parse_jwk(key).ok()).collect())
}

/// `POST /device/v1/enroll` answer.
#[derive(Deserialize)]
pub(crate) struct Enrolled {
    pub device_id: String,
    pub device_credential: String,
    pub subject: String,
    pub username: String,
}

/// `POST /device/v1/enroll`.
pub(crate) async fn enroll(
    http: &reqwest::Client,
    issuer: &Url,
    code: &str,
    public_jwk: &Jwk,
    name: &str,
) -> Result<Enrolled, Error> {
    let body = json!({ "activation_code": code, "public_jwk": public_jwk.as_ref(), "name": name });
    let response = http
        .post(endpoint(issuer, "/device/v1/enroll"))
        .json(&body)
        .send()
        .await?;
    if !response.status().is_success() {
        return Err(server_error(response).await);
    }
    response
        .json()
        .await
        .map_err(|e| Error::Network(format!("the enrollment answer is unreadable ({})", e.without_url())))
}

struct Token {
    value: Zeroizing<String>,
    expires_at: i64,
}

/// The device's authenticated channel to its AS.
pub(crate) struct DeviceApi {
    http: reqwest::Client,
    issuer: Url,
    key: SigningKey,
    credential: Zeroizing<String>,
    clock: Clock,
    nonce: Mutex<Option<String>>,
    token: Mutex<Option<Token>>,
    /// One token fetch at a time (the pending list and the stream both need one).
    refresh: tokio::sync::Mutex<()>,
}

impl DeviceApi {
    pub(crate) fn new(http: reqwest::Client, issuer: Url, key: SigningKey, credential: &str, clock: Clock) -> Self {
        Self {
            http,
            issuer,
            key,
            credential: Zeroizing::new(credential.to_owned()),
            clock,
            nonce: Mutex::new(None),
            token: Mutex::new(None),
            refresh: tokio::sync::Mutex::new(()),
        }
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn now(&self) -> i64 {
        (self.clock)()
    }

    fn remember_nonce(&self, headers: &HeaderMap) {
        if let Some(nonce) = headers.get(DPOP_NONCE).and_then(|v| v.to_str().ok()) {
            *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = Some(nonce.to_owned());
        }
    }

    /// A DPoP proof for `method url` with the latest nonce (and `ath` for `token`).
    fn proof(&self, method: &Method, url: &str, token: Option<&str>) -> Result<String, Error> {
        let mut claims = serde_json::Map::new();
        claims.insert("htm".into(), json!(method.as_str()));
        claims.insert("htu".into(), json!(url));
        claims.insert("iat".into(), json!(self.now()));
        claims.insert("jti".into(), json!(random_id()));
        if let Some(nonce) = self.nonce.lock().unwrap_or_else(PoisonError::into_inner).clone() {
            claims.insert("nonce".into(), json!(nonce));
        }
        if let Some(token) = token {
            claims.insert("ath".into(), json!(sha256_b64url(token.as_bytes())));
        }
        let mut header = JwsHeader::new();
        header.set_token_type("dpop+jwt");
        header.set_jwk(self.key.public_jwk().clone());
        self.key
            .sign_with_header(header, &claims)
            .map_err(|e| Error::Storage(format!("cannot sign a DPoP proof: {e}")))
    }

    /// A valid access token: the cached one, or a fresh one.
    async fn access_token(&self, force: bool) -> Result<Zeroizing<String>, Error> {
        let _one_at_a_time = self.refresh.lock().await;
        if !force {
            if let Some(token) = self.token.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
                if token.expires_at - TOKEN_MARGIN > self.now() {
                    return Ok(token.value.clone());
                }
            }
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = Some(token);
        Ok(value)
    }

    /// `POST /device/v1/token`, retried once on `use_dpop_nonce`.
    async fn fetch_token(&self) -> Result<Token, Error> {
        #[derive(Deserialize)]
        struct Answer {
            access_token: String,
            expires_in: i64,
        }
        let url = endpoint(&self.issuer, "/device/v1/token");
        let mut retried = false;
        loop {
            let proof = self.proof(&Method::POST, &url, None)?;
            let body = json!({ "device_credential": self.credential.as_str() });
            let response = self.http.post(&url).header("DPoP", proof).json(&body).send().await?;
            self.remember_nonce(response.headers());
            if response.status().is_success() {
                let answer: Answer = response
                    .json()
                    .await
                    .map_err(|e| Error::Network(format!("the token answer is unreadable ({})", e.without_url())))?;
                return Ok(Token {
                    value: Zeroizing::new(answer.access_token),
                    expires_at: self.now() + answer.expires_in,
                });
            }
            let err = server_error(response).await;
            match err {
                Error::Server { ref error, .. } if error == "use_dpop_nonce" && !retried => retried = true,
                err => return Err(err),
            }
        }
    }

    /// Forgets the access token (it was refused).
    fn drop_token(&self) {
        *self.token.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }

    /// An authenticated call to `path` (query separate: it is not part of `htu`).
    /// Returns the successful response; error answers become [`Error`]s.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        query: Option<&str>,
        body: Option<&Value>,
    ) -> Result<Response, Error> {
        let url = endpoint(&self.issuer, path);
        let mut nonce_retried = false;
        let mut token_retried = false;
        let mut force = false;
        loop {
            let token = self.access_token(force).await?;
            force = false;
            let proof = self.proof(&method, &url, Some(&token))?;
            let full = match query {
                Some(query) => format!("{url}?{query}"),
                None => url.clone(),
            };
            let mut request = self
                .http
                .request(method.clone(), &full)
                .header(AUTHORIZATION, format!("DPoP {}", token.as_str()))
                .header("DPoP", proof);
            if let Some(body) = body {
                request = request.json(body);
            }
            let response = request.send().await?;
            self.remember_nonce(response.headers());
            if response.status().is_success() {
                return Ok(response);
            }
            if response.status() == StatusCode::UNAUTHORIZED {
                match challenge_error(response.headers()) {
                    Some((error, _)) if error == "use_dpop_nonce" && !nonce_retried => {
                        nonce_retried = true;
                        continue;
                    }
                    Some((error, _)) if error == "invalid_token" && !token_retried => {
                        // Expired, or the device was revoked: a new token tells which.
                        token_retried = true;
                        self.drop_token();
                        force = true;
                        continue;
                    }
                    _ => {}
                }
            }
            return Err(server_error(response).await);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn challenges_are_read() {
        let mut headers = HeaderMap::new();
        headers.insert(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "DPoP error=\"use_dpop_nonce\", error_description=\"a server nonce is required\", algs=\"ES256\"",
            ),
        );
        let (error, description) = challenge_error(&headers).unwrap();
        assert_eq!(error, "use_dpop_nonce");
        assert_eq!(description.as_deref(), Some("a server nonce is required"));
        assert!(challenge_error(&HeaderMap::new()).is_none());
    }

    #[test]
    fn endpoints_follow_the_issuer() {
        let issuer = Url::parse("https://as.example.com").unwrap();
        assert_eq!(endpoint(&issuer, "/jwks"), "https://as.example.com/jwks");
        let tenant = Url::parse("https://as.example.com/t1").unwrap();
        assert_eq!(endpoint(&tenant, "/jwks"), "https://as.example.com/t1/jwks");
    }
}
