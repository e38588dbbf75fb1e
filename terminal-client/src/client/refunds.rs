//! Refunds through the journal: a refund is written down with its
//! `Idempotency-Key` *before* `POST /api/payments/{id}/refunds` is sent, and
//! closed when its outcome is known. A till that dies before, during or after
//! the call finds the refund still open at its next refund of that payment
//! ([`CibaClient::refund_journaled`]): it sends the same call with the same
//! key, the bank answers with the refund it already made, and the till
//! reports that stored outcome. A partial refund is never made twice.
//!
//! Layout, next to the sale journal (directories 0700, files 0600):
//! - `refunds/open/<hash of issuer, client and payment>.json`: the open refund
//!   of a payment (at most one: it is created exclusively).
//! - `refunds/done/<time>-<key hash>.json`: closed refunds, with their outcome.

use std::io::Write;
use std::path::{Path, PathBuf};

use outband_protocol::jose::sha256_b64url;
use serde::{Deserialize, Serialize};

use super::auth::random_token;
use super::journal::{create_private_dir, private_file, Journal, JournalError};
use super::payments::{PaymentError, Refund};
use super::sale::Amount;
use super::CibaClient;

const REFUNDS: &str = "refunds";
const OPEN: &str = "open";
const DONE: &str = "done";
/// Format version of a refund record.
const VERSION: u32 = 1;

/// One refund in the journal. `Debug` leaves out its idempotency key.
#[derive(Clone, Serialize, Deserialize)]
pub struct RefundEntry {
    version: u32,
    /// The issuer the refund is sent to.
    pub issuer: String,
    /// The client that sends it.
    pub client_id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// How much (`None`: all that was left when it was sent).
    pub amount: Option<Amount>,
    idempotency_key: String,
    /// When the record was made.
    pub created_at: i64,
    /// When the outcome was recorded.
    pub resolved_at: Option<i64>,
    /// The bank's refund, once known.
    pub refund: Option<Refund>,
    /// Why the bank refused it, when it did.
    pub error: Option<String>,
}

impl std::fmt::Debug for RefundEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefundEntry")
            .field("payment_id", &self.payment_id)
            .field("amount", &self.amount)
            .field("created_at", &self.created_at)
            .field("resolved_at", &self.resolved_at)
            .finish_non_exhaustive()
    }
}

impl RefundEntry {
    /// The `Idempotency-Key` every attempt of this refund sends.
    pub fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
}

/// How [`CibaClient::refund_journaled`] ended.
#[derive(Clone, Debug)]
pub enum RefundOutcome {
    /// The refund asked for was made now.
    Refunded(Box<Refund>),
    /// A refund an earlier run left open (it crashed, or the answer was lost)
    /// was sent again with its key: this is what the bank holds for it.
    /// `matches` says whether it is the refund asked for now (same amount);
    /// when it is not, the new one was **not** made.
    Recovered {
        /// The bank's refund.
        refund: Box<Refund>,
        /// The amount asked for now is the earlier one's.
        matches: bool,
    },
}

/// Why a journaled refund failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RefundError {
    /// The journal failed; nothing was sent.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// The bank refused (nothing was refunded); the record is closed.
    #[error(transparent)]
    Refused(PaymentError),
    /// Whether the refund went through is unknown: it stays open in the
    /// journal, and the next refund of this payment sends it again with the same key.
    #[error("the refund's outcome is unknown ({0}); it stays open and the next `refund` of this payment completes it")]
    Unknown(#[source] PaymentError),
}

impl Journal {
    fn refunds_dir(&self, sub: &str) -> Result<PathBuf, JournalError> {
        let dir = self.dir().join(REFUNDS).join(sub);
        create_private_dir(&dir)?;
        Ok(dir)
    }

    fn open_refund_path(&self, issuer: &str, client_id: &str, payment_id: &str) -> Result<PathBuf, JournalError> {
        let name = sha256_b64url(format!("{issuer}\n{client_id}\n{payment_id}").as_bytes());
        Ok(self.refunds_dir(OPEN)?.join(format!("{name}.json")))
    }

    /// The open refund of `payment_id` by `client`, if an earlier run left one.
    pub fn open_refund(&self, client: &CibaClient, payment_id: &str) -> Result<Option<RefundEntry>, JournalError> {
        let path = self.open_refund_path(client.issuer(), client.client_id().as_str(), payment_id)?;
        match std::fs::read_to_string(&path) {
            Ok(text) => parse(&path, &text).map(Some),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(JournalError::Io {
                action: "read",
                path,
                source,
            }),
        }
    }

