//! The UserInfo endpoint ([OpenID Connect Core §5.3](https://openid.net/specs/openid-connect-core-1_0.html#UserInfo)):
//! `GET` or `POST /userinfo` with an access token carrying `openid`, presented
//! as its binding asks (Bearer, or DPoP with a proof; [`ResourceAuth`](crate::auth::resource::ResourceAuth)); a `POST`
//! may carry it as `access_token` in a form body instead (RFC 6750 §2.2,
//! [`ResourceAuthWithForm`]). The
//! claims follow the token's scope (§5.4): `profile` → `name`,
//! `preferred_username`; `email` → `email`; `phone` → `phone_number`; and
//! those the grant's authorizations asked for in `claims.userinfo` (§5.5,
//! [`crate::claims`]; only ever ones their approved scope releases, so a
//! token narrowed at refresh keeps them). A client
//! that registered `userinfo_signed_response_alg` gets them as a signed JWT.

use axum::extract::State;
use axum::http::header;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use outband_protocol::{ClientId, ErrorCode, SigningAlg};
use serde_json::{json, Map, Value};

use crate::auth::dpop;
use crate::auth::resource::{challenge_error, ResourceAuthWithForm};
use crate::claims::user_claims;
use crate::error::{Error, Result};
use crate::grant_management::consent::claims_of;
use crate::state::AppState;

/// `GET`/`POST /userinfo`; answers carry a fresh `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/userinfo", get(userinfo).post(userinfo))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
}

async fn userinfo(
    State(state): State<AppState>,
    ResourceAuthWithForm(auth): ResourceAuthWithForm,
) -> Result<impl IntoResponse> {
    auth.require_scope("openid")?;
    let no_user = || {
        challenge_error(
            auth.scheme,
            ErrorCode::InvalidToken,
            "this access token was not issued for a user who still exists".into(),
            None,
        )
    };
    let subject = auth.subject().ok_or_else(no_user)?;
    let user = state
        .store
        .user(subject)
        .await?
        .filter(|u| !u.locked)
        .ok_or_else(no_user)?;
    let mut names = claims_of(&auth.token.scope);
    if let Some(grant_id) = &auth.token.grant_id {
        names.extend(state.store.userinfo_claims(grant_id).await?);
    }
    let mut claims = user_claims(&user, names.iter().map(String::as_str));
    claims.insert("sub".into(), json!(user.subject.as_str()));
    let client = state.client(auth.client_id()).await?;
    match client.and_then(|c| c.metadata.userinfo_signed_response_alg) {
        Some(alg) => Ok(signed(&state, auth.client_id(), alg, claims)?.into_response()),
        None => Ok(([(header::CACHE_CONTROL, "no-store")], Json(claims)).into_response()),
    }
}

/// The claims as a JWT signed with `alg` for the client that registered
/// `userinfo_signed_response_alg` (OpenID Connect Core §5.3.2: `iss` and `aud` added,
/// `Content-Type: application/jwt`).
fn signed(state: &AppState, client_id: &ClientId, alg: SigningAlg, mut claims: Map<String, Value>) -> Result<Response> {
    let key = state
        .keys
        .signer(alg)
        .ok_or_else(|| Error::internal(format!("no {alg} signing key")))?;
    claims.insert("iss".into(), json!(state.settings.issuer));
    claims.insert("aud".into(), json!(client_id.as_str()));
    let jwt = key
        .sign(Some("JWT"), &claims)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, "application/jwt"),
        ],
        jwt,
    )
        .into_response())
}
