//! The device channel: our own API between the AS and a user's enrolled
//! authenticators (the desktop app, the headless `outband-device`). CIBA leaves
//! this channel to the implementer; `docs/device-api.md` and
//! `docs/openapi/device.yaml` describe it for device authors.
//!
//! ## Where to start reading
//! - [`enroll`]: activation codes (`users invite`) and `POST /device/v1/enroll`.
//! - [`token`]: `POST /device/v1/token`, device access tokens bound to the
//!   device key with DPoP ([`crate::auth::dpop`]).
//! - [`auth::DeviceAuth`]: the extractor every device API call goes through.
//! - [`streams`]: `GET /device/v1/events` (Server-Sent Events) and the
//!   per-device stream registry.
//! - [`decision`]: `POST /device/v1/requests/{id}/decision`, the signed
//!   approve/deny that moves a CIBA request on through
//!   [`crate::ciba::lifecycle::decide`].
//! - [`grants`]: `GET`/`DELETE /device/v1/grants`, the user's grants seen
//!   (and revoked) from their authenticator.
//!
//! The HTTP handlers are in [`crate::endpoints::device`]; the admin commands in
//! `cli/devices.rs`.

pub mod auth;
pub mod decision;
pub mod enroll;
pub mod grants;
pub mod streams;
pub mod token;

use outband_protocol::jose::sha256_b64url;
use serde::{Deserialize, Serialize};

use crate::tokens::random_token;

/// A device's long-lived credential, given once at enrollment and exchanged
/// (with a DPoP proof of the device key) for short-lived access tokens. Only its
/// SHA-256 is stored. `Debug` is redacted and there is no `Display`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DeviceCredential(String);

impl DeviceCredential {
    /// Wraps a presented credential.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// A fresh credential (256 random bits).
    pub fn generate() -> Self {
        Self(random_token())
    }

    /// The secret value.
    ///
    /// # Security Warning
    /// Never log or display the returned value.
    pub fn secret(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the value, base64url: what the store keeps.
    pub fn hash(&self) -> String {
        sha256_b64url(self.0.as_bytes())
    }
}

impl std::fmt::Debug for DeviceCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceCredential([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_credentials_are_redacted_and_hashed() {
        let credential = DeviceCredential::new("hunter2");
        assert_eq!(format!("{credential:?}"), "DeviceCredential([redacted])");
        assert_eq!(credential.hash(), sha256_b64url(b"hunter2"));
        assert_ne!(
            DeviceCredential::generate().secret(),
            DeviceCredential::generate().secret()
        );
    }
}
