//! The authorization code flow through the real pages, on a real socket:
//! `/authorize` → login (CSRF, generic errors, failed-login limit) → consent →
//! redirect with `code`, `state` and `iss` → `/token` (PKCE, single use).

use outband_protocol::Profile;

use crate::browser_support::{
    at_hash, authorize_path, claims, redeem, Browser, Live, LOGIN_TIME, PASSWORD, REDIRECT_URI, VERIFIER, WEB,
};
use crate::support::{TestServer, ISSUER};

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    server
}

#[tokio::test]
async fn full_code_flow_with_pkce() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"12.50"},"creditorName":"Corner Café Ltd","creditorAccount":{"iban":"DE89370400440532013000"}}]"#;
    let scope = "openid profile email payments";
    let login = browser
        .get(&authorize_path(
            WEB,
            &[
                ("authorization_details", details),
                ("scope", scope),
                ("login_hint", "alice"),
            ],
        ))
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(login.text.contains("<label for=\"username\">Username</label>"));
    assert!(login.text.contains("<label for=\"password\">Password</label>"));
    assert!(
        login.text.contains("value=\"alice\""),
        "login_hint fills in the username"
    );
    assert!(login.text.contains("Demo Shop"));
    assert!(!login.text.contains("<script"), "works without JavaScript");

    let after_login = browser.login(&login, "alice", PASSWORD).await;
    assert_eq!(after_login.status, 303, "{}", after_login.text);
    assert!(browser.cookies.contains_key("outband_session"));
    let consent = browser.get(&after_login.location().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    for words in [
        "Demo Shop",
        "see your e-mail address",
        "make payments you approve",
        "Pay <strong>EUR 12.50</strong> to <strong>Corner Café Ltd</strong>",
        "DE89370400440532013000",
    ] {
        assert!(consent.text.contains(words), "{words} missing: {}", consent.text);
    }
    let redirect = browser.decide(&consent, "approve").await;
    assert_eq!(redirect.status, 303);
    let params = redirect.redirect_params();
    assert_eq!(params["state"], "st-123");
    assert_eq!(params["iss"], ISSUER);
    let code = &params["code"];

    let (status, tokens) = redeem(&live, WEB, code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], scope);
    assert!(tokens["refresh_token"].is_string());
    assert_eq!(tokens["authorization_details"][0]["creditorName"], "Corner Café Ltd");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["aud"], WEB);
    assert_eq!(id["iss"], ISSUER);
    assert_eq!(id["sub"], "sub-alice");
    assert_eq!(id["auth_time"], LOGIN_TIME);
    assert_eq!(id["at_hash"], at_hash(tokens["access_token"].as_str().unwrap()));

    // The session is remembered: the next request goes straight to consent,
    // prompt=none needs consent for a scope no grant covers (remembered consent
    // is tested in `account.rs`), prompt=login asks for the password again.
    let again = browser.get(&authorize_path(WEB, &[("state", "s2")])).await;
    assert!(again.text.contains("Allow access?") && !again.text.contains("Password"));
    let silent = browser
        .get(&authorize_path(WEB, &[("prompt", "none"), ("scope", "openid phone")]))
        .await;
    assert_eq!(silent.redirect_params()["error"], "consent_required");
    let relogin = browser.get(&authorize_path(WEB, &[("prompt", "login")])).await;
    assert!(relogin.text.contains("Password"));
    server.clock.advance(120);
    let stale = browser.get(&authorize_path(WEB, &[("max_age", "60")])).await;
    assert!(stale.text.contains("Password"), "max_age exceeded: log in again");
}

#[tokio::test]
async fn wrong_password_is_generic_and_limited() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let page = browser.get(&authorize_path(WEB, &[])).await;
    let wrong = browser.login(&page, "alice", "not the password").await;
    let unknown = browser.login(&page, "mallory", "not the password").await;
    for reply in [&wrong, &unknown] {
        assert_eq!(reply.status, 200);
        assert!(reply.text.contains("Wrong username or password."), "{}", reply.text);
    }
    assert!(!browser.cookies.contains_key("outband_session"));
    for _ in 0..4 {
        browser.login(&page, "alice", "still wrong").await;
    }
    let throttled = browser.login(&page, "alice", PASSWORD).await;
    assert_eq!(throttled.status, 429, "{}", throttled.text);
    assert!(throttled.text.contains("Too many failed attempts"));
    // The window passes; the right password works again.
    server.clock.advance(901);
    let page = browser.get(&authorize_path(WEB, &[])).await;
    assert_eq!(browser.login(&page, "alice", PASSWORD).await.status, 303);
}

#[tokio::test]
async fn forms_need_their_csrf_token_and_browser() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let page = browser.get(&authorize_path(WEB, &[])).await;
    let interaction = page.hidden("interaction");
    let without_csrf = browser
        .post(
            "/authorize/login",
            &[
                ("interaction", &interaction),
                ("username", "alice"),
                ("password", PASSWORD),
            ],
        )
        .await;
    assert_eq!(without_csrf.status, 400);
    assert!(without_csrf.text.contains("not opened in this browser"));
    // Another browser with the same form (login CSRF) is refused too.
    let mut other = Browser::new(&live);
    assert_eq!(other.login(&page, "alice", PASSWORD).await.status, 400);
    assert!(!browser.cookies.contains_key("outband_session") && !other.cookies.contains_key("outband_session"));
}

