//! Dynamic client registration ([RFC 7591 §3](https://www.rfc-editor.org/rfc/rfc7591#section-3))
//! and client configuration ([RFC 7592 §2](https://www.rfc-editor.org/rfc/rfc7592#section-2)):
//! `POST /register`, `GET`/`PUT`/`DELETE /register/{client_id}`. The rules live in
//! [`crate::registration`].

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{ClientId, ErrorCode};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::registration::{self, RegistrationResponse};
use crate::state::AppState;

/// The registration routes.
pub fn router() -> Router<AppState> {
    Router::new().route("/register", post(register_post)).route(
        "/register/{client_id}",
        axum::routing::get(register_get)
            .put(register_put)
            .delete(register_delete),
    )
}

/// A JSON object body (`application/json`); anything else is `invalid_client_metadata`.
pub struct MetadataBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for MetadataBody {
    type Rejection = Error;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
        if !is_json {
            return Err(Error::invalid_request(
                "the body must be application/json client metadata",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let error = Error::invalid_request(format!("the body could not be read: {}", rejection.body_text()));
            error.with_status(rejection.status())
        })?;
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Self(map)),
            _ => Err(Error::new(
                ErrorCode::InvalidClientMetadata,
                "the body must be a JSON object of client metadata",
            )),
        }
    }
}

/// The `{client_id}` of the path; a malformed one is `invalid_request`, never axum's plain text.
type ClientIdPath = std::result::Result<Path<String>, PathRejection>;

fn client_id(path: ClientIdPath) -> Result<ClientId> {
    path.map(|Path(id)| ClientId::new(id))
        .map_err(|_| Error::invalid_request("the client_id in the path is not valid"))
}

fn reply(status: StatusCode, registration: RegistrationResponse) -> Response {
    (
        status,
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(registration.body),
    )
        .into_response()
}

async fn register_post(State(state): State<AppState>, headers: HeaderMap, body: MetadataBody) -> Result<Response> {
    let registered = registration::register(&state, &headers, body.0).await?;
    Ok(reply(StatusCode::CREATED, registered))
}

async fn register_get(State(state): State<AppState>, path: ClientIdPath, headers: HeaderMap) -> Result<Response> {
    let registered = registration::read(&state, &headers, &client_id(path)?).await?;
    Ok(reply(StatusCode::OK, registered))
}

async fn register_put(
    State(state): State<AppState>,
    path: ClientIdPath,
    headers: HeaderMap,
    body: MetadataBody,
) -> Result<Response> {
    let updated = registration::update(&state, &headers, &client_id(path)?, body.0).await?;
    Ok(reply(StatusCode::OK, updated))
}

async fn register_delete(State(state): State<AppState>, path: ClientIdPath, headers: HeaderMap) -> Result<StatusCode> {
    registration::delete(&state, &headers, &client_id(path)?).await?;
    Ok(StatusCode::NO_CONTENT)
}
