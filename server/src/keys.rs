//! The authorization server's signing keys.
//!
//! Keys live in the database so that every node of a cluster signs with the same
//! set; their private halves are sealed (AES-256-GCM) under a 32-byte key file
//! the operator gives every node. The database alone therefore never reveals a
//! signing key, and the key file alone signs nothing. See `docs/OPERATIONS.md`.
//!
//! One key per algorithm forms a *generation*. The first start creates
//! generation 1 with one conditional insert, so nodes starting together agree
//! on one set. `keys rotate` adds generation n+1; the older keys stop signing at
//! once but stay published in the JWKS for `keys.rotation_overlap` seconds.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use aes_gcm::aead::{Aead, KeyInit};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use outband_protocol::jose::{parse_jwk, Jwk, SigningKey};
use outband_protocol::SigningAlg;
use rand::RngCore;

use crate::store::{KeyRecord, Store, StoreError, UnixTime};

/// Why keys could not be loaded or made.
#[derive(Debug, thiserror::Error)]
pub enum LoadKeysError {
    /// The key file is missing, unreadable or malformed.
    #[error("key file {path}: {reason}")]
    KeyFile {
        /// The path.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A stored key does not open with this key file, or is malformed.
    #[error("signing key {kid}: {reason}")]
    BadKey {
        /// The key id.
        kid: String,
        /// What is wrong.
        reason: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Seals and opens private keys with the operator's key file.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// A sealer from raw key bytes (32).
    pub fn from_bytes(key: &[u8]) -> Option<Self> {
        Aes256Gcm::new_from_slice(key).ok().map(|cipher| Self { cipher })
    }

    /// Reads the key file (base64url of 32 random bytes). When it does not exist and
    /// `create` is set, makes a new one readable by the owner only.
    pub fn from_file(path: &Path, create: bool) -> Result<Self, LoadKeysError> {
        let fail = |reason: String| LoadKeysError::KeyFile {
            path: path.display().to_string(),
            reason,
        };
        if !path.exists() {
            if !create {
                return Err(fail(
                    "does not exist, but the database already holds keys sealed under it; give every node the same key file"
                        .into(),
                ));
            }
            let mut key = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut key);
            write_private_file(path, URL_SAFE_NO_PAD.encode(key).as_bytes()).map_err(|e| fail(e.to_string()))?;
        }
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        let bytes = URL_SAFE_NO_PAD
            .decode(text.trim())
            .map_err(|_| fail("is not base64url text".into()))?;
        Self::from_bytes(&bytes).ok_or_else(|| fail(format!("holds {} bytes; 32 are needed", bytes.len())))
    }

    /// Encrypts `plaintext`; the output is base64url of nonce ‖ ciphertext.
    pub fn seal(&self, plaintext: &[u8]) -> Result<String, String> {
        let mut nonce = [0u8; 12];
        rand::thread_rng().fill_bytes(&mut nonce);
        let ciphertext = self
            .cipher
            .encrypt(Nonce::from_slice(&nonce), plaintext)
            .map_err(|_| "encryption failed".to_owned())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&ciphertext);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// Decrypts what [`seal`](Self::seal) made.
    pub fn open(&self, sealed: &str) -> Result<Vec<u8>, String> {
        let bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| "not base64url".to_owned())?;
        if bytes.len() < 12 {
            return Err("too short".into());
        }
        let (nonce, ciphertext) = bytes.split_at(12);
        self.cipher
            .decrypt(Nonce::from_slice(nonce), ciphertext)
            .map_err(|_| "does not open with this key file (a different key file, or tampered)".to_owned())
    }
}

impl Sealer {
    /// Decrypts what [`seal`](Self::seal) made from text, back into text.
    pub fn open_text(&self, sealed: &str) -> Result<String, String> {
        String::from_utf8(self.open(sealed)?).map_err(|_| "sealed value is not UTF-8 text".to_owned())
    }
}

