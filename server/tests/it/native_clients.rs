//! Public native clients (RFC 8252) and the FAPI 1 baseline profile, through
//! the real login and consent pages on a real socket: loopback redirects on any
//! port, private-use schemes, PKCE required (S256 under FAPI), no client
//! credentials grant, no secrets, and FAPI 1 baseline's rules for confidential
//! clients and for `nonce`/`state`.

use outband_protocol::{ClientId, ClientMetadata, GrantType, Profile, Scope, TokenEndpointAuthMethod};
use serde_json::{json, Value};

use crate::browser_support::Browser;
use crate::native_support::{
    native_authorize_path, native_code, params_at, public_token, redeem_public, refresh_public, APP, LOOPBACK_V4,
    LOOPBACK_V6, PRIVATE_USE,
};
use crate::support::{TestServer, ISSUER};

async fn server(profile: Profile) -> TestServer {
    let server = TestServer::with_config("[registration]\nenabled = true\n").await;
    server.add_native_client(profile).await;
    server.add_password_user("alice").await;
    server
}

/// A free port on 127.0.0.1 that is not the registered one: the app's listener.
fn ephemeral_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn native_app_logs_in_through_a_loopback_redirect_on_a_random_port() {
    for profile in [Profile::Fapi1Baseline, Profile::Oidc] {
        let server = server(profile).await;
        let live = server.live().await;
        let port = ephemeral_port();
        for redirect_uri in [
            format!("http://127.0.0.1:{port}/callback"),
            format!("http://[::1]:{port}/callback"),
            "http://[::1]/callback".to_owned(),
        ] {
            let code = native_code(&live, &redirect_uri, &[]).await;
            // The token request repeats the redirect_uri exactly, port included.
            let (status, body) = redeem_public(&live, &code, LOOPBACK_V4, None).await;
            assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
            let code = native_code(&live, &redirect_uri, &[]).await;
            let (status, tokens) = redeem_public(&live, &code, &redirect_uri, None).await;
            assert_eq!(status, 200, "{profile} {redirect_uri}: {tokens}");
            assert_eq!(tokens["token_type"], "Bearer");
            let id_token = crate::browser_support::claims(tokens["id_token"].as_str().unwrap());
            assert_eq!(
                (id_token["aud"].as_str(), id_token["nonce"].as_str()),
                (Some(APP), Some("n-native"))
            );
            // A public client refreshes with its client_id alone; tokens rotate.
            let refresh = tokens["refresh_token"].as_str().unwrap();
            let (status, refreshed) = refresh_public(&live, refresh, None).await;
            assert_eq!(status, 200, "{refreshed}");
            assert_ne!(refreshed["refresh_token"].as_str(), Some(refresh));
        }
        // Host, path and query are still compared exactly; localhost is not loopback.
        let mut browser = Browser::new(&live);
        for wrong in [
            format!("http://127.0.0.1:{port}/callback/"),
            format!("http://127.0.0.1:{port}/other"),
            format!("http://localhost:{port}/callback"),
            format!("https://127.0.0.1:{port}/callback"),
            format!("http://127.0.0.1:{port}/callback?x=1"),
        ] {
            let page = browser.get(&native_authorize_path(&wrong, &[])).await;
            assert_eq!(page.status, 400, "{wrong}");
            assert!(page.location().is_none(), "{wrong}: never redirected");
        }
    }
}

#[tokio::test]
async fn private_use_scheme_redirect() {
    let server = server(Profile::Fapi1Baseline).await;
    let live = server.live().await;
    let code = native_code(&live, PRIVATE_USE, &[]).await;
    let (status, tokens) = redeem_public(&live, &code, PRIVATE_USE, None).await;
    assert_eq!(status, 200, "{tokens}");
    // Exact match: another path of the app's scheme is refused.
    let mut browser = Browser::new(&live);
    let page = browser
        .get(&native_authorize_path("com.example.app:/oauth2redirect/other", &[]))
        .await;
    assert_eq!((page.status, page.location()), (400, None));
    // Errors go back to the app at its scheme, with state and iss.
    let page = browser
        .get(&native_authorize_path(PRIVATE_USE, &[("prompt", "none")]))
        .await;
    let params = params_at(&page.location().unwrap(), PRIVATE_USE);
    assert_eq!(params["error"], "login_required");
    assert_eq!(
        (params["state"].as_str(), params["iss"].as_str()),
        ("st-native", ISSUER)
    );
}

