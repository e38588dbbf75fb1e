//! One file per grant type (CONVENTIONS 3): the token endpoint matches on the
//! request and hands each arm to its grant.

pub mod authorization_code;
pub mod ciba;
pub mod client_credentials;
pub mod narrowing;
pub mod refresh_grace;
pub mod refresh_token;
