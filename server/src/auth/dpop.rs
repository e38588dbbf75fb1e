//! DPoP proofs ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)): a JWT the
//! caller signs with its own key for each request, proving that it holds the key
//! an access token is bound to.
//!
//! [`verify_proof`] runs the checks of [RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3)
//! in order (shape, `typ`, `alg`, embedded public `jwk`, signature, `htm`,
//! `htu`, `iat`, `ath`, server nonce) and, last, records the `jti` so a proof
//! works once. It knows nothing about who calls: the device channel uses it for
//! its token endpoint and its API, the token endpoint binds tokens with it
//! ([`token_request_proof`]), and protected resources check bound tokens through
//! [`crate::auth::resource`].
//!
//! ## Server nonces ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8))
//! A nonce is the issue time sealed with the server's key file
//! ([`crate::keys::Sealer`]): stateless, so any node of a cluster checks a nonce
//! another node made, and valid for [`NONCE_LIFETIME`]. A proof with a missing,
//! unreadable or stale nonce is answered `use_dpop_nonce`; the response carries
//! a fresh nonce in the `DPoP-Nonce` header ([`fresh_nonce`]).

use std::borrow::Cow;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::Response;
use outband_protocol::jose::{
    is_private_jwk, jwk_thumbprint, parse_jwk, sha256_b64url, verify_jwt, Jwk, UnverifiedJwt,
};
use outband_protocol::{ErrorCode, SigningAlg};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::auth::resource::{challenge_error, TokenScheme};
use crate::auth::{mtls, mtls_alias, numeric_date};
use crate::error::Error;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, StoreError};

/// The request header that carries the proof.
pub const DPOP_HEADER: HeaderName = HeaderName::from_static("dpop");
/// The response header that carries a fresh server nonce.
pub const DPOP_NONCE_HEADER: HeaderName = HeaderName::from_static("dpop-nonce");
/// The `typ` of every proof.
pub const DPOP_JWT_TYPE: &str = "dpop+jwt";
/// The algorithms a proof may use: asymmetric only, never `none` or `HS*`.
pub const DPOP_ALGS: [SigningAlg; 3] = [SigningAlg::ES256, SigningAlg::EdDSA, SigningAlg::PS256];
/// How far a proof's `iat` may be from our clock, in seconds.
pub const IAT_LEEWAY: i64 = 60;
/// How long a proof's `jti` is remembered after its `iat`: longer than any
/// `iat` we accept, so a replay is always caught.
pub const JTI_RETENTION: i64 = 120;
/// How long a server nonce stays valid, in seconds.
pub const NONCE_LIFETIME: i64 = 300;
/// Longest `jti` we store.
const MAX_JTI_LEN: usize = 256;
/// Domain separation: a sealed value of another kind never passes as a nonce.
const NONCE_PREFIX: &str = "dpop-nonce:";

/// A verified proof.
#[derive(Clone, Debug)]
pub struct DpopProof {
    /// RFC 7638 thumbprint of the proof key (what tokens are bound to).
    pub jkt: String,
    /// The proof key (public).
    pub jwk: Jwk,
    /// The proof's `jti`, already recorded as used.
    pub jti: String,
}

/// Whether a proof must carry a server nonce (`"required"` / `"optional"` in the configuration).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NoncePolicy {
    /// A missing or stale nonce is answered `use_dpop_nonce`.
    Required,
    /// No nonce needed; one that is present must still be valid.
    Optional,
}

