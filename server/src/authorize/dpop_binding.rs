//! Binding an authorization code to a DPoP key
//! ([RFC 9449 §10](https://www.rfc-editor.org/rfc/rfc9449#section-10)).
//!
//! - `dpop_jkt` at `/authorize` or `/par`: the JWK SHA-256 thumbprint
//!   ([RFC 7638](https://www.rfc-editor.org/rfc/rfc7638)) of the client's DPoP
//!   key ([`requested_jkt`]). The code remembers it.
//! - A DPoP proof sent to `/par` (§10.1) is checked as at the token endpoint and
//!   binds the code the same way, as if its key's thumbprint had been sent as
//!   `dpop_jkt` ([`bind_pushed_request`]). When both are sent they must name the
//!   same key, else the request is refused with `invalid_dpop_proof` (the RFC says
//!   "MUST reject" without naming a code; the proof is what does not fit).
//! - At the token endpoint ([`check_code_binding`]) a bound code needs a proof by
//!   that key: without a proof `invalid_dpop_proof`, with another key
//!   `invalid_grant` (the grant, the code, belongs to another key).

use axum::http::{HeaderMap, Method};
use outband_protocol::ErrorCode;

use crate::auth::dpop::{dpop_header, verify_proof_with, DpopError, DpopProof, NoncePolicy};
use crate::authorize::request::Params;
use crate::error::Error;
use crate::state::AppState;
use crate::store::ClientRecord;

/// The authorization request parameter.
pub const DPOP_JKT: &str = "dpop_jkt";

/// The request's `dpop_jkt`, checked for shape: a base64url SHA-256 value
/// (43 characters of `A-Z a-z 0-9 - _`), else `invalid_request`.
pub fn requested_jkt(params: &Params) -> Result<Option<String>, Error> {
    let Some(value) = params.get(DPOP_JKT) else {
        return Ok(None);
    };
    let well_formed = value.len() == 43
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !well_formed {
        return Err(Error::invalid_request(
            "dpop_jkt must be the base64url JWK SHA-256 thumbprint of the DPoP key (RFC 9449 §10)",
        ));
    }
    Ok(Some(value.clone()))
}

/// `/par` ([RFC 9449 §10.1](https://www.rfc-editor.org/rfc/rfc9449#section-10.1)):
/// when the request carries a DPoP proof, checks it (method `POST`, `htu` the
/// PAR endpoint, a server nonce when `[tokens] dpop_nonce` or the client's profile
/// asks) and records its key's thumbprint as the request's `dpop_jkt`; a
/// `dpop_jkt` already present must be the same.
pub async fn bind_pushed_request(
    state: &AppState,
    headers: &HeaderMap,
    client: &ClientRecord,
    params: &mut Params,
) -> Result<(), Error> {
    let Some(header) = dpop_header(headers)? else {
        return Ok(());
    };
    let url = state.settings.endpoint("/par");
    let nonce = NoncePolicy::for_client(state.settings.token_dpop_nonce, Some(client));
    let proof: DpopProof = verify_proof_with(state, header, &Method::POST, &url, None, nonce)
        .await
        .map_err(DpopError::into_token_error)?;
    match params.get(DPOP_JKT) {
        Some(jkt) if *jkt != proof.jkt => Err(Error::new(
            ErrorCode::InvalidDpopProof,
            "dpop_jkt does not match the key of the DPoP proof (RFC 9449 §10.1)",
        )),
        Some(_) => Ok(()),
        None => {
            params.insert(DPOP_JKT.to_owned(), proof.jkt);
            Ok(())
        }
    }
}

/// The token request for a code bound to `bound` (its `dpop_jkt`) must prove
/// that key with its DPoP proof (`presented`, the proof's thumbprint).
pub fn check_code_binding(bound: Option<&str>, presented: Option<&str>) -> Result<(), Error> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(Error::new(
            ErrorCode::InvalidDpopProof,
            "this code is bound to a DPoP key (dpop_jkt): send a DPoP proof signed by that key",
        )),
        (Some(bound), Some(presented)) if bound == presented => Ok(()),
        (Some(_), Some(_)) => Err(Error::invalid_grant(
            "this code is bound to another DPoP key (dpop_jkt)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpop_jkt_must_look_like_a_thumbprint() {
        let mut params = Params::new();
        assert_eq!(requested_jkt(&params).unwrap(), None);
        params.insert(DPOP_JKT.into(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs".into());
        assert!(requested_jkt(&params).unwrap().is_some());
        for bad in [
            "short",
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9X=",
            "NzbLsXh8uDCcd+6MNwXF4W_7noWXFZAfHkxZsRGC9Xs",
        ] {
            params.insert(DPOP_JKT.into(), bad.into());
            assert!(requested_jkt(&params).is_err(), "{bad}");
        }
    }

    #[test]
    fn bound_codes_need_the_same_key() {
        assert!(check_code_binding(None, None).is_ok());
        assert!(check_code_binding(None, Some("a")).is_ok());
        assert!(check_code_binding(Some("a"), Some("a")).is_ok());
        let missing = check_code_binding(Some("a"), None).unwrap_err();
        assert_eq!(missing.code(), ErrorCode::InvalidDpopProof);
        let other = check_code_binding(Some("a"), Some("b")).unwrap_err();
        assert_eq!(other.code(), ErrorCode::InvalidGrant);
    }
}