#[cfg(unix)]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
fn write_private_file(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// The algorithms the server keeps a key for.
pub const SERVER_ALGS: [SigningAlg; 4] = [
    SigningAlg::ES256,
    SigningAlg::PS256,
    SigningAlg::RS256,
    SigningAlg::EdDSA,
];

struct Loaded {
    generation: i64,
    signing: HashMap<SigningAlg, Arc<SigningKey>>,
    published: Vec<Jwk>,
    jwks: serde_json::Value,
}

/// The loaded key set: signs with the current generation, publishes every key
/// that is not past its overlap.
pub struct KeySet {
    sealer: Sealer,
    loaded: RwLock<Arc<Loaded>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("generation", &self.current().generation)
            .finish_non_exhaustive()
    }
}

/// Makes a fresh generation of key records (one per algorithm), sealed.
/// Public so test harnesses can make one set of keys per process (RSA
/// generation is slow) and copy it into every test database.
pub fn new_generation(sealer: &Sealer, generation: i64, now: UnixTime) -> Result<Vec<KeyRecord>, LoadKeysError> {
    SERVER_ALGS
        .iter()
        .map(|&alg| {
            let fail = |reason: String| LoadKeysError::BadKey {
                kid: format!("new {alg} key"),
                reason,
            };
            let private = alg.generate_private_jwk().map_err(|e| fail(e.to_string()))?;
            let key = SigningKey::from_private_jwk(&private, alg).map_err(|e| fail(e.to_string()))?;
            let mut private = private;
            private.set_key_id(key.kid());
            let sealed = sealer.seal(private.to_string().as_bytes()).map_err(fail)?;
            Ok(KeyRecord {
                kid: key.kid().to_owned(),
                alg,
                generation,
                public_jwk: key.public_jwk().to_string(),
                private_jwk_sealed: sealed,
                created_at: now,
                retired_at: None,
                publish_until: None,
            })
        })
        .collect()
}

impl KeySet {
    /// Loads the keys, creating generation 1 when the database has none.
    pub async fn load_or_create(store: &Store, key_file: &Path, now: UnixTime) -> Result<Self, LoadKeysError> {
        let mut records = store.signing_keys().await?;
        let sealer = Sealer::from_file(key_file, records.is_empty())?;
        if records.is_empty() {
            let fresh = new_generation(&sealer, 1, now)?;
            // Another node may win the race; either way, read back what was stored.
            store.create_first_key_generation(&fresh).await?;
            records = store.signing_keys().await?;
        }
        Self::from_records(sealer, &records, now)
    }

    /// Builds a key set from records already in hand (tests, reload).
    pub fn from_records(sealer: Sealer, records: &[KeyRecord], now: UnixTime) -> Result<Self, LoadKeysError> {
        let loaded = load(&sealer, records, now)?;
        Ok(Self {
            sealer,
            loaded: RwLock::new(Arc::new(loaded)),
        })
    }

    /// Re-reads the keys from the database, picking up a rotation made by another node.
    pub async fn reload(&self, store: &Store, now: UnixTime) -> Result<(), LoadKeysError> {
        let records = store.signing_keys().await?;
        let loaded = load(&self.sealer, &records, now)?;
        if let Ok(mut guard) = self.loaded.write() {
            *guard = Arc::new(loaded);
        }
        Ok(())
    }

    /// Adds a new generation; the previous one stays published for `overlap` seconds.
    pub async fn rotate(&self, store: &Store, now: UnixTime, overlap: i64) -> Result<i64, LoadKeysError> {
        let records = store.signing_keys().await?;
        let next = records.iter().map(|r| r.generation).max().unwrap_or(0) + 1;
        let fresh = new_generation(&self.sealer, next, now)?;
        store.rotate_keys(&fresh, now, now + overlap).await?;
        self.reload(store, now).await?;
        Ok(next)
    }

