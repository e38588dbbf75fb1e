//! The resource API's domain: payments executed with the access tokens the
//! authorization server issued, refunds, and demo account information. The
//! HTTP side is [`crate::endpoints::api`]; the rules live here:
//!
//! - A payment must equal the `payment_initiation` authorization detail
//!   ([RFC 9396](https://www.rfc-editor.org/rfc/rfc9396)) the user approved for
//!   the token: amount (as a decimal), currency, creditor name and account,
//!   remittance information. Anything else is `payment_mismatch`.
//! - An authorisation pays once: each approved payment of a grant (or, for a
//!   token without one, the token's `jti`) is unique among payments, so a
//!   refreshed token of the same grant cannot pay again either; a grant that
//!   holds several payments (Grant Management `merge`) pays each once.
//! - Every write is idempotent per client and `Idempotency-Key`: a retry with the
//!   same body gets the same answer, the key with another body is
//!   `idempotency_key_reused`. The keys are stored, so this survives restarts
//!   and holds across nodes.
//! - Refunds never exceed what was paid (checked by the database, see
//!   [`crate::store::Store::record_refund`]).
//!
//! Amounts are integers of the currency's minor unit ([`amount`]).

pub mod accounts;
pub mod amount;

use std::borrow::Cow;

use axum::http::StatusCode;
use outband_protocol::jose::sha256_b64url;
use outband_protocol::{ErrorCode, Subject};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

use crate::auth::resource::{challenge_error, ResourceAuth};
use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::{PaymentRecord, RefundOutcome, RefundRecord};
use crate::tokens::random_token;

/// The scope that lets a token execute and read payments.
pub const SCOPE_PAYMENTS: &str = "payments";
/// The scope of the merchant's refund calls.
pub const SCOPE_REFUNDS: &str = "refunds";
/// The scope of account information.
pub const SCOPE_ACCOUNTS: &str = "accounts";
/// The authorization detail type a payment must match.
pub const PAYMENT_INITIATION: &str = "payment_initiation";
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;
/// Longest refund reason accepted.
const MAX_REASON_LEN: usize = 500;

/// A payment: the `payment_initiation` authorization detail without `type`
/// (wire names as in RFC 9396 and the Berlin Group API).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentInitiation {
    /// What to pay.
    pub instructed_amount: InstructedAmount,
    /// Who is paid.
    pub creditor_name: String,
    /// The payee's account (`{"iban": ..}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creditor_account: Option<Map<String, Value>>,
    /// The reference the merchant looks payments up by.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remittance_information_unstructured: Option<String>,
}

/// An amount and its currency.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstructedAmount {
    /// ISO 4217 code.
    pub currency: String,
    /// A decimal, as a string (a JSON number is read as its text).
    #[serde(deserialize_with = "decimal_text")]
    pub amount: String,
}

fn decimal_text<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<String, D::Error> {
    match Value::deserialize(deserializer)? {
        Value::String(text) => Ok(text),
        Value::Number(number) => Ok(number.to_string()),
        _ => Err(serde::de::Error::custom("amount must be a decimal string")),
    }
}

/// A validated payment in canonical form: amount with the currency's decimals,
/// IBAN without spaces and upper-case. Two requests for the same payment are
/// equal in this form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payment {
    /// The canonical detail.
    pub detail: PaymentInitiation,
    /// The amount in minor units.
    pub minor: i64,
}

impl Payment {
    /// Validates and canonicalises `detail`; the error names the field.
    pub fn new(mut detail: PaymentInitiation) -> std::result::Result<Self, &'static str> {
        let currency = &detail.instructed_amount.currency;
        if !amount::is_currency(currency) {
            return Err("instructedAmount.currency must be an ISO 4217 code");
        }
        let minor = amount::parse_minor(&detail.instructed_amount.amount, currency)
            .filter(|&m| m > 0)
            .ok_or("instructedAmount.amount must be a positive decimal with the currency's decimals")?;
        detail.instructed_amount.amount = amount::format_minor(minor, currency);
        if detail.creditor_name.trim().is_empty() {
            return Err("creditorName must not be empty");
        }
        if let Some(Value::String(iban)) = detail.creditor_account.as_mut().and_then(|a| a.get_mut("iban")) {
            *iban = iban
                .chars()
                .filter(|c| !c.is_whitespace())
                .collect::<String>()
                .to_uppercase();
        }
        Ok(Self { detail, minor })
    }

    fn currency(&self) -> &str {
        &self.detail.instructed_amount.currency
    }

    /// The hash that tells a retry (same payment) from a reuse of its key.
    fn request_hash(&self) -> Result<String> {
        let text = serde_json::to_string(&self.detail).map_err(|e| Error::internal(e.to_string()))?;
        Ok(sha256_b64url(text.as_bytes()))
    }
}

