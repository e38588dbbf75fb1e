//! The token endpoint ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2)).
//! It authenticates the client, matches on `grant_type` and hands each arm to
//! its grant in `grants/`.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{ErrorCode, TokenRequest};

use crate::auth::ClientForm;
use crate::error::{Error, Result};
use crate::grants;
use crate::state::AppState;

/// `POST /token`.
pub fn router() -> Router<AppState> {
    Router::new().route("/token", post(token_post))
}

async fn token_post(State(state): State<AppState>, request: ClientForm) -> Result<impl IntoResponse> {
    let ClientForm { auth, form } = request;
    let response = match form.deserialize::<TokenRequest>()? {
        TokenRequest::ClientCredentials { scope, .. } => {
            grants::client_credentials::exchange(&state, &auth, scope).await?
        }
        TokenRequest::Ciba { auth_req_id } => grants::ciba::exchange(&state, &auth, &auth_req_id).await?,
        TokenRequest::RefreshToken { refresh_token, scope } => {
            grants::refresh_token::exchange(&state, &auth, &refresh_token, scope).await?
        }
        TokenRequest::AuthorizationCode { .. } | TokenRequest::Unsupported => {
            let grant = form.get("grant_type").unwrap_or_default().to_owned();
            return Err(Error::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {grant} is not supported"),
            ));
        }
    };
    Ok((
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(response),
    ))
}
