//! The backchannel authentication endpoint
//! ([CIBA Core §7](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7))
//! and our cancellation extension.

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{AuthReqId, ErrorCode};
use serde_json::json;

use crate::auth::ClientForm;
use crate::ciba::{lifecycle, request};
use crate::error::{Error, Result};
use crate::observability::{self, CibaOutcome};
use crate::rate_limit::RateLimited;
use crate::state::AppState;

/// `POST /bc-authorize`, `POST /bc-authorize/cancel`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bc-authorize", post(bc_authorize_post))
        .route("/bc-authorize/cancel", post(bc_authorize_cancel_post))
}

async fn bc_authorize_post(State(state): State<AppState>, request: ClientForm) -> Result<Response> {
    let client = &request.auth.client;
    let mode = request::delivery_mode(client)?;
    if let Err(limited) = state.rate_limits.check_bc_authorize(client.client_id().as_str()) {
        observability::ciba_request(mode, CibaOutcome::RateLimited);
        return Ok(too_many_requests(limited));
    }
    let params = request::read(&state, client, &request.form).await?;
    let response = lifecycle::start(&state, client, params).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(response)).into_response())
}

/// 429 with `Retry-After` and `slow_down`: the CIBA code for "you ask too often"
/// (CIBA Core §11, RFC 8628 §3.5), here at the endpoint that starts requests.
fn too_many_requests(limited: RateLimited) -> Response {
    let description = format!(
        "this client may start at most {} requests per {} seconds; retry after {} seconds",
        limited.limit.requests,
        limited.limit.window.as_secs(),
        limited.retry_after
    );
    let mut response = Error::new(ErrorCode::SlowDown, description)
        .with_status(StatusCode::TOO_MANY_REQUESTS)
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(limited.retry_after));
    response
}

/// Cancels a pending request of the calling client (the shop assistant pressed
/// Esc): the user's devices drop the card. Answers `{}` on success and 409 when
/// the request was already decided.
async fn bc_authorize_cancel_post(State(state): State<AppState>, request: ClientForm) -> Result<impl IntoResponse> {
    let id = request
        .form
        .get("auth_req_id")
        .ok_or_else(|| Error::invalid_request("missing parameter auth_req_id"))?;
    lifecycle::cancel(&state, request.auth.client.client_id(), &AuthReqId::new(id)).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(json!({}))))
}
