//! One module per endpoint family (CONVENTIONS 6); each exposes `router()` and
//! keeps its handlers thin. The families whose middleware mints DPoP nonces
//! (token, device, the resource API) take the state.

pub mod account;
pub mod admin;
pub mod api;
pub mod authorize;
pub mod ciba;
pub mod consents;
pub mod device;
pub mod discovery;
pub mod grant_management;
pub mod health;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod metrics;
pub mod openapi;
pub mod par;
pub mod register;
pub mod revoke;
pub mod token;
pub mod userinfo;

use axum::Router;

use crate::state::AppState;

/// Every route of the server.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(discovery::router())
        .merge(ciba::router())
        .merge(jwks::router())
        .merge(openapi::router())
        .merge(health::router())
        .merge(metrics::router())
        .merge(token::router(state))
        .merge(introspect::router())
        .merge(revoke::router())
        .merge(admin::router())
        .merge(device::router(state))
        .merge(api::router(state))
        .merge(consents::router(state))
        .merge(authorize::router())
        .merge(par::router(state))
        .merge(userinfo::router(state))
        .merge(register::router())
        .merge(grant_management::router(state))
        .merge(account::router())
        .merge(logout::router())
}
