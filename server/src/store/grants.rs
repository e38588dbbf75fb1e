//! Grants ([FAPI Grant Management](https://openid.net/specs/fapi-grant-management.html)):
//! what a user allowed a client, kept per `grant_id`, and the grant intents of
//! authorizations in progress (what a code or CIBA request will do to a grant
//! once its tokens are claimed).
//!
//! A grant changes by one conditional update on its `version` (merge and
//! replace compute the new content from the version they read; a concurrent
//! change makes the update miss and the caller reads again). Revoking a grant
//! revokes its tokens in the same transaction.

use outband_protocol::{ClientId, Scope, Subject};
use sqlx::any::AnyRow;

use super::{column, flag, one_row, Store, StoreError, UnixTime};

/// A grant: the scopes, claims and authorization details a user gave a client.
#[derive(Clone, Debug, PartialEq)]
pub struct GrantRecord {
    /// The public identifier (`grant_id`).
    pub grant_id: String,
    /// The client that holds it.
    pub client_id: ClientId,
    /// The user who gave it.
    pub subject: Subject,
    /// Granted scope.
    pub scope: Scope,
    /// OpenID Connect claims released by the granted scope.
    pub claims: Vec<String>,
    /// Granted authorization details, as JSON array text.
    pub authorization_details: Option<String>,
    /// When it was created.
    pub created_at: UnixTime,
    /// When it last changed.
    pub updated_at: UnixTime,
    /// Bumped by every change (optimistic concurrency).
    pub version: i64,
    /// Revoked (by the client or the user).
    pub revoked: bool,
}

/// What an authorization in progress will do to a grant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantIntentRecord {
    /// `code:<hash>` or `ciba:<request id>`.
    pub request_key: String,
    /// The grant it creates or changes.
    pub grant_id: String,
    /// `create`, `merge` or `replace`.
    pub action: String,
    /// When it may be purged.
    pub expires_at: UnixTime,
}

const GRANT_COLUMNS: &str =
    "grant_id, client_id, subject, scope, claims, authorization_details, created_at, updated_at, version, revoked";

fn grant_from_row(row: &AnyRow) -> Result<GrantRecord, StoreError> {
    let grant_id: String = column(row, "grant_id")?;
    let claims: String = column(row, "claims")?;
    let claims =
        serde_json::from_str(&claims).map_err(|e| StoreError::Corrupt(format!("grant {grant_id} claims: {e}")))?;
    Ok(GrantRecord {
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        subject: Subject::new(column::<String>(row, "subject")?),
        scope: Scope::new(column::<String>(row, "scope")?),
        claims,
        authorization_details: column(row, "authorization_details")?,
        created_at: column(row, "created_at")?,
        updated_at: column(row, "updated_at")?,
        version: column(row, "version")?,
        revoked: column::<i64>(row, "revoked")? != 0,
        grant_id,
    })
}

pub(super) fn claims_text(claims: &[String]) -> Result<String, StoreError> {
    serde_json::to_string(claims).map_err(|e| StoreError::Corrupt(e.to_string()))
}

