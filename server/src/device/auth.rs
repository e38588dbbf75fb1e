//! [`DeviceAuth`]: who is calling the device API. Every call carries
//! `Authorization: DPoP <device access token>` and a `DPoP` proof signed by the
//! device key, with `ath` (the token's hash) and a fresh server nonce
//! ([RFC 9449 §7](https://www.rfc-editor.org/rfc/rfc9449#section-7)).
//! Failures answer 401 with a `WWW-Authenticate: DPoP` challenge.

use std::borrow::Cow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use outband_protocol::{AccessToken, ErrorCode};

use crate::auth::dpop::{self, resource_error, DpopError, DpopProof};
use crate::error::Error;
use crate::state::AppState;
use crate::store::DeviceRecord;

/// An authenticated device.
#[derive(Clone, Debug)]
pub struct DeviceAuth {
    /// The device (not revoked).
    pub device: DeviceRecord,
    /// The verified proof of this call.
    pub proof: DpopProof,
}

fn invalid_token(description: &'static str) -> Error {
    resource_error(ErrorCode::InvalidToken, Cow::Borrowed(description))
}

/// The token of `Authorization: DPoP <token>`. A device token presented as a
/// Bearer token is refused: it is only good with a proof of the key.
fn dpop_token(headers: &HeaderMap) -> Result<&str, Error> {
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let (Some(value), None) = (values.next(), values.next()) else {
        return Err(invalid_token("send Authorization: DPoP <device access token>"));
    };
    let value = value
        .to_str()
        .map_err(|_| invalid_token("the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("DPoP") {
        return Err(invalid_token(
            "device access tokens are DPoP-bound: use the DPoP scheme with a DPoP proof",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(invalid_token("the Authorization header has no token"));
    }
    Ok(token)
}

/// The one `DPoP` header of a request.
pub fn dpop_header(headers: &HeaderMap) -> Result<Option<&str>, Error> {
    let mut values = headers.get_all(dpop::DPOP_HEADER).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(value), None) => value
            .to_str()
            .map(Some)
            .map_err(|_| Error::new(ErrorCode::InvalidDpopProof, "the DPoP header is not text")),
        (Some(_), Some(_)) => Err(Error::new(ErrorCode::InvalidDpopProof, "send one DPoP header")),
    }
}

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let token = dpop_token(&parts.headers)?;
        let proof = dpop_header(&parts.headers)
            .map_err(|_| DpopError::Invalid("send exactly one DPoP header".into()).into_resource_error())?
            .ok_or_else(|| DpopError::Invalid("a DPoP proof is required".into()).into_resource_error())?;
        let url = state.settings.endpoint(parts.uri.path());
        let proof = dpop::verify_proof(state, proof, &parts.method, &url, Some(token))
            .await
            .map_err(DpopError::into_resource_error)?;
        let record = state
            .store
            .device_token(&AccessToken::new(token).hash())
            .await?
            .ok_or_else(|| invalid_token("unknown device access token, or the device was revoked"))?;
        let now = state.now();
        if record.expires_at <= now {
            return Err(invalid_token("the device access token expired"));
        }
        if record.jkt != proof.jkt {
            return Err(
                DpopError::Invalid("the proof key is not the key the token is bound to".into()).into_resource_error(),
            );
        }
        let device = state
            .store
            .device(&record.device_id)
            .await?
            .filter(|device| device.revoked_at.is_none())
            .ok_or_else(|| invalid_token("device revoked"))?;
        state.store.touch_device(&device.id, now).await?;
        Ok(Self { device, proof })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn only_the_dpop_scheme_is_accepted() {
        assert_eq!(dpop_token(&with_auth("DPoP abc")).unwrap(), "abc");
        assert_eq!(dpop_token(&with_auth("dpop  abc ")).unwrap(), "abc");
        assert!(dpop_token(&with_auth("Bearer abc")).is_err());
        assert!(dpop_token(&with_auth("DPoP ")).is_err());
        assert!(dpop_token(&HeaderMap::new()).is_err());
    }
}
