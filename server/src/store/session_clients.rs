//! Which clients received an ID token in which browser session
//! ([Back-Channel Logout](https://openid.net/specs/openid-connect-backchannel-1_0.html),
//! [Front-Channel Logout](https://openid.net/specs/openid-connect-frontchannel-1_0.html)):
//! one row per session `sid`, client and grant, written when a code with
//! `openid` is issued in a session, read when the session ends (to notify the
//! clients and revoke refresh tokens of grants without `offline_access`), then
//! deleted, exactly the rows read, in the transaction that queues the
//! notifications and deletes the session ([`Store::end_browser_session`]).
//! Rows live as long as their session (a re-login that keeps the `sid`
//! extends them).

use outband_protocol::{ClientId, Subject};
use sqlx::any::AnyRow;

use super::{column, NewNotification, Store, StoreError, UnixTime};

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

/// What ending a browser session writes ([`Store::end_browser_session`]).
#[derive(Debug, Default)]
pub struct SessionEnd<'a> {
    /// The session row to delete; `None` to only notify and forget clients.
    pub session_hash: Option<&'a str>,
    /// Logout notifications to queue.
    pub notifications: &'a [NewNotification],
    /// Grants whose refresh tokens are revoked.
    pub revoke_refresh_tokens_of: &'a [String],
    /// The session-client rows that were read and are now told.
    pub told: &'a [SessionClientRecord],
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

    /// A re-login that keeps the session's `sid` (`prompt=login`, `max_age`)
    /// makes the session last until `expires_at`: its clients are kept as long
    /// (never shortened); how many rows changed.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn extend_session_clients(&self, sid: &str, expires_at: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("UPDATE session_clients SET expires_at = $2 WHERE sid = $1 AND expires_at < $2")
            .bind(sid)
            .bind(expires_at)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }

    /// Writes the end of a browser session in one transaction: queues the
    /// logout notifications, revokes the refresh tokens of the listed grants,
    /// forgets exactly the session-client rows that were read (a row recorded
    /// since stays, for the caller to look at again) and deletes the session
    /// row (when named). Either all of it happens or none, so a crash can
    /// neither lose a logout nor leave clients no session will end. Returns
    /// whether the session row was there.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn end_browser_session(&self, end: &SessionEnd<'_>) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        for notification in end.notifications {
            super::outbox::insert_notification(notification)
                .fetch_optional(&mut *tx)
                .await?;
        }
        for grant_id in end.revoke_refresh_tokens_of {
            sqlx::query("UPDATE tokens SET revoked = 1 WHERE grant_id = $1 AND kind = $2 AND revoked = 0")
                .bind(grant_id.as_str())
                .bind(super::TokenKind::Refresh.as_str())
                .execute(&mut *tx)
                .await?;
        }
        for row in end.told {
            sqlx::query("DELETE FROM session_clients WHERE sid = $1 AND client_id = $2 AND grant_id = $3")
                .bind(row.sid.as_str())
                .bind(row.client_id.as_str())
                .bind(row.grant_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let ended = match end.session_hash {
            Some(hash) => {
                let result = sqlx::query("DELETE FROM browser_sessions WHERE session_hash = $1")
                    .bind(hash)
                    .execute(&mut *tx)
                    .await?;
                super::one_row(&result)
            }
            None => false,
        };
        tx.commit().await?;
        Ok(ended)
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
    }

    #[tokio::test]
    async fn a_kept_sid_keeps_its_clients_as_long_as_the_session() {
        let store = fresh_store().await;
        store.record_session_client(&row("web", "g1")).await.unwrap();
        assert_eq!(store.extend_session_clients("s1", 500).await.unwrap(), 1);
        assert_eq!(
            store.extend_session_clients("s1", 50).await.unwrap(),
            0,
            "never shortened"
        );
        assert_eq!(store.purge_expired_browser_rows(101, 0).await.unwrap(), 0);
        assert_eq!(store.session_clients("s1").await.unwrap()[0].expires_at, 500);
    }

    fn logout_notification() -> NewNotification {
        NewNotification {
            kind: crate::store::NotificationKind::BackchannelLogout,
            client_id: ClientId::new("web"),
            ciba_request_id: "logout:j1".into(),
            endpoint: "https://rp.example/bc".into(),
            bearer_sealed: "b".into(),
            body_sealed: "x".into(),
            due_at: 10,
        }
    }

    fn session() -> crate::store::BrowserSessionRecord {
        crate::store::BrowserSessionRecord {
            session_hash: "h1".into(),
            subject: Subject::new("alice"),
            auth_time: 10,
            expires_at: 1000,
            sid: Some("s1".into()),
        }
    }

    #[tokio::test]
    async fn ending_a_session_is_all_or_nothing() {
        let store = fresh_store().await;
        store.insert_browser_session(&session()).await.unwrap();
        store.record_session_client(&row("web", "g1")).await.unwrap();
        let read = store.session_clients("s1").await.unwrap();
        let notifications = [logout_notification()];
        let end = SessionEnd {
            session_hash: Some("h1"),
            notifications: &notifications,
            revoke_refresh_tokens_of: &["g1".to_owned()],
            told: &read,
        };
        // A failure after the notification is queued (the crash window of a
        // queue-then-delete in separate steps): nothing of it stays.
        sqlx::query("ALTER TABLE session_clients RENAME TO session_clients_away")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store.end_browser_session(&end).await.is_err());
        sqlx::query("ALTER TABLE session_clients_away RENAME TO session_clients")
            .execute(&store.pool)
            .await
            .unwrap();
        assert!(store.pending_notifications(10).await.unwrap().is_empty());
        assert!(
            store.browser_session("h1", 20).await.unwrap().is_some(),
            "still signed in"
        );
        assert_eq!(store.session_clients("s1").await.unwrap(), read);
        // Tried again: all of it.
        assert!(store.end_browser_session(&end).await.unwrap());
        assert_eq!(store.pending_notifications(10).await.unwrap().len(), 1);
        assert!(store.browser_session("h1", 20).await.unwrap().is_none());
        assert!(store.session_clients("s1").await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn ending_a_session_forgets_only_the_rows_that_were_read() {
        let store = fresh_store().await;
        store.record_session_client(&row("web", "g1")).await.unwrap();
        let read = store.session_clients("s1").await.unwrap();
        // A code issued meanwhile records another client.
        store.record_session_client(&row("app", "g2")).await.unwrap();
        let end = SessionEnd {
            session_hash: Some("no such session"),
            told: &read,
            ..SessionEnd::default()
        };
        assert!(!store.end_browser_session(&end).await.unwrap());
        assert_eq!(store.session_clients("s1").await.unwrap(), vec![row("app", "g2")]);
    }
}
