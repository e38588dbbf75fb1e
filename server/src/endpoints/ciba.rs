//! The backchannel authentication endpoint
//! ([CIBA Core §7](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7))
//! and our cancellation extension.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::AuthReqId;
use serde_json::json;

use crate::auth::ClientForm;
use crate::ciba::{lifecycle, request};
use crate::error::{Error, Result};
use crate::state::AppState;

/// `POST /bc-authorize`, `POST /bc-authorize/cancel`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/bc-authorize", post(bc_authorize_post))
        .route("/bc-authorize/cancel", post(bc_authorize_cancel_post))
}

async fn bc_authorize_post(State(state): State<AppState>, request: ClientForm) -> Result<impl IntoResponse> {
    let client = &request.auth.client;
    request::delivery_mode(client)?;
    let params = request::read(&state, client, &request.form).await?;
    let response = lifecycle::start(&state, client, params).await?;
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(response)))
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
