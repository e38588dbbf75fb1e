//! `GET /metrics`: Prometheus metrics in the text exposition format
//! ([`crate::observability`]).
//!
//! Off unless `[metrics] enabled = true`; then it is served either on the main
//! listener behind a bearer token (`token_file`), or on a separate listener
//! (`listen`, [`listener_router`]) and not on the main one. Where it is not
//! served it answers exactly like an unknown path.

use axum::extract::State;
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use outband_protocol::ErrorCode;

use crate::error::{Error, Result};
use crate::observability::{self, MetricsSettings};
use crate::state::AppState;

/// The endpoint's path.
pub const METRICS_PATH: &str = "/metrics";
/// The text exposition format's content type.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `/metrics` on the main listener. Every method is routed here so that, while
/// it is off, no method reveals that the path exists.
pub fn router() -> Router<AppState> {
    Router::new().route(METRICS_PATH, any(metrics_get))
}

/// The whole router of the separate `[metrics] listen` address.
pub fn listener_router(state: AppState) -> Router {
    Router::new()
        .route(METRICS_PATH, any(metrics_listener_get))
        .fallback(|| async { not_found() })
        .with_state(state)
}

fn not_found() -> Error {
    // The same answer as the router's fallback for an unknown path.
    Error::new(ErrorCode::NotFound, "no such endpoint").with_status(StatusCode::NOT_FOUND)
}

async fn metrics_get(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Result<Response> {
    match state.settings.metrics.as_ref() {
        Some(settings) if settings.listen.is_none() => serve(&state, settings, &method, &headers).await,
        _ => Err(not_found()),
    }
}

async fn metrics_listener_get(State(state): State<AppState>, method: Method, headers: HeaderMap) -> Result<Response> {
    let settings = state.settings.metrics.as_ref().ok_or_else(not_found)?;
    serve(&state, settings, &method, &headers).await
}

async fn serve(state: &AppState, settings: &MetricsSettings, method: &Method, headers: &HeaderMap) -> Result<Response> {
    if method != Method::GET {
        return Ok((StatusCode::METHOD_NOT_ALLOWED, [(header::ALLOW, "GET")]).into_response());
    }
    if let Some(expected) = settings.token_hash.as_deref() {
        crate::auth::operator_token::check(headers, expected, "metrics")?;
    }
    let text = observability::render(state).await?;
    Ok((
        [
            (header::CONTENT_TYPE, CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        text,
    )
        .into_response())
}
