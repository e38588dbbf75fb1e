//! The sale journal: what makes a till safe to crash. A sale is written down
//! *before* its request is sent, gets its `auth_req_id` *before* the till
//! starts waiting, and is closed when its outcome is known. After a crash or a
//! restart, [`Journal::unresolved`] lists what was left open and
//! [`CibaClient::recover`] picks each up again: it resumes waiting for it, or
//! reports how it ended.
//!
//! Layout of the journal directory (0700; every file 0600, because an open
//! sale holds its `auth_req_id`, a credential that redeems the customer's
//! approval):
//! - `inflight/<key>.json`: one open sale. The key is derived from the
//!   merchant reference, and the file is created exclusively, so a second sale
//!   with the same reference cannot start while the first is open, not even
//!   from another process.
//! - `done/<time>-<id>.json`: closed sales, kept (without their credentials)
//!   for looking up past sales by reference.
//!
//! Writes go to a temporary file that is then renamed (or hard-linked, for the
//! exclusive create), so a crash never leaves half a record behind.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use outband_protocol::jose::sha256_b64url;
use outband_protocol::{AuthReqId, BindingMessage, ClientNotificationToken, DeliveryMode, TokenResponse};
use serde::{Deserialize, Serialize};

use super::auth::random_token;
use super::ciba::{Outcome, PollResult, ResumeParts, Started, GRACE};
use super::payments::Payment;
use super::sale::SaleRequest;
use super::{CibaClient, RequestError};

/// Format version of a journal record.
const VERSION: u32 = 1;
const INFLIGHT: &str = "inflight";
const DONE: &str = "done";

/// Why the journal could not do its part.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// A sale with this merchant reference is still open.
    #[error("a sale with reference {0:?} is still in flight; wait for it or restart outband-pos to resume it")]
    InFlight(String),
    /// A file or directory could not be read or written.
    #[error("cannot {action} {}", .path.display())]
    Io {
        /// What was being done (`write`, `read`…).
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A journal file is not a record this version understands.
    #[error("journal file {} is not readable ({why}); move it out of the way to continue", .path.display())]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        why: String,
    },
}

/// Where a journaled sale stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum SaleState {
    /// Written down; the request may or may not have reached the server.
    Starting,
    /// The server accepted it (the record holds its `auth_req_id`).
    InFlight,
    /// The customer approved; the record holds the tokens and the
    /// idempotency key of the payment call, written before the call is made.
    Paying,
    /// The customer approved and the payment is done (or, on a server
    /// without the payments API, the approval is all there is).
    Approved,
    /// The customer or the bank refused.
    Denied,
    /// Nobody answered in time.
    Expired,
    /// The till cancelled it.
    Cancelled,
    /// The server refused it or ended it with an error.
    Failed,
    /// The till stopped before it learned the `auth_req_id`: the request can
    /// never be redeemed, so nothing can be charged for it.
    Lost,
}

impl SaleState {
    /// Whether the sale is closed.
    pub fn is_resolved(self) -> bool {
        !matches!(self, Self::Starting | Self::InFlight | Self::Paying)
    }

    /// The state an outcome closes a sale in.
    pub fn of(outcome: &Outcome) -> Self {
        match outcome {
            Outcome::Approved(_) => Self::Approved,
            Outcome::Denied(_) => Self::Denied,
            Outcome::Expired => Self::Expired,
            Outcome::Cancelled => Self::Cancelled,
            Outcome::Failed(_) => Self::Failed,
        }
    }
}

