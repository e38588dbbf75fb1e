//! # outband-server
//!
//! The Outband authorization server: OAuth 2.0, OpenID Connect, CIBA and the
//! FAPI profiles, on SQLite (embedded) or PostgreSQL (several nodes).
//!
//! ## Layout
//! - [`app`] builds the router, [`run`] serves it until a shutdown signal.
//! - [`config`] → [`config::Settings`]: the TOML file and `OUTBAND_*` overrides, validated once.
//! - [`state::AppState`]: settings, [`store::Store`], [`keys::KeySet`], [`clock::Clock`].
//! - [`endpoints`]: one module per endpoint family, thin handlers.
//! - [`device`]: the device channel (enrollment, DPoP-bound device tokens, live
//!   events, signed decisions) that authenticators talk to.
//! - [`payments`]: the resource API's domain (payments, refunds, demo accounts),
//!   served under `/api` by [`endpoints::api`].
//! - [`auth`]: client authentication, DPoP, protected-resource access; [`grants`]: one module per grant type;
//!   [`tokens`]: issuing and looking up tokens; [`profile`]: what each client profile requires.
//! - [`tls`]: the TLS listener and where a request's client certificate comes from (mutual TLS).
//! - [`authorize`]: the browser flows (authorization code + PKCE, login and consent pages, PAR).
//! - [`error::Error`]: the one OAuth error response.
//! - [`store`]: all SQL, one API over SQLite and PostgreSQL.
//! - [`rar`]: Rich Authorization Requests (which `authorization_details` are valid);
//!   [`registration`]: dynamic client registration (RFC 7591 / RFC 7592);
//!   [`consents`]: lodging-intent consent resources (Open Finance Brasil, UK Open Banking).
//! - [`observability`]: Prometheus metrics (`/metrics`, `[metrics]`), recorded where things happen.

pub mod account;
pub mod acr;
pub mod auth;
pub mod authorize;
pub mod ciba;
pub mod claims;
pub mod cli;
pub mod clients;
pub mod clock;
pub mod config;
pub mod consents;
pub mod device;
pub mod endpoints;
pub mod error;
pub mod events;
pub mod extract;
pub mod grant_management;
pub mod grants;
pub mod id_token;
pub mod keys;
pub mod maintenance;
pub mod observability;
pub mod outbound;
pub mod password;
pub mod payments;
pub mod profile;
pub mod rar;
pub mod rate_limit;
pub mod registration;
pub mod state;
pub mod store;
#[cfg(feature = "test-support")]
pub mod test_server;
pub mod tls;
pub mod tokens;

use std::future::{Future, IntoFuture};
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, MatchedPath, Request};
use axum::http::{HeaderName, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use outband_protocol::ErrorCode;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

use crate::error::{Error, InternalCause};
use crate::state::AppState;
use crate::tls::listener::{PeerInfo, TlsListener};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The router with every endpoint and the middleware stack.
pub fn app(state: AppState) -> Router {
    let trace = TraceLayer::new_for_http().make_span_with(|req: &Request| {
        let path = req.extensions().get::<MatchedPath>().map_or("-", MatchedPath::as_str);
        let id = req
            .extensions()
            .get::<RequestId>()
            .and_then(|id| id.header_value().to_str().ok())
            .unwrap_or("-");
        let span = tracing::info_span!("http", method = %req.method(), path = %path, request_id = %id);
        observability::otel::adopt_remote_parent(&span, req.headers());
        span
    });
    // The token, device and resource APIs' middleware needs the state (it mints DPoP nonces).
    let router = endpoints::router(&state)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            tls::peer::peer_certificate,
        ))
        .layer(DefaultBodyLimit::max(extract::MAX_FORM_BYTES))
        .layer(middleware::from_fn(log_internal_errors))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            Duration::from_secs(30),
        ));
    // Outside the timeout, so a timed-out request is counted with its 503.
    let router = if state.settings.metrics.is_some() {
        observability::install();
        router.layer(middleware::from_fn(observability::http::track))
    } else {
        router
    };
    router
        .layer(trace)
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .with_state(state)
}

async fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such endpoint").with_status(StatusCode::NOT_FOUND)
}

/// Logs the cause of every internal error (kept out of the response body and out
/// of `into_response`, CONVENTIONS 4).
async fn log_internal_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    if let Some(InternalCause(cause)) = response.extensions().get::<InternalCause>() {
        tracing::error!(status = response.status().as_u16(), cause = %cause, "request failed");
    }
    response.into_response()
}

/// Serves `app(state)` on `listener` until `shutdown` completes, then finishes
/// the requests in flight. With `[tls] cert_file` the connections are TLS
/// ([`tls::listener`]), and client certificates reach the handlers.
///
/// Background housekeeping ([`maintenance`]), CIBA expiry and notification
/// delivery ([`ciba::delivery`]) and, with `[metrics]`, the recorder's upkeep and
/// the separate `/metrics` listener ([`observability`]) run beside it and stop with it.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // A separate `/metrics` address that cannot be bound stops the start, like the main one.
    let metrics_socket = match state.settings.metrics.as_ref().and_then(|m| m.listen) {
        Some(addr) => Some(TcpListener::bind(addr).await?),
        None => None,
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let maintenance = tokio::spawn(maintenance::run(state.clone(), stopped(stop_rx.clone())));
    let delivery = tokio::spawn(ciba::delivery::run(state.clone(), stopped(stop_rx.clone())));
    let bridge = tokio::spawn(events::run_bridge(state.events.clone(), stopped(stop_rx.clone())));
    let metrics = state.settings.metrics.is_some().then(|| {
        tokio::spawn(metrics_listener(
            state.clone(),
            metrics_socket,
            stopped(stop_rx.clone()),
        ))
    });
    let tls = state.settings.tls.as_ref().and_then(|tls| tls.server.clone());
    let service = app(state).into_make_service_with_connect_info::<PeerInfo>();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    let served = match tls {
        Some(config) => {
            axum::serve(TlsListener::new(listener, config)?, service)
                .with_graceful_shutdown(shutdown)
                .await
        }
        None => axum::serve(listener, service).with_graceful_shutdown(shutdown).await,
    };
    drop(stop_rx);
    let _ = maintenance.await;
    let _ = delivery.await;
    let _ = bridge.await;
    if let Some(metrics) = metrics {
        let _ = metrics.await;
    }
    served
}

/// Keeps the metrics recorder's histograms drained and, with `[metrics] listen`,
/// serves `/metrics` on that separate address, until `shutdown`.
async fn metrics_listener(state: AppState, listener: Option<TcpListener>, shutdown: impl Future<Output = ()>) {
    let Some(listener) = listener else {
        observability::upkeep(shutdown).await;
        return;
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "serving /metrics");
    }
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let router = endpoints::metrics::listener_router(state);
    let serving = axum::serve(listener, router).with_graceful_shutdown(async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|stop| *stop).await;
    });
    let upkeep = observability::upkeep(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    });
    let (served, ()) = tokio::join!(serving.into_future(), upkeep);
    if let Err(err) = served {
        tracing::error!(error = %err, "the /metrics listener failed");
    }
}
