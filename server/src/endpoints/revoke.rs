//! Token revocation ([RFC 7009](https://www.rfc-editor.org/rfc/rfc7009)).
//!
//! The answer is 200 whether or not the token was known or already revoked
//! (§2.2), so the endpoint cannot be used to probe for tokens. A client can
//! revoke only its own tokens; revoking a refresh token also revokes the access
//! tokens of its grant (§2.1).

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use outband_protocol::ErrorCode;

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
    if let Some(hint) = request.form.get("token_type_hint") {
        if !matches!(hint, "access_token" | "refresh_token") {
            return Err(Error::new(
                ErrorCode::UnsupportedTokenType,
                format!("token_type_hint {hint} is not a type this server issues"),
            ));
        }
    }
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