    fn current(&self) -> Arc<Loaded> {
        match self.loaded.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// The sealer of the operator's key file, for other secrets kept at rest
    /// (CIBA notification tokens and bodies).
    pub fn sealer(&self) -> &Sealer {
        &self.sealer
    }

    /// The current key for `alg`.
    pub fn signer(&self, alg: SigningAlg) -> Option<Arc<SigningKey>> {
        self.current().signing.get(&alg).cloned()
    }

    /// The current generation number.
    pub fn generation(&self) -> i64 {
        self.current().generation
    }

    /// The public keys to publish (and to verify our own tokens with).
    pub fn public_keys(&self) -> Vec<Jwk> {
        self.current().published.clone()
    }

    /// The JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        self.current().jwks.clone()
    }
}

fn load(sealer: &Sealer, records: &[KeyRecord], now: UnixTime) -> Result<Loaded, LoadKeysError> {
    let generation = records
        .iter()
        .filter(|r| r.retired_at.is_none())
        .map(|r| r.generation)
        .max()
        .unwrap_or(0);
    let mut signing = HashMap::new();
    let mut published = Vec::new();
    for record in records {
        let fail = |reason: String| LoadKeysError::BadKey {
            kid: record.kid.clone(),
            reason,
        };
        if record.publish_until.is_some_and(|until| until < now) {
            continue;
        }
        let public: serde_json::Value = serde_json::from_str(&record.public_jwk).map_err(|e| fail(e.to_string()))?;
        published.push(parse_jwk(&public).map_err(|e| fail(e.to_string()))?);
        if record.generation == generation && record.retired_at.is_none() {
            let private = sealer.open(&record.private_jwk_sealed).map_err(fail)?;
            let private: serde_json::Value = serde_json::from_slice(&private).map_err(|e| fail(e.to_string()))?;
            let jwk = parse_jwk(&private).map_err(|e| fail(e.to_string()))?;
            let key = SigningKey::from_private_jwk(&jwk, record.alg).map_err(|e| fail(e.to_string()))?;
            signing.insert(record.alg, Arc::new(key));
        }
    }
    let keys: Vec<serde_json::Value> = published
        .iter()
        .map(|jwk| serde_json::Value::Object(jwk.as_ref().clone()))
        .collect();
    Ok(Loaded {
        generation,
        signing,
        published,
        jwks: serde_json::json!({ "keys": keys }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_round_trip_and_wrong_key() {
        let a = Sealer::from_bytes(&[7u8; 32]).unwrap();
        let b = Sealer::from_bytes(&[8u8; 32]).unwrap();
        let sealed = a.seal(b"private").unwrap();
        assert_eq!(a.open(&sealed).unwrap(), b"private");
        assert!(b.open(&sealed).is_err());
        assert!(a.open("short").is_err());
        assert!(Sealer::from_bytes(&[1u8; 16]).is_none());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("outband.key");
        assert!(Sealer::from_file(&path, false).is_err());
        let first = Sealer::from_file(&path, true).unwrap();
        let sealed = first.seal(b"x").unwrap();
        let second = Sealer::from_file(&path, false).unwrap();
        assert_eq!(second.open(&sealed).unwrap(), b"x");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn jwks_publishes_public_halves_only() {
        let sealer = Sealer::from_bytes(&[3u8; 32]).unwrap();
        let records = new_generation(&sealer, 1, 1000).unwrap();
        let keys = KeySet::from_records(sealer, &records, 1000).unwrap();
        let jwks = keys.jwks();
        let list = jwks["keys"].as_array().unwrap();
        assert_eq!(list.len(), 4);
        for key in list {
            assert!(key.get("d").is_none(), "{key}");
            assert!(key.get("kid").is_some());
            assert!(key.get("alg").is_some());
        }
        for alg in SERVER_ALGS {
            assert_eq!(keys.signer(alg).unwrap().alg(), alg);
        }
    }
}
