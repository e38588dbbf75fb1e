//! Token introspection ([RFC 7662](https://www.rfc-editor.org/rfc/rfc7662)).
//!
//! A client may introspect the tokens issued to it; a resource server client
//! (one registered with the `introspection` scope) may introspect any token.
//! Everything else is `{"active": false}`, so the endpoint never tells a caller
//! about tokens it has no business knowing.
//!
//! A caller that accepts `application/token-introspection+jwt` gets the answer
//! as a JWT signed by the server ([RFC 9701](https://www.rfc-editor.org/rfc/rfc9701),
//! which FAPI 2.0 Message Signing §5.5 asks for), else as plain JSON.

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{IntrospectionResponse, SigningAlg};
use serde_json::{json, Map};

use crate::auth::ClientForm;
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{ClientRecord, TokenKind};
use crate::tokens::active_token;

/// The media type (and, without `application/`, the JWT `typ`) of signed answers (RFC 9701 §4, §5).
pub const JWT_MEDIA_TYPE: &str = "application/token-introspection+jwt";

/// The scope that lets a client introspect tokens issued to others.
pub const INTROSPECTION_SCOPE: &str = "introspection";

/// `POST /introspect`.
pub fn router() -> Router<AppState> {
    Router::new().route("/introspect", post(introspect_post))
}

async fn introspect_post(State(state): State<AppState>, headers: HeaderMap, request: ClientForm) -> Result<Response> {
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
    if accepts_jwt(&headers) {
        return signed(&state, caller, &response);
    }
    Ok(([(header::CACHE_CONTROL, "no-store")], Json(response)).into_response())
}

/// Whether the caller asked for a JWT answer (RFC 9701 §4: `Accept: application/token-introspection+jwt`,
/// not weighted `q=0`, which RFC 9110 §12.5.1 makes "not acceptable").
fn accepts_jwt(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|range| {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default();
            let refused = parts.any(|param| {
                param
                    .split_once('=')
                    .is_some_and(|(name, q)| name.eq_ignore_ascii_case("q") && q.parse::<f32>().is_ok_and(|q| q <= 0.0))
            });
            media.eq_ignore_ascii_case(JWT_MEDIA_TYPE) && !refused
        })
}

/// The alg of the caller's JWT answers: its registered `introspection_signed_response_alg`,
/// else its profile's default (RFC 9701 §6's RS256; PS256 under FAPI, which never uses RS256).
fn response_alg(client: &ClientRecord) -> SigningAlg {
    client
        .metadata
        .introspection_signed_response_alg
        .unwrap_or_else(|| Policy::of(client.metadata.profile).default_id_token_alg())
}

/// The answer as a signed JWT (RFC 9701 §5): `iss`, `aud` = the caller, `iat`, and
/// the RFC 7662 answer as `token_introspection`.
fn signed(state: &AppState, caller: &ClientRecord, answer: &IntrospectionResponse) -> Result<Response> {
    let alg = response_alg(caller);
    let key = state
        .keys
        .signer(alg)
        .ok_or_else(|| Error::internal(format!("no {alg} signing key")))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.settings.issuer));
    claims.insert("aud".into(), json!(caller.client_id().as_str()));
    claims.insert("iat".into(), json!(state.now()));
    claims.insert(
        "token_introspection".into(),
        serde_json::to_value(answer).map_err(|e| Error::internal(e.to_string()))?,
    );
    let typ = JWT_MEDIA_TYPE.trim_start_matches("application/");
    let jwt = key
        .sign(Some(typ), &claims)
        .map_err(|e| Error::internal(e.to_string()))?;
    Ok((
        [
            (header::CACHE_CONTROL, "no-store"),
            (header::CONTENT_TYPE, JWT_MEDIA_TYPE),
        ],
        jwt,
    )
        .into_response())
}
