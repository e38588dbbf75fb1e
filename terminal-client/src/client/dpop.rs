//! DPoP ([RFC 9449](https://www.rfc-editor.org/rfc/rfc9449)): the till's own
//! key pair, kept in its data directory, and the proofs it signs with it: one
//! per request, naming the method and URL (`htm`, `htu`), with `ath` when an
//! access token goes along (§4.2), and the server's latest nonce (§8).
//!
//! The key is per till, not per client registration: a DPoP-bound token only
//! works from the till that asked for it, even if the client secret leaks.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use josekit::jws::JwsHeader;
use outband_protocol::jose::{jwk_thumbprint, parse_jwk, sha256_b64url, JoseError, SigningKey};
use outband_protocol::SigningAlg;
use reqwest::header::HeaderMap;
use serde_json::json;

use super::auth::random_token;

/// The `typ` of a proof.
const DPOP_TYP: &str = "dpop+jwt";
/// The response header that carries a server nonce.
pub const DPOP_NONCE_HEADER: &str = "dpop-nonce";
/// The file name of the key in the data directory.
pub const DPOP_KEY_FILE: &str = "dpop-key.jwk";

/// Why the till's DPoP key could not be loaded or made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadDpopKeyError {
    /// Reading or writing the key file failed.
    #[error("cannot {action} the DPoP key file {}", .path.display())]
    Io {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file does not hold a usable ES256 private JWK.
    #[error("the DPoP key file {} is not an ES256 private JWK; move it away to make a new key", .path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
    },
    /// Key generation failed.
    #[error("cannot make a DPoP key")]
    Generate(#[source] JoseError),
}

/// The till's DPoP key and the server's latest nonce. Cheap to clone.
#[derive(Clone)]
pub struct DpopKey {
    key: Arc<SigningKey>,
    nonce: Arc<Mutex<Option<String>>>,
}

impl std::fmt::Debug for DpopKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DpopKey")
            .field("jkt", &self.thumbprint())
            .finish_non_exhaustive()
    }
}

impl DpopKey {
    /// A fresh ES256 key (not stored anywhere).
    pub fn generate() -> Result<Self, JoseError> {
        let jwk = SigningAlg::ES256.generate_private_jwk()?;
        Ok(Self::from_key(SigningKey::from_private_jwk(&jwk, SigningAlg::ES256)?))
    }

    fn from_key(key: SigningKey) -> Self {
        Self {
            key: Arc::new(key),
            nonce: Arc::new(Mutex::new(None)),
        }
    }

    /// The key in `dir`/[`DPOP_KEY_FILE`], made (0600) the first time.
    pub fn load_or_create(dir: &Path) -> Result<Self, LoadDpopKeyError> {
        let path = dir.join(DPOP_KEY_FILE);
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| LoadDpopKeyError::Io { action, path, source }
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let invalid = || LoadDpopKeyError::Invalid { path: path.clone() };
                let value: serde_json::Value = serde_json::from_str(&text).map_err(|_| invalid())?;
                let jwk = parse_jwk(&value).map_err(|_| invalid())?;
                let key = SigningKey::from_private_jwk(&jwk, SigningAlg::ES256).map_err(|_| invalid())?;
                Ok(Self::from_key(key))
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let jwk = SigningAlg::ES256
                    .generate_private_jwk()
                    .map_err(LoadDpopKeyError::Generate)?;
                let key = SigningKey::from_private_jwk(&jwk, SigningAlg::ES256).map_err(LoadDpopKeyError::Generate)?;
                std::fs::create_dir_all(dir).map_err(io("write", dir))?;
                write_private(&path, jwk.to_string().as_bytes()).map_err(io("write", &path))?;
                tracing::info!(jkt = %jwk_thumbprint(key.public_jwk()).unwrap_or_default(), "made the till's DPoP key");
                Ok(Self::from_key(key))
            }
            Err(err) => Err(io("read", &path)(err)),
        }
    }

    /// The RFC 7638 thumbprint tokens are bound to (`cnf.jkt`).
    pub fn thumbprint(&self) -> String {
        jwk_thumbprint(self.key.public_jwk()).unwrap_or_default()
    }

    /// A proof for `method url` at `now`, with `ath` for `access_token` and
    /// the latest server nonce.
    pub fn proof(&self, method: &str, url: &str, access_token: Option<&str>, now: i64) -> Result<String, JoseError> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = serde_json::Map::new();
        claims.insert("jti".into(), json!(random_token()));
        claims.insert("htm".into(), json!(method));
        claims.insert("htu".into(), json!(htu));
        claims.insert("iat".into(), json!(now));
        if let Some(token) = access_token {
            claims.insert("ath".into(), json!(sha256_b64url(token.as_bytes())));
        }
        if let Some(nonce) = self.nonce() {
            claims.insert("nonce".into(), json!(nonce));
        }
        let mut header = JwsHeader::new();
        header.set_token_type(DPOP_TYP);
        header.set_jwk(self.key.public_jwk().clone());
        self.key.sign_with_header(header, &claims)
    }

    /// Keeps the `DPoP-Nonce` of a response for the next proof; whether there was one.
    pub(crate) fn remember_nonce(&self, headers: &HeaderMap) -> bool {
        let Some(nonce) = headers.get(DPOP_NONCE_HEADER).and_then(|v| v.to_str().ok()) else {
            return false;
        };
        *self.nonce.lock().unwrap_or_else(PoisonError::into_inner) = Some(nonce.to_owned());
        true
    }

    fn nonce(&self) -> Option<String> {
        self.nonce.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

#[cfg(test)]
mod tests {
    use outband_protocol::jose::{verify_jwt, UnverifiedJwt};

    use super::*;

    #[test]
    fn the_key_is_kept_and_proofs_carry_ath_and_the_nonce() {
        let dir = tempfile::tempdir().unwrap();
        let key = DpopKey::load_or_create(dir.path()).unwrap();
        let again = DpopKey::load_or_create(dir.path()).unwrap();
        assert_eq!(key.thumbprint(), again.thumbprint(), "the same key after a restart");

        let proof = key
            .proof("POST", "https://as.test/api/payments?x=1", Some("tok"), 1000)
            .unwrap();
        let jwt = UnverifiedJwt::decode(&proof).unwrap();
        assert_eq!(jwt.typ(), Some("dpop+jwt"));
        let jwk = parse_jwk(jwt.header.get("jwk").unwrap()).unwrap();
        let verified = verify_jwt(&proof, &[jwk], &[SigningAlg::ES256]).unwrap();
        assert_eq!(verified.claims["htu"], "https://as.test/api/payments");
        assert_eq!(verified.claims["ath"], sha256_b64url(b"tok"));
        assert!(verified.claims.get("nonce").is_none());

        let mut headers = HeaderMap::new();
        headers.insert(DPOP_NONCE_HEADER, "n-1".parse().unwrap());
        assert!(key.remember_nonce(&headers));
        let proof = key.proof("POST", "https://as.test/token", None, 1000).unwrap();
        let claims = UnverifiedJwt::decode(&proof).unwrap().claims;
        assert_eq!(claims["nonce"], "n-1");
        assert!(claims.get("ath").is_none());
    }

    #[cfg(unix)]
    #[test]
    fn the_key_file_is_private_and_a_bad_one_is_an_error() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        DpopKey::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(DPOP_KEY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::write(dir.path().join(DPOP_KEY_FILE), "{}").unwrap();
        assert!(matches!(
            DpopKey::load_or_create(dir.path()),
            Err(LoadDpopKeyError::Invalid { .. })
        ));
    }
}
