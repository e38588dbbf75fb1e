//! Signed authorization requests (JAR, RFC 9101) at `/authorize` and `/par`:
//! only the object's parameters count, and a bad object is `invalid_request_object`.

use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, GrantType, Profile, Scope, SigningAlg};
use serde_json::{json, Value};

use crate::browser_support::{redeem_with, Browser, Live, CHALLENGE, REDIRECT_URI, VERIFIER};
use crate::support::{client_assertion, ClientKey, TestServer, ISSUER, T0};

/// An OIDC `private_key_jwt` client `signer` for the code flow; returns its key.
pub async fn signer(server: &TestServer) -> ClientKey {
    let key = server.add_jwt_client("signer", SigningAlg::ES256, Profile::Oidc).await;
    let mut client = server
        .state
        .store
        .client(&ClientId::new("signer"))
        .await
        .unwrap()
        .unwrap();
    client.metadata.redirect_uris = vec![url::Url::parse(REDIRECT_URI).unwrap()];
    client.metadata.grant_types = vec![GrantType::AuthorizationCode];
    client.metadata.scope = Scope::new("openid payments");
    server.state.store.update_client(&client).await.unwrap();
    key
}

/// A request object signed by `key`, with claims overridable (`null` removes one).
pub fn request_object(key: &SigningKey, overrides: Value) -> String {
    let mut claims = json!({
        "iss": "signer",
        "client_id": "signer",
        "aud": ISSUER,
        "exp": T0 + 300,
        "nbf": T0,
        "jti": uuid::Uuid::new_v4().to_string(),
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "scope": "openid payments",
        "state": "st-jar",
        "nonce": "n-jar",
        "max_age": 600,
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
    });
    for (k, v) in overrides.as_object().unwrap() {
        if v.is_null() {
            claims.as_object_mut().unwrap().remove(k);
        } else {
            claims[k] = v.clone();
        }
    }
    key.sign(None, claims.as_object().unwrap()).unwrap()
}

pub fn authorize_with(request: &str, outer: &[(&str, &str)]) -> String {
    let mut query = url::form_urlencoded::Serializer::new(String::new());
    query.append_pair("client_id", "signer").append_pair("request", request);
    for (k, v) in outer {
        query.append_pair(k, v);
    }
    format!("/authorize?{}", query.finish())
}

async fn par(live: &Live, key: &ClientKey, request: &str) -> (u16, Value) {
    let assertion = client_assertion(key, "signer", T0, json!({}));
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .form(&[
            ("client_id", "signer"),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", &assertion),
            ("request", request),
        ])
        .send()
        .await
        .unwrap();
    (reply.status().as_u16(), reply.json().await.unwrap())
}

#[tokio::test]
async fn signed_requests_work_at_authorize_and_par() {
    let server = TestServer::new().await;
    let key = signer(&server).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let mut browser = Browser::new(&live);
    // Only the object counts: the outer scope and state are ignored.
    let object = request_object(&key.key, json!({}));
    let login = browser
        .get(&authorize_with(&object, &[("scope", "admin"), ("state", "outer")]))
        .await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert_eq!(params["state"], "st-jar");
    let (status, tokens) = redeem_with(&live, "signer", &key, &params["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid payments");
    // The same object again: its jti is used up.
    let replay = browser
        .get(&authorize_with(&object, &[("redirect_uri", REDIRECT_URI)]))
        .await;
    assert_eq!(replay.redirect_params()["error"], "invalid_request_object");

    let (status, pushed) = par(&live, &key, &request_object(&key.key, json!({"state": "st-pushed"}))).await;
    assert_eq!(status, 201, "{pushed}");
    let query = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", "signer")
        .append_pair("request_uri", pushed["request_uri"].as_str().unwrap())
        .finish();
    let consent = Browser::new(&live).get(&format!("/authorize?{query}")).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
}

#[tokio::test]
async fn bad_request_objects_are_refused() {
    let server = TestServer::new().await;
    let key = signer(&server).await;
    let live = server.live().await;
    let other_key = crate::api_support::key();
    let unsigned = {
        let encode = |v: Value| {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string())
        };
        format!(
            "{}.{}.",
            encode(json!({"alg": "none"})),
            encode(
                json!({"iss": "signer", "client_id": "signer", "aud": ISSUER, "exp": T0 + 60, "nbf": T0,
                "response_type": "code", "redirect_uri": REDIRECT_URI, "scope": "openid"})
            )
        )
    };
    let bad = [
        ("wrong key", request_object(&other_key, json!({}))),
        ("alg none", unsigned),
        (
            "expired",
            request_object(&key.key, json!({"exp": T0 - 120, "nbf": T0 - 600})),
        ),
        (
            "wrong aud",
            request_object(&key.key, json!({"aud": "https://other.example"})),
        ),
        (
            "wrong client_id",
            request_object(&key.key, json!({"client_id": "someone"})),
        ),
        (
            "nbf in the future",
            request_object(&key.key, json!({"nbf": T0 + 120, "exp": T0 + 600})),
        ),
        ("too long", request_object(&key.key, json!({"exp": T0 + 3700}))),
        ("nested", request_object(&key.key, json!({"request_uri": "urn:x"}))),
    ];
    let mut browser = Browser::new(&live);
    for (why, object) in &bad {
        let page = browser
            .get(&authorize_with(
                object,
                &[("redirect_uri", REDIRECT_URI), ("state", "outer")],
            ))
            .await;
        let params = page.redirect_params();
        assert_eq!(params["error"], "invalid_request_object", "{why}");
        assert_eq!(params["state"], "outer", "{why}");
        let (status, body) = par(&live, &key, object).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request_object")),
            "{why}: {body}"
        );
    }
    // Without a registered redirect_uri beside it, the user sees an error page.
    let page = browser.get(&authorize_with(&bad[0].1, &[])).await;
    assert_eq!(page.status, 400);
    assert!(page.location().is_none());
}

