//! Our own request extractors (CONVENTIONS 5): malformed input becomes an OAuth
//! `invalid_request`, never axum's plain-text rejection or a 500.

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, StatusCode};
use serde::de::DeserializeOwned;

use crate::error::Error;

/// Largest form body we read (also enforced by `DefaultBodyLimit` in `app()`).
pub const MAX_FORM_BYTES: usize = 64 * 1024;

/// Whether the request says its body is `application/x-www-form-urlencoded`.
pub fn has_form_body(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/x-www-form-urlencoded"))
}

/// An `application/x-www-form-urlencoded` body whose parameters appear at most
/// once each ([RFC 6749 §3.1](https://www.rfc-editor.org/rfc/rfc6749#section-3.1)).
#[derive(Clone, Default)]
pub struct FormParams {
    raw: Bytes,
    params: HashMap<String, String>,
}

impl std::fmt::Debug for FormParams {
    // Parameter values can be secrets (client_secret, tokens): print names only.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.params.keys()).finish()
    }
}

impl FormParams {
    /// Parses a body. Empty values count as absent (RFC 6749 §3.1).
    pub fn parse(raw: Bytes) -> Result<Self, Error> {
        let mut params = HashMap::new();
        for (name, value) in url::form_urlencoded::parse(&raw) {
            if value.is_empty() {
                continue;
            }
            if params.insert(name.to_string(), value.into_owned()).is_some() {
                return Err(Error::invalid_request(format!("parameter {name} is repeated")));
            }
        }
        Ok(Self { raw, params })
    }

    /// A parameter's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }

    /// Whether a parameter is present.
    pub fn contains(&self, name: &str) -> bool {
        self.params.contains_key(name)
    }

    /// Decodes the whole body into a typed request.
    pub fn deserialize<T: DeserializeOwned>(&self) -> Result<T, Error> {
        // Drop empty values first so `a=` reads as absent, as in `parse`.
        let pairs: Vec<(&String, &String)> = self.params.iter().collect();
        let text = serde_urlencoded::to_string(pairs).map_err(|e| Error::invalid_request(e.to_string()))?;
        serde_urlencoded::from_str(&text).map_err(|e| Error::invalid_request(describe_serde_error(&e.to_string())))
    }

    /// The raw body as received.
    pub fn raw(&self) -> &Bytes {
        &self.raw
    }
}

fn describe_serde_error(message: &str) -> String {
    if let Some(field) = message.strip_prefix("missing field ") {
        format!("missing parameter {}", field.trim_matches('`'))
    } else {
        format!("malformed request: {message}")
    }
}

impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self, Error> {
        if !has_form_body(req.headers()) {
            return Err(Error::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            let error = Error::invalid_request(format!("the body could not be read: {}", rejection.body_text()));
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                error.with_status(StatusCode::PAYLOAD_TOO_LARGE)
            } else {
                error
            }
        })?;
        Self::parse(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused() {
        let err = FormParams::parse(Bytes::from_static(b"scope=a&scope=b")).unwrap_err();
        assert!(err.to_string().contains("repeated"));
    }

    #[test]
    fn empty_values_are_absent() {
        let form = FormParams::parse(Bytes::from_static(b"scope=&grant_type=client_credentials")).unwrap();
        assert!(!form.contains("scope"));
        assert_eq!(form.get("grant_type"), Some("client_credentials"));
    }

    #[test]
    fn debug_never_shows_values() {
        let form = FormParams::parse(Bytes::from_static(b"client_secret=hunter2")).unwrap();
        assert!(!format!("{form:?}").contains("hunter2"));
    }
}
