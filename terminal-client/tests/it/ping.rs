//! Ping mode when the sale does not end in a payment: the customer denies, or
//! nobody answers and the request expires. The server really pings the
//! till's listener on 127.0.0.1 (its outbox worker runs in real time); the
//! till then asks the token endpoint, and nothing is charged.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use outband_protocol::DeliveryMode;
use outband_server::store::{CibaState, TestDecision};
use outband_terminal::{CancelToken, CibaClient, NotificationListener, Outcome, PayError, WaitEvent};

use crate::notify::wait_in_background;
use crate::support::{sale, TerminalServer, TestServer};

/// A server with ping client `till` notified at a fresh listener, and a client for it.
async fn setup() -> (TestServer, CibaClient) {
    let listener = NotificationListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let server = TestServer::start();
    server
        .add_client("till", DeliveryMode::Ping, Some(&listener.url()), |_| {})
        .await;
    let client = server
        .client("till")
        .set_delivery_mode(DeliveryMode::Ping)
        .set_notification_listener(listener)
        .build()
        .unwrap();
    (server, client)
}

/// Nothing was paid for `reference` at the bank.
async fn nothing_charged(client: &CibaClient, reference: &str) {
    let payments = client.payments_by_reference(reference).await.unwrap();
    assert!(payments.is_empty(), "no payment for {reference}: {payments:?}");
}

#[tokio::test]
async fn a_ping_sale_the_customer_denies_reports_the_denial() {
    let (server, client) = setup().await;
    server.add_user("alice").await;
    let mut sale = sale("alice@example.com");
    sale.reference = Some("PING-DENY".into());
    let started = Arc::new(client.start(sale).await.unwrap());
    let (waiter, events) = wait_in_background(&client, &started);

    // The customer's device says no.
    server.decide(&started.auth_req_id, false).await;
    let outcome = waiter.await.unwrap();
    let Outcome::Denied(reason) = outcome else {
        panic!("expected a denial, got {outcome:?}")
    };
    assert!(
        reason.as_deref().is_some_and(|r| r.contains("denied")),
        "the server's error_description: {reason:?}"
    );
    assert_eq!(
        events.lock().unwrap().as_slice(),
        [WaitEvent::Notified],
        "the ping brought the news"
    );
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Denied);
    nothing_charged(&client, "PING-DENY").await;
}

#[tokio::test]
async fn pay_in_ping_mode_returns_the_denial_and_charges_nothing() {
    let (server, client) = setup().await;
    server.add_test_user("dave", Some(TestDecision::Deny)).await;
    let mut sale = sale("dave@example.com");
    sale.reference = Some("PING-DAVE".into());
    match client.pay(sale, &CancelToken::new()).await {
        Err(PayError::Denied(why)) => assert!(why.is_some(), "the server's description"),
        other => panic!("expected a denial, got {other:?}"),
    }
    nothing_charged(&client, "PING-DAVE").await;
}

#[tokio::test]
async fn a_ping_sale_nobody_answers_reports_expiry() {
    let (server, client) = setup().await;
    server.add_user("alice").await;
    let mut sale = sale("alice@example.com");
    sale.reference = Some("PING-LATE".into());
    sale.requested_expiry = Some(Duration::from_secs(60));
    let started = Arc::new(client.start(sale).await.unwrap());
    let (waiter, events) = wait_in_background(&client, &started);

    // The customer walks away: the server's time passes the request's expiry,
    // its sweep expires it and pings the till.
    server.clock.advance(61);
    let outcome = waiter.await.unwrap();
    assert!(matches!(outcome, Outcome::Expired), "{outcome:?}");
    assert_eq!(
        events.lock().unwrap().as_slice(),
        [WaitEvent::Notified],
        "the server's expiry ping ended the wait, not the till's own deadline"
    );
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Expired);
    nothing_charged(&client, "PING-LATE").await;
}