#[tokio::test]
async fn public_clients_need_pkce_and_fapi1_baseline_needs_s256() {
    for profile in [Profile::Fapi1Baseline, Profile::Oidc] {
        let server = server(profile).await;
        let live = server.live().await;
        let mut browser = Browser::new(&live);
        let page = browser
            .get(&native_authorize_path(
                LOOPBACK_V6,
                &[("code_challenge", ""), ("code_challenge_method", "")],
            ))
            .await;
        let params = params_at(&page.location().unwrap(), LOOPBACK_V6);
        assert_eq!(params["error"], "invalid_request", "{profile}: no PKCE");
        assert!(params["error_description"].contains("code_challenge"));
        let page = browser
            .get(&native_authorize_path(
                LOOPBACK_V6,
                &[("code_challenge_method", "plain")],
            ))
            .await;
        if profile == Profile::Fapi1Baseline {
            let location = page.location().unwrap();
            assert_eq!(params_at(&location, LOOPBACK_V6)["error"], "invalid_request", "plain");
        } else {
            assert_eq!(page.status, 200, "plain OIDC public clients may use plain");
        }
    }
}

#[tokio::test]
async fn fapi1_baseline_requires_nonce_with_openid_and_state_without() {
    let server = server(Profile::Fapi1Baseline).await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    let page = browser.get(&native_authorize_path(LOOPBACK_V6, &[("nonce", "")])).await;
    let params = params_at(&page.location().unwrap(), LOOPBACK_V6);
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("nonce"), "{params:?}");
    let page = browser
        .get(&native_authorize_path(
            LOOPBACK_V6,
            &[("scope", "payments"), ("state", "")],
        ))
        .await;
    let params = params_at(&page.location().unwrap(), LOOPBACK_V6);
    assert_eq!(params["error"], "invalid_request");
    assert!(params["error_description"].contains("state"), "{params:?}");
    // Without openid, a nonce is not needed; with state it works.
    let code = native_code(&live, LOOPBACK_V6, &[("scope", "payments"), ("nonce", "")]).await;
    let (status, tokens) = redeem_public(&live, &code, LOOPBACK_V6, None).await;
    assert_eq!((status, tokens["scope"].as_str()), (200, Some("payments")), "{tokens}");
}

#[tokio::test]
async fn public_clients_never_get_client_credentials_and_cannot_introspect() {
    let server = server(Profile::Oidc).await;
    let live = server.live().await;
    let (status, body) = public_token(
        &live,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", APP),
            ("scope", "payments"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unauthorized_client")),
        "{body}"
    );
    // Registration refuses the combination.
    let reply = register(
        &server,
        &json!({"token_endpoint_auth_method": "none", "grant_types": ["client_credentials"]}),
    )
    .await;
    assert_eq!(reply.0, 400);
    assert_eq!(reply.1["error"], "invalid_client_metadata");
    assert!(reply.1["error_description"]
        .as_str()
        .unwrap()
        .starts_with("grant_types:"));
    // A public client proves nothing, so it cannot introspect.
    let code = native_code(&live, LOOPBACK_V4, &[]).await;
    let (_, tokens) = redeem_public(&live, &code, LOOPBACK_V4, None).await;
    let access = tokens["access_token"].as_str().unwrap();
    let reply = reqwest::Client::new()
        .post(format!("{}/introspect", live.base))
        .form(&[("token", access), ("client_id", APP)])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 401);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    // It may revoke its own tokens (RFC 7009 §2.1).
    let reply = reqwest::Client::new()
        .post(format!("{}/revoke", live.base))
        .form(&[("token", access), ("client_id", APP)])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
}

async fn register(server: &TestServer, body: &Value) -> (u16, Value) {
    let request = axum::http::Request::post("/register")
        .header("content-type", "application/json")
        .body(axum::body::Body::from(body.to_string()))
        .unwrap();
    let reply = server.send(request).await;
    (reply.status.as_u16(), reply.json)
}

