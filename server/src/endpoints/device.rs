//! The device channel's HTTP endpoints (`/device/v1/...`), the API enrolled
//! authenticators talk to. The logic lives in [`crate::device`]; these handlers
//! parse, call it and shape the answer. Every answer, error or not, carries a
//! fresh `DPoP-Nonce` ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8),
//! [`dpop::add_nonce`]), so a device rarely needs the `use_dpop_nonce` round trip.

use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, RawQuery, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware;
use axum::response::sse::Sse;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use outband_protocol::ErrorCode;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::auth::dpop::{self, dpop_header};
use crate::device::auth::DeviceAuth;
use crate::device::decision::{self, DecisionRequest};
use crate::device::enroll::{self, EnrollRequest};
use crate::device::grants;
use crate::device::streams::{self, StreamLease};
use crate::device::token::{self, DeviceTokenRequest};
use crate::error::{Error, Result};
use crate::extract::FormParams;
use crate::state::AppState;

/// The device API. Takes the state for the middleware that adds `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/device/v1/enroll", post(enroll_post))
        .route("/device/v1/token", post(token_post))
        .route("/device/v1/requests", get(requests_get))
        .route("/device/v1/requests/{id}/decision", post(decision_post))
        .route("/device/v1/events", get(events_get))
        .route("/device/v1/device", delete(device_delete))
        .route("/device/v1/grants", get(grants_get))
        .route("/device/v1/grants/{grant_id}", delete(grant_delete))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
}

/// A JSON body, or (for the token endpoint's sake) a form; malformed input is
/// `invalid_request`.
struct DeviceBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for DeviceBody<T> {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        if is_form {
            return FormParams::from_request(req, state).await?.deserialize().map(Self);
        }
        let Json(value) = Json::<T>::from_request(req, state)
            .await
            .map_err(|rejection| Error::invalid_request(format!("malformed JSON body: {}", rejection.body_text())))?;
        Ok(Self(value))
    }
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// `POST /device/v1/enroll`: 201 with the device id and credential.
async fn enroll_post(
    State(state): State<AppState>,
    DeviceBody(request): DeviceBody<EnrollRequest>,
) -> Result<impl IntoResponse> {
    let enrolled = enroll::enroll(&state, request).await?;
    Ok((StatusCode::CREATED, no_store(), Json(enrolled)))
}

/// `POST /device/v1/token`: a DPoP-bound device access token.
async fn token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    DeviceBody(request): DeviceBody<DeviceTokenRequest>,
) -> Result<impl IntoResponse> {
    let url = state.settings.endpoint("/device/v1/token");
    let issued = token::issue(&state, dpop_header(&headers)?, &url, &request).await?;
    Ok((no_store(), Json(issued)))
}

/// `GET /device/v1/requests?state=pending`: what waits for the user (read
/// after every reconnect of the event stream).
async fn requests_get(
    State(state): State<AppState>,
    auth: DeviceAuth,
    RawQuery(query): RawQuery,
) -> Result<impl IntoResponse> {
    let query = query.unwrap_or_default();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        if name == "state" && value != "pending" {
            return Err(Error::invalid_request("only state=pending is supported"));
        }
    }
    let pending = state
        .store
        .pending_ciba_requests_for_subject(&auth.device.subject, state.now())
        .await?;
    let requests: Vec<_> = pending
        .iter()
        .map(|r| json!({ "id": r.id, "request_jwt": r.request_jwt, "expires_at": r.expires_at }))
        .collect();
    Ok((no_store(), Json(json!({ "requests": requests }))))
}

/// `POST /device/v1/requests/{id}/decision`: the user's signed answer.
async fn decision_post(
    State(state): State<AppState>,
    auth: DeviceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
    DeviceBody(request): DeviceBody<DecisionRequest>,
) -> Result<impl IntoResponse> {
    let Path(id) = id.map_err(|_| Error::invalid_request("malformed request id"))?;
    let decided = decision::apply(&state, &auth.device, &id, &request.decision_jwt).await?;
    Ok((no_store(), Json(decided)))
}

/// `GET /device/v1/events`: the device's live feed (Server-Sent Events).
async fn events_get(State(state): State<AppState>, auth: DeviceAuth) -> Result<impl IntoResponse> {
    let lease = StreamLease::acquire(&auth.device.id).ok_or_else(|| {
        Error::new(
            ErrorCode::Extension("too_many_streams".into()),
            format!(
                "this device already has {} open event streams",
                streams::MAX_STREAMS_PER_DEVICE
            ),
        )
        .with_status(StatusCode::TOO_MANY_REQUESTS)
    })?;
    // Proxies that buffer responses (nginx) would hold events back.
    let no_buffering = [(header::HeaderName::from_static("x-accel-buffering"), "no")];
    Ok((no_buffering, Sse::new(streams::open(state, auth.device, lease))))
}

/// `DELETE /device/v1/device`: the device revokes itself (the user removed the
/// account from the app). 204; its tokens stop working and its streams end.
async fn device_delete(State(state): State<AppState>, auth: DeviceAuth) -> Result<StatusCode> {
    if state.store.revoke_device(&auth.device.id, state.now()).await? {
        streams::announce_revoked(&auth.device.id);
        enroll::audit(
            &state,
            "device.revoked",
            &auth.device,
            json!({ "device_id": auth.device.id, "by": "device" }),
        )
        .await;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /device/v1/grants`: the grants the device's user gave applications.
async fn grants_get(State(state): State<AppState>, auth: DeviceAuth) -> Result<impl IntoResponse> {
    let list = grants::list(&state, &auth.device).await?;
    Ok((no_store(), Json(list)))
}

/// `DELETE /device/v1/grants/{grant_id}`: the user revokes one of their grants
/// (and every token of it). 204; 404 when it is not a live grant of theirs.
async fn grant_delete(
    State(state): State<AppState>,
    auth: DeviceAuth,
    grant_id: std::result::Result<Path<String>, PathRejection>,
) -> Result<StatusCode> {
    let Path(grant_id) = grant_id.map_err(|_| Error::invalid_request("malformed grant id"))?;
    grants::revoke(&state, &auth.device, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
