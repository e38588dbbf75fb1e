//! The token endpoint with the client credentials grant, and every error branch
//! of client authentication and form parsing.

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::jose::{parse_jwk, verify_jwt};
use outband_protocol::{Profile, SigningAlg, TokenEndpointAuthMethod as M};
use serde_json::json;

use crate::support::{basic_header, client_assertion, TestServer, ISSUER, T0};

const CC: &str = "grant_type=client_credentials";

async fn server_with_merchant() -> TestServer {
    let server = TestServer::new().await;
    server
        .add_secret_client("merchant", "s3cret!", M::ClientSecretBasic, "payments accounts")
        .await;
    server
}

#[tokio::test]
async fn client_credentials_issue_a_verifiable_jwt() {
    let server = server_with_merchant().await;
    let reply = server
        .post_form(
            "/token",
            "grant_type=client_credentials&scope=payments",
            Some(("merchant", "s3cret!")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers[header::CACHE_CONTROL], "no-store");
    assert_eq!(reply.json["token_type"], "Bearer");
    assert_eq!(reply.json["expires_in"], 300);
    assert_eq!(reply.json["scope"], "payments");
    assert!(reply.json.get("refresh_token").is_none());
    assert!(reply.json.get("id_token").is_none());

    let jwks = server.get("/jwks").await.json;
    let keys: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| parse_jwk(k).unwrap())
        .collect();
    let token = reply.json["access_token"].as_str().unwrap();
    let jwt = verify_jwt(token, &keys, &[SigningAlg::ES256]).unwrap();
    assert_eq!(jwt.header["typ"], "at+jwt");
    assert_eq!(jwt.claims["iss"], ISSUER);
    assert_eq!(jwt.claims["aud"], ISSUER);
    assert_eq!(jwt.claims["client_id"], "merchant");
    assert_eq!(jwt.claims["sub"], "merchant");
    assert_eq!(jwt.claims["scope"], "payments");
    assert_eq!(jwt.claims["iat"], T0);
    assert_eq!(jwt.claims["exp"], T0 + 300);
    assert!(jwt.claims["jti"].as_str().is_some_and(|j| j.len() >= 22));
}

