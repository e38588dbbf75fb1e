//! Client authentication ([RFC 6749 §2.3](https://www.rfc-editor.org/rfc/rfc6749#section-2.3),
//! [RFC 7523 §3](https://www.rfc-editor.org/rfc/rfc7523#section-3),
//! [RFC 8705 §2](https://www.rfc-editor.org/rfc/rfc8705#section-2)).
//!
//! A client proves itself with exactly one method, and only with the method it
//! registered. Every failure is `invalid_client` (401) with a description that
//! helps the developer without telling an attacker which part was right.

use axum::http::{header, HeaderMap};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use outband_protocol::jose::{parse_jwk, verify_jwt, Jwk};
use outband_protocol::{ClientId, ClientSecret, TokenEndpointAuthMethod};
use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::auth::{mtls_alias, numeric_date};
use crate::error::Error;
use crate::extract::FormParams;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{AuditEvent, ClientRecord};

/// The `client_assertion_type` of [RFC 7523 §2.2](https://www.rfc-editor.org/rfc/rfc7523#section-2.2).
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Seconds of clock skew tolerated on `iat`/`nbf`/`exp`.
const LEEWAY: i64 = 30;

/// The certificate the TLS layer (or a trusted proxy) saw from the client. Put
/// in the request extensions by [`crate::tls::peer`]; absent on plain connections.
#[derive(Clone, Debug)]
pub struct PeerCertificate {
    /// DER of the client's (leaf) certificate.
    pub der: Vec<u8>,
    /// Whether its chain leads to a CA of `[tls] client_ca_file` (checked at
    /// the clock's time), as `tls_client_auth` requires.
    pub trusted: bool,
}

/// A client that proved who it is.
#[derive(Clone, Debug)]
pub struct AuthenticatedClient {
    /// The client.
    pub client: ClientRecord,
    /// How it authenticated.
    pub method: TokenEndpointAuthMethod,
}

/// The credentials a request carries, before they are checked.
enum Presented<'a> {
    Basic { id: String, secret: String },
    Post { id: &'a str, secret: &'a str },
    Assertion { assertion: &'a str },
    ClientIdOnly { id: &'a str },
}

/// Authenticates the client of a request to `endpoint` (an absolute URL under
/// the issuer). A client assertion's `aud` may name the issuer, the token
/// endpoint or `endpoint`, or, with `[tls] mtls_base_url`, the token endpoint's
/// or `endpoint`'s mutual-TLS alias; under FAPI 2 only the issuer
/// ([`Policy::requires_issuer_assertion_audience`]).
pub async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &FormParams,
    certificate: Option<&PeerCertificate>,
    endpoint: &str,
) -> Result<AuthenticatedClient, Error> {
    let presented = presented_credentials(headers, form)?;
    let client_id = match &presented {
        Presented::Basic { id, .. } => ClientId::new(id.clone()),
        Presented::Post { id, .. } | Presented::ClientIdOnly { id } => ClientId::new(*id),
        Presented::Assertion { assertion } => assertion_subject(assertion, form)?,
    };
    if form.get("client_id").is_some_and(|id| id != client_id.as_str()) {
        return Err(Error::invalid_client(
            "client_id does not match the client's credentials",
        ));
    }
    let Some(client) = state.client(&client_id).await? else {
        return Err(fail(state, &client_id, "unknown client").await);
    };
    let registered = client.metadata.token_endpoint_auth_method;
    let method = match presented {
        Presented::Basic { .. } => TokenEndpointAuthMethod::ClientSecretBasic,
        Presented::Post { .. } => TokenEndpointAuthMethod::ClientSecretPost,
        Presented::Assertion { .. } => TokenEndpointAuthMethod::PrivateKeyJwt,
        Presented::ClientIdOnly { .. } => match registered {
            TokenEndpointAuthMethod::TlsClientAuth | TokenEndpointAuthMethod::SelfSignedTlsClientAuth => registered,
            _ => TokenEndpointAuthMethod::None,
        },
    };
    if method != registered {
        let why = format!("client is registered for {registered}, not {method}");
        return Err(fail(state, &client_id, why).await);
    }
    let policy = Policy::of(client.metadata.profile);
    if !policy.allows_auth_method(method) {
        let why = format!("the {} profile does not allow {method}", client.metadata.profile);
        return Err(fail(state, &client_id, why).await);
    }
    let checked = match &presented {
        Presented::Basic { secret, .. } => check_secret(&client, secret),
        Presented::Post { secret, .. } => check_secret(&client, secret),
        Presented::Assertion { assertion } => {
            // The endpoints that check DPoP proofs after authentication.
            if ["/token", "/par"]
                .iter()
                .any(|path| state.settings.endpoint(path) == endpoint)
            {
                crate::auth::dpop::refuse_missing_nonce_early(state, headers, &client)?;
            }
            check_assertion(state, &client, assertion, endpoint).await
        }
        Presented::ClientIdOnly { .. } if method == TokenEndpointAuthMethod::None => Ok(()),
        Presented::ClientIdOnly { .. } => crate::auth::mtls::check_certificate(state, &client, certificate).await,
    };
    if let Err(why) = checked {
        return Err(fail(state, &client_id, why).await);
    }
    Ok(AuthenticatedClient { client, method })
}

