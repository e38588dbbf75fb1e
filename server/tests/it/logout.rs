//! OpenID Connect RP-Initiated Logout over a real socket: `/logout` with an
//! `id_token_hint` signs out at once and redirects to the registered
//! `post_logout_redirect_uri` with `state`; a bad redirect URI or hint is a
//! 400 page and never a redirect; without a hint the user confirms on a
//! CSRF-protected page; the account page's Sign out button; a password change
//! signs the user out of their other browsers; discovery and registration.

use outband_protocol::Profile;
use serde_json::{json, Value};

use crate::browser_support::{authorize_path, redeem, Browser, Live, Page, PASSWORD, VERIFIER, WEB};
use crate::support::{TestServer, ISSUER};

const AFTER_LOGOUT: &str = "https://client.example/logged-out";

async fn setup() -> (TestServer, Live) {
    let server = TestServer::new().await;
    server
        .add_web_client(WEB, Profile::Oidc, |m| {
            m.post_logout_redirect_uris = vec![url::Url::parse(AFTER_LOGOUT).unwrap()];
        })
        .await;
    server.add_password_user("alice").await;
    server.add_password_user("bob").await;
    let live = server.live().await;
    (server, live)
}

/// Logs `username` in through the real pages, approves, redeems: the tokens.
async fn sign_in(live: &Live, browser: &mut Browser, username: &str) -> Value {
    let login = browser.get(&authorize_path(WEB, &[])).await;
    let after_login = browser.login(&login, username, PASSWORD).await;
    assert_eq!(after_login.status, 303, "{}", after_login.text);
    let consent = browser.get(&after_login.location().unwrap()).await;
    let done = browser.decide(&consent, "approve").await;
    let code = done.redirect_params()["code"].clone();
    let (status, tokens) = redeem(live, WEB, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

fn logout_path(params: &[(&str, &str)]) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(params)
        .finish();
    format!("/logout?{query}")
}

/// Whether the browser's login session still works: `prompt=none` gives a
/// code, or `login_required` once it is gone.
async fn session_works(browser: &mut Browser) -> bool {
    let page = browser.get(&authorize_path(WEB, &[("prompt", "none")])).await;
    let params = page.redirect_params();
    match params.get("error").map(String::as_str) {
        None => true,
        Some("login_required") => false,
        other => panic!("unexpected {other:?}: {params:?}"),
    }
}

fn assert_error_page(page: &Page) {
    assert_eq!(page.status, 400, "{}", page.text);
    assert_eq!(page.location(), None, "never a redirect");
    assert!(page.text.contains("You were not signed out."), "{}", page.text);
}

fn session_cookie_cleared(page: &Page) -> bool {
    page.headers
        .get_all("set-cookie")
        .iter()
        .any(|v| v.to_str().unwrap().starts_with("outband_session=; Path=/; Max-Age=0"))
}

#[tokio::test]
async fn discovery_advertises_the_end_session_endpoint() {
    let server = TestServer::new().await;
    let reply = server.get("/.well-known/openid-configuration").await;
    assert_eq!(reply.json["end_session_endpoint"], format!("{ISSUER}/logout"));
}

#[tokio::test]
async fn a_hinted_logout_redirects_with_state_and_ends_the_session() {
    let (server, live) = setup().await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "alice").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    assert!(session_works(&mut browser).await);
    let stolen = browser.cookies.clone();

    // The ID token has expired by now (5 minutes); as a hint it still counts.
    server.clock.advance(3600);
    let page = browser
        .get(&logout_path(&[
            ("id_token_hint", id_token),
            ("post_logout_redirect_uri", AFTER_LOGOUT),
            ("state", "bye 1"),
            ("ui_locales", "en"),
        ]))
        .await;
    assert_eq!(page.status, 303, "{}", page.text);
    assert_eq!(
        page.location().as_deref(),
        Some("https://client.example/logged-out?state=bye+1")
    );
    assert!(session_cookie_cleared(&page));
    assert!(!session_works(&mut browser).await, "prompt=none → login_required");
    // The session row is gone: the old cookie value does not work either.
    browser.cookies = stolen;
    assert!(!session_works(&mut browser).await);

    // POST works the same; without a redirect URI, the signed-out page.
    let tokens = sign_in(&live, &mut browser, "alice").await;
    let page = browser
        .post(
            "/logout",
            &[
                ("id_token_hint", tokens["id_token"].as_str().unwrap()),
                ("client_id", WEB),
            ],
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("You are signed out"), "{}", page.text);
    assert!(session_cookie_cleared(&page));
    assert!(!session_works(&mut browser).await);
}

