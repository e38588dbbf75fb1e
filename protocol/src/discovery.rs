//! Authorization server metadata
//! ([RFC 8414 §2](https://www.rfc-editor.org/rfc/rfc8414#section-2),
//! [OpenID Connect Discovery §3](https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata),
//! [CIBA Core §4](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.4)).

use serde::{Deserialize, Serialize};

/// What the server publishes at `/.well-known/openid-configuration` and
/// `/.well-known/oauth-authorization-server`. Every list says only what the
/// server really does.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProviderMetadata {
    /// The issuer identifier.
    pub issuer: String,
    /// Authorization endpoint, when browser flows are served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_endpoint: Option<String>,
    /// Token endpoint.
    pub token_endpoint: String,
    /// JWKS document.
    pub jwks_uri: String,
    /// UserInfo endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_endpoint: Option<String>,
    /// [RFC 7662](https://www.rfc-editor.org/rfc/rfc7662) introspection endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_endpoint: Option<String>,
    /// [RFC 7009](https://www.rfc-editor.org/rfc/rfc7009) revocation endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revocation_endpoint: Option<String>,
    /// [CIBA](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.4) endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_endpoint: Option<String>,
    /// Supported scopes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    /// Supported response types.
    pub response_types_supported: Vec<String>,
    /// Supported response modes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_modes_supported: Vec<String>,
    /// Supported grant types.
    pub grant_types_supported: Vec<String>,
    /// Supported subject types.
    pub subject_types_supported: Vec<String>,
    /// ID token algs.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// Algs of signed authorization responses (JARM §5).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_signing_alg_values_supported: Vec<String>,
    /// Algs of signed UserInfo responses (OpenID Connect Discovery §3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_signing_alg_values_supported: Vec<String>,
    /// Algs of JWT introspection answers ([RFC 9701 §7](https://www.rfc-editor.org/rfc/rfc9701#section-7)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at the token endpoint.
    pub token_endpoint_auth_methods_supported: Vec<String>,
    /// Algs for `private_key_jwt` at the token endpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub token_endpoint_auth_signing_alg_values_supported: Vec<String>,
    /// Client authentication methods at introspection.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub introspection_endpoint_auth_methods_supported: Vec<String>,
    /// Client authentication methods at revocation.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Claims the server can supply.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub claims_supported: Vec<String>,
    /// Authentication context classes the server supports (`acr_values_supported`,
    /// [OpenID Connect Discovery §3](https://openid.net/specs/openid-connect-discovery-1_0.html#ProviderMetadata)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acr_values_supported: Vec<String>,
    /// CIBA delivery modes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backchannel_token_delivery_modes_supported: Vec<String>,
    /// Algs for signed CIBA requests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub backchannel_authentication_request_signing_alg_values_supported: Vec<String>,
    /// Whether CIBA `user_code` is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_user_code_parameter_supported: Option<bool>,
    /// [RFC 9207](https://www.rfc-editor.org/rfc/rfc9207) `iss` in authorization responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_response_iss_parameter_supported: Option<bool>,
    /// [RFC 9449](https://www.rfc-editor.org/rfc/rfc9449) proof algs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dpop_signing_alg_values_supported: Vec<String>,
    /// [RFC 8705](https://www.rfc-editor.org/rfc/rfc8705) certificate-bound tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_certificate_bound_access_tokens: Option<bool>,
    /// [RFC 8705 §5](https://www.rfc-editor.org/rfc/rfc8705#section-5) endpoints
    /// a client uses with mutual TLS, by metadata name (`token_endpoint`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mtls_endpoint_aliases: Option<std::collections::BTreeMap<String, String>>,
    /// PKCE methods.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub code_challenge_methods_supported: Vec<String>,
    /// Whether the `claims` parameter is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims_parameter_supported: Option<bool>,
    /// Whether the `request` parameter is supported.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_parameter_supported: Option<bool>,
    /// Algs accepted for signed request objects (JAR, [RFC 9101](https://www.rfc-editor.org/rfc/rfc9101)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub request_object_signing_alg_values_supported: Vec<String>,
    /// Whether `request_uri` is supported. OpenID Connect's default is `true`, so we
    /// always say it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_uri_parameter_supported: Option<bool>,
    /// [OpenID Connect RP-Initiated Logout §2.1](https://openid.net/specs/openid-connect-rpinitiated-1_0.html#OPMetadata)
    /// endpoint, where a client sends the user's browser to sign out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end_session_endpoint: Option<String>,
    /// [OpenID Connect Back-Channel Logout §2.1](https://openid.net/specs/openid-connect-backchannel-1_0.html#BCSupport):
    /// the OP sends logout tokens to clients' `backchannel_logout_uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_supported: Option<bool>,
    /// Back-Channel Logout §2.1: logout tokens may carry `sid` (and ID tokens do).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_session_supported: Option<bool>,
    /// [OpenID Connect Front-Channel Logout §3](https://openid.net/specs/openid-connect-frontchannel-1_0.html#OPLogout):
    /// the OP renders clients' `frontchannel_logout_uri` in iframes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_supported: Option<bool>,
    /// Front-Channel Logout §3: those iframes get `iss` and `sid` (and ID tokens carry `sid`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_session_supported: Option<bool>,
    /// [RFC 7591](https://www.rfc-editor.org/rfc/rfc7591) dynamic client registration endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub registration_endpoint: Option<String>,
    /// [RFC 9396 §10](https://www.rfc-editor.org/rfc/rfc9396#section-10) authorization details types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub authorization_details_types_supported: Vec<String>,
    /// [FAPI Grant Management §7.1](https://openid.net/specs/fapi-grant-management.html)
    /// actions the AS supports (`query`, `revoke`, `create`, `merge`, `replace`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_management_actions_supported: Vec<String>,
    /// [FAPI Grant Management §7.1](https://openid.net/specs/fapi-grant-management.html)
    /// the grant management API's base URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_management_endpoint: Option<String>,
    /// [FAPI Grant Management §7.1](https://openid.net/specs/fapi-grant-management.html)
    /// whether every authorization request must carry a `grant_management_action`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_management_action_required: Option<bool>,
    /// [RFC 9126 §5](https://www.rfc-editor.org/rfc/rfc9126#section-5) pushed authorization request endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pushed_authorization_request_endpoint: Option<String>,
    /// Whether every client must push its authorization requests (RFC 9126 §5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub require_pushed_authorization_requests: Option<bool>,
    /// Where the operator documents the server.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_documentation: Option<String>,
}
