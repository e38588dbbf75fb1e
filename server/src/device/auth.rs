//! [`DeviceAuth`]: who is calling the device API. Every call carries
//! `Authorization: DPoP <device access token>` and a `DPoP` proof signed by the
//! device key, with `ath` (the token's hash) and a fresh server nonce
//! ([RFC 9449 §7](https://www.rfc-editor.org/rfc/rfc9449#section-7)). The checks
//! are those of every protected resource ([`crate::auth::resource`]); device
//! tokens are always DPoP-bound, so the Bearer scheme is refused outright.
//! Failures answer 401 with a `WWW-Authenticate: DPoP` challenge.

use std::borrow::Cow;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use outband_protocol::{AccessToken, ErrorCode};

use crate::auth::dpop::{resource_error, DpopProof, NoncePolicy};
use crate::auth::resource::{presented_token, verify_possession};
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

impl FromRequestParts<AppState> for DeviceAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let presented = presented_token(&parts.headers, false)?;
        let record = state
            .store
            .device_token(&AccessToken::new(presented.token).hash())
            .await?
            .ok_or_else(|| invalid_token("unknown device access token, or the device was revoked"))?;
        let now = state.now();
        if record.expires_at <= now {
            return Err(invalid_token("the device access token expired"));
        }
        // `presented_token` refused the Bearer scheme: this is a DPoP presentation.
        let proof = verify_possession(state, parts, presented.token, &record.jkt, NoncePolicy::Required).await?;
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