/// Records the failure in the audit log and builds the 401.
async fn fail(state: &AppState, client_id: &ClientId, why: impl Into<String>) -> Error {
    let why = why.into();
    let event = AuditEvent {
        id: 0,
        at: state.now(),
        event: "client.auth_failed".into(),
        client_id: Some(client_id.to_string()),
        subject: None,
        request_id: None,
        detail: serde_json::json!({ "reason": why }),
    };
    if let Err(err) = state.store.append_audit(&event).await {
        tracing::warn!(error = %err, "could not write the audit log");
    }
    Error::invalid_client(why)
}

fn presented_credentials<'a>(headers: &HeaderMap, form: &'a FormParams) -> Result<Presented<'a>, Error> {
    let basic = match headers.get(header::AUTHORIZATION) {
        Some(value) => parse_basic(value.to_str().unwrap_or_default())?,
        None => None,
    };
    let post = form.get("client_secret");
    let assertion = form.get("client_assertion");
    let assertion_type = form.get("client_assertion_type");
    let count = usize::from(basic.is_some()) + usize::from(post.is_some()) + usize::from(assertion.is_some());
    if count > 1 {
        return Err(Error::invalid_request("use exactly one client authentication method"));
    }
    if let Some((id, secret)) = basic {
        return Ok(Presented::Basic { id, secret });
    }
    if let Some(secret) = post {
        let id = form
            .get("client_id")
            .ok_or_else(|| Error::invalid_client("client_secret without client_id"))?;
        return Ok(Presented::Post { id, secret });
    }
    if let Some(assertion) = assertion {
        if assertion_type != Some(JWT_BEARER_ASSERTION) {
            return Err(Error::invalid_client(format!(
                "client_assertion_type must be {JWT_BEARER_ASSERTION}"
            )));
        }
        return Ok(Presented::Assertion { assertion });
    }
    match form.get("client_id") {
        Some(id) => Ok(Presented::ClientIdOnly { id }),
        None => Err(Error::invalid_client("no client authentication was presented")),
    }
}

/// Decodes `Authorization: Basic` (RFC 6749 §2.3.1: both parts are form-urlencoded
/// before base64). Another scheme is not client authentication: `None`.
fn parse_basic(value: &str) -> Result<Option<(String, String)>, Error> {
    let Some((scheme, credentials)) = value.split_once(' ') else {
        return Ok(None);
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let malformed = || Error::invalid_client("malformed Basic credentials");
    let decoded = STANDARD.decode(credentials.trim()).map_err(|_| malformed())?;
    let decoded = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id).ok_or_else(malformed)?;
    let secret = form_decode(secret).ok_or_else(malformed)?;
    Ok(Some((id, secret)))
}

/// One `application/x-www-form-urlencoded` value, decoded whole: `+` is a space,
/// then `%XX` sequences are decoded. `=` and `&` are plain characters here (a
/// client that did not encode its secret still gets it through), and a `%` not
/// followed by two hex digits is kept literally, as WHATWG form decoding does.
/// `None` when the decoded bytes are not UTF-8.
fn form_decode(value: &str) -> Option<String> {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8()
        .ok()
        .map(std::borrow::Cow::into_owned)
}

fn check_secret(client: &ClientRecord, secret: &str) -> Result<(), String> {
    let Some(expected) = client.secret_hash.as_deref() else {
        return Err("client has no secret".into());
    };
    let presented = ClientSecret::new(secret).hash();
    if bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(())
    } else {
        Err("wrong client secret".into())
    }
}

/// The `sub` (= `iss`) of a client assertion, read before its signature is checked
/// to find the client whose keys verify it.
fn assertion_subject(assertion: &str, form: &FormParams) -> Result<ClientId, Error> {
    let unverified = outband_protocol::jose::UnverifiedJwt::decode(assertion)
        .map_err(|e| Error::invalid_client(format!("client_assertion: {e}")))?;
    match (unverified.claim_str("sub"), form.get("client_id")) {
        (Some(sub), _) => Ok(ClientId::new(sub)),
        (None, Some(id)) => Ok(ClientId::new(id)),
        (None, None) => Err(Error::invalid_client("client_assertion has no sub")),
    }
}

/// The client's public keys registered by value (`jwks`); see
/// [`client_public_keys`](crate::auth::client_keys::client_public_keys) for `jwks_uri`.
pub fn client_jwks(client: &ClientRecord) -> Result<Vec<Jwk>, String> {
    let Some(jwks) = &client.metadata.jwks else {
        return Err("client has no registered jwks".into());
    };
    let keys = jwks
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("client jwks has no keys array")?;
    Ok(keys.iter().filter_map(|k| parse_jwk(k).ok()).collect())
}

