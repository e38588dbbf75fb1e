//! Operator tooling for CIBA, in process: the admin decision endpoint (off by
//! default, bearer-protected, every answer it gives), user codes end to end,
//! and the housekeeping of finished requests and notifications.

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::jose::verify_jwt;
use outband_protocol::{ClientId, ClientMetadata, DeliveryMode, GrantType, Password, Scope, SigningAlg, Subject};
use outband_server::store::{NewNotification, NotificationKind};
use serde_json::json;

use crate::support::{Reply, TestServer};

const POS: &str = "pos";
const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdefghijklmnop";
const PATH: &str = "/admin/v1/ciba/decision";

/// A server with the admin endpoint on (the token file lives in the returned dir).
async fn admin_server() -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let server = TestServer::with_config(&format!("[admin]\ntoken_file = {:?}\n", file.display().to_string())).await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    (server, dir)
}

async fn start(server: &TestServer) -> String {
    let reply = server.bc_authorize(POS, "scope=openid&login_hint=alice").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["auth_req_id"].as_str().unwrap().to_owned()
}

async fn admin_decide(server: &TestServer, bearer: Option<&str>, body: &str) -> Reply {
    let mut request = Request::post(PATH).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    server.send(request.body(Body::from(body.to_owned())).unwrap()).await
}

#[tokio::test]
async fn the_endpoint_is_an_unknown_path_unless_configured() {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    let id = start(&server).await;
    let unknown = server.get("/admin/v1/nothing-here").await;
    unknown.assert_error(404, "not_found");
    for reply in [
        admin_decide(
            &server,
            Some(ADMIN_TOKEN),
            &format!("auth_req_id={id}&decision=approve"),
        )
        .await,
        admin_decide(&server, None, "").await,
        server.get(PATH).await,
    ] {
        assert_eq!(reply.status, unknown.status, "{}", reply.text);
        assert_eq!(reply.json, unknown.json);
        assert!(!reply.headers.contains_key(header::WWW_AUTHENTICATE));
    }
    server.poll(POS, &id).await.assert_error(400, "authorization_pending");
}

#[tokio::test]
async fn a_wrong_or_missing_admin_token_is_401() {
    let (server, _dir) = admin_server().await;
    let id = start(&server).await;
    let body = format!("auth_req_id={id}&decision=approve");
    let wrong = admin_decide(&server, Some("test-admin-token-0123456789abcdefghijklmnoq"), &body).await;
    wrong.assert_error(401, "invalid_token");
    assert_eq!(
        wrong.headers[header::WWW_AUTHENTICATE],
        "Bearer error=\"invalid_token\""
    );
    let missing = admin_decide(&server, None, &body).await;
    missing.assert_error(401, "invalid_token");
    assert_eq!(missing.headers[header::WWW_AUTHENTICATE], "Bearer");
    let basic = server
        .send(
            Request::post(PATH)
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(
                    header::AUTHORIZATION,
                    crate::support::basic_header("admin", ADMIN_TOKEN),
                )
                .body(Body::from(body.clone()))
                .unwrap(),
        )
        .await;
    basic.assert_error(401, "invalid_token");
    server.poll(POS, &id).await.assert_error(400, "authorization_pending");
    let get = server.get(PATH).await;
    assert_eq!(get.status, 405, "configured: only POST");
    assert_eq!(get.headers[header::ALLOW], "POST");
}

