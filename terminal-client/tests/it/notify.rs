//! Ping and push mode: the server really POSTs to the terminal's listener on
//! 127.0.0.1 (real time: the server's outbox worker delivers at once).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use outband_protocol::jose::half_hash_for;
use outband_protocol::{DeliveryMode, SigningAlg};
use outband_server::store::{CibaState, TestDecision};
use outband_terminal::{CancelToken, CibaClient, NotificationListener, Outcome, Started, WaitEvent};
use serde_json::json;

use crate::support::{new_key, sale, TerminalServer, TestServer, T0};

async fn listener() -> NotificationListener {
    NotificationListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap()
}

/// A server with client `till` in `mode`, notified at a fresh listener, and a client for it.
async fn setup(mode: DeliveryMode) -> (TestServer, CibaClient, NotificationListener) {
    let listener = listener().await;
    let server = TestServer::start();
    server.add_client("till", mode, Some(&listener.url()), |_| {}).await;
    let client = server
        .client("till")
        .set_delivery_mode(mode)
        .set_notification_listener(listener.clone())
        .build()
        .unwrap();
    (server, client, listener)
}

/// Waits in a task, collecting the progress events.
pub(crate) fn wait_in_background(
    client: &CibaClient,
    started: &Arc<Started>,
) -> (tokio::task::JoinHandle<Outcome>, Arc<Mutex<Vec<WaitEvent>>>) {
    let events: Arc<Mutex<Vec<WaitEvent>>> = Arc::default();
    let (client, started, seen) = (client.clone(), started.clone(), events.clone());
    let task = tokio::spawn(async move {
        client
            .wait_with(&started, &CancelToken::new(), |e| seen.lock().unwrap().push(e))
            .await
            .unwrap()
    });
    (task, events)
}

#[tokio::test]
async fn ping_then_redeem() {
    let (server, client, _listener) = setup(DeliveryMode::Ping).await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let started = client.start(sale("bob@example.com")).await.unwrap();
    assert!(started.client_notification_token().is_some());
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    let Outcome::Approved(tokens) = outcome else {
        panic!("expected approval, got {outcome:?}")
    };
    assert_eq!(
        client.receipt(&started, &tokens).unwrap().token.sub.as_deref(),
        Some("sub-bob")
    );
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Redeemed);
}

#[tokio::test]
async fn push_tokens_are_accepted_after_checking_the_id_token() {
    let (server, client, _listener) = setup(DeliveryMode::Push).await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let started = client.start(sale("bob@example.com")).await.unwrap();
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    let Outcome::Approved(tokens) = outcome else {
        panic!("expected approval, got {outcome:?}")
    };
    assert!(tokens.id_token.is_some());
    let receipt = client.receipt(&started, &tokens).unwrap();
    assert_eq!(receipt.mode, DeliveryMode::Push);
    assert_eq!(receipt.token.sub.as_deref(), Some("sub-bob"));
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Redeemed);
}

#[tokio::test]
async fn a_push_denial_ends_the_sale() {
    let (server, client, _listener) = setup(DeliveryMode::Push).await;
    server.add_test_user("dave", Some(TestDecision::Deny)).await;
    let started = client.start(sale("dave@example.com")).await.unwrap();
    let outcome = client.wait(&started, &CancelToken::new()).await.unwrap();
    assert!(matches!(outcome, Outcome::Denied(_)), "{outcome:?}");
}

/// POSTs `body` to the listener with `authorization`; returns the status and body.
async fn post(listener: &NotificationListener, authorization: Option<&str>, body: serde_json::Value) -> (u16, String) {
    let mut request = reqwest::Client::new().post(listener.url()).json(&body);
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let www = response
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, format!("{www}{}", response.text().await.unwrap()))
}

