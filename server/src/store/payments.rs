//! Payments executed through the resource API and their refunds
//! ([`crate::payments`] holds the rules; this file only stores).
//!
//! The three "only once" rules are constraints the database enforces, so they
//! hold across nodes and concurrent retries: one payment per authorisation
//! (`authorization_key` is unique), one payment or refund per client and
//! `Idempotency-Key` (unique pairs), and never more refunded than paid (the
//! refund's `UPDATE .. WHERE refunded_minor + $1 <= amount_minor`, in the same
//! transaction as the refund's row).

use outband_protocol::{ClientId, Subject};
use sqlx::any::AnyRow;

use super::{column, one_row, Store, StoreError, UnixTime};

/// A payment as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentRecord {
    /// `pay_<random>`.
    pub id: String,
    /// The client (merchant) that executed it.
    pub client_id: ClientId,
    /// The user who authorised it.
    pub debtor: Subject,
    /// The grant, or the access token's `jti`, that authorised it: unique.
    pub authorization_key: String,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: String,
    /// SHA-256 of the canonical request body, to tell a retry from a reuse of the key.
    pub request_hash: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The amount in minor units.
    pub amount_minor: i64,
    /// How much was refunded, in minor units.
    pub refunded_minor: i64,
    /// `remittanceInformationUnstructured`, for the merchant's lookup.
    pub reference: Option<String>,
    /// The payment_initiation detail executed (JSON, without `type`).
    pub details: String,
    /// When it was executed.
    pub created_at: UnixTime,
}

/// A refund as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefundRecord {
    /// `ref_<random>`.
    pub id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// The client that asked for it.
    pub client_id: ClientId,
    /// The client's `Idempotency-Key`.
    pub idempotency_key: String,
    /// SHA-256 of the canonical request, to tell a retry from a reuse of the key.
    pub request_hash: String,
    /// The amount in minor units.
    pub amount_minor: i64,
    /// Why, as the merchant said.
    pub reason: Option<String>,
    /// When it was made.
    pub created_at: UnixTime,
}

/// What [`Store::record_refund`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RefundOutcome {
    /// Recorded; the payment as it is now.
    Refunded(Box<PaymentRecord>),
    /// The client already used this `Idempotency-Key` for a refund.
    KeyTaken,
    /// The payment is unknown, or the amount is more than what remains.
    Exceeds,
}

const PAYMENT_COLUMNS: &str = "id, client_id, debtor, authorization_key, idempotency_key, request_hash, currency, \
                               amount_minor, refunded_minor, reference, details, created_at";
const REFUND_COLUMNS: &str =
    "id, payment_id, client_id, idempotency_key, request_hash, amount_minor, reason, created_at";
/// Most payments a reference lookup returns.
pub const MAX_REFERENCE_MATCHES: i64 = 100;

fn payment_from_row(row: &AnyRow) -> Result<PaymentRecord, StoreError> {
    Ok(PaymentRecord {
        id: column(row, "id")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        debtor: Subject::new(column::<String>(row, "debtor")?),
        authorization_key: column(row, "authorization_key")?,
        idempotency_key: column(row, "idempotency_key")?,
        request_hash: column(row, "request_hash")?,
        currency: column(row, "currency")?,
        amount_minor: column(row, "amount_minor")?,
        refunded_minor: column(row, "refunded_minor")?,
        reference: column(row, "reference")?,
        details: column(row, "details")?,
        created_at: column(row, "created_at")?,
    })
}

fn refund_from_row(row: &AnyRow) -> Result<RefundRecord, StoreError> {
    Ok(RefundRecord {
        id: column(row, "id")?,
        payment_id: column(row, "payment_id")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        idempotency_key: column(row, "idempotency_key")?,
        request_hash: column(row, "request_hash")?,
        amount_minor: column(row, "amount_minor")?,
        reason: column(row, "reason")?,
        created_at: column(row, "created_at")?,
    })
}

