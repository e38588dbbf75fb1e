//! FAPI Grant Management: `grant_id` in token responses, `create`/`merge`/
//! `replace` through CIBA requests, `invalid_grant_id`, the grant management
//! API (`GET`/`DELETE /grants/{grant_id}`) with the right and wrong scope and
//! client, revocation killing every token of the grant, and narrowing
//! `authorization_details` at the token endpoint (RFC 9396 §6.2).

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::{ClientId, ClientMetadata, DeliveryMode, GrantType, Scope};
use serde_json::{json, Value};

use crate::api_support::{detail, Token};
use crate::support::{Reply, TestServer};

/// The client of these tests (secret `gm-secret`), and a second one.
const GM: &str = "gm";
const OTHER: &str = "other";
const SCOPE: &str = "openid payments accounts grant_management_query grant_management_revoke";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    for id in [GM, OTHER] {
        let mut meta = ClientMetadata::new(ClientId::new(id));
        meta.client_name = Some(format!("{id} app"));
        meta.scope = Scope::new(SCOPE);
        meta.grant_types = vec![GrantType::Ciba, GrantType::ClientCredentials, GrantType::RefreshToken];
        meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
        server.add_client(meta, Some(&format!("{id}-secret"))).await;
    }
    server.add_user("alice", None).await;
    server.add_user("bob", None).await;
    server
}

fn accounts(access: &[&str], ibans: &[&str]) -> Value {
    json!({
        "type": "account_information",
        "access": access,
        "accounts": ibans.iter().map(|iban| json!({"iban": iban})).collect::<Vec<_>>(),
    })
}

const IBAN_A: &str = "DE89370400440532013000";
const IBAN_B: &str = "GB82WEST12345698765432";
const IBAN_C: &str = "FR1420041010050500013M02606";

/// `POST /bc-authorize` as `client` for `user` with `scope`, `details` and extra parameters.
async fn bc_authorize(
    server: &TestServer,
    client: &str,
    user: &str,
    scope: &str,
    details: Option<&Value>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut form = url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("scope", scope)
        .append_pair("login_hint", user)
        .append_pair("binding_message", "GM-1");
    if let Some(details) = details {
        form.append_pair("authorization_details", &details.to_string());
    }
    for (k, v) in extra {
        form.append_pair(k, v);
    }
    server.bc_authorize(client, &form.finish()).await
}

