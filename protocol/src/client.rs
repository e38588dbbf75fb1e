//! Client metadata ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2),
//! [OpenID Connect Registration §2](https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata),
//! [CIBA Core §4](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.4))
//! and the closed enums the server accepts in it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use url::Url;

use crate::jose::SigningAlg;
use crate::types::{ClientId, Scope};

macro_rules! wire_enum {
    ($(#[$attr:meta])* $name:ident { $($(#[$vattr:meta])* $variant:ident => $wire:literal,)* }) => {
        $(#[$attr])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vattr])* #[serde(rename = $wire)] $variant,)*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant,)*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// Parses a wire name.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($wire => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(value: &str) -> Result<Self, String> {
                Self::parse(value).ok_or_else(|| {
                    let known: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                    format!("unknown value {value:?}; expected one of {}", known.join(", "))
                })
            }
        }
    };
}

wire_enum!(
    /// How a client authenticates at the token endpoint
    /// ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2), [RFC 8705 §2](https://www.rfc-editor.org/rfc/rfc8705#section-2)).
    TokenEndpointAuthMethod {
        /// HTTP Basic with the client secret.
        ClientSecretBasic => "client_secret_basic",
        /// The client secret in the form body.
        ClientSecretPost => "client_secret_post",
        /// A JWT signed with the client's private key ([RFC 7523](https://www.rfc-editor.org/rfc/rfc7523)).
        PrivateKeyJwt => "private_key_jwt",
        /// Mutual TLS with a PKI certificate ([RFC 8705 §2.1](https://www.rfc-editor.org/rfc/rfc8705#section-2.1)).
        TlsClientAuth => "tls_client_auth",
        /// Mutual TLS with a self-signed certificate in the client's JWKS ([RFC 8705 §2.2](https://www.rfc-editor.org/rfc/rfc8705#section-2.2)).
        SelfSignedTlsClientAuth => "self_signed_tls_client_auth",
        /// A public client: no authentication.
        None => "none",
    }
);

wire_enum!(
    /// CIBA token delivery mode ([CIBA Core §5](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.5)).
    DeliveryMode {
        /// The client polls the token endpoint.
        Poll => "poll",
        /// The AS notifies the client, which then calls the token endpoint.
        Ping => "ping",
        /// The AS sends the tokens to the client.
        Push => "push",
    }
);

wire_enum!(
    /// The security profile a client is held to. What each one requires lives in
    /// the server's `profile` module; this is only its name.
    Profile {
        /// Plain OAuth 2.0 / OpenID Connect.
        Oidc => "oidc",
        /// FAPI 1.0 Part 1 (baseline).
        Fapi1Baseline => "fapi1-baseline",
        /// FAPI 1.0 Part 2 (advanced).
        Fapi1Advanced => "fapi1-advanced",
        /// FAPI 2.0 Security Profile.
        Fapi2Security => "fapi2-security",
        /// FAPI 2.0 Message Signing.
        Fapi2MessageSigning => "fapi2-message-signing",
        /// FAPI-CIBA.
        FapiCiba => "fapi-ciba",
        /// Open Finance Brasil.
        OpenbankingBr => "openbanking-br",
    }
);

wire_enum!(
    /// An OAuth grant type ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2)).
    GrantType {
        /// [RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1)
        AuthorizationCode => "authorization_code",
        /// [RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)
        RefreshToken => "refresh_token",
        /// [RFC 6749 §4.4](https://www.rfc-editor.org/rfc/rfc6749#section-4.4)
        ClientCredentials => "client_credentials",
        /// [CIBA Core §10.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.1)
        Ciba => "urn:openid:params:grant-type:ciba",
    }
);

wire_enum!(
    /// The format of the access tokens a client receives.
    AccessTokenFormat {
        /// A signed JWT ([RFC 9068](https://www.rfc-editor.org/rfc/rfc9068)).
        Jwt => "jwt",
        /// A random reference that only introspection can read.
        Opaque => "opaque",
    }
);

fn is_false(value: &bool) -> bool {
    !*value
}

fn default_auth_method() -> TokenEndpointAuthMethod {
    TokenEndpointAuthMethod::ClientSecretBasic
}

fn default_profile() -> Profile {
    Profile::Oidc
}

fn default_access_token_format() -> AccessTokenFormat {
    AccessTokenFormat::Jwt
}

