//! The outbox: ping and push notifications that must reach the client even if
//! the node that raised them restarts. Several nodes deliver from the same
//! table. A node claims one due row with a single `UPDATE` that finds it and
//! leases it (`locked_until`) at once, so no two nodes hold the same row; a
//! node that dies mid-delivery lets its lease run out and another one retries.
//!
//! Lifecycle: due → (claimed) → delivered, or → due again later
//! ([`Store::schedule_notification_retry`]), or → failed
//! ([`Store::mark_notification_failed`]), from where an operator can
//! [`Store::redeliver_notification`].

use outband_protocol::ClientId;
use sqlx::any::AnyRow;

use super::{column, one_row, NewNotification, NotificationKind, NotificationRecord, Store, StoreError, UnixTime};

/// How many notifications a listing returns when it names no limit.
pub const DEFAULT_NOTIFICATION_LIST_LIMIT: u32 = 100;
/// The most notifications one listing returns.
pub const MAX_NOTIFICATION_LIST_LIMIT: u32 = 10_000;

/// How often a claim looks for another due row after losing one to another
/// node, before it reports nothing (the caller comes back on its next tick).
const CLAIM_ATTEMPTS: usize = 32;

/// The columns of a [`NotificationRecord`], as a literal for `concat!`.
macro_rules! notification_columns {
    () => {
        "id, kind, client_id, ciba_request_id, endpoint, bearer_sealed, body_sealed, attempts, next_attempt_at, \
         locked_until, created_at, delivered_at, failed_at, last_error"
    };
}

/// A row that may be claimed at `$1`: neither delivered nor given up, due, and
/// not leased by a node.
macro_rules! due {
    () => {
        "delivered_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 AND locked_until <= $1"
    };
}

/// The row is still to deliver (not delivered, not failed).
macro_rules! open {
    () => {
        "delivered_at IS NULL AND failed_at IS NULL"
    };
}

fn notification_from_row(row: &AnyRow) -> Result<NotificationRecord, StoreError> {
    let id: i64 = column(row, "id")?;
    let kind: String = column(row, "kind")?;
    let kind = NotificationKind::parse(&kind)
        .ok_or_else(|| StoreError::Corrupt(format!("notification {id} has unknown kind {kind:?}")))?;
    Ok(NotificationRecord {
        id,
        kind,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        ciba_request_id: column(row, "ciba_request_id")?,
        endpoint: column(row, "endpoint")?,
        bearer_sealed: column(row, "bearer_sealed")?,
        body_sealed: column(row, "body_sealed")?,
        attempts: column(row, "attempts")?,
        next_attempt_at: column(row, "next_attempt_at")?,
        locked_until: column(row, "locked_until")?,
        created_at: column(row, "created_at")?,
        delivered_at: column(row, "delivered_at")?,
        failed_at: column(row, "failed_at")?,
        last_error: column(row, "last_error")?,
    })
}

fn notifications_from_rows(rows: &[AnyRow]) -> Result<Vec<NotificationRecord>, StoreError> {
    rows.iter().map(notification_from_row).collect()
}

fn list_limit(limit: u32) -> i64 {
    i64::from(match limit {
        0 => DEFAULT_NOTIFICATION_LIST_LIMIT,
        n => n.min(MAX_NOTIFICATION_LIST_LIMIT),
    })
}

/// The statement that adds `notification` ([`Store::enqueue_notification`]),
/// for a caller that runs it inside its own transaction too.
pub(super) fn insert_notification(
    notification: &NewNotification,
) -> sqlx::query::Query<'_, sqlx::Any, sqlx::any::AnyArguments<'_>> {
    sqlx::query(
        "INSERT INTO outbox (kind, client_id, ciba_request_id, endpoint, bearer_sealed, body_sealed, attempts, \
         next_attempt_at, locked_until, created_at) VALUES ($1, $2, $3, $4, $5, $6, 0, $7, 0, $7) \
         ON CONFLICT (ciba_request_id, kind) DO NOTHING RETURNING id",
    )
    .bind(notification.kind.as_str())
    .bind(notification.client_id.as_str())
    .bind(notification.ciba_request_id.as_str())
    .bind(notification.endpoint.as_str())
    .bind(notification.bearer_sealed.as_str())
    .bind(notification.body_sealed.as_str())
    .bind(notification.due_at)
}

impl Store {
    /// Adds a notification, due at `due_at` (also its creation time), never
    /// tried and not leased; returns its id, or `None` when the request already
    /// has a notification of this kind (there is at most one).
    #[tracing::instrument(level = "debug", skip_all, fields(kind = notification.kind.as_str(), client_id = %notification.client_id), err(level = "debug"))]
    pub async fn enqueue_notification(&self, notification: &NewNotification) -> Result<Option<i64>, StoreError> {
        let row = insert_notification(notification).fetch_optional(&self.pool).await?;
        row.as_ref().map(|row| column(row, "id")).transpose()
    }

