//! Which clients received an ID token in which browser session
//! ([Back-Channel Logout](https://openid.net/specs/openid-connect-backchannel-1_0.html),
//! [Front-Channel Logout](https://openid.net/specs/openid-connect-frontchannel-1_0.html)):
//! one row per session `sid`, client and grant, written when a code with
//! `openid` is issued in a session, read when the session ends (to notify the
//! clients and revoke refresh tokens of grants without `offline_access`), then
//! deleted. Rows live no longer than their session.

use outband_protocol::{ClientId, Subject};
use sqlx::any::AnyRow;

use super::{column, Store, StoreError, UnixTime};

/// A client that received an ID token in a browser session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionClientRecord {
    /// The session's `sid`.
    pub sid: String,
    /// The client.
    pub client_id: ClientId,
    /// The user.
    pub subject: Subject,
    /// The grant its tokens carry.
    pub grant_id: String,
    /// Whether the grant's scope has `offline_access` (its refresh tokens outlive the session).
    pub offline: bool,
    /// When it was recorded.
    pub created_at: UnixTime,
    /// When the session ends (the row is purged then).
    pub expires_at: UnixTime,
}

fn from_row(row: &AnyRow) -> Result<SessionClientRecord, StoreError> {
    Ok(SessionClientRecord {
        sid: column(row, "sid")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        subject: Subject::new(column::<String>(row, "subject")?),
        grant_id: column(row, "grant_id")?,
        offline: column::<i64>(row, "offline")? != 0,
        created_at: column(row, "created_at")?,
        expires_at: column(row, "expires_at")?,
    })
}

impl Store {
    /// Records that `record.client_id` got (or is about to get) an ID token in
    /// session `record.sid`; recording the same session, client and grant again
    /// changes nothing.
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %record.client_id), err(level = "debug"))]
    pub async fn record_session_client(&self, record: &SessionClientRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO session_clients (sid, client_id, subject, grant_id, offline, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (sid, client_id, grant_id) DO NOTHING",
        )
        .bind(record.sid.as_str())
        .bind(record.client_id.as_str())
        .bind(record.subject.as_str())
        .bind(record.grant_id.as_str())
        .bind(super::flag(record.offline))
        .bind(record.created_at)
        .bind(record.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The clients of session `sid`, oldest first.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn session_clients(&self, sid: &str) -> Result<Vec<SessionClientRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT sid, client_id, subject, grant_id, offline, created_at, expires_at FROM session_clients \
             WHERE sid = $1 ORDER BY created_at, client_id, grant_id",
        )
        .bind(sid)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Forgets the clients of session `sid` (once they were told); how many rows went.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn delete_session_clients(&self, sid: &str) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM session_clients WHERE sid = $1")
            .bind(sid)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Revokes the refresh tokens of `grant_id` that are not revoked yet; how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn revoke_refresh_tokens_of_grant(&self, grant_id: &str) -> Result<u64, StoreError> {
        let result = sqlx::query("UPDATE tokens SET revoked = 1 WHERE grant_id = $1 AND kind = $2 AND revoked = 0")
            .bind(grant_id)
            .bind(super::TokenKind::Refresh.as_str())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::fresh_store;

    fn row(client: &str, grant: &str) -> SessionClientRecord {
        SessionClientRecord {
            sid: "s1".into(),
            client_id: ClientId::new(client),
            subject: Subject::new("alice"),
            grant_id: grant.into(),
            offline: grant == "g2",
            created_at: 10,
            expires_at: 100,
        }
    }

    #[tokio::test]
    async fn session_clients_are_recorded_once_listed_and_purged() {
        let store = fresh_store().await;
        store.record_session_client(&row("web", "g1")).await.unwrap();
        store.record_session_client(&row("web", "g1")).await.unwrap();
        store.record_session_client(&row("app", "g2")).await.unwrap();
        let listed = store.session_clients("s1").await.unwrap();
        assert_eq!(listed, vec![row("app", "g2"), row("web", "g1")]);
        assert!(store.session_clients("other").await.unwrap().is_empty());
        assert_eq!(store.purge_expired_browser_rows(101, 0).await.unwrap(), 2);
        assert!(store.session_clients("s1").await.unwrap().is_empty());
        store.record_session_client(&row("web", "g1")).await.unwrap();
        assert_eq!(store.delete_session_clients("s1").await.unwrap(), 1);
    }
}
