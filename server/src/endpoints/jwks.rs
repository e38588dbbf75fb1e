//! The AS's public keys ([RFC 7517 §5](https://www.rfc-editor.org/rfc/rfc7517#section-5)).

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::state::AppState;

/// `/jwks` and its well-known alias.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/jwks", get(jwks_get))
        .route("/.well-known/jwks.json", get(jwks_get))
}

/// Public keys only; cached briefly so a rotation reaches clients within minutes.
async fn jwks_get(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CACHE_CONTROL, "public, max-age=300")],
        Json(state.keys.jwks()),
    )
}
