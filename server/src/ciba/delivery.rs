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
        deliver(state, &notification).await?;
    }
    Ok(attempted)
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
        NotificationKind::BackchannelLogout => crate::account::backchannel::send(state, n, &url, &body).await?,
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
        state.store.mark_notification_failed(n.id, now, &error).await?;
        observability::notification_delivery(n.kind, DeliveryResult::Failed);
        tracing::warn!(id = n.id, attempts = n.attempts, %error, "notification failed for good");
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