#[tokio::test]
async fn default_scope_is_the_registered_one() {
    let server = server_with_merchant().await;
    let reply = server.post_form("/token", CC, Some(("merchant", "s3cret!"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["scope"], "payments accounts");
}

#[tokio::test]
async fn client_secret_post_works_only_for_post_clients() {
    let server = server_with_merchant().await;
    server
        .add_secret_client("poster", "pw-1234", M::ClientSecretPost, "payments")
        .await;
    let ok = server
        .post_form("/token", &format!("{CC}&client_id=poster&client_secret=pw-1234"), None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.text);
    // A basic client may not switch to post, nor a post client to basic.
    let wrong = server
        .post_form(
            "/token",
            &format!("{CC}&client_id=merchant&client_secret=s3cret!"),
            None,
        )
        .await;
    wrong.assert_error(401, "invalid_client");
    let wrong = server.post_form("/token", CC, Some(("poster", "pw-1234"))).await;
    wrong.assert_error(401, "invalid_client");
}

#[tokio::test]
async fn wrong_secret_is_401_with_challenge_and_audited() {
    let server = server_with_merchant().await;
    let reply = server.post_form("/token", CC, Some(("merchant", "guess"))).await;
    reply.assert_error(401, "invalid_client");
    assert!(reply.headers.contains_key(header::WWW_AUTHENTICATE));
    let events = server
        .state
        .store
        .audit(&outband_server::store::AuditQuery {
            client_id: Some("merchant".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event, "client.auth_failed");
    assert!(
        !events[0].detail.to_string().contains("guess"),
        "the audit log must not hold the secret"
    );
}

#[tokio::test]
async fn unknown_client_and_missing_auth_are_401() {
    let server = server_with_merchant().await;
    server
        .post_form("/token", CC, Some(("nobody", "x")))
        .await
        .assert_error(401, "invalid_client");
    server
        .post_form("/token", CC, None)
        .await
        .assert_error(401, "invalid_client");
    server
        .post_form("/token", &format!("{CC}&client_id=merchant"), None)
        .await
        .assert_error(401, "invalid_client");
}

#[tokio::test]
async fn two_authentication_methods_are_refused() {
    let server = server_with_merchant().await;
    let reply = server
        .post_form(
            "/token",
            &format!("{CC}&client_id=merchant&client_secret=s3cret!"),
            Some(("merchant", "s3cret!")),
        )
        .await;
    reply.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn client_id_must_match_the_credentials() {
    let server = server_with_merchant().await;
    let reply = server
        .post_form(
            "/token",
            &format!("{CC}&client_id=other"),
            Some(("merchant", "s3cret!")),
        )
        .await;
    reply.assert_error(401, "invalid_client");
}

#[tokio::test]
async fn scope_errors() {
    let server = server_with_merchant().await;
    let creds = Some(("merchant", "s3cret!"));
    server
        .post_form("/token", &format!("{CC}&scope=admin"), creds)
        .await
        .assert_error(400, "invalid_scope");
    server
        .post_form("/token", &format!("{CC}&scope=openid"), creds)
        .await
        .assert_error(400, "invalid_scope");
    server
        .post_form("/token", &format!("{CC}&scope=pay%22ments"), creds)
        .await
        .assert_error(400, "invalid_scope");
}

#[tokio::test]
async fn grant_type_errors() {
    let server = server_with_merchant().await;
    let creds = Some(("merchant", "s3cret!"));
    server
        .post_form("/token", "grant_type=password&username=a", creds)
        .await
        .assert_error(400, "unsupported_grant_type");
    server
        .post_form("/token", "scope=payments", creds)
        .await
        .assert_error(400, "invalid_request");
    // A supported grant this client is not registered for.
    let ciba = "grant_type=urn%3Aopenid%3Aparams%3Agrant-type%3Aciba&auth_req_id=x";
    server
        .post_form("/token", ciba, creds)
        .await
        .assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn client_without_the_grant_is_unauthorized() {
    let server = TestServer::new().await;
    let mut meta = outband_protocol::ClientMetadata::new(outband_protocol::ClientId::new("no-cc"));
    meta.grant_types = vec![outband_protocol::GrantType::AuthorizationCode];
    server.add_client(meta, Some("pw")).await;
    server
        .post_form("/token", CC, Some(("no-cc", "pw")))
        .await
        .assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn malformed_bodies_are_invalid_request() {
    let server = server_with_merchant().await;
    server
        .post_form(
            "/token",
            "grant_type=client_credentials&grant_type=client_credentials",
            Some(("merchant", "s3cret!")),
        )
        .await
        .assert_error(400, "invalid_request");
    let json = Request::post("/token")
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::AUTHORIZATION, basic_header("merchant", "s3cret!"))
        .body(Body::from(r#"{"grant_type":"client_credentials"}"#))
        .unwrap();
    server.send(json).await.assert_error(400, "invalid_request");
    let huge = "a=".to_owned() + &"x".repeat(200 * 1024);
    let reply = server.post_form("/token", &huge, Some(("merchant", "s3cret!"))).await;
    assert_eq!(reply.status, 413, "{}", reply.text);
    assert_eq!(reply.json["error"], "invalid_request");
    assert_eq!(server.get("/token").await.status, 405);
}

#[tokio::test]
async fn opaque_tokens_for_clients_registered_for_them() {
    let server = TestServer::new().await;
    let mut meta = outband_protocol::ClientMetadata::new(outband_protocol::ClientId::new("rs"));
    meta.access_token_format = outband_protocol::AccessTokenFormat::Opaque;
    meta.scope = outband_protocol::Scope::new("payments");
    server.add_client(meta, Some("pw-rs")).await;
    let reply = server.post_form("/token", CC, Some(("rs", "pw-rs"))).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.json["access_token"].as_str().unwrap();
    assert_eq!(token.split('.').count(), 1, "opaque, not a JWT");
    let introspected = server
        .post_form("/introspect", &format!("token={token}"), Some(("rs", "pw-rs")))
        .await;
    assert_eq!(introspected.json["active"], true, "{}", introspected.text);
}

mod private_key_jwt {
    use super::*;

    const JWT_BEARER: &str = "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer";

    async fn post(server: &TestServer, assertion: &str) -> crate::support::Reply {
        let body = format!("{CC}&client_assertion_type={JWT_BEARER}&client_assertion={assertion}");
        server.post_form("/token", &body, None).await
    }

    #[tokio::test]
    async fn each_allowed_alg_authenticates() {
        let server = TestServer::new().await;
        for (i, alg) in SigningAlg::ALL.into_iter().enumerate() {
            let id = format!("jwt-client-{i}");
            let key = server.add_jwt_client(&id, alg, Profile::Oidc).await;
            let reply = post(&server, &client_assertion(&key, &id, T0, json!({}))).await;
            assert_eq!(reply.status, 200, "{alg}: {}", reply.text);
        }
    }

    /// RFC 7515 §4.1.4: `kid` is a hint. A client that registered its key
    /// without a `kid` authenticates with an assertion naming one; a key with
    /// another `kid` still does not verify it.
    #[tokio::test]
    async fn a_registered_key_without_kid_verifies_an_assertion_with_one() {
        let server = TestServer::new().await;
        let key = server.add_jwt_client("c", SigningAlg::ES256, Profile::Oidc).await;
        let id = outband_protocol::ClientId::new("c");
        let mut client = server.state.store.client(&id).await.unwrap().unwrap();
        let mut jwk = key.key.public_jwk().as_ref().clone();
        assert!(jwk.remove("kid").is_some());
        client.metadata.jwks = Some(json!({ "keys": [jwk.clone()] }));
        server.state.store.update_client(&client).await.unwrap();
        let assertion = client_assertion(&key, "c", T0, json!({}));
        let header = outband_protocol::jose::UnverifiedJwt::decode(&assertion).unwrap();
        assert_eq!(header.kid(), Some(key.key.kid()), "the assertion names its kid");
        let reply = post(&server, &assertion).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        // Registered under another kid: the hint rules that key out.
        jwk.insert("kid".into(), json!("another"));
        client.metadata.jwks = Some(json!({ "keys": [jwk] }));
        server.state.store.update_client(&client).await.unwrap();
        post(&server, &client_assertion(&key, "c", T0, json!({})))
            .await
            .assert_error(401, "invalid_client");
    }

    #[tokio::test]
    async fn token_endpoint_url_is_an_accepted_audience() {
        let server = TestServer::new().await;
        let key = server.add_jwt_client("c", SigningAlg::ES256, Profile::Oidc).await;
        let assertion = client_assertion(&key, "c", T0, json!({ "aud": [format!("{ISSUER}/token")] }));
        assert_eq!(post(&server, &assertion).await.status, 200);
    }

    #[tokio::test]
    async fn a_replayed_assertion_is_refused() {
        let server = TestServer::new().await;
        let key = server.add_jwt_client("c", SigningAlg::ES256, Profile::Oidc).await;
        let assertion = client_assertion(&key, "c", T0, json!({}));
        assert_eq!(post(&server, &assertion).await.status, 200);
        let again = post(&server, &assertion).await;
        again.assert_error(401, "invalid_client");
        assert!(again.json["error_description"].as_str().unwrap().contains("jti"));
    }

    #[tokio::test]
    async fn bad_claims_are_refused() {
        let server = TestServer::new().await;
        let key = server.add_jwt_client("c", SigningAlg::ES256, Profile::Oidc).await;
        let cases = [
            ("expired", json!({ "exp": T0 - 120 })),
            ("no exp", json!({ "exp": null })),
            ("too long", json!({ "exp": T0 + 3600 })),
            ("wrong aud", json!({ "aud": "https://elsewhere.example" })),
            ("no jti", json!({ "jti": null })),
            ("iss differs", json!({ "iss": "someone-else" })),
            ("future nbf", json!({ "nbf": T0 + 600 })),
            ("future iat", json!({ "iat": T0 + 600 })),
        ];
        for (what, overrides) in cases {
            let reply = post(&server, &client_assertion(&key, "c", T0, overrides)).await;
            assert_eq!(reply.status, 401, "{what}: {}", reply.text);
            assert_eq!(reply.json["error"], "invalid_client", "{what}");
        }
    }

    #[tokio::test]
    async fn wrong_key_alg_none_and_garbage_are_refused() {
        let server = TestServer::new().await;
        let _registered = server.add_jwt_client("c", SigningAlg::ES256, Profile::Oidc).await;
        let impostor = server.add_jwt_client("other", SigningAlg::ES256, Profile::Oidc).await;
        post(&server, &client_assertion(&impostor, "c", T0, json!({})))
            .await
            .assert_error(401, "invalid_client");
        let none = format!(
            "{}.{}.",
            base64_url(r#"{"alg":"none"}"#),
            base64_url(&json!({"iss":"c","sub":"c","aud":ISSUER,"exp":T0+60,"jti":"n"}).to_string())
        );
        post(&server, &none).await.assert_error(401, "invalid_client");
        post(&server, "not-a-jwt").await.assert_error(401, "invalid_client");
        let wrong_type = format!("{CC}&client_assertion_type=password&client_assertion=x");
        server
            .post_form("/token", &wrong_type, None)
            .await
            .assert_error(401, "invalid_client");
    }

    #[tokio::test]
    async fn fapi_profile_refuses_rs256() {
        let server = TestServer::new().await;
        let key = server
            .add_jwt_client("fapi", SigningAlg::RS256, Profile::Fapi2Security)
            .await;
        let reply = post(&server, &client_assertion(&key, "fapi", T0, json!({}))).await;
        reply.assert_error(401, "invalid_client");
        let ok_key = server
            .add_jwt_client("fapi-ps", SigningAlg::PS256, Profile::Fapi2Security)
            .await;
        // PS256 authenticates; FAPI 2 then wants a DPoP proof (see dpop.rs for the full flow).
        let reply = post(&server, &client_assertion(&ok_key, "fapi-ps", T0, json!({}))).await;
        reply.assert_error(400, "invalid_dpop_proof");
        assert!(reply.text.contains("sender-constrained"), "{}", reply.text);
    }

    fn base64_url(text: &str) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
    }
}

/// RFC 6749 §2.3.1: each Basic part is one form-encoded value, so a secret keeps
/// its `=`, `&`, `+` and `%`: encoded as the RFC asks, and (for `=` and `&`, which
/// need no decoding) from a client that does not encode at all.
#[tokio::test]
async fn basic_secrets_keep_reserved_characters() {
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    let server = TestServer::new().await;
    let secret = "p=ss&w+rd%2F=";
    server
        .add_secret_client("reserved", secret, M::ClientSecretBasic, "payments")
        .await;
    let encoded = server.post_form("/token", CC, Some(("reserved", secret))).await;
    assert_eq!(encoded.status, 200, "form-encoded secret: {}", encoded.text);

    let unencoded_secret = "abc=&d==";
    server
        .add_secret_client("raw", unencoded_secret, M::ClientSecretBasic, "payments")
        .await;
    let raw_basic = |credentials: &str| {
        Request::post("/token")
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode(credentials)))
            .body(Body::from(CC))
            .unwrap()
    };
    let raw = server.send(raw_basic("raw:abc=&d==")).await;
    assert_eq!(raw.status, 200, "unencoded secret: {}", raw.text);
    let encoded = server.post_form("/token", CC, Some(("raw", unencoded_secret))).await;
    assert_eq!(encoded.status, 200, "the same secret encoded: {}", encoded.text);
    for wrong in ["raw:abc", "raw:abc=", "raw:abc=&d"] {
        server.send(raw_basic(wrong)).await.assert_error(401, "invalid_client");
    }

    // A `%` not followed by two hex digits is kept as it is.
    server
        .add_secret_client("percent", "50%off", M::ClientSecretBasic, "payments")
        .await;
    let stray = server.send(raw_basic("percent:50%off")).await;
    assert_eq!(stray.status, 200, "a stray %: {}", stray.text);
}
