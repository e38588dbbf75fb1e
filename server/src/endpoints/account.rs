//! The user's account page ([`crate::account`]): `GET /account`, its sign-in
//! form `POST /account/login`, and the forms that revoke a grant, remove an
//! authenticator and change the password.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

use crate::account;
use crate::authorize::browser::ClientAddress;
use crate::authorize::pages;
use crate::authorize::request::parse_params;
use crate::error::Result;
use crate::state::AppState;

/// The account page and its forms.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/account", get(account_get))
        .route("/account/login", post(account_login_post))
        .route("/account/revoke-grant", post(account_revoke_grant_post))
        .route("/account/revoke-device", post(account_revoke_device_post))
        .route("/account/password", post(account_password_post))
        .route("/account/logout", post(account_logout_post))
}

fn respond(result: Result<Response>) -> Response {
    result.unwrap_or_else(IntoResponse::into_response)
}

fn bad_params(message: &str) -> Response {
    pages::error(StatusCode::BAD_REQUEST, message)
}

async fn account_get(State(state): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    match parse_params(query.unwrap_or_default().as_bytes()) {
        Ok(query) => respond(account::show(&state, &headers, &query).await),
        Err(message) => bad_params(&message),
    }
}

async fn account_login_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match parse_params(&body) {
        Ok(form) => respond(account::login(&state, &headers, &address, &form).await),
        Err(message) => bad_params(&message),
    }
}

async fn account_revoke_grant_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_params(&body) {
        Ok(form) => respond(account::revoke_grant(&state, &headers, &form).await),
        Err(message) => bad_params(&message),
    }
}

async fn account_revoke_device_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_params(&body) {
        Ok(form) => respond(account::revoke_device(&state, &headers, &form).await),
        Err(message) => bad_params(&message),
    }
}

async fn account_logout_post(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    match parse_params(&body) {
        Ok(form) => respond(account::sign_out(&state, &headers, &form).await),
        Err(message) => bad_params(&message),
    }
}

async fn account_password_post(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match parse_params(&body) {
        Ok(form) => respond(account::change_password(&state, &headers, &address, &form).await),
        Err(message) => bad_params(&message),
    }
}
