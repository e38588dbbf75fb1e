//! Validating an authorization request ([RFC 6749 §4.1.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1.1),
//! [OpenID Connect Core §3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest)),
//! the same way at `/authorize` and at `/par`.
//!
//! The order matters: until `client_id` and `redirect_uri` are known good, an
//! error cannot be sent to the client (it would make us an open redirector) and
//! is shown to the user instead ([`Rejection::Page`]); after that every error
//! goes back to the client's redirect URI ([`Rejection::Redirect`]).

use std::borrow::Cow;
use std::collections::BTreeMap;

use outband_protocol::{ClientId, ErrorCode, GrantType, Scope, TokenEndpointAuthMethod};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::authorize::pkce::{self, PkceMethod};
use crate::authorize::response::{self, ResponseMode, ResponseTarget, ResponseType};
use crate::error::Error;
use crate::profile::Policy;
use crate::store::ClientRecord;

/// The prefix of the `request_uri`s `/par` hands out (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
/// Longest `state`, `nonce` and `login_hint` accepted.
const MAX_VALUE_LEN: usize = 2048;

/// The parameters of a request, each present once (empty ones dropped).
pub type Params = BTreeMap<String, String>;

/// Parses a query string or form body: repeated parameters are refused
/// ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1)), empty ones are absent.
pub fn parse_params(raw: &[u8]) -> Result<Params, String> {
    let mut params = Params::new();
    for (name, value) in url::form_urlencoded::parse(raw) {
        if value.is_empty() {
            continue;
        }
        if params.insert(name.to_string(), value.into_owned()).is_some() {
            return Err(format!("parameter {name} is repeated"));
        }
    }
    Ok(params)
}

/// A request `prompt` ([OpenID Connect Core §3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest)).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    /// `none`: no page may be shown.
    pub none: bool,
    /// `login`: the user must log in again.
    pub login: bool,
    /// `consent`: the user must be asked (we always ask).
    pub consent: bool,
}

/// A validated authorization request: what the login and consent pages work on.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    /// The client.
    pub client_id: ClientId,
    /// One of the client's registered redirect URIs, exactly.
    pub redirect_uri: String,
    /// Requested scope (within the client's registered scope).
    pub scope: Scope,
    /// Returned unchanged with the response.
    pub state: Option<String>,
    /// Returned in the ID token.
    pub nonce: Option<String>,
    /// PKCE challenge and method.
    pub code_challenge: Option<(String, PkceMethod)>,
    /// What `prompt` asks.
    pub prompt: Prompt,
    /// Longest time since the user's last login, in seconds.
    pub max_age: Option<i64>,
    /// Username to fill in on the login page.
    pub login_hint: Option<String>,
    /// [RFC 9396](https://www.rfc-editor.org/rfc/rfc9396) details (a JSON array).
    pub authorization_details: Option<Value>,
    /// [FAPI Grant Management §5.2](https://openid.net/specs/fapi-grant-management.html)
    /// `grant_management_action` and `grant_id` ([`crate::grant_management`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_management: Option<crate::grant_management::GrantRequest>,
    /// `code` or `code id_token` ([`response`]).
    #[serde(default)]
    pub response_type: ResponseType,
    /// How the response reaches the client (`jwt` already resolved).
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// The DPoP key the code will be bound to ([RFC 9449 §10](https://www.rfc-editor.org/rfc/rfc9449#section-10)).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dpop_jkt: Option<String>,
    /// The lodging-intent consent the request names ([`crate::consents::authorize`]);
    /// set by the endpoints after [`validate`], which cannot reach the store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<crate::consents::authorize::ConsentRef>,
    /// The user an `id_token_hint` names ([OpenID Connect Core §3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest)),
    /// or a `claims.id_token.sub.value` (§5.5.1): only that user may be (or
    /// get) signed in for this request. Set by [`crate::authorize::flow::start`], which can verify the hint.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hinted_subject: Option<outband_protocol::Subject>,
    /// Requested authentication context classes, in order of preference
    /// ([OpenID Connect Core §3.1.2.1](https://openid.net/specs/openid-connect-core-1_0.html#AuthRequest); voluntary, [`crate::acr`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acr_values: Option<String>,
    /// The `claims` parameter ([`crate::claims`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claims: Option<crate::claims::ClaimsRequest>,
}

