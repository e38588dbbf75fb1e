//! # outband-protocol
//!
//! The wire vocabulary shared by the Outband authorization server, the
//! authenticator and the POS terminal. It does no I/O.
//!
//! Where to start reading:
//! - [`types`](crate::ClientId) and [`secrets`](crate::AccessToken): every protocol value is a
//!   newtype; secrets never print.
//! - [`ErrorCode`] / [`ErrorResponse`]: the OAuth error body, with every code of
//!   the specs we implement.
//! - [`TokenRequest`]: the token endpoint's form, one variant per `grant_type`.
//! - [`ClientMetadata`], [`ProviderMetadata`]: registration and discovery documents.
//! - [`jose`]: signing and verifying JWTs, JWK thumbprints, ID-token hashes.
#![warn(missing_docs)]

pub mod ciba;
mod client;
mod discovery;
mod error;
pub mod jose;
mod macros;
mod secrets;
mod token;
mod types;

pub use ciba::{BackchannelAuthenticationRequest, BackchannelAuthenticationResponse, PingCallback, PushCallback};
pub use client::{AccessTokenFormat, ClientMetadata, DeliveryMode, GrantType, Profile, TokenEndpointAuthMethod};
pub use discovery::ProviderMetadata;
pub use error::{ErrorCode, ErrorResponse};
pub use jose::SigningAlg;
pub use secrets::{
    AccessToken, ActivationCode, AuthReqId, ClientNotificationToken, ClientSecret, Password, RefreshToken,
};
pub use token::{IntrospectionResponse, TokenRequest, TokenResponse, TokenType};
pub use types::{BindingMessage, ClientId, Jti, KeyId, LoginHint, Scope, Subject};
