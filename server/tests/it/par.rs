//! Pushed authorization requests (RFC 9126): `/par` with client
//! authentication, one-time `request_uri`s, and clients that must use them.

use outband_protocol::{ClientId, GrantType, Profile, Scope, SigningAlg, TokenEndpointAuthMethod};
use serde_json::{json, Value};

use crate::api_support::key;
use crate::device_support::proof;

use crate::browser_support::{authorize_path, redeem, Browser, Live, CHALLENGE, REDIRECT_URI, VERIFIER, WEB};
use crate::support::{client_assertion, ClientKey, TestServer, ISSUER, T0};

pub async fn push(live: &Live, client_id: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form: std::collections::BTreeMap<&str, &str> = [
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid payments"),
        ("state", "st-par"),
        ("nonce", "n-par"),
        ("code_challenge", CHALLENGE),
        ("code_challenge_method", "S256"),
    ]
    .into_iter()
    .collect();
    form.extend(extra.iter().copied());
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .basic_auth(client_id, Some(format!("{client_id}-secret")))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap())
}

pub fn authorize_with(client_id: &str, request_uri: &str) -> String {
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .finish();
    format!("/authorize?{query}")
}

#[tokio::test]
async fn pushed_request_happy_path_and_single_use() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let (status, pushed) = push(&live, WEB, &[]).await;
    assert_eq!(status, 201, "{pushed}");
    assert_eq!(pushed["expires_in"], 60);
    let request_uri = pushed["request_uri"].as_str().unwrap();
    assert!(request_uri.starts_with("urn:ietf:params:oauth:request_uri:"));

    let mut browser = Browser::new(&live);
    let login = browser.get(&authorize_with(WEB, request_uri)).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert_eq!((params["state"].as_str(), params["iss"].as_str()), ("st-par", ISSUER));
    let (status, tokens) = redeem(&live, WEB, &params["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid payments");

    let reused = browser.get(&authorize_with(WEB, request_uri)).await;
    assert_eq!(reused.status, 400, "a request_uri is single use");
    assert!(reused.location().is_none());

    let (_, pushed) = push(&live, WEB, &[]).await;
    server.clock.advance(61);
    let expired = browser
        .get(&authorize_with(WEB, pushed["request_uri"].as_str().unwrap()))
        .await;
    assert_eq!(expired.status, 400, "expired");
}

#[tokio::test]
async fn par_refuses_bad_requests_and_bad_clients() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_web_client("other", Profile::Oidc, |_| {}).await;
    let live = server.live().await;
    for (extra, error) in [
        (vec![("redirect_uri", "https://evil.example/cb")], "invalid_request"),
        (vec![("response_type", "token")], "unsupported_response_type"),
        (
            vec![("request_uri", "urn:ietf:params:oauth:request_uri:x")],
            "invalid_request",
        ),
        (vec![("scope", "admin")], "invalid_scope"),
    ] {
        let (status, body) = push(&live, WEB, &extra).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some(error)),
            "{extra:?}: {body}"
        );
    }
    let unauthenticated = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .basic_auth(WEB, Some("wrong"))
        .form(&[("response_type", "code")])
        .send()
        .await
        .unwrap();
    assert_eq!(unauthenticated.status(), 401);
    // Another client cannot use the request_uri.
    let (_, pushed) = push(&live, WEB, &[]).await;
    let mut browser = Browser::new(&live);
    let page = browser
        .get(&authorize_with("other", pushed["request_uri"].as_str().unwrap()))
        .await;
    assert_eq!(page.status, 400);
}

/// `/authorize` with `request_uri`, `state` and, when given, an outer `redirect_uri`.
fn by_reference(client_id: &str, request_uri: &str, redirect_uri: Option<&str>) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query
        .append_pair("client_id", client_id)
        .append_pair("request_uri", request_uri)
        .append_pair("state", "st-outer");
    if let Some(uri) = redirect_uri {
        query.append_pair("redirect_uri", uri);
    }
    format!("/authorize?{}", query.finish())
}