/// A registered client's metadata: what it may do and how it proves who it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClientMetadata {
    /// The client identifier.
    pub client_id: ClientId,
    /// A name to show to people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_name: Option<String>,
    /// The client's home page, linked from the login and consent pages
    /// ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2), like the three below).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_uri: Option<String>,
    /// The client's logo, shown on the login and consent pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logo_uri: Option<String>,
    /// How the client uses the data it gets, linked from the pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_uri: Option<String>,
    /// The client's terms of service, linked from the pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tos_uri: Option<String>,
    /// People responsible for the client (e-mail addresses); kept and returned, never shown.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<String>,
    /// `public`, the only subject type this server has
    /// ([OpenID Connect Registration §2](https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject_type: Option<String>,
    /// How the client authenticates at the token endpoint.
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: TokenEndpointAuthMethod,
    /// The alg the client signs `private_key_jwt` assertions with; any allowed one when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_endpoint_auth_signing_alg: Option<SigningAlg>,
    /// The client's public keys, by value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks: Option<Value>,
    /// Where the client publishes its public keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jwks_uri: Option<Url>,
    /// Redirect URIs, compared exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<Url>,
    /// Where the user's browser may be sent after signing out, compared exactly
    /// ([OpenID Connect RP-Initiated Logout §3.1](https://openid.net/specs/openid-connect-rpinitiated-1_0.html#ClientMetadata)).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub post_logout_redirect_uris: Vec<Url>,
    /// Where the server POSTs logout tokens when the user's session ends
    /// ([OpenID Connect Back-Channel Logout §2.2](https://openid.net/specs/openid-connect-backchannel-1_0.html#BCRegistration)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_logout_uri: Option<Url>,
    /// Back-Channel Logout §2.2: the logout token must carry `sid`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backchannel_logout_session_required: bool,
    /// The page the server shows in an iframe when the user's session ends
    /// ([OpenID Connect Front-Channel Logout §2](https://openid.net/specs/openid-connect-frontchannel-1_0.html#RPLogout)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frontchannel_logout_uri: Option<Url>,
    /// Front-Channel Logout §2: the iframe's URL must carry `iss` and `sid`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub frontchannel_logout_session_required: bool,
    /// The grant types the client may use.
    #[serde(default)]
    pub grant_types: Vec<GrantType>,
    /// The scopes the client may ask for.
    #[serde(default)]
    pub scope: Scope,
    /// CIBA delivery mode.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_token_delivery_mode: Option<DeliveryMode>,
    /// CIBA ping/push notification endpoint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_client_notification_endpoint: Option<Url>,
    /// When set, CIBA requests must be signed request objects with this alg.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backchannel_authentication_request_signing_alg: Option<SigningAlg>,
    /// Whether the client sends a `user_code` with CIBA requests.
    #[serde(default, skip_serializing_if = "is_false")]
    pub backchannel_user_code_parameter: bool,
    /// The alg of ID tokens issued to this client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token_signed_response_alg: Option<SigningAlg>,
    /// When set, every request object of the client must be signed with exactly
    /// this alg ([OpenID Connect Registration §2](https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata),
    /// [RFC 9101 §10.5](https://www.rfc-editor.org/rfc/rfc9101#section-10.5)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_object_signing_alg: Option<SigningAlg>,
    /// The `response_type` values the client may use
    /// ([RFC 7591 §2](https://www.rfc-editor.org/rfc/rfc7591#section-2)); when
    /// absent, every response type its profile allows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_types: Option<Vec<String>>,
    /// The alg of signed authorization responses (JARM §3); the profile's default when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_signed_response_alg: Option<SigningAlg>,
    /// When set, UserInfo answers are JWTs signed with this alg
    /// ([OpenID Connect Registration §2](https://openid.net/specs/openid-connect-registration-1_0.html#ClientMetadata)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub userinfo_signed_response_alg: Option<SigningAlg>,
    /// The alg of introspection answers asked for as JWTs
    /// ([RFC 9701 §6](https://www.rfc-editor.org/rfc/rfc9701#section-6)); the profile's
    /// default (RS256, PS256 under FAPI) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub introspection_signed_response_alg: Option<SigningAlg>,
    /// Access tokens must be DPoP-bound ([RFC 9449 §5.2](https://www.rfc-editor.org/rfc/rfc9449#section-5.2)).
    #[serde(default, skip_serializing_if = "is_false")]
    pub dpop_bound_access_tokens: bool,
    /// Access tokens are bound to the client's certificate ([RFC 8705 §3.4](https://www.rfc-editor.org/rfc/rfc8705#section-3.4)).
    #[serde(default, skip_serializing_if = "is_false")]
    pub tls_client_certificate_bound_access_tokens: bool,
    /// Expected certificate subject DN for `tls_client_auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_subject_dn: Option<String>,
    /// Expected certificate DNS SAN for `tls_client_auth`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_client_auth_san_dns: Option<String>,
    /// The security profile the client is held to.
    #[serde(default = "default_profile")]
    pub profile: Profile,
    /// JWT or opaque access tokens.
    #[serde(default = "default_access_token_format")]
    pub access_token_format: AccessTokenFormat,
    /// Outband extension: CIBA approvals need the user to type on the device the
    /// number the terminal shows (`number_match` in the backchannel response).
    #[serde(default, skip_serializing_if = "is_false")]
    pub number_matching: bool,
    /// The [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396#section-10) authorization
    /// details types the client may use; every type the server knows when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details_types: Option<Vec<String>>,
    /// [RFC 9126 §6](https://www.rfc-editor.org/rfc/rfc9126#section-6): the client's
    /// authorization requests must be pushed (`/par`) first.
    #[serde(default, skip_serializing_if = "is_false")]
    pub require_pushed_authorization_requests: bool,
}