/// Starts, approves and redeems a request; returns the token response.
async fn authorized(
    server: &TestServer,
    client: &str,
    user: &str,
    scope: &str,
    details: Option<&Value>,
    extra: &[(&str, &str)],
) -> Value {
    let reply = bc_authorize(server, client, user, scope, details, extra).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    server.decide(&auth_req_id, true).await;
    let tokens = server.poll(client, &auth_req_id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    tokens.json
}

/// A client-credentials Bearer token of `client` for `scope`.
async fn api_token(server: &TestServer, client: &str, scope: &str) -> String {
    let body = format!("grant_type=client_credentials&scope={}", scope.replace(' ', "%20"));
    let reply = server
        .post_form("/token", &body, Some((client, &format!("{client}-secret"))))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["access_token"].as_str().unwrap().to_owned()
}

/// `method /grants/{grant_id}` with a Bearer token (or none).
async fn grants_api(server: &TestServer, method: &str, grant_id: &str, token: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(format!("/grants/{grant_id}"));
    if let Some(token) = token {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    server.send(request.body(Body::empty()).unwrap()).await
}

async fn introspect(server: &TestServer, client: &str, token: &str) -> Value {
    let reply = server
        .post_form(
            "/introspect",
            &format!("token={token}"),
            Some((client, &format!("{client}-secret"))),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json
}

async fn refresh(server: &TestServer, client: &str, refresh_token: &str, extra: &str) -> Reply {
    let body = format!("grant_type=refresh_token&refresh_token={refresh_token}{extra}");
    server
        .post_form("/token", &body, Some((client, &format!("{client}-secret"))))
        .await
}

fn form_value(value: &Value) -> String {
    url::form_urlencoded::byte_serialize(value.to_string().as_bytes()).collect()
}

#[tokio::test]
async fn tokens_carry_the_grant_id_and_the_api_shows_the_grant() {
    let server = server().await;
    let details = json!([accounts(&["balances"], &[IBAN_A])]);
    let tokens = authorized(&server, GM, "alice", "openid accounts", Some(&details), &[]).await;
    let grant_id = tokens["grant_id"]
        .as_str()
        .expect("grant_id in the token response")
        .to_owned();
    assert!(grant_id.len() >= 43, "enough entropy: {grant_id}");
    assert_eq!(
        introspect(&server, GM, tokens["access_token"].as_str().unwrap()).await["active"],
        true
    );

    // A refresh keeps the grant.
    let refreshed = refresh(&server, GM, tokens["refresh_token"].as_str().unwrap(), "").await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    assert_eq!(refreshed.json["grant_id"], grant_id.as_str());

    let query = api_token(&server, GM, "grant_management_query").await;
    let reply = grants_api(&server, "GET", &grant_id, Some(&query)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-cache, no-store");
    assert_eq!(
        reply.json,
        json!({
            "scopes": [{"scope": "openid accounts"}],
            "claims": ["sub"],
            "authorization_details": details,
        })
    );

    // Discovery says so.
    let meta = server.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        meta["grant_management_actions_supported"],
        json!(["query", "revoke", "create", "merge", "replace"])
    );
    assert_eq!(
        meta["grant_management_endpoint"],
        format!("{}/grants", crate::support::ISSUER)
    );
    assert_eq!(meta["grant_management_action_required"], false);
    let scopes = meta["scopes_supported"].as_array().unwrap();
    assert!(scopes.contains(&json!("grant_management_query")) && scopes.contains(&json!("grant_management_revoke")));

    // Every authorization makes its own grant unless told to merge.
    let second = authorized(&server, GM, "alice", "openid accounts", Some(&details), &[]).await;
    assert_ne!(second["grant_id"], grant_id.as_str());
    let created = authorized(
        &server,
        GM,
        "alice",
        "openid",
        None,
        &[("grant_management_action", "create")],
    )
    .await;
    assert_ne!(created["grant_id"], grant_id.as_str());
}

#[tokio::test]
async fn merge_adds_to_the_grant_and_replace_replaces_it() {
    let server = server().await;
    let first_details = json!([accounts(&["balances"], &[IBAN_A])]);
    let first = authorized(&server, GM, "alice", "openid accounts", Some(&first_details), &[]).await;
    let grant_id = first["grant_id"].as_str().unwrap().to_owned();
    let query = api_token(&server, GM, "grant_management_query").await;

    let payment = json!([{
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "5.00"},
        "creditorName": "Demo Shop",
    }]);
    let merged = authorized(
        &server,
        GM,
        "alice",
        "openid payments",
        Some(&payment),
        &[("grant_management_action", "merge"), ("grant_id", &grant_id)],
    )
    .await;
    assert_eq!(merged["grant_id"], grant_id.as_str());
    assert_eq!(
        merged["scope"], "openid payments",
        "the tokens carry what this request approved"
    );
    let grant = grants_api(&server, "GET", &grant_id, Some(&query)).await.json;
    assert_eq!(grant["scopes"], json!([{"scope": "openid accounts payments"}]));
    assert_eq!(
        grant["authorization_details"],
        json!([first_details[0].clone(), payment[0].clone()])
    );
    // The merge leaves the earlier tokens alone.
    assert_eq!(
        introspect(&server, GM, first["access_token"].as_str().unwrap()).await["active"],
        true
    );

    let replaced = authorized(
        &server,
        GM,
        "alice",
        "openid",
        None,
        &[("grant_management_action", "replace"), ("grant_id", &grant_id)],
    )
    .await;
    assert_eq!(replaced["grant_id"], grant_id.as_str());
    let grant = grants_api(&server, "GET", &grant_id, Some(&query)).await.json;
    assert_eq!(grant, json!({"scopes": [{"scope": "openid"}], "claims": ["sub"]}));
    // Replacing takes the old privileges away, tokens included.
    for old in [&first, &merged] {
        let token = old["access_token"].as_str().unwrap();
        assert_eq!(introspect(&server, GM, token).await["active"], false);
    }
    assert_eq!(
        introspect(&server, GM, replaced["access_token"].as_str().unwrap()).await["active"],
        true
    );
    // A revoked refresh token presented again counts as a replay of the grant
    // (RFC 9700 §4.14.2): it takes the grant's tokens with it.
    let stale = refresh(&server, GM, first["refresh_token"].as_str().unwrap(), "").await;
    stale.assert_error(400, "invalid_grant");
}

/// A user, the request's extra parameters, and the error they must get.
type Case<'a> = (&'a str, &'a [(&'a str, &'a str)], &'a str);

#[tokio::test]
async fn grant_management_parameters_are_checked() {
    let server = server().await;
    let alices = authorized(&server, GM, "alice", "openid", None, &[]).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let others = authorized(&server, OTHER, "alice", "openid", None, &[]).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cases: [Case<'_>; 8] = [
        (
            "alice",
            &[("grant_management_action", "merge"), ("grant_id", "no-such-grant")],
            "invalid_grant_id",
        ),
        (
            "alice",
            &[("grant_management_action", "replace"), ("grant_id", &others)],
            "invalid_grant_id",
        ),
        (
            "bob",
            &[("grant_management_action", "merge"), ("grant_id", &alices)],
            "invalid_grant_id",
        ),
        ("alice", &[("grant_management_action", "merge")], "invalid_request"),
        ("alice", &[("grant_management_action", "replace")], "invalid_request"),
        ("alice", &[("grant_id", &alices)], "invalid_request"),
        (
            "alice",
            &[("grant_management_action", "create"), ("grant_id", &alices)],
            "invalid_request",
        ),
        (
            "alice",
            &[("grant_management_action", "update"), ("grant_id", &alices)],
            "invalid_request",
        ),
    ];
    for (user, extra, code) in cases {
        let reply = bc_authorize(&server, GM, user, "openid", None, extra).await;
        assert_eq!(reply.status, 400, "{extra:?}: {}", reply.text);
        assert_eq!(reply.json["error"], code, "{extra:?}: {}", reply.text);
    }
    // A revoked grant is unknown from then on.
    let revoke = api_token(&server, GM, "grant_management_revoke").await;
    assert_eq!(grants_api(&server, "DELETE", &alices, Some(&revoke)).await.status, 204);
    let reply = bc_authorize(
        &server,
        GM,
        "alice",
        "openid",
        None,
        &[("grant_management_action", "merge"), ("grant_id", &alices)],
    )
    .await;
    reply.assert_error(400, "invalid_grant_id");
}

#[tokio::test]
async fn the_api_needs_the_right_scope_and_the_owning_client() {
    let server = server().await;
    let grant_id = authorized(&server, GM, "alice", "openid", None, &[]).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let query = api_token(&server, GM, "grant_management_query").await;
    let revoke = api_token(&server, GM, "grant_management_revoke").await;
    let unrelated = api_token(&server, GM, "accounts").await;
    let others = api_token(&server, OTHER, "grant_management_query grant_management_revoke").await;

    for method in ["GET", "DELETE"] {
        let reply = grants_api(&server, method, &grant_id, None).await;
        reply.assert_error(401, "invalid_token");
        assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
        grants_api(&server, method, &grant_id, Some("not-a-token"))
            .await
            .assert_error(401, "invalid_token");
        grants_api(&server, method, &grant_id, Some(&unrelated))
            .await
            .assert_error(403, "insufficient_scope");
        grants_api(&server, method, &grant_id, Some(&others))
            .await
            .assert_error(403, "access_denied");
    }
    grants_api(&server, "GET", &grant_id, Some(&revoke))
        .await
        .assert_error(403, "insufficient_scope");
    grants_api(&server, "DELETE", &grant_id, Some(&query))
        .await
        .assert_error(403, "insufficient_scope");
    grants_api(&server, "GET", "no-such-grant", Some(&query))
        .await
        .assert_error(404, "not_found");
    assert_eq!(grants_api(&server, "GET", &grant_id, Some(&query)).await.status, 200);
}

#[tokio::test]
async fn deleting_a_grant_revokes_every_token_of_it() {
    let server = server().await;
    let body = detail("12.50", "REF-GM");
    let mut typed = body.clone();
    typed["type"] = json!("payment_initiation");
    let tokens = authorized(&server, GM, "alice", "openid payments", Some(&json!([typed])), &[]).await;
    let grant_id = tokens["grant_id"].as_str().unwrap().to_owned();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_owned();
    let token = Token {
        access: access.clone(),
        refresh: None,
        key: None,
    };
    assert_eq!(server.pay(&token, &body, "key-1").await.status, 201);

    let revoke = api_token(&server, GM, "grant_management_revoke").await;
    let reply = grants_api(&server, "DELETE", &grant_id, Some(&revoke)).await;
    assert_eq!(reply.status, 204, "{}", reply.text);
    assert!(reply.text.is_empty());

    assert_eq!(introspect(&server, GM, &access).await, json!({"active": false}));
    assert_eq!(introspect(&server, GM, &refresh_token).await, json!({"active": false}));
    server
        .pay(&token, &body, "key-2")
        .await
        .assert_error(401, "invalid_token");
    refresh(&server, GM, &refresh_token, "")
        .await
        .assert_error(400, "invalid_grant");
    let query = api_token(&server, GM, "grant_management_query").await;
    grants_api(&server, "GET", &grant_id, Some(&query))
        .await
        .assert_error(404, "not_found");
    grants_api(&server, "DELETE", &grant_id, Some(&revoke))
        .await
        .assert_error(404, "not_found");
    let stored = server.state.store.grant(&grant_id).await.unwrap().unwrap();
    assert!(stored.revoked);
}

#[tokio::test]
async fn token_requests_narrow_authorization_details_and_never_widen_them() {
    let server = server().await;
    let granted = json!([
        accounts(&["balances", "transactions"], &[IBAN_A, IBAN_B]),
        {"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "5.00"}, "creditorName": "Demo Shop"},
    ]);
    let reply = bc_authorize(&server, GM, "alice", "openid accounts payments", Some(&granted), &[]).await;
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    server.decide(&auth_req_id, true).await;
    let poll = |extra: String| {
        let body = format!("grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id={auth_req_id}{extra}");
        let server = &server;
        async move { server.post_form("/token", &body, Some((GM, "gm-secret"))).await }
    };

    // Widening: another account, more access, a changed payment, or a type never approved.
    for wider in [
        json!([accounts(&["balances"], &[IBAN_C])]),
        json!([accounts(&["balances", "transactions"], &[IBAN_A, IBAN_B, IBAN_C])]),
        json!([{"type": "account_information", "access": ["balances"]}]),
        json!([{"type": "payment_initiation", "instructedAmount": {"currency": "EUR", "amount": "50.00"}, "creditorName": "Demo Shop"}]),
    ] {
        let reply = poll(format!("&authorization_details={}", form_value(&wider))).await;
        reply.assert_error(400, "invalid_authorization_details");
    }
    poll("&authorization_details=not-json".into())
        .await
        .assert_error(400, "invalid_authorization_details");

    // The refusals left the approval unused: narrowing works.
    let narrow = json!([accounts(&["balances"], &[IBAN_B])]);
    let reply = poll(format!("&authorization_details={}", form_value(&narrow))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["authorization_details"], narrow);
    let access = reply.json["access_token"].as_str().unwrap();
    assert_eq!(introspect(&server, GM, access).await["authorization_details"], narrow);
    // The grant keeps all the user approved.
    let query = api_token(&server, GM, "grant_management_query").await;
    let grant_id = reply.json["grant_id"].as_str().unwrap();
    let grant = grants_api(&server, "GET", grant_id, Some(&query)).await.json;
    assert_eq!(grant["authorization_details"], granted);

    // A refresh narrows within what the refresh token carries.
    let refresh_token = reply.json["refresh_token"].as_str().unwrap().to_owned();
    let wider = form_value(&json!([accounts(&["balances"], &[IBAN_A])]));
    refresh(&server, GM, &refresh_token, &format!("&authorization_details={wider}"))
        .await
        .assert_error(400, "invalid_authorization_details");
    let same = refresh(&server, GM, &refresh_token, "").await;
    assert_eq!(
        same.status, 200,
        "the refused refresh left the token usable: {}",
        same.text
    );
    assert_eq!(same.json["authorization_details"], narrow);
}

#[tokio::test]
async fn each_payment_merged_into_a_grant_is_paid_once() {
    let server = server().await;
    let typed = |body: &Value| {
        let mut typed = body.clone();
        typed["type"] = json!("payment_initiation");
        typed
    };
    let (a, b) = (detail("12.50", "REF-A"), detail("3.00", "REF-B"));
    let first = authorized(&server, GM, "alice", "openid payments", Some(&json!([typed(&a)])), &[]).await;
    let grant_id = first["grant_id"].as_str().unwrap().to_owned();
    let second = authorized(
        &server,
        GM,
        "alice",
        "openid payments",
        Some(&json!([typed(&b)])),
        &[("grant_management_action", "merge"), ("grant_id", &grant_id)],
    )
    .await;
    assert_eq!(second["grant_id"], grant_id.as_str());
    let bearer = |tokens: &Value| Token {
        access: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: None,
        key: None,
    };
    assert_eq!(server.pay(&bearer(&first), &a, "key-a").await.status, 201);
    assert_eq!(server.pay(&bearer(&second), &b, "key-b").await.status, 201);
    server
        .pay(&bearer(&second), &b, "key-b2")
        .await
        .assert_error(409, "payment_already_executed");
    // The same amount spelt differently is the same approved payment.
    server
        .pay(&bearer(&first), &detail("12.5", "REF-A"), "key-a2")
        .await
        .assert_error(409, "payment_already_executed");
}
