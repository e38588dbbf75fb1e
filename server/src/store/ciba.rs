//! Backchannel authentication requests. The `auth_req_id` is kept as a SHA-256
//! hash; the public `id` names a request in device URLs and the admin CLI.
//!
//! Every move of the lifecycle (pending → approved | denied | expired |
//! cancelled, approved → redeemed) is one conditional `UPDATE .. WHERE state =
//! .. RETURNING ..`, so of two nodes (or two clicks) doing the same move at
//! once exactly one gets the row back. A token-endpoint poll is one statement
//! too: it records the poll, decides `slow_down` from the previous poll time
//! and grows the interval, all against the same row version.

use outband_protocol::{ClientId, DeliveryMode, Scope, Subject};
use sqlx::any::AnyRow;

use super::{column, CibaDecision, CibaRequestRecord, CibaState, PollOutcome, Store, StoreError, UnixTime};

/// How many requests a listing returns when it names no limit.
pub const DEFAULT_CIBA_LIST_LIMIT: u32 = 100;
/// The most requests one listing returns.
pub const MAX_CIBA_LIST_LIMIT: u32 = 10_000;

/// How much a `slow_down` grows the poll interval, in seconds (CIBA Core §11).
pub const SLOW_DOWN_INCREMENT: i64 = 5;

/// The columns of a [`CibaRequestRecord`], as a literal for `concat!`.
macro_rules! ciba_columns {
    () => {
        "id, auth_req_id_hash, client_id, subject, scope, acr_values, binding_message, authorization_details, \
         delivery_mode, auth_req_id_sealed, notification_token_sealed, request_jwt, created_at, expires_at, \
         poll_interval, last_polled_at, state, decided_at, device_id, amr, acr, deny_reason, redeemed_at, number_match"
    };
}

/// Whether this poll is too early: the request is still waiting, this is not
/// the first poll and the interval since the previous one is not up. Written
/// against the row as it was before the `UPDATE` (both databases evaluate every
/// `SET` expression on the old row). `$3` is now.
macro_rules! too_early {
    () => {
        "state = 'pending' AND expires_at > $3 AND last_polled_at IS NOT NULL AND $3 - last_polled_at < poll_interval"
    };
}

fn ciba_request_from_row(row: &AnyRow) -> Result<CibaRequestRecord, StoreError> {
    let id: String = column(row, "id")?;
    let mode: String = column(row, "delivery_mode")?;
    let delivery_mode = DeliveryMode::parse(&mode)
        .ok_or_else(|| StoreError::Corrupt(format!("CIBA request {id} has unknown delivery mode {mode:?}")))?;
    let state: String = column(row, "state")?;
    let state = CibaState::parse(&state)
        .ok_or_else(|| StoreError::Corrupt(format!("CIBA request {id} has unknown state {state:?}")))?;
    Ok(CibaRequestRecord {
        auth_req_id_hash: column(row, "auth_req_id_hash")?,
        client_id: ClientId::new(column::<String>(row, "client_id")?),
        subject: Subject::new(column::<String>(row, "subject")?),
        scope: Scope::new(column::<String>(row, "scope")?),
        acr_values: column(row, "acr_values")?,
        binding_message: column(row, "binding_message")?,
        authorization_details: column(row, "authorization_details")?,
        delivery_mode,
        auth_req_id_sealed: column(row, "auth_req_id_sealed")?,
        number_match: column(row, "number_match")?,
        notification_token_sealed: column(row, "notification_token_sealed")?,
        request_jwt: column(row, "request_jwt")?,
        created_at: column(row, "created_at")?,
        expires_at: column(row, "expires_at")?,
        interval: column(row, "poll_interval")?,
        last_polled_at: column(row, "last_polled_at")?,
        state,
        decided_at: column(row, "decided_at")?,
        device_id: column(row, "device_id")?,
        amr: column(row, "amr")?,
        acr: column(row, "acr")?,
        deny_reason: column(row, "deny_reason")?,
        redeemed_at: column(row, "redeemed_at")?,
        id,
    })
}

