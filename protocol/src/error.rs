//! OAuth error codes and the error response body
//! ([RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! error_codes {
    ($($(#[$attr:meta])* $variant:ident => $wire:literal,)*) => {
        /// Every error code the specs we implement define. Codes we receive from
        /// elsewhere and do not know keep their text in [`ErrorCode::Extension`].
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorCode {
            $($(#[$attr])* $variant,)*
            /// A code this crate does not know.
            Extension(String),
        }

        impl ErrorCode {
            /// The code as it appears on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $wire,)*
                    Self::Extension(other) => other,
                }
            }

            /// Parses a wire code, keeping unknown ones as [`ErrorCode::Extension`].
            pub fn parse(value: &str) -> Self {
                match value {
                    $($wire => Self::$variant,)*
                    other => Self::Extension(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    InvalidRequest => "invalid_request",
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    InvalidClient => "invalid_client",
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    InvalidGrant => "invalid_grant",
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    UnauthorizedClient => "unauthorized_client",
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    UnsupportedGrantType => "unsupported_grant_type",
    /// [RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)
    InvalidScope => "invalid_scope",
    /// [RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)
    AccessDenied => "access_denied",
    /// [RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)
    UnsupportedResponseType => "unsupported_response_type",
    /// [RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)
    ServerError => "server_error",
    /// [RFC 6749 §4.1.2.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.2.1)
    TemporarilyUnavailable => "temporarily_unavailable",
    /// [RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1)
    InvalidToken => "invalid_token",
    /// [RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1)
    InsufficientScope => "insufficient_scope",
    /// [RFC 7009 §2.2.1](https://www.rfc-editor.org/rfc/rfc7009#section-2.2.1)
    UnsupportedTokenType => "unsupported_token_type",
    /// [RFC 9101 §6.2](https://www.rfc-editor.org/rfc/rfc9101#section-6.2)
    InvalidRequestUri => "invalid_request_uri",
    /// [RFC 9101 §6.2](https://www.rfc-editor.org/rfc/rfc9101#section-6.2)
    InvalidRequestObject => "invalid_request_object",
    /// [RFC 9101 §6.2](https://www.rfc-editor.org/rfc/rfc9101#section-6.2)
    RequestNotSupported => "request_not_supported",
    /// [RFC 9101 §6.2](https://www.rfc-editor.org/rfc/rfc9101#section-6.2)
    RequestUriNotSupported => "request_uri_not_supported",
    /// [OpenID Connect Core §3.1.2.6](https://openid.net/specs/openid-connect-core-1_0.html#AuthError)
    LoginRequired => "login_required",
    /// [OpenID Connect Core §3.1.2.6](https://openid.net/specs/openid-connect-core-1_0.html#AuthError)
    ConsentRequired => "consent_required",
    /// [OpenID Connect Core §3.1.2.6](https://openid.net/specs/openid-connect-core-1_0.html#AuthError)
    InteractionRequired => "interaction_required",
    /// [RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)
    InvalidDpopProof => "invalid_dpop_proof",
    /// [RFC 9449 §8](https://www.rfc-editor.org/rfc/rfc9449#section-8)
    UseDpopNonce => "use_dpop_nonce",
    /// [RFC 9396 §5](https://www.rfc-editor.org/rfc/rfc9396#section-5)
    InvalidAuthorizationDetails => "invalid_authorization_details",
    /// [FAPI Grant Management §5.3](https://openid.net/specs/fapi-grant-management.html)
    InvalidGrantId => "invalid_grant_id",
    /// [CIBA Core §11](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.11)
    AuthorizationPending => "authorization_pending",
    /// [CIBA Core §11](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.11)
    SlowDown => "slow_down",
    /// [CIBA Core §11](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.11)
    ExpiredToken => "expired_token",
    /// [CIBA Core §13](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.13)
    ExpiredLoginHintToken => "expired_login_hint_token",
    /// [CIBA Core §13](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.13)
    UnknownUserId => "unknown_user_id",
    /// [CIBA Core §13](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.13)
    MissingUserCode => "missing_user_code",
    /// [CIBA Core §13](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.13)
    InvalidUserCode => "invalid_user_code",
    /// [CIBA Core §13](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.13)
    InvalidBindingMessage => "invalid_binding_message",
    /// [CIBA Core §12](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.12)
    TransactionFailed => "transaction_failed",
    /// [RFC 7591 §3.2.2](https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2)
    InvalidRedirectUri => "invalid_redirect_uri",
    /// [RFC 7591 §3.2.2](https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2)
    InvalidClientMetadata => "invalid_client_metadata",
    /// [RFC 7591 §3.2.2](https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2)
    InvalidSoftwareStatement => "invalid_software_statement",
    /// [RFC 7591 §3.2.2](https://www.rfc-editor.org/rfc/rfc7591#section-3.2.2)
    UnapprovedSoftwareStatement => "unapproved_software_statement",
    /// Outband device channel: the resource was not found.
    NotFound => "not_found",
    /// Outband device channel: the request was already decided or otherwise moved on.
    Conflict => "conflict",
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ErrorCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ErrorCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = String::deserialize(deserializer)?;
        Ok(Self::parse(&value))
    }
}

/// The body of every OAuth error response
/// ([RFC 6749 §5.2](https://www.rfc-editor.org/rfc/rfc6749#section-5.2)).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorResponse {
    /// The error code.
    pub error: ErrorCode,
    /// Human-readable text for the developer of the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip() {
        for code in [
            "invalid_request",
            "slow_down",
            "expired_login_hint_token",
            "use_dpop_nonce",
        ] {
            assert_eq!(ErrorCode::parse(code).as_str(), code);
            assert!(!matches!(ErrorCode::parse(code), ErrorCode::Extension(_)));
        }
        assert_eq!(ErrorCode::parse("made_up"), ErrorCode::Extension("made_up".into()));
    }

    #[test]
    fn error_response_json_shape() {
        let body = ErrorResponse {
            error: ErrorCode::InvalidGrant,
            error_description: Some("unknown auth_req_id".into()),
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"error":"invalid_grant","error_description":"unknown auth_req_id"}"#
        );
    }
}
