//! Operator bearer tokens (the admin API's and the metrics scrape's): a
//! static token from a file, of which only the SHA-256 is kept, presented as
//! `Authorization: Bearer <token>` ([RFC 6750 §2.1](https://www.rfc-editor.org/rfc/rfc6750#section-2.1))
//! and compared in constant time.

use axum::http::{header, HeaderMap, StatusCode};
use outband_protocol::ErrorCode;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

/// Checks the bearer token of `headers` against `expected_hash`; `what` names
/// the token in the error ("admin", "metrics").
pub fn check(headers: &HeaderMap, expected_hash: &str, what: &str) -> Result<()> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|token| !token.is_empty());
    let Some(token) = presented else {
        // RFC 6750 §3.1: no error code in the challenge when no credentials came.
        return Err(unauthorized(format!("missing {what} bearer token"), "Bearer"));
    };
    let hash = outband_protocol::jose::sha256_b64url(token.as_bytes());
    if bool::from(hash.as_bytes().ct_eq(expected_hash.as_bytes())) {
        Ok(())
    } else {
        Err(unauthorized(
            format!("the {what} token is not valid"),
            "Bearer error=\"invalid_token\"",
        ))
    }
}

fn unauthorized(description: String, challenge: &str) -> Error {
    Error::OAuth {
        code: ErrorCode::InvalidToken,
        description: description.into(),
        status: Some(StatusCode::UNAUTHORIZED),
        challenge: Some(challenge.to_owned()),
    }
}
