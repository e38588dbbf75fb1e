//! The device's data directory and its accounts: [`Authenticator`] enrolls,
//! lists, unlocks and removes them.
//!
//! Layout: `accounts.json` (public metadata of every account, 0600),
//! `keys/<id>.sealed` (each account's key and credential sealed under its PIN,
//! see [`crate::keystore`], when it is not in the OS keyring) and
//! `history.jsonl` (decisions). The directory is created 0700; every file is
//! written atomically.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};

use outband_protocol::jose::{jwk_thumbprint, SigningKey};
use outband_protocol::SigningAlg;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::api::{self, DeviceApi};
use crate::keystore::{self, KeyStore, Secrets};
use crate::{system_clock, Clock, Error, HistoryEntry, Invite, Pin, Session};

const ACCOUNTS_FILE: &str = "accounts.json";
/// Longest device id we accept from a server (it names a file).
const MAX_ID_LEN: usize = 128;

/// The device key's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyAlg {
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// Ed25519.
    Eddsa,
}

impl KeyAlg {
    pub(crate) fn signing_alg(self) -> SigningAlg {
        match self {
            Self::Es256 => SigningAlg::ES256,
            Self::Eddsa => SigningAlg::EdDSA,
        }
    }
}

impl std::str::FromStr for KeyAlg {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        match s.to_ascii_lowercase().as_str() {
            "es256" => Ok(Self::Es256),
            "eddsa" => Ok(Self::Eddsa),
            _ => Err(Error::InvalidInvite(format!(
                "unknown key algorithm {s:?}: use es256 or eddsa"
            ))),
        }
    }
}

impl std::fmt::Display for KeyAlg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.signing_alg().as_str())
    }
}

/// An account's id: the server's `device_id`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountId(pub String);

impl std::fmt::Display for AccountId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where an account's sealed key lives.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyStorage {
    /// `keys/<id>.sealed` in the data directory (0600).
    File,
    /// The OS keyring (Secret Service, Keychain, Credential Manager): service
    /// `outband-device`, user = the account id. Needs the feature `os-keyring` (default).
    OsKeyring,
}

/// An enrolled account (public metadata only).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Account {
    /// The server's device id.
    pub id: AccountId,
    /// The authorization server.
    pub issuer: Url,
    /// The user's login name at the issuer.
    pub username: String,
    /// The user's subject (`sub` of the requests).
    pub subject: String,
    /// The name this device enrolled under.
    pub device_name: String,
    /// The device key's algorithm.
    pub alg: KeyAlg,
    /// When it was enrolled (unix seconds).
    pub enrolled_at: i64,
    /// Where the sealed key is.
    pub key_storage: KeyStorage,
    /// The server revoked this device: it gets no more requests.
    #[serde(default)]
    pub revoked: bool,
}

/// The device's data directory: accounts.json (public metadata), keys/<id>.sealed (0600),
/// history.jsonl. Clone is cheap (Arc inside).
#[derive(Clone)]
pub struct Authenticator {
    dir: Arc<PathBuf>,
    http: reqwest::Client,
    clock: Clock,
    /// Where new keys go first (the OS keyring, else the file; or the file only).
    key_storage: KeyStorage,
}

