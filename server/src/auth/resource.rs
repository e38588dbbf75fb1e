//! Protected-resource access ([RFC 6750](https://www.rfc-editor.org/rfc/rfc6750),
//! [RFC 9449 §7](https://www.rfc-editor.org/rfc/rfc9449#section-7)): how a request
//! presents an access token, and the check that a DPoP-bound token comes with a
//! proof of its key. The device API ([`crate::device::auth::DeviceAuth`]) and the
//! resource API ([`ResourceAuth`]) both go through [`presented_token`] and
//! [`verify_binding`], so there is one implementation of the rules:
//!
//! - `Authorization: DPoP <token>` with a `DPoP` proof (`htm`, `htu` and `ath` of
//!   this request, a server nonce when required) is how a DPoP-bound token is
//!   presented, and the only way one is accepted.
//! - `Authorization: Bearer <token>` is accepted for unbound tokens only; a
//!   DPoP-bound token presented as Bearer is `invalid_token`, so a stolen token is
//!   worthless without the key ([RFC 9449 §7.2](https://www.rfc-editor.org/rfc/rfc9449#section-7.2)).
//! - `access_token` in an `application/x-www-form-urlencoded` body
//!   ([RFC 6750 §2.2](https://www.rfc-editor.org/rfc/rfc6750#section-2.2)) is
//!   read by [`ResourceAuthWithForm`] for `POST` only (UserInfo uses it), and has
//!   Bearer semantics: a DPoP-bound token there is refused as it is as `Bearer`.
//!   A token both in the header and in the body is `invalid_request` (§2: one
//!   method only). The query-string method (§2.3) is not supported.
//! - A certificate-bound token (`cnf.x5t#S256`,
//!   [RFC 8705 §3](https://www.rfc-editor.org/rfc/rfc8705#section-3)) is accepted
//!   only from a request made with that client certificate (mutual TLS).
//! - Failures answer 401 with a `WWW-Authenticate` challenge in the scheme the
//!   token needs (`DPoP` ones carry `algs`); a missing scope is 403
//!   `insufficient_scope` with `scope=` ([RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1)).

use std::borrow::Cow;

use axum::extract::{FromRequest, FromRequestParts, OriginalUri, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, Method, StatusCode};
use outband_protocol::{ClientId, ErrorCode, Subject};

use crate::auth::dpop::{self, algs, DpopError, DpopProof, NoncePolicy};
use crate::auth::{mtls, PeerCertificate};
use crate::error::Error;
use crate::extract::{has_form_body, FormParams};
use crate::profile::Policy;
use crate::state::AppState;
use crate::store::{TokenKind, TokenRecord};
use crate::tokens::active_token;

/// The realm of our `Bearer` challenges.
pub const REALM: &str = "outband";

/// How an access token is presented in the `Authorization` header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenScheme {
    /// `Bearer` ([RFC 6750 §2.1](https://www.rfc-editor.org/rfc/rfc6750#section-2.1)).
    Bearer,
    /// `DPoP` ([RFC 9449 §7.1](https://www.rfc-editor.org/rfc/rfc9449#section-7.1)).
    Dpop,
}

/// The access token of a request and its scheme.
#[derive(Clone, Copy)]
pub struct PresentedToken<'a> {
    /// How it was presented.
    pub scheme: TokenScheme,
    /// The token value.
    ///
    /// # Security Warning
    /// Never log or display it.
    pub token: &'a str,
}

impl std::fmt::Debug for PresentedToken<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresentedToken")
            .field("scheme", &self.scheme)
            .field("token", &"[redacted]")
            .finish()
    }
}

/// An error with a `WWW-Authenticate` challenge of `scheme`
/// (`<scheme> error="..", error_description=".."[, scope=".."][, algs=".."]`):
/// 403 for `insufficient_scope`, 400 for `invalid_request`, 401 otherwise.
pub fn challenge_error(
    scheme: TokenScheme,
    code: ErrorCode,
    description: Cow<'static, str>,
    scope: Option<&str>,
) -> Error {
    let mut challenge = match scheme {
        TokenScheme::Bearer => format!("Bearer realm=\"{REALM}\", error=\"{}\"", code.as_str()),
        TokenScheme::Dpop => format!("DPoP error=\"{}\"", code.as_str()),
    };
    challenge.push_str(&format!(", error_description=\"{}\"", quotable(&description)));
    if let Some(scope) = scope {
        challenge.push_str(&format!(", scope=\"{}\"", quotable(scope)));
    }
    if scheme == TokenScheme::Dpop {
        challenge.push_str(&format!(", algs=\"{}\"", algs()));
    }
    let status = match code {
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
        _ => StatusCode::UNAUTHORIZED,
    };
    Error::OAuth {
        code,
        description,
        status: Some(status),
        challenge: Some(challenge),
    }
}