async fn check_assertion(
    state: &AppState,
    client: &ClientRecord,
    assertion: &str,
    endpoint: &str,
) -> Result<(), String> {
    let policy = Policy::of(client.metadata.profile);
    let algs: Vec<_> = match client.metadata.token_endpoint_auth_signing_alg {
        Some(alg) if policy.signing_algs().contains(&alg) => vec![alg],
        Some(alg) => {
            return Err(format!(
                "{alg} is not allowed under the {} profile",
                client.metadata.profile
            ))
        }
        None => policy.signing_algs().to_vec(),
    };
    let kid = outband_protocol::jose::UnverifiedJwt::decode(assertion)
        .map_err(|e| format!("client_assertion: {e}"))?
        .kid()
        .map(str::to_owned);
    let keys = crate::auth::client_keys::client_public_keys(state, client, kid.as_deref()).await?;
    let jwt = verify_jwt(assertion, &keys, &algs).map_err(|e| format!("client_assertion: {e}"))?;
    let claims = &jwt.claims;
    let id = client.client_id().as_str();
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    if str_claim("iss") != Some(id) || str_claim("sub") != Some(id) {
        return Err("client_assertion iss and sub must both be the client_id".into());
    }
    let settings = &state.settings;
    let issuer = settings.issuer.as_str();
    let token_endpoint = settings.endpoint("/token");
    // The endpoint called and the token endpoint also by their mutual-TLS
    // aliases (RFC 8705 §5), which discovery publishes; never under FAPI 2.
    let aliases = [mtls_alias(settings, &token_endpoint), mtls_alias(settings, endpoint)];
    let audience_ok = |aud: &str| {
        aud == issuer || aud == token_endpoint || aud == endpoint || aliases.iter().flatten().any(|a| a == aud)
    };
    let issuer_only = policy.requires_issuer_assertion_audience();
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) if issuer_only => aud == issuer,
        Some(Value::String(aud)) => audience_ok(aud),
        Some(Value::Array(list)) if !issuer_only => list.iter().filter_map(Value::as_str).any(audience_ok),
        _ => false,
    };
    if !aud_ok && issuer_only {
        return Err(format!(
            "client_assertion aud must be the issuer {issuer} as a string, and nothing else, under the {} profile",
            client.metadata.profile
        ));
    }
    if !aud_ok {
        return Err(format!("client_assertion aud must be the issuer {issuer}"));
    }
    let now = state.now();
    let exp = claims
        .get("exp")
        .and_then(numeric_date)
        .ok_or("client_assertion has no exp")?;
    if exp + LEEWAY < now {
        return Err("client_assertion has expired".into());
    }
    if exp - now > policy.max_assertion_lifetime() {
        return Err(format!(
            "client_assertion exp is more than {} seconds away",
            policy.max_assertion_lifetime()
        ));
    }
    if claims
        .get("nbf")
        .and_then(numeric_date)
        .is_some_and(|nbf| nbf > now + LEEWAY)
    {
        return Err("client_assertion is not valid yet (nbf)".into());
    }
    if claims
        .get("iat")
        .and_then(numeric_date)
        .is_some_and(|iat| iat > now + LEEWAY)
    {
        return Err("client_assertion iat is in the future".into());
    }
    let jti = str_claim("jti").ok_or("client_assertion has no jti")?;
    let namespace = format!("client_assertion:{id}");
    let first_use = state
        .store
        .use_jti(&namespace, jti, exp + LEEWAY)
        .await
        .map_err(|e| format!("could not check jti: {e}"))?;
    if !first_use {
        return Err("client_assertion jti was already used".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_are_form_decoded() {
        let value = format!("Basic {}", STANDARD.encode("my%20client:p%40ss+word"));
        let (id, secret) = parse_basic(&value).unwrap().unwrap();
        assert_eq!(id, "my client");
        assert_eq!(secret, "p@ss word");
    }

    #[test]
    fn each_basic_part_is_decoded_as_one_value() {
        assert_eq!(form_decode("abc=").as_deref(), Some("abc="));
        assert_eq!(form_decode("a&b=c").as_deref(), Some("a&b=c"));
        assert_eq!(form_decode("a%3D%26%2B%25b+c").as_deref(), Some("a=&+%b c"));
        assert_eq!(form_decode("100%").as_deref(), Some("100%"), "a stray % stays");
        assert_eq!(form_decode("%zz%4").as_deref(), Some("%zz%4"));
        assert_eq!(form_decode("%C3%A9").as_deref(), Some("é"));
        assert!(form_decode("%FF").is_none(), "not UTF-8");
    }

    #[test]
    fn other_schemes_are_not_client_auth() {
        assert!(parse_basic("Bearer abc").unwrap().is_none());
        assert!(parse_basic("DPoP abc").unwrap().is_none());
    }

    #[test]
    fn malformed_basic_is_invalid_client() {
        for value in ["Basic !!!", "Basic bm9jb2xvbg=="] {
            let err = parse_basic(value).unwrap_err();
            assert!(err.to_string().starts_with("invalid_client"), "{value}");
        }
    }
}