impl ClientMetadata {
    /// A client with the given id and defaults everywhere else (secret basic, `oidc`, JWT tokens).
    pub fn new(client_id: ClientId) -> Self {
        Self {
            client_id,
            client_name: None,
            client_uri: None,
            logo_uri: None,
            policy_uri: None,
            tos_uri: None,
            contacts: Vec::new(),
            subject_type: None,
            token_endpoint_auth_method: default_auth_method(),
            token_endpoint_auth_signing_alg: None,
            jwks: None,
            jwks_uri: None,
            redirect_uris: Vec::new(),
            post_logout_redirect_uris: Vec::new(),
            backchannel_logout_uri: None,
            backchannel_logout_session_required: false,
            frontchannel_logout_uri: None,
            frontchannel_logout_session_required: false,
            grant_types: vec![GrantType::ClientCredentials],
            scope: Scope::default(),
            backchannel_token_delivery_mode: None,
            backchannel_client_notification_endpoint: None,
            backchannel_authentication_request_signing_alg: None,
            backchannel_user_code_parameter: false,
            id_token_signed_response_alg: None,
            request_object_signing_alg: None,
            response_types: None,
            authorization_signed_response_alg: None,
            userinfo_signed_response_alg: None,
            introspection_signed_response_alg: None,
            dpop_bound_access_tokens: false,
            tls_client_certificate_bound_access_tokens: false,
            tls_client_auth_subject_dn: None,
            tls_client_auth_san_dns: None,
            profile: default_profile(),
            access_token_format: default_access_token_format(),
            number_matching: false,
            authorization_details_types: None,
            require_pushed_authorization_requests: false,
        }
    }

    /// The name to show people: `client_name`, or the id.
    pub fn display_name(&self) -> &str {
        self.client_name.as_deref().unwrap_or(self.client_id.as_str())
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_defaults_and_wire_names() {
        let json = serde_json::json!({
            "client_id": "pos-1",
            "grant_types": ["urn:openid:params:grant-type:ciba", "client_credentials"],
            "backchannel_token_delivery_mode": "ping",
            "profile": "fapi-ciba",
            "token_endpoint_auth_method": "private_key_jwt"
        });
        let meta: ClientMetadata = serde_json::from_value(json).unwrap();
        assert_eq!(meta.profile, Profile::FapiCiba);
        assert!(meta.allows_grant(GrantType::Ciba));
        assert_eq!(meta.backchannel_token_delivery_mode, Some(DeliveryMode::Ping));
        assert_eq!(meta.access_token_format, AccessTokenFormat::Jwt);
        assert_eq!(meta.display_name(), "pos-1");
    }

    #[test]
    fn unknown_enum_values_are_refused_with_the_choices() {
        let err = "fapi3".parse::<Profile>().unwrap_err();
        assert!(err.contains("fapi2-security"), "{err}");
        assert!(serde_json::from_value::<ClientMetadata>(serde_json::json!({
            "client_id": "x", "token_endpoint_auth_method": "magic"
        }))
        .is_err());
    }
}
