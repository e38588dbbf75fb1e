//! The refresh-token rotation grace window (`[tokens] refresh_grace_seconds`,
//! `grants::refresh_grace`): a just-rotated refresh token may be retried once
//! within the window (its successor is revoked and a new pair issued); a retry
//! after the window, a second retry, or a retry after the successor was used
//! revokes the whole grant.

use outband_protocol::{Profile, RefreshToken};

use crate::browser_support::Live;
use crate::native_support::{native_code, redeem_public, refresh_public, LOOPBACK_V4};
use crate::support::TestServer;

async fn server(config: &str) -> TestServer {
    let server = TestServer::with_config(config).await;
    server.add_native_client(Profile::Oidc).await;
    server.add_password_user("alice").await;
    server
}

/// A fresh grant's first refresh token.
async fn first_refresh_token(live: &Live) -> String {
    let code = native_code(live, LOOPBACK_V4, &[]).await;
    let (status, tokens) = redeem_public(live, &code, LOOPBACK_V4, None).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["refresh_token"].as_str().unwrap().to_owned()
}

/// Refreshes and expects success: the new refresh token.
async fn rotate(live: &Live, token: &str) -> String {
    let (status, body) = refresh_public(live, token, None).await;
    assert_eq!(status, 200, "{body}");
    let next = body["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(next, token);
    next
}

async fn refused(live: &Live, token: &str) {
    let (status, body) = refresh_public(live, token, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

/// Whether the stored refresh token is revoked.
async fn revoked(server: &TestServer, token: &str) -> bool {
    let hash = RefreshToken::new(token).hash();
    server.state.store.token(&hash).await.unwrap().unwrap().revoked
}

#[tokio::test]
async fn a_retry_within_the_window_re_rotates_once() {
    let server = server("").await;
    assert_eq!(server.state.settings.refresh_grace_seconds, 10, "the default");
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    let r2 = rotate(&live, &r1).await;
    // The answer with r2 was lost; the app retries with r1 a few seconds later.
    server.clock.advance(5);
    let r3 = rotate(&live, &r1).await;
    assert_ne!(r3, r2);
    assert!(revoked(&server, &r2).await, "the lost successor is retired");
    // The grant lives on with r3.
    let r4 = rotate(&live, &r3).await;
    // A second retry of r1 is a replay: the grant is revoked.
    refused(&live, &r1).await;
    assert!(revoked(&server, &r4).await);
    refused(&live, &r4).await;
}

#[tokio::test]
async fn reuse_after_the_window_revokes_the_grant() {
    let server = server("").await;
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    let r2 = rotate(&live, &r1).await;
    server.clock.advance(server.state.settings.refresh_grace_seconds + 1);
    refused(&live, &r1).await;
    assert!(revoked(&server, &r2).await, "the whole family is revoked");
    refused(&live, &r2).await;
}

#[tokio::test]
async fn a_retry_after_the_successor_was_used_is_a_replay() {
    let server = server("").await;
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    let r2 = rotate(&live, &r1).await;
    let r3 = rotate(&live, &r2).await;
    server.clock.advance(1);
    refused(&live, &r1).await;
    assert!(revoked(&server, &r3).await);
    refused(&live, &r3).await;
}

#[tokio::test]
async fn the_successor_of_a_retried_token_is_a_replay_when_presented() {
    let server = server("").await;
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    let r2 = rotate(&live, &r1).await;
    let r3 = rotate(&live, &r1).await;
    // Whoever holds the retired successor r2 (a thief, or the client after all)
    // is detected: the grant dies.
    refused(&live, &r2).await;
    assert!(revoked(&server, &r3).await);
}

#[tokio::test]
async fn two_concurrent_retries_leave_one_winner_at_most() {
    let server = server("").await;
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    rotate(&live, &r1).await;
    let (a, b) = tokio::join!(refresh_public(&live, &r1, None), refresh_public(&live, &r1, None));
    // The loser is a replay and revokes the grant; when it does so before the
    // winner has recorded its new pair, that pair dies too. Either way never two.
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert!(statuses == [200, 400] || statuses == [400, 400], "{a:?} {b:?}");
}

#[tokio::test]
async fn a_zero_window_turns_retries_off() {
    let server = server("[tokens]\nrefresh_grace_seconds = 0\n").await;
    assert_eq!(server.state.settings.refresh_grace_seconds, 0);
    let live = server.live().await;
    let r1 = first_refresh_token(&live).await;
    let r2 = rotate(&live, &r1).await;
    refused(&live, &r1).await;
    refused(&live, &r2).await;
}
