//! The device's live feed (`GET /device/v1/events`, Server-Sent Events): new
//! requests, their ends, resync after falling behind, the end of the stream on
//! revocation, and the per-device stream limit.

use std::time::Duration;

use axum::http::Method;
use outband_protocol::jose::verify_jwt;
use outband_protocol::{DeliveryMode, SigningAlg, Subject};
use outband_server::events::{DeviceEvent, DeviceEventKind};
use serde_json::json;

use crate::support::TestServer;

const POS: &str = "pos";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server.add_user("bob", None).await;
    server
}

async fn start(server: &TestServer, user: &str) -> String {
    let reply = server
        .bc_authorize(
            POS,
            &format!("scope=openid%20payments&login_hint={user}&binding_message=CAFE-7Q2K"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["auth_req_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_request_arrives_live_and_its_approval_reaches_the_client() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let (status, stream) = device.events(&server).await;
    assert_eq!(status, 200);
    let mut stream = stream.unwrap();

    // Bob's requests do not reach alice's device.
    start(&server, "bob").await;
    let auth_req_id = start(&server, "alice").await;
    let record = server.ciba_request(&auth_req_id).await;
    let event = stream.next().await;
    assert_eq!(event.event, "request");
    assert_eq!(event.data["id"], record.id.as_str());
    assert_eq!(event.data["expires_at"], record.expires_at);
    let request_jwt = event.data["request_jwt"].as_str().unwrap().to_owned();
    let verified = verify_jwt(&request_jwt, &server.jwks().await, &[SigningAlg::ES256]).unwrap();
    assert_eq!(verified.claims["binding_message"], "CAFE-7Q2K");
    assert_eq!(verified.claims["jti"], record.id.as_str());
    assert!(event.data.get("subject").is_none());

    let reply = device.decide(&server, &record.id, &request_jwt, "approve").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let decided = stream.next().await;
    assert_eq!(decided.event, "decided");
    assert_eq!(decided.data["id"], record.id.as_str());
    assert!(decided.data.get("request_jwt").is_none());
    let tokens = server.poll(POS, &auth_req_id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);

    // The client cancels: the card is withdrawn.
    let cancelled = start(&server, "alice").await;
    let id = server.ciba_request(&cancelled).await.id;
    assert_eq!(stream.next().await.event, "request");
    let reply = server
        .post_form(
            "/bc-authorize/cancel",
            &format!("auth_req_id={cancelled}"),
            Some((POS, "pos-secret")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let withdrawn = stream.next().await;
    assert_eq!(withdrawn.event, "withdrawn");
    assert_eq!(withdrawn.data["id"], id.as_str());

    // Nobody answers: expired.
    let expiring = start(&server, "alice").await;
    assert_eq!(stream.next().await.event, "request");
    server.clock.advance(121);
    outband_server::ciba::lifecycle::expire_due(&server.state)
        .await
        .unwrap();
    let expired = stream.next().await;
    assert_eq!(expired.event, "expired");
    assert_eq!(expired.data["id"], server.ciba_request(&expiring).await.id.as_str());
}

#[tokio::test]
async fn a_stream_that_falls_behind_is_told_to_resync() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let mut stream = device.events(&server).await.1.unwrap();
    for i in 0..1100 {
        server.state.events.publish(DeviceEvent {
            subject: Subject::new("sub-bob"),
            kind: DeviceEventKind::Request,
            id: format!("r{i}"),
            request_jwt: None,
            expires_at: 0,
        });
    }
    let event = stream.next().await;
    assert_eq!(event.event, "resync");
    assert!(event.data["missed"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn revoking_a_device_ends_its_streams_and_its_tokens() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let mut first = device.events(&server).await.1.unwrap();
    let mut second = device.events(&server).await.1.unwrap();
    let reply = device.call(&server, Method::DELETE, "/device/v1/device", None).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    for stream in [&mut first, &mut second] {
        let event = stream.next().await;
        assert_eq!(event.event, "revoked");
        assert_eq!(event.data["device_id"], device.id.as_str());
        let end = stream.try_next(Duration::from_secs(5)).await;
        assert!(matches!(end, Ok(None)), "the stream ends after revoked");
    }
    device
        .call(&server, Method::GET, "/device/v1/requests", None)
        .await
        .assert_error(401, "invalid_token");
    device.fetch_token(&server).await.assert_error(401, "invalid_client");
    let stored = server.state.store.device(&device.id).await.unwrap().unwrap();
    assert!(stored.revoked_at.is_some());
}

#[tokio::test]
async fn a_revocation_elsewhere_ends_the_stream_at_its_next_event() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let mut stream = device.events(&server).await.1.unwrap();
    // As `devices revoke` does from another process: only the database knows.
    assert!(server
        .state
        .store
        .revoke_device(&device.id, server.state.now())
        .await
        .unwrap());
    start(&server, "alice").await;
    assert_eq!(stream.next().await.event, "revoked");
    assert!(matches!(stream.try_next(Duration::from_secs(5)).await, Ok(None)));
}

#[tokio::test]
async fn a_device_may_hold_four_streams() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let mut streams = Vec::new();
    for _ in 0..4 {
        let (status, stream) = device.events(&server).await;
        assert_eq!(status, 200);
        streams.push(stream.unwrap());
    }
    let (status, _) = device.events(&server).await;
    assert_eq!(status, 429);
    let reply = server
        .send(device.request(&server, Method::GET, "/device/v1/events", None))
        .await;
    assert_eq!(
        reply.json,
        json!({"error": "too_many_streams", "error_description": "this device already has 4 open event streams"})
    );
    // Another device of the same user is not affected.
    let mut other = server.enrolled_device("alice").await;
    assert_eq!(other.events(&server).await.0, 200);
    // Closing a stream frees its slot.
    drop(streams.pop());
    assert_eq!(device.events(&server).await.0, 200);
}