#[tokio::test]
async fn an_unregistered_post_logout_redirect_uri_is_an_error_page() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "alice").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    for uri in [
        "https://evil.example/logged-out",
        "https://client.example/logged-out/",
        "https://client.example/cb",
    ] {
        let page = browser
            .get(&logout_path(&[
                ("id_token_hint", id_token),
                ("post_logout_redirect_uri", uri),
                ("state", "s"),
            ]))
            .await;
        assert_error_page(&page);
        assert!(page.text.contains("not registered"), "{}", page.text);
    }
    // Without a hint or client_id, no client to check it against.
    let page = browser
        .get(&logout_path(&[("post_logout_redirect_uri", AFTER_LOGOUT)]))
        .await;
    assert_error_page(&page);
    assert!(session_works(&mut browser).await, "still signed in");
}

#[tokio::test]
async fn a_forged_or_foreign_id_token_hint_is_refused() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    let tokens = sign_in(&live, &mut browser, "alice").await;
    let id_token = tokens["id_token"].as_str().unwrap();
    // The payload swapped for bob's, the signature kept.
    let parts: Vec<&str> = id_token.split('.').collect();
    let mut claims = crate::browser_support::claims(id_token);
    claims["sub"] = json!("someone-else");
    let payload = base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims.to_string());
    let forged = format!("{}.{payload}.{}", parts[0], parts[2]);
    let access_token = tokens["access_token"].as_str().unwrap();
    for hint in ["garbage", "a.b.c", forged.as_str(), access_token] {
        let page = browser
            .get(&logout_path(&[
                ("id_token_hint", hint),
                ("post_logout_redirect_uri", AFTER_LOGOUT),
            ]))
            .await;
        assert_error_page(&page);
        assert!(page.text.contains("not an ID token of this server"), "{}", page.text);
    }
    // A real hint for another client_id than the request's.
    let page = browser
        .get(&logout_path(&[("id_token_hint", id_token), ("client_id", "other")]))
        .await;
    assert_error_page(&page);
    assert!(session_works(&mut browser).await, "still signed in");
}