    /// Writes a refund down with a fresh idempotency key, before it is sent.
    /// Refuses when the payment already has an open refund
    /// ([`JournalError::InFlight`]): complete that one first.
    pub fn begin_refund(
        &self,
        client: &CibaClient,
        payment_id: &str,
        amount: Option<Amount>,
    ) -> Result<RefundEntry, JournalError> {
        let entry = RefundEntry {
            version: VERSION,
            issuer: client.issuer().to_owned(),
            client_id: client.client_id().to_string(),
            payment_id: payment_id.to_owned(),
            amount,
            idempotency_key: random_token(),
            created_at: client.now(),
            resolved_at: None,
            refund: None,
            error: None,
        };
        let path = self.open_refund_path(&entry.issuer, &entry.client_id, payment_id)?;
        let tmp = self.write_refund_tmp(&entry)?;
        let linked = std::fs::hard_link(&tmp, &path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => Ok(entry),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(JournalError::InFlight(format!("refund of {payment_id}")))
            }
            Err(source) => Err(JournalError::Io {
                action: "create",
                path,
                source,
            }),
        }
    }

    /// Closes a refund with the bank's answer: the record moves to `refunds/done/`.
    pub fn resolve_refund(
        &self,
        entry: &mut RefundEntry,
        outcome: Result<&Refund, String>,
        now: i64,
    ) -> Result<(), JournalError> {
        match outcome {
            Ok(refund) => entry.refund = Some(refund.clone()),
            Err(error) => entry.error = Some(error),
        }
        entry.resolved_at = Some(now);
        let name = sha256_b64url(entry.idempotency_key.as_bytes());
        let done = self.refunds_dir(DONE)?.join(format!("{now}-{name}.json"));
        let tmp = self.write_refund_tmp(entry)?;
        std::fs::rename(&tmp, &done).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            JournalError::Io {
                action: "write",
                path: done.clone(),
                source,
            }
        })?;
        let open = self.open_refund_path(&entry.issuer, &entry.client_id, &entry.payment_id)?;
        std::fs::remove_file(&open).map_err(|source| JournalError::Io {
            action: "remove",
            path: open,
            source,
        })
    }

    /// Closed refunds, newest first.
    pub fn refunds(&self) -> Result<Vec<RefundEntry>, JournalError> {
        let dir = self.refunds_dir(DONE)?;
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io {
                action: "read",
                path,
                source,
            }
        };
        let mut entries = Vec::new();
        for item in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = item.map_err(io(&dir))?.path();
            if path.extension().and_then(|e| e.to_str()) == Some("json") {
                let text = std::fs::read_to_string(&path).map_err(io(&path))?;
                entries.push(parse(&path, &text)?);
            }
        }
        entries.sort_by_key(|entry| std::cmp::Reverse(entry.resolved_at));
        Ok(entries)
    }

    fn write_refund_tmp(&self, entry: &RefundEntry) -> Result<PathBuf, JournalError> {
        let tmp = self.dir().join(format!(".{}.tmp", random_token()));
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
}

fn parse(path: &Path, text: &str) -> Result<RefundEntry, JournalError> {
    let entry: RefundEntry = serde_json::from_str(text).map_err(|e| JournalError::Corrupt {
        path: path.to_owned(),
        why: e.to_string(),
    })?;
    if entry.version != VERSION {
        return Err(JournalError::Corrupt {
            path: path.to_owned(),
            why: format!(
                "refund record version {} (this outband-pos writes {VERSION})",
                entry.version
            ),
        });
    }
    Ok(entry)
}

impl CibaClient {
    /// Refunds `amount` (the rest when `None`) of a payment through the
    /// journal, so that a crash can never refund twice.
    ///
    /// When an earlier run left a refund of this payment open, that refund is
    /// sent again with its own key and amount first, and its stored outcome is
    /// returned ([`RefundOutcome::Recovered`]); the refund asked for now is
    /// then not made (run it again if it is still wanted). Otherwise the
    /// refund is journaled with a fresh key, sent, and closed with the answer.
    pub async fn refund_journaled(
        &self,
        journal: &Journal,
        payment_id: &str,
        amount: Option<Amount>,
    ) -> Result<RefundOutcome, RefundError> {
        if let Some(mut open) = journal.open_refund(self, payment_id)? {
            tracing::info!(payment_id, "completing a refund an earlier run left open");
            let refund = self.send_refund(journal, &mut open).await?;
            return Ok(RefundOutcome::Recovered {
                refund: Box::new(refund),
                matches: open.amount == amount,
            });
        }
        let mut entry = journal.begin_refund(self, payment_id, amount)?;
        let refund = self.send_refund(journal, &mut entry).await?;
        Ok(RefundOutcome::Refunded(Box::new(refund)))
    }

    /// Sends the journaled refund `entry` and records the answer; an unknown
    /// outcome leaves it open.
    async fn send_refund(&self, journal: &Journal, entry: &mut RefundEntry) -> Result<Refund, RefundError> {
        match self
            .refund(&entry.payment_id, entry.amount, &entry.idempotency_key)
            .await
        {
            Ok(refund) => {
                journal.resolve_refund(entry, Ok(&refund), self.now())?;
                Ok(refund)
            }
            Err(err) if err.is_transient() => Err(RefundError::Unknown(err)),
            Err(err) => {
                journal.resolve_refund(entry, Err(err.to_string()), self.now())?;
                Err(RefundError::Refused(err))
            }
        }
    }
}