/// Why a request was refused.
#[derive(Debug)]
pub enum Rejection {
    /// Shown to the user: the client or redirect URI cannot be trusted.
    Page(Cow<'static, str>),
    /// Sent to the client at `redirect_uri`, with `state`.
    Redirect {
        /// Where to send it.
        redirect_uri: String,
        /// The request's `state`.
        state: Option<String>,
        /// The error.
        error: Box<Error>,
    },
    /// A failure of ours.
    Internal(Box<Error>),
    /// Sent to the client in its response mode ([`response`]), with `state`.
    Respond {
        /// Where and how to send it.
        target: Box<ResponseTarget>,
        /// The request's `state`.
        state: Option<String>,
        /// The error.
        error: Box<Error>,
    },
}

impl From<Error> for Rejection {
    fn from(error: Error) -> Self {
        Self::Internal(Box::new(error))
    }
}

impl Rejection {
    /// The error as an OAuth error (for `/par`, which answers in JSON).
    pub fn into_error(self) -> Error {
        match self {
            Self::Page(message) => Error::invalid_request(message),
            Self::Redirect { error, .. } | Self::Respond { error, .. } => *error,
            Self::Internal(error) => *error,
        }
    }
}

/// Whether `redirect_uri` is exactly one the client registered.
pub fn registered_redirect_uri(client: &ClientRecord, redirect_uri: &str) -> bool {
    // Exactly, except the port of loopback URIs (RFC 8252 §7.3).
    crate::authorize::redirect_uri::is_registered(client, redirect_uri)
}

/// Validates `params` for `client`; `pushed` says whether they came through
/// `/par` (the PKCE rule of FAPI 1 Advanced, [`Policy::requires_pkce`]).
pub fn validate(params: &Params, client: &ClientRecord, pushed: bool) -> Result<AuthorizationRequest, Rejection> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let Some(redirect_uri) = get("redirect_uri") else {
        return Err(Rejection::Page("The application sent no redirect_uri.".into()));
    };
    if !registered_redirect_uri(client, redirect_uri) {
        return Err(Rejection::Page(
            "The application sent a redirect_uri it has not registered.".into(),
        ));
    }
    let state = get("state").map(str::to_owned);
    let fail = |error: Error| Rejection::Respond {
        target: Box::new(ResponseTarget::new(client, redirect_uri, response::error_mode(params))),
        state: state.clone(),
        error: Box::new(error),
    };
    check_request(params, client, pushed).map_err(fail)
}

fn bounded(params: &Params, name: &str) -> Result<Option<String>, Error> {
    match params.get(name) {
        Some(value) if value.len() > MAX_VALUE_LEN => Err(Error::invalid_request(format!(
            "{name} is longer than {MAX_VALUE_LEN} characters"
        ))),
        value => Ok(value.cloned()),
    }
}