#[tokio::test]
async fn without_a_hint_the_user_confirms() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    sign_in(&live, &mut browser, "alice").await;
    let ask = logout_path(&[
        ("client_id", WEB),
        ("post_logout_redirect_uri", AFTER_LOGOUT),
        ("state", "s-9"),
    ]);

    let page = browser.get(&ask).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<h1>Sign out?</h1>"), "{}", page.text);
    assert!(page.text.contains("<strong>Demo Shop</strong> asks to sign you out"));
    assert!(!page.text.contains("<script"), "works without JavaScript");
    let csp = page.headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("form-action 'self' https://client.example"), "{csp}");
    assert!(session_works(&mut browser).await, "nothing happens before the answer");

    // "Stay signed in" keeps the session.
    let page = browser.get(&ask).await;
    let form = |page: &Page, decision: &'static str| {
        [
            ("csrf", page.hidden("csrf")),
            ("client_id", page.hidden("client_id")),
            ("post_logout_redirect_uri", page.hidden("post_logout_redirect_uri")),
            ("state", page.hidden("state")),
            ("decision", decision.to_owned()),
        ]
    };
    let stay = form(&page, "stay");
    let stay: Vec<(&str, &str)> = stay.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let kept = browser.post("/logout/confirm", &stay).await;
    assert_eq!(kept.status, 200, "{}", kept.text);
    assert!(kept.text.contains("You are still signed in"));
    assert!(session_works(&mut browser).await);

    // "Sign out": the session ends, the browser goes back with state.
    let page = browser.get(&ask).await;
    let confirm = form(&page, "logout");
    let confirm: Vec<(&str, &str)> = confirm.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let done = browser.post("/logout/confirm", &confirm).await;
    assert_eq!(done.status, 303, "{}", done.text);
    assert_eq!(
        done.location().as_deref(),
        Some("https://client.example/logged-out?state=s-9")
    );
    assert!(session_cookie_cleared(&done));
    assert!(!session_works(&mut browser).await);

    // Bob's ID token does not tie the request to alice's session: she is asked.
    let mut bobs = Browser::new(&live);
    let bob_tokens = sign_in(&live, &mut bobs, "bob").await;
    sign_in(&live, &mut browser, "alice").await;
    let page = browser
        .get(&logout_path(&[(
            "id_token_hint",
            bob_tokens["id_token"].as_str().unwrap(),
        )]))
        .await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("<h1>Sign out?</h1>"), "{}", page.text);
    assert!(page.text.contains("signed in as <strong>alice</strong>"));
    assert!(session_works(&mut browser).await);
}

#[tokio::test]
async fn a_confirmation_without_its_csrf_token_is_refused() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    sign_in(&live, &mut browser, "alice").await;
    let page = browser.get(&logout_path(&[("client_id", WEB)])).await;
    assert_eq!(page.status, 200, "{}", page.text);
    for csrf in ["", "forged"] {
        let refused = browser
            .post(
                "/logout/confirm",
                &[("csrf", csrf), ("client_id", WEB), ("decision", "logout")],
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.text);
        assert_eq!(refused.location(), None);
        assert!(!session_cookie_cleared(&refused));
    }
    assert!(session_works(&mut browser).await, "still signed in");
}

