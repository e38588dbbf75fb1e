//! [`Session`]: an unlocked account. It holds the device key and credential in
//! memory (through [`DeviceApi`]), the issuer's JWKS for verifying requests,
//! and reads the pending list. The live stream is in `stream.rs`, decisions in
//! `decision.rs`.

use std::sync::{Arc, Mutex, PoisonError};

use outband_protocol::jose::Jwk;
use reqwest::Method;
use serde::Deserialize;

use crate::api::{self, DeviceApi};
use crate::request;
use crate::{Account, Authenticator, Error, VerifiedRequest};

/// An entry of the pending list or a `request` event.
#[derive(Debug, Deserialize)]
pub(crate) struct RequestRef {
    pub id: String,
    pub request_jwt: Option<String>,
}

/// An unlocked account: holds the key and credential in memory (zeroized on drop where practical),
/// the device access token (refreshed when expired or refused) and the latest DPoP-Nonce. Clone is cheap.
#[derive(Clone)]
pub struct Session {
    inner: Arc<Inner>,
}

struct Inner {
    authenticator: Authenticator,
    account: Account,
    api: DeviceApi,
    /// The sealed blob, to re-check the PIN before an approval.
    sealed: String,
    /// The issuer's keys, fetched on first use and again for an unknown `kid`.
    jwks: Mutex<Option<Vec<Jwk>>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("account", &self.inner.account.id)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub(crate) fn new(authenticator: Authenticator, account: Account, api: DeviceApi, sealed: String) -> Self {
        Self {
            inner: Arc::new(Inner {
                authenticator,
                account,
                api,
                sealed,
                jwks: Mutex::new(None),
            }),
        }
    }

    /// The account this session unlocked.
    pub fn account(&self) -> &Account {
        &self.inner.account
    }

    pub(crate) fn api(&self) -> &DeviceApi {
        &self.inner.api
    }

    pub(crate) fn authenticator(&self) -> &Authenticator {
        &self.inner.authenticator
    }

    pub(crate) fn sealed(&self) -> &str {
        &self.inner.sealed
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.authenticator.now()
    }

    /// Records locally that the server revoked this device.
    pub(crate) fn mark_revoked(&self) {
        if let Err(err) = self.inner.authenticator.mark_revoked(&self.inner.account.id) {
            tracing::warn!(error = %err, "could not record the revocation");
        }
    }

    /// [`Error::Revoked`] is also written down locally.
    pub(crate) fn note<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        if matches!(result, Err(Error::Revoked)) {
            self.mark_revoked();
        }
        result
    }

    /// Verifies a request JWT for this account (signature with the issuer's
    /// keys, refetched once for an unknown `kid`; iss, aud, sub, typ, exp).
    pub async fn verify(&self, request_jwt: &str) -> Result<VerifiedRequest, Error> {
        let cached = self.inner.jwks.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let kid = request::kid_of(request_jwt);
        let known = |keys: &Vec<Jwk>| {
            kid.as_deref()
                .is_none_or(|kid| keys.iter().any(|k| k.key_id() == Some(kid)))
        };
        let keys = match cached {
            Some(keys) if known(&keys) => keys,
            _ => {
                let keys = api::fetch_jwks(self.api().http(), &self.inner.account.issuer).await?;
                *self.inner.jwks.lock().unwrap_or_else(PoisonError::into_inner) = Some(keys.clone());
                keys
            }
        };
        request::verify(request_jwt, &keys, &self.inner.account, self.now())
    }

    /// Verifies one entry of the pending list or of the stream.
    pub(crate) async fn verify_ref(&self, entry: &RequestRef) -> Result<VerifiedRequest, Error> {
        let jwt = entry
            .request_jwt
            .as_deref()
            .ok_or_else(|| Error::Verification("the request came without its JWT".into()))?;
        let verified = self.verify(jwt).await?;
        if verified.id != entry.id {
            return Err(Error::Verification("the request id differs from the JWT's jti".into()));
        }
        Ok(verified)
    }

    /// `GET /device/v1/requests?state=pending`, unverified.
    pub(crate) async fn pending_refs(&self) -> Result<Vec<RequestRef>, Error> {
        #[derive(Deserialize)]
        struct Answer {
            requests: Vec<RequestRef>,
        }
        let result = async {
            let response = self
                .api()
                .call(Method::GET, "/device/v1/requests", Some("state=pending"), None)
                .await?;
            response
                .json::<Answer>()
                .await
                .map_err(|e| Error::Network(format!("the pending list is unreadable ({})", e.without_url())))
        }
        .await;
        Ok(self.note(result)?.requests)
    }

    /// GET /device/v1/requests?state=pending, each verified (signature against {issuer}/jwks with kid lookup and one
    /// JWKS refetch on unknown kid; iss, aud=urn:outband:device, sub = account subject, typ, exp > now).
    /// Requests that fail verification are NOT returned (they are logged with tracing::warn).
    pub async fn pending(&self) -> Result<Vec<VerifiedRequest>, Error> {
        let mut verified = Vec::new();
        for entry in self.pending_refs().await? {
            match self.verify_ref(&entry).await {
                Ok(request) => verified.push(request),
                Err(err @ Error::Network(_)) => return Err(err),
                Err(err) => tracing::warn!(request = %entry.id, error = %err, "a pending request failed verification"),
            }
        }
        Ok(verified)
    }

    /// `DELETE /device/v1/device`: the device revokes itself.
    pub(crate) async fn revoke(&self) -> Result<(), Error> {
        self.api()
            .call(Method::DELETE, "/device/v1/device", None, None)
            .await
            .map(|_| ())
    }
}
