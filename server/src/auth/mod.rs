//! Proving who is calling: client authentication at the token-family endpoints,
//! DPoP proofs of possession ([`dpop`]), mutual TLS ([`mtls`]), and access tokens presented to
//! protected resources ([`resource`]).

pub mod client_auth;
pub mod client_keys;
pub mod dpop;
pub mod mtls;
pub mod operator_token;
pub mod resource;

pub use client_auth::{authenticate_client, AuthenticatedClient, PeerCertificate};

use axum::extract::{FromRequest, Request};
use serde_json::Value;

use crate::config::Settings;
use crate::error::Error;
use crate::extract::FormParams;
use crate::state::AppState;

/// The mutual-TLS alias ([RFC 8705 §5](https://www.rfc-editor.org/rfc/rfc8705#section-5))
/// of `url`, an endpoint URL under the issuer (`settings.endpoint(path)`): the
/// same path under `[tls] mtls_base_url`. `None` without an `mtls_base_url` or
/// for a URL that is not under the issuer. Discovery publishes these aliases,
/// so a client assertion's `aud` and a DPoP proof's `htu` may name them.
pub fn mtls_alias(settings: &Settings, url: &str) -> Option<String> {
    let base = settings.tls.as_ref()?.mtls_base_url.as_deref()?;
    let path = url.strip_prefix(settings.issuer.as_str())?;
    (path.is_empty() || path.starts_with('/')).then(|| format!("{base}{path}"))
}

/// The latest NumericDate read (in the year 5138): later ones, and any before
/// 1970, are refused as malformed, so sums and differences of dates cannot overflow.
const MAX_NUMERIC_DATE: i64 = 100_000_000_000;

/// A JWT NumericDate ([RFC 7519 §2](https://www.rfc-editor.org/rfc/rfc7519#section-2))
/// as whole seconds: it may have a fraction, which is dropped. `None` when it is
/// not a number or lies outside 1970 to [`MAX_NUMERIC_DATE`].
pub fn numeric_date(value: &Value) -> Option<i64> {
    let seconds = value
        .as_i64()
        .or_else(|| value.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?;
    (0..=MAX_NUMERIC_DATE).contains(&seconds).then_some(seconds)
}

/// A form request from an authenticated client: the extractor every
/// client-authenticated endpoint (token, introspection, revocation, …) takes.
#[derive(Debug)]
pub struct ClientForm {
    /// Who called.
    pub auth: AuthenticatedClient,
    /// The parameters.
    pub form: FormParams,
    /// The client certificate of the request (mutual TLS), if any.
    pub certificate: Option<PeerCertificate>,
}

impl FromRequest<AppState> for ClientForm {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let headers = req.headers().clone();
        let certificate = req.extensions().get::<PeerCertificate>().cloned();
        let endpoint = state.settings.endpoint(req.uri().path());
        let form = FormParams::from_request(req, state).await?;
        let auth = authenticate_client(state, &headers, &form, certificate.as_ref(), &endpoint).await?;
        Ok(Self {
            auth,
            form,
            certificate,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::numeric_date;

    #[test]
    fn numeric_dates_are_whole_seconds_within_a_sane_range() {
        assert_eq!(numeric_date(&json!(1_800_000_000)), Some(1_800_000_000));
        assert_eq!(numeric_date(&json!(1_800_000_000.75)), Some(1_800_000_000));
        for out_of_range in [
            json!(i64::MIN),
            json!(-1),
            json!(1e300),
            json!(i64::MAX),
            json!("1800000000"),
        ] {
            assert_eq!(numeric_date(&out_of_range), None, "{out_of_range}");
        }
    }
}