#[tokio::test]
async fn registration_of_native_and_fapi1_baseline_clients() {
    let server = server(Profile::Oidc).await;
    // A public native app under FAPI 1 baseline: no secret, native redirect URIs.
    let (status, body) = register(
        &server,
        &json!({
            "profile": "fapi1-baseline",
            "token_endpoint_auth_method": "none",
            "grant_types": ["authorization_code", "refresh_token"],
            "redirect_uris": ["http://127.0.0.1/cb", "http://[::1]:7000/cb", "com.example.app:/cb", "https://app.example/cb"],
            "scope": "openid payments",
            "client_secret": "chosen-by-the-client",
        }),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["token_endpoint_auth_method"], "none");
    assert!(
        body.get("client_secret").is_none(),
        "public clients get no secret: {body}"
    );
    assert!(body.get("client_secret_expires_at").is_none());
    let stored = server
        .state
        .store
        .client(&ClientId::new(body["client_id"].as_str().unwrap()))
        .await
        .unwrap()
        .unwrap();
    assert!(stored.secret_hash.is_none());

    // Bad redirect URIs are invalid_redirect_uri, naming the field.
    for (profile, method, uri, words) in [
        (
            "fapi1-baseline",
            "private_key_jwt",
            "http://127.0.0.1/cb",
            "public native clients",
        ),
        ("fapi1-baseline", "none", "http://localhost:7000/cb", "RFC 8252 §8.3"),
        ("fapi1-baseline", "none", "http://app.example/cb", "must be https"),
        ("oidc", "none", "myapp:/cb", "reverse domain name"),
        ("oidc", "none", "com.example.app://cb", "single slash"),
        (
            "fapi2-security",
            "private_key_jwt",
            "com.example.app:/cb",
            "must be https",
        ),
    ] {
        let mut body = json!({
            "profile": profile,
            "token_endpoint_auth_method": method,
            "redirect_uris": [uri],
            "scope": "openid",
        });
        if method == "private_key_jwt" {
            body["jwks"] = json!({"keys": [Value::Object(
                crate::device_support::device_key(outband_protocol::SigningAlg::ES256).public_jwk().as_ref().clone()
            )]});
        }
        let (status, reply) = register(&server, &body).await;
        assert_eq!(status, 400, "{uri}: {reply}");
        assert_eq!(reply["error"], "invalid_redirect_uri", "{uri}: {reply}");
        let description = reply["error_description"].as_str().unwrap();
        assert!(
            description.starts_with("redirect_uris: ") && description.contains(words),
            "{uri}: {description}"
        );
    }

    // FAPI 1 baseline: confidential clients use mTLS or private_key_jwt, never secrets.
    for method in ["client_secret_basic", "client_secret_post"] {
        let (status, reply) = register(
            &server,
            &json!({"profile": "fapi1-baseline", "token_endpoint_auth_method": method,
                    "redirect_uris": ["https://shop.example/cb"]}),
        )
        .await;
        assert_eq!(
            (status, reply["error"].as_str()),
            (400, Some("invalid_client_metadata")),
            "{reply}"
        );
        assert!(reply["error_description"]
            .as_str()
            .unwrap()
            .contains("not allowed under the fapi1-baseline profile"));
    }
    // Public clients are for oidc and fapi1-baseline only.
    let (status, reply) = register(
        &server,
        &json!({"profile": "fapi2-security", "token_endpoint_auth_method": "none",
                "redirect_uris": ["https://app.example/cb"]}),
    )
    .await;
    assert_eq!(
        (status, reply["error"].as_str()),
        (400, Some("invalid_client_metadata")),
        "{reply}"
    );
}

#[tokio::test]
async fn fapi1_baseline_refuses_client_secrets_at_the_token_endpoint() {
    let server = server(Profile::Fapi1Baseline).await;
    // Stored directly (as an old configuration could have it): the token endpoint still refuses.
    let mut meta = ClientMetadata::new(ClientId::new("legacy"));
    meta.profile = Profile::Fapi1Baseline;
    meta.scope = Scope::new("openid payments");
    meta.grant_types = vec![GrantType::AuthorizationCode];
    meta.token_endpoint_auth_method = TokenEndpointAuthMethod::ClientSecretBasic;
    meta.redirect_uris = vec![url::Url::parse("https://shop.example/cb").unwrap()];
    server.add_client(meta, Some("legacy-secret")).await;
    let reply = server
        .post_form(
            "/token",
            "grant_type=authorization_code&code=x&redirect_uri=https%3A%2F%2Fshop.example%2Fcb",
            Some(("legacy", "legacy-secret")),
        )
        .await;
    reply.assert_error(401, "invalid_client");
    assert!(
        reply
            .text
            .contains("fapi1-baseline profile does not allow client_secret_basic"),
        "{}",
        reply.text
    );
}

#[tokio::test]
async fn discovery_lists_none_for_the_token_endpoint_only_where_it_applies() {
    let server = server(Profile::Oidc).await;
    let doc = server.get("/.well-known/openid-configuration").await.json;
    let has = |field: &str| doc[field].as_array().unwrap().iter().any(|m| m == "none");
    assert!(has("token_endpoint_auth_methods_supported"));
    assert!(has("revocation_endpoint_auth_methods_supported"));
    assert!(!has("introspection_endpoint_auth_methods_supported"));
    assert!(!doc["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&json!("none")));
}
