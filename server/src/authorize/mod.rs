//! The browser flows: the authorization code flow with PKCE
//! ([RFC 6749 §4.1](https://www.rfc-editor.org/rfc/rfc6749#section-4.1),
//! [RFC 7636](https://www.rfc-editor.org/rfc/rfc7636),
//! [OpenID Connect Core §3.1](https://openid.net/specs/openid-connect-core-1_0.html#CodeFlowAuth)),
//! with server-rendered login and consent pages, and pushed authorization
//! requests ([RFC 9126](https://www.rfc-editor.org/rfc/rfc9126)) and signed requests
//! ([RFC 9101](https://www.rfc-editor.org/rfc/rfc9101)).
//!
//! - [`request`]: validating an authorization request (at `/authorize` and `/par`).
//! - [`request_object`]: signed requests (JAR, RFC 9101).
//! - [`response`]: response types and modes (`query`, `fragment`, `form_post`, JARM).
//! - [`hybrid`]: `code id_token`, the ID token in the authorization response.
//! - [`pkce`]: code challenges and verifiers.
//! - [`flow`]: `/authorize` → login → consent → redirect with the code.
//! - [`browser`]: cookies, login sessions, password checks, the failed-login limit.
//! - [`pages`]: the HTML.
//!
//! The HTTP handlers are in `endpoints::{authorize, par}`; the code is redeemed
//! by `grants::authorization_code`.

pub mod browser;
pub mod dpop_binding;
pub mod flow;
pub mod hybrid;
pub mod pages;
pub mod pkce;
pub mod redirect_uri;
pub mod request;
pub mod request_object;
pub mod response;
