//! The account page over a real socket: it lists the user's grants and
//! devices and revokes them, changes the password (the new one then signs in,
//! the old one no longer), refuses forms without their CSRF token; and
//! remembered consent: `prompt=none` succeeds once a grant covers the request.

use outband_protocol::{Profile, Subject};
use outband_server::store::DeviceRecord;
use serde_json::Value;

use crate::browser_support::{authorize_path, redeem, Browser, Live, Page, PASSWORD, VERIFIER, WEB};
use crate::support::{TestServer, T0};

async fn setup() -> (TestServer, Live, Subject) {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    let alice = server.add_password_user("alice").await;
    let live = server.live().await;
    (server, live, alice)
}

/// Logs in and approves the standard request; returns the token response.
async fn approved_tokens(live: &Live, browser: &mut Browser) -> Value {
    let login = browser.get(&authorize_path(WEB, &[])).await;
    let done = browser.login_and_approve(&login).await;
    let code = done.redirect_params()["code"].clone();
    let (status, tokens) = redeem(live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn introspect(live: &Live, token: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{}/introspect", live.base))
        .basic_auth(WEB, Some("web-secret"))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn assert_accessible(page: &Page) {
    assert_eq!(page.headers["cache-control"], "no-store");
    assert_eq!(page.headers["x-frame-options"], "DENY");
    assert!(page.text.contains("<html lang=\"en\">"));
    assert!(!page.text.contains("<script"), "works without JavaScript");
}

#[tokio::test]
async fn the_account_page_lists_and_revokes_a_grant() {
    let (_server, live, _) = setup().await;
    let mut browser = Browser::new(&live);
    let tokens = approved_tokens(&live, &mut browser).await;
    let grant_id = tokens["grant_id"].as_str().unwrap();

    let page = browser.get("/account").await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert_accessible(&page);
    assert!(
        page.text.contains("signed in as <strong>alice</strong>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("<h3>Demo Shop</h3>"), "{}", page.text);
    assert!(page.text.contains("see your e-mail address"), "scopes in plain words");
    assert!(page.text.contains("Revoke access of Demo Shop"));
    assert_eq!(page.hidden("grant_id"), grant_id);
    let csrf = page.hidden("csrf");

    // Without the CSRF token (or with another) nothing happens.
    for bad in ["", "forged"] {
        let refused = browser
            .post("/account/revoke-grant", &[("grant_id", grant_id), ("csrf", bad)])
            .await;
        assert_eq!(refused.status, 400, "{}", refused.text);
    }
    assert_eq!(
        introspect(&live, tokens["access_token"].as_str().unwrap()).await["active"],
        true
    );

    let revoked = browser
        .post("/account/revoke-grant", &[("grant_id", grant_id), ("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    assert_eq!(revoked.location().as_deref(), Some("/account?done=grant-revoked"));
    let page = browser.get("/account?done=grant-revoked").await;
    assert!(
        page.text
            .contains("role=\"status\">The application&#39;s access was revoked."),
        "{}",
        page.text
    );
    assert!(page.text.contains("No application has access to your account."));
    for token in ["access_token", "refresh_token"] {
        assert_eq!(
            introspect(&live, tokens[token].as_str().unwrap()).await["active"],
            false
        );
    }
}

#[tokio::test]
async fn the_account_page_removes_a_device() {
    let (server, live, alice) = setup().await;
    let device = DeviceRecord {
        id: "dev-1".into(),
        subject: alice.clone(),
        name: "Alice's <laptop>".into(),
        alg: "ES256".into(),
        public_jwk: "{}".into(),
        jkt: "jkt-1".into(),
        credential_hash: "cred-1".into(),
        created_at: T0,
        last_seen_at: None,
        revoked_at: None,
    };
    server.state.store.insert_device(&device).await.unwrap();
    let mut browser = Browser::new(&live);
    approved_tokens(&live, &mut browser).await;

    let page = browser.get("/account").await;
    assert!(
        page.text.contains("<h3>Alice&#39;s &lt;laptop&gt;</h3>"),
        "{}",
        page.text
    );
    assert!(page.text.contains("Enrolled 2027-01-15 08:00 UTC, never used yet."));
    assert_eq!(page.hidden("device_id"), "dev-1");
    let csrf = page.hidden("csrf");
    let removed = browser
        .post("/account/revoke-device", &[("device_id", "dev-1"), ("csrf", &csrf)])
        .await;
    assert_eq!(removed.status, 303, "{}", removed.text);
    let stored = server.state.store.device("dev-1").await.unwrap().unwrap();
    assert_eq!(stored.revoked_at, Some(T0));
    let page = browser.get("/account").await;
    assert!(page.text.contains("No authenticator is enrolled."), "{}", page.text);
}

#[tokio::test]
async fn a_changed_password_signs_in_and_the_old_one_no_longer_does() {
    let (_server, live, _) = setup().await;
    let mut browser = Browser::new(&live);
    approved_tokens(&live, &mut browser).await;
    let page = browser.get("/account").await;
    let csrf = page.hidden("csrf");
    let change = |current: &'static str, new: &'static str, confirm: &'static str| {
        [
            ("current_password", current),
            ("new_password", new),
            ("confirm_password", confirm),
        ]
    };

    let wrong = browser
        .post(
            "/account/password",
            &[
                &change("wrong password", "new secret pass", "new secret pass")[..],
                &[("csrf", &csrf)],
            ]
            .concat(),
        )
        .await;
    assert_eq!(wrong.status, 400);
    assert!(wrong
        .text
        .contains("role=\"alert\" id=\"password-error\">The current password is wrong."));
    let differ = browser
        .post(
            "/account/password",
            &[
                &change(PASSWORD, "new secret pass", "other secret")[..],
                &[("csrf", &csrf)],
            ]
            .concat(),
        )
        .await;
    assert!(differ.text.contains("The two new passwords differ."), "{}", differ.text);
    let short = browser
        .post(
            "/account/password",
            &[&change(PASSWORD, "short", "short")[..], &[("csrf", &csrf)]].concat(),
        )
        .await;
    assert!(short.text.contains("The new password is too short."), "{}", short.text);
    let changed = browser
        .post(
            "/account/password",
            &[
                &change(PASSWORD, "new secret pass", "new secret pass")[..],
                &[("csrf", &csrf)],
            ]
            .concat(),
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    assert_eq!(changed.location().as_deref(), Some("/account?done=password-changed"));

    // Another browser signs in on the account page: the old password fails, the new one works.
    let mut other = Browser::new(&live);
    let form = other.get("/account").await;
    assert_eq!(form.status, 200);
    assert!(form.text.contains("Sign in to your account"), "{}", form.text);
    let csrf = form.hidden("csrf");
    let old = other
        .post(
            "/account/login",
            &[("username", "alice"), ("password", PASSWORD), ("csrf", &csrf)],
        )
        .await;
    assert!(old.text.contains("Wrong username or password."), "{}", old.text);
    let forged = other
        .post(
            "/account/login",
            &[
                ("username", "alice"),
                ("password", "new secret pass"),
                ("csrf", "forged"),
            ],
        )
        .await;
    assert_eq!(forged.status, 400, "the sign-in form needs its CSRF token");
    let new = other
        .post(
            "/account/login",
            &[("username", "alice"), ("password", "new secret pass"), ("csrf", &csrf)],
        )
        .await;
    assert_eq!(new.status, 303, "{}", new.text);
    let page = other.get(&new.location().unwrap()).await;
    assert!(
        page.text.contains("signed in as <strong>alice</strong>"),
        "{}",
        page.text
    );

    // The authorization flow's login takes the new password too.
    let mut third = Browser::new(&live);
    let login = third.get(&authorize_path(WEB, &[])).await;
    let after = third.login(&login, "alice", "new secret pass").await;
    assert_eq!(after.status, 303, "{}", after.text);
}

#[tokio::test]
async fn prompt_none_succeeds_when_a_grant_covers_the_request() {
    let (_server, live, _) = setup().await;
    let mut browser = Browser::new(&live);
    let none = |scope: &'static str| authorize_path(WEB, &[("prompt", "none"), ("scope", scope)]);

    // No session: login_required.
    let page = browser.get(&none("openid profile email")).await;
    assert_eq!(page.redirect_params()["error"], "login_required");

    // A session and a grant once its tokens are claimed.
    approved_tokens(&live, &mut browser).await;
    let page = browser.get(&none("openid email")).await;
    let params = page.redirect_params();
    assert_eq!(params.get("error"), None, "{params:?}");
    assert_eq!(params["state"], "st-123");
    let (status, tokens) = redeem(&live, WEB, &params["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid email");

    // Something the user never approved needs the consent page.
    let page = browser.get(&none("openid phone")).await;
    assert_eq!(page.redirect_params()["error"], "consent_required");
    let page = browser.get(&none("openid payments")).await;
    assert_eq!(page.redirect_params()["error"], "consent_required");

    // Once the user revokes the grants, nothing is remembered.
    loop {
        let account = browser.get("/account").await;
        if !account.text.contains("name=\"grant_id\"") {
            break;
        }
        let (grant_id, csrf) = (account.hidden("grant_id"), account.hidden("csrf"));
        let revoked = browser
            .post("/account/revoke-grant", &[("grant_id", &grant_id), ("csrf", &csrf)])
            .await;
        assert_eq!(revoked.status, 303);
    }
    let page = browser.get(&none("openid email")).await;
    assert_eq!(page.redirect_params()["error"], "consent_required");
}

/// A payment is approved each time: `prompt=none` with the same
/// `authorization_details` as an approved payment asks the user again
/// (`consent_required`) instead of issuing a code that could pay twice.
#[tokio::test]
async fn prompt_none_never_repeats_a_payment() {
    let (_server, live, _) = setup().await;
    let mut browser = Browser::new(&live);
    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"9.99"},"creditorName":"Shop","creditorAccount":{"iban":"DE89370400440532013000"}}]"#;
    let path = |prompt: Option<&'static str>| {
        let mut params = vec![("scope", "openid payments"), ("authorization_details", details)];
        params.extend(prompt.map(|p| ("prompt", p)));
        authorize_path(WEB, &params)
    };
    let login = browser.get(&path(None)).await;
    let done = browser.login_and_approve(&login).await;
    let code = done.redirect_params()["code"].clone();
    let (status, tokens) = redeem(&live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");

    let page = browser.get(&path(Some("none"))).await;
    assert_eq!(page.redirect_params()["error"], "consent_required");
}
