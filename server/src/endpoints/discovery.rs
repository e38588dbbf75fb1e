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

use crate::auth::dpop::DPOP_ALGS;
use crate::keys::SERVER_ALGS;
use crate::state::AppState;

/// Grant types the token endpoint serves today.
pub const GRANT_TYPES: [GrantType; 4] = [
    GrantType::AuthorizationCode,
    GrantType::ClientCredentials,
    GrantType::RefreshToken,
    GrantType::Ciba,
];

/// Scopes with a meaning of their own to OpenID Connect (the UserInfo claims they release).
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "phone"];
/// Claims the ID token and UserInfo endpoint can carry (besides the user
/// claims of [`crate::claims::USER_CLAIMS`]).
const CLAIMS: [&str; 9] = ["iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid"];

/// Algorithms accepted for signed CIBA requests (the union over profiles; each
/// client is further held to its profile's list).
pub const CIBA_REQUEST_ALGS: [SigningAlg; 4] = [
    SigningAlg::ES256,
    SigningAlg::PS256,
    SigningAlg::EdDSA,
    SigningAlg::RS256,
];

/// Client authentication methods accepted on every server.
pub const AUTH_METHODS: [TokenEndpointAuthMethod; 3] = [
    TokenEndpointAuthMethod::ClientSecretBasic,
    TokenEndpointAuthMethod::ClientSecretPost,
    TokenEndpointAuthMethod::PrivateKeyJwt,
];

/// Public clients ([RFC 6749 §2.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.1),
/// native apps): they name themselves with `client_id` and prove nothing, so
/// they are listed for the token and revocation endpoints, never for
/// introspection. The profile decides who may be one (`oidc`, `fapi1-baseline`).
pub const PUBLIC_AUTH_METHOD: TokenEndpointAuthMethod = TokenEndpointAuthMethod::None;

/// Client authentication methods accepted when client certificates can reach
/// the server (`[tls]`: a TLS listener or a trusted proxy's header).
pub const MTLS_AUTH_METHODS: [TokenEndpointAuthMethod; 2] = [
    TokenEndpointAuthMethod::TlsClientAuth,
    TokenEndpointAuthMethod::SelfSignedTlsClientAuth,
];

/// The endpoints a client may call with mutual TLS (RFC 8705 §5), by metadata
/// name, with their paths: those that authenticate clients (certificates among
/// other methods) and UserInfo, which takes certificate-bound tokens. The alias
/// host serves the same router, so every path is served there too. Only
/// metadata names registered for the authorization server (RFC 8414, RFC 8705,
/// OpenID Connect Discovery, CIBA, RFC 9126) belong here: the resource APIs
/// (payments, consents, Grant Management) have none.
const MTLS_ENDPOINTS: [(&str, &str); 6] = [
    ("token_endpoint", "/token"),
    ("introspection_endpoint", "/introspect"),
    ("revocation_endpoint", "/revoke"),
    ("backchannel_authentication_endpoint", "/bc-authorize"),
    ("pushed_authorization_request_endpoint", "/par"),
    ("userinfo_endpoint", "/userinfo"),
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

/// The scopes discovery lists in `scopes_supported`; also the scope of a client
/// registered at `/register` without one ([`crate::registration`]).
pub fn scopes_supported() -> impl Iterator<Item = &'static str> {
    OIDC_SCOPES.iter().copied().chain([
        "offline_access",
        crate::payments::SCOPE_PAYMENTS,
        crate::payments::SCOPE_REFUNDS,
        crate::payments::SCOPE_ACCOUNTS,
        crate::grant_management::SCOPE_QUERY,
        crate::grant_management::SCOPE_REVOKE,
        crate::consents::SCOPE_CONSENTS,
    ])
}

/// `methods` and [`PUBLIC_AUTH_METHOD`].
fn with_public(methods: &[String]) -> Vec<String> {
    let mut all = methods.to_vec();
    all.push(PUBLIC_AUTH_METHOD.as_str().to_owned());
    all
}

