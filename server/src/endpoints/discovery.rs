//! Discovery ([RFC 8414](https://www.rfc-editor.org/rfc/rfc8414),
//! [OpenID Connect Discovery](https://openid.net/specs/openid-connect-discovery-1_0.html)).
//!
//! The document is derived from the same tables the endpoints enforce (grant
//! handlers, client-authentication methods, key algorithms), so it says only
//! what the server really does.

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use outband_protocol::{DeliveryMode, GrantType, ProviderMetadata, SigningAlg, TokenEndpointAuthMethod};

use crate::keys::SERVER_ALGS;
use crate::state::AppState;

/// Grant types the token endpoint serves today.
pub const GRANT_TYPES: [GrantType; 3] = [GrantType::ClientCredentials, GrantType::RefreshToken, GrantType::Ciba];

/// Algorithms accepted for signed CIBA requests (the union over profiles; each
/// client is further held to its profile's list).
pub const CIBA_REQUEST_ALGS: [SigningAlg; 4] = [
    SigningAlg::ES256,
    SigningAlg::PS256,
    SigningAlg::EdDSA,
    SigningAlg::RS256,
];

/// Client authentication methods accepted today (mutual TLS arrives with its issue).
pub const AUTH_METHODS: [TokenEndpointAuthMethod; 3] = [
    TokenEndpointAuthMethod::ClientSecretBasic,
    TokenEndpointAuthMethod::ClientSecretPost,
    TokenEndpointAuthMethod::PrivateKeyJwt,
];

/// Both well-known documents.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/.well-known/openid-configuration", get(discovery_get))
        .route("/.well-known/oauth-authorization-server", get(discovery_get))
}

async fn discovery_get(State(state): State<AppState>) -> impl IntoResponse {
    ([(header::CACHE_CONTROL, "public, max-age=300")], Json(metadata(&state)))
}

/// The metadata document.
pub fn metadata(state: &AppState) -> ProviderMetadata {
    let settings = &state.settings;
    let strings = |items: &mut dyn Iterator<Item = &'static str>| items.map(str::to_owned).collect::<Vec<_>>();
    let auth_methods = strings(&mut AUTH_METHODS.iter().map(|m| m.as_str()));
    let algs = strings(&mut SERVER_ALGS.iter().map(|a| a.as_str()));
    ProviderMetadata {
        issuer: settings.issuer.clone(),
        token_endpoint: settings.endpoint("/token"),
        jwks_uri: settings.endpoint("/jwks"),
        introspection_endpoint: Some(settings.endpoint("/introspect")),
        backchannel_authentication_endpoint: Some(settings.endpoint("/bc-authorize")),
        backchannel_token_delivery_modes_supported: strings(&mut DeliveryMode::ALL.iter().map(|m| m.as_str())),
        backchannel_authentication_request_signing_alg_values_supported: strings(
            &mut CIBA_REQUEST_ALGS.iter().map(|a| a.as_str()),
        ),
        backchannel_user_code_parameter_supported: Some(true),
        scopes_supported: vec!["openid".into()],
        revocation_endpoint: Some(settings.endpoint("/revoke")),
        // No browser flow is served yet, so no response type is supported.
        response_types_supported: Vec::new(),
        grant_types_supported: strings(&mut GRANT_TYPES.iter().map(|g| g.as_str())),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: algs.clone(),
        token_endpoint_auth_methods_supported: auth_methods.clone(),
        token_endpoint_auth_signing_alg_values_supported: algs,
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: auth_methods,
        request_parameter_supported: Some(false),
        request_uri_parameter_supported: Some(false),
        claims_parameter_supported: Some(false),
        ..ProviderMetadata::default()
    }
}
