//! Authorization responses: the response types we answer (`code`, and the hybrid
//! `code id_token`, [OAuth 2.0 Multiple Response Type Encoding Practices §5](https://openid.net/specs/oauth-v2-multiple-response-types-1_0.html#Combinations))
//! and the ways a response reaches the client (`response_mode`):
//!
//! - `query` and `fragment` (Multiple Response Types §2.1): the parameters in the
//!   redirect URI's query or fragment; tokens are never put in the query, so
//!   `query` is refused for `code id_token`, whose default is `fragment`;
//! - `form_post` ([OAuth 2.0 Form Post Response Mode](https://openid.net/specs/oauth-v2-form-post-response-mode-1_0.html)):
//!   an auto-submitting HTML form (with a visible button for browsers without JavaScript);
//! - JARM ([JWT Secured Authorization Response Mode](https://openid.net/specs/oauth-v2-jarm.html)):
//!   `query.jwt`, `fragment.jwt`, `form_post.jwt` and `jwt` (the response type's
//!   default of those): one `response` parameter, a JWT signed by the server with
//!   the client's `authorization_signed_response_alg` that carries `iss`, `aud`,
//!   `exp` and the response parameters (`code`, `state`, ... or `error`, ...).
//!   Without response encryption, `query.jwt` is refused for `code id_token`
//!   (JARM §4.3.1).
//!
//! Every response but a JARM one carries `iss` ([RFC 9207](https://www.rfc-editor.org/rfc/rfc9207));
//! in JARM the JWT's `iss` claim does that job (RFC 9207 §2.4).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use outband_protocol::{ErrorCode, SigningAlg};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map};
use sha2::{Digest, Sha256};
use url::Url;

use crate::authorize::pages::{self, escape};
use crate::authorize::request::{AuthorizationRequest, Params, Rejection};
use crate::error::{Error, Result};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::ClientRecord;

/// How long a JARM response JWT is good for, in seconds (JARM §4.1 asks for a
/// short-lived JWT; FAPI suggests no more than 10 minutes).
pub const RESPONSE_JWT_LIFETIME: i64 = 300;

/// A `response_type` this server answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseType {
    /// `code` ([RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1)).
    #[default]
    #[serde(rename = "code")]
    Code,
    /// `code id_token`: the hybrid flow ([OpenID Connect Core §3.3](https://openid.net/specs/openid-connect-core-1_0.html#HybridFlowAuth)).
    #[serde(rename = "code id_token")]
    CodeIdToken,
}

impl ResponseType {
    /// Every response type served, for discovery.
    pub const ALL: [ResponseType; 2] = [ResponseType::Code, ResponseType::CodeIdToken];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Code => "code",
            Self::CodeIdToken => "code id_token",
        }
    }

    /// Parses a space-separated value; the order of the values does not matter
    /// (Multiple Response Types §5).
    pub fn parse(value: &str) -> Option<Self> {
        let mut items: Vec<&str> = value.split(' ').filter(|s| !s.is_empty()).collect();
        items.sort_unstable();
        match items.as_slice() {
            ["code"] => Some(Self::Code),
            ["code", "id_token"] => Some(Self::CodeIdToken),
            _ => None,
        }
    }

    /// Whether the front channel carries an ID token.
    pub fn has_id_token(self) -> bool {
        self == Self::CodeIdToken
    }
}

/// Where the parameters travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Carrier {
    Query,
    Fragment,
    FormPost,
}

/// A resolved `response_mode` (`jwt` resolved to its default for the response type).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    /// `query`.
    #[default]
    #[serde(rename = "query")]
    Query,
    /// `fragment`.
    #[serde(rename = "fragment")]
    Fragment,
    /// `form_post`.
    #[serde(rename = "form_post")]
    FormPost,
    /// `query.jwt` (JARM §4.3.1).
    #[serde(rename = "query.jwt")]
    QueryJwt,
    /// `fragment.jwt` (JARM §4.3.2).
    #[serde(rename = "fragment.jwt")]
    FragmentJwt,
    /// `form_post.jwt` (JARM §4.3.3).
    #[serde(rename = "form_post.jwt")]
    FormPostJwt,
}