/// One sale in the journal. `Debug` leaves out its credentials.
#[derive(Clone, Serialize, Deserialize)]
pub struct JournalEntry {
    version: u32,
    /// A random identifier of the record.
    pub id: String,
    /// The file name (without `.json`) in `inflight/`.
    key: String,
    /// Where the sale stands.
    pub state: SaleState,
    /// The issuer the sale was sent to.
    pub issuer: String,
    /// The client that sent it.
    pub client_id: String,
    /// Its delivery mode.
    pub mode: DeliveryMode,
    /// The sale.
    pub sale: SaleRequest,
    /// The merchant reference sent (the sale code when the sale had none).
    pub reference: Option<String>,
    /// The sale code, once started.
    pub code: Option<String>,
    /// The binding message, once started.
    pub binding_message: Option<BindingMessage>,
    auth_req_id: Option<AuthReqId>,
    client_notification_token: Option<ClientNotificationToken>,
    /// The poll interval the server asked for, in seconds.
    pub interval_secs: u64,
    /// When the server accepted the sale, seconds since the epoch.
    pub started_at: Option<i64>,
    /// When the request expires, seconds since the epoch.
    pub expires_at: Option<i64>,
    /// When the record was made.
    pub created_at: i64,
    /// When the sale was closed.
    pub resolved_at: Option<i64>,
    /// What the server or the till said about the outcome.
    pub detail: Option<String>,
    /// The process that is waiting for it.
    pid: u32,
    /// The approved tokens, kept while the payment is being made.
    #[serde(default)]
    tokens: Option<TokenResponse>,
    /// The `Idempotency-Key` of the payment call (stored before the call).
    #[serde(default)]
    pub idempotency_key: Option<String>,
    /// The payment, once made.
    #[serde(default)]
    pub payment: Option<Payment>,
}

impl std::fmt::Debug for JournalEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalEntry")
            .field("id", &self.id)
            .field("state", &self.state)
            .field("mode", &self.mode)
            .field("reference", &self.reference)
            .field("binding_message", &self.binding_message)
            .field("amount", &self.sale.display_amount())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl JournalEntry {
    /// The reference to show: the merchant's, else the sale code, else none yet.
    pub fn display_reference(&self) -> Option<&str> {
        self.reference.as_deref().or(self.sale.reference.as_deref())
    }

    fn resume_parts(&self) -> Option<ResumeParts> {
        let started_unix = self.started_at?;
        Some(ResumeParts {
            auth_req_id: self.auth_req_id.clone()?,
            notification_token: self.client_notification_token.clone(),
            code: self.code.clone()?,
            binding_message: self.binding_message.clone()?,
            reference: self.reference.clone()?,
            mode: self.mode,
            sale: self.sale.clone(),
            interval: Duration::from_secs(self.interval_secs),
            started_unix,
            expires_at: self.expires_at.unwrap_or(started_unix),
        })
    }
}

/// The journal directory. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Journal {
    dir: PathBuf,
}

