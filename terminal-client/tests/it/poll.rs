//! Poll mode against a real server, on paused tokio time: interval, slow_down,
//! denial, expiry, cancellation, private_key_jwt with signed request objects.

use std::sync::Arc;
use std::time::Duration;

use outband_protocol::jose::UnverifiedJwt;
use outband_protocol::{DeliveryMode, SigningAlg, TokenEndpointAuthMethod};
use outband_server::store::{CibaState, TestDecision};
use outband_terminal::{CancelResult, CancelToken, ClientAuth, Outcome, PayError, WaitEvent, SLOW_DOWN};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::support::{new_key, sale, TerminalServer, TestServer, T0};

#[tokio::test(start_paused = true)]
async fn an_approved_sale_gives_a_receipt_of_the_granted_token() {
    let server = TestServer::start();
    server.add_client("till", DeliveryMode::Poll, None, |_| {}).await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let client = server.client("till").build().unwrap();
    let metadata = client.discover().await.unwrap();
    assert_eq!(metadata.issuer, server.url);

    let mut sale = sale("bob@example.com");
    sale.reference = Some("INV-2027-001".into());
    let began = Instant::now();
    let started = client.start(sale).await.unwrap();
    assert_eq!(started.interval, Duration::from_secs(5));
    assert!(
        started.binding_message.as_str().starts_with("CORN-"),
        "{}",
        started.binding_message
    );
    assert!(started.binding_message.as_str().ends_with(" · EUR 12.50"));

    // What the server recorded is what the customer's device shows.
    let record = server.request(&started.auth_req_id).await;
    assert_eq!(
        record.binding_message.as_deref(),
        Some(started.binding_message.as_str())
    );
    let details: Value = serde_json::from_str(record.authorization_details.as_deref().unwrap()).unwrap();
    assert_eq!(
        details,
        json!([{
            "type": "payment_initiation",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Corner Café",
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "remittanceInformationUnstructured": "INV-2027-001",
        }])
    );
    assert!(record.scope.contains("payments"));

    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    assert!(
        began.elapsed() >= Duration::from_secs(5),
        "the first poll waits the interval"
    );
    let Outcome::Approved(tokens) = outcome else {
        panic!("expected approval, got {outcome:?}")
    };
    let receipt = client.receipt(&started, &tokens).unwrap();
    assert_eq!(receipt.amount, "12.50");
    assert_eq!(receipt.currency, "EUR");
    assert_eq!(receipt.reference, "INV-2027-001");
    assert_eq!(receipt.token.sub.as_deref(), Some("sub-bob"));
    assert_eq!(receipt.token.scope.as_deref(), Some("openid payments"));
    assert_eq!(
        receipt.token.exp,
        Some(T0 + i64::try_from(tokens.expires_in.unwrap()).unwrap())
    );
    assert_eq!(receipt.token.authorization_details, details);
    assert_eq!(receipt.approved_at, T0);
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Redeemed);
}

#[tokio::test(start_paused = true)]
async fn a_denied_sale_ends_denied() {
    let server = TestServer::start();
    server.add_client("till", DeliveryMode::Poll, None, |_| {}).await;
    server.add_test_user("dave", Some(TestDecision::Deny)).await;
    let client = server.client("till").build().unwrap();
    match client.pay(sale("dave@example.com"), &CancelToken::new()).await {
        Err(PayError::Denied(why)) => assert!(why.unwrap().contains("denied"), "the server's description"),
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_sale_nobody_answers_expires() {
    let server = TestServer::start();
    server.add_client("till", DeliveryMode::Poll, None, |_| {}).await;
    server.add_test_user("alice", None).await;
    let client = server.client("till").build().unwrap();
    let mut sale = sale("alice@example.com");
    sale.requested_expiry = Some(Duration::from_secs(2));
    let started = client.start(sale).await.unwrap();
    assert_eq!(started.expires_in, Duration::from_secs(2));
    server.clock.advance(3);
    let began = Instant::now();
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Expired), "{outcome:?}");
    assert_eq!(
        began.elapsed(),
        Duration::from_secs(5),
        "the server said expired_token at the first poll (no local give-up)"
    );
    let state = server.request(&started.auth_req_id).await.state;
    assert!(matches!(state, CibaState::Pending | CibaState::Expired), "{state:?}");
}