/// Text safe inside a quoted header parameter (printable ASCII, no `"` or `\`):
/// an unencodable challenge would otherwise be dropped from the response.
fn quotable(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '"' | '\\' => '\'',
            ' '..='~' => c,
            _ => '?',
        })
        .collect()
}

/// 401 for a request without usable credentials: the challenge names the
/// schemes we accept and no error ([RFC 6750 §3.1](https://www.rfc-editor.org/rfc/rfc6750#section-3.1)).
fn no_credentials(bearer_allowed: bool, description: &'static str) -> Error {
    let challenge = if bearer_allowed {
        format!("Bearer realm=\"{REALM}\", DPoP algs=\"{}\"", algs())
    } else {
        format!("DPoP algs=\"{}\"", algs())
    };
    Error::OAuth {
        code: ErrorCode::InvalidToken,
        description: Cow::Borrowed(description),
        status: Some(StatusCode::UNAUTHORIZED),
        challenge: Some(challenge),
    }
}

/// The token of the one `Authorization` header: `DPoP <token>`, or (when
/// `bearer_allowed`) `Bearer <token>`. The scheme is case-insensitive.
pub fn presented_token(headers: &HeaderMap, bearer_allowed: bool) -> Result<PresentedToken<'_>, Error> {
    let usage = if bearer_allowed {
        "send Authorization: DPoP <token> with a DPoP proof, or Bearer <token> for a token that is not DPoP-bound"
    } else {
        "send Authorization: DPoP <token> with a DPoP proof"
    };
    let mut values = headers.get_all(header::AUTHORIZATION).iter();
    let value = match (values.next(), values.next()) {
        (None, _) => return Err(no_credentials(bearer_allowed, usage)),
        (Some(value), None) => value,
        (Some(_), Some(_)) => {
            return Err(challenge_error(
                TokenScheme::Dpop,
                ErrorCode::InvalidRequest,
                "send one Authorization header".into(),
                None,
            ))
        }
    };
    let value = value
        .to_str()
        .map_err(|_| no_credentials(bearer_allowed, "the Authorization header is not text"))?;
    let (scheme, token) = value.split_once(' ').unwrap_or((value, ""));
    let scheme = if scheme.eq_ignore_ascii_case("DPoP") {
        TokenScheme::Dpop
    } else if scheme.eq_ignore_ascii_case("Bearer") {
        if !bearer_allowed {
            return Err(challenge_error(
                TokenScheme::Dpop,
                ErrorCode::InvalidToken,
                "these access tokens are DPoP-bound: use the DPoP scheme with a DPoP proof".into(),
                None,
            ));
        }
        TokenScheme::Bearer
    } else {
        return Err(no_credentials(bearer_allowed, usage));
    };
    let token = token.trim();
    if token.is_empty() || token.contains(char::is_whitespace) {
        return Err(challenge_error(
            scheme,
            ErrorCode::InvalidToken,
            "the Authorization header has no token, or more than one".into(),
            None,
        ));
    }
    Ok(PresentedToken { scheme, token })
}

/// The path the client called: the original one, also inside a nested router.
fn request_path(parts: &Parts) -> &str {
    parts
        .extensions
        .get::<OriginalUri>()
        .map_or_else(|| parts.uri.path(), |uri| uri.0.path())
}

/// Checks that `presented` is presented as its binding asks. `bound_jkt` is the
/// thumbprint the token is bound to (`cnf.jkt`), `None` for an unbound token.
/// Returns the verified proof for a DPoP-bound token, `None` for a Bearer one.
pub async fn verify_binding(
    state: &AppState,
    parts: &Parts,
    presented: &PresentedToken<'_>,
    bound_jkt: Option<&str>,
    nonce: NoncePolicy,
) -> Result<Option<DpopProof>, Error> {
    match (bound_jkt, presented.scheme) {
        (None, TokenScheme::Bearer) => Ok(None),
        (Some(jkt), TokenScheme::Dpop) => verify_possession(state, parts, presented.token, jkt, nonce)
            .await
            .map(Some),
        (Some(_), TokenScheme::Bearer) => Err(challenge_error(
            TokenScheme::Dpop,
            ErrorCode::InvalidToken,
            "this access token is DPoP-bound: present it as Authorization: DPoP <token> with a DPoP proof".into(),
            None,
        )),
        (None, TokenScheme::Dpop) => Err(challenge_error(
            TokenScheme::Bearer,
            ErrorCode::InvalidToken,
            "this access token is not DPoP-bound: present it as Authorization: Bearer <token>".into(),
            None,
        )),
    }
}

