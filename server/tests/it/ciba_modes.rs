//! Ping and push delivery to real HTTP receivers on 127.0.0.1, through the
//! durable outbox: bearer checks, retries, no redirects, and restarts.

use std::sync::{Arc, Mutex};

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use outband_protocol::jose::verify_jwt;
use outband_protocol::{DeliveryMode, SigningAlg};
use outband_server::ciba::{delivery, lifecycle};
use serde_json::Value;

use crate::ciba_support::LOOPBACK_OUTBOUND;
use crate::support::TestServer;

/// What a receiver saw: the Authorization header and the JSON body.
type Call = (Option<String>, Value);

/// A client's notification endpoint that records what it receives and answers
/// with the statuses it is given, one per call (then 204).
#[derive(Clone, Default)]
struct Receiver {
    calls: Arc<Mutex<Vec<Call>>>,
    statuses: Arc<Mutex<Vec<u16>>>,
}

impl Receiver {
    async fn start(statuses: &[u16]) -> (Self, String) {
        let receiver = Self {
            statuses: Arc::new(Mutex::new(statuses.to_vec())),
            ..Self::default()
        };
        let state = receiver.clone();
        let app = Router::new().route(
            "/cb",
            post(move |headers: HeaderMap, Json(body): Json<Value>| {
                let state = state.clone();
                async move {
                    let bearer = headers
                        .get("authorization")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    state.calls.lock().unwrap().push((bearer, body));
                    let mut statuses = state.statuses.lock().unwrap();
                    let status = if statuses.is_empty() { 204 } else { statuses.remove(0) };
                    if status == 302 {
                        return (StatusCode::FOUND, [("location", "http://127.0.0.1:9/elsewhere")]).into_response();
                    }
                    StatusCode::from_u16(status).unwrap().into_response()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/cb", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }
}

async fn server_with(mode: DeliveryMode, endpoint: &str) -> TestServer {
    let server = TestServer::with_config(LOOPBACK_OUTBOUND).await;
    server.add_ciba_client("shop", mode, Some(endpoint)).await;
    server.add_user("alice", None).await;
    server
}

async fn start(server: &TestServer) -> String {
    let reply = server
        .bc_authorize(
            "shop",
            "scope=openid&login_hint=alice&client_notification_token=nt-8f2c1d9e7b",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["auth_req_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn ping_then_redeem() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    assert_eq!(
        delivery::deliver_due(&server.state).await.unwrap(),
        0,
        "nothing to send while pending"
    );
    server.decide(&id, true).await;
    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 1);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0.as_deref(), Some("Bearer nt-8f2c1d9e7b"));
    assert_eq!(calls[0].1, serde_json::json!({ "auth_req_id": id }));
    assert_eq!(server.poll("shop", &id).await.status, 200);
    assert_eq!(
        delivery::deliver_due(&server.state).await.unwrap(),
        0,
        "delivered exactly once"
    );
}

#[tokio::test]
async fn ping_requires_a_notification_token() {
    let (_receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    server
        .bc_authorize("shop", "scope=openid&login_hint=alice")
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn a_notification_token_must_be_an_rfc6750_b64token() {
    let (_receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let long = "t".repeat(1025);
    for (what, token) in [
        ("a space", "nt%208f2c"),
        ("a control character", "nt%018f2c"),
        ("non-ASCII", "nt-t%C3%B6k"),
        ("= inside", "nt%3D8f2c"),
        ("only =", "%3D%3D"),
        ("a comma", "nt%2C8f2c"),
        ("1025 characters", long.as_str()),
    ] {
        let body = format!("scope=openid&login_hint=alice&client_notification_token={token}");
        let reply = server.bc_authorize("shop", &body).await;
        reply.assert_error(400, "invalid_request");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("client_notification_token"),
            "{what}: {description}"
        );
    }
    assert_eq!(
        server
            .state
            .store
            .count_pending_ciba_requests_of_client(&outband_protocol::ClientId::new("shop"), crate::support::T0)
            .await
            .unwrap(),
        0,
        "no request was started"
    );
    // Every b64token character, trailing padding, and exactly 1024 characters.
    let exact = "t".repeat(1024);
    for token in ["aZ09-._~%2B%2F%3D%3D", exact.as_str()] {
        let body = format!("scope=openid&login_hint=alice&client_notification_token={token}");
        let reply = server.bc_authorize("shop", &body).await;
        assert_eq!(reply.status, 200, "{token}: {}", reply.text);
    }
}

#[tokio::test]
async fn push_delivers_tokens_with_the_ciba_claims() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Push, &url).await;
    let reply = server
        .bc_authorize(
            "shop",
            "scope=openid&login_hint=alice&client_notification_token=nt-8f2c1d9e7b",
        )
        .await;
    assert!(reply.json.get("interval").is_none(), "no interval in push mode");
    let id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    server.poll("shop", &id).await.assert_error(400, "unauthorized_client");
    server.decide(&id, true).await;
    delivery::deliver_due(&server.state).await.unwrap();
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    let body = &calls[0].1;
    assert_eq!(body["auth_req_id"], id);
    assert_eq!(body["token_type"], "Bearer");
    let id_token = verify_jwt(
        body["id_token"].as_str().unwrap(),
        &server.jwks().await,
        &[SigningAlg::RS256],
    )
    .unwrap();
    assert_eq!(id_token.claims["urn:openid:params:jwt:claim:auth_req_id"], id);
    let at_hash = outband_protocol::jose::half_hash(body["access_token"].as_str().unwrap());
    assert_eq!(id_token.claims["at_hash"], at_hash);
    assert_eq!(
        server.ciba_request(&id).await.state,
        outband_server::store::CibaState::Redeemed
    );
}

#[tokio::test]
async fn push_errors_for_denial_and_expiry() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Push, &url).await;
    let denied = start(&server).await;
    server.decide(&denied, false).await;
    let expired = start(&server).await;
    server.clock.advance(121);
    lifecycle::expire_due(&server.state).await.unwrap();
    delivery::deliver_due(&server.state).await.unwrap();
    let calls = receiver.calls();
    let by_id = |id: &str| calls.iter().find(|c| c.1["auth_req_id"] == id).unwrap().1.clone();
    assert_eq!(by_id(&denied)["error"], "access_denied");
    assert_eq!(by_id(&expired)["error"], "expired_token");
}

#[tokio::test]
async fn server_errors_are_retried_client_errors_are_not() {
    let (receiver, url) = Receiver::start(&[503, 500]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    server.decide(&id, true).await;
    delivery::deliver_due(&server.state).await.unwrap();
    assert_eq!(receiver.calls().len(), 1);
    assert_eq!(
        delivery::deliver_due(&server.state).await.unwrap(),
        0,
        "not due before the backoff"
    );
    server.clock.advance(delivery::backoff(1));
    delivery::deliver_due(&server.state).await.unwrap();
    server.clock.advance(delivery::backoff(2));
    delivery::deliver_due(&server.state).await.unwrap();
    assert_eq!(receiver.calls().len(), 3, "503, 500, then delivered");
    assert!(server.state.store.pending_notifications(10).await.unwrap().is_empty());

    let (refusing, url) = Receiver::start(&[401]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    server.decide(&id, true).await;
    delivery::deliver_due(&server.state).await.unwrap();
    server.clock.advance(600);
    delivery::deliver_due(&server.state).await.unwrap();
    assert_eq!(refusing.calls().len(), 1, "a 4xx is final");
    let failed = server.state.store.failed_notifications(10).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(failed[0].last_error.as_deref().unwrap().contains("401"));
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let (receiver, url) = Receiver::start(&[302]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    server.decide(&id, true).await;
    delivery::deliver_due(&server.state).await.unwrap();
    assert_eq!(receiver.calls().len(), 1, "the redirect target is never called");
    assert!(
        server.state.store.failed_notifications(10).await.unwrap().is_empty(),
        "a redirect is retried, not final"
    );
}

#[tokio::test]
async fn a_pending_notification_survives_a_restart() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    server.decide(&id, true).await;
    // The node stops before delivering; a new node over the same database delivers.
    let restarted = outband_server::state::AppState::build(
        (*server.state.settings).clone(),
        server.state.store.clone(),
        server.clock.clone(),
    )
    .await
    .unwrap();
    drop(server.state.clone());
    assert_eq!(delivery::deliver_due(&restarted).await.unwrap(), 1);
    assert_eq!(receiver.calls().len(), 1);
}

/// Records a decision the way a node does before it queues the notification,
/// and stops there, as a `kill -9` at that moment would.
async fn decide_then_crash(server: &TestServer, auth_req_id: &str, approve: bool) -> String {
    let record = server.ciba_request(auth_req_id).await;
    let decision = outband_server::store::CibaDecision {
        approve,
        device_id: None,
        amr: Some(r#"["test"]"#.into()),
        acr: None,
        deny_reason: None,
    };
    let decided = server
        .state
        .store
        .decide_ciba_request(&record.id, &decision, server.state.now())
        .await
        .unwrap();
    assert!(decided.is_some(), "the request was pending");
    record.id
}

#[tokio::test]
async fn a_ping_lost_between_decision_and_queue_is_sent_once_by_the_sweep() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Ping, &url).await;
    let id = start(&server).await;
    decide_then_crash(&server, &id, true).await;

    // Right after the decision the deciding node may still be queueing: no sweep yet.
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 0);
    server.clock.advance(20);
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 1);
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 0);
    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 1);
    assert_eq!(receiver.calls().len(), 1);
    assert_eq!(receiver.calls()[0].1, serde_json::json!({ "auth_req_id": id }));
    assert_eq!(server.poll("shop", &id).await.status, 200);

    // Delivered: later sweeps leave it alone.
    server.clock.advance(60);
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 0);
    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 0);
}

#[tokio::test]
async fn a_push_lost_after_its_tokens_were_issued_is_issued_and_sent_again() {
    let (receiver, url) = Receiver::start(&[]).await;
    let server = server_with(DeliveryMode::Push, &url).await;
    let id = start(&server).await;
    let request_id = decide_then_crash(&server, &id, true).await;
    // The node had issued the tokens and marked the request redeemed, then stopped.
    server
        .state
        .store
        .mark_redeemed(&request_id, server.state.now())
        .await
        .unwrap();

    server.clock.advance(20);
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 1);
    assert_eq!(delivery::deliver_due(&server.state).await.unwrap(), 1);
    let calls = receiver.calls();
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1["auth_req_id"], id.as_str());
    assert!(calls[0].1["access_token"].is_string(), "{}", calls[0].1);
    assert!(calls[0].1["id_token"].is_string(), "{}", calls[0].1);
    assert_eq!(lifecycle::requeue_lost_notifications(&server.state).await.unwrap(), 0);
}