#[tokio::test]
async fn the_account_page_signs_out() {
    let (_server, live) = setup().await;
    let mut browser = Browser::new(&live);
    sign_in(&live, &mut browser, "alice").await;
    let page = browser.get("/account").await;
    assert!(page.text.contains("action=\"/account/logout\""), "{}", page.text);
    let refused = browser.post("/account/logout", &[("csrf", "forged")]).await;
    assert_eq!(refused.status, 400);
    assert!(session_works(&mut browser).await);

    let csrf = page.hidden("csrf");
    let done = browser.post("/account/logout", &[("csrf", &csrf)]).await;
    assert_eq!(done.status, 200, "{}", done.text);
    assert!(done.text.contains("You are signed out"));
    assert!(!session_works(&mut browser).await);
    let page = browser.get("/account").await;
    assert!(page.text.contains("Sign in to your account"), "{}", page.text);
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions() {
    let (_server, live) = setup().await;
    let mut here = Browser::new(&live);
    let mut elsewhere = Browser::new(&live);
    sign_in(&live, &mut here, "alice").await;
    sign_in(&live, &mut elsewhere, "alice").await;
    let mut bobs = Browser::new(&live);
    sign_in(&live, &mut bobs, "bob").await;

    let page = here.get("/account").await;
    let csrf = page.hidden("csrf");
    let changed = here
        .post(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", "new secret pass"),
                ("confirm_password", "new secret pass"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.text);
    assert!(session_works(&mut here).await, "this browser stays signed in");
    assert!(!session_works(&mut elsewhere).await, "the other one is signed out");
    assert!(session_works(&mut bobs).await, "other users are untouched");
}

#[tokio::test]
async fn post_logout_redirect_uris_are_registered_under_the_profile_rules() {
    let server = TestServer::with_config("[registration]\nenabled = true\n").await;
    let register = |body: Value| {
        let request = axum::http::Request::post("/register")
            .header("content-type", "application/json")
            .body(axum::body::Body::from(body.to_string()))
            .unwrap();
        server.send(request)
    };
    let client = |profile: &str, uri: &str| {
        let method = if profile == "oidc" {
            "client_secret_basic"
        } else {
            "none"
        };
        json!({
            "redirect_uris": ["https://rp.example/cb"],
            "post_logout_redirect_uris": [uri],
            "token_endpoint_auth_method": method,
            "profile": profile,
            "scope": "openid",
        })
    };
    let ok = register(client("oidc", "https://rp.example/bye")).await;
    assert_eq!(ok.status.as_u16(), 201, "{}", ok.text);
    assert_eq!(ok.json["post_logout_redirect_uris"], json!(["https://rp.example/bye"]));

    for (profile, uri) in [
        ("fapi1-baseline", "http://rp.example/bye"),
        ("oidc", "https://rp.example/bye#frag"),
        ("oidc", "myapp:/bye"),
    ] {
        let refused = register(client(profile, uri)).await;
        refused.assert_error(400, "invalid_client_metadata");
        assert!(
            refused.json["error_description"]
                .as_str()
                .unwrap()
                .starts_with("post_logout_redirect_uris:"),
            "{}",
            refused.text
        );
    }
}

#[test]
fn the_cli_registers_post_logout_redirect_uris() {
    let env = crate::cli_support::CliEnv::new();
    let add = |id: &'static str, uri: &'static str| {
        [
            "clients",
            "add",
            "--id",
            id,
            "--grant-type",
            "authorization_code",
            "--redirect-uri",
            "https://rp.example/cb",
            "--post-logout-redirect-uri",
            uri,
        ]
    };
    env.ok(&add("rp", "https://rp.example/bye"));
    let shown = crate::cli_support::json(&env.ok(&["clients", "show", "rp"]));
    assert_eq!(shown["post_logout_redirect_uris"], json!(["https://rp.example/bye"]));
    let err = env.fails(&add("bad", "https://rp.example/bye#x"));
    assert!(err.contains("post_logout_redirect_uris: "), "{err}");
}

/// `id_token_hint` at `/authorize` (OpenID Connect Core §3.1.2.1): the hinted
/// user's session answers `prompt=none`; another user's session does not count
/// (`login_required`, or the login page); a hint this server did not issue to
/// the client is `invalid_request`.
#[tokio::test]
async fn authorize_honours_the_id_token_hint() {
    let (_server, live) = setup().await;
    let mut alice = Browser::new(&live);
    let alice_tokens = sign_in(&live, &mut alice, "alice").await;
    let mut bob = Browser::new(&live);
    let bob_tokens = sign_in(&live, &mut bob, "bob").await;
    let alice_hint = alice_tokens["id_token"].as_str().unwrap();
    let bob_hint = bob_tokens["id_token"].as_str().unwrap();

    let page = alice
        .get(&authorize_path(
            WEB,
            &[("prompt", "none"), ("id_token_hint", alice_hint)],
        ))
        .await;
    assert!(
        page.redirect_params().contains_key("code"),
        "{:?}",
        page.redirect_params()
    );

    let page = alice
        .get(&authorize_path(WEB, &[("prompt", "none"), ("id_token_hint", bob_hint)]))
        .await;
    assert_eq!(page.redirect_params()["error"], "login_required");

    // Without prompt=none, alice's browser is asked to sign in (as bob).
    let page = alice.get(&authorize_path(WEB, &[("id_token_hint", bob_hint)])).await;
    assert_eq!(page.status, 200, "{}", page.text);
    assert!(page.text.contains("password"), "the login page: {}", page.text);

    for bad in ["not-a-jwt", alice_tokens["access_token"].as_str().unwrap()] {
        let page = alice.get(&authorize_path(WEB, &[("id_token_hint", bad)])).await;
        assert_eq!(page.redirect_params()["error"], "invalid_request", "{bad}");
    }
}