impl Store {
    /// Records an executed payment. `false` (nothing written) when its
    /// authorisation already paid or its client used the idempotency key.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %payment.client_id, payment_id = %payment.id), err(level = "debug"))]
    pub async fn insert_payment(&self, payment: &PaymentRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(&format!(
            "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) \
             ON CONFLICT DO NOTHING"
        ))
        .bind(payment.id.as_str())
        .bind(payment.client_id.as_str())
        .bind(payment.debtor.as_str())
        .bind(payment.authorization_key.as_str())
        .bind(payment.idempotency_key.as_str())
        .bind(payment.request_hash.as_str())
        .bind(payment.currency.as_str())
        .bind(payment.amount_minor)
        .bind(payment.refunded_minor)
        .bind(payment.reference.as_deref())
        .bind(payment.details.as_str())
        .bind(payment.created_at)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// The payment with this id.
    #[tracing::instrument(level = "debug", skip_all, fields(payment_id = %id), err(level = "debug"))]
    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// The payment `client` executed under `idempotency_key`.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client), err(level = "debug"))]
    pub async fn payment_by_idempotency_key(
        &self,
        client: &ClientId,
        idempotency_key: &str,
    ) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE client_id = $1 AND idempotency_key = $2"
        ))
        .bind(client.as_str())
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// The payment an authorisation (grant or token) executed.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn payment_by_authorization_key(&self, key: &str) -> Result<Option<PaymentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE authorization_key = $1"
        ))
        .bind(key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(payment_from_row).transpose()
    }

    /// `client`'s payments with this reference (of `debtor` only, when given),
    /// oldest first, at most [`MAX_REFERENCE_MATCHES`].
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client), err(level = "debug"))]
    pub async fn payments_by_reference(
        &self,
        client: &ClientId,
        reference: &str,
        debtor: Option<&Subject>,
    ) -> Result<Vec<PaymentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE client_id = $1 AND reference = $2 \
             AND ($3 IS NULL OR debtor = $3) ORDER BY created_at, id LIMIT $4"
        ))
        .bind(client.as_str())
        .bind(reference)
        .bind(debtor.map(Subject::as_str))
        .bind(MAX_REFERENCE_MATCHES)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payment_from_row).collect()
    }

    /// What `debtor` paid in `currency`, net of refunds, in minor units.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn net_paid_by_debtor(&self, debtor: &Subject, currency: &str) -> Result<i64, StoreError> {
        // SUM of a BIGINT is NUMERIC on PostgreSQL, which the Any driver cannot read.
        let row = sqlx::query(
            "SELECT CAST(COALESCE(SUM(amount_minor - refunded_minor), 0) AS BIGINT) AS net \
             FROM payments WHERE debtor = $1 AND currency = $2",
        )
        .bind(debtor.as_str())
        .bind(currency)
        .fetch_one(&self.pool)
        .await?;
        column(&row, "net")
    }

    /// The refund `client` asked for under `idempotency_key`.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client), err(level = "debug"))]
    pub async fn refund_by_idempotency_key(
        &self,
        client: &ClientId,
        idempotency_key: &str,
    ) -> Result<Option<RefundRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {REFUND_COLUMNS} FROM refunds WHERE client_id = $1 AND idempotency_key = $2"
        ))
        .bind(client.as_str())
        .bind(idempotency_key)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(refund_from_row).transpose()
    }

    /// Records a refund and adds it to its payment, in one transaction: the
    /// refund's row is written only when the payment has that much left.
    #[tracing::instrument(level = "debug", skip_all, fields(payment_id = %refund.payment_id), err(level = "debug"))]
    pub async fn record_refund(&self, refund: &RefundRecord) -> Result<RefundOutcome, StoreError> {
        let mut tx = self.pool.begin().await?;
        let inserted = sqlx::query(&format!(
            "INSERT INTO refunds ({REFUND_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING"
        ))
        .bind(refund.id.as_str())
        .bind(refund.payment_id.as_str())
        .bind(refund.client_id.as_str())
        .bind(refund.idempotency_key.as_str())
        .bind(refund.request_hash.as_str())
        .bind(refund.amount_minor)
        .bind(refund.reason.as_deref())
        .bind(refund.created_at)
        .execute(&mut *tx)
        .await?;
        if !one_row(&inserted) {
            return Ok(RefundOutcome::KeyTaken);
        }
        let row = sqlx::query(&format!(
            "UPDATE payments SET refunded_minor = refunded_minor + $1 \
             WHERE id = $2 AND client_id = $3 AND $1 > 0 AND refunded_minor + $1 <= amount_minor \
             RETURNING {PAYMENT_COLUMNS}"
        ))
        .bind(refund.amount_minor)
        .bind(refund.payment_id.as_str())
        .bind(refund.client_id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(row) = row else {
            // Dropping the transaction rolls the refund's row back.
            return Ok(RefundOutcome::Exceeds);
        };
        let payment = payment_from_row(&row)?;
        tx.commit().await?;
        Ok(RefundOutcome::Refunded(Box::new(payment)))
    }
}