/// Where a payment stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentStatus {
    /// Paid, nothing refunded.
    Executed,
    /// Part of it was refunded.
    PartiallyRefunded,
    /// All of it was refunded.
    Refunded,
}

/// What the API answers for a payment.
#[derive(Clone, Debug, Serialize)]
pub struct Receipt {
    /// `pay_<random>`.
    pub payment_id: String,
    /// Where it stands.
    pub status: PaymentStatus,
    /// The payment as executed.
    #[serde(flatten)]
    pub payment: PaymentInitiation,
    /// The paying user (`sub`).
    pub debtor: String,
    /// The merchant client.
    pub client_id: String,
    /// RFC 3339.
    pub created_at: String,
    /// How much was refunded, a decimal in the payment's currency.
    pub refunded_amount: String,
}

impl Receipt {
    /// The receipt of a stored payment.
    pub fn of(record: &PaymentRecord) -> Result<Self> {
        let payment: PaymentInitiation = serde_json::from_str(&record.details)
            .map_err(|e| Error::internal(format!("payment {}: stored details: {e}", record.id)))?;
        let status = match record.refunded_minor {
            0 => PaymentStatus::Executed,
            r if r >= record.amount_minor => PaymentStatus::Refunded,
            _ => PaymentStatus::PartiallyRefunded,
        };
        Ok(Self {
            payment_id: record.id.clone(),
            status,
            payment,
            debtor: record.debtor.to_string(),
            client_id: record.client_id.to_string(),
            created_at: rfc3339(record.created_at),
            refunded_amount: amount::format_minor(record.refunded_minor, &record.currency),
        })
    }
}

/// What the API answers for a refund.
#[derive(Clone, Debug, Serialize)]
pub struct RefundReceipt {
    /// `ref_<random>`.
    pub refund_id: String,
    /// The payment refunded.
    pub payment_id: String,
    /// A decimal in the payment's currency.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Why, as the merchant said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// RFC 3339.
    pub created_at: String,
    /// The payment as it is now.
    pub payment: Receipt,
}

/// The body of a refund request.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefundRequest {
    /// How much; absent means whatever is left.
    #[serde(default, deserialize_with = "optional_decimal_text")]
    pub amount: Option<String>,
    /// Why.
    #[serde(default)]
    pub reason: Option<String>,
}

fn optional_decimal_text<'de, D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Option<String>, D::Error> {
    decimal_text(deserializer).map(Some)
}

/// RFC 3339 of a unix time (the epoch if out of range, which stored times never are).
pub fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00Z".to_owned())
}

/// An error of the resource API with its own code.
fn api_error(code: &'static str, status: StatusCode, description: impl Into<Cow<'static, str>>) -> Error {
    Error::new(ErrorCode::Extension(code.into()), description).with_status(status)
}

fn mismatch(description: &'static str) -> Error {
    api_error("payment_mismatch", StatusCode::FORBIDDEN, description)
}

fn key_reused() -> Error {
    api_error(
        "idempotency_key_reused",
        StatusCode::UNPROCESSABLE_ENTITY,
        "this Idempotency-Key was used for a different request",
    )
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such payment").with_status(StatusCode::NOT_FOUND)
}

/// 403 `insufficient_scope` unless the token is a user's (`sub`).
pub fn user_of<'a>(auth: &'a ResourceAuth, scope: &'static str) -> Result<&'a Subject> {
    auth.subject().ok_or_else(|| {
        challenge_error(
            auth.scheme,
            ErrorCode::InsufficientScope,
            "this call needs a token a user authorised".into(),
            Some(scope),
        )
    })
}

