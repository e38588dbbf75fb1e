//! How the till proves who it is to the bank: `client_secret_basic`
//! ([RFC 6749 §2.3.1](https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1)) or
//! `private_key_jwt` ([RFC 7523 §2.2](https://www.rfc-editor.org/rfc/rfc7523#section-2.2),
//! [OpenID Connect Core §9](https://openid.net/specs/openid-connect-core-1_0.html#ClientAuthentication)),
//! or its TLS client certificate (`tls_client_auth`, `self_signed_tls_client_auth`:
//! [RFC 8705 §2](https://www.rfc-editor.org/rfc/rfc8705#section-2), with the
//! certificate of [`ClientTls`](super::tls::ClientTls)); and the private key
//! that also signs CIBA request objects.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::{parse_jwk, JoseError, Jwk, SigningKey};
use outband_protocol::{ClientId, ClientSecret, SigningAlg};
use rand::RngCore;
use serde_json::{json, Value};

/// The `client_assertion_type` of `private_key_jwt`.
pub const JWT_BEARER_ASSERTION: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
/// Lifetime of a client assertion, in seconds.
const ASSERTION_LIFETIME: i64 = 60;

/// Client authentication at the token and backchannel endpoints.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum ClientAuth {
    /// HTTP Basic with the client secret.
    ClientSecretBasic(ClientSecret),
    /// A JWT signed with the client's private key.
    PrivateKeyJwt(Arc<SigningKey>),
    /// The TLS client certificate, issued by a CA the server trusts for the
    /// registered subject DN or SAN (RFC 8705 §2.1); the form names the client.
    TlsClientAuth,
    /// A self-signed TLS client certificate registered in the client's JWKS
    /// (RFC 8705 §2.2); the form names the client.
    SelfSignedTlsClientAuth,
}

/// Why a private key could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadKeyError {
    /// The file could not be read.
    #[error("cannot read key file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a JSON private JWK (or a JWKS with exactly one key).
    #[error("key file {path} is not a private JWK: {why}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
    /// The key cannot sign with the algorithm.
    #[error("key file {path} cannot be used")]
    Key {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: JoseError,
    },
}

/// Loads a private signing key from a JWK file (or a JWKS holding one key).
///
/// The algorithm is the JWK's `alg`; without one it follows from the key type:
/// EC P-256 → ES256, Ed25519 → EdDSA, RSA → PS256.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, LoadKeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| LoadKeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    let parse = |why: String| LoadKeyError::Parse {
        path: path.to_owned(),
        why,
    };
    let value: Value = serde_json::from_str(&text).map_err(|e| parse(e.to_string()))?;
    let value = match value.get("keys").and_then(Value::as_array).map(Vec::as_slice) {
        Some([only]) => only.clone(),
        Some(_) => return Err(parse("a JWKS must hold exactly one key".into())),
        None => value,
    };
    let jwk = parse_jwk(&value).map_err(|e| parse(e.to_string()))?;
    if !outband_protocol::jose::is_private_jwk(&jwk) {
        return Err(parse("it has no private part (d)".into()));
    }
    let alg = key_alg(&jwk).ok_or_else(|| parse("cannot tell its algorithm; set \"alg\"".into()))?;
    SigningKey::from_private_jwk(&jwk, alg).map_err(|source| LoadKeyError::Key {
        path: path.to_owned(),
        source,
    })
}

fn key_alg(jwk: &Jwk) -> Option<SigningAlg> {
    if let Some(alg) = jwk.algorithm() {
        return SigningAlg::parse(alg);
    }
    match (jwk.key_type(), jwk.curve()) {
        ("EC", Some("P-256")) => Some(SigningAlg::ES256),
        ("OKP", Some("Ed25519")) => Some(SigningAlg::EdDSA),
        ("RSA", _) => Some(SigningAlg::PS256),
        _ => None,
    }
}

