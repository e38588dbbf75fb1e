//! Where the device's secrets live: the private key and the device credential,
//! sealed under the user's PIN.
//!
//! ## Sealing
//! The PIN goes through Argon2id with a fresh random salt per seal; the 32-byte
//! result is an AES-256-GCM key that encrypts `{private_jwk, device_credential}`
//! with a random 96-bit nonce and the account id as associated data (a blob
//! moved to another account's name does not open). The Argon2 parameters are
//! stored with the blob, so they can be raised later without breaking old
//! blobs. A wrong PIN fails the GCM tag check: [`Error::WrongPin`].
//!
//! ## Storage
//! The sealed blob (JSON) goes to the OS keyring ([`KeyStorage::OsKeyring`]:
//! Secret Service, Keychain, Credential Manager) when one answers, and to
//! `keys/<id>.sealed` (0600, written atomically) otherwise: no session bus, no
//! Secret Service, a locked or failing keyring, or [`KeyStorage::File`] chosen.
//! Each account records where its key went, so keys already in files keep working.

use std::io::Write;
use std::path::{Path, PathBuf};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{AccountId, Error, KeyStorage};

/// Shortest and longest PIN, in characters.
const PIN_MIN: usize = 4;
const PIN_MAX: usize = 64;
/// Argon2id cost (OWASP's recommendation: 19 MiB, 2 passes, 1 lane).
const ARGON2_M_COST: u32 = 19_456;
const ARGON2_T_COST: u32 = 2;
const ARGON2_P_COST: u32 = 1;
/// Format version of a sealed blob.
const SEALED_VERSION: u32 = 1;

/// The user's PIN. Debug = "Pin([redacted])". 4..=64 chars, no control chars.
#[derive(Clone)]
pub struct Pin(Zeroizing<String>);

impl Pin {
    /// Checks and wraps a PIN.
    pub fn new(s: impl Into<String>) -> Result<Pin, Error> {
        let pin = Zeroizing::new(s.into());
        let len = pin.chars().count();
        if !(PIN_MIN..=PIN_MAX).contains(&len) {
            return Err(Error::InvalidPin(format!(
                "a PIN has {PIN_MIN} to {PIN_MAX} characters"
            )));
        }
        if pin.chars().any(char::is_control) {
            return Err(Error::InvalidPin("a PIN cannot contain control characters".into()));
        }
        Ok(Pin(pin))
    }

    fn secret(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl std::fmt::Debug for Pin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Pin([redacted])")
    }
}

/// What a sealed blob holds. Debug is redacted.
#[derive(Clone, Serialize, Deserialize)]
pub(crate) struct Secrets {
    /// The device's private JWK.
    pub private_jwk: serde_json::Map<String, serde_json::Value>,
    /// The credential the AS gave at enrollment.
    pub device_credential: String,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secrets([redacted])")
    }
}

impl Drop for Secrets {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.device_credential.zeroize();
        // The JWK's members are serde_json strings; wipe the private scalar at least.
        if let Some(serde_json::Value::String(d)) = self.private_jwk.get_mut("d") {
            d.zeroize();
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    alg: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    version: u32,
    kdf: Kdf,
    cipher: String,
    nonce: String,
    ciphertext: String,
}

fn derive_key(pin: &Pin, kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>, Error> {
    if kdf.alg != "argon2id" {
        return Err(Error::Storage(format!("unknown key derivation {:?}", kdf.alg)));
    }
    let salt = URL_SAFE_NO_PAD
        .decode(&kdf.salt)
        .map_err(|_| Error::Storage("the sealed key's salt is not base64url".into()))?;
    let params = argon2::Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(32))
        .map_err(|e| Error::storage("the sealed key's argon2 parameters", e))?;
    let argon = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut key = Zeroizing::new([0u8; 32]);
    argon
        .hash_password_into(pin.secret(), &salt, key.as_mut())
        .map_err(|e| Error::storage("deriving the key from the PIN", e))?;
    Ok(key)
}

/// Seals `secrets` under `pin`, bound to account `id`; returns the blob (JSON text).
/// Slow on purpose (Argon2): call from blocking code.
pub(crate) fn seal(secrets: &Secrets, pin: &Pin, id: &AccountId) -> Result<String, Error> {
    let mut salt = [0u8; 16];
    let mut nonce = [0u8; 12];
    rand::thread_rng().fill_bytes(&mut salt);
    rand::thread_rng().fill_bytes(&mut nonce);
    let kdf = Kdf {
        alg: "argon2id".into(),
        m_cost: ARGON2_M_COST,
        t_cost: ARGON2_T_COST,
        p_cost: ARGON2_P_COST,
        salt: URL_SAFE_NO_PAD.encode(salt),
    };
    let key = derive_key(pin, &kdf)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| Error::storage("the sealing key", e))?;
    let plaintext = Zeroizing::new(serde_json::to_vec(secrets).map_err(|e| Error::storage("encoding the key", e))?);
    let ciphertext = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &plaintext,
                aad: id.0.as_bytes(),
            },
        )
        .map_err(|_| Error::Storage("sealing the key failed".into()))?;
    let sealed = Sealed {
        version: SEALED_VERSION,
        kdf,
        cipher: "A256GCM".into(),
        nonce: URL_SAFE_NO_PAD.encode(nonce),
        ciphertext: URL_SAFE_NO_PAD.encode(ciphertext),
    };
    serde_json::to_string_pretty(&sealed).map_err(|e| Error::storage("encoding the sealed key", e))
}