impl ResponseMode {
    /// Every value a client may send, for discovery.
    pub const REQUESTABLE: [&'static str; 7] = [
        "query",
        "fragment",
        "form_post",
        "jwt",
        "query.jwt",
        "fragment.jwt",
        "form_post.jwt",
    ];

    /// The default for `response_type`: `fragment` when tokens are in the response
    /// (Multiple Response Types §5), else `query`.
    pub fn default_for(response_type: ResponseType) -> Self {
        if response_type.has_id_token() {
            Self::Fragment
        } else {
            Self::Query
        }
    }

    /// The mode `value` asks for, `jwt` resolved for `response_type` (JARM §4.3.4).
    pub fn requested(value: &str, response_type: ResponseType) -> Option<Self> {
        Some(match value {
            "query" => Self::Query,
            "fragment" => Self::Fragment,
            "form_post" => Self::FormPost,
            "query.jwt" => Self::QueryJwt,
            "fragment.jwt" => Self::FragmentJwt,
            "form_post.jwt" => Self::FormPostJwt,
            "jwt" if response_type.has_id_token() => Self::FragmentJwt,
            "jwt" => Self::QueryJwt,
            _ => return None,
        })
    }

    /// Whether the response is a JARM JWT.
    pub fn is_jwt(self) -> bool {
        matches!(self, Self::QueryJwt | Self::FragmentJwt | Self::FormPostJwt)
    }

    fn carrier(self) -> Carrier {
        match self {
            Self::Query | Self::QueryJwt => Carrier::Query,
            Self::Fragment | Self::FragmentJwt => Carrier::Fragment,
            Self::FormPost | Self::FormPostJwt => Carrier::FormPost,
        }
    }
}

/// The `response_type` of `params`, checked: absent is `invalid_request`, one we
/// do not serve `unsupported_response_type`.
pub fn response_type(params: &Params) -> Result<ResponseType> {
    let value = params
        .get("response_type")
        .ok_or_else(|| Error::invalid_request("response_type is required"))?;
    ResponseType::parse(value).ok_or_else(|| {
        Error::new(
            ErrorCode::UnsupportedResponseType,
            format!("response_type {value} is not supported; use code or code id_token"),
        )
    })
}

/// The `response_mode` of `params` for `response_type`, checked against the
/// rules in the module doc and the client's profile.
pub fn response_mode(params: &Params, response_type: ResponseType, policy: Policy) -> Result<ResponseMode> {
    let mode = match params.get("response_mode") {
        None => ResponseMode::default_for(response_type),
        Some(value) => ResponseMode::requested(value, response_type).ok_or_else(|| {
            Error::invalid_request(format!(
                "response_mode {value} is not supported; use one of {}",
                ResponseMode::REQUESTABLE.join(", ")
            ))
        })?,
    };
    if response_type.has_id_token() && mode.carrier() == Carrier::Query {
        return Err(Error::invalid_request(format!(
            "response_mode {} cannot carry an ID token: tokens are never put in the query",
            params.get("response_mode").map_or("query", String::as_str)
        )));
    }
    if response_type.has_id_token() && !policy.allows_hybrid_flow() {
        return Err(Error::new(
            ErrorCode::UnsupportedResponseType,
            "this client's profile (FAPI 2.0) serves only response_type code: the hybrid flow is refused",
        ));
    }
    if policy.requires_signed_authorization_response() && !response_type.has_id_token() && !mode.is_jwt() {
        return Err(Error::new(
            ErrorCode::UnsupportedResponseType,
            "this client's profile (FAPI 1 Advanced) needs a signed authorization response: \
             use response_type code id_token, or code with response_mode jwt",
        ));
    }
    Ok(mode)
}

/// The response mode an error goes back in when the request itself may be bad:
/// the one asked for when it is usable, else the response type's default.
pub fn error_mode(params: &Params) -> ResponseMode {
    let response_type = params
        .get("response_type")
        .and_then(|v| ResponseType::parse(v))
        .unwrap_or_default();
    let asked = params
        .get("response_mode")
        .and_then(|v| ResponseMode::requested(v, response_type));
    match asked {
        Some(mode) if !(response_type.has_id_token() && mode.carrier() == Carrier::Query) => mode,
        _ => ResponseMode::default_for(response_type),
    }
}

