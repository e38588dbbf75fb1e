//! The consent API (lodging intent; contract: `docs/consents.md`, OpenAPI:
//! `docs/openapi/consents.yaml`): `POST /open-banking/consents`,
//! `GET`/`DELETE /open-banking/consents/{consentId}` with the client's
//! client-credentials token (scope `consents`), presented as its binding asks
//! ([`ResourceAuth`]: DPoP or the client certificate). The rules live in
//! [`crate::consents`]. Like the rest of the resource API, every answer carries
//! `x-fapi-interaction-id` and a fresh `DPoP-Nonce`.

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use outband_protocol::{ErrorCode, Profile};

use crate::auth::dpop;
use crate::auth::resource::ResourceAuth;
use crate::consents::{self, wire};
use crate::endpoints::api::interaction_id;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::ConsentRecord;

/// Where consents live.
pub const CONSENTS_PATH: &str = "/open-banking/consents";

/// The consent API. Takes the state for the middleware that adds `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route(CONSENTS_PATH, post(consents_post))
        .route(
            "/open-banking/consents/{consent_id}",
            get(consent_get).delete(consent_delete),
        )
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
        .layer(middleware::from_fn(interaction_id))
}

fn path_id(path: std::result::Result<Path<String>, PathRejection>) -> Result<String> {
    path.map(|Path(id)| id)
        .map_err(|_| Error::new(ErrorCode::NotFound, "no such consent").with_status(StatusCode::NOT_FOUND))
}

/// The response body, in the names of the caller's ecosystem.
async fn body(state: &AppState, auth: &ResourceAuth, record: &ConsentRecord) -> Result<serde_json::Value> {
    let brazil = state
        .client(auth.client_id())
        .await?
        .is_some_and(|c| c.metadata.profile == Profile::OpenbankingBr);
    let dialect = if brazil {
        wire::Dialect::Brazil
    } else {
        wire::Dialect::Uk
    };
    let self_url = state.settings.endpoint(&format!("{CONSENTS_PATH}/{}", record.id));
    Ok(wire::render(record, state.now(), dialect, &self_url))
}

/// `POST /open-banking/consents`: 201 with the new consent.
async fn consents_post(State(state): State<AppState>, auth: ResourceAuth, bytes: Bytes) -> Result<impl IntoResponse> {
    let record = consents::create(&state, &auth, &bytes).await?;
    let location = format!("{CONSENTS_PATH}/{}", record.id);
    Ok((
        StatusCode::CREATED,
        [(header::LOCATION, location)],
        Json(body(&state, &auth, &record).await?),
    ))
}

/// `GET /open-banking/consents/{consentId}`.
async fn consent_get(
    State(state): State<AppState>,
    auth: ResourceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    let record = consents::owned(&state, &auth, &path_id(id)?).await?;
    Ok(Json(body(&state, &auth, &record).await?))
}

/// `DELETE /open-banking/consents/{consentId}`: 204.
async fn consent_delete(
    State(state): State<AppState>,
    auth: ResourceAuth,
    id: std::result::Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse> {
    consents::delete(&state, &auth, &path_id(id)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