/// Opens a blob made by [`seal`]. A wrong PIN is [`Error::WrongPin`].
/// Slow on purpose (Argon2): call from blocking code.
pub(crate) fn unseal(blob: &str, pin: &Pin, id: &AccountId) -> Result<Secrets, Error> {
    let sealed: Sealed = serde_json::from_str(blob).map_err(|e| Error::storage("the sealed key is unreadable", e))?;
    if sealed.version != SEALED_VERSION || sealed.cipher != "A256GCM" {
        return Err(Error::Storage(format!(
            "the sealed key has an unknown format (version {}, {})",
            sealed.version, sealed.cipher
        )));
    }
    let nonce = URL_SAFE_NO_PAD
        .decode(&sealed.nonce)
        .ok()
        .filter(|n| n.len() == 12)
        .ok_or_else(|| Error::Storage("the sealed key's nonce is malformed".into()))?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(&sealed.ciphertext)
        .map_err(|_| Error::Storage("the sealed key is not base64url".into()))?;
    let key = derive_key(pin, &sealed.kdf)?;
    let cipher = Aes256Gcm::new_from_slice(key.as_ref()).map_err(|e| Error::storage("the sealing key", e))?;
    let plaintext = Zeroizing::new(
        cipher
            .decrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: &ciphertext,
                    aad: id.0.as_bytes(),
                },
            )
            .map_err(|_| Error::WrongPin)?,
    );
    serde_json::from_slice(&plaintext).map_err(|e| Error::storage("the unsealed key is unreadable", e))
}

/// Creates `dir` (and parents) if missing; a directory we create is 0700.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder
        .create(dir)
        .map_err(|e| Error::storage(&format!("cannot create {}", dir.display()), e))
}

/// Writes `bytes` to `path` atomically (a 0600 temporary file beside it, synced, renamed over).
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let fail = |what: &str, e: std::io::Error| Error::storage(&format!("{what} {}", path.display()), e);
    let parent = path
        .parent()
        .ok_or_else(|| Error::Storage(format!("{} has no directory", path.display())))?;
    let mut suffix = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut suffix);
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = parent.join(format!(".{name}.{}.tmp", URL_SAFE_NO_PAD.encode(suffix)));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&temp).and_then(|mut file| {
        file.write_all(bytes)?;
        file.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&temp, path)) {
        let _ = std::fs::remove_file(&temp);
        return Err(fail("cannot write", e));
    }
    Ok(())
}

/// The key store of one data directory.
#[derive(Clone, Debug)]
pub(crate) struct KeyStore {
    keys_dir: PathBuf,
    /// Where new keys go: the OS keyring first (falling back to the file), or the file only.
    preferred: KeyStorage,
}

impl KeyStore {
    pub(crate) fn new(dir: &Path, preferred: KeyStorage) -> Self {
        Self {
            keys_dir: dir.join("keys"),
            preferred,
        }
    }

    /// The 0600 file of account `id`'s sealed key.
    pub(crate) fn file(&self, id: &AccountId) -> PathBuf {
        self.keys_dir.join(format!("{}.sealed", id.0))
    }

