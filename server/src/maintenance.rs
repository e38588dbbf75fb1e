//! Periodic housekeeping every node runs: pick up signing keys rotated by any
//! node, and purge what has expired (replay-cache entries, tokens, device
//! tokens, activation codes, keys past their overlap, finished CIBA requests
//! and delivered notifications after [`CIBA_RETENTION`]) so the database does
//! not grow without bound.

use std::future::Future;
use std::time::Duration;

use crate::state::AppState;

/// How often a node reloads keys and purges expired rows.
pub const INTERVAL: Duration = Duration::from_secs(60);
/// Seconds finished CIBA requests (past their expiry) and delivered
/// notifications stay for operators (`ciba list`, `notifications list`): 7 days.
/// Failed notifications stay until redelivered; the audit log keeps the history.
pub const CIBA_RETENTION: i64 = 7 * 24 * 3600;

/// Runs one round of housekeeping; failures are logged and retried next round.
pub async fn run_once(state: &AppState) {
    let now = state.now();
    if let Err(err) = state.keys.reload(&state.store, now).await {
        tracing::warn!(error = %err, "could not reload signing keys");
    }
    let store = &state.store;
    let purged = (
        store.purge_expired_jtis(now).await,
        store.purge_expired_tokens(now).await,
        store.purge_unpublished_keys(now).await,
    );
    match purged {
        (Ok(jtis), Ok(tokens), Ok(keys)) if jtis + tokens + keys > 0 => {
            tracing::debug!(jtis, tokens, keys, "purged expired rows");
        }
        (Ok(_), Ok(_), Ok(_)) => {}
        _ => tracing::warn!("could not purge expired rows; will retry"),
    }
    let before = now.saturating_sub(CIBA_RETENTION);
    match (
        store.purge_finished_ciba_requests(before).await,
        store.purge_delivered_notifications(before).await,
    ) {
        (Ok(requests), Ok(notifications)) if requests + notifications > 0 => {
            tracing::debug!(requests, notifications, "purged finished CIBA rows");
        }
        (Ok(_), Ok(_)) => {}
        _ => tracing::warn!("could not purge finished CIBA rows; will retry"),
    }
    match (
        store.purge_expired_device_tokens(now).await,
        store.purge_expired_activation_codes(now).await,
    ) {
        (Ok(tokens), Ok(codes)) if tokens + codes > 0 => {
            tracing::debug!(tokens, codes, "purged expired device tokens and activation codes");
        }
        (Ok(_), Ok(_)) => {}
        _ => tracing::warn!("could not purge expired device tokens or activation codes; will retry"),
    }
    // Codes stay an hour past expiry so a late replay still revokes their tokens.
    match store.purge_expired_browser_rows(now, now.saturating_sub(3600)).await {
        Ok(rows) if rows > 0 => tracing::debug!(rows, "purged expired browser-flow rows"),
        Ok(_) => {}
        Err(_) => tracing::warn!("could not purge expired browser-flow rows; will retry"),
    }
    match store.purge_expired_grant_intents(now).await {
        Ok(rows) if rows > 0 => tracing::debug!(rows, "purged expired grant intents"),
        Ok(_) => {}
        Err(_) => tracing::warn!("could not purge expired grant intents; will retry"),
    }
}

/// Runs housekeeping every [`INTERVAL`] until `shutdown` completes.
pub async fn run(state: AppState, shutdown: impl Future<Output = ()>) {
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = ticker.tick() => run_once(&state).await,
        }
    }
}