impl Journal {
    /// Opens (creating it, 0700) the journal in `dir`.
    pub fn open(dir: impl Into<PathBuf>) -> Result<Self, JournalError> {
        let dir = dir.into();
        for sub in [INFLIGHT, DONE] {
            create_private_dir(&dir.join(sub))?;
        }
        Ok(Self { dir })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes a sale down before its request is sent; refuses a merchant
    /// reference that is already in flight.
    pub fn begin(&self, client: &CibaClient, sale: &SaleRequest) -> Result<JournalEntry, JournalError> {
        let id = random_token();
        let key = match &sale.reference {
            Some(reference) => format!("ref-{}", sha256_b64url(reference.as_bytes())),
            None => format!("sale-{id}"),
        };
        let entry = JournalEntry {
            version: VERSION,
            id,
            key,
            state: SaleState::Starting,
            issuer: client.issuer().to_owned(),
            client_id: client.client_id().to_string(),
            mode: client.mode(),
            sale: sale.clone(),
            reference: None,
            code: None,
            binding_message: None,
            auth_req_id: None,
            client_notification_token: None,
            interval_secs: 0,
            started_at: None,
            expires_at: None,
            created_at: client.now(),
            resolved_at: None,
            detail: None,
            pid: std::process::id(),
            tokens: None,
            idempotency_key: None,
            payment: None,
        };
        let path = self.inflight_path(&entry);
        let tmp = self.write_tmp(&entry)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(entry),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(JournalError::InFlight(sale.reference.clone().unwrap_or_default()))
            }
            Err(source) => Err(JournalError::Io {
                action: "create",
                path,
                source,
            }),
        }
    }

    /// Records what the server answered: from now on the sale can be resumed.
    pub fn record_started(&self, entry: &mut JournalEntry, started: &Started) -> Result<(), JournalError> {
        entry.state = SaleState::InFlight;
        entry.reference = Some(started.reference.clone());
        entry.code = Some(started.code.clone());
        entry.binding_message = Some(started.binding_message.clone());
        entry.auth_req_id = Some(started.auth_req_id.clone());
        entry.client_notification_token = started.client_notification_token().cloned();
        entry.interval_secs = started.interval.as_secs();
        entry.started_at = Some(started.started_unix);
        entry.expires_at = Some(started.expires_at_unix());
        self.replace(&self.inflight_path(entry), entry)
    }

    /// Records the approval *before* the payment call: the tokens and the
    /// idempotency key (made once; kept when already there), so a till that
    /// crashes mid-call sends the same call again and is charged once.
    pub fn record_approved(&self, entry: &mut JournalEntry, tokens: &TokenResponse) -> Result<(), JournalError> {
        entry.state = SaleState::Paying;
        entry.tokens = Some(tokens.clone());
        if entry.idempotency_key.is_none() {
            entry.idempotency_key = Some(random_token());
        }
        self.replace(&self.inflight_path(entry), entry)
    }

    /// Closes a sale: the record moves to `done/` without its credentials,
    /// and its reference is free again.
    pub fn resolve(
        &self,
        entry: &mut JournalEntry,
        state: SaleState,
        detail: Option<String>,
        now: i64,
    ) -> Result<(), JournalError> {
        entry.state = state;
        entry.detail = detail;
        entry.resolved_at = Some(now);
        entry.auth_req_id = None;
        entry.client_notification_token = None;
        entry.tokens = None;
        let done = self.dir.join(DONE).join(format!("{now}-{}.json", entry.id));
        self.replace(&done, entry)?;
        let inflight = self.inflight_path(entry);
        std::fs::remove_file(&inflight).map_err(|source| JournalError::Io {
            action: "remove",
            path: inflight,
            source,
        })
    }

    /// Closes a sale with the outcome of its wait.
    pub fn resolve_outcome(&self, entry: &mut JournalEntry, outcome: &Outcome, now: i64) -> Result<(), JournalError> {
        let detail = match outcome {
            Outcome::Denied(why) => why.clone(),
            Outcome::Failed(error) => Some(match &error.error_description {
                Some(description) => format!("{}: {description}", error.error),
                None => error.error.to_string(),
            }),
            _ => None,
        };
        self.resolve(entry, SaleState::of(outcome), detail, now)
    }

    /// The open sales this process may pick up: its own, and those of
    /// processes that are gone (a live process is still waiting for its own).
    pub fn unresolved(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let mut entries = self.read_all(INFLIGHT)?;
        entries.retain(|entry| entry.pid == std::process::id() || !process_alive(entry.pid));
        entries.sort_by_key(|entry| entry.created_at);
        Ok(entries)
    }

    /// Every sale, open or closed, whose merchant reference (or sale code)
    /// is `reference`; newest first.
    pub fn find(&self, reference: &str) -> Result<Vec<JournalEntry>, JournalError> {
        let mut entries = self.read_all(INFLIGHT)?;
        entries.extend(self.read_all(DONE)?);
        entries.retain(|e| e.display_reference() == Some(reference) || e.code.as_deref() == Some(reference));
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.created_at));
        Ok(entries)
    }

    /// Closed sales, newest first.
    pub fn resolved(&self) -> Result<Vec<JournalEntry>, JournalError> {
        let mut entries = self.read_all(DONE)?;
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.resolved_at));
        Ok(entries)
    }

    fn inflight_path(&self, entry: &JournalEntry) -> PathBuf {
        self.dir.join(INFLIGHT).join(format!("{}.json", entry.key))
    }

    fn read_all(&self, sub: &str) -> Result<Vec<JournalEntry>, JournalError> {
        let dir = self.dir.join(sub);
        let io = |action, path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io { action, path, source }
        };
        let mut entries = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(io("read", &dir))? {
            let path = item.map_err(io("read", &dir))?.path();
            if path.extension().and_then(|e| e.to_str()) != Some("json") {
                continue;
            }
            let text = std::fs::read_to_string(&path).map_err(io("read", &path))?;
            let entry: JournalEntry = serde_json::from_str(&text).map_err(|e| JournalError::Corrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
            if entry.version != VERSION {
                return Err(JournalError::Corrupt {
                    path,
                    why: format!("record version {} (this outband-pos writes {VERSION})", entry.version),
                });
            }
            entries.push(entry);
        }
        Ok(entries)
    }

    /// Writes `entry` to a fresh temporary file (0600, synced) and returns its path.
    fn write_tmp(&self, entry: &JournalEntry) -> Result<PathBuf, JournalError> {
        let tmp = self.dir.join(format!(".{}.tmp", random_token()));
        let io = |source| JournalError::Io {
            action: "write",
            path: tmp.clone(),
            source,
        };
        let text = serde_json::to_vec_pretty(entry).map_err(|e| io(std::io::Error::other(e)))?;
        let mut file = private_file(&tmp).map_err(io)?;
        file.write_all(&text).map_err(io)?;
        file.sync_all().map_err(io)?;
        Ok(tmp)
    }

    /// Atomically replaces `path` with `entry`.
    fn replace(&self, path: &Path, entry: &JournalEntry) -> Result<(), JournalError> {
        let tmp = self.write_tmp(entry)?;
        std::fs::rename(&tmp, path).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            JournalError::Io {
                action: "write",
                path: path.to_owned(),
                source,
            }
        })
    }
}

