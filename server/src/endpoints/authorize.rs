//! The authorization endpoint and its pages
//! ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1),
//! [OpenID Connect Core §3.1.2](https://openid.net/specs/openid-connect-core-1_0.html#AuthorizationEndpoint)):
//! `GET`/`POST /authorize`, the login form's `POST /authorize/login` and the
//! consent page `GET`/`POST /authorize/consent`. The work is in [`crate::authorize::flow`].

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::authorize::browser::ClientAddress;
use crate::authorize::request::parse_params;
use crate::authorize::{flow, pages};
use crate::error::Result;
use crate::state::AppState;

/// The authorization endpoint and the login and consent pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/authorize", get(authorize_get).post(authorize_post))
        .route("/authorize/login", post(login_post))
        .route("/authorize/consent", get(consent_get).post(consent_post))
}

fn bad_params(message: &str) -> Response {
    pages::error(StatusCode::BAD_REQUEST, message)
}

fn page(result: Result<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

async fn authorize(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Response {
    match parse_params(raw) {
        Ok(params) => match flow::start(state, headers, params).await {
            Ok(response) => response,
            Err(rejection) => flow::reject(state, rejection),
        },
        Err(message) => bad_params(&message),
    }
}

async fn authorize_get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    authorize(&state, &headers, query.unwrap_or_default().as_bytes()).await
}

async fn authorize_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    authorize(&state, &headers, &body).await
}

async fn login_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match parse_params(&body) {
        Ok(form) => page(flow::login(&state, &headers, &address, form).await),
        Err(message) => bad_params(&message),
    }
}

async fn consent_get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(query) => page(flow::consent_page(&state, &headers, query).await),
        Err(message) => bad_params(&message),
    }
}

async fn consent_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_params(&body) {
        Ok(form) => page(flow::decide(&state, &headers, form).await),
        Err(message) => bad_params(&message),
    }
}
