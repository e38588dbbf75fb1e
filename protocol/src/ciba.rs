//! CIBA messages ([OpenID CIBA Core 1.0](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html)).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ErrorCode;
use crate::secrets::{AuthReqId, ClientNotificationToken};
use crate::token::TokenResponse;
use crate::types::{BindingMessage, LoginHint, Scope};

/// The grant type a client uses to redeem an `auth_req_id`.
pub const CIBA_GRANT_TYPE: &str = "urn:openid:params:grant-type:ciba";

/// The ID-token claim that carries the `auth_req_id` in push mode (§10.3.1).
pub const AUTH_REQ_ID_CLAIM: &str = "urn:openid:params:jwt:claim:auth_req_id";

/// The ID-token claim that carries the refresh token hash in push mode (§10.3.1).
pub const RT_HASH_CLAIM: &str = "urn:openid:params:jwt:claim:rt_hash";

/// An authentication request ([§7.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1)),
/// as sent in the form body or inside a signed `request` object.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
pub struct BackchannelAuthenticationRequest {
    /// Must contain `openid`.
    #[serde(default)]
    pub scope: Option<Scope>,
    /// Bearer token for ping/push notifications.
    #[serde(default)]
    pub client_notification_token: Option<ClientNotificationToken>,
    /// Requested authentication context classes, space separated.
    #[serde(default)]
    pub acr_values: Option<String>,
    /// A JWT identifying the user.
    #[serde(default)]
    pub login_hint_token: Option<String>,
    /// An ID token previously issued to this client.
    #[serde(default)]
    pub id_token_hint: Option<String>,
    /// Username, e-mail or phone.
    #[serde(default)]
    pub login_hint: Option<LoginHint>,
    /// Shown on both devices.
    #[serde(default)]
    pub binding_message: Option<BindingMessage>,
    /// A secret the user knows.
    #[serde(default)]
    pub user_code: Option<String>,
    /// Requested lifetime in seconds (a number, or a string of digits in a form).
    #[serde(default)]
    pub requested_expiry: Option<Value>,
    /// [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396) details (JSON text in a form, an array in a request object).
    #[serde(default)]
    pub authorization_details: Option<Value>,
    /// A signed request object ([§7.1.1](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.1.1)).
    #[serde(default)]
    pub request: Option<String>,
    /// [FAPI Grant Management §5.2](https://openid.net/specs/fapi-grant-management.html) grant to act on.
    #[serde(default)]
    pub grant_id: Option<String>,
    /// [FAPI Grant Management §5.2](https://openid.net/specs/fapi-grant-management.html)
    /// `create`, `merge` or `replace`.
    #[serde(default)]
    pub grant_management_action: Option<String>,
}

/// The successful answer of the backchannel authentication endpoint
/// ([§7.3](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7.3)).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct BackchannelAuthenticationResponse {
    /// The request's identifier.
    pub auth_req_id: AuthReqId,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Minimum seconds between polls (poll and ping).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
    /// Outband extension, for clients registered for number matching: the number
    /// the terminal shows and the user types on the authentication device.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number_match: Option<String>,
}

/// A ping callback body ([§10.2](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.2)).
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct PingCallback {
    /// The request that is ready.
    pub auth_req_id: AuthReqId,
}

/// A push callback body: tokens ([§10.3](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.3))
/// or an error ([§12](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.12)).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum PushCallback {
    /// The request failed.
    Error {
        /// The request.
        auth_req_id: AuthReqId,
        /// `access_denied`, `expired_token` or `transaction_failed`.
        error: ErrorCode,
        /// Text for the developer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error_description: Option<String>,
    },
    /// The tokens.
    Tokens {
        /// The request.
        auth_req_id: AuthReqId,
        /// The token response.
        #[serde(flatten)]
        tokens: TokenResponse,
    },
}