impl Store {
    /// Records a new grant; `false` when one with this id exists already.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %grant.client_id), err(level = "debug"))]
    pub async fn insert_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO grants (grant_id, client_id, subject, scope, claims, authorization_details, \
             created_at, updated_at, version, revoked) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING",
        )
        .bind(grant.grant_id.as_str())
        .bind(grant.client_id.as_str())
        .bind(grant.subject.as_str())
        .bind(grant.scope.as_str())
        .bind(claims_text(&grant.claims)?)
        .bind(grant.authorization_details.as_deref())
        .bind(grant.created_at)
        .bind(grant.updated_at)
        .bind(grant.version)
        .bind(flag(grant.revoked))
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// The grant with this id, revoked ones included.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn grant(&self, grant_id: &str) -> Result<Option<GrantRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {GRANT_COLUMNS} FROM grants WHERE grant_id = $1"))
            .bind(grant_id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(grant_from_row).transpose()
    }

    /// The live grants of a user, newest change first (the account page).
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn grants_of_subject(&self, subject: &Subject) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE subject = $1 AND revoked = 0 \
             ORDER BY updated_at DESC, grant_id"
        ))
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// The live grants a user gave one client (remembered consent).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn grants_of_client_user(
        &self,
        client_id: &ClientId,
        subject: &Subject,
    ) -> Result<Vec<GrantRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {GRANT_COLUMNS} FROM grants WHERE client_id = $1 AND subject = $2 AND revoked = 0 \
             ORDER BY updated_at DESC, grant_id"
        ))
        .bind(client_id.as_str())
        .bind(subject.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(grant_from_row).collect()
    }

    /// Sets a live grant's content, if it is still at `version`; `false` when
    /// it changed meanwhile or was revoked.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn update_grant(&self, grant: &GrantRecord) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE grants SET scope = $3, claims = $4, authorization_details = $5, updated_at = $6, \
             version = version + 1 WHERE grant_id = $1 AND version = $2 AND revoked = 0",
        )
        .bind(grant.grant_id.as_str())
        .bind(grant.version)
        .bind(grant.scope.as_str())
        .bind(claims_text(&grant.claims)?)
        .bind(grant.authorization_details.as_deref())
        .bind(grant.updated_at)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Revokes a grant and every token issued under it, in one transaction.
    /// `true` only for the call that revoked it.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn revoke_grant(&self, grant_id: &str, now: UnixTime) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let result = sqlx::query("UPDATE grants SET revoked = 1, updated_at = $2 WHERE grant_id = $1 AND revoked = 0")
            .bind(grant_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if !one_row(&result) {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("UPDATE tokens SET revoked = 1 WHERE grant_id = $1 AND revoked = 0")
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records what an authorization in progress will do to a grant.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn insert_grant_intent(&self, intent: &GrantIntentRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO grant_intents (request_key, grant_id, action, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(intent.request_key.as_str())
            .bind(intent.grant_id.as_str())
            .bind(intent.action.as_str())
            .bind(intent.expires_at)
            .execute(&self.pool)
            .await
            .map_err(StoreError::conflict_as(format!("grant intent {}", intent.request_key)))?;
        Ok(())
    }

    /// The intent recorded for `request_key`. Kept (not taken) so that issuing
    /// a push request's tokens again after a crash finds it again.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn grant_intent(&self, request_key: &str) -> Result<Option<GrantIntentRecord>, StoreError> {
        let row =
            sqlx::query("SELECT request_key, grant_id, action, expires_at FROM grant_intents WHERE request_key = $1")
                .bind(request_key)
                .fetch_optional(&self.pool)
                .await?;
        row.as_ref()
            .map(|row| {
                Ok(GrantIntentRecord {
                    request_key: column(row, "request_key")?,
                    grant_id: column(row, "grant_id")?,
                    action: column(row, "action")?,
                    expires_at: column(row, "expires_at")?,
                })
            })
            .transpose()
    }

    /// Deletes intents that expired before `now`; returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_expired_grant_intents(&self, now: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM grant_intents WHERE expires_at < $1")
            .bind(now)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::store::testing::fresh_store;

    /// A grant of client `c` for subject `s`, scope `openid` (also for other store tests).
    pub(in crate::store) fn grant(id: &str) -> GrantRecord {
        GrantRecord {
            grant_id: id.into(),
            client_id: ClientId::new("c"),
            subject: Subject::new("s"),
            scope: Scope::new("openid"),
            claims: vec!["sub".into()],
            authorization_details: None,
            created_at: 10,
            updated_at: 10,
            version: 0,
            revoked: false,
        }
    }

    #[tokio::test]
    async fn grants_change_by_version_and_revoke_once() {
        let store = fresh_store().await;
        assert!(store.insert_grant(&grant("g1")).await.unwrap());
        assert!(!store.insert_grant(&grant("g1")).await.unwrap(), "ids are unique");
        let mut read = store.grant("g1").await.unwrap().unwrap();
        assert_eq!(read, grant("g1"));
        read.scope = Scope::new("openid payments");
        read.updated_at = 20;
        assert!(store.update_grant(&read).await.unwrap());
        assert!(!store.update_grant(&read).await.unwrap(), "a stale version misses");
        let now = store.grant("g1").await.unwrap().unwrap();
        assert_eq!((now.version, now.scope.as_str()), (1, "openid payments"));
        assert_eq!(store.grants_of_subject(&Subject::new("s")).await.unwrap().len(), 1);
        assert!(store.revoke_grant("g1", 30).await.unwrap());
        assert!(!store.revoke_grant("g1", 31).await.unwrap());
        assert!(store.grants_of_subject(&Subject::new("s")).await.unwrap().is_empty());
        assert!(store.grant("g1").await.unwrap().unwrap().revoked);
    }

    #[tokio::test]
    async fn intents_are_kept_until_purged() {
        let store = fresh_store().await;
        let intent = GrantIntentRecord {
            request_key: "ciba:1".into(),
            grant_id: "g".into(),
            action: "merge".into(),
            expires_at: 100,
        };
        store.insert_grant_intent(&intent).await.unwrap();
        assert_eq!(store.grant_intent("ciba:1").await.unwrap(), Some(intent.clone()));
        assert_eq!(store.grant_intent("ciba:1").await.unwrap(), Some(intent));
        assert_eq!(store.purge_expired_grant_intents(101).await.unwrap(), 1);
        assert_eq!(store.grant_intent("ciba:1").await.unwrap(), None);
    }
}
