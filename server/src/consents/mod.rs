//! Lodging-intent consent resources: a client first creates a consent by API
//! (`POST /open-banking/consents`, [`crate::endpoints::consents`]), then names
//! it in an authorization request, where the user authorises or rejects it.
//! One resource serves both ecosystems that work this way
//! (contract and mapping: `docs/consents.md`):
//!
//! - Open Finance Brasil names it in the dynamic scope `consent:{consentId}`;
//! - UK Open Banking in the `openbanking_intent_id` claim of the `claims`
//!   parameter (and gets that claim back in the ID token).
//!
//! The state machine ([`Status`]):
//!
//! ```text
//! AwaitingAuthorisation ──user approves──► Authorised ──payment executed──► Consumed
//!        │ user denies / DELETE / window closes       │ DELETE (tokens revoked)
//!        ▼                                            ▼
//!     Rejected                                     Revoked        (Expired: past expirationDateTime)
//! ```
//!
//! Each move is one conditional update in the store, so it happens once. An
//! authorised consent is bound to the grant of the tokens the authorization
//! issued (`grant_id`); the resource API finds it through the token.
//!
//! - [`wire`]: the JSON of the API (requests, responses, Brazil and UK status names);
//! - [`authorize`]: checking the consent an authorization request names, and the
//!   user's decision;
//! - this file: the API's operations and the resource API's checks.

pub mod authorize;
pub mod wire;

use std::borrow::Cow;

use axum::http::StatusCode;
use outband_protocol::ErrorCode;
use serde_json::Value;

use crate::auth::resource::{challenge_error, ResourceAuth};
use crate::error::{Error, Result};
use crate::payments::{Payment, PaymentInitiation};
use crate::state::AppState;
use crate::store::{ConsentRecord, ConsentRejection, UnixTime};
use crate::tokens::random_token;

/// The scope of the consent API's client-credentials tokens.
pub const SCOPE_CONSENTS: &str = "consents";
/// The prefix of the Open Finance Brasil dynamic scope `consent:{consentId}`.
pub const CONSENT_SCOPE_PREFIX: &str = "consent:";
/// The prefix of consent ids.
pub const CONSENT_ID_PREFIX: &str = "urn:outband:";
/// How long the user has to authorise a consent after its creation, in seconds
/// (Open Finance Brasil: 60 minutes, then it is rejected with `CONSENT_EXPIRED`).
pub const AUTHORISATION_WINDOW: i64 = 3600;
/// The longest `expirationDateTime` accepted, in seconds from now (one year).
pub const MAX_VALIDITY: i64 = 366 * 24 * 3600;

/// Where a consent stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Created, waiting for the user.
    AwaitingAuthorisation,
    /// The user approved it; its tokens work.
    Authorised,
    /// The user denied it, the client deleted it before authorisation, or the
    /// authorisation window closed.
    Rejected,
    /// Its payment was executed; it cannot be used again.
    Consumed,
    /// The client deleted it after authorisation; its tokens were revoked.
    Revoked,
    /// Authorised, but past its `expirationDateTime` (never stored: derived).
    Expired,
}

impl Status {
    /// The stored (and UK Open Banking) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AwaitingAuthorisation => "AwaitingAuthorisation",
            Self::Authorised => "Authorised",
            Self::Rejected => "Rejected",
            Self::Consumed => "Consumed",
            Self::Revoked => "Revoked",
            Self::Expired => "Expired",
        }
    }

    /// The Open Finance Brasil name: there is no revoked or expired consent
    /// there, only a rejected one with a reason.
    pub fn brazil(self) -> &'static str {
        match self {
            Self::AwaitingAuthorisation => "AWAITING_AUTHORISATION",
            Self::Authorised => "AUTHORISED",
            Self::Rejected | Self::Revoked | Self::Expired => "REJECTED",
            Self::Consumed => "CONSUMED",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            Self::AwaitingAuthorisation,
            Self::Authorised,
            Self::Rejected,
            Self::Consumed,
            Self::Revoked,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// Who rejected a consent and why (Open Finance Brasil `rejection`).
pub mod reason {
    use crate::store::ConsentRejection;

    /// The user denied it on the consent page.
    pub const USER_REJECTED: ConsentRejection<'static> = ConsentRejection {
        by: "USER",
        reason: "CUSTOMER_MANUALLY_REJECTED",
    };
    /// The client deleted it (at the user's request) after authorisation.
    pub const USER_REVOKED: ConsentRejection<'static> = ConsentRejection {
        by: "USER",
        reason: "CUSTOMER_MANUALLY_REVOKED",
    };
    /// The authorisation window closed.
    pub const EXPIRED: ConsentRejection<'static> = ConsentRejection {
        by: "ASPSP",
        reason: "CONSENT_EXPIRED",
    };
    /// Past `expirationDateTime`.
    pub const MAX_DATE: ConsentRejection<'static> = ConsentRejection {
        by: "ASPSP",
        reason: "CONSENT_MAX_DATE_REACHED",
    };
}