    /// Stores a sealed blob: in the OS keyring when it is preferred and answers
    /// (and gives the blob back unchanged), else in the 0600 file. Returns where it went.
    /// Blocks (the keyring is a D-Bus round trip or a prompt away): call from blocking code.
    pub(crate) fn store(&self, id: &AccountId, blob: &str) -> Result<KeyStorage, Error> {
        if self.preferred == KeyStorage::OsKeyring {
            match os_keyring::store(id, blob) {
                Ok(()) => return Ok(KeyStorage::OsKeyring),
                Err(why) => {
                    tracing::info!(account = %id, reason = %why, "no usable OS keyring: the sealed key goes to a 0600 file")
                }
            }
        }
        create_private_dir(&self.keys_dir)?;
        write_atomic(&self.file(id), blob.as_bytes())?;
        Ok(KeyStorage::File)
    }

    /// Reads a sealed blob. Blocks: call from blocking code.
    pub(crate) fn load(&self, id: &AccountId, storage: KeyStorage) -> Result<String, Error> {
        match storage {
            KeyStorage::File => {
                let path = self.file(id);
                std::fs::read_to_string(&path)
                    .map_err(|e| Error::storage(&format!("cannot read the sealed key {}", path.display()), e))
            }
            KeyStorage::OsKeyring => os_keyring::load(id),
        }
    }

    /// Deletes a sealed blob (missing is fine). Blocks: call from blocking code.
    pub(crate) fn delete(&self, id: &AccountId, storage: KeyStorage) -> Result<(), Error> {
        match storage {
            KeyStorage::File => match std::fs::remove_file(self.file(id)) {
                Ok(()) => Ok(()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(Error::storage("cannot delete the sealed key", e)),
            },
            KeyStorage::OsKeyring => os_keyring::delete(id),
        }
    }
}

/// The OS keyring through the `keyring` crate: service [`os_keyring::SERVICE`],
/// user = the account id, secret = the sealed blob (never anything unsealed).
///
/// Every call runs on a thread of its own and is waited for with a time limit:
/// the Secret Service backend must not run on an async runtime's thread (the
/// `keyring` docs warn of deadlocks), and a keyring that shows an unlock prompt
/// nobody answers (a headless session) must not hang enrollment. A store that
/// gives up leaves the late write to delete itself, so the key is in one place.
#[cfg(feature = "os-keyring")]
mod os_keyring {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    use crate::{AccountId, Error};

    /// The keyring service name (Secret Service attribute `service`).
    pub(crate) const SERVICE: &str = "outband-device";
    /// How long enrollment waits for the keyring (an unlock prompt included) before using the file.
    const STORE_WAIT: Duration = Duration::from_secs(30);
    /// How long reading or deleting a key waits for the keyring (an unlock prompt included).
    const READ_WAIT: Duration = Duration::from_secs(120);

    /// Runs `call` on its own thread; at most `wait`.
    fn on_own_thread<T: Send + 'static>(
        wait: Duration,
        call: impl FnOnce() -> Result<T, keyring::Error> + Send + 'static,
    ) -> Result<Result<T, keyring::Error>, String> {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("os-keyring".into())
            .spawn(move || {
                let _ = tx.send(call());
            })
            .map_err(|e| format!("cannot start a thread for the OS keyring: {e}"))?;
        match rx.recv_timeout(wait) {
            Ok(result) => Ok(result),
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the OS keyring did not answer within {} s (is it locked?)",
                wait.as_secs()
            )),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => Err("the OS keyring call failed".into()),
        }
    }

    /// Stores `blob` and reads it back; the reason when the keyring cannot keep it.
    pub(crate) fn store(id: &AccountId, blob: &str) -> Result<(), String> {
        let (user, blob) = (id.0.clone(), blob.to_owned());
        let gave_up = Arc::new(AtomicBool::new(false));
        let late = Arc::clone(&gave_up);
        let stored = on_own_thread(STORE_WAIT, move || {
            let entry = keyring::Entry::new(SERVICE, &user)?;
            entry.set_password(&blob)?;
            // Read it back: some backends accept writes they cannot serve.
            let kept = entry.get_password().map(|read| read == blob);
            if late.load(Ordering::SeqCst) || !matches!(kept, Ok(true)) {
                // The caller went on with the file (or the keyring garbled it): no second copy.
                let _ = entry.delete_credential();
            }
            kept
        });
        match stored {
            Ok(Ok(true)) => Ok(()),
            Ok(Ok(false)) => Err("the OS keyring did not give the key back unchanged".into()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(why) => {
                gave_up.store(true, Ordering::SeqCst);
                Err(why)
            }
        }
    }

    /// Reads the blob of account `id`.
    pub(crate) fn load(id: &AccountId) -> Result<String, Error> {
        let user = id.0.clone();
        match on_own_thread(READ_WAIT, move || keyring::Entry::new(SERVICE, &user)?.get_password()) {
            Ok(Ok(blob)) => Ok(blob),
            Ok(Err(keyring::Error::NoEntry)) => Err(Error::Storage(format!(
                "the key of account {id} is no longer in the OS keyring (service {SERVICE}, user {id})"
            ))),
            Ok(Err(err)) => Err(Error::storage("cannot read the key from the OS keyring", err)),
            Err(why) => Err(Error::Storage(format!(
                "cannot read the key from the OS keyring: {why}"
            ))),
        }
    }

    /// Deletes the entry of account `id` (missing is fine).
    pub(crate) fn delete(id: &AccountId) -> Result<(), Error> {
        let user = id.0.clone();
        match on_own_thread(READ_WAIT, move || {
            keyring::Entry::new(SERVICE, &user)?.delete_credential()
        }) {
            Ok(Ok(()) | Err(keyring::Error::NoEntry)) => Ok(()),
            Ok(Err(err)) => Err(Error::storage("cannot delete the key from the OS keyring", err)),
            Err(why) => Err(Error::Storage(format!(
                "cannot delete the key from the OS keyring: {why}"
            ))),
        }
    }
}

