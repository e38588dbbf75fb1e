//! The grant management API ([FAPI Grant Management §6](https://openid.net/specs/fapi-grant-management.html)):
//! `GET` and `DELETE /grants/{grant_id}` with the client's access token
//! (Bearer, DPoP or certificate-bound, through [`ResourceAuth`]). The logic is
//! in [`crate::grant_management::api`].

use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};

use crate::auth::dpop;
use crate::auth::resource::ResourceAuth;
use crate::error::Result;
use crate::grant_management::api;
use crate::state::AppState;

/// `GET`/`DELETE /grants/{grant_id}`. Takes the state for the middleware
/// that adds `DPoP-Nonce` (DPoP-bound tokens, as at the resource API).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/grants/{grant_id}", get(grant_get).delete(grant_delete))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
}

async fn grant_get(
    State(state): State<AppState>,
    auth: ResourceAuth,
    Path(grant_id): Path<String>,
) -> Result<impl IntoResponse> {
    let body = api::query(&state, &auth, &grant_id).await?;
    Ok(([(header::CACHE_CONTROL, "no-cache, no-store")], Json(body)))
}

async fn grant_delete(
    State(state): State<AppState>,
    auth: ResourceAuth,
    Path(grant_id): Path<String>,
) -> Result<impl IntoResponse> {
    api::revoke(&state, &auth, &grant_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