/// A random value of 128 bits, base64url: for `jti`s and notification tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl ClientAuth {
    /// Adds the credentials to a request to `issuer`'s endpoints at time `now`:
    /// Basic credentials on the request, or assertion parameters in `form`.
    pub(crate) fn apply(
        &self,
        request: reqwest::RequestBuilder,
        form: &mut Vec<(&'static str, String)>,
        client_id: &ClientId,
        issuer: &str,
        now: i64,
    ) -> Result<reqwest::RequestBuilder, JoseError> {
        match self {
            Self::ClientSecretBasic(secret) => {
                // RFC 6749 §2.3.1: both parts form-encoded before Basic encoding.
                let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
                Ok(request.basic_auth(enc(client_id.as_str()), Some(enc(secret.secret()))))
            }
            Self::PrivateKeyJwt(key) => {
                form.push(("client_id", client_id.to_string()));
                form.push(("client_assertion_type", JWT_BEARER_ASSERTION.to_owned()));
                form.push(("client_assertion", client_assertion(key, client_id, issuer, now)?));
                Ok(request)
            }
            // The certificate is on the connection; RFC 8705 §2 asks for client_id in the body.
            Self::TlsClientAuth | Self::SelfSignedTlsClientAuth => {
                form.push(("client_id", client_id.to_string()));
                Ok(request)
            }
        }
    }

    /// Whether the client authenticates with its TLS client certificate.
    pub fn is_mutual_tls(&self) -> bool {
        matches!(self, Self::TlsClientAuth | Self::SelfSignedTlsClientAuth)
    }
}

/// A `private_key_jwt` assertion: `iss` = `sub` = client id, `aud` = issuer,
/// one minute of life, a fresh `jti`.
pub fn client_assertion(key: &SigningKey, client_id: &ClientId, issuer: &str, now: i64) -> Result<String, JoseError> {
    let claims = json!({
        "iss": client_id,
        "sub": client_id,
        "aud": issuer,
        "iat": now,
        "exp": now + ASSERTION_LIFETIME,
        "jti": random_token(),
    });
    let Value::Object(map) = claims else {
        return Err(JoseError::Malformed("claims are not an object".into()));
    };
    key.sign(None, &map)
}

#[cfg(test)]
mod tests {
    use outband_protocol::jose::{verify_jwt, UnverifiedJwt};

    use super::*;

    #[test]
    fn assertion_claims() {
        let key = SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256)
            .unwrap();
        let jwt = client_assertion(&key, &ClientId::new("pos-1"), "https://as.example", 1000).unwrap();
        let verified = verify_jwt(&jwt, &[key.public_jwk().clone()], &[SigningAlg::ES256]).unwrap();
        assert_eq!(verified.claims["iss"], "pos-1");
        assert_eq!(verified.claims["sub"], "pos-1");
        assert_eq!(verified.claims["aud"], "https://as.example");
        assert_eq!(verified.claims["exp"], 1060);
        let other = client_assertion(&key, &ClientId::new("pos-1"), "https://as.example", 1000).unwrap();
        assert_ne!(
            UnverifiedJwt::decode(&other).unwrap().claims["jti"],
            verified.claims["jti"],
            "every assertion has its own jti"
        );
    }

    #[test]
    fn keys_load_from_jwk_and_jwks_files() {
        let dir = tempfile::tempdir().unwrap();
        let jwk = SigningAlg::EdDSA.generate_private_jwk().unwrap();
        let path = dir.path().join("key.json");
        std::fs::write(&path, jwk.to_string()).unwrap();
        assert_eq!(load_signing_key(&path).unwrap().alg(), SigningAlg::EdDSA);

        let mut map = jwk.as_ref().clone();
        map.remove("alg");
        std::fs::write(&path, json!({ "keys": [map] }).to_string()).unwrap();
        assert_eq!(
            load_signing_key(&path).unwrap().alg(),
            SigningAlg::EdDSA,
            "alg from crv"
        );

        let public = outband_protocol::jose::public_jwk(&jwk).unwrap();
        std::fs::write(&path, public.to_string()).unwrap();
        assert!(matches!(load_signing_key(&path), Err(LoadKeyError::Parse { .. })));
        std::fs::write(&path, "not json").unwrap();
        assert!(matches!(load_signing_key(&path), Err(LoadKeyError::Parse { .. })));
        assert!(matches!(
            load_signing_key(&dir.path().join("missing.json")),
            Err(LoadKeyError::Read { .. })
        ));
    }
}
