//! Token endpoint messages ([RFC 6749 §4–§6](https://www.rfc-editor.org/rfc/rfc6749#section-4),
//! [CIBA Core §10](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10)).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::secrets::{AccessToken, AuthReqId, RefreshToken};
use crate::types::Scope;

/// A token request, tagged on `grant_type`. Client authentication parameters
/// (`client_id`, `client_secret`, `client_assertion`…) are read separately and
/// ignored here.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "grant_type")]
pub enum TokenRequest {
    /// [RFC 6749 §4.4.2](https://www.rfc-editor.org/rfc/rfc6749#section-4.4.2)
    #[serde(rename = "client_credentials")]
    ClientCredentials {
        /// Requested scope; the client's registered scope when absent.
        #[serde(default)]
        scope: Option<Scope>,
        /// [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396) details, as JSON text.
        #[serde(default)]
        authorization_details: Option<String>,
    },
    /// [RFC 6749 §4.1.3](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.3)
    #[serde(rename = "authorization_code")]
    AuthorizationCode {
        /// The authorization code.
        code: String,
        /// Must equal the one in the authorization request, when that had one.
        #[serde(default)]
        redirect_uri: Option<String>,
        /// [RFC 7636 §4.5](https://www.rfc-editor.org/rfc/rfc7636#section-4.5)
        #[serde(default)]
        code_verifier: Option<String>,
    },
    /// [RFC 6749 §6](https://www.rfc-editor.org/rfc/rfc6749#section-6)
    #[serde(rename = "refresh_token")]
    RefreshToken {
        /// The refresh token.
        refresh_token: RefreshToken,
        /// A narrower scope, optionally.
        #[serde(default)]
        scope: Option<Scope>,
    },
    /// [CIBA Core §10.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.1)
    #[serde(rename = "urn:openid:params:grant-type:ciba")]
    Ciba {
        /// The identifier returned by the backchannel authentication endpoint.
        auth_req_id: AuthReqId,
    },
    /// Any other `grant_type`: answered `unsupported_grant_type`.
    #[serde(other)]
    Unsupported,
}

/// The `token_type` of an issued access token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TokenType {
    /// [RFC 6750](https://www.rfc-editor.org/rfc/rfc6750)
    Bearer,
    /// [RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)
    DPoP,
}

/// A successful token response ([RFC 6749 §5.1](https://www.rfc-editor.org/rfc/rfc6749#section-5.1)).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenResponse {
    /// The access token.
    pub access_token: AccessToken,
    /// `Bearer` or `DPoP`.
    pub token_type: TokenType,
    /// Lifetime of the access token in seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// A refresh token, when the grant allows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// The granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// An ID token, for OpenID Connect grants.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    /// Granted [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396) details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
    /// The grant these tokens belong to (FAPI Grant Management).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_id: Option<String>,
}

/// An introspection response ([RFC 7662 §2.2](https://www.rfc-editor.org/rfc/rfc7662#section-2.2)).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct IntrospectionResponse {
    /// Whether the token is currently active. An inactive answer carries nothing else.
    pub active: bool,
    /// Granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<Scope>,
    /// The client the token was issued to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The username of the resource owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// `Bearer`, `DPoP` or `refresh_token`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Expiry, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exp: Option<i64>,
    /// Issued at, seconds since the epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<i64>,
    /// The subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    /// The audience.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aud: Option<String>,
    /// The issuer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iss: Option<String>,
    /// The token identifier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jti: Option<String>,
    /// Confirmation (sender constraint): `jkt` or `x5t#S256`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Value>,
    /// Granted [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396) details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorization_details: Option<Value>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<TokenRequest, serde_urlencoded::de::Error> {
        serde_urlencoded::from_str(body)
    }

    #[test]
    fn client_credentials_form() {
        match parse("grant_type=client_credentials&scope=payments%20accounts&client_id=x").unwrap() {
            TokenRequest::ClientCredentials { scope, .. } => {
                assert_eq!(scope.unwrap().as_str(), "payments accounts")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ciba_form() {
        match parse("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=abc").unwrap() {
            TokenRequest::Ciba { auth_req_id } => assert_eq!(auth_req_id.secret(), "abc"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authorization_code_form() {
        match parse("grant_type=authorization_code&code=c&redirect_uri=https%3A%2F%2Fa&code_verifier=v").unwrap() {
            TokenRequest::AuthorizationCode {
                code,
                redirect_uri,
                code_verifier,
            } => {
                assert_eq!(code, "c");
                assert_eq!(redirect_uri.as_deref(), Some("https://a"));
                assert_eq!(code_verifier.as_deref(), Some("v"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refresh_form() {
        assert!(matches!(
            parse("grant_type=refresh_token&refresh_token=r").unwrap(),
            TokenRequest::RefreshToken { .. }
        ));
    }

    #[test]
    fn unknown_and_missing_grant_types() {
        assert!(matches!(
            parse("grant_type=password&username=a").unwrap(),
            TokenRequest::Unsupported
        ));
        assert!(parse("scope=openid").is_err());
        assert!(parse("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba").is_err());
    }
}
