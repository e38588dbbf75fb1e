//! Token revocation ([RFC 7009](https://www.rfc-editor.org/rfc/rfc7009)).
//!
//! The answer is 200 whether or not the token was known or already revoked
//! (§2.2), so the endpoint cannot be used to probe for tokens. A client can
//! revoke only its own tokens; revoking a refresh token also revokes the access
//! tokens of its grant (§2.1). `token_type_hint` is only a hint: the token is
//! looked up among every type whatever the hint says, and a hint the server does
//! not know is ignored (§2.1: "the authorization server ... MUST extend its
//! search across all of its supported token types"), never
//! `unsupported_token_type` (which §2.2.1 keeps for a type the server cannot
//! revoke).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;

use crate::auth::ClientForm;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::TokenKind;

/// `POST /revoke`.
pub fn router() -> Router<AppState> {
    Router::new().route("/revoke", post(revoke_post))
}

async fn revoke_post(State(state): State<AppState>, request: ClientForm) -> Result<impl IntoResponse> {
    let token = request
        .form
        .get("token")
        .ok_or_else(|| Error::invalid_request("missing parameter token"))?;
    let hash = outband_protocol::jose::sha256_b64url(token.as_bytes());
    if let Some(record) = state.store.token(&hash).await? {
        if record.client_id == *request.auth.client.client_id() {
            state.store.revoke_token(&hash).await?;
            if let (TokenKind::Refresh, Some(grant_id)) = (record.kind, record.grant_id.as_deref()) {
                state.store.revoke_tokens_of_grant(grant_id).await?;
            }
        }
    }
    Ok((StatusCode::OK, [(header::CACHE_CONTROL, "no-store")]))
}