/// Verifies the request's proof for `token`, bound to `jkt`: the proof must be
/// valid for this request (method, URL, `ath`, nonce) and signed by that key.
pub async fn verify_possession(
    state: &AppState,
    parts: &Parts,
    token: &str,
    jkt: &str,
    nonce: NoncePolicy,
) -> Result<DpopProof, Error> {
    let proof = dpop::dpop_header(&parts.headers)
        .map_err(|_| DpopError::Invalid("send exactly one DPoP header".into()).into_resource_error())?
        .ok_or_else(|| DpopError::Invalid("a DPoP proof is required".into()).into_resource_error())?;
    let url = state.settings.endpoint(request_path(parts));
    let proof = dpop::verify_proof_with(state, proof, &parts.method, &url, Some(token), nonce)
        .await
        .map_err(DpopError::into_resource_error)?;
    if proof.jkt != jkt {
        return Err(
            DpopError::Invalid("the proof key is not the key the token is bound to".into()).into_resource_error(),
        );
    }
    Ok(proof)
}

/// A caller of the resource API: an active access token issued by this server,
/// presented as its binding asks.
#[derive(Clone, Debug)]
pub struct ResourceAuth {
    /// The token's record (active: known, not revoked, not expired).
    pub token: TokenRecord,
    /// How it was presented (and so the scheme of our challenges).
    pub scheme: TokenScheme,
    /// The verified proof, for a DPoP-bound token.
    pub proof: Option<DpopProof>,
}

impl ResourceAuth {
    /// The client the token was issued to.
    pub fn client_id(&self) -> &ClientId {
        &self.token.client_id
    }

    /// The user, for a user's token; `None` for a client-credentials token.
    pub fn subject(&self) -> Option<&Subject> {
        self.token.subject.as_ref()
    }

    /// 403 `insufficient_scope` naming `scope`, unless the token has it.
    pub fn require_scope(&self, scope: &'static str) -> Result<(), Error> {
        if self.token.scope.contains(scope) {
            return Ok(());
        }
        Err(challenge_error(
            self.scheme,
            ErrorCode::InsufficientScope,
            Cow::Owned(format!("this call needs the {scope} scope")),
            Some(scope),
        ))
    }
}

/// The FAPI interaction id header.
const FAPI_INTERACTION_ID: &str = "x-fapi-interaction-id";
/// The resource APIs whose routers echo or make `x-fapi-interaction-id`
/// (payments and accounts, consents); UserInfo and Grant Management are not among them.
const RESOURCE_API_PREFIXES: [&str; 2] = ["/api/", "/open-banking/"];

/// `400 invalid_request` when the client's profile requires an
/// `x-fapi-interaction-id` ([`Policy::requires_fapi_interaction_id`]) and the
/// request has none, several, or one that is not a UUID. The response still
/// carries a freshly made one (the resource routers' middleware adds it), as
/// Open Finance Brasil asks.
fn require_interaction_id(headers: &HeaderMap, policy: Policy) -> Result<(), Error> {
    if !policy.requires_fapi_interaction_id() {
        return Ok(());
    }
    let mut values = headers.get_all(FAPI_INTERACTION_ID).iter();
    let valid = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().is_ok_and(|v| uuid::Uuid::parse_str(v).is_ok()),
        _ => false,
    };
    if valid {
        return Ok(());
    }
    Err(Error::invalid_request(
        "send one x-fapi-interaction-id header with a UUID (RFC 4122): this client's profile requires it",
    ))
}

fn invalid_token(scheme: TokenScheme, description: &'static str) -> Error {
    challenge_error(scheme, ErrorCode::InvalidToken, Cow::Borrowed(description), None)
}

impl FromRequestParts<AppState> for ResourceAuth {
    type Rejection = Error;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Error> {
        let presented = presented_token(&parts.headers, true)?;
        Self::authenticate(state, parts, presented).await
    }
}

impl ResourceAuth {
    /// The checks of a presented token, wherever it was presented: active, an
    /// access token, its certificate binding, the client's `x-fapi-interaction-id`
    /// rule on the resource APIs, and its DPoP binding.
    async fn authenticate(state: &AppState, parts: &Parts, presented: PresentedToken<'_>) -> Result<Self, Error> {
        let token = active_token(state, presented.token)
            .await?
            .filter(|t| t.kind == TokenKind::Access)
            .ok_or_else(|| invalid_token(presented.scheme, "unknown, expired or revoked access token"))?;
        if let Some(x5t) = token.cnf_x5t.as_deref() {
            let presented_x5t = parts.extensions.get::<PeerCertificate>().map(mtls::thumbprint);
            if presented_x5t.as_deref() != Some(x5t) {
                return Err(invalid_token(
                    presented.scheme,
                    "this access token is bound to a client certificate: present it over mutual TLS with that certificate",
                ));
            }
        }
        let client = state.client(&token.client_id).await?;
        if let Some(client) = &client {
            let path = request_path(parts);
            if RESOURCE_API_PREFIXES.iter().any(|p| path.starts_with(p)) {
                require_interaction_id(&parts.headers, Policy::of(client.metadata.profile))?;
            }
        }
        let nonce = NoncePolicy::for_client(state.settings.resource_dpop_nonce, client.as_ref());
        let proof = verify_binding(state, parts, &presented, token.cnf_jkt.as_deref(), nonce).await?;
        Ok(Self {
            scheme: presented.scheme,
            token,
            proof,
        })
    }
}

