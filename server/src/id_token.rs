//! ID tokens ([OpenID Connect Core §2](https://openid.net/specs/openid-connect-core-1_0.html#IDToken)),
//! with the CIBA push-mode claims ([CIBA Core §10.3.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.3.1)).

use outband_protocol::ciba::{AUTH_REQ_ID_CLAIM, RT_HASH_CLAIM};
use outband_protocol::jose::half_hash_for;
use outband_protocol::{AccessToken, AuthReqId, RefreshToken, SigningAlg, Subject};
use serde_json::{json, Map, Value};

use crate::error::Error;
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, UnixTime};

/// What an ID token says about the authentication.
#[derive(Debug)]
pub struct IdTokenClaims<'a> {
    /// The client (audience).
    pub client: &'a ClientRecord,
    /// The user.
    pub subject: &'a Subject,
    /// When the user authenticated.
    pub auth_time: UnixTime,
    /// The authentication context class reached, if any.
    pub acr: Option<&'a str>,
    /// The methods used (`amr`), e.g. `["hwk", "pin"]`.
    pub amr: Option<&'a Value>,
    /// The access token issued beside it (for `at_hash`).
    pub access_token: Option<&'a AccessToken>,
    /// The refresh token issued beside it (push mode `rt_hash`).
    pub refresh_token: Option<&'a RefreshToken>,
    /// Push mode: the request it answers.
    pub auth_req_id: Option<&'a AuthReqId>,
    /// The `nonce` of an authorization request.
    pub nonce: Option<&'a str>,
}

/// The algorithm of ID tokens for `client`: its registered
/// `id_token_signed_response_alg`, else its profile's default.
pub fn id_token_alg(client: &ClientRecord) -> SigningAlg {
    client
        .metadata
        .id_token_signed_response_alg
        .unwrap_or_else(|| Policy::of(client.metadata.profile).default_id_token_alg())
}

/// Signs an ID token.
pub fn issue_id_token(state: &AppState, claims: IdTokenClaims<'_>) -> Result<String, Error> {
    issue_id_token_with(state, claims, Map::new())
}

/// Signs an ID token with `extra` claims beside the usual ones (the hybrid
/// flow's `c_hash` and `s_hash`).
pub fn issue_id_token_with(
    state: &AppState,
    claims: IdTokenClaims<'_>,
    extra: Map<String, Value>,
) -> Result<String, Error> {
    let alg = id_token_alg(claims.client);
    let key = state
        .keys
        .signer(alg)
        .ok_or_else(|| Error::internal(format!("no {alg} signing key")))?;
    let now = state.now();
    let mut map = Map::new();
    map.insert("iss".into(), json!(state.settings.issuer));
    map.insert("sub".into(), json!(claims.subject.as_str()));
    map.insert("aud".into(), json!(claims.client.client_id().as_str()));
    map.insert("iat".into(), json!(now));
    map.insert("exp".into(), json!(now + state.settings.id_token_lifetime));
    map.insert("auth_time".into(), json!(claims.auth_time));
    if let Some(acr) = claims.acr {
        map.insert("acr".into(), json!(acr));
    }
    if let Some(amr) = claims.amr {
        map.insert("amr".into(), amr.clone());
    }
    if let Some(nonce) = claims.nonce {
        map.insert("nonce".into(), json!(nonce));
    }
    if let Some(token) = claims.access_token {
        map.insert("at_hash".into(), json!(half_hash_for(alg, token.secret())));
    }
    if let Some(id) = claims.auth_req_id {
        map.insert(AUTH_REQ_ID_CLAIM.into(), json!(id.secret()));
        if let Some(refresh) = claims.refresh_token {
            map.insert(RT_HASH_CLAIM.into(), json!(half_hash_for(alg, refresh.secret())));
        }
    }
    map.extend(extra);
    key.sign(Some("JWT"), &map).map_err(|e| Error::internal(e.to_string()))
}
