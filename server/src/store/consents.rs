//! Lodging-intent consent resources ([`crate::consents`] holds the rules; this
//! file only stores). Every state change is one conditional `UPDATE .. WHERE
//! status = ..`, so exactly one caller moves a consent however many nodes try.

use outband_protocol::{ClientId, Subject};
use sqlx::any::AnyRow;

use super::{column, flag, one_row, Store, StoreError, UnixTime};

/// A consent as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsentRecord {
    /// `urn:outband:<random>`.
    pub id: String,
    /// The client that created it (and alone may use it).
    pub client_id: ClientId,
    /// `accounts` or `payment`.
    pub kind: String,
    /// `AwaitingAuthorisation`, `Authorised`, `Rejected`, `Consumed` or `Revoked`.
    pub status: String,
    /// The permissions (JSON array), for an `accounts` consent.
    pub permissions: Option<String>,
    /// The payment (JSON, `payment_initiation` without `type`), for a `payment` consent.
    pub payment: Option<String>,
    /// `loggedUser` as the client sent it (JSON).
    pub logged_user: Option<String>,
    /// The user who authorised it.
    pub subject: Option<Subject>,
    /// The grant whose tokens it binds.
    pub grant_id: Option<String>,
    /// Whether the authorization asked for the `openbanking_intent_id` claim.
    pub intent_claim: bool,
    /// Who rejected or revoked it (`USER`, `ASPSP`, `TPP`).
    pub rejected_by: Option<String>,
    /// Why (`CUSTOMER_MANUALLY_REJECTED`, ...).
    pub rejection_reason: Option<String>,
    /// When it was created.
    pub created_at: UnixTime,
    /// When its status last changed.
    pub status_updated_at: UnixTime,
    /// The end of the window in which it may be authorised.
    pub authorise_by: UnixTime,
    /// When an authorised consent stops working (`None`: never).
    pub expires_at: Option<UnixTime>,
}

const COLUMNS: &str = "id, client_id, kind, status, permissions, payment, logged_user, subject, grant_id, \
                       intent_claim, rejected_by, rejection_reason, created_at, status_updated_at, \
                       authorise_by, expires_at";

fn from_row(row: &AnyRow) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        id: column(row, "id")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        kind: column(row, "kind")?,
        status: column(row, "status")?,
        permissions: column(row, "permissions")?,
        payment: column(row, "payment")?,
        logged_user: column(row, "logged_user")?,
        subject: column::<Option<String>>(row, "subject")?.map(Subject::new),
        grant_id: column(row, "grant_id")?,
        intent_claim: column::<i64>(row, "intent_claim")? != 0,
        rejected_by: column(row, "rejected_by")?,
        rejection_reason: column(row, "rejection_reason")?,
        created_at: column(row, "created_at")?,
        status_updated_at: column(row, "status_updated_at")?,
        authorise_by: column(row, "authorise_by")?,
        expires_at: column(row, "expires_at")?,
    })
}

/// Why a consent was rejected or revoked: who, and the reason code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rejection<'a> {
    /// `USER`, `ASPSP` or `TPP`.
    pub by: &'a str,
    /// The reason code.
    pub reason: &'a str,
}

impl Store {
    /// Stores a new consent.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %consent.client_id), err(level = "debug"))]
    pub async fn insert_consent(&self, consent: &ConsentRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO consents ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&consent.id)
        .bind(consent.client_id.as_str())
        .bind(&consent.kind)
        .bind(&consent.status)
        .bind(consent.permissions.as_deref())
        .bind(consent.payment.as_deref())
        .bind(consent.logged_user.as_deref())
        .bind(consent.subject.as_ref().map(Subject::as_str))
        .bind(consent.grant_id.as_deref())
        .bind(flag(consent.intent_claim))
        .bind(consent.rejected_by.as_deref())
        .bind(consent.rejection_reason.as_deref())
        .bind(consent.created_at)
        .bind(consent.status_updated_at)
        .bind(consent.authorise_by)
        .bind(consent.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The consent `id`.
    pub async fn consent(&self, id: &str) -> Result<Option<ConsentRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM consents WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// The consent whose tokens carry `grant_id`.
    pub async fn consent_by_grant(&self, grant_id: &str) -> Result<Option<ConsentRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM consents WHERE grant_id = $1"))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// `AwaitingAuthorisation` → `Authorised` by `subject` for the tokens of
    /// `grant_id`, while the authorisation window is open. `false`: the consent
    /// was not awaiting authorisation any more (or the window had closed).
    pub async fn authorise_consent(
        &self,
        id: &str,
        subject: &Subject,
        grant_id: &str,
        intent_claim: bool,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE consents SET status = 'Authorised', subject = $2, grant_id = $3, intent_claim = $4, \
             status_updated_at = $5 WHERE id = $1 AND status = 'AwaitingAuthorisation' AND authorise_by > $5",
        )
        .bind(id)
        .bind(subject.as_str())
        .bind(grant_id)
        .bind(flag(intent_claim))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Moves the consent from `from` to `to`, recording `rejection` when given.
    /// `false`: it was not in `from`.
    pub async fn move_consent(
        &self,
        id: &str,
        from: &str,
        to: &str,
        rejection: Option<Rejection<'_>>,
        now: UnixTime,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE consents SET status = $3, rejected_by = COALESCE($4, rejected_by), \
             rejection_reason = COALESCE($5, rejection_reason), status_updated_at = $6 \
             WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(rejection.map(|r| r.by))
        .bind(rejection.map(|r| r.reason))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }
}
