//! The token endpoint ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2)).
//! It authenticates the client, checks the request's DPoP proof
//! ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)), matches on
//! `grant_type` and hands each arm to its grant in `grants/`. Every answer
//! carries a fresh `DPoP-Nonce` ([`dpop::add_nonce`]).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{ErrorCode, TokenRequest};

use crate::auth::dpop::{self, token_request_proof};
use crate::auth::ClientForm;
use crate::error::{Error, Result};
use crate::grants;
use crate::state::AppState;

/// `POST /token`. Takes the state for the middleware that adds `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/token", post(token_post))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
}

async fn token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: ClientForm,
) -> Result<impl IntoResponse> {
    let ClientForm { auth, form } = request;
    let token_request = form.deserialize::<TokenRequest>()?;
    // The proof is checked (and its jti used up) before any grant runs, so a
    // bad proof never redeems a CIBA request or rotates a refresh token.
    let proof = token_request_proof(&state, &headers, &auth.client).await?;
    let proof = proof.as_ref();
    let response = match token_request {
        TokenRequest::ClientCredentials { scope, .. } => {
            grants::client_credentials::exchange(&state, &auth, scope, proof).await?
        }
        TokenRequest::Ciba { auth_req_id } => grants::ciba::exchange(&state, &auth, &auth_req_id, proof).await?,
        TokenRequest::RefreshToken { refresh_token, scope } => {
            grants::refresh_token::exchange(&state, &auth, &refresh_token, scope, proof).await?
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