/// A consent's status now, with expiry applied, and the rejection that goes with it.
pub fn effective_status(record: &ConsentRecord, now: UnixTime) -> (Status, Option<ConsentRejection<'_>>) {
    let stored = Status::parse(&record.status).unwrap_or(Status::Rejected);
    let recorded = record
        .rejected_by
        .as_deref()
        .zip(record.rejection_reason.as_deref())
        .map(|(by, reason)| ConsentRejection { by, reason });
    match stored {
        Status::AwaitingAuthorisation if now >= record.authorise_by => (Status::Rejected, Some(reason::EXPIRED)),
        Status::Authorised if record.expires_at.is_some_and(|at| now >= at) => {
            (Status::Expired, Some(reason::MAX_DATE))
        }
        other => (other, recorded),
    }
}

/// An error of the consent API with its own code.
pub(crate) fn consent_error(
    code: &'static str,
    status: StatusCode,
    description: impl Into<Cow<'static, str>>,
) -> Error {
    Error::new(ErrorCode::Extension(code.into()), description).with_status(status)
}

fn not_found() -> Error {
    Error::new(ErrorCode::NotFound, "no such consent").with_status(StatusCode::NOT_FOUND)
}

/// Scope `consents` on a client-credentials token (the client's own, no user).
fn require_client_token(auth: &ResourceAuth) -> Result<()> {
    auth.require_scope(SCOPE_CONSENTS)?;
    if auth.subject().is_some() {
        return Err(challenge_error(
            auth.scheme,
            ErrorCode::InsufficientScope,
            "the consent API needs the client's client-credentials token".into(),
            Some(SCOPE_CONSENTS),
        ));
    }
    Ok(())
}

/// `POST /open-banking/consents`: validates `body` and stores an
/// `AwaitingAuthorisation` consent of the caller's client.
pub async fn create(state: &AppState, auth: &ResourceAuth, body: &[u8]) -> Result<ConsentRecord> {
    require_client_token(auth)?;
    let now = state.now();
    let request = wire::parse_request(body, now)?;
    let record = ConsentRecord {
        id: format!("{CONSENT_ID_PREFIX}{}", random_token()),
        client_id: auth.client_id().clone(),
        kind: request.kind.to_owned(),
        status: Status::AwaitingAuthorisation.as_str().to_owned(),
        permissions: request.permissions,
        payment: request.payment,
        logged_user: request.logged_user,
        subject: None,
        grant_id: None,
        intent_claim: false,
        rejected_by: None,
        rejection_reason: None,
        created_at: now,
        status_updated_at: now,
        authorise_by: now + AUTHORISATION_WINDOW,
        expires_at: request.expires_at,
    };
    state.store.insert_consent(&record).await?;
    tracing::info!(client_id = %record.client_id, consent_id = %record.id, kind = %record.kind, "consent created");
    Ok(record)
}

/// The consent `id` of the caller's client: 404 when unknown, 403 when another
/// client's.
pub async fn owned(state: &AppState, auth: &ResourceAuth, id: &str) -> Result<ConsentRecord> {
    require_client_token(auth)?;
    let record = state.store.consent(id).await?.ok_or_else(not_found)?;
    if record.client_id != *auth.client_id() {
        return Err(consent_error(
            "access_denied",
            StatusCode::FORBIDDEN,
            "this consent belongs to another client",
        ));
    }
    Ok(record)
}

/// `DELETE /open-banking/consents/{id}`: an `AwaitingAuthorisation` consent is
/// rejected, an `Authorised` one revoked (and every token of its grant with
/// it); any other is `422 consent_status_invalid`.
pub async fn delete(state: &AppState, auth: &ResourceAuth, id: &str) -> Result<()> {
    let record = owned(state, auth, id).await?;
    let now = state.now();
    let (status, _) = effective_status(&record, now);
    let moved = match status {
        Status::AwaitingAuthorisation => {
            state
                .store
                .move_consent(
                    id,
                    status.as_str(),
                    Status::Rejected.as_str(),
                    Some(reason::USER_REJECTED),
                    now,
                )
                .await?
        }
        Status::Authorised => {
            let moved = state
                .store
                .move_consent(
                    id,
                    status.as_str(),
                    Status::Revoked.as_str(),
                    Some(reason::USER_REVOKED),
                    now,
                )
                .await?;
            if moved {
                if let Some(grant) = record.grant_id.as_deref() {
                    let revoked = state.store.revoke_tokens_of_grant(grant).await?;
                    tracing::info!(consent_id = %id, revoked, "consent revoked with its tokens");
                }
            }
            moved
        }
        other => return Err(status_invalid(other, "deleted")),
    };
    if moved {
        return Ok(());
    }
    // Someone else moved it in between: report what it is now.
    let now_status = state
        .store
        .consent(id)
        .await?
        .map_or(Status::Rejected, |r| effective_status(&r, now).0);
    Err(status_invalid(now_status, "deleted"))
}