/// The metadata document.
pub fn metadata(state: &AppState) -> ProviderMetadata {
    let settings = &state.settings;
    let strings = |items: &mut dyn Iterator<Item = &'static str>| items.map(str::to_owned).collect::<Vec<_>>();
    let mtls = settings.tls.as_ref();
    let mtls_methods = MTLS_AUTH_METHODS.iter().filter(|_| mtls.is_some());
    let auth_methods = strings(&mut AUTH_METHODS.iter().chain(mtls_methods).map(|m| m.as_str()));
    let mtls_endpoint_aliases = mtls.map(|tls| {
        let base = tls.mtls_base_url.as_deref().unwrap_or(&settings.issuer);
        MTLS_ENDPOINTS
            .iter()
            .map(|(name, path)| ((*name).to_owned(), format!("{base}{path}")))
            .collect()
    });
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
        scopes_supported: strings(&mut scopes_supported()),
        claims_supported: strings(
            &mut CLAIMS
                .iter()
                .chain(crate::claims::USER_CLAIMS.iter())
                .copied()
                .chain([crate::consents::authorize::INTENT_CLAIM]),
        ),
        acr_values_supported: strings(&mut crate::acr::SUPPORTED.iter().copied()),
        authorization_endpoint: Some(settings.endpoint("/authorize")),
        userinfo_endpoint: Some(settings.endpoint("/userinfo")),
        end_session_endpoint: Some(settings.endpoint("/logout")),
        // OpenID Connect Back-/Front-Channel Logout ([`crate::account::backchannel`]):
        // ID tokens of browser sessions carry `sid`, and so do logout tokens and,
        // when the client asks, the front-channel iframes' URLs.
        backchannel_logout_supported: Some(true),
        backchannel_logout_session_supported: Some(true),
        frontchannel_logout_supported: Some(true),
        frontchannel_logout_session_supported: Some(true),
        pushed_authorization_request_endpoint: Some(settings.endpoint("/par")),
        // Per client (metadata or profile), not for every client.
        require_pushed_authorization_requests: Some(false),
        authorization_response_iss_parameter_supported: Some(true),
        response_modes_supported: strings(&mut crate::authorize::response::ResponseMode::REQUESTABLE.iter().copied()),
        code_challenge_methods_supported: strings(&mut crate::authorize::pkce::METHODS.iter().map(|m| m.as_str())),
        revocation_endpoint: Some(settings.endpoint("/revoke")),
        response_types_supported: strings(
            &mut crate::authorize::response::ResponseType::ALL.iter().map(|t| t.as_str()),
        ),
        grant_types_supported: strings(&mut GRANT_TYPES.iter().map(|g| g.as_str())),
        subject_types_supported: vec!["public".into()],
        id_token_signing_alg_values_supported: algs.clone(),
        // JARM, signed UserInfo and JWT introspection answers: every key the server holds;
        // each client is held to its profile's list.
        authorization_signing_alg_values_supported: algs.clone(),
        userinfo_signing_alg_values_supported: algs.clone(),
        introspection_signing_alg_values_supported: algs.clone(),
        token_endpoint_auth_methods_supported: with_public(&auth_methods),
        token_endpoint_auth_signing_alg_values_supported: algs,
        introspection_endpoint_auth_methods_supported: auth_methods.clone(),
        revocation_endpoint_auth_methods_supported: with_public(&auth_methods),
        request_parameter_supported: Some(true),
        // The union over profiles (CIBA_REQUEST_ALGS); each client is held to its profile's list.
        request_object_signing_alg_values_supported: strings(&mut CIBA_REQUEST_ALGS.iter().map(|a| a.as_str())),
        request_uri_parameter_supported: Some(false),
        // `id_token` and `userinfo` members, `acr` (essential values are enforced) and the UK
        // Open Banking `openbanking_intent_id` ([`crate::claims`], [`crate::consents`]).
        claims_parameter_supported: Some(true),
        tls_client_certificate_bound_access_tokens: mtls.map(|_| true),
        mtls_endpoint_aliases,
        dpop_signing_alg_values_supported: strings(&mut DPOP_ALGS.iter().map(|a| a.as_str())),
        registration_endpoint: settings.registration.as_ref().map(|_| settings.endpoint("/register")),
        authorization_details_types_supported: strings(&mut crate::rar::KNOWN_TYPES.iter().copied()),
        grant_management_actions_supported: strings(&mut crate::grant_management::ACTIONS_SUPPORTED.iter().copied()),
        grant_management_endpoint: Some(settings.endpoint("/grants")),
        grant_management_action_required: Some(false),
        ..ProviderMetadata::default()
    }
}
