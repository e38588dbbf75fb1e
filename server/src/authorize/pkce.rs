//! Proof Key for Code Exchange ([RFC 7636](https://www.rfc-editor.org/rfc/rfc7636)).

use outband_protocol::jose::sha256_b64url;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::error::Error;
use crate::profile::Policy;

/// A `code_challenge_method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum PkceMethod {
    /// `S256`: the challenge is BASE64URL(SHA256(verifier)).
    S256,
    /// `plain`: the challenge is the verifier (plain OIDC clients only).
    #[serde(rename = "plain")]
    Plain,
}

impl PkceMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }

    /// Parses the wire name.
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }
}

/// Methods the server supports, for discovery.
pub const METHODS: [PkceMethod; 2] = [PkceMethod::S256, PkceMethod::Plain];

/// 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1 and §4.2).
fn well_formed(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Checks a request's challenge and method (absent method: `plain`, RFC 7636 §4.3)
/// against the client's profile.
pub fn check_challenge(challenge: &str, method: Option<&str>, policy: Policy) -> Result<(String, PkceMethod), Error> {
    let method = match method {
        None => PkceMethod::Plain,
        Some(name) => PkceMethod::parse(name).ok_or_else(|| {
            Error::invalid_request(format!("code_challenge_method {name} is not supported; use S256"))
        })?,
    };
    if method == PkceMethod::Plain && !policy.allows_plain_pkce() {
        return Err(Error::invalid_request(
            "this client's profile requires code_challenge_method S256",
        ));
    }
    if !well_formed(challenge) {
        return Err(Error::invalid_request(
            "code_challenge must be 43 to 128 characters of A-Z a-z 0-9 - . _ ~",
        ));
    }
    Ok((challenge.to_owned(), method))
}

/// Whether `verifier` answers `challenge` (RFC 7636 §4.6), in constant time.
pub fn verify(verifier: &str, challenge: &str, method: PkceMethod) -> bool {
    if !well_formed(verifier) {
        return false;
    }
    let computed = match method {
        PkceMethod::S256 => sha256_b64url(verifier.as_bytes()),
        PkceMethod::Plain => verifier.to_owned(),
    };
    computed.as_bytes().ct_eq(challenge.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use outband_protocol::Profile;

    #[test]
    fn rfc7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(verify(verifier, challenge, PkceMethod::S256));
        assert!(!verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx",
            challenge,
            PkceMethod::S256
        ));
        assert!(!verify("short", "short", PkceMethod::Plain));
    }

    #[test]
    fn fapi_refuses_plain() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(check_challenge(challenge, None, Policy::of(Profile::Fapi2Security)).is_err());
        assert!(check_challenge(challenge, Some("plain"), Policy::of(Profile::Oidc)).is_ok());
        assert!(check_challenge(challenge, Some("S512"), Policy::of(Profile::Oidc)).is_err());
        assert!(check_challenge("x", Some("S256"), Policy::of(Profile::Oidc)).is_err());
    }
}