#[cfg(unix)]
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
pub(super) fn private_file(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new().write(true).create_new(true).open(path)
}

pub(super) fn create_private_dir(path: &Path) -> Result<(), JournalError> {
    let io = |source| JournalError::Io {
        action: "create",
        path: path.to_owned(),
        source,
    };
    std::fs::create_dir_all(path).map_err(io)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        if let Some(parent) = path.parent() {
            std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o700)).map_err(io)?;
        }
    }
    Ok(())
}

/// Whether process `pid` runs (Linux: `/proc/<pid>`; elsewhere we cannot
/// tell cheaply and assume it is gone, so its sales are resumed).
fn process_alive(pid: u32) -> bool {
    cfg!(target_os = "linux") && Path::new(&format!("/proc/{pid}")).exists()
}

/// Why a journaled sale could not be started or picked up again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RecoverSaleError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A call to the server failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The sale belongs to another server or client.
    #[error("the open sale {reference} was started by client {client_id} at {issuer}; start outband-pos with those settings to resume it")]
    OtherClient {
        /// The sale's reference.
        reference: String,
        /// Where it was sent.
        issuer: String,
        /// By whom.
        client_id: String,
    },
    /// The client is not in the sale's delivery mode.
    #[error("the open sale {reference} waits in {mode} mode; this client is set up for {client_mode}")]
    Mode {
        /// The sale's reference.
        reference: String,
        /// The sale's mode.
        mode: DeliveryMode,
        /// The client's mode.
        client_mode: DeliveryMode,
    },
    /// The sale is already closed.
    #[error("the sale is already closed ({0:?})")]
    Resolved(SaleState),
}

