//! The hybrid flow `response_type=code id_token`
//! ([OpenID Connect Core §3.3](https://openid.net/specs/openid-connect-core-1_0.html#HybridFlowAuth)):
//! the authorization response carries an ID token beside the code, which FAPI 1
//! Advanced uses as a detached signature (§5.2.2.2) over the code (`c_hash`) and
//! the `state` (`s_hash`). No access token is in the front channel, so no
//! `at_hash`. The token endpoint then answers as for `code`, with an ID token.
//!
//! Also the request rules on `nonce` and `state` that depend on the response
//! type and the profile.

use outband_protocol::jose::half_hash_for;
use outband_protocol::{Scope, Subject};
use serde_json::{json, Map};

use crate::authorize::request::{AuthorizationRequest, Params};
use crate::authorize::response::ResponseType;
use crate::error::{Error, Result};
use crate::id_token::{id_token_alg, issue_id_token_with, IdTokenClaims};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, UnixTime};

/// Checks `nonce` and `state` for `response_type` and `scope`:
/// - `code id_token` is OpenID Connect: it needs the `openid` scope, and a
///   `nonce` (Core §3.3.2.11: "nonce ... REQUIRED");
/// - the profile may require a `nonce` with `openid` ([`Policy::requires_nonce_with_openid`])
///   and a `state` without it ([`Policy::requires_state_without_openid`]).
///
/// Every failure is `invalid_request`.
pub fn check_request(policy: Policy, response_type: ResponseType, scope: &Scope, params: &Params) -> Result<()> {
    let openid = scope.contains("openid");
    let has_nonce = params.contains_key("nonce");
    if response_type.has_id_token() {
        if !openid {
            return Err(Error::invalid_request(
                "response_type code id_token is OpenID Connect: the scope must contain openid",
            ));
        }
        if !has_nonce {
            return Err(Error::invalid_request(
                "nonce is required with response_type code id_token (OpenID Connect Core §3.3.2.11)",
            ));
        }
    }
    if openid && !has_nonce && policy.requires_nonce_with_openid() {
        return Err(Error::invalid_request(
            "nonce is required with the openid scope for this client (FAPI 1 §5.2.2.2)",
        ));
    }
    if !openid && !params.contains_key("state") && policy.requires_state_without_openid() {
        return Err(Error::invalid_request(
            "state is required without the openid scope for this client (FAPI 1 §5.2.2.3)",
        ));
    }
    Ok(())
}

/// The ID token of the authorization response for `code`: the usual claims
/// (with `nonce`, `auth_time`, `amr`), `c_hash` and, when the request had a
/// `state`, `s_hash` (Core §3.3.2.11, FAPI 1 Advanced §5.2.2.2): the left half of
/// the hash of the value with the ID token's alg (SHA-256 for ES256/PS256/RS256);
/// `acr` when the request asked for one ([`crate::claims::acr_for`]). The
/// user claims of the `claims` parameter wait for the token endpoint's ID
/// token, which does not pass through the browser.
#[allow(clippy::too_many_arguments)] // each is one claim's source
pub fn front_channel_id_token(
    state: &AppState,
    client: &ClientRecord,
    request: &AuthorizationRequest,
    code: &str,
    subject: &Subject,
    auth_time: UnixTime,
    acr: Option<&str>,
    sid: Option<&str>,
) -> Result<String> {
    let alg = id_token_alg(client);
    let mut extra = Map::new();
    // The browser session's id (Back-/Front-Channel Logout).
    if let Some(sid) = sid {
        extra.insert("sid".into(), json!(sid));
    }
    extra.insert("c_hash".into(), json!(half_hash_for(alg, code)));
    if let Some(value) = &request.state {
        extra.insert("s_hash".into(), json!(half_hash_for(alg, value)));
    }
    // UK Open Banking: the consent named by `openbanking_intent_id` ([`crate::consents`]).
    if let Some(consent) = request.consent.as_ref().filter(|c| c.intent_claim) {
        extra.insert(crate::consents::authorize::INTENT_CLAIM.into(), json!(consent.id));
    }
    let amr = json!(["pwd"]);
    issue_id_token_with(
        state,
        IdTokenClaims {
            client,
            subject,
            auth_time,
            acr,
            amr: Some(&amr),
            access_token: None,
            refresh_token: None,
            auth_req_id: None,
            nonce: request.nonce.as_deref(),
        },
        extra,
    )
}
