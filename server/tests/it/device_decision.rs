//! Decisions from devices: a device-signed JWT over exactly what the device
//! showed, applied once, kept as audit evidence.

use axum::http::Method;
use outband_protocol::jose::verify_jwt;
use outband_protocol::{DeliveryMode, SigningAlg};
use outband_server::store::AuditQuery;
use serde_json::json;

use crate::device_support::{device_key, Device};
use crate::support::TestServer;

const POS: &str = "pos";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server.add_user("bob", None).await;
    server
}

/// Starts a request for `user`; returns its auth_req_id, public id and request JWT.
async fn start(server: &TestServer, user: &str) -> (String, String, String) {
    let reply = server
        .bc_authorize(
            POS,
            &format!("scope=openid%20payments&login_hint={user}&binding_message=CAFE-7Q2K"),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    let record = server.ciba_request(&auth_req_id).await;
    (auth_req_id, record.id, record.request_jwt)
}

async fn audit(server: &TestServer, request_id: &str) -> Vec<outband_server::store::AuditEvent> {
    server
        .state
        .store
        .audit(&AuditQuery {
            request_id: Some(request_id.to_owned()),
            ..AuditQuery::default()
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn an_approval_reaches_the_polling_client_once() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let (auth_req_id, id, request_jwt) = start(&server, "alice").await;
    server
        .poll(POS, &auth_req_id)
        .await
        .assert_error(400, "authorization_pending");

    let jwt = device.decision_jwt(server.state.now(), "approve", &id, &request_jwt, &json!({}));
    let reply = device.post_decision(&server, &id, &jwt).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json, json!({"id": id, "state": "approved"}));

    server.clock.advance(5);
    let tokens = server.poll(POS, &auth_req_id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let id_token = verify_jwt(
        tokens.json["id_token"].as_str().unwrap(),
        &server.jwks().await,
        &[SigningAlg::RS256],
    )
    .unwrap();
    assert_eq!(id_token.claims["amr"], json!(["hwk", "pin"]));
    assert_eq!(id_token.claims["acr"], "urn:outband:acr:device");

    let stored = server.ciba_request(&auth_req_id).await;
    assert_eq!(stored.device_id.as_deref(), Some(device.id.as_str()));
    let events = audit(&server, &id).await;
    let evidence = events
        .iter()
        .find(|e| e.event == "device.decision")
        .expect("the decision is audited");
    assert_eq!(evidence.detail["decision_jwt"], jwt.as_str());
    assert_eq!(evidence.detail["device_id"], device.id.as_str());
    assert_eq!(evidence.detail["decision"], "approve");

    // A second decision, however well signed, changes nothing.
    let reply = device.decide(&server, &id, &request_jwt, "deny").await;
    reply.assert_error(409, "conflict");
    // Replaying the first JWT is caught by its jti.
    let reply = device.post_decision(&server, &id, &jwt).await;
    reply.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn decisions_must_match_the_request_the_device_and_the_clock() {
    let server = server().await;
    let mut alice = server.enrolled_device("alice").await;
    let mut bob = server.enrolled_device("bob").await;
    let (auth_req_id, id, request_jwt) = start(&server, "alice").await;
    let now = server.state.now();

    // A hash over something else than what was sent.
    let jwt = alice.decision_jwt(now, "approve", &id, &format!("{request_jwt}x"), &json!({}));
    let reply = alice.post_decision(&server, &id, &jwt).await;
    reply.assert_error(400, "invalid_request");
    assert_eq!(
        reply.json["error_description"],
        "request_hash does not match what was sent"
    );
    // Another user's device.
    let reply = bob.decide(&server, &id, &request_jwt, "approve").await;
    reply.assert_error(404, "not_found");
    // An unknown request.
    alice
        .decide(&server, "no-such-request", &request_jwt, "approve")
        .await
        .assert_error(404, "not_found");
    // request_id of another request in the body.
    let jwt = alice.decision_jwt(now, "approve", "other", &request_jwt, &json!({}));
    alice
        .post_decision(&server, &id, &jwt)
        .await
        .assert_error(400, "invalid_request");
    // Signed by a key that is not the device's.
    let stranger = Device {
        key: device_key(SigningAlg::ES256),
        id: alice.id.clone(),
        credential: String::new(),
        subject: alice.subject.clone(),
        token: None,
        nonce: None,
    };
    let jwt = stranger.decision_jwt(now, "approve", &id, &request_jwt, &json!({}));
    alice
        .post_decision(&server, &id, &jwt)
        .await
        .assert_error(400, "invalid_request");
    // Wrong typ, stale iat, bad decision, bad amr, no jti.
    let no_typ = alice
        .key
        .sign(None, json!({"decision": "approve"}).as_object().unwrap())
        .unwrap();
    for (what, jwt) in [
        ("typ", no_typ),
        (
            "iat",
            alice.decision_jwt(now - 121, "approve", &id, &request_jwt, &json!({})),
        ),
        (
            "decision",
            alice.decision_jwt(now, "maybe", &id, &request_jwt, &json!({})),
        ),
        (
            "amr",
            alice.decision_jwt(now, "approve", &id, &request_jwt, &json!({"amr": "pin"})),
        ),
        (
            "jti",
            alice.decision_jwt(now, "approve", &id, &request_jwt, &json!({"jti": null})),
        ),
    ] {
        let reply = alice.post_decision(&server, &id, &jwt).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_request", "{what}");
    }
    alice
        .call(
            &server,
            Method::POST,
            &format!("/device/v1/requests/{id}/decision"),
            Some(json!({})),
        )
        .await
        .assert_error(400, "invalid_request");
    // Nothing of that moved the request.
    server
        .poll(POS, &auth_req_id)
        .await
        .assert_error(400, "authorization_pending");

    // Too late: 409 naming the expiry.
    server.clock.advance(121);
    alice.fetch_token(&server).await;
    let reply = alice.decide(&server, &id, &request_jwt, "approve").await;
    reply.assert_error(409, "conflict");
    assert!(reply.text.contains("expired"), "{}", reply.text);
}

#[tokio::test]
async fn deny_fraud_denies_the_client_and_is_audited_as_fraud() {
    let server = server().await;
    let mut device = server.enrolled_device("alice").await;
    let (auth_req_id, id, request_jwt) = start(&server, "alice").await;
    let reply = device.decide(&server, &id, &request_jwt, "deny_fraud").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["state"], "denied");
    server.poll(POS, &auth_req_id).await.assert_error(400, "access_denied");
    let stored = server.ciba_request(&auth_req_id).await;
    assert_eq!(stored.deny_reason.as_deref(), Some("fraud"));
    let events = audit(&server, &id).await;
    assert!(
        events
            .iter()
            .any(|e| e.event == "ciba.denied" && e.detail["reason"] == "fraud"),
        "{events:?}"
    );
    assert!(events
        .iter()
        .any(|e| e.event == "device.decision" && e.detail["decision"] == "deny_fraud"));

    // A plain deny.
    let (auth_req_id, id, request_jwt) = start(&server, "alice").await;
    device.decide(&server, &id, &request_jwt, "deny").await;
    server.poll(POS, &auth_req_id).await.assert_error(400, "access_denied");
    assert_eq!(
        server.ciba_request(&auth_req_id).await.deny_reason.as_deref(),
        Some("denied")
    );
}

#[tokio::test]
async fn approvals_of_number_matching_clients_carry_the_number() {
    let server = server().await;
    let mut client = server
        .state
        .store
        .client(&outband_protocol::ClientId::new(POS))
        .await
        .unwrap()
        .unwrap();
    client.metadata.number_matching = true;
    server.state.store.update_client(&client).await.unwrap();
    let mut device = server.enrolled_device("alice").await;
    let reply = server.bc_authorize(POS, "scope=openid&login_hint=alice").await;
    let number = reply.json["number_match"].as_str().unwrap().to_owned();
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    let record = server.ciba_request(&auth_req_id).await;
    let now = server.state.now();
    let approve =
        |overrides: serde_json::Value| device.decision_jwt(now, "approve", &record.id, &record.request_jwt, &overrides);
    let (missing, wrong, right) = (
        approve(json!({})),
        approve(json!({"number_match": if number == "10" { "11" } else { "10" }})),
        approve(json!({"number_match": number})),
    );
    for jwt in [missing, wrong] {
        let reply = device.post_decision(&server, &record.id, &jwt).await;
        reply.assert_error(400, "invalid_request");
        assert!(reply.text.contains("number_match"), "{}", reply.text);
    }
    let reply = device.post_decision(&server, &record.id, &right).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.poll(POS, &auth_req_id).await;
    assert_eq!(
        server.ciba_request(&auth_req_id).await.device_id.as_deref(),
        Some(device.id.as_str())
    );
}
