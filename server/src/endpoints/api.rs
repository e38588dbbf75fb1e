//! The resource API under `/api` (contract: `docs/payments-api.md`, OpenAPI:
//! `docs/openapi/payments.yaml`): payments executed with sender-constrained
//! access tokens, refunds, demo account information. Handlers parse, call
//! [`crate::payments`] and shape the answer; callers are authenticated by the
//! [`ResourceAuth`] extractor (RFC 6750 / RFC 9449 §7).
//!
//! Every answer, error or not, carries `x-fapi-interaction-id` (the caller's, when
//! it sent a UUID; a fresh one otherwise, FAPI 1 Baseline §6.2.1) and a fresh
//! `DPoP-Nonce`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use outband_protocol::ErrorCode;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;

use crate::auth::dpop;
use crate::auth::resource::ResourceAuth;
use crate::consents;
use crate::error::{Error, Result};
use crate::payments::accounts::{accounts_of, balances_of};
use crate::payments::{self, Payment, PaymentInitiation, RefundRequest, MAX_IDEMPOTENCY_KEY_LEN, SCOPE_ACCOUNTS};
use crate::state::AppState;

/// The FAPI interaction id header.
pub const FAPI_INTERACTION_ID: HeaderName = HeaderName::from_static("x-fapi-interaction-id");
/// The idempotency key headers (the IETF draft's name, then the common alias).
pub const IDEMPOTENCY_HEADERS: [HeaderName; 2] = [
    HeaderName::from_static("idempotency-key"),
    HeaderName::from_static("x-idempotency-key"),
];

/// The resource API. Takes the state for the middleware that adds `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/api/payments", post(payments_post).get(payments_get))
        .route("/api/payments/{id}", get(payment_get))
        .route("/api/payments/{id}/refunds", post(refunds_post))
        .route("/api/accounts", get(accounts_get))
        .route("/api/accounts/{id}/balances", get(balances_get))
        .route("/api/{*rest}", any(unknown))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
        .layer(middleware::from_fn(interaction_id))
}

/// Adds `x-fapi-interaction-id` (echoed when the request's is a UUID) and
/// `Cache-Control: no-store` to every answer.
pub async fn interaction_id(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(FAPI_INTERACTION_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| uuid::Uuid::parse_str(v).is_ok())
        .and_then(|v| HeaderValue::from_str(v).ok())
        .or_else(|| HeaderValue::from_str(&uuid::Uuid::new_v4().to_string()).ok());
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if let Some(id) = id {
        headers.insert(FAPI_INTERACTION_ID, id);
    }
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

async fn unknown() -> Error {
    Error::new(ErrorCode::NotFound, "no such resource").with_status(StatusCode::NOT_FOUND)
}

/// A JSON body; malformed input is `invalid_request`. An empty body reads as
/// `empty` when given (refunds: `{}`).
fn json_body<T: DeserializeOwned>(bytes: &Bytes, empty: Option<T>) -> Result<T> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        if let Some(value) = empty {
            return Ok(value);
        }
    }
    serde_json::from_slice(bytes).map_err(|e| Error::invalid_request(format!("malformed JSON body: {e}")))
}

/// The request's idempotency key: required, one value, printable ASCII.
fn idempotency_key(headers: &HeaderMap) -> Result<String> {
    let names = IDEMPOTENCY_HEADERS;
    let mut values = names.iter().flat_map(|name| headers.get_all(name).iter());
    let value = match (values.next(), values.next()) {
        (Some(value), None) => value,
        (None, _) => return Err(Error::invalid_request("send an Idempotency-Key header")),
        (Some(_), Some(_)) => return Err(Error::invalid_request("send one Idempotency-Key header")),
    };
    value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| {
            !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic())
        })
        .map(str::to_owned)
        .ok_or_else(|| {
            Error::invalid_request(format!(
                "the Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters"
            ))
        })
}

fn path_id(path: std::result::Result<Path<String>, PathRejection>) -> Result<String> {
    path.map(|Path(id)| id)
        .map_err(|_| Error::new(ErrorCode::NotFound, "no such resource").with_status(StatusCode::NOT_FOUND))
}

/// `POST /api/payments`: 201 with the receipt (also for an idempotent retry).
async fn payments_post(
    State(state): State<AppState>,
    auth: ResourceAuth,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let key = idempotency_key(&headers)?;
    let detail: PaymentInitiation = json_body(&body, None)?;
    let payment = Payment::new(detail).map_err(Error::invalid_request)?;
    let receipt = payments::execute(&state, &auth, &key, payment).await?;
    let location = format!("/api/payments/{}", receipt.payment_id);
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], Json(receipt)))
}

#[derive(Deserialize)]
struct ReferenceQuery {
    reference: Option<String>,
}

/// `GET /api/payments?reference=REF`: the client's payments with that reference.
async fn payments_get(
    State(state): State<AppState>,
    auth: ResourceAuth,
    query: std::result::Result<Query<ReferenceQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<impl IntoResponse> {
    let reference = query
        .ok()
        .and_then(|Query(q)| q.reference)
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Error::invalid_request("send ?reference=<remittanceInformationUnstructured>"))?;
    let found = payments::by_reference(&state, &auth, &reference).await?;
    Ok(Json(json!({ "payments": found })))
}

/// `GET /api/payments/{id}`.
async fn payment_get(
    State(state): State<AppState>,
    auth: ResourceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    let id = path_id(id)?;
    Ok(Json(payments::find(&state, &auth, &id).await?))
}

/// `POST /api/payments/{id}/refunds`: 201 with the refund and the updated receipt.
async fn refunds_post(
    State(state): State<AppState>,
    auth: ResourceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<impl IntoResponse> {
    let id = path_id(id)?;
    let key = idempotency_key(&headers)?;
    let request: RefundRequest = json_body(&body, Some(RefundRequest::default()))?;
    let refund = payments::refund(&state, &auth, &id, &key, request).await?;
    Ok((StatusCode::CREATED, Json(refund)))
}

/// `GET /api/accounts`: the user's (demo) accounts.
async fn accounts_get(State(state): State<AppState>, auth: ResourceAuth) -> Result<impl IntoResponse> {
    auth.require_scope(SCOPE_ACCOUNTS)?;
    let subject = payments::user_of(&auth, SCOPE_ACCOUNTS)?;
    consents::require_account_access(&state, &auth, consents::AccountAccess::Accounts).await?;
    Ok(Json(json!({ "accounts": accounts_of(subject) })))
}

/// `GET /api/accounts/{id}/balances`.
async fn balances_get(
    State(state): State<AppState>,
    auth: ResourceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    let id = path_id(id)?;
    auth.require_scope(SCOPE_ACCOUNTS)?;
    let subject = payments::user_of(&auth, SCOPE_ACCOUNTS)?;
    consents::require_account_access(&state, &auth, consents::AccountAccess::Balances).await?;
    let balances = balances_of(&state, subject, &id)
        .await?
        .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such account").with_status(StatusCode::NOT_FOUND))?;
    Ok(Json(balances))
}
