//! Refresh-token rotation and its grace window.
//!
//! Every refresh retires the presented refresh token and issues a successor
//! ([RFC 9700 §4.14.2](https://www.rfc-editor.org/rfc/rfc9700#section-4.14.2)).
//! Presenting a retired token again normally means it was stolen, and the whole
//! grant (every token sharing its `grant_id`) is revoked.
//!
//! A client whose refresh answer was lost (a dropped connection, a crash before
//! it stored the new token) retries with the old token. To spare it a revoked
//! grant, a retired token may be used **once more within `[tokens]
//! refresh_grace_seconds`** (default 10 s, `0` turns it off) of its rotation:
//!
//! - the successor issued by the first rotation is revoked, and a new pair is
//!   issued (we never keep tokens in clear, so the first answer cannot be
//!   repeated; the successor's hash is all we know);
//! - only if that successor was never used: if the client (or a thief) already
//!   refreshed with it, the retry is a replay and the grant is revoked;
//! - only once: the retired token then forgets its successor, so a second retry,
//!   or any use after the window, revokes the grant.
//!
//! Races are settled by conditional updates (`Store::take_rotation_retry`): of
//! two retries only one wins, and a retry racing a use of the successor leaves
//! exactly one of them working. A thief who replays a stolen token inside the
//! window wins a pair but revokes the client's successor, so the next refresh by
//! the client is a replay and revokes the grant: theft is still detected, one
//! refresh later. Access tokens minted by the first rotation stay valid until
//! they expire (short-lived); DPoP- and certificate-bound grants are checked for
//! the key before any of this (`grants::refresh_token`), so without the key a
//! retired token neither retries nor revokes anything.

use outband_protocol::RefreshToken;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::TokenRecord;
use crate::tokens::random_token;

/// Retires the active refresh token `hash`, naming the returned successor (not
/// yet recorded) as its replacement. `None` when another request retired it first.
pub async fn rotate(state: &AppState, hash: &str) -> Result<Option<RefreshToken>> {
    let successor = RefreshToken::new(random_token());
    let rotated = state
        .store
        .rotate_refresh_token(hash, &successor.hash(), state.now())
        .await?;
    Ok(rotated.then_some(successor))
}

/// A retired refresh token presented again: within the grace window, and the
/// first retry, the successor is revoked and a new one (to be recorded) is
/// returned; otherwise `None`, a replay.
pub async fn retry(state: &AppState, record: &TokenRecord) -> Result<Option<RefreshToken>> {
    let grace = state.settings.refresh_grace_seconds;
    if grace <= 0 {
        return Ok(None);
    }
    let since = state.now() - grace;
    if !state.store.take_rotation_retry(&record.token_hash, since).await? {
        return Ok(None);
    }
    tracing::info!(client_id = %record.client_id, "a just-rotated refresh token was retried within the grace window; re-rotated");
    Ok(Some(RefreshToken::new(random_token())))
}

/// A replayed refresh token: revokes every token of the grant.
pub async fn replay(state: &AppState, record: &TokenRecord, grant_id: &str) -> Result<Error> {
    let revoked = state.store.revoke_tokens_of_grant(grant_id).await?;
    tracing::warn!(client_id = %record.client_id, revoked, "a retired refresh token was presented again; grant revoked");
    Ok(Error::invalid_grant(
        "refresh_token was already used; the grant has been revoked",
    ))
}