#[tokio::test]
async fn forged_push_tokens_are_refused_and_the_real_ones_accepted() {
    let (server, client, listener) = setup(DeliveryMode::Push).await;
    server.add_test_user("alice", None).await;
    let started = Arc::new(client.start(sale("alice@example.com")).await.unwrap());
    let (waiter, events) = wait_in_background(&client, &started);
    let bearer = format!("Bearer {}", started.client_notification_token().unwrap().secret());
    let auth_req_id = started.auth_req_id.secret().to_owned();
    let claims = |at_hash: String, aud: &str| {
        json!({
            "iss": server.url, "sub": "sub-alice", "aud": aud, "iat": T0, "exp": T0 + 300,
            "urn:openid:params:jwt:claim:auth_req_id": auth_req_id, "at_hash": at_hash,
        })
    };
    let server_key = server.state.keys.signer(SigningAlg::RS256).unwrap();
    let stranger = new_key(SigningAlg::ES256);
    let forgeries = [
        // Signed by a key that is not the server's.
        stranger.sign(
            Some("JWT"),
            claims(half_hash_for(SigningAlg::ES256, "forged-at"), "till")
                .as_object()
                .unwrap(),
        ),
        // The server's signature, but for another access token.
        server_key.sign(
            Some("JWT"),
            claims(half_hash_for(SigningAlg::RS256, "other-at"), "till")
                .as_object()
                .unwrap(),
        ),
        // The server's signature, but for another client.
        server_key.sign(
            Some("JWT"),
            claims(half_hash_for(SigningAlg::RS256, "forged-at"), "other")
                .as_object()
                .unwrap(),
        ),
    ];
    for (i, id_token) in forgeries.into_iter().enumerate() {
        let body = json!({
            "auth_req_id": auth_req_id, "access_token": "forged-at", "token_type": "Bearer",
            "id_token": id_token.unwrap(),
        });
        assert_eq!(post(&listener, Some(&bearer), body).await.0, 204);
        for _ in 0..100 {
            if events.lock().unwrap().len() > i * 2 + 1 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let refusals: Vec<String> = events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            WaitEvent::Refused(why) => Some(why.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(refusals.len(), 3, "{refusals:?}");
    assert!(refusals[0].contains("signature"), "{}", refusals[0]);
    assert!(refusals[1].contains("at_hash"), "{}", refusals[1]);
    assert!(refusals[2].contains("not for this client"), "{}", refusals[2]);
    assert!(!waiter.is_finished(), "still waiting for real tokens");

    server.decide(&started.auth_req_id, true).await;
    let outcome = waiter.await.unwrap();
    let Outcome::Approved(tokens) = outcome else {
        panic!("expected approval, got {outcome:?}")
    };
    assert_ne!(tokens.access_token.secret(), "forged-at");
    assert_eq!(server.request(&started.auth_req_id).await.state, CibaState::Redeemed);
}

#[tokio::test]
async fn a_wrong_bearer_gets_401_and_the_sale_still_completes() {
    let (server, client, listener) = setup(DeliveryMode::Ping).await;
    server.add_test_user("alice", None).await;
    let started = Arc::new(client.start(sale("alice@example.com")).await.unwrap());
    let (waiter, events) = wait_in_background(&client, &started);
    let expected = started.client_notification_token().unwrap().secret().to_owned();
    let ping = json!({ "auth_req_id": started.auth_req_id.secret() });
    for authorization in [
        None,
        Some("Bearer wrong-token".to_owned()),
        Some(format!("Bearer {expected}x")),
        Some(format!("Basic {expected}")),
        Some("Bearer".to_owned()),
    ] {
        let (status, text) = post(&listener, authorization.as_deref(), ping.clone()).await;
        assert_eq!(status, 401, "{authorization:?}");
        assert!(text.contains("Bearer"), "WWW-Authenticate: {text}");
        assert!(!text.contains(&expected), "the 401 must not reveal the token");
    }
    assert!(events.lock().unwrap().is_empty(), "no refused call reached the sale");
    assert!(!waiter.is_finished());

    server.decide(&started.auth_req_id, true).await;
    let outcome = waiter.await.unwrap();
    assert!(matches!(outcome, Outcome::Approved(_)), "{outcome:?}");
    assert_eq!(events.lock().unwrap().as_slice(), [WaitEvent::Notified]);
}

#[tokio::test]
async fn a_listener_answers_401_when_no_sale_waits() {
    let listener = listener().await;
    let (status, _) = post(&listener, Some("Bearer anything"), json!({"auth_req_id": "x"})).await;
    assert_eq!(status, 401);
    let expected = listener.expect(outband_protocol::ClientNotificationToken::new("tok-1"));
    let (status, _) = post(&listener, Some("Bearer tok-1"), json!({"nonsense": true})).await;
    assert_eq!(status, 400, "a body that is neither ping nor push");
    let (status, _) = post(&listener, Some("bearer tok-1"), json!({"auth_req_id": "x"})).await;
    assert_eq!(status, 204, "the scheme is case-insensitive");
    assert!(matches!(
        expected.recv().await,
        Some(outband_terminal::Notification::Ping(_))
    ));
    drop(expected);
    let (status, _) = post(&listener, Some("Bearer tok-1"), json!({"auth_req_id": "x"})).await;
    assert_eq!(status, 401, "a finished sale's token no longer works");
}
