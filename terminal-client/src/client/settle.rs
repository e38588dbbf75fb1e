//! After approval: [`CibaClient::settle`] executes the payment exactly once.
//!
//! The order is what makes a crash harmless: the tokens and a fresh
//! `Idempotency-Key` are journaled ([`Journal::record_approved`]) *before*
//! `POST /api/payments` is sent. A till that dies before, during or after the
//! call finds the sale in state [`SaleState::Paying`] at its next start
//! ([`Recovery::Pay`](super::journal::Recovery::Pay)) and sends the same call
//! with the same key; the bank answers with the payment it already made.

use outband_protocol::TokenResponse;

use super::ciba::Started;
use super::journal::{Journal, JournalEntry, JournalError, SaleState};
use super::payments::PaymentError;
use super::receipt::Receipt;
use super::CibaClient;

/// How an approved sale ended.
#[derive(Clone, Debug)]
pub enum Settlement {
    /// The payment was executed: the receipt holds it.
    Paid(Box<Receipt>),
    /// The server has no payments API: the receipt of the grant (nothing was
    /// executed by this till).
    ApprovedOnly(Box<Receipt>),
    /// The bank refused the payment (nothing was charged).
    Refused {
        /// The API error code (`payment_mismatch`, `invalid_token`…).
        error: String,
        /// Its description.
        description: Option<String>,
    },
}

/// Why an approved sale could not be settled now.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettleError {
    /// The journal failed.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// Whether the payment went through is unknown; the sale stays open
    /// (state `paying`) and resuming it sends the same call again.
    #[error("the payment's outcome is unknown; the sale stays open and is retried with the same idempotency key")]
    Unknown(#[source] PaymentError),
}

impl CibaClient {
    /// Executes the payment of an approved sale and closes it in the journal.
    pub async fn settle(
        &self,
        journal: &Journal,
        entry: &mut JournalEntry,
        started: &Started,
        tokens: &TokenResponse,
    ) -> Result<Settlement, SettleError> {
        let receipt = match self.receipt(started, tokens) {
            Ok(receipt) => receipt,
            Err(err) => {
                let description = err.to_string();
                journal.resolve(entry, SaleState::Failed, Some(description.clone()), self.now())?;
                return Ok(Settlement::Refused {
                    error: "grant_mismatch".into(),
                    description: Some(description),
                });
            }
        };
        journal.record_approved(entry, tokens)?;
        let key = entry.idempotency_key.clone().unwrap_or_default();
        let paid = self
            .execute_payment(tokens, &started.sale, &started.reference, &key)
            .await;
        let paid = match paid {
            // The approval may have expired while the till was down: ask the
            // merchant's own view whether the earlier call went through.
            Err(PaymentError::Api { status: 401, .. }) if started.is_resumed() => {
                match self.payments_by_reference(&started.reference).await {
                    Ok(found) => match found.into_iter().find(|p| {
                        p.instructed_amount.amount == started.sale.amount.to_string()
                            && p.instructed_amount.currency == started.sale.currency.as_str()
                    }) {
                        Some(payment) => Ok(payment),
                        None => paid,
                    },
                    Err(_) => paid,
                }
            }
            other => other,
        };
        let now = self.now();
        match paid {
            Ok(payment) => {
                tracing::info!(payment_id = %payment.payment_id, code = %started.code, "payment executed");
                let detail = format!("payment {}", payment.payment_id);
                entry.payment = Some(payment.clone());
                journal.resolve(entry, SaleState::Approved, Some(detail), now)?;
                Ok(Settlement::Paid(Box::new(receipt.with_payment(payment))))
            }
            Err(PaymentError::NotAvailable) => {
                tracing::warn!("the server has no payments API; the receipt is the grant's");
                let detail = "approved; the server has no payments API, nothing was executed".to_owned();
                journal.resolve(entry, SaleState::Approved, Some(detail), now)?;
                Ok(Settlement::ApprovedOnly(Box::new(receipt)))
            }
            Err(err) if err.is_transient() => {
                tracing::warn!(error = %err, code = %started.code, "the payment's outcome is unknown");
                Err(SettleError::Unknown(err))
            }
            Err(err) => {
                let (error, description) = match err {
                    PaymentError::Api { error, description, .. } => (error, description),
                    other => ("payment_failed".to_owned(), Some(other.to_string())),
                };
                let detail = match &description {
                    Some(d) => format!("{error}: {d}"),
                    None => error.clone(),
                };
                journal.resolve(entry, SaleState::Failed, Some(detail), now)?;
                Ok(Settlement::Refused { error, description })
            }
        }
    }
}
