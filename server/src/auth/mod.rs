//! Proving who is calling: client authentication at the token-family endpoints,
//! DPoP proofs of possession ([`dpop`]), mutual TLS ([`mtls`]), and access tokens presented to
//! protected resources ([`resource`]).

pub mod client_auth;
pub mod client_keys;
pub mod dpop;
pub mod mtls;
pub mod operator_token;
pub mod resource;

pub use client_auth::{authenticate_client, AuthenticatedClient, PeerCertificate};

use axum::extract::{FromRequest, Request};

use crate::error::Error;
use crate::extract::FormParams;
use crate::state::AppState;

/// A form request from an authenticated client: the extractor every
/// client-authenticated endpoint (token, introspection, revocation, …) takes.
#[derive(Debug)]
pub struct ClientForm {
    /// Who called.
    pub auth: AuthenticatedClient,
    /// The parameters.
    pub form: FormParams,
    /// The client certificate of the request (mutual TLS), if any.
    pub certificate: Option<PeerCertificate>,
}

impl FromRequest<AppState> for ClientForm {
    type Rejection = Error;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Error> {
        let headers = req.headers().clone();
        let certificate = req.extensions().get::<PeerCertificate>().cloned();
        let endpoint = state.settings.endpoint(req.uri().path());
        let form = FormParams::from_request(req, state).await?;
        let auth = authenticate_client(state, &headers, &form, certificate.as_ref(), &endpoint).await?;
        Ok(Self {
            auth,
            form,
            certificate,
        })
    }
}
