//! Ping and push notifications through a durable outbox
//! ([CIBA Core §10.2–§10.3](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.2)).
//!
//! A notification is a row first and an HTTP call second, so a crash or restart
//! loses none: the worker claims due rows (one node per row, by lease), POSTs
//! through the [`OutboundClient`](crate::outbound::OutboundClient) (no redirects,
//! short timeouts, SSRF allow-list), and marks them delivered. A 2xx is
//! delivered; a 4xx is final (retrying cannot help); a 5xx, timeout or refused
//! connection is retried with exponential backoff up to [`MAX_ATTEMPTS`].
//! Bearer tokens and push bodies (which hold tokens) are sealed at rest.
//! A row that cannot be sent at all (its logout token cannot be made) fails at
//! once with the reason; any other error with one row is logged, the pass goes
//! on with the next row, and the row is retried after its lease, until its
//! attempts are spent.
//!
//! The same outbox carries OpenID Connect back-channel logout tokens (kind
//! `backchannel_logout`, [`crate::account::backchannel`]), with the same
//! retries.

use std::future::Future;
use std::time::Duration;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::observability::{self, DeliveryResult};
use crate::outbound::OutboundError;
use crate::state::AppState;
use crate::store::{CibaRequestRecord, NewNotification, NotificationKind, NotificationRecord};

/// Tries per notification before it is marked failed (the operator can redeliver).
pub const MAX_ATTEMPTS: i64 = 8;
/// How long a claimed notification is reserved for the node that claimed it.
const LEASE_SECONDS: i64 = 30;
/// How often the worker looks for due notifications when nothing wakes it.
const POLL: Duration = Duration::from_millis(500);

/// Seconds to wait before attempt `attempts + 1`: 2, 4, 8, … capped at 5 minutes.
/// Seconds between two sweeps for notifications lost in a crash.
pub const SWEEP_EVERY: i64 = 10;

pub fn backoff(attempts: i64) -> i64 {
    let exponent = u32::try_from(attempts.clamp(1, 9)).unwrap_or(9);
    2i64.pow(exponent).min(300)
}

/// Queues a notification, sealing its bearer and body.
pub async fn enqueue(
    state: &AppState,
    request: &CibaRequestRecord,
    kind: NotificationKind,
    endpoint: &str,
    bearer: &str,
    body: &Value,
) -> Result<()> {
    let sealer = state.keys.sealer();
    let notification = NewNotification {
        kind,
        client_id: request.client_id.clone(),
        ciba_request_id: request.id.clone(),
        endpoint: endpoint.to_owned(),
        bearer_sealed: sealer.seal(bearer.as_bytes()).map_err(Error::internal)?,
        body_sealed: sealer.seal(body.to_string().as_bytes()).map_err(Error::internal)?,
        due_at: state.now(),
    };
    if state.store.enqueue_notification(&notification).await?.is_none() {
        tracing::info!(request = %request.id, kind = kind.as_str(), "notification already queued");
        return Ok(());
    }
    state.wake_delivery.notify_one();
    Ok(())
}

/// Delivers every due notification once; returns how many were attempted.
pub async fn deliver_due(state: &AppState) -> Result<usize> {
    let mut attempted = 0;
    while let Some(notification) = state.store.claim_due_notification(state.now(), LEASE_SECONDS).await? {
        attempted += 1;
        if let Err(err) = deliver(state, &notification).await {
            // One row's trouble does not hold up the rows behind it: this one
            // is tried again when its lease runs out, until its attempts are spent.
            tracing::warn!(id = notification.id, attempts = notification.attempts, error = %err, "could not deliver a notification");
            if notification.attempts >= MAX_ATTEMPTS {
                give_up(state, &notification, &err.to_string()).await?;
            }
        }
    }
    Ok(attempted)
}

/// Marks `n` failed for good with `error` (an operator can redeliver it).
async fn give_up(state: &AppState, n: &NotificationRecord, error: &str) -> Result<()> {
    state.store.mark_notification_failed(n.id, state.now(), error).await?;
    observability::notification_delivery(n.kind, DeliveryResult::Failed);
    tracing::warn!(id = n.id, attempts = n.attempts, %error, "notification failed for good");
    Ok(())
}

async fn deliver(state: &AppState, n: &NotificationRecord) -> Result<()> {
    let sealer = state.keys.sealer();
    let open = |sealed: &str| sealer.open_text(sealed).map_err(Error::internal);
    let bearer = open(&n.bearer_sealed)?;
    let body: Value = serde_json::from_str(&open(&n.body_sealed)?).map_err(|e| Error::internal(e.to_string()))?;
    let url = url::Url::parse(&n.endpoint).map_err(|e| Error::internal(e.to_string()))?;
    let now = state.now();
    let outcome = match n.kind {
        // OpenID Connect Back-Channel Logout: a form POST of a token signed now.
        NotificationKind::BackchannelLogout => {
            match crate::account::backchannel::logout_token(state, &n.client_id, &body).await? {
                Ok(token) => {
                    state
                        .outbound
                        .post_form(&url, &[("logout_token", token.as_str())])
                        .await
                }
                // No token can be made on a retry either (the client is gone, no key).
                Err(why) => return give_up(state, n, &format!("no logout token: {why}")).await,
            }
        }
        NotificationKind::Ping | NotificationKind::Push => state.outbound.post_json(&url, Some(&bearer), &body).await,
    };
    let (retry, error) = match outcome {
        Ok(outcome) if outcome.is_success() => {
            state.store.mark_notification_delivered(n.id, now).await?;
            observability::notification_delivery(n.kind, DeliveryResult::Delivered);
            tracing::info!(id = n.id, kind = n.kind.as_str(), client_id = %n.client_id, "notification delivered");
            return Ok(());
        }
        Ok(outcome) if outcome.is_client_error() => (false, format!("the client answered {}", outcome.status)),
        Ok(outcome) => (true, format!("the client answered {}", outcome.status)),
        Err(OutboundError::Refused(why)) => (false, format!("destination refused: {why}")),
        Err(err) => (true, err.to_string()),
    };
    if retry && n.attempts < MAX_ATTEMPTS {
        state
            .store
            .schedule_notification_retry(n.id, now + backoff(n.attempts), &error)
            .await?;
        observability::notification_delivery(n.kind, DeliveryResult::Retried);
        tracing::warn!(id = n.id, attempts = n.attempts, %error, "notification failed; will retry");
    } else {
        give_up(state, n, &error).await?;
    }
    Ok(())
}

/// Runs deliveries and CIBA expiry until `shutdown` completes, and every
/// [`SWEEP_EVERY`] seconds re-queues notifications a crash lost.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut last_sweep = i64::MIN;
    loop {
        if let Err(err) = crate::ciba::lifecycle::expire_due(&state).await {
            tracing::warn!(error = %err, "could not expire CIBA requests");
        }
        if state.now().saturating_sub(last_sweep) >= SWEEP_EVERY {
            last_sweep = state.now();
            if let Err(err) = crate::ciba::lifecycle::requeue_lost_notifications(&state).await {
                tracing::warn!(error = %err, "could not re-queue lost notifications");
            }
        }
        if let Err(err) = deliver_due(&state).await {
            tracing::warn!(error = %err, "could not deliver notifications");
        }
        tokio::select! {
            () = &mut shutdown => break,
            () = state.wake_delivery.notified() => {},
            () = tokio::time::sleep(POLL) => {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_caps() {
        assert_eq!(backoff(1), 2);
        assert_eq!(backoff(2), 4);
        assert_eq!(backoff(5), 32);
        assert_eq!(backoff(20), 300);
    }
}