fn check_request(params: &Params, client: &ClientRecord, pushed: bool) -> Result<AuthorizationRequest, Error> {
    let get = |name: &str| params.get(name).map(String::as_str);
    let policy = Policy::of(client.metadata.profile);
    if params.contains_key("request") {
        // Resolved by `request_object::parameters` before validation; one inside another is refused.
        return Err(Error::new(
            ErrorCode::InvalidRequestObject,
            "a request object cannot nest another",
        ));
    }
    let response_type = response::response_type(params)?;
    if let Some(registered) = &client.metadata.response_types {
        if !registered.iter().any(|r| ResponseType::parse(r) == Some(response_type)) {
            return Err(Error::new(
                ErrorCode::UnauthorizedClient,
                format!("client is not registered for response_type {}", response_type.as_str()),
            ));
        }
    }
    if !client.metadata.allows_grant(GrantType::AuthorizationCode) {
        return Err(Error::unauthorized_client(
            "client is not registered for the authorization_code grant",
        ));
    }
    let response_mode = response::response_mode(params, response_type, policy)?;
    let scope = Scope::new(get("scope").ok_or_else(|| Error::invalid_request("scope is required"))?);
    if !scope.is_well_formed() {
        return Err(Error::invalid_scope(
            "scope contains characters RFC 6749 §3.3 does not allow",
        ));
    }
    // `consent:{consentId}` is a dynamic scope: the consent is checked instead.
    let registered = |s: &str| client.metadata.scope.contains(s) || crate::consents::authorize::is_consent_scope(s);
    if let Some(extra) = scope.iter().find(|s| !registered(s)) {
        return Err(Error::invalid_scope(format!(
            "client is not registered for scope {extra}"
        )));
    }
    crate::authorize::hybrid::check_request(policy, response_type, &scope, params)?;
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, Some(_)) => return Err(Error::invalid_request("code_challenge_method without code_challenge")),
        (None, None) => {
            let public = client.metadata.token_endpoint_auth_method == TokenEndpointAuthMethod::None;
            if policy.requires_pkce(pushed) || public {
                return Err(Error::invalid_request(format!(
                    "code_challenge is required (PKCE with S256) for this {} client",
                    client.metadata.profile
                )));
            }
            None
        }
        (Some(challenge), method) => Some(pkce::check_challenge(challenge, method, policy)?),
    };
    Ok(AuthorizationRequest {
        client_id: client.client_id().clone(),
        redirect_uri: get("redirect_uri").unwrap_or_default().to_owned(),
        scope,
        state: bounded(params, "state")?,
        nonce: bounded(params, "nonce")?,
        code_challenge,
        response_type,
        response_mode,
        prompt: prompt(get("prompt"))?,
        max_age: get("max_age")
            .map(|v| v.parse::<i64>().ok().filter(|n| *n >= 0))
            .map(|v| v.ok_or_else(|| Error::invalid_request("max_age must be a non-negative integer")))
            .transpose()?,
        login_hint: bounded(params, "login_hint")?,
        grant_management: crate::grant_management::parse(get("grant_management_action"), get("grant_id"), client)?,
        authorization_details: get("authorization_details")
            .map(|text| authorization_details(text, client))
            .transpose()?,
        dpop_jkt: crate::authorize::dpop_binding::requested_jkt(params)?,
        consent: None,
        hinted_subject: None,
        acr_values: bounded(params, "acr_values")?,
        claims: get("claims").map(crate::claims::parse).transpose()?,
    })
}

fn prompt(value: Option<&str>) -> Result<Prompt, Error> {
    let mut prompt = Prompt::default();
    for item in value.unwrap_or_default().split(' ').filter(|s| !s.is_empty()) {
        match item {
            "none" => prompt.none = true,
            "login" => prompt.login = true,
            "consent" => prompt.consent = true,
            // One account per browser: there is nothing to select.
            "select_account" => {}
            other => return Err(Error::invalid_request(format!("prompt {other} is not supported"))),
        }
    }
    if prompt.none && (prompt.login || prompt.consent) {
        return Err(Error::invalid_request(
            "prompt none cannot be combined with other values",
        ));
    }
    Ok(prompt)
}

/// Parses and checks `authorization_details` ([`crate::rar`]) against the
/// types the client may use.
fn authorization_details(text: &str, client: &ClientRecord) -> Result<Value, Error> {
    let details = crate::rar::parse(Value::String(text.to_owned()))?;
    crate::rar::check(&details, client.metadata.authorization_details_types.as_deref())?;
    Ok(details)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_refuse_repeats_and_drop_empty_values() {
        let params = parse_params(b"a=1&b=&c=x%20y").unwrap();
        assert_eq!(params.get("a").map(String::as_str), Some("1"));
        assert!(!params.contains_key("b"));
        assert_eq!(params.get("c").map(String::as_str), Some("x y"));
        assert!(parse_params(b"a=1&a=2").is_err());
    }

    #[test]
    fn prompts() {
        assert!(prompt(Some("none")).unwrap().none);
        assert!(prompt(Some("login consent")).unwrap().login);
        assert!(prompt(Some("none login")).is_err());
        assert!(prompt(Some("shout")).is_err());
    }
}
