//! The token endpoint ([RFC 6749 §3.2](https://www.rfc-editor.org/rfc/rfc6749#section-3.2)).
//! It authenticates the client, checks the request's DPoP proof
//! ([RFC 9449 §5](https://www.rfc-editor.org/rfc/rfc9449#section-5)) and, for
//! clients with certificate-bound tokens, its client certificate
//! ([RFC 8705 §3](https://www.rfc-editor.org/rfc/rfc8705#section-3)), matches on
//! `grant_type` and hands each arm to its grant in `grants/`. Every answer
//! carries a fresh `DPoP-Nonce` ([`dpop::add_nonce`]).

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::middleware;
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::{ErrorCode, TokenRequest};

use crate::auth::dpop::{self, token_request_proof};
use crate::auth::{mtls, ClientForm};
use crate::error::{Error, Result};
use crate::grants;
use crate::state::AppState;
use crate::tokens::Possession;

/// `POST /token`. Takes the state for the middleware that adds `DPoP-Nonce`.
pub fn router(state: &AppState) -> Router<AppState> {
    Router::new()
        .route("/token", post(token_post))
        .layer(middleware::from_fn_with_state(state.clone(), dpop::add_nonce))
}

async fn token_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    request: ClientForm,
) -> Result<impl IntoResponse> {
    let ClientForm {
        auth,
        form,
        certificate,
    } = request;
    let token_request = form.deserialize::<TokenRequest>()?;
    // The proof is checked (and its jti used up) before any grant runs, so a
    // bad proof never redeems a CIBA request or rotates a refresh token.
    let proof = token_request_proof(&state, &headers, &auth.client).await?;
    let thumbprint = certificate.as_ref().map(mtls::thumbprint);
    let bind_certificate = mtls::binds_tokens(&auth.client);
    if bind_certificate && thumbprint.is_none() {
        return Err(Error::invalid_request(
            "this client's access tokens are certificate-bound (RFC 8705): send the request over mutual TLS with its client certificate",
        ));
    }
    // RFC 9396 §6.2: user grants may narrow their authorization_details here.
    let narrow_to = form.get("authorization_details");
    let possession = Possession {
        proof: proof.as_ref(),
        certificate: thumbprint.as_deref(),
        bind_certificate,
    };
    let response = match token_request {
        TokenRequest::ClientCredentials { scope, .. } => {
            grants::client_credentials::exchange(&state, &auth, scope, possession).await?
        }
        TokenRequest::Ciba { auth_req_id } => {
            grants::ciba::exchange(&state, &auth, &auth_req_id, narrow_to, possession).await?
        }
        TokenRequest::RefreshToken { refresh_token, scope } => {
            grants::refresh_token::exchange(&state, &auth, &refresh_token, scope, narrow_to, possession).await?
        }
        TokenRequest::AuthorizationCode {
            code,
            redirect_uri,
            code_verifier,
        } => {
            let request = grants::authorization_code::CodeRequest {
                code: &code,
                redirect_uri: redirect_uri.as_deref(),
                code_verifier: code_verifier.as_deref(),
                authorization_details: narrow_to,
            };
            grants::authorization_code::exchange(&state, &auth, request, possession).await?
        }
        TokenRequest::Unsupported => {
            let grant = form.get("grant_type").unwrap_or_default().to_owned();
            return Err(Error::new(
                ErrorCode::UnsupportedGrantType,
                format!("grant_type {grant} is not supported"),
            ));
        }
    };
    Ok((
        [(header::CACHE_CONTROL, "no-store"), (header::PRAGMA, "no-cache")],
        Json(response),
    ))
}
