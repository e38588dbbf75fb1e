//! Pushed authorization requests ([RFC 9126](https://www.rfc-editor.org/rfc/rfc9126)):
//! `POST /par` with client authentication. The request (or its signed
//! request object, [`request_object`]) is validated as
//! `/authorize` would (errors in JSON, RFC 9126 §2.3), stored for
//! [`REQUEST_LIFETIME`] seconds and answered 201 with a one-time
//! `request_uri` that `/authorize` accepts with the `client_id`.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::json;

use crate::auth::ClientForm;
use crate::authorize::browser::hash;
use crate::authorize::request::{self, parse_params, REQUEST_URI_PREFIX};
use crate::authorize::request_object;
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::tokens::random_token;

/// How long a `request_uri` is good for, in seconds.
pub const REQUEST_LIFETIME: i64 = 60;

/// Client authentication parameters: read by [`ClientForm`], not part of the request.
const CLIENT_AUTH_PARAMS: [&str; 3] = ["client_secret", "client_assertion", "client_assertion_type"];

/// `POST /par`. Every answer carries a fresh `DPoP-Nonce`
/// ([RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)), as the
/// token endpoint's do, for clients that send a DPoP proof here (§10.1).
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/par", post(par_post))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::auth::dpop::add_nonce,
        ))
}

async fn par_post(State(state): State<AppState>, headers: HeaderMap, request: ClientForm) -> Result<impl IntoResponse> {
    let ClientForm { auth, form, .. } = request;
    let mut params = parse_params(form.raw()).map_err(Error::invalid_request)?;
    for name in CLIENT_AUTH_PARAMS {
        params.remove(name);
    }
    if params.contains_key("request_uri") {
        return Err(Error::invalid_request(
            "request_uri is not allowed in a pushed request (RFC 9126 §2.1)",
        ));
    }
    if let Some(jwt) = params.get("request") {
        params = request_object::parameters(&state, &auth.client, jwt).await?;
    } else if Policy::of(auth.client.metadata.profile).requires_signed_request_object() {
        return Err(Error::invalid_request(
            "this client must push a signed request object (request parameter, RFC 9101)",
        ));
    }
    // RFC 9449 §10.1: a DPoP proof here binds the code as `dpop_jkt` would.
    crate::authorize::dpop_binding::bind_pushed_request(&state, &headers, &auth.client, &mut params).await?;
    let checked = request::validate(&params, &auth.client, true).map_err(request::Rejection::into_error)?;
    crate::grant_management::check(&state, auth.client.client_id(), checked.grant_management.as_ref(), None).await?;
    crate::consents::authorize::check(&state, &auth.client, &params, &checked.scope).await?;
    let random = random_token();
    let stored = serde_json::to_string(&params).map_err(|e| Error::internal(e.to_string()))?;
    state
        .store
        .insert_pushed_request(
            &hash(&random),
            auth.client.client_id(),
            &stored,
            state.now() + REQUEST_LIFETIME,
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        [(header::CACHE_CONTROL, "no-store")],
        Json(json!({
            "request_uri": format!("{REQUEST_URI_PREFIX}{random}"),
            "expires_in": REQUEST_LIFETIME,
        })),
    ))
}
