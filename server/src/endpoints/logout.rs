//! OpenID Connect RP-Initiated Logout ([`crate::account::logout`]):
//! `GET`/`POST /logout` (discovery's `end_session_endpoint`) and the
//! confirmation form `POST /logout/confirm`.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::account::{logout, logout_pages};
use crate::authorize::request::parse_params;
use crate::state::AppState;

/// The end-session endpoint and its confirmation form.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/logout", get(logout_get).post(logout_post))
        .route("/logout/confirm", post(logout_confirm_post))
}

async fn end_session(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Response {
    match parse_params(raw) {
        Ok(params) => logout::end_session(state, headers, &params)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(message) => logout_pages::error(&message),
    }
}

async fn logout_get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    end_session(&state, &headers, query.unwrap_or_default().as_bytes()).await
}

async fn logout_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    end_session(&state, &headers, &body).await
}

async fn logout_confirm_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_params(&body) {
        Ok(form) => logout::confirm(&state, &headers, &form)
            .await
            .unwrap_or_else(IntoResponse::into_response),
        Err(message) => logout_pages::error(&message),
    }
}
