//! One module per endpoint family (CONVENTIONS 6); each exposes `router()` and
//! keeps its handlers thin.

pub mod admin;
pub mod ciba;
pub mod device;
pub mod discovery;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod revoke;
pub mod token;

use axum::Router;

use crate::state::AppState;

/// Every route of the server.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(discovery::router())
        .merge(ciba::router())
        .merge(jwks::router())
        .merge(health::router())
        .merge(token::router())
        .merge(introspect::router())
        .merge(revoke::router())
        .merge(admin::router())
}