/// The algorithm of the client's JARM responses: its registered
/// `authorization_signed_response_alg`, else its profile's default.
pub fn authorization_response_alg(client: &ClientRecord) -> SigningAlg {
    client
        .metadata
        .authorization_signed_response_alg
        .unwrap_or_else(|| Policy::of(client.metadata.profile).default_authorization_response_alg())
}

/// Where and how a response goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseTarget {
    /// The registered redirect URI.
    pub redirect_uri: String,
    /// The response mode.
    pub mode: ResponseMode,
    /// The client (the `aud` of a JARM JWT).
    pub client_id: String,
    /// The alg of a JARM JWT.
    pub alg: SigningAlg,
}

impl ResponseTarget {
    /// A response to `client` at `redirect_uri` (already checked) in `mode`.
    pub fn new(client: &ClientRecord, redirect_uri: &str, mode: ResponseMode) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode,
            client_id: client.client_id().as_str().to_owned(),
            alg: authorization_response_alg(client),
        }
    }

    /// A plain `query` response (no JWT).
    pub fn query(redirect_uri: &str) -> Self {
        Self {
            redirect_uri: redirect_uri.to_owned(),
            mode: ResponseMode::Query,
            client_id: String::new(),
            alg: SigningAlg::PS256,
        }
    }
}

impl AuthorizationRequest {
    /// Where and how responses to this (validated) request go.
    pub fn response_target(&self, client: &ClientRecord) -> ResponseTarget {
        ResponseTarget::new(client, &self.redirect_uri, self.response_mode)
    }

    /// Refuses this (validated) request: `error` goes to the client in the
    /// request's response mode, with its `state`.
    pub fn refuse(&self, client: &ClientRecord, error: Error) -> Rejection {
        Rejection::Respond {
            target: Box::new(self.response_target(client)),
            state: self.state.clone(),
            error: Box::new(error),
        }
    }
}

/// Sends `params` and the client's `state` to the client as `target` says.
pub fn deliver(
    state: &AppState,
    target: &ResponseTarget,
    params: &[(&str, &str)],
    client_state: Option<&str>,
) -> Response {
    let mut pairs: Vec<(String, String)> = params.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    if let Some(value) = client_state {
        pairs.push(("state".into(), value.to_owned()));
    }
    if target.mode.is_jwt() {
        match response_jwt(state, target, &pairs) {
            Ok(jwt) => pairs = vec![("response".into(), jwt)],
            Err(error) => return error.into_response(),
        }
    } else {
        pairs.push(("iss".into(), state.settings.issuer.clone()));
    }
    let Ok(mut url) = Url::parse(&target.redirect_uri) else {
        return pages::error(StatusCode::BAD_REQUEST, "The application's redirect_uri is not a URL.");
    };
    match target.mode.carrier() {
        Carrier::Query => {
            url.query_pairs_mut().extend_pairs(&pairs);
        }
        Carrier::Fragment => {
            let fragment = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            url.set_fragment(Some(&fragment));
        }
        Carrier::FormPost => return form_post(&url, &pairs),
    }
    match HeaderValue::from_str(url.as_str()) {
        Ok(location) => (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, location),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
            ],
        )
            .into_response(),
        Err(_) => pages::error(
            StatusCode::BAD_REQUEST,
            "The application's redirect_uri cannot be used.",
        ),
    }
}

/// An error response (`error`, `error_description`, `state`) as `target` says.
pub fn error(state: &AppState, target: &ResponseTarget, client_state: Option<&str>, error: &Error) -> Response {
    let code = error.code();
    let description = match error {
        Error::OAuth { description, .. } | Error::Detailed { description, .. } => description.to_string(),
        _ => "the server could not complete the request".to_owned(),
    };
    deliver(
        state,
        target,
        &[("error", code.as_str()), ("error_description", &description)],
        client_state,
    )
}