#[tokio::test]
async fn approve_then_conflict_and_tokens_say_test() {
    let (server, _dir) = admin_server().await;
    let id = start(&server).await;
    let reply = admin_decide(
        &server,
        Some(ADMIN_TOKEN),
        &format!("auth_req_id={id}&decision=approve"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let stored = server.ciba_request(&id).await;
    assert_eq!(reply.json, json!({ "id": stored.id, "state": "approved" }));
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(stored.device_id, None);

    let again = admin_decide(&server, Some(ADMIN_TOKEN), &format!("auth_req_id={id}&decision=deny")).await;
    again.assert_error(409, "conflict");

    let tokens = server.poll(POS, &id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    let keys = server.jwks().await;
    let id_token = verify_jwt(tokens.json["id_token"].as_str().unwrap(), &keys, &[SigningAlg::RS256]).unwrap();
    assert_eq!(id_token.claims["amr"], json!(["test"]));

    let events = server
        .state
        .store
        .audit(&outband_server::store::AuditQuery {
            request_id: Some(stored.id.clone()),
            ..Default::default()
        })
        .await
        .unwrap();
    let approved = events.iter().find(|e| e.event == "ciba.approved").expect("audited");
    assert_eq!(approved.detail["amr"], "[\"test\"]");
    let redeemed = admin_decide(
        &server,
        Some(ADMIN_TOKEN),
        &format!("auth_req_id={id}&decision=approve"),
    )
    .await;
    redeemed.assert_error(409, "conflict");
    assert!(redeemed.json["error_description"]
        .as_str()
        .unwrap()
        .contains("redeemed"));
}

#[tokio::test]
async fn deny_unknown_expired_and_malformed() {
    let (server, _dir) = admin_server().await;
    let denied = start(&server).await;
    let reply = admin_decide(
        &server,
        Some(ADMIN_TOKEN),
        &format!("auth_req_id={denied}&decision=deny"),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["state"], "denied");
    server.poll(POS, &denied).await.assert_error(400, "access_denied");

    admin_decide(
        &server,
        Some(ADMIN_TOKEN),
        "auth_req_id=no-such-request&decision=approve",
    )
    .await
    .assert_error(404, "not_found");

    let pending = start(&server).await;
    for body in [
        format!("auth_req_id={pending}&decision=maybe"),
        format!("auth_req_id={pending}"),
        "decision=approve".to_owned(),
    ] {
        admin_decide(&server, Some(ADMIN_TOKEN), &body)
            .await
            .assert_error(400, "invalid_request");
    }
    let json_body = server
        .send(
            Request::post(PATH)
                .header(header::CONTENT_TYPE, "application/json")
                .header(header::AUTHORIZATION, format!("Bearer {ADMIN_TOKEN}"))
                .body(Body::from(format!("{{\"auth_req_id\":\"{pending}\"}}")))
                .unwrap(),
        )
        .await;
    json_body.assert_error(400, "invalid_request");

    server.clock.advance(121);
    let late = admin_decide(
        &server,
        Some(ADMIN_TOKEN),
        &format!("auth_req_id={pending}&decision=approve"),
    )
    .await;
    late.assert_error(409, "conflict");
    assert!(late.json["error_description"].as_str().unwrap().contains("expired"));
}

async fn add_user_code_client(server: &TestServer, id: &str) {
    let mut meta = ClientMetadata::new(ClientId::new(id));
    meta.client_name = Some(format!("{id} shop"));
    meta.scope = Scope::new("openid payments");
    meta.grant_types = vec![GrantType::Ciba];
    meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
    meta.backchannel_user_code_parameter = true;
    server.add_client(meta, Some(&format!("{id}-secret"))).await;
}

#[tokio::test]
async fn user_codes_end_to_end() {
    let server = TestServer::new().await;
    add_user_code_client(&server, "kiosk").await;
    let alice = server.add_user("alice", None).await;
    let body = |code: Option<&str>| {
        let mut body = "scope=openid&login_hint=alice".to_owned();
        if let Some(code) = code {
            body.push_str(&format!("&user_code={code}"));
        }
        body
    };
    server
        .bc_authorize("kiosk", &body(None))
        .await
        .assert_error(400, "missing_user_code");
    server
        .bc_authorize("kiosk", &body(Some("4711")))
        .await
        .assert_error(400, "invalid_user_code");

    let hash = outband_server::password::hash_user_code(&Password::new("4711")).unwrap();
    assert!(outband_server::password::hash_user_code(&Password::new("471")).is_err());
    assert!(server
        .state
        .store
        .set_user_code_hash(&Subject::new(alice.clone()), Some(&hash))
        .await
        .unwrap());
    server
        .bc_authorize("kiosk", &body(None))
        .await
        .assert_error(400, "missing_user_code");
    server
        .bc_authorize("kiosk", &body(Some("4712")))
        .await
        .assert_error(400, "invalid_user_code");
    let ok = server.bc_authorize("kiosk", &body(Some("4711"))).await;
    assert_eq!(ok.status, 200, "{}", ok.text);

    // A client not registered for user codes does not need one.
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    assert_eq!(server.bc_authorize(POS, &body(None)).await.status, 200);

    server
        .state
        .store
        .set_user_code_hash(&Subject::new(alice), None)
        .await
        .unwrap();
    server
        .bc_authorize("kiosk", &body(Some("4711")))
        .await
        .assert_error(400, "invalid_user_code");
}

#[tokio::test]
async fn housekeeping_purges_finished_requests_and_delivered_notifications_after_a_week() {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    let pending = start(&server).await;
    let denied = start(&server).await;
    server.decide(&denied, false).await;
    let store = &server.state.store;
    let new = |id: &str| NewNotification {
        kind: NotificationKind::Ping,
        client_id: ClientId::new(POS),
        ciba_request_id: id.to_owned(),
        endpoint: "https://pos.example/cb".into(),
        bearer_sealed: "sealed".into(),
        body_sealed: "sealed".into(),
        due_at: server.state.now(),
    };
    let delivered = store.enqueue_notification(&new("a")).await.unwrap().unwrap();
    assert!(store
        .mark_notification_delivered(delivered, server.state.now())
        .await
        .unwrap());
    let failed = store.enqueue_notification(&new("b")).await.unwrap().unwrap();
    assert!(store
        .mark_notification_failed(failed, server.state.now(), "the client answered 500")
        .await
        .unwrap());

    server.clock.advance(outband_server::maintenance::CIBA_RETENTION);
    outband_server::maintenance::run_once(&server.state).await;
    assert_eq!(
        store.list_ciba_requests(None, 0).await.unwrap().len(),
        2,
        "kept for a week after expiry"
    );
    server.clock.advance(200);
    outband_server::maintenance::run_once(&server.state).await;
    let left = store.list_ciba_requests(None, 0).await.unwrap();
    assert_eq!(left.len(), 1, "the pending one stays (the expiry worker moves it)");
    assert_eq!(left[0].id, server.ciba_request(&pending).await.id);
    let failed_left = store.failed_notifications(0).await.unwrap();
    assert_eq!(failed_left.len(), 1, "failed notifications wait for an operator");
    assert_eq!(failed_left[0].id, failed);
}