/// The payment_initiation details the token was issued with, canonical.
fn authorised_payments(auth: &ResourceAuth) -> Vec<Payment> {
    let details: Vec<Value> = auth
        .token
        .authorization_details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    details
        .into_iter()
        .filter(|d| d.get("type").and_then(Value::as_str) == Some(PAYMENT_INITIATION))
        .filter_map(|d| serde_json::from_value::<PaymentInitiation>(d).ok())
        .filter_map(|d| Payment::new(d).ok())
        .collect()
}

/// Executes `payment` with the token of `auth` (scope `payments`), once per
/// authorisation and idempotently under `idempotency_key`.
pub async fn execute(
    state: &AppState,
    auth: &ResourceAuth,
    idempotency_key: &str,
    payment: Payment,
) -> Result<Receipt> {
    auth.require_scope(SCOPE_PAYMENTS)?;
    let client_id = auth.client_id();
    let request_hash = payment.request_hash()?;
    if let Some(done) = state
        .store
        .payment_by_idempotency_key(client_id, idempotency_key)
        .await?
    {
        return replay(&done, &request_hash);
    }
    let mut authorised = authorised_payments(auth);
    // A token of a lodging-intent payment consent authorises the consent's payment.
    authorised.extend(crate::consents::payment_of_token(state, auth).await?);
    if authorised.is_empty() {
        return Err(mismatch("the access token authorises no payment (payment_initiation)"));
    }
    let debtor = user_of(auth, SCOPE_PAYMENTS)?;
    let Some(approved) = authorised.iter().find(|a| **a == payment) else {
        return Err(mismatch(
            "the payment differs from the one the user authorised (amount, currency, creditor or reference)",
        ));
    };
    // Once per approved payment of a grant: a grant may hold several payments
    // (Grant Management merge), each is paid once; the key uses the detail as
    // approved, so another spelling of the same amount is the same payment.
    let authorization_key = match &auth.token.grant_id {
        Some(grant) => format!("grant:{grant}:{}", approved.request_hash()?),
        None => format!("token:{}", auth.token.jti),
    };
    let record = PaymentRecord {
        id: format!("pay_{}", random_token()),
        client_id: client_id.clone(),
        debtor: debtor.clone(),
        authorization_key,
        idempotency_key: idempotency_key.to_owned(),
        request_hash: request_hash.clone(),
        currency: payment.currency().to_owned(),
        amount_minor: payment.minor,
        refunded_minor: 0,
        reference: payment.detail.remittance_information_unstructured.clone(),
        details: serde_json::to_string(&payment.detail).map_err(|e| Error::internal(e.to_string()))?,
        created_at: state.now(),
    };
    if state.store.insert_payment(&record).await? {
        tracing::info!(client_id = %client_id, payment_id = %record.id, "payment executed");
        crate::consents::consume(state, auth).await;
        return Receipt::of(&record);
    }
    // Lost a race: a retry with this key, or this authorisation already paid.
    if let Some(done) = state
        .store
        .payment_by_idempotency_key(client_id, idempotency_key)
        .await?
    {
        return replay(&done, &request_hash);
    }
    let paid = state
        .store
        .payment_by_authorization_key(&record.authorization_key)
        .await?;
    Err(Error::Detailed {
        code: ErrorCode::Extension("payment_already_executed".into()),
        description: "this authorisation was already used for a payment".into(),
        status: StatusCode::CONFLICT,
        fields: paid
            .map(|p| Map::from_iter([("payment_id".to_owned(), json!(p.id))]))
            .unwrap_or_default(),
    })
}

fn replay(done: &PaymentRecord, request_hash: &str) -> Result<Receipt> {
    if done.request_hash != request_hash {
        return Err(key_reused());
    }
    Receipt::of(done)
}

/// Whether `auth` may see `payment`: the same client, and for a user's token
/// the same user.
fn visible(auth: &ResourceAuth, payment: &PaymentRecord) -> bool {
    payment.client_id == *auth.client_id() && auth.subject().is_none_or(|s| *s == payment.debtor)
}

/// The payment `id`, for a token (scope `payments`) that may see it.
pub async fn find(state: &AppState, auth: &ResourceAuth, id: &str) -> Result<Receipt> {
    auth.require_scope(SCOPE_PAYMENTS)?;
    let payment = state.store.payment(id).await?.filter(|p| visible(auth, p));
    Receipt::of(&payment.ok_or_else(not_found)?)
}

