//! Token introspection ([RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)).
//!
//! A client may introspect the tokens issued to it; a resource server client
//! (one registered with the `introspection` scope) may introspect any token.
//! Everything else is `{"active": false}`, so the endpoint never tells a caller
//! about tokens it has no business knowing.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::IntrospectionResponse;

use crate::auth::ClientForm;
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::TokenKind;
use crate::tokens::active_token;

/// The scope that lets a client introspect tokens issued to others.
pub const INTROSPECTION_SCOPE: &str = "introspection";

/// `POST /introspect`.
pub fn router() -> Router<AppState> {
    Router::new().route("/introspect", post(introspect_post))
}

async fn introspect_post(State(state): State<AppState>, request: ClientForm) -> Result<impl IntoResponse> {
    let token = request
        .form
        .get("token")
        .ok_or_else(|| Error::invalid_request("missing parameter token"))?;
    if request.auth.method == outband_protocol::TokenEndpointAuthMethod::None {
        // RFC 7662 §2.1: the caller must be authorized; a public client proves nothing.
        return Err(Error::invalid_client(
            "public clients (token_endpoint_auth_method none) cannot use the introspection endpoint",
        ));
    }
    let caller = &request.auth.client;
    let may_see_all = caller.metadata.scope.contains(INTROSPECTION_SCOPE);
    let response = match active_token(&state, token).await? {
        Some(record) if may_see_all || record.client_id == *caller.client_id() => {
            let username = match &record.subject {
                Some(subject) => state.store.user(subject).await?.map(|u| u.username),
                None => None,
            };
            let cnf = crate::tokens::Confirmation::of_record(&record);
            IntrospectionResponse {
                active: true,
                scope: (!record.scope.is_empty()).then(|| record.scope.clone()),
                client_id: Some(record.client_id.to_string()),
                username,
                token_type: Some(match record.kind {
                    TokenKind::Access if record.cnf_jkt.is_some() => "DPoP".into(),
                    TokenKind::Access => "Bearer".into(),
                    TokenKind::Refresh => "refresh_token".into(),
                }),
                exp: Some(record.expires_at),
                iat: Some(record.issued_at),
                sub: Some(
                    record
                        .subject
                        .as_ref()
                        .map_or_else(|| record.client_id.to_string(), |s| s.to_string()),
                ),
                aud: Some(state.settings.access_token_audience.clone()),
                iss: Some(state.settings.issuer.clone()),
                jti: Some(record.jti.clone()),
                cnf: cnf.to_claim(),
                authorization_details: record
                    .authorization_details
                    .as_deref()
                    .and_then(|d| serde_json::from_str(d).ok()),
            }
        }
        _ => IntrospectionResponse::default(),
    };
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(response)))
}