    /// Claims the notification that has been due longest at `now`: leases it
    /// for `lease_seconds` (at least 1) and counts the attempt, in the same
    /// statement that finds it, so of several nodes claiming at once each row
    /// goes to exactly one. `None` when nothing is due.
    ///
    /// The statement picks a candidate in a subquery and re-checks it in the
    /// outer `WHERE`; on PostgreSQL a node that picked the row another node is
    /// leasing gets nothing back, and then looks again (a bounded number of
    /// times; each loss means another node made progress).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn claim_due_notification(
        &self,
        now: UnixTime,
        lease_seconds: i64,
    ) -> Result<Option<NotificationRecord>, StoreError> {
        let locked_until = now.saturating_add(lease_seconds.max(1));
        for _ in 0..CLAIM_ATTEMPTS {
            let row = sqlx::query(concat!(
                "UPDATE outbox SET locked_until = $2, attempts = attempts + 1 WHERE id = \
                 (SELECT id FROM outbox WHERE ",
                due!(),
                " ORDER BY next_attempt_at, id LIMIT 1) AND ",
                due!(),
                " RETURNING ",
                notification_columns!()
            ))
            .bind(now)
            .bind(locked_until)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(row) = row {
                return notification_from_row(&row).map(Some);
            }
            // Nothing claimed: either nothing is due, or another node took the
            // candidate between our subquery and our update. Only the latter
            // is worth another try.
            let any_due = sqlx::query(concat!("SELECT id FROM outbox WHERE ", due!(), " LIMIT 1"))
                .bind(now)
                .fetch_optional(&self.pool)
                .await?;
            if any_due.is_none() {
                return Ok(None);
            }
        }
        tracing::debug!("outbox claim lost every race; trying again on the next tick");
        Ok(None)
    }

    /// Marks a notification as delivered and releases its lease; `false` when
    /// it is unknown or was already delivered or given up.
    #[tracing::instrument(level = "debug", skip_all, fields(id = id), err(level = "debug"))]
    pub async fn mark_notification_delivered(&self, id: i64, now: UnixTime) -> Result<bool, StoreError> {
        let result = sqlx::query(concat!(
            "UPDATE outbox SET delivered_at = $2, locked_until = 0 WHERE id = $1 AND ",
            open!()
        ))
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Records a failed attempt and makes the notification due again at
    /// `next_attempt_at`, releasing the lease; `false` when it is unknown or
    /// was already delivered or given up.
    #[tracing::instrument(level = "debug", skip_all, fields(id = id), err(level = "debug"))]
    pub async fn schedule_notification_retry(
        &self,
        id: i64,
        next_attempt_at: UnixTime,
        error: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(concat!(
            "UPDATE outbox SET next_attempt_at = $2, last_error = $3, locked_until = 0 WHERE id = $1 AND ",
            open!()
        ))
        .bind(id)
        .bind(next_attempt_at)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Gives a notification up (attempts exhausted, or the client answered
    /// that it will never accept it), releasing the lease; `false` when it is
    /// unknown or was already delivered or given up.
    #[tracing::instrument(level = "debug", skip_all, fields(id = id), err(level = "debug"))]
    pub async fn mark_notification_failed(&self, id: i64, now: UnixTime, error: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(concat!(
            "UPDATE outbox SET failed_at = $2, last_error = $3, locked_until = 0 WHERE id = $1 AND ",
            open!()
        ))
        .bind(id)
        .bind(now)
        .bind(error)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Notifications that were given up, most recently failed first. A
    /// `limit` of 0 means [`DEFAULT_NOTIFICATION_LIST_LIMIT`].
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn failed_notifications(&self, limit: u32) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM outbox WHERE failed_at IS NOT NULL AND delivered_at IS NULL \
             ORDER BY failed_at DESC, id DESC LIMIT $1"
        ))
        .bind(list_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        notifications_from_rows(&rows)
    }

    /// Notifications still to deliver (leased ones included), in the order
    /// they fall due. A `limit` of 0 means [`DEFAULT_NOTIFICATION_LIST_LIMIT`].
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn pending_notifications(&self, limit: u32) -> Result<Vec<NotificationRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            notification_columns!(),
            " FROM outbox WHERE ",
            open!(),
            " ORDER BY next_attempt_at, id LIMIT $1"
        ))
        .bind(list_limit(limit))
        .fetch_all(&self.pool)
        .await?;
        notifications_from_rows(&rows)
    }

    /// Puts a given-up notification back in the queue, due at `now` with its
    /// attempts reset (the last error is kept for reference); `false` when it
    /// is unknown or not failed.
    #[tracing::instrument(level = "debug", skip_all, fields(id = id), err(level = "debug"))]
    pub async fn redeliver_notification(&self, id: i64, now: UnixTime) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE outbox SET failed_at = NULL, attempts = 0, next_attempt_at = $2, locked_until = 0 \
             WHERE id = $1 AND failed_at IS NOT NULL AND delivered_at IS NULL",
        )
        .bind(id)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(one_row(&result))
    }

    /// Deletes the notifications delivered before `before`; returns how many.
    /// Failed ones stay until redelivered (an operator decides about them).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_delivered_notifications(&self, before: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM outbox WHERE delivered_at IS NOT NULL AND delivered_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