/// The form parameter of a token in the body ([RFC 6750 §2.2](https://www.rfc-editor.org/rfc/rfc6750#section-2.2)).
const BODY_TOKEN_PARAM: &str = "access_token";

/// A [`ResourceAuth`] whose `POST` request may instead carry the token as the
/// `access_token` parameter of an `application/x-www-form-urlencoded` body
/// ([RFC 6750 §2.2](https://www.rfc-editor.org/rfc/rfc6750#section-2.2)); other
/// requests are read as [`ResourceAuth`] reads them. It consumes the body (read
/// within the server's body limit, 413 beyond it), so it is the handler's last
/// argument and the handler gets no body of its own.
///
/// A body token has Bearer semantics (a DPoP-bound one is refused as it is when
/// presented as `Bearer`); with any `Authorization` header beside it the request
/// is `400 invalid_request` (§2: a client uses one method only).
#[derive(Clone, Debug)]
pub struct ResourceAuthWithForm(pub ResourceAuth);

impl FromRequest<AppState> for ResourceAuthWithForm {
    type Rejection = Error;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, Error> {
        let (mut parts, body) = request.into_parts();
        if parts.method != Method::POST || !has_form_body(&parts.headers) {
            return ResourceAuth::from_request_parts(&mut parts, state).await.map(Self);
        }
        let form = match FormParams::from_request(Request::from_parts(parts.clone(), body), state).await {
            Ok(form) => form,
            // A body that is no proper form cannot carry the token; one in the header still counts.
            Err(_) if parts.headers.contains_key(header::AUTHORIZATION) => {
                return ResourceAuth::from_request_parts(&mut parts, state).await.map(Self);
            }
            Err(err) => return Err(err),
        };
        let Some(token) = form.get(BODY_TOKEN_PARAM) else {
            return ResourceAuth::from_request_parts(&mut parts, state).await.map(Self);
        };
        if parts.headers.contains_key(header::AUTHORIZATION) {
            return Err(challenge_error(
                TokenScheme::Bearer,
                ErrorCode::InvalidRequest,
                "send the access token either in the Authorization header or in the body, not both".into(),
                None,
            ));
        }
        let presented = PresentedToken {
            scheme: TokenScheme::Bearer,
            token,
        };
        ResourceAuth::authenticate(state, &parts, presented).await.map(Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn with_auth(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::AUTHORIZATION, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn schemes_and_tokens() {
        let dpop_headers = with_auth("DPoP abc");
        let dpop = presented_token(&dpop_headers, false).unwrap();
        assert_eq!((dpop.scheme, dpop.token), (TokenScheme::Dpop, "abc"));
        assert_eq!(presented_token(&with_auth("dpop  abc "), false).unwrap().token, "abc");
        let bearer_headers = with_auth("bearer xyz");
        let bearer = presented_token(&bearer_headers, true).unwrap();
        assert_eq!((bearer.scheme, bearer.token), (TokenScheme::Bearer, "xyz"));
        assert!(presented_token(&with_auth("Bearer abc"), false).is_err());
        assert!(presented_token(&with_auth("DPoP "), true).is_err());
        assert!(presented_token(&with_auth("DPoP a b"), true).is_err());
        assert!(presented_token(&with_auth("Basic abc"), true).is_err());
        assert!(presented_token(&HeaderMap::new(), true).is_err());
        assert!(!format!("{dpop:?}").contains("abc"), "the token never prints");
    }

    #[test]
    fn challenges_name_the_scheme_scope_and_algs() {
        assert_eq!(quotable("bad \"alg\" \\ é"), "bad 'alg' ' ?");
        let Error::OAuth { status, challenge, .. } = challenge_error(
            TokenScheme::Bearer,
            ErrorCode::InsufficientScope,
            "needs payments".into(),
            Some("payments"),
        ) else {
            panic!("an OAuth error");
        };
        assert_eq!(status, Some(StatusCode::FORBIDDEN));
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"outband\", error=\"insufficient_scope\", error_description=\"needs payments\", scope=\"payments\"")
        );
        let Error::OAuth { challenge, .. } = no_credentials(true, "x") else {
            panic!("an OAuth error");
        };
        assert_eq!(
            challenge.as_deref(),
            Some("Bearer realm=\"outband\", DPoP algs=\"ES256 EdDSA PS256\"")
        );
    }
}