/// The client's payments with this `remittanceInformationUnstructured`.
pub async fn by_reference(state: &AppState, auth: &ResourceAuth, reference: &str) -> Result<Vec<Receipt>> {
    auth.require_scope(SCOPE_PAYMENTS)?;
    let found = state
        .store
        .payments_by_reference(auth.client_id(), reference, auth.subject())
        .await?;
    found.iter().map(Receipt::of).collect()
}

/// Refunds (part of) payment `id` with the merchant's client-credentials token
/// (scope `refunds`), idempotently under `idempotency_key`.
pub async fn refund(
    state: &AppState,
    auth: &ResourceAuth,
    id: &str,
    idempotency_key: &str,
    request: RefundRequest,
) -> Result<RefundReceipt> {
    auth.require_scope(SCOPE_REFUNDS)?;
    if auth.subject().is_some() {
        return Err(challenge_error(
            auth.scheme,
            ErrorCode::InsufficientScope,
            "refunds need the merchant's client-credentials token".into(),
            Some(SCOPE_REFUNDS),
        ));
    }
    let client_id = auth.client_id();
    let reason = request.reason.filter(|r| !r.is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > MAX_REASON_LEN) {
        return Err(Error::invalid_request("reason is too long"));
    }
    let request_hash = sha256_b64url(
        json!({ "payment_id": id, "amount": request.amount, "reason": reason })
            .to_string()
            .as_bytes(),
    );
    if let Some(done) = state
        .store
        .refund_by_idempotency_key(client_id, idempotency_key)
        .await?
    {
        return refund_replay(state, &done, &request_hash).await;
    }
    let payment = state
        .store
        .payment(id)
        .await?
        .filter(|p| visible(auth, p))
        .ok_or_else(not_found)?;
    let remaining = payment.amount_minor.saturating_sub(payment.refunded_minor);
    let minor = match &request.amount {
        Some(text) => amount::parse_minor(text, &payment.currency)
            .filter(|&m| m > 0)
            .ok_or_else(|| Error::invalid_request("amount must be a positive decimal with the currency's decimals"))?,
        None => remaining,
    };
    let exceeds = || {
        api_error(
            "refund_exceeds_payment",
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "at most {} {} of this payment can still be refunded",
                amount::format_minor(remaining, &payment.currency),
                payment.currency
            ),
        )
    };
    if minor == 0 || minor > remaining {
        return Err(exceeds());
    }
    let record = RefundRecord {
        id: format!("ref_{}", random_token()),
        payment_id: payment.id.clone(),
        client_id: client_id.clone(),
        idempotency_key: idempotency_key.to_owned(),
        request_hash: request_hash.clone(),
        amount_minor: minor,
        reason,
        created_at: state.now(),
    };
    match state.store.record_refund(&record).await? {
        RefundOutcome::Refunded(updated) => {
            tracing::info!(client_id = %client_id, payment_id = %updated.id, refund_id = %record.id, "payment refunded");
            refund_receipt(&record, &updated)
        }
        RefundOutcome::Exceeds => Err(exceeds()),
        RefundOutcome::KeyTaken => {
            let done = state
                .store
                .refund_by_idempotency_key(client_id, idempotency_key)
                .await?
                .ok_or_else(|| Error::internal("a refund's idempotency key vanished"))?;
            refund_replay(state, &done, &request_hash).await
        }
    }
}

async fn refund_replay(state: &AppState, done: &RefundRecord, request_hash: &str) -> Result<RefundReceipt> {
    if done.request_hash != request_hash {
        return Err(key_reused());
    }
    let payment = state
        .store
        .payment(&done.payment_id)
        .await?
        .ok_or_else(|| Error::internal("a refund's payment vanished"))?;
    refund_receipt(done, &payment)
}

fn refund_receipt(refund: &RefundRecord, payment: &PaymentRecord) -> Result<RefundReceipt> {
    Ok(RefundReceipt {
        refund_id: refund.id.clone(),
        payment_id: payment.id.clone(),
        amount: amount::format_minor(refund.amount_minor, &payment.currency),
        currency: payment.currency.clone(),
        reason: refund.reason.clone(),
        created_at: rfc3339(refund.created_at),
        payment: Receipt::of(payment)?,
    })
}
