//! The one error type of the HTTP layer and its one `IntoResponse`
//! (CONVENTIONS 4): every protocol failure becomes an OAuth error body
//! (`{error, error_description}`) with the status its spec names; internal
//! failures become a bare `server_error` and their cause travels in the
//! response extensions to the logging middleware, never to the client.

use std::borrow::Cow;

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use outband_protocol::{ErrorCode, ErrorResponse};

use crate::store::StoreError;

/// An error answered to an HTTP client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A protocol error with its code, description and, where the spec asks, a
    /// specific status or `WWW-Authenticate` challenge.
    #[error("{code}: {description}")]
    OAuth {
        /// The error code.
        code: ErrorCode,
        /// Text for the client developer; never a secret.
        description: Cow<'static, str>,
        /// Overrides the status derived from the code.
        status: Option<StatusCode>,
        /// A `WWW-Authenticate` challenge to send.
        challenge: Option<String>,
    },
    /// A protocol error whose body names more than the code and description
    /// (the resource API's `payment_id` of the payment a conflict refers to).
    #[error("{code}: {description}")]
    Detailed {
        /// The error code.
        code: ErrorCode,
        /// Text for the client developer; never a secret.
        description: Cow<'static, str>,
        /// The status.
        status: StatusCode,
        /// Members added to the body beside `error` and `error_description`.
        fields: serde_json::Map<String, serde_json::Value>,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Anything else that is our fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The cause of an internal error, put in the response extensions for the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

/// A shorthand for handler results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with the code's usual status.
    pub fn new(code: ErrorCode, description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code,
            description: description.into(),
            status: None,
            challenge: None,
        }
    }

    /// `invalid_request` (400).
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidRequest, description)
    }

    /// `invalid_client` (401 with a `WWW-Authenticate` challenge).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::OAuth {
            code: ErrorCode::InvalidClient,
            description: description.into(),
            status: Some(StatusCode::UNAUTHORIZED),
            challenge: Some("Basic realm=\"outband\"".into()),
        }
    }

    /// `invalid_grant` (400).
    pub fn invalid_grant(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidGrant, description)
    }

    /// `unauthorized_client` (400).
    pub fn unauthorized_client(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::UnauthorizedClient, description)
    }

    /// `invalid_scope` (400).
    pub fn invalid_scope(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorCode::InvalidScope, description)
    }

    /// `server_error` (500) with a cause that is logged, never shown.
    pub fn internal(cause: impl Into<String>) -> Self {
        Self::Internal(cause.into())
    }

    /// Sets the status.
    pub fn with_status(self, status: StatusCode) -> Self {
        match self {
            Self::OAuth {
                code,
                description,
                challenge,
                ..
            } => Self::OAuth {
                code,
                description,
                status: Some(status),
                challenge,
            },
            other => other,
        }
    }

    /// The error code.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::OAuth { code, .. } | Self::Detailed { code, .. } => code.clone(),
            Self::Store(StoreError::Unavailable(_)) => ErrorCode::TemporarilyUnavailable,
            Self::Store(_) | Self::Internal(_) => ErrorCode::ServerError,
        }
    }
}

fn default_status(code: &ErrorCode) -> StatusCode {
    match code {
        ErrorCode::InvalidClient | ErrorCode::InvalidToken => StatusCode::UNAUTHORIZED,
        ErrorCode::InsufficientScope => StatusCode::FORBIDDEN,
        ErrorCode::ServerError => StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::TemporarilyUnavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::Conflict => StatusCode::CONFLICT,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        let mut fields = serde_json::Map::new();
        let (code, description, status, challenge, cause) = match self {
            Self::OAuth {
                code,
                description,
                status,
                challenge,
            } => {
                let status = status.unwrap_or_else(|| default_status(&code));
                (code, Some(description.into_owned()), status, challenge, None)
            }
            Self::Detailed {
                code,
                description,
                status,
                fields: extra,
            } => {
                fields = extra;
                (code, Some(description.into_owned()), status, None, None)
            }
            Self::Store(StoreError::Unavailable(cause)) => (
                ErrorCode::TemporarilyUnavailable,
                Some("the database is not reachable; try again shortly".to_owned()),
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                Some(cause),
            ),
            Self::Store(err) => (
                ErrorCode::ServerError,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                Some(err.to_string()),
            ),
            Self::Internal(cause) => (
                ErrorCode::ServerError,
                None,
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                Some(cause),
            ),
        };
        let body = ErrorResponse {
            error: code,
            error_description: description,
        };
        let mut response = if fields.is_empty() {
            (status, [(header::CACHE_CONTROL, "no-store")], Json(body)).into_response()
        } else {
            if let Ok(serde_json::Value::Object(base)) = serde_json::to_value(&body) {
                // The standard members win over any of the same name.
                fields.extend(base);
            }
            (status, [(header::CACHE_CONTROL, "no-store")], Json(fields)).into_response()
        };
        if let Some(value) = challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, value);
        }
        if let Some(cause) = cause {
            response.extensions_mut().insert(InternalCause(cause));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    async fn body_of(response: Response) -> serde_json::Value {
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn invalid_client_is_401_with_challenge() {
        let response = Error::invalid_client("unknown client").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers().contains_key(header::WWW_AUTHENTICATE));
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = body_of(response).await;
        assert_eq!(body["error"], "invalid_client");
        assert_eq!(body["error_description"], "unknown client");
    }

    #[tokio::test]
    async fn internal_errors_hide_their_cause() {
        let response = Error::internal("disk on fire at /var/lib/secret").into_response();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(response.extensions().get::<InternalCause>().is_some());
        let body = body_of(response).await;
        assert_eq!(body, serde_json::json!({"error": "server_error"}));
    }

    #[tokio::test]
    async fn detailed_errors_add_their_fields() {
        let response = Error::Detailed {
            code: ErrorCode::Conflict,
            description: "already".into(),
            status: StatusCode::CONFLICT,
            fields: serde_json::Map::from_iter([
                ("payment_id".to_owned(), serde_json::json!("pay_1")),
                ("error".to_owned(), serde_json::json!("spoofed")),
            ]),
        }
        .into_response();
        assert_eq!(response.status(), StatusCode::CONFLICT);
        let body = body_of(response).await;
        assert_eq!(
            body,
            serde_json::json!({"error": "conflict", "error_description": "already", "payment_id": "pay_1"})
        );
    }

    #[tokio::test]
    async fn unavailable_database_is_503() {
        let response = Error::Store(StoreError::Unavailable("refused".into())).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(body_of(response).await["error"], "temporarily_unavailable");
    }
}