/// Why a proof was refused.
#[derive(Debug, thiserror::Error)]
pub enum DpopError {
    /// The proof is malformed, wrongly signed, or for another request.
    #[error("{0}")]
    Invalid(Cow<'static, str>),
    /// The proof lacks a valid, fresh server nonce.
    #[error("{0}")]
    UseNonce(&'static str),
    /// The replay cache could not be reached.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NoncePolicy {
    /// `Required` when either says so.
    pub fn or(self, other: Self) -> Self {
        if self == Self::Required || other == Self::Required {
            Self::Required
        } else {
            Self::Optional
        }
    }

    /// The policy for `client`: `base`, raised to `Required` when the client's
    /// profile asks for nonces ([`Policy::requires_dpop_nonce`]).
    pub fn for_client(base: Self, client: Option<&ClientRecord>) -> Self {
        let profile_wants = client.is_some_and(|c| Policy::of(c.metadata.profile).requires_dpop_nonce());
        base.or(if profile_wants { Self::Required } else { Self::Optional })
    }
}

impl DpopError {
    fn invalid(description: impl Into<Cow<'static, str>>) -> Self {
        Self::Invalid(description.into())
    }

    /// The answer of a token-style (authorization server) endpoint: 400
    /// `invalid_dpop_proof` or `use_dpop_nonce` ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)).
    pub fn into_token_error(self) -> Error {
        match self {
            Self::Invalid(description) => Error::new(ErrorCode::InvalidDpopProof, description),
            Self::UseNonce(description) => Error::new(ErrorCode::UseDpopNonce, description),
            Self::Store(err) => Error::Store(err),
        }
    }

    /// The answer of a resource-style endpoint: 401 with a `WWW-Authenticate:
    /// DPoP` challenge naming the error ([RFC 9449 §7.1](https://www.rfc-editor.org/rfc/rfc9449#section-7.1)).
    pub fn into_resource_error(self) -> Error {
        match self {
            Self::Invalid(description) => resource_error(ErrorCode::InvalidDpopProof, description),
            Self::UseNonce(description) => resource_error(ErrorCode::UseDpopNonce, description.into()),
            Self::Store(err) => Error::Store(err),
        }
    }
}

/// A 401 with a `WWW-Authenticate: DPoP error=.., error_description=.., algs=..` challenge.
pub fn resource_error(code: ErrorCode, description: Cow<'static, str>) -> Error {
    challenge_error(TokenScheme::Dpop, code, description, None)
}

/// The `algs` parameter of a challenge.
pub fn algs() -> String {
    DPOP_ALGS.map(SigningAlg::as_str).join(" ")
}

/// Verifies the proof in a `DPoP` header for `method` on `url` (absolute, no
/// query or fragment, under the issuer), bound to `access_token` when one is
/// presented, with a server nonce required. See [`verify_proof_with`].
pub async fn verify_proof(
    state: &AppState,
    header_value: &str,
    method: &Method,
    url: &str,
    access_token: Option<&str>,
) -> Result<DpopProof, DpopError> {
    verify_proof_with(state, header_value, method, url, access_token, NoncePolicy::Required).await
}

/// Verifies a proof ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3)).
/// `htu` may be `url` (the endpoint under the issuer) or the same path under
/// `[tls] mtls_base_url` ([`mtls_alias`]): discovery publishes that alias, and a
/// client that authenticates with mutual TLS calls it. The `jti` is recorded
/// only once every other check passed, so a refused proof never uses up an id.
pub async fn verify_proof_with(
    state: &AppState,
    header_value: &str,
    method: &Method,
    url: &str,
    access_token: Option<&str>,
    nonce: NoncePolicy,
) -> Result<DpopProof, DpopError> {
    let (jwk, claims) = verify_signature(header_value)?;
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if claim("htm") != Some(method.as_str()) {
        return Err(DpopError::invalid("htm does not match the request method"));
    }
    let htu = claim("htu")
        .and_then(normalize_htu)
        .ok_or_else(|| DpopError::invalid("htu is missing or not an http(s) URL"))?;
    let alias = mtls_alias(&state.settings, url);
    if ![Some(url), alias.as_deref()]
        .into_iter()
        .flatten()
        .any(|accepted| normalize_htu(accepted).as_deref() == Some(htu.as_str()))
    {
        return Err(DpopError::invalid("htu does not match the request URL"));
    }
    let now = state.now();
    let iat = claims
        .get("iat")
        .and_then(numeric_date)
        .ok_or_else(|| DpopError::invalid("iat is missing"))?;
    if (iat - now).abs() > IAT_LEEWAY {
        return Err(DpopError::invalid("iat is too far from the server time"));
    }
    let jti = claim("jti")
        .filter(|jti| !jti.is_empty() && jti.len() <= MAX_JTI_LEN)
        .ok_or_else(|| DpopError::invalid("jti is missing or too long"))?
        .to_owned();
    if let Some(token) = access_token {
        if claim("ath") != Some(sha256_b64url(token.as_bytes()).as_str()) {
            return Err(DpopError::invalid("ath is missing or does not match the access token"));
        }
    }
    check_nonce_claim(state, claim("nonce"), nonce, now)?;
    let jkt = jwk_thumbprint(&jwk).map_err(|_| DpopError::invalid("the jwk has no thumbprint"))?;
    if !state
        .store
        .use_jti(&format!("dpop:{jkt}"), &jti, iat + JTI_RETENTION)
        .await?
    {
        return Err(DpopError::invalid("the proof was already used (jti)"));
    }
    Ok(DpopProof { jkt, jwk, jti })
}

/// The proof's `nonce` claim against `policy`.
fn check_nonce_claim(state: &AppState, nonce: Option<&str>, policy: NoncePolicy, now: i64) -> Result<(), DpopError> {
    match (nonce, policy) {
        (None, NoncePolicy::Optional) => Ok(()),
        (None, NoncePolicy::Required) => Err(DpopError::UseNonce("a server nonce is required")),
        (Some(value), _) => check_nonce(state, value, now),
    }
}

/// Answers `use_dpop_nonce` before `client` authenticates with a client
/// assertion at the token or PAR endpoint, when the request's proof would be
/// refused for want of a fresh server nonce. Authentication uses up the
/// assertion's `jti`, and a client retrying after `use_dpop_nonce` (RFC 9449 §8)
/// may resend the same request with only a new proof: checked afterwards, the
/// retry would be refused as an assertion replay. Only the `nonce` claim is read
/// here; the whole proof is verified after authentication as before.
pub fn refuse_missing_nonce_early(state: &AppState, headers: &HeaderMap, client: &ClientRecord) -> Result<(), Error> {
    let Ok(Some(proof)) = dpop_header(headers) else {
        return Ok(());
    };
    let Ok(unverified) = UnverifiedJwt::decode(proof) else {
        return Ok(());
    };
    let policy = NoncePolicy::for_client(state.settings.token_dpop_nonce, Some(client));
    let nonce = unverified.claims.get("nonce").and_then(Value::as_str);
    check_nonce_claim(state, nonce, policy, state.now()).map_err(DpopError::into_token_error)
}

/// Checks `typ`, `alg` and the embedded key, then the signature with that key.
fn verify_signature(token: &str) -> Result<(Jwk, serde_json::Map<String, Value>), DpopError> {
    let unverified = UnverifiedJwt::decode(token).map_err(|_| DpopError::invalid("the proof is not a JWT"))?;
    if unverified.typ() != Some(DPOP_JWT_TYPE) {
        return Err(DpopError::invalid("typ must be dpop+jwt"));
    }
    let alg = unverified
        .alg()
        .and_then(SigningAlg::parse)
        .filter(|alg| DPOP_ALGS.contains(alg))
        .ok_or_else(|| DpopError::invalid(format!("alg must be one of {}", algs())))?;
    let jwk = unverified
        .header
        .get("jwk")
        .ok_or_else(|| DpopError::invalid("the jwk header is missing"))
        .and_then(|value| parse_jwk(value).map_err(|_| DpopError::invalid("the jwk header is not a JWK")))?;
    if is_private_jwk(&jwk) {
        return Err(DpopError::invalid("the jwk header must be a public key"));
    }
    let key = key_for_header(&jwk, unverified.kid());
    let verified =
        verify_jwt(token, &[key], &[alg]).map_err(|_| DpopError::invalid("the signature does not verify"))?;
    Ok((jwk, verified.claims))
}

/// `jwk` with the `kid` of the JWS header (or none): the key is named by the
/// header itself, so a `kid` must not make it unusable.
pub fn key_for_header(jwk: &Jwk, kid: Option<&str>) -> Jwk {
    let mut map = jwk.as_ref().clone();
    match kid {
        Some(kid) => map.insert("kid".into(), Value::String(kid.to_owned())),
        None => map.remove("kid"),
    };
    Jwk::from_map(map).unwrap_or_else(|_| jwk.clone())
}

/// `htu` as compared ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3)
/// point 9): scheme and host lowercased, default port dropped, path normalized,
/// no query or fragment.
pub fn normalize_htu(value: &str) -> Option<String> {
    let mut url = url::Url::parse(value).ok()?;
    if !matches!(url.scheme(), "https" | "http") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

/// The one `DPoP` header of a request, if any; two are `invalid_dpop_proof`
/// ([RFC 9449 §4.3](https://www.rfc-editor.org/rfc/rfc9449#section-4.3) point 1).
pub fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let mut values = headers.get_all(DPOP_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(Some)
            .map_err(|_| Error::new(ErrorCode::InvalidDpopProof, "the DPoP header is not text")),
        (Some(_), Some(_)) => Err(Error::new(ErrorCode::InvalidDpopProof, "send one DPoP header")),
    }
}

/// The proof of a token request ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)),
/// checked for `client`: `None` when the request has none and the client may
/// go without (it then gets Bearer tokens, or certificate-bound ones). A client
/// registered with `dpop_bound_access_tokens`
/// ([RFC 9449 §5.2](https://www.rfc-editor.org/rfc/rfc9449#section-5.2)) must
/// send one; so must a client held by its profile to sender-constrained tokens
/// ([`Policy::requires_sender_constrained_tokens`], FAPI 2) unless its tokens are
/// certificate-bound instead ([`mtls::binds_tokens`]: the token endpoint then
/// refuses a request without its client certificate). The nonce is required
/// when `[tokens] dpop_nonce = "required"` or the profile asks. Errors are
/// token-endpoint style (400 `invalid_dpop_proof` / `use_dpop_nonce`).
pub async fn token_request_proof(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientRecord,
) -> Result<Option<DpopProof>, Error> {
    let policy = Policy::of(client.metadata.profile);
    let Some(proof) = dpop_header(headers)? else {
        if policy.requires_sender_constrained_tokens() && !mtls::binds_tokens(client) {
            return Err(Error::new(
                ErrorCode::InvalidDpopProof,
                format!(
                    "the {} profile requires sender-constrained tokens: send a DPoP proof, or register \
                     tls_client_certificate_bound_access_tokens for certificate-bound tokens (RFC 8705)",
                    client.metadata.profile
                ),
            ));
        }
        if client.metadata.dpop_bound_access_tokens {
            return Err(Error::new(
                ErrorCode::InvalidDpopProof,
                "this client is registered with dpop_bound_access_tokens: send a DPoP proof",
            ));
        }
        return Ok(None);
    };
    let url = state.settings.endpoint("/token");
    let nonce = NoncePolicy::for_client(state.settings.token_dpop_nonce, Some(client));
    verify_proof_with(state, proof, &Method::POST, &url, None, nonce)
        .await
        .map(Some)
        .map_err(DpopError::into_token_error)
}

/// Middleware: every answer carries a fresh `DPoP-Nonce`
/// ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)), error or
/// not, so a client rarely needs the `use_dpop_nonce` round trip. Used by the
/// token endpoint, the device API and the resource API.
pub async fn add_nonce(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    match fresh_nonce(&state).map(|nonce| HeaderValue::from_str(&nonce)) {
        Ok(Ok(value)) => {
            response.headers_mut().insert(DPOP_NONCE_HEADER, value);
        }
        _ => tracing::warn!("could not make a DPoP nonce"),
    }
    response
}

/// A fresh server nonce: the current time, sealed.
pub fn fresh_nonce(state: &AppState) -> Result<String, Error> {
    state
        .keys
        .sealer()
        .seal(format!("{NONCE_PREFIX}{}", state.now()).as_bytes())
        .map_err(Error::internal)
}

fn check_nonce(state: &AppState, nonce: &str, now: i64) -> Result<(), DpopError> {
    let issued = state
        .keys
        .sealer()
        .open(nonce)
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| text.strip_prefix(NONCE_PREFIX)?.parse::<i64>().ok())
        .ok_or(DpopError::UseNonce("the nonce is not one of ours"))?;
    // A little leeway into the future for nodes whose clocks differ slightly.
    if issued > now + IAT_LEEWAY || now - issued > NONCE_LIFETIME {
        return Err(DpopError::UseNonce("the nonce is stale"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[test]
    fn htu_normalization() {
        let same = [
            "https://AS.Example.test:443/device/v1/token",
            "HTTPS://as.example.test/device/v1/token?x=1#frag",
            "https://as.example.test/device/v1/./token",
        ];
        for url in same {
            assert_eq!(
                normalize_htu(url).as_deref(),
                Some("https://as.example.test/device/v1/token"),
                "{url}"
            );
        }
        assert_eq!(
            normalize_htu("http://127.0.0.1:8080/x").as_deref(),
            Some("http://127.0.0.1:8080/x")
        );
        assert_ne!(
            normalize_htu("https://as.example.test:8443/device/v1/token"),
            normalize_htu("https://as.example.test/device/v1/token")
        );
        assert_eq!(normalize_htu("ftp://as.example.test/x"), None);
        assert_eq!(normalize_htu("/device/v1/token"), None);
    }

    #[test]
    fn challenges_stay_encodable() {
        let Error::OAuth { challenge, status, .. } = resource_error(ErrorCode::UseDpopNonce, "x".into()) else {
            panic!("an OAuth error");
        };
        assert_eq!(status, Some(StatusCode::UNAUTHORIZED));
        assert_eq!(
            challenge.as_deref(),
            Some("DPoP error=\"use_dpop_nonce\", error_description=\"x\", algs=\"ES256 EdDSA PS256\"")
        );
    }

    #[test]
    fn proofs_without_typ_alg_or_public_jwk_are_refused() {
        let key = outband_protocol::jose::SigningKey::from_private_jwk(
            &SigningAlg::ES256.generate_private_jwk().unwrap(),
            SigningAlg::ES256,
        )
        .unwrap();
        let claims = serde_json::json!({"htm": "POST"});
        let claims = claims.as_object().unwrap();
        // No typ.
        let mut header = josekit::jws::JwsHeader::new();
        header.set_jwk(key.public_jwk().clone());
        let token = key.sign_with_header(header.clone(), claims).unwrap();
        assert!(matches!(verify_signature(&token), Err(DpopError::Invalid(d)) if d.contains("typ")));
        // No jwk.
        let token = key.sign(Some(DPOP_JWT_TYPE), claims).unwrap();
        assert!(matches!(verify_signature(&token), Err(DpopError::Invalid(d)) if d.contains("jwk")));
        // A private jwk.
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type(DPOP_JWT_TYPE);
        header.set_jwk(SigningAlg::ES256.generate_private_jwk().unwrap());
        let token = key.sign_with_header(header, claims).unwrap();
        assert!(matches!(verify_signature(&token), Err(DpopError::Invalid(d)) if d.contains("public")));
        // Signed by another key than the embedded one.
        let other = outband_protocol::jose::SigningKey::from_private_jwk(
            &SigningAlg::ES256.generate_private_jwk().unwrap(),
            SigningAlg::ES256,
        )
        .unwrap();
        let mut header = josekit::jws::JwsHeader::new();
        header.set_token_type(DPOP_JWT_TYPE);
        header.set_jwk(other.public_jwk().clone());
        let token = key.sign_with_header(header, claims).unwrap();
        assert!(matches!(verify_signature(&token), Err(DpopError::Invalid(d)) if d.contains("signature")));
    }
}