/// Built without the `os-keyring` feature: every new key goes to the file.
#[cfg(not(feature = "os-keyring"))]
mod os_keyring {
    use crate::{AccountId, Error};

    const MISSING: &str = "this build has no OS keyring support (feature os-keyring)";

    pub(crate) fn store(_id: &AccountId, _blob: &str) -> Result<(), String> {
        Err(MISSING.into())
    }

    pub(crate) fn load(_id: &AccountId) -> Result<String, Error> {
        Err(Error::Storage(format!(
            "this account's key is in the OS keyring, but {MISSING}"
        )))
    }

    pub(crate) fn delete(_id: &AccountId) -> Result<(), Error> {
        Err(Error::Storage(format!(
            "this account's key is in the OS keyring, but {MISSING}"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secrets() -> Secrets {
        let mut jwk = serde_json::Map::new();
        jwk.insert("kty".into(), "EC".into());
        jwk.insert("d".into(), "private".into());
        Secrets {
            private_jwk: jwk,
            device_credential: "credential".into(),
        }
    }

    #[test]
    fn pins_are_checked_and_redacted() {
        assert!(Pin::new("123").is_err());
        assert!(Pin::new("1234").is_ok());
        assert!(Pin::new("x".repeat(65)).is_err());
        assert!(Pin::new("12\n34").is_err());
        assert_eq!(format!("{:?}", Pin::new("1234").unwrap()), "Pin([redacted])");
        assert_eq!(format!("{:?}", secrets()), "Secrets([redacted])");
    }

    #[test]
    fn sealed_secrets_open_only_with_the_pin_and_account() {
        let id = AccountId("a1".into());
        let pin = Pin::new("2468").unwrap();
        let blob = seal(&secrets(), &pin, &id).unwrap();
        assert!(!blob.contains("credential") && !blob.contains("private"));
        let opened = unseal(&blob, &pin, &id).unwrap();
        assert_eq!(opened.device_credential, "credential");
        assert!(matches!(
            unseal(&blob, &Pin::new("1357").unwrap(), &id),
            Err(Error::WrongPin)
        ));
        assert!(matches!(
            unseal(&blob, &pin, &AccountId("a2".into())),
            Err(Error::WrongPin)
        ));
        assert!(matches!(unseal("{}", &pin, &id), Err(Error::Storage(_))));
        let other = seal(&secrets(), &pin, &id).unwrap();
        assert_ne!(blob, other, "a fresh salt and nonce per seal");
    }

    #[cfg(unix)]
    #[test]
    fn files_are_private_and_replaced_atomically() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("d");
        create_private_dir(&sub).unwrap();
        assert_eq!(std::fs::metadata(&sub).unwrap().permissions().mode() & 0o777, 0o700);
        let file = sub.join("f.json");
        write_atomic(&file, b"one").unwrap();
        write_atomic(&file, b"two").unwrap();
        assert_eq!(std::fs::read(&file).unwrap(), b"two");
        assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(&sub).unwrap().count(), 1, "no temporary files left");
    }
}
