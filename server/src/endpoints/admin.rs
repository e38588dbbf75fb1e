//! The admin decision endpoint, for automated tests: approves or denies a
//! pending CIBA request by its `auth_req_id`, standing in for the user's device.
//!
//! It exists only when the configuration has an `[admin]` section (refused in
//! production, see [`crate::config::AdminConfig`]); otherwise it answers
//! exactly like an unknown path. The caller presents the admin token as a
//! bearer token; only its SHA-256 is held, and the comparison is constant-time.
//! The decision goes through [`lifecycle::decide`] like a device's (audit
//! event, device events, ping/push), with `amr` `["test"]` and no device.

use axum::extract::{FromRequest, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::{Json, Router};
use outband_protocol::{AuthReqId, ErrorCode};
use serde_json::json;

use crate::ciba::lifecycle;
use crate::error::{Error, Result};
use crate::extract::FormParams;
use crate::state::AppState;
use crate::store::CibaDecision;

/// The endpoint's path.
pub const CIBA_DECISION_PATH: &str = "/admin/v1/ciba/decision";

/// `POST /admin/v1/ciba/decision`. Every method is routed here so that, while
/// the endpoint is off, no method reveals that the path exists.
pub fn router() -> Router<AppState> {
    Router::new().route(CIBA_DECISION_PATH, any(admin_ciba_decision_post))
}

/// Form: `auth_req_id`, `decision=approve|deny`. Answers `{"id", "state"}`.
async fn admin_ciba_decision_post(State(state): State<AppState>, request: Request) -> Result<Response> {
    let Some(expected) = state.settings.admin_token_hash.as_deref() else {
        // The same answer as the router's fallback for an unknown path.
        return Err(Error::new(ErrorCode::NotFound, "no such endpoint").with_status(StatusCode::NOT_FOUND));
    };
    if request.method() != Method::POST {
        // As axum answers a wrong method on every other route: 405 with `Allow`.
        return Ok((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "POST")]).into_response());
    }
    crate::auth::operator_token::check(request.headers(), expected, "admin")?;
    let form = FormParams::from_request(request, &state).await?;
    let auth_req_id = form
        .get("auth_req_id")
        .ok_or_else(|| Error::invalid_request("missing parameter auth_req_id"))?;
    let approve = match form.get("decision") {
        Some("approve") => true,
        Some("deny") => false,
        Some(_) => return Err(Error::invalid_request("decision must be approve or deny")),
        None => return Err(Error::invalid_request("missing parameter decision")),
    };
    let record = state
        .store
        .ciba_request_by_hash(&AuthReqId::new(auth_req_id).hash())
        .await?
        .ok_or_else(|| Error::new(ErrorCode::NotFound, "unknown auth_req_id"))?;
    let decision = CibaDecision {
        approve,
        device_id: None,
        amr: Some(json!(["test"]).to_string()),
        acr: None,
        deny_reason: (!approve).then(|| "denied through the admin endpoint".to_owned()),
    };
    let decided = lifecycle::decide(&state, &record.id, &decision).await?;
    tracing::info!(id = %decided.id, client_id = %decided.client_id, approve, "admin decision");
    Ok((
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({ "id": decided.id, "state": decided.state.as_str() })),
    )
        .into_response())
}
