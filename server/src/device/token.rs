//! Device access tokens: `POST /device/v1/token` exchanges the device
//! credential, with a DPoP proof signed by the device's registered key, for a
//! short-lived opaque token bound to that key. A stolen credential alone is
//! useless without the key, and a stolen token alone is useless without it too.

use axum::http::Method;
use outband_protocol::{AccessToken, ErrorCode};
use serde::{Deserialize, Serialize};

use super::DeviceCredential;
use crate::auth::dpop::{self, DpopError};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::DeviceTokenRecord;
use crate::tokens::random_token;

/// Lifetime of a device access token, in seconds.
pub const DEVICE_TOKEN_LIFETIME: i64 = 300;

/// `POST /device/v1/token` body (form or JSON).
#[derive(Deserialize)]
pub struct DeviceTokenRequest {
    /// The credential given at enrollment.
    pub device_credential: DeviceCredential,
}

/// `POST /device/v1/token` answer.
#[derive(Serialize)]
pub struct DeviceTokenResponse {
    /// Present as `Authorization: DPoP <access_token>` with a proof carrying `ath`.
    pub access_token: AccessToken,
    /// Always `DPoP`.
    pub token_type: &'static str,
    /// Seconds until it expires.
    pub expires_in: i64,
}

/// Issues a device access token. `proof` is the `DPoP` header; `url` the
/// absolute URL of the token endpoint. Errors are token-endpoint style:
/// 400 `invalid_dpop_proof` / `use_dpop_nonce`, 401 `invalid_client`.
pub async fn issue(
    state: &AppState,
    proof: Option<&str>,
    url: &str,
    request: &DeviceTokenRequest,
) -> Result<DeviceTokenResponse> {
    let proof = proof.ok_or_else(|| Error::new(ErrorCode::InvalidDpopProof, "a DPoP proof is required"))?;
    let proof = dpop::verify_proof(state, proof, &Method::POST, url, None)
        .await
        .map_err(DpopError::into_token_error)?;
    let device = state
        .store
        .device_by_credential_hash(&request.device_credential.hash())
        .await?
        .ok_or_else(|| Error::invalid_client("unknown device credential"))?;
    if device.revoked_at.is_some() {
        return Err(Error::invalid_client("device revoked"));
    }
    if proof.jkt != device.jkt {
        return Err(Error::invalid_client(
            "the DPoP proof is not signed by the key this device enrolled with",
        ));
    }
    let now = state.now();
    let token = AccessToken::new(random_token());
    state
        .store
        .insert_device_token(&DeviceTokenRecord {
            token_hash: token.hash(),
            device_id: device.id.clone(),
            jkt: device.jkt.clone(),
            expires_at: now + DEVICE_TOKEN_LIFETIME,
        })
        .await?;
    state.store.touch_device(&device.id, now).await?;
    tracing::debug!(device_id = %device.id, "issued a device access token");
    Ok(DeviceTokenResponse {
        access_token: token,
        token_type: "DPoP",
        expires_in: DEVICE_TOKEN_LIFETIME,
    })
}