#[tokio::test(start_paused = true)]
async fn slow_down_adds_five_seconds_each_time() {
    let server = TestServer::start();
    server.add_client("till", DeliveryMode::Poll, None, |_| {}).await;
    server.add_test_user("alice", None).await;
    let client = server.client("till").build().unwrap();
    let mut started = client.start(sale("alice@example.com")).await.unwrap();
    // Test-only: poll faster than the server allows. The server's clock stands
    // still, so every poll after the first comes too soon.
    started.interval = Duration::ZERO;
    let mut events: Vec<(Instant, WaitEvent)> = Vec::new();
    let outcome = client
        .wait_poll_with(&started, &CancelToken::new(), |event| {
            events.push((Instant::now(), event));
            if events.len() == 4 {
                // The customer approves now (the server runs on its own threads).
                server.decide_blocking(&started.auth_req_id, true);
            }
        })
        .await
        .unwrap();
    let approved_at = Instant::now();
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    let kinds: Vec<&WaitEvent> = events.iter().map(|(_, e)| e).collect();
    assert_eq!(
        kinds,
        [
            &WaitEvent::Pending {
                next_poll_in: Duration::ZERO
            },
            &WaitEvent::SlowDown { interval: SLOW_DOWN },
            &WaitEvent::SlowDown {
                interval: SLOW_DOWN * 2
            },
            &WaitEvent::SlowDown {
                interval: SLOW_DOWN * 3
            },
        ]
    );
    let mut times: Vec<Instant> = events.iter().map(|(t, _)| *t).collect();
    times.push(approved_at);
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(
        gaps,
        [Duration::ZERO, SLOW_DOWN, SLOW_DOWN * 2, SLOW_DOWN * 3],
        "each slow_down adds 5 s to the interval"
    );
}

#[tokio::test(start_paused = true)]
async fn cancelling_withdraws_the_sale_at_the_server() {
    let server = TestServer::start();
    server.add_client("till", DeliveryMode::Poll, None, |_| {}).await;
    server.add_test_user("alice", None).await;
    let client = server.client("till").build().unwrap();

    let started = client.start(sale("alice@example.com")).await.unwrap();
    let cancel = CancelToken::new();
    let waiting = {
        let (client, cancel) = (client.clone(), cancel.clone());
        async move { client.wait(&started, &cancel).await.map(|o| (o, started)) }
    };
    let waiter = tokio::spawn(waiting);
    tokio::time::sleep(Duration::from_secs(12)).await;
    cancel.cancel();
    let (outcome, started) = waiter.await.unwrap().unwrap();
    assert!(matches!(outcome, Outcome::Cancelled), "{outcome:?}");
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Pending);
    assert_eq!(client.cancel(&started).await.unwrap(), CancelResult::Cancelled);
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Cancelled);
    assert_eq!(
        client.cancel(&started).await.unwrap(),
        CancelResult::AlreadyFinished,
        "409"
    );
    let outcome = client.poll(&started).await.unwrap();
    assert!(
        matches!(outcome, outband_terminal::PollResult::Finished(Outcome::Denied(_))),
        "{outcome:?}"
    );

    // pay() withdraws the sale itself when cancelled.
    let cancelled = CancelToken::new();
    cancelled.cancel();
    let err = client.pay(sale("alice@example.com"), &cancelled).await.unwrap_err();
    assert!(matches!(err, PayError::Cancelled), "{err:?}");
}

#[tokio::test(start_paused = true)]
async fn private_key_jwt_with_signed_request_objects() {
    let server = TestServer::start();
    let key = Arc::new(new_key(SigningAlg::ES256));
    let jwks = json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] });
    server
        .add_client("signed-till", DeliveryMode::Poll, None, |meta| {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
            meta.jwks = Some(jwks);
            meta.backchannel_authentication_request_signing_alg = Some(SigningAlg::ES256);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;

    let unsigned = server
        .client("signed-till")
        .set_client_auth(ClientAuth::PrivateKeyJwt(key.clone()))
        .build()
        .unwrap();
    let err = unsigned.start(sale("bob@example.com")).await.unwrap_err();
    assert!(err.to_string().contains("signed request object"), "{err}");

    let client = server
        .client("signed-till")
        .set_client_auth(ClientAuth::PrivateKeyJwt(key.clone()))
        .set_request_object_key(Some(key))
        .build()
        .unwrap();
    let receipt = client.pay(sale("bob@example.com"), &CancelToken::new()).await.unwrap();
    assert_eq!(receipt.token.sub.as_deref(), Some("sub-bob"));
    let tokens = client.client_credentials(None).await.unwrap();
    let claims = UnverifiedJwt::decode(tokens.access_token.secret()).unwrap().claims;
    assert_eq!(claims["client_id"], "signed-till");
}

#[tokio::test]
async fn discovery_must_name_the_configured_issuer() {
    let server = TestServer::start();
    let client = server
        .client("till")
        .set_issuer(format!("{}/", server.url))
        .build()
        .unwrap();
    let err = client.discover().await.unwrap_err();
    assert!(
        matches!(err, outband_terminal::RequestError::Discovery(ref why) if why.contains(&server.url)),
        "{err}"
    );
    let err = client.start(sale("bob@example.com")).await.unwrap_err();
    assert!(matches!(err, outband_terminal::RequestError::Discovery(_)), "{err}");
}