/// The redirect of `page`, asserted to carry `error`, the outer `state` and `iss` (RFC 9207).
fn assert_redirected_error(page: &crate::browser_support::Page, error: &str) {
    assert_eq!(page.status, 303, "{}", page.text);
    let params = page.redirect_params();
    assert_eq!(params["error"], error, "{params:?}");
    assert_eq!(params["state"], "st-outer");
    assert_eq!(params["iss"], ISSUER);
    assert!(!params.contains_key("code"));
}

#[tokio::test]
async fn request_uri_by_reference_is_not_supported_and_says_so_at_a_registered_redirect_uri() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server
        .add_web_client("strict", Profile::Oidc, |m| {
            m.require_pushed_authorization_requests = true
        })
        .await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    for client in [WEB, "strict"] {
        let page = browser
            .get(&by_reference(client, "https://rp.example/req.jwt", Some(REDIRECT_URI)))
            .await;
        assert_redirected_error(&page, "request_uri_not_supported");
    }
    // Never to a redirect URI that is not registered, nor without one: a page.
    for redirect_uri in [Some("https://evil.example/cb"), None] {
        let page = browser
            .get(&by_reference(WEB, "https://rp.example/req.jwt", redirect_uri))
            .await;
        assert_eq!(page.status, 400, "{redirect_uri:?}");
        assert!(page.location().is_none(), "{redirect_uri:?}");
        assert!(!page.text.contains("evil.example"));
    }
}

#[tokio::test]
async fn unknown_used_expired_or_foreign_pushed_requests_are_invalid_request_uri() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_web_client("other", Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let unknown = "urn:ietf:params:oauth:request_uri:never-issued";
    let page = browser.get(&by_reference(WEB, unknown, Some(REDIRECT_URI))).await;
    assert_redirected_error(&page, "invalid_request_uri");
    let page = browser
        .get(&by_reference(WEB, unknown, Some("https://evil.example/cb")))
        .await;
    assert_eq!((page.status, page.location()), (400, None));

    // Used once, the pushed request is gone.
    let (_, pushed) = push(&live, WEB, &[]).await;
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let login = browser.get(&authorize_with(WEB, request_uri)).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let page = browser.get(&by_reference(WEB, request_uri, Some(REDIRECT_URI))).await;
    assert_redirected_error(&page, "invalid_request_uri");

    // Another client's pushed request is unknown to this one (and stays usable by its owner).
    let (_, pushed) = push(&live, WEB, &[]).await;
    let request_uri = pushed["request_uri"].as_str().unwrap();
    let page = browser
        .get(&by_reference("other", request_uri, Some(REDIRECT_URI)))
        .await;
    assert_redirected_error(&page, "invalid_request_uri");
    let login = browser.get(&authorize_with(WEB, request_uri)).await;
    assert_eq!(login.status, 200, "{}", login.text);

    // Expired.
    let (_, pushed) = push(&live, WEB, &[]).await;
    server.clock.advance(61);
    let page = browser
        .get(&by_reference(
            WEB,
            pushed["request_uri"].as_str().unwrap(),
            Some(REDIRECT_URI),
        ))
        .await;
    assert_redirected_error(&page, "invalid_request_uri");
}

/// A FAPI 2 Security Profile client `fapi2` (private_key_jwt, ES256) for the code flow.
async fn fapi2_client(server: &TestServer) -> ClientKey {
    let key = server
        .add_jwt_client("fapi2", SigningAlg::ES256, Profile::Fapi2Security)
        .await;
    let mut fapi2 = server
        .state
        .store
        .client(&ClientId::new("fapi2"))
        .await
        .unwrap()
        .unwrap();
    fapi2.metadata.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
    fapi2.metadata.grant_types = vec![GrantType::AuthorizationCode];
    fapi2.metadata.scope = Scope::new("openid payments");
    server.state.store.update_client(&fapi2).await.unwrap();
    assert_eq!(
        fapi2.metadata.token_endpoint_auth_method,
        TokenEndpointAuthMethod::PrivateKeyJwt
    );
    key
}