#[tokio::test]
async fn code_is_single_use_and_replay_revokes() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[])).await;
    let code = browser.login_and_approve(&login).await.redirect_params()["code"].clone();
    let (status, first) = redeem(&live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{first}");
    let (status, second) = redeem(&live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!((status, second["error"].as_str()), (400, Some("invalid_grant")));
    let userinfo = reqwest::Client::new()
        .get(format!("{}/userinfo", live.base))
        .bearer_auth(first["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401, "the first redemption's tokens are revoked");
    let refresh = reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .basic_auth(WEB, Some("web-secret"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", first["refresh_token"].as_str().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refresh.status(), 400, "and so is its refresh token");
}

/// A code from a fresh browser (so the login page comes first).
async fn fresh_code(live: &Live) -> String {
    let mut browser = Browser::new(live);
    let login = browser.get(&authorize_path(WEB, &[])).await;
    browser.login_and_approve(&login).await.redirect_params()["code"].clone()
}

#[tokio::test]
async fn pkce_and_expiry_are_checked() {
    let server = server().await;
    let live = server.live().await;
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx";
    let (status, body) = redeem(&live, WEB, &fresh_code(&live).await, Some(wrong)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (status, body) = redeem(&live, WEB, &fresh_code(&live).await, None).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let expired = fresh_code(&live).await;
    server.clock.advance(61);
    let (status, body) = redeem(&live, WEB, &expired, Some(VERIFIER)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
}

#[tokio::test]
async fn untrusted_requests_get_an_error_page_others_a_redirect() {
    let server = server().await;
    // FAPI 1 baseline: PKCE rules without FAPI 1 Advanced's signed requests (see hybrid.rs, jarm.rs).
    server.add_web_client("fapi", Profile::Fapi1Baseline, |_| {}).await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    for path in [
        authorize_path(WEB, &[("redirect_uri", "https://evil.example/cb")]),
        authorize_path(WEB, &[("redirect_uri", "")]),
        authorize_path("nobody", &[]),
        authorize_path("", &[]),
    ] {
        let page = browser.get(&path).await;
        assert_eq!(page.status, 400, "{path}");
        assert!(page.location().is_none(), "{path}: never redirected");
        assert!(page.text.contains("Something is wrong with this sign-in"));
    }
    for (extra, error) in [
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("scope", "openid admin")], "invalid_scope"),
        (vec![("prompt", "none")], "login_required"),
        (vec![("code_challenge_method", "S512")], "invalid_request"),
        (vec![("authorization_details", "[{}]")], "invalid_authorization_details"),
        (vec![("request", "eyJ.x.y")], "invalid_request_object"),
        (vec![("response_mode", "shout")], "invalid_request"),
    ] {
        let page = browser.get(&authorize_path(WEB, &extra)).await;
        let params = page.redirect_params();
        assert_eq!(params["error"], error, "{extra:?}");
        assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-123", ISSUER));
    }
    // FAPI: PKCE is required, and only with S256.
    for extra in [
        vec![("code_challenge", ""), ("code_challenge_method", "")],
        vec![("code_challenge_method", "plain")],
    ] {
        let page = browser.get(&authorize_path("fapi", &extra)).await;
        assert_eq!(page.redirect_params()["error"], "invalid_request", "{extra:?}");
    }
}

#[tokio::test]
async fn denying_answers_access_denied() {
    let server = server().await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[])).await;
    let after_login = browser.login(&login, "alice", PASSWORD).await;
    let consent = browser.get(&after_login.location().unwrap()).await;
    let denied = browser.decide(&consent, "deny").await;
    let params = denied.redirect_params();
    assert_eq!(
        (params["error"].as_str(), params["state"].as_str()),
        ("access_denied", "st-123")
    );
    // The same consent form cannot be answered twice.
    assert_eq!(browser.decide(&consent, "approve").await.status, 400);
    assert!(REDIRECT_URI.starts_with("https://"));
}

/// RFC 7591 §2: the pages show the logo and link the home page, privacy policy and
/// terms the client registered; the logo's origin is the only one images may come from.
#[tokio::test]
async fn the_pages_show_the_clients_logo_and_links() {
    let server = TestServer::new().await;
    server
        .add_web_client(WEB, Profile::Oidc, |m| {
            m.logo_uri = Some("https://cdn.shop.example/logo.png".into());
            m.client_uri = Some("https://shop.example/".into());
            m.policy_uri = Some("https://shop.example/privacy".into());
            m.tos_uri = Some("https://shop.example/terms".into());
        })
        .await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_path(WEB, &[])).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let after_login = browser.login(&login, "alice", PASSWORD).await;
    let consent = browser.get(&after_login.location().unwrap()).await;
    for page in [&login, &consent] {
        for html in [
            "<img src=\"https://cdn.shop.example/logo.png\" alt=\"Demo Shop logo\" referrerpolicy=\"no-referrer\"",
            "<a href=\"https://shop.example/\" rel=\"noopener noreferrer\" target=\"_blank\">Website of Demo Shop</a>",
            "<a href=\"https://shop.example/privacy\" rel=\"noopener noreferrer\" target=\"_blank\">Privacy policy of Demo Shop</a>",
            "<a href=\"https://shop.example/terms\" rel=\"noopener noreferrer\" target=\"_blank\">Terms of service of Demo Shop</a>",
        ] {
            assert!(page.text.contains(html), "{html} missing: {}", page.text);
        }
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("img-src https://cdn.shop.example"), "{csp}");
        assert!(csp.contains("default-src 'none'"), "{csp}");
    }
    let csp = consent.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("form-action 'self' https://"),
        "the decision may still redirect: {csp}"
    );

    // A client without them: no image, no links, no img-src.
    server.add_web_client("plain", Profile::Oidc, |_| {}).await;
    let plain = Browser::new(&live).get(&authorize_path("plain", &[])).await;
    assert_eq!(plain.status, 200, "{}", plain.text);
    assert!(
        !plain.text.contains("<img") && !plain.text.contains("client-links"),
        "{}",
        plain.text
    );
    assert!(!plain.headers["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("img-src"));
}
