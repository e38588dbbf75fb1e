//! The user's grants through the device API: `GET /device/v1/grants` lists
//! what the device's user allowed (from CIBA and authorization-code flows),
//! never another user's; `DELETE /device/v1/grants/{grant_id}` revokes a grant
//! and its tokens; unknown, revoked and other users' grants are one 404.

use axum::http::Method;
use outband_protocol::{DeliveryMode, Profile};
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, redeem, Browser, VERIFIER, WEB};
use crate::device_support::Device;
use crate::support::{Reply, TestServer};

const POS: &str = "pos";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server.add_user("bob", None).await;
    server
}

fn payment() -> Value {
    json!([{
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "12.50"},
        "creditorName": "Corner Café",
        "creditorAccount": {"iban": "DE89370400440532013000"},
    }])
}

/// A CIBA request for `user` that `device` approves; returns the token response.
async fn approved_by_device(server: &TestServer, device: &mut Device, user: &str) -> Value {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("scope", "openid payments")
        .append_pair("login_hint", user)
        .append_pair("binding_message", "CAFE-7Q2K")
        .append_pair("authorization_details", &payment().to_string());
    let reply = server.bc_authorize(POS, &form.finish()).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    let record = server.ciba_request(&auth_req_id).await;
    let decided = device.decide(server, &record.id, &record.request_jwt, "approve").await;
    assert_eq!(decided.status, 200, "{}", decided.text);
    let tokens = server.poll(POS, &auth_req_id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    tokens.json
}

async fn list(server: &TestServer, device: &mut Device) -> Vec<Value> {
    let reply = device.call(server, Method::GET, "/device/v1/grants", None).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["cache-control"], "no-store");
    assert!(reply.headers.contains_key("dpop-nonce"));
    reply.json["grants"].as_array().unwrap().clone()
}

async fn revoke(server: &TestServer, device: &mut Device, grant_id: &str) -> Reply {
    device
        .call(server, Method::DELETE, &format!("/device/v1/grants/{grant_id}"), None)
        .await
}

async fn introspect(server: &TestServer, token: &str) -> Value {
    let reply = server
        .post_form("/introspect", &format!("token={token}"), Some((POS, "pos-secret")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json
}

#[tokio::test]
async fn a_user_sees_and_revokes_their_ciba_grant_from_the_device() {
    let server = server().await;
    let mut alice = server.enrolled_device("alice").await;
    assert!(list(&server, &mut alice).await.is_empty());
    let tokens = approved_by_device(&server, &mut alice, "alice").await;
    let grant_id = tokens["grant_id"].as_str().unwrap();
    let access_token = tokens["access_token"].as_str().unwrap();

    let grants = list(&server, &mut alice).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    let grant = &grants[0];
    assert_eq!(grant["grant_id"], grant_id);
    assert_eq!(grant["client_id"], POS);
    assert_eq!(grant["client_name"], "pos shop");
    assert_eq!(grant["scopes"], json!(["openid", "payments"]));
    assert_eq!(grant["authorization_details"][0]["creditorName"], "Corner Café");
    assert_eq!(grant["created_at"], server.state.now());
    assert_eq!(grant["updated_at"], server.state.now());
    assert_eq!(
        grant["description"],
        json!([
            "know who you are (your user id)",
            "make payments you approve",
            "pay EUR 12.50 to Corner Café, account DE89370400440532013000",
        ])
    );
    assert_eq!(introspect(&server, access_token).await["active"], true);

    let reply = revoke(&server, &mut alice, grant_id).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.headers.contains_key("dpop-nonce"));
    assert_eq!(introspect(&server, access_token).await["active"], false);
    assert!(list(&server, &mut alice).await.is_empty());
    let stored = server.state.store.grant(grant_id).await.unwrap().unwrap();
    assert!(stored.revoked);
    // A second revocation finds nothing.
    revoke(&server, &mut alice, grant_id)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn another_users_device_neither_sees_nor_revokes_the_grant() {
    let server = server().await;
    let mut alice = server.enrolled_device("alice").await;
    let mut bob = server.enrolled_device("bob").await;
    let tokens = approved_by_device(&server, &mut alice, "alice").await;
    let grant_id = tokens["grant_id"].as_str().unwrap();

    assert!(list(&server, &mut bob).await.is_empty(), "bob sees no grant of alice");
    // The same answer as for an id that does not exist.
    revoke(&server, &mut bob, grant_id).await.assert_error(404, "not_found");
    revoke(&server, &mut bob, "no-such-grant")
        .await
        .assert_error(404, "not_found");
    revoke(&server, &mut alice, "no-such-grant")
        .await
        .assert_error(404, "not_found");
    revoke(&server, &mut alice, &"g".repeat(300))
        .await
        .assert_error(404, "not_found");
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(introspect(&server, access_token).await["active"], true);
    assert_eq!(list(&server, &mut alice).await.len(), 1);
}

#[tokio::test]
async fn the_grant_api_needs_the_device_token_and_its_proof() {
    let server = server().await;
    let mut alice = server.enrolled_device("alice").await;
    // Without any credentials.
    let reply = server.get("/device/v1/grants").await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    assert!(reply.headers["www-authenticate"].to_str().unwrap().starts_with("DPoP"));
    // A proof for another URL.
    let request = {
        let mut request = alice.request(&server, Method::GET, "/device/v1/grants", None);
        let proof = alice.proof(&server, "GET", "/device/v1/requests", &json!({}));
        request.headers_mut().insert("DPoP", proof.parse().unwrap());
        request
    };
    let reply = server.send(request).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
    // A revoked device.
    server
        .state
        .store
        .revoke_device(&alice.id, server.state.now())
        .await
        .unwrap();
    let reply = alice.call(&server, Method::GET, "/device/v1/grants", None).await;
    assert_eq!(reply.status, 401, "{}", reply.text);
}

#[tokio::test]
async fn a_grant_from_the_browser_flow_is_listed_and_revoked_with_its_tokens() {
    let server = server().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    // alice: a password for the browser, a device for the device API.
    let subject = outband_protocol::Subject::new("sub-alice");
    let hash =
        outband_server::password::hash(&outband_protocol::Password::new(crate::browser_support::PASSWORD)).unwrap();
    assert!(server
        .state
        .store
        .set_password_hash(&subject, Some(&hash))
        .await
        .unwrap());
    let mut device = server.enrolled_device("alice").await;

    let login = browser.get(&authorize_path(WEB, &[])).await;
    let done = browser.login_and_approve(&login).await;
    let code = done.redirect_params()["code"].clone();
    let (status, tokens) = redeem(&live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    let grant_id = tokens["grant_id"].as_str().unwrap();

    let grants = list(&server, &mut device).await;
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert_eq!(grants[0]["grant_id"], grant_id);
    assert_eq!(grants[0]["client_name"], "Demo Shop");
    assert!(grants[0].get("authorization_details").is_none());
    let description: Vec<&str> = grants[0]["description"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap())
        .collect();
    assert!(description.contains(&"see your e-mail address"), "{description:?}");

    let reply = revoke(&server, &mut device, grant_id).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    let reply = server
        .post_form(
            "/introspect",
            &format!("token={}", tokens["access_token"].as_str().unwrap()),
            Some((WEB, "web-secret")),
        )
        .await;
    assert_eq!(reply.json["active"], false, "{}", reply.text);
    // The account page no longer lists it either.
    let page = browser.get("/account").await;
    assert!(!page.text.contains("Demo Shop"), "{}", page.text);
}
