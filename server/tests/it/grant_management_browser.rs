//! Grant management in the browser flows: `grant_management_action` and
//! `grant_id` at `/authorize` (errors at the redirect URI) and `/par` (JSON),
//! a merge through the consent page, and another user's grant refused.

use outband_protocol::{Profile, Scope, Subject};

use crate::browser_support::{authorize_path, redeem, Browser, Live, PASSWORD, VERIFIER, WEB};
use crate::support::TestServer;

async fn setup() -> (TestServer, Live) {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    server.add_password_user("bob").await;
    let live = server.live().await;
    (server, live)
}

/// Logs in as `user`, approves `extra`'s request and redeems the code.
async fn approve(live: &Live, user: &str, extra: &[(&str, &str)]) -> serde_json::Value {
    let mut browser = Browser::new(live);
    let login = browser.get(&authorize_path(WEB, extra)).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let after = browser.login(&login, user, PASSWORD).await;
    assert_eq!(after.status, 303, "{}", after.text);
    let consent = browser.get(&after.location().unwrap()).await;
    let done = browser.decide(&consent, "approve").await;
    let params = done.redirect_params();
    let code = params.get("code").unwrap_or_else(|| panic!("no code: {params:?}"));
    let (status, tokens) = redeem(live, WEB, code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

#[tokio::test]
async fn authorize_and_par_refuse_unknown_grants_and_bad_combinations() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    let page = browser
        .get(&authorize_path(
            WEB,
            &[("grant_management_action", "merge"), ("grant_id", "no-such-grant")],
        ))
        .await;
    let params = page.redirect_params();
    assert_eq!(params["error"], "invalid_grant_id");
    assert_eq!(params["state"], "st-123");
    let page = browser
        .get(&authorize_path(WEB, &[("grant_management_action", "replace")]))
        .await;
    assert_eq!(page.redirect_params()["error"], "invalid_request");

    let http = reqwest::Client::new();
    let par = |extra: Vec<(&'static str, &'static str)>| {
        let mut form = vec![
            ("response_type", "code"),
            ("client_id", WEB),
            ("redirect_uri", crate::browser_support::REDIRECT_URI),
            ("scope", "openid"),
            ("code_challenge", crate::browser_support::CHALLENGE),
            ("code_challenge_method", "S256"),
        ];
        form.extend(extra);
        http.post(format!("{}/par", live.base))
            .basic_auth(WEB, Some("web-secret"))
            .form(&form)
            .send()
    };
    let reply = par(vec![
        ("grant_management_action", "merge"),
        ("grant_id", "no-such-grant"),
    ])
    .await
    .unwrap();
    assert_eq!(reply.status(), 400);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant_id");
    let reply = par(vec![("grant_id", "x")]).await.unwrap();
    assert_eq!(reply.status(), 400);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_request");
    let ok = par(vec![("grant_management_action", "create")]).await.unwrap();
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn a_merge_through_the_consent_page_keeps_the_grant_id() {
    let (server, live) = setup().await;
    let first = approve(&live, "alice", &[("scope", "openid email")]).await;
    let grant_id = first["grant_id"].as_str().unwrap().to_owned();
    let second = approve(
        &live,
        "alice",
        &[
            ("scope", "openid phone"),
            ("grant_management_action", "merge"),
            ("grant_id", &grant_id),
        ],
    )
    .await;
    assert_eq!(second["grant_id"], grant_id.as_str());
    let grant = server.state.store.grant(&grant_id).await.unwrap().unwrap();
    assert_eq!(grant.scope, Scope::new("openid email phone"));
    assert_eq!(grant.subject, Subject::new("sub-alice"));
    assert_eq!(grant.claims, ["sub", "email", "phone_number"]);
}

#[tokio::test]
async fn another_users_grant_is_refused_at_the_consent_decision() {
    let (_server, live) = setup().await;
    let alices = approve(&live, "alice", &[]).await["grant_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_path(
            WEB,
            &[("grant_management_action", "merge"), ("grant_id", &alices)],
        ))
        .await;
    assert_eq!(
        login.status, 200,
        "the grant exists and is the client's: {}",
        login.text
    );
    let after = browser.login(&login, "bob", PASSWORD).await;
    let consent = browser.get(&after.location().unwrap()).await;
    let done = browser.decide(&consent, "approve").await;
    assert_eq!(done.redirect_params()["error"], "invalid_grant_id");
}
