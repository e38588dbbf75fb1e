//! Signed authentication requests (CIBA Core §7.1.1) and `login_hint_token`.

use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, DeliveryMode, GrantType, Profile, Scope, SigningAlg};
use serde_json::{json, Value};

use crate::support::{TestServer, ISSUER, T0};

async fn server(profile: Profile, signing_alg: Option<SigningAlg>) -> (TestServer, SigningKey) {
    let server = TestServer::new().await;
    let key =
        SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256).unwrap();
    let mut meta = ClientMetadata::new(ClientId::new("signer"));
    meta.scope = Scope::new("openid payments");
    meta.grant_types = vec![GrantType::Ciba];
    meta.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
    meta.backchannel_authentication_request_signing_alg = signing_alg;
    meta.jwks = Some(json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] }));
    meta.profile = profile;
    if profile == Profile::Oidc {
        server.add_client(meta, Some("signer-secret")).await;
    } else {
        meta.token_endpoint_auth_method = outband_protocol::TokenEndpointAuthMethod::PrivateKeyJwt;
        server.add_client(meta, None).await;
    }
    server.add_user("alice", None).await;
    (server, key)
}

fn request_object(key: &SigningKey, overrides: Value) -> String {
    let mut claims = json!({
        "iss": "signer",
        "aud": ISSUER,
        "iat": T0,
        "nbf": T0,
        "exp": T0 + 300,
        "jti": uuid::Uuid::new_v4().to_string(),
        "scope": "openid payments",
        "login_hint": "alice",
        "binding_message": "SIGNED-1",
        "requested_expiry": 90,
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

async fn send(server: &TestServer, body: &str) -> crate::support::Reply {
    server
        .post_form("/bc-authorize", body, Some(("signer", "signer-secret")))
        .await
}

#[tokio::test]
async fn a_signed_request_is_read_from_the_object() {
    let (server, key) = server(Profile::Oidc, Some(SigningAlg::ES256)).await;
    let reply = send(&server, &format!("request={}", request_object(&key, json!({})))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["expires_in"], 90);
    let id = reply.json["auth_req_id"].as_str().unwrap();
    assert_eq!(
        server.ciba_request(id).await.binding_message.as_deref(),
        Some("SIGNED-1")
    );
}

/// RFC 7519 §2: a NumericDate may have a fraction.
#[tokio::test]
async fn fractional_times_in_a_signed_request_are_read() {
    let (server, key) = server(Profile::Oidc, Some(SigningAlg::ES256)).await;
    let times = json!({"iat": T0 as f64 - 0.5, "nbf": T0 as f64 - 0.25, "exp": T0 as f64 + 299.5});
    let reply = send(&server, &format!("request={}", request_object(&key, times))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let expired = json!({"exp": T0 as f64 - 120.5});
    send(&server, &format!("request={}", request_object(&key, expired)))
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn unsigned_requests_are_refused_when_signing_is_registered() {
    let (server, _key) = server(Profile::Oidc, Some(SigningAlg::ES256)).await;
    send(&server, "scope=openid&login_hint=alice")
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn bad_request_objects_are_invalid_request() {
    let (server, key) = server(Profile::Oidc, Some(SigningAlg::ES256)).await;
    let other =
        SigningKey::from_private_jwk(&SigningAlg::ES256.generate_private_jwk().unwrap(), SigningAlg::ES256).unwrap();
    let replayed = request_object(&key, json!({ "jti": "same" }));
    assert_eq!(send(&server, &format!("request={replayed}")).await.status, 200);
    let none = {
        use base64::Engine;
        let enc = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
        format!(
            "{}.{}.",
            enc(&json!({"alg":"none"})),
            enc(
                &json!({"iss":"signer","aud":ISSUER,"exp":T0+60,"iat":T0,"nbf":T0,"jti":"n","scope":"openid","login_hint":"alice"})
            )
        )
    };
    let cases = [
        ("signed by another key", request_object(&other, json!({}))),
        (
            "wrong aud",
            request_object(&key, json!({ "aud": "https://elsewhere.example" })),
        ),
        ("wrong iss", request_object(&key, json!({ "iss": "someone" }))),
        (
            "expired",
            request_object(&key, json!({ "exp": T0 - 120, "nbf": T0 - 400 })),
        ),
        ("no nbf", request_object(&key, json!({ "nbf": null }))),
        ("no jti", request_object(&key, json!({ "jti": null }))),
        ("too long-lived", request_object(&key, json!({ "exp": T0 + 7200 }))),
        ("future nbf", request_object(&key, json!({ "nbf": T0 + 600 }))),
        ("replayed jti", replayed),
        ("alg none", none),
        ("garbage", "a.b.c".to_owned()),
    ];
    for (what, jwt) in cases {
        let reply = send(&server, &format!("request={jwt}")).await;
        assert_eq!(reply.status, 400, "{what}: {}", reply.text);
        assert_eq!(reply.json["error"], "invalid_request", "{what}");
    }
    let mixed = send(
        &server,
        &format!("request={}&login_hint=alice", request_object(&key, json!({}))),
    )
    .await;
    mixed.assert_error(400, "invalid_request");
    assert!(mixed.json["error_description"].as_str().unwrap().contains("login_hint"));
}

#[tokio::test]
async fn grant_management_parameters_beside_a_signed_request_are_refused() {
    let (server, key) = server(Profile::Oidc, Some(SigningAlg::ES256)).await;
    for (name, extra) in [
        ("grant_management_action", "grant_management_action=create"),
        ("grant_id", "grant_id=g-123"),
    ] {
        let reply = send(&server, &format!("request={}&{extra}", request_object(&key, json!({})))).await;
        reply.assert_error(400, "invalid_request");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(description.contains(name), "{description}");
    }
    assert_eq!(
        server
            .state
            .store
            .count_pending_ciba_requests_of_client(&ClientId::new("signer"), T0)
            .await
            .unwrap(),
        0,
        "no request was started"
    );
}

#[tokio::test]
async fn fapi_ciba_requires_signed_requests() {
    let (server, _key) = server(Profile::FapiCiba, None).await;
    let assertion_key = server
        .add_jwt_client("fapi-pos", SigningAlg::ES256, Profile::FapiCiba)
        .await;
    let mut meta = server
        .state
        .store
        .client(&ClientId::new("fapi-pos"))
        .await
        .unwrap()
        .unwrap();
    meta.metadata.grant_types = vec![GrantType::Ciba];
    meta.metadata.scope = Scope::new("openid");
    meta.metadata.backchannel_token_delivery_mode = Some(DeliveryMode::Poll);
    server.state.store.update_client(&meta).await.unwrap();
    let assertion = crate::support::client_assertion(&assertion_key, "fapi-pos", T0, json!({ "aud": ISSUER }));
    let body = format!(
        "scope=openid&login_hint=alice&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    let reply = server.post_form("/bc-authorize", &body, None).await;
    reply.assert_error(400, "invalid_request");
    assert!(reply.json["error_description"]
        .as_str()
        .unwrap()
        .contains("signed request object"));
}

#[tokio::test]
async fn login_hint_token_names_the_user() {
    let (server, key) = server(Profile::Oidc, None).await;
    let token = |sub_id: Value, exp: i64| {
        key.sign(None, json!({ "sub_id": sub_id, "exp": exp }).as_object().unwrap())
            .unwrap()
    };
    let ok = token(json!({ "format": "email", "email": "alice@example.com" }), T0 + 60);
    let reply = send(&server, &format!("scope=openid&login_hint_token={ok}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let expired = token(json!({ "format": "email", "email": "alice@example.com" }), T0 - 1);
    send(&server, &format!("scope=openid&login_hint_token={expired}"))
        .await
        .assert_error(400, "expired_login_hint_token");
    let unknown = token(json!({ "format": "email", "email": "mallory@example.com" }), T0 + 60);
    send(&server, &format!("scope=openid&login_hint_token={unknown}"))
        .await
        .assert_error(400, "unknown_user_id");
    let iss_sub = token(
        json!({ "format": "iss_sub", "iss": ISSUER, "sub": "sub-alice" }),
        T0 + 60,
    );
    assert_eq!(
        send(&server, &format!("scope=openid&login_hint_token={iss_sub}"))
            .await
            .status,
        200
    );
    send(&server, "scope=openid&login_hint_token=junk")
        .await
        .assert_error(400, "invalid_request");
}

#[tokio::test]
async fn fapi_ciba_needs_a_binding_message_without_authorization_details() {
    let (server, key) = server(Profile::FapiCiba, Some(SigningAlg::ES256)).await;
    let key = crate::support::ClientKey { key };
    let server = &server;
    let key = &key;
    let send = |request: String| async move {
        let assertion = crate::support::client_assertion(key, "signer", T0, json!({}));
        let body = format!(
            "request={request}&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
        );
        server.post_form("/bc-authorize", &body, None).await
    };
    let without = send(request_object(&key.key, json!({ "binding_message": null }))).await;
    without.assert_error(400, "invalid_request");
    assert!(without.json["error_description"]
        .as_str()
        .unwrap()
        .contains("binding_message"));
    let with = send(request_object(&key.key, json!({}))).await;
    assert_eq!(with.status, 200, "{}", with.text);
    let details = json!([{ "type": "payment_initiation", "instructedAmount": { "currency": "EUR", "amount": "1.00" }, "creditorName": "Kiosk" }]);
    let with_details = send(request_object(
        &key.key,
        json!({ "binding_message": null, "authorization_details": details }),
    ))
    .await;
    assert_eq!(with_details.status, 200, "{}", with_details.text);
}