/// The JARM JWT (§4.1): `iss`, `aud`, `exp` and the response parameters.
fn response_jwt(state: &AppState, target: &ResponseTarget, pairs: &[(String, String)]) -> Result<String> {
    let key = state
        .keys
        .signer(target.alg)
        .ok_or_else(|| Error::internal(format!("no {} signing key", target.alg)))?;
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(state.settings.issuer));
    claims.insert("aud".into(), json!(target.client_id));
    claims.insert("exp".into(), json!(state.now() + RESPONSE_JWT_LIFETIME));
    for (name, value) in pairs {
        claims.insert(name.clone(), json!(value));
    }
    key.sign(Some("JWT"), &claims)
        .map_err(|e| Error::internal(e.to_string()))
}

/// The script that submits the form; allowed by its hash in the page's CSP.
const SUBMIT_SCRIPT: &str = "document.forms[0].submit();";

/// The Form Post Response Mode page (§5): a form of hidden fields that submits
/// itself to the redirect URI, with a visible button under `<noscript>`.
fn form_post(action: &Url, pairs: &[(String, String)]) -> Response {
    let fields: String = pairs
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>Returning to the application</title></head><body>\
         <form method=\"post\" action=\"{action}\">{fields}\
         <noscript><p>JavaScript is off. Press the button to return to the application.</p>\
         <button type=\"submit\">Continue</button></noscript></form>\
         <script>{SUBMIT_SCRIPT}</script></body></html>",
        action = escape(action.as_str()),
    );
    let script_hash = STANDARD.encode(Sha256::digest(SUBMIT_SCRIPT.as_bytes()));
    // A custom-scheme redirect URI (native apps) has no origin: allow its scheme.
    let origin = match action.origin() {
        origin @ url::Origin::Tuple(..) => origin.ascii_serialization(),
        url::Origin::Opaque(_) => format!("{}:", action.scheme()),
    };
    let csp =
        format!("default-src 'none'; script-src 'sha256-{script_hash}'; form-action {origin}; frame-ancestors 'none'");
    let mut response = (StatusCode::OK, Html(html)).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn response_types_parse_in_any_order() {
        assert_eq!(ResponseType::parse("code"), Some(ResponseType::Code));
        assert_eq!(ResponseType::parse("id_token code"), Some(ResponseType::CodeIdToken));
        assert_eq!(ResponseType::parse("code  id_token"), Some(ResponseType::CodeIdToken));
        for bad in ["token", "id_token", "code token", "code code", "none", ""] {
            assert_eq!(ResponseType::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn jwt_resolves_per_response_type() {
        assert_eq!(
            ResponseMode::requested("jwt", ResponseType::Code),
            Some(ResponseMode::QueryJwt)
        );
        assert_eq!(
            ResponseMode::requested("jwt", ResponseType::CodeIdToken),
            Some(ResponseMode::FragmentJwt)
        );
        assert_eq!(
            ResponseMode::default_for(ResponseType::CodeIdToken),
            ResponseMode::Fragment
        );
        assert_eq!(ResponseMode::requested("shout", ResponseType::Code), None);
    }

    #[test]
    fn modes_are_checked_against_the_type_and_profile() {
        use outband_protocol::Profile;
        let params = |pairs: &[(&str, &str)]| -> Params {
            pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
        };
        let oidc = Policy::of(Profile::Oidc);
        let fapi1 = Policy::of(Profile::Fapi1Advanced);
        let hybrid = ResponseType::CodeIdToken;
        assert!(response_mode(&params(&[("response_mode", "query")]), hybrid, oidc).is_err());
        assert!(response_mode(&params(&[("response_mode", "query.jwt")]), hybrid, oidc).is_err());
        assert_eq!(
            response_mode(&params(&[]), hybrid, oidc).unwrap(),
            ResponseMode::Fragment
        );
        let plain = response_mode(&params(&[]), ResponseType::Code, fapi1).unwrap_err();
        assert_eq!(plain.code(), ErrorCode::UnsupportedResponseType);
        assert_eq!(
            response_mode(&params(&[("response_mode", "jwt")]), ResponseType::Code, fapi1).unwrap(),
            ResponseMode::QueryJwt
        );
        assert_eq!(
            error_mode(&params(&[
                ("response_type", "code id_token"),
                ("response_mode", "query")
            ])),
            ResponseMode::Fragment
        );
    }
}
