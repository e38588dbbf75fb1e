//! Checking the ID token that comes with pushed tokens
//! ([CIBA Core §10.3.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.3.1)):
//! a push arrives at an open HTTP endpoint, so the tokens are accepted only when
//! the ID token is signed by the authorization server, names this client and
//! this request, and binds the access token through `at_hash`.

use outband_protocol::ciba::{AUTH_REQ_ID_CLAIM, RT_HASH_CLAIM};
use outband_protocol::jose::{half_hash_for, verify_jwt, JoseError, Jwk};
use outband_protocol::{AuthReqId, SigningAlg, TokenResponse};
use serde_json::{Map, Value};

/// Seconds of clock skew tolerated on `exp`.
const LEEWAY: i64 = 60;

/// Why pushed tokens were refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum VerifyIdTokenError {
    /// The push has no `id_token`.
    #[error("the push carries no ID token")]
    Missing,
    /// The signature does not verify against the server's keys, or the alg is not allowed.
    #[error("the ID token signature is not valid: {0}")]
    Signature(String),
    /// `iss` is not the issuer.
    #[error("the ID token was issued by {0:?}, not by the configured issuer")]
    Issuer(String),
    /// `aud` does not name this client.
    #[error("the ID token is not for this client")]
    Audience,
    /// `exp` is missing or past.
    #[error("the ID token has expired")]
    Expired,
    /// The `auth_req_id` claim is missing or names another request.
    #[error("the ID token is for another request")]
    AuthReqId,
    /// `at_hash` is missing or does not match the access token.
    #[error("the ID token's at_hash does not match the access token")]
    AtHash,
    /// `urn:openid:params:jwt:claim:rt_hash` does not match the refresh token.
    #[error("the ID token's rt_hash does not match the refresh token")]
    RtHash,
}

/// What the ID token must say.
#[derive(Debug)]
pub struct IdTokenExpectations<'a> {
    /// The issuer.
    pub issuer: &'a str,
    /// This client.
    pub client_id: &'a str,
    /// The request the push answers.
    pub auth_req_id: &'a AuthReqId,
    /// The algorithms the server signs ID tokens with.
    pub algs: &'a [SigningAlg],
    /// The client's clock.
    pub now: i64,
}

/// Verifies the ID token of pushed `tokens` against the server's `keys`;
/// returns its claims.
pub fn verify_push_id_token(
    tokens: &TokenResponse,
    keys: &[Jwk],
    expect: &IdTokenExpectations<'_>,
) -> Result<Map<String, Value>, VerifyIdTokenError> {
    let id_token = tokens.id_token.as_deref().ok_or(VerifyIdTokenError::Missing)?;
    let verified = verify_jwt(id_token, keys, expect.algs).map_err(|e| match e {
        JoseError::BadSignature => VerifyIdTokenError::Signature("no server key verifies it".into()),
        other => VerifyIdTokenError::Signature(other.to_string()),
    })?;
    let claims = verified.claims;
    let str_claim = |name: &str| claims.get(name).and_then(Value::as_str);
    match str_claim("iss") {
        Some(iss) if iss == expect.issuer => {}
        other => return Err(VerifyIdTokenError::Issuer(other.unwrap_or_default().to_owned())),
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(aud)) => aud == expect.client_id,
        Some(Value::Array(list)) => {
            list.iter().any(|a| a.as_str() == Some(expect.client_id))
                && (list.len() == 1 || str_claim("azp") == Some(expect.client_id))
        }
        _ => false,
    };
    if !aud_ok {
        return Err(VerifyIdTokenError::Audience);
    }
    match claims.get("exp").and_then(Value::as_i64) {
        Some(exp) if exp + LEEWAY > expect.now => {}
        _ => return Err(VerifyIdTokenError::Expired),
    }
    let same = |a: &str, b: &str| AuthReqId::new(a) == AuthReqId::new(b);
    if !str_claim(AUTH_REQ_ID_CLAIM).is_some_and(|id| same(id, expect.auth_req_id.secret())) {
        return Err(VerifyIdTokenError::AuthReqId);
    }
    let at_hash = half_hash_for(verified.alg, tokens.access_token.secret());
    if str_claim("at_hash") != Some(at_hash.as_str()) {
        return Err(VerifyIdTokenError::AtHash);
    }
    if let Some(refresh) = &tokens.refresh_token {
        let rt_hash = half_hash_for(verified.alg, refresh.secret());
        if str_claim(RT_HASH_CLAIM) != Some(rt_hash.as_str()) {
            return Err(VerifyIdTokenError::RtHash);
        }
    }
    Ok(claims)
}

#[cfg(test)]
mod tests;