#[tokio::test]
async fn fapi2_and_registered_clients_must_push() {
    let server = TestServer::new().await;
    server
        .add_web_client("strict", Profile::Oidc, |m| {
            m.require_pushed_authorization_requests = true
        })
        .await;
    let key = fapi2_client(&server).await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    for client in ["strict", "fapi2"] {
        let page = browser
            .get(&authorize_path(client, &[("scope", "openid payments")]))
            .await;
        let params = page.redirect_params();
        assert_eq!(params["error"], "invalid_request", "{client}");
        assert!(params["error_description"].contains("push"), "{client}");
    }
    // Pushed with private_key_jwt, the same request reaches the login page.
    let assertion = client_assertion(&key, "fapi2", T0, serde_json::json!({}));
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .form(&[
            ("client_id", "fapi2"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid payments"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 201);
    let pushed: Value = reply.json().await.unwrap();
    let login = browser
        .get(&authorize_with("fapi2", pushed["request_uri"].as_str().unwrap()))
        .await;
    assert_eq!(login.status, 200, "{}", login.text);
    assert!(login.text.contains("Sign in"));
}

/// `POST /token` for `code` as the FAPI 2 client (private_key_jwt) with a DPoP proof by `key`.
async fn fapi2_token(live: &Live, client: &ClientKey, code: &str, proof: &str) -> reqwest::Response {
    let assertion = client_assertion(client, "fapi2", T0, serde_json::json!({}));
    reqwest::Client::new()
        .post(format!("{}/token", live.base))
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
        ])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn fapi2_client_completes_par_pkce_private_key_jwt_and_dpop() {
    let server = TestServer::new().await;
    let client = fapi2_client(&server).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let assertion = client_assertion(&client, "fapi2", T0, serde_json::json!({}));
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .form(&[
            ("client_id", "fapi2"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid payments"),
            ("state", "st-fapi"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    let pushed: Value = reply.json().await.unwrap();
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_with("fapi2", pushed["request_uri"].as_str().unwrap()))
        .await;
    let code = browser.login_and_approve(&login).await.redirect_params()["code"].clone();

    let key = key();
    // FAPI 2 needs a server nonce in the proof: the first try asks for one.
    let first = fapi2_token(
        &live,
        &client,
        &code,
        &proof(&key, T0, "POST", "/token", None, None, &json!({})),
    )
    .await;
    assert_eq!(first.status(), 400);
    let nonce = first.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let body: Value = first.json().await.unwrap();
    assert_eq!(body["error"], "use_dpop_nonce");
    let with_nonce = proof(&key, T0, "POST", "/token", None, Some(&nonce), &json!({}));
    let tokens = fapi2_token(&live, &client, &code, &with_nonce).await;
    assert_eq!(tokens.status(), 200);
    let tokens: Value = tokens.json().await.unwrap();
    assert_eq!(tokens["token_type"], "DPoP");
    let access = tokens["access_token"].as_str().unwrap();
    assert!(crate::browser_support::claims(access)["cnf"]["jkt"].is_string());

    // The DPoP-bound token reaches the UserInfo endpoint only with a proof.
    let http = reqwest::Client::new();
    let userinfo = |proof: String| {
        http.get(format!("{}/userinfo", live.base))
            .header("Authorization", format!("DPoP {access}"))
            .header("DPoP", proof)
            .send()
    };
    let asked = userinfo(proof(&key, T0, "GET", "/userinfo", Some(access), None, &json!({})))
        .await
        .unwrap();
    let nonce = asked.headers()["dpop-nonce"].to_str().unwrap().to_owned();
    let answered = userinfo(proof(
        &key,
        T0,
        "GET",
        "/userinfo",
        Some(access),
        Some(&nonce),
        &json!({}),
    ))
    .await
    .unwrap();
    assert_eq!(answered.status(), 200);
    let claims: Value = answered.json().await.unwrap();
    assert_eq!(claims["sub"], "sub-alice");
    let bearer = http
        .get(format!("{}/userinfo", live.base))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), 401, "a DPoP-bound token is no bearer token");
}