/// Serialises every read-modify-write of an accounts.json in this process, across
/// every [`Authenticator`] opened on it: a second instance on the same directory
/// (an app restarted in-process while the old one's stream still ends) must not
/// write back a list read before the other's change (a removed account would
/// come back).
static ACCOUNTS_LOCK: Mutex<()> = Mutex::new(());

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn default_http_client() -> Result<reqwest::Client, Error> {
    reqwest::Client::builder()
        .connect_timeout(std::time::Duration::from_secs(10))
        .user_agent(concat!("outband-device/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::Network(format!("cannot set up HTTP: {e}")))
}

impl Authenticator {
    /// Opens (creating, 0700) a data directory.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, Error> {
        let dir = dir.into();
        keystore::create_private_dir(&dir)?;
        Ok(Self {
            dir: Arc::new(dir),
            http: default_http_client()?,
            clock: system_clock(),
            key_storage: KeyStorage::OsKeyring,
        })
    }

    /// Where the keys of new accounts go: [`KeyStorage::OsKeyring`] (the default)
    /// puts them in the OS keyring when one answers and in the 0600 file otherwise;
    /// [`KeyStorage::File`] always in the file. Existing accounts keep theirs.
    pub fn with_key_storage(mut self, storage: KeyStorage) -> Self {
        self.key_storage = storage;
        self
    }

    /// The 0600 file that holds account `id`'s sealed key when its
    /// [`Account::key_storage`] is [`KeyStorage::File`].
    pub fn key_file(&self, id: &AccountId) -> PathBuf {
        self.keys().file(id)
    }

    /// Uses `http` for every call to a server.
    pub fn with_http_client(mut self, http: reqwest::Client) -> Self {
        self.http = http;
        self
    }

    /// Reads the time from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub(crate) fn now(&self) -> i64 {
        (self.clock)()
    }

    pub(crate) fn clock(&self) -> Clock {
        self.clock.clone()
    }

    fn keys(&self) -> KeyStore {
        KeyStore::new(&self.dir, self.key_storage)
    }

    /// Every account, oldest first.
    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        let path = self.dir.join(ACCOUNTS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| Error::storage(&format!("{} is unreadable", path.display()), e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(Error::storage(&format!("cannot read {}", path.display()), e)),
        }
    }

    /// The account `id`.
    pub fn account(&self, id: &AccountId) -> Result<Account, Error> {
        self.accounts()?
            .into_iter()
            .find(|a| &a.id == id)
            .ok_or_else(|| Error::UnknownAccount(id.0.clone()))
    }

    /// Finds an account by its id, a unique id prefix, its username or its
    /// device name; with no `selector`, the only account there is.
    pub fn find_account(&self, selector: Option<&str>) -> Result<Account, Error> {
        let accounts = self.accounts()?;
        let Some(selector) = selector else {
            return match accounts.as_slice() {
                [one] => Ok(one.clone()),
                [] => Err(Error::UnknownAccount("no account is enrolled on this device".into())),
                _ => Err(Error::UnknownAccount(
                    "several accounts are enrolled: name one (id, username or device name)".into(),
                )),
            };
        };
        if let Some(exact) = accounts.iter().find(|a| a.id.0 == selector) {
            return Ok(exact.clone());
        }
        let matches: Vec<&Account> = accounts
            .iter()
            .filter(|a| a.id.0.starts_with(selector) || a.username == selector || a.device_name == selector)
            .collect();
        match matches.as_slice() {
            [one] => Ok((*one).clone()),
            [] => Err(Error::UnknownAccount(selector.to_owned())),
            _ => Err(Error::UnknownAccount(format!(
                "{selector} names several accounts: use the account id"
            ))),
        }
    }

    /// Applies `edit` to the account list and writes it back.
    fn update_accounts(&self, edit: impl FnOnce(&mut Vec<Account>)) -> Result<(), Error> {
        let _guard = ACCOUNTS_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
        let mut accounts = self.accounts()?;
        edit(&mut accounts);
        let json = serde_json::to_vec_pretty(&accounts).map_err(|e| Error::storage("encoding the accounts", e))?;
        keystore::write_atomic(&self.dir.join(ACCOUNTS_FILE), &json)
    }

    pub(crate) fn mark_revoked(&self, id: &AccountId) -> Result<(), Error> {
        self.update_accounts(|accounts| {
            for account in accounts.iter_mut().filter(|a| &a.id == id) {
                account.revoked = true;
            }
        })
    }

    /// Checks the pinned AS key (fetch {issuer}/jwks, kid's RFC 7638 thumbprint == jkt) BEFORE sending the code;
    /// generates the key pair; posts /device/v1/enroll; seals {private_jwk, device_credential} under the PIN
    /// (argon2id-derived key, AES-256-GCM); stores it; returns the Account.
    pub async fn enroll(&self, invite: &Invite, device_name: &str, alg: KeyAlg, pin: &Pin) -> Result<Account, Error> {
        if let Some(pinned) = &invite.pinned {
            let keys = api::fetch_jwks(&self.http, &invite.issuer).await?;
            let key = keys
                .iter()
                .find(|k| k.key_id() == Some(pinned.kid.as_str()))
                .ok_or_else(|| {
                    Error::IssuerKeyMismatch(format!(
                        "{} publishes no key {:?}; the link may not come from this server",
                        invite.issuer, pinned.kid
                    ))
                })?;
            let jkt = jwk_thumbprint(key).map_err(|e| Error::IssuerKeyMismatch(e.to_string()))?;
            if jkt != pinned.jkt {
                return Err(Error::IssuerKeyMismatch(format!(
                    "key {:?} of {} has another thumbprint than the link pins; the server may be an impostor",
                    pinned.kid, invite.issuer
                )));
            }
        }
        // Fail before spending the code when the directory is not writable.
        keystore::create_private_dir(&self.dir.join("keys"))?;
        let private = alg
            .signing_alg()
            .generate_private_jwk()
            .map_err(|e| Error::Storage(format!("cannot generate a key: {e}")))?;
        let key = SigningKey::from_private_jwk(&private, alg.signing_alg())
            .map_err(|e| Error::Storage(format!("cannot use the generated key: {e}")))?;
        let enrolled = api::enroll(&self.http, &invite.issuer, &invite.code, key.public_jwk(), device_name).await?;
        let id = AccountId(enrolled.device_id.clone());
        let id_ok = !id.0.is_empty()
            && id.0.len() <= MAX_ID_LEN
            && id.0.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !id_ok {
            return Err(Error::Network("the server sent an unusable device id".into()));
        }
        let secrets = Secrets {
            private_jwk: private.as_ref().clone(),
            device_credential: enrolled.device_credential,
        };
        let (pin, seal_id, keys) = (pin.clone(), id.clone(), self.keys());
        let key_storage = tokio::task::spawn_blocking(move || {
            let blob = keystore::seal(&secrets, &pin, &seal_id)?;
            keys.store(&seal_id, &blob)
        })
        .await
        .map_err(|e| Error::storage("sealing the key", e))??;
        let account = Account {
            id,
            issuer: invite.issuer.clone(),
            username: enrolled.username,
            subject: enrolled.subject,
            device_name: device_name.trim().to_owned(),
            alg,
            enrolled_at: self.now(),
            key_storage,
            revoked: false,
        };
        let stored = account.clone();
        self.update_accounts(move |accounts| {
            accounts.retain(|a| a.id != stored.id);
            accounts.push(stored);
        })?;
        tracing::info!(account = %account.id, issuer = %account.issuer, key_storage = ?account.key_storage, "enrolled");
        Ok(account)
    }

    /// The sealed blob of `account`.
    pub(crate) fn sealed(&self, account: &Account) -> Result<String, Error> {
        self.keys().load(&account.id, account.key_storage)
    }

    /// Unseal the account's key with the PIN (Error::WrongPin otherwise). Blocks (Argon2, and the
    /// OS keyring when the key is there): call from blocking code.
    pub fn unlock(&self, id: &AccountId, pin: &Pin) -> Result<Session, Error> {
        let account = self.account(id)?;
        let blob = self.sealed(&account)?;
        let secrets = keystore::unseal(&blob, pin, &account.id)?;
        let jwk = josekit::jwk::Jwk::from_map(secrets.private_jwk.clone())
            .map_err(|e| Error::storage("the unsealed key", e))?;
        let key = SigningKey::from_private_jwk(&jwk, account.alg.signing_alg())
            .map_err(|e| Error::storage("the unsealed key", e))?;
        let api = DeviceApi::new(
            self.http.clone(),
            account.issuer.clone(),
            key,
            &secrets.device_credential,
            self.clock(),
        );
        Ok(Session::new(self.clone(), account, api, blob))
    }

    /// Revoke at the server (DELETE /device/v1/device; an already-revoked device is fine; an unreachable server is
    /// Error::Network unless `force`), then delete the local account, key and its pending cards. Needs the PIN.
    pub async fn remove(&self, id: &AccountId, pin: &Pin, force: bool) -> Result<(), Error> {
        let account = self.account(id)?;
        let (me, unlock_id, unlock_pin) = (self.clone(), id.clone(), pin.clone());
        let session = tokio::task::spawn_blocking(move || me.unlock(&unlock_id, &unlock_pin))
            .await
            .map_err(|e| Error::storage("unsealing the key", e))?;
        match session {
            Ok(session) if !account.revoked => match session.revoke().await {
                Ok(()) | Err(Error::Revoked) => {}
                Err(err) if force => tracing::warn!(error = %err, "could not revoke at the server; removing anyway"),
                Err(err) => return Err(err),
            },
            Ok(_) => {}
            Err(Error::WrongPin) => return Err(Error::WrongPin),
            Err(err) if force => tracing::warn!(error = %err, "the key cannot be read; removing anyway"),
            Err(err) => return Err(err),
        }
        let (keys, key_id, storage) = (self.keys(), account.id.clone(), account.key_storage);
        let deleted = tokio::task::spawn_blocking(move || keys.delete(&key_id, storage))
            .await
            .map_err(|e| Error::storage("deleting the key", e))?;
        match deleted {
            Ok(()) => {}
            Err(err) if force => tracing::warn!(error = %err, "the sealed key could not be deleted; removing anyway"),
            Err(err) => return Err(err),
        }
        self.update_accounts(|accounts| accounts.retain(|a| a.id != account.id))?;
        tracing::info!(account = %account.id, "removed");
        Ok(())
    }

    /// Local decision history, newest first.
    pub fn history(&self) -> Result<Vec<HistoryEntry>, Error> {
        crate::history::read(&self.dir)
    }

    pub(crate) fn record(&self, entry: &HistoryEntry) -> Result<(), Error> {
        crate::history::append(&self.dir, entry)
    }
}