/// What became of an open sale after a restart.
#[derive(Debug)]
pub enum Recovery {
    /// Still within its lifetime: wait for it as for a fresh sale.
    Wait(Box<Started>),
    /// Its time is up; this is how it ended (asked of the server once, in
    /// poll and ping mode).
    Finished {
        /// The sale (for its receipt, when it was approved).
        started: Box<Started>,
        /// How it ended.
        outcome: Outcome,
    },
    /// The customer approved and the payment call may or may not have gone
    /// through: make it again with the journaled idempotency key
    /// ([`CibaClient::settle`]).
    Pay {
        /// The sale.
        started: Box<Started>,
        /// The approved tokens.
        tokens: Box<TokenResponse>,
    },
    /// The till stopped before it learned the request's id: it can never be
    /// redeemed (close it as [`SaleState::Lost`]).
    Lost,
}

impl CibaClient {
    /// [`start`](Self::start) with the journal: the sale is written down
    /// first (refusing a reference in flight) and holds its `auth_req_id`
    /// before this returns. A sale the server refused is closed as failed.
    pub async fn start_journaled(
        &self,
        journal: &Journal,
        sale: SaleRequest,
    ) -> Result<(Started, JournalEntry), RecoverSaleError> {
        sale.validate().map_err(RequestError::Sale)?;
        let mut entry = journal.begin(self, &sale)?;
        match self.start(sale).await {
            Ok(started) => match journal.record_started(&mut entry, &started) {
                Ok(()) => Ok((started, entry)),
                Err(err) => {
                    // Unjournaled sales must not go on: withdraw it (best effort).
                    let _ = self.cancel(&started).await;
                    let _ = journal.resolve(&mut entry, SaleState::Cancelled, Some(err.to_string()), self.now());
                    Err(err.into())
                }
            },
            Err(err) => {
                journal.resolve(&mut entry, SaleState::Failed, Some(err.to_string()), self.now())?;
                Err(err.into())
            }
        }
    }

    /// Picks up an open sale of an earlier run. The client must be the one
    /// that started it, in the same delivery mode (with its listener for ping
    /// and push).
    pub async fn recover(&self, entry: &JournalEntry) -> Result<Recovery, RecoverSaleError> {
        let reference = entry.display_reference().unwrap_or("(no reference)").to_owned();
        if entry.issuer != self.issuer() || entry.client_id != self.client_id().as_str() {
            return Err(RecoverSaleError::OtherClient {
                reference,
                issuer: entry.issuer.clone(),
                client_id: entry.client_id.clone(),
            });
        }
        if entry.state.is_resolved() {
            return Err(RecoverSaleError::Resolved(entry.state));
        }
        let Some(parts) = entry.resume_parts() else {
            return Ok(Recovery::Lost);
        };
        if entry.mode != self.mode() {
            return Err(RecoverSaleError::Mode {
                reference,
                mode: entry.mode,
                client_mode: self.mode(),
            });
        }
        let expires_at = parts.expires_at;
        if let (SaleState::Paying, Some(tokens)) = (entry.state, &entry.tokens) {
            // Push sales have no listener to re-register with once approved.
            let started = Started::resume_approved(self, parts);
            return Ok(Recovery::Pay {
                started: Box::new(started),
                tokens: Box::new(tokens.clone()),
            });
        }
        let started = Started::resume(self, parts)?;
        let now = self.now();
        let grace = i64::try_from(GRACE.as_secs()).unwrap_or(0);
        tracing::info!(code = %started.code, mode = %started.mode, "resuming a journaled sale");
        if started.mode == DeliveryMode::Push {
            // Push tokens cannot be fetched; the server may still be retrying them.
            if now >= expires_at + grace {
                return Ok(Recovery::Finished {
                    started: Box::new(started),
                    outcome: Outcome::Expired,
                });
            }
        } else if now >= expires_at {
            let outcome = match self.poll(&started).await? {
                PollResult::Finished(outcome) => outcome,
                PollResult::Pending | PollResult::SlowDown => Outcome::Expired,
            };
            return Ok(Recovery::Finished {
                started: Box::new(started),
                outcome,
            });
        }
        Ok(Recovery::Wait(Box::new(started)))
    }
}

#[cfg(test)]
mod tests;