#[tokio::test]
async fn registered_request_object_alg_and_response_types_are_enforced() {
    let server = TestServer::new().await;
    let key = signer(&server).await; // signs with ES256
    let live = server.live().await;
    let id = ClientId::new("signer");
    let mut client = server.state.store.client(&id).await.unwrap().unwrap();
    client.metadata.request_object_signing_alg = Some(SigningAlg::PS256);
    client.metadata.response_types = Some(vec!["code id_token".to_owned()]);
    server.state.store.update_client(&client).await.unwrap();
    let mut browser = Browser::new(&live);
    let outer = [("redirect_uri", REDIRECT_URI), ("state", "outer")];

    // An ES256 object from a client that registered PS256.
    let page = browser
        .get(&authorize_with(&request_object(&key.key, json!({})), &outer))
        .await;
    assert_eq!(page.redirect_params()["error"], "invalid_request_object");
    let (status, body) = par(&live, &key, &request_object(&key.key, json!({}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request_object")),
        "{body}"
    );

    // The right alg, but a response_type the client did not register.
    client.metadata.request_object_signing_alg = Some(SigningAlg::ES256);
    server.state.store.update_client(&client).await.unwrap();
    let page = browser
        .get(&authorize_with(&request_object(&key.key, json!({})), &outer))
        .await;
    let params = page.redirect_params();
    assert_eq!(params["error"], "unauthorized_client", "{params:?}");
    assert_eq!(params["state"], "st-jar");

    // Registered for code: the same object is accepted.
    client.metadata.response_types = Some(vec!["code".to_owned()]);
    server.state.store.update_client(&client).await.unwrap();
    server.add_password_user("alice").await;
    let login = browser
        .get(&authorize_with(&request_object(&key.key, json!({})), &outer))
        .await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert!(params.contains_key("code"), "{params:?}");
}

/// RFC 9101 and OpenID Connect Core §6.1 require neither `exp` nor `nbf`: an
/// `oidc` client may leave them out, and they are checked when present. FAPI 1
/// Advanced (§5.2.2 items 13 and 17) requires both.
#[tokio::test]
async fn exp_and_nbf_are_required_only_where_the_profile_requires_them() {
    let server = TestServer::new().await;
    let key = signer(&server).await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    let neither = json!({"exp": null, "nbf": null});
    let mut browser = Browser::new(&live);
    let login = browser
        .get(&authorize_with(&request_object(&key.key, neither.clone()), &[]))
        .await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    assert_eq!(params["state"], "st-jar", "{params:?}");
    let (status, tokens) = redeem_with(&live, "signer", &key, &params["code"], VERIFIER).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, body) = par(&live, &key, &request_object(&key.key, neither.clone())).await;
    assert_eq!(status, 201, "{body}");
    for (why, overrides, ok) in [
        ("only exp", json!({"nbf": null}), true),
        ("only nbf", json!({"exp": null}), true),
        ("expired, no nbf", json!({"exp": T0 - 120, "nbf": null}), false),
        (
            "nbf in the future, no exp",
            json!({"exp": null, "nbf": T0 + 120}),
            false,
        ),
    ] {
        let (status, body) = par(&live, &key, &request_object(&key.key, overrides)).await;
        let expected = if ok {
            (201, None)
        } else {
            (400, Some("invalid_request_object"))
        };
        assert_eq!((status, body["error"].as_str()), expected, "{why}: {body}");
    }

    let id = ClientId::new("signer");
    let mut client = server.state.store.client(&id).await.unwrap().unwrap();
    client.metadata.profile = Profile::Fapi1Advanced;
    server.state.store.update_client(&client).await.unwrap();
    for missing in [neither, json!({"exp": null}), json!({"nbf": null})] {
        let (status, body) = par(&live, &key, &request_object(&key.key, missing.clone())).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_request_object")),
            "fapi1-advanced without {missing}: {body}"
        );
    }
}