fn ciba_requests_from_rows(rows: &[AnyRow]) -> Result<Vec<CibaRequestRecord>, StoreError> {
    rows.iter().map(ciba_request_from_row).collect()
}

impl Store {
    /// Records a new request (normally `Pending`); [`StoreError::Conflict`]
    /// when its id or `auth_req_id` hash is known.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %request.id, client_id = %request.client_id), err(level = "debug"))]
    pub async fn insert_ciba_request(&self, request: &CibaRequestRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO ciba_requests (id, auth_req_id_hash, client_id, subject, scope, acr_values, binding_message, \
             authorization_details, delivery_mode, notification_token_sealed, request_jwt, created_at, expires_at, \
             poll_interval, last_polled_at, slowed, state, decided_at, device_id, amr, acr, deny_reason, redeemed_at, \
             auth_req_id_sealed, number_match) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 0, $16, $17, $18, $19, $20, \
             $21, $22, $23, $24)",
        )
        .bind(request.id.as_str())
        .bind(request.auth_req_id_hash.as_str())
        .bind(request.client_id.as_str())
        .bind(request.subject.as_str())
        .bind(request.scope.as_str())
        .bind(request.acr_values.as_deref())
        .bind(request.binding_message.as_deref())
        .bind(request.authorization_details.as_deref())
        .bind(request.delivery_mode.as_str())
        .bind(request.notification_token_sealed.as_deref())
        .bind(request.request_jwt.as_str())
        .bind(request.created_at)
        .bind(request.expires_at)
        .bind(request.interval)
        .bind(request.last_polled_at)
        .bind(request.state.as_str())
        .bind(request.decided_at)
        .bind(request.device_id.as_deref())
        .bind(request.amr.as_deref())
        .bind(request.acr.as_deref())
        .bind(request.deny_reason.as_deref())
        .bind(request.redeemed_at)
        .bind(request.auth_req_id_sealed.as_deref())
        .bind(request.number_match.as_deref())
        .execute(&self.pool)
        .await
        .map_err(StoreError::conflict_as(format!("CIBA request {}", request.id)))?;
        Ok(())
    }

    /// The request with this public id, whatever its state.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id), err(level = "debug"))]
    pub async fn ciba_request(&self, id: &str) -> Result<Option<CibaRequestRecord>, StoreError> {
        let row = sqlx::query(concat!("SELECT ", ciba_columns!(), " FROM ciba_requests WHERE id = $1"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// The request whose `auth_req_id` hashes to `hash`, whatever its state
    /// and client.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn ciba_request_by_hash(&self, hash: &str) -> Result<Option<CibaRequestRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "SELECT ",
            ciba_columns!(),
            " FROM ciba_requests WHERE auth_req_id_hash = $1"
        ))
        .bind(hash)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// The user's requests still waiting for a decision at `now`, oldest first
    /// (what a device fetches after every reconnect).
    #[tracing::instrument(level = "debug", skip_all, fields(subject = %subject), err(level = "debug"))]
    pub async fn pending_ciba_requests_for_subject(
        &self,
        subject: &Subject,
        now: UnixTime,
    ) -> Result<Vec<CibaRequestRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            ciba_columns!(),
            " FROM ciba_requests WHERE subject = $1 AND state = 'pending' AND expires_at > $2 \
             ORDER BY created_at, id"
        ))
        .bind(subject.as_str())
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        ciba_requests_from_rows(&rows)
    }

    /// Requests newest first, all or only those in `state`. A `limit` of 0
    /// means [`DEFAULT_CIBA_LIST_LIMIT`]; no more than [`MAX_CIBA_LIST_LIMIT`].
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn list_ciba_requests(
        &self,
        state: Option<CibaState>,
        limit: u32,
    ) -> Result<Vec<CibaRequestRecord>, StoreError> {
        let limit = i64::from(match limit {
            0 => DEFAULT_CIBA_LIST_LIMIT,
            n => n.min(MAX_CIBA_LIST_LIMIT),
        });
        let rows = match state {
            Some(state) => {
                sqlx::query(concat!(
                    "SELECT ",
                    ciba_columns!(),
                    " FROM ciba_requests WHERE state = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
                ))
                .bind(state.as_str())
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
            None => {
                sqlx::query(concat!(
                    "SELECT ",
                    ciba_columns!(),
                    " FROM ciba_requests ORDER BY created_at DESC, id DESC LIMIT $1"
                ))
                .bind(limit)
                .fetch_all(&self.pool)
                .await?
            }
        };
        ciba_requests_from_rows(&rows)
    }

    /// How many of the client's requests are still waiting at `now` (for a
    /// per-client cap on open requests).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn count_pending_ciba_requests_of_client(
        &self,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<i64, StoreError> {
        let row = sqlx::query(
            "SELECT COUNT(*) AS n FROM ciba_requests WHERE client_id = $1 AND state = 'pending' AND expires_at > $2",
        )
        .bind(client_id.as_str())
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        column(&row, "n")
    }

    /// How many requests are still waiting at `now`, by delivery mode (for the
    /// `outband_ciba_pending` gauge; one query, the same answer on every node).
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn count_pending_ciba_requests_by_mode(&self, now: UnixTime) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT delivery_mode, COUNT(*) AS n FROM ciba_requests \
             WHERE state = 'pending' AND expires_at > $1 GROUP BY delivery_mode",
        )
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| Ok((column(row, "delivery_mode")?, column(row, "n")?)))
            .collect()
    }

    /// Approves or denies a request that is pending and unexpired at `now`.
    /// Returns the decided request to the one call that decided it; `None`
    /// when it is unknown, expired, cancelled or was decided already.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id, approve = decision.approve), err(level = "debug"))]
    pub async fn decide_ciba_request(
        &self,
        id: &str,
        decision: &CibaDecision,
        now: UnixTime,
    ) -> Result<Option<CibaRequestRecord>, StoreError> {
        let state = if decision.approve {
            CibaState::Approved
        } else {
            CibaState::Denied
        };
        let row = sqlx::query(concat!(
            "UPDATE ciba_requests SET state = $3, decided_at = $2, device_id = $4, amr = $5, acr = $6, \
             deny_reason = $7 WHERE id = $1 AND state = 'pending' AND expires_at > $2 RETURNING ",
            ciba_columns!()
        ))
        .bind(id)
        .bind(now)
        .bind(state.as_str())
        .bind(decision.device_id.as_deref())
        .bind(decision.amr.as_deref())
        .bind(decision.acr.as_deref())
        .bind(decision.deny_reason.as_deref())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// Cancels a pending request of `client_id`. Returns the cancelled request
    /// to the one call that cancelled it; `None` when it is unknown, another
    /// client's, or no longer pending.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id, client_id = %client_id), err(level = "debug"))]
    pub async fn cancel_ciba_request(
        &self,
        id: &str,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<CibaRequestRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE ciba_requests SET state = 'cancelled', decided_at = $3 \
             WHERE id = $1 AND client_id = $2 AND state = 'pending' RETURNING ",
            ciba_columns!()
        ))
        .bind(id)
        .bind(client_id.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// Records a token-endpoint poll by `client_id` at `now` and returns the
    /// request as it is afterwards. `slow_down` is true when the request is
    /// pending and unexpired, was polled before, and the previous poll was
    /// less than `interval` seconds ago; the interval has then grown by
    /// [`SLOW_DOWN_INCREMENT`]. The first poll and polls of a decided request
    /// are never slowed. Another client's request is [`PollOutcome::Unknown`].
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn poll_ciba_request(
        &self,
        hash: &str,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<PollOutcome, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE ciba_requests SET \
             poll_interval = CASE WHEN ",
            too_early!(),
            " THEN poll_interval + $4 ELSE poll_interval END, \
             slowed = CASE WHEN ",
            too_early!(),
            " THEN 1 ELSE 0 END, \
             last_polled_at = $3 \
             WHERE auth_req_id_hash = $1 AND client_id = $2 RETURNING slowed, ",
            ciba_columns!()
        ))
        .bind(hash)
        .bind(client_id.as_str())
        .bind(now)
        .bind(SLOW_DOWN_INCREMENT)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else {
            return Ok(PollOutcome::Unknown);
        };
        Ok(PollOutcome::Found {
            slow_down: column::<i64>(&row, "slowed")? != 0,
            request: ciba_request_from_row(&row)?,
        })
    }

    /// Moves an approved request of `client_id` to redeemed, for the one call
    /// that issues its tokens; `None` when it is unknown, another client's, not
    /// approved, redeemed already, or expired (`expires_at` is `now` or
    /// earlier: CIBA Core §7.3 lets no token out once `expires_in` has passed).
    #[tracing::instrument(level = "debug", skip_all, fields(client_id = %client_id), err(level = "debug"))]
    pub async fn redeem_ciba_request(
        &self,
        hash: &str,
        client_id: &ClientId,
        now: UnixTime,
    ) -> Result<Option<CibaRequestRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE ciba_requests SET state = 'redeemed', redeemed_at = $3 \
             WHERE auth_req_id_hash = $1 AND client_id = $2 AND state = 'approved' AND expires_at > $3 RETURNING ",
            ciba_columns!()
        ))
        .bind(hash)
        .bind(client_id.as_str())
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// Moves an approved request to redeemed by its public id (push mode, where
    /// the server delivers the tokens itself); `None` unless this call did it.
    #[tracing::instrument(level = "debug", skip_all, fields(id = %id), err(level = "debug"))]
    pub async fn mark_redeemed(&self, id: &str, now: UnixTime) -> Result<Option<CibaRequestRecord>, StoreError> {
        let row = sqlx::query(concat!(
            "UPDATE ciba_requests SET state = 'redeemed', redeemed_at = $2 \
             WHERE id = $1 AND state = 'approved' RETURNING ",
            ciba_columns!()
        ))
        .bind(id)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(ciba_request_from_row).transpose()
    }

    /// Moves every pending request whose `expires_at` is `now` or earlier to
    /// expired and returns them (so ping/push clients can be told). Of several
    /// concurrent sweeps, each row is returned by exactly one.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn expire_ciba_requests(&self, now: UnixTime) -> Result<Vec<CibaRequestRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "UPDATE ciba_requests SET state = 'expired', decided_at = $1 \
             WHERE state = 'pending' AND expires_at <= $1 RETURNING ",
            ciba_columns!()
        ))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let mut expired = ciba_requests_from_rows(&rows)?;
        expired.sort_by(|a, b| (a.expires_at, &a.id).cmp(&(b.expires_at, &b.id)));
        Ok(expired)
    }

    /// Ping and push requests that left `pending` between `after` and `before`
    /// but have no notification queued: a node stopped between recording the
    /// decision (or expiry) and queueing its notification. Oldest first, at
    /// most `limit`. A push request counts once redeemed too (its tokens were
    /// issued for a notification that was never queued).
    pub async fn ciba_requests_missing_notification(
        &self,
        after: UnixTime,
        before: UnixTime,
        limit: u32,
    ) -> Result<Vec<CibaRequestRecord>, StoreError> {
        let rows = sqlx::query(concat!(
            "SELECT ",
            ciba_columns!(),
            " FROM ciba_requests r WHERE decided_at > $1 AND decided_at <= $2 \
             AND ((delivery_mode = 'ping' AND state IN ('approved', 'denied', 'expired')) \
               OR (delivery_mode = 'push' AND state IN ('approved', 'denied', 'expired', 'redeemed'))) \
             AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.ciba_request_id = r.id) \
             ORDER BY decided_at, id LIMIT $3"
        ))
        .bind(after)
        .bind(before)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        ciba_requests_from_rows(&rows)
    }

    /// Deletes the requests that are no longer pending and expired before
    /// `before`; returns how many.
    #[tracing::instrument(level = "debug", skip_all, err(level = "debug"))]
    pub async fn purge_finished_ciba_requests(&self, before: UnixTime) -> Result<u64, StoreError> {
        let result = sqlx::query("DELETE FROM ciba_requests WHERE state <> 'pending' AND expires_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected())
    }
}