/// A grant was revoked (by the user, or by the client through the grant
/// management API): the consent it carries, when authorised, is revoked with
/// it, so the consent API tells the truth about the tokens being dead.
pub async fn revoke_with_grant(state: &AppState, grant_id: &str) -> Result<()> {
    let Some(record) = state.store.consent_by_grant(grant_id).await? else {
        return Ok(());
    };
    let now = state.now();
    if effective_status(&record, now).0 == Status::Authorised {
        state
            .store
            .move_consent(
                &record.id,
                Status::Authorised.as_str(),
                Status::Revoked.as_str(),
                Some(reason::USER_REVOKED),
                now,
            )
            .await?;
    }
    Ok(())
}

/// `422 consent_status_invalid`: the consent's status does not allow `what`
/// (Open Finance Brasil answers 422 to a DELETE of a rejected consent).
pub(crate) fn status_invalid(status: Status, what: &str) -> Error {
    consent_error(
        "consent_status_invalid",
        StatusCode::UNPROCESSABLE_ENTITY,
        format!("the consent is {}; it cannot be {what}", status.as_str()),
    )
}

/// The consent bound to the token of `auth` (through its grant), if any.
pub async fn of_token(state: &AppState, auth: &ResourceAuth) -> Result<Option<ConsentRecord>> {
    match auth.token.grant_id.as_deref() {
        Some(grant) => Ok(state.store.consent_by_grant(grant).await?),
        None => Ok(None),
    }
}

fn not_authorised(status: Status) -> Error {
    consent_error(
        "consent_not_authorised",
        StatusCode::FORBIDDEN,
        format!("the consent of this access token is {}", status.as_str()),
    )
}

/// The payment a consent-bound token authorises: the consent's, while it is
/// `Authorised` (or `Consumed`, so that a second payment meets
/// `payment_already_executed`). `None` for a token without a payment consent.
pub async fn payment_of_token(state: &AppState, auth: &ResourceAuth) -> Result<Option<Payment>> {
    let Some(record) = of_token(state, auth).await? else {
        return Ok(None);
    };
    let Some(payment) = record.payment.as_deref() else {
        return Ok(None);
    };
    match effective_status(&record, state.now()).0 {
        Status::Authorised | Status::Consumed => {}
        other => return Err(not_authorised(other)),
    }
    let detail: PaymentInitiation = serde_json::from_str(payment)
        .map_err(|e| Error::internal(format!("consent {}: stored payment: {e}", record.id)))?;
    Payment::new(detail)
        .map(Some)
        .map_err(|e| Error::internal(format!("consent {}: stored payment: {e}", record.id)))
}

/// After a payment executed with a consent-bound token: `Authorised` →
/// `Consumed`. Never fails the payment, which is already made.
pub async fn consume(state: &AppState, auth: &ResourceAuth) {
    let consent = match of_token(state, auth).await {
        Ok(Some(record)) if record.payment.is_some() => record,
        Ok(_) => return,
        Err(error) => {
            tracing::error!(error = ?error, "consent of a payment: lookup failed");
            return;
        }
    };
    let now = state.now();
    match state
        .store
        .move_consent(
            &consent.id,
            Status::Authorised.as_str(),
            Status::Consumed.as_str(),
            None,
            now,
        )
        .await
    {
        Ok(true) => tracing::info!(consent_id = %consent.id, "consent consumed"),
        Ok(false) => tracing::warn!(consent_id = %consent.id, "consent was not Authorised when its payment ran"),
        Err(error) => tracing::error!(consent_id = %consent.id, error = %error, "consent could not be consumed"),
    }
}

/// What an account-information call needs of a consent-bound token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccountAccess {
    /// The list of accounts.
    Accounts,
    /// Balances.
    Balances,
}

impl AccountAccess {
    /// The permissions (Brazil or UK names) any one of which allows it.
    fn permissions(self) -> &'static [&'static str] {
        match self {
            Self::Accounts => &["ACCOUNTS_READ", "ReadAccountsBasic", "ReadAccountsDetail"],
            Self::Balances => &["ACCOUNTS_BALANCES_READ", "ReadBalances"],
        }
    }
}

/// For a consent-bound token: the consent must be `Authorised` and an accounts
/// consent with a permission for `access` (403 otherwise). Tokens without a
/// consent are left to their scope.
pub async fn require_account_access(state: &AppState, auth: &ResourceAuth, access: AccountAccess) -> Result<()> {
    let Some(record) = of_token(state, auth).await? else {
        return Ok(());
    };
    let status = effective_status(&record, state.now()).0;
    if status != Status::Authorised {
        return Err(not_authorised(status));
    }
    let granted: Vec<String> = record
        .permissions
        .as_deref()
        .and_then(|p| serde_json::from_str::<Value>(p).ok())
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default();
    if access.permissions().iter().any(|p| granted.iter().any(|g| g == p)) {
        return Ok(());
    }
    Err(consent_error(
        "consent_permission_missing",
        StatusCode::FORBIDDEN,
        format!(
            "the consent of this access token grants none of {}",
            access.permissions().join(", ")
        ),
    ))
}
