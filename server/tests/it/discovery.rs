//! Discovery, JWKS and health endpoints.

use axum::http::header;
use outband_protocol::jose::{is_private_jwk, parse_jwk, verify_jwt};
use outband_protocol::{SigningAlg, TokenEndpointAuthMethod};

use crate::support::{TestServer, ISSUER};

#[tokio::test]
async fn both_metadata_documents_tell_the_same_truth() {
    let server = TestServer::new().await;
    let oidc = server.get("/.well-known/openid-configuration").await;
    let oauth = server.get("/.well-known/oauth-authorization-server").await;
    assert_eq!(oidc.status, 200);
    assert_eq!(oidc.json, oauth.json);
    let m = &oidc.json;
    assert_eq!(m["issuer"], ISSUER);
    assert_eq!(m["token_endpoint"], format!("{ISSUER}/token"));
    assert_eq!(m["jwks_uri"], format!("{ISSUER}/jwks"));
    assert_eq!(m["introspection_endpoint"], format!("{ISSUER}/introspect"));
    assert_eq!(m["revocation_endpoint"], format!("{ISSUER}/revoke"));
    assert_eq!(
        m["grant_types_supported"],
        serde_json::json!([
            "authorization_code",
            "client_credentials",
            "refresh_token",
            "urn:openid:params:grant-type:ciba"
        ])
    );
    assert_eq!(
        m["backchannel_authentication_endpoint"],
        format!("{ISSUER}/bc-authorize")
    );
    assert_eq!(
        m["backchannel_token_delivery_modes_supported"],
        serde_json::json!(["poll", "ping", "push"])
    );
    assert_eq!(m["backchannel_user_code_parameter_supported"], true);
    let request_algs = m["backchannel_authentication_request_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(request_algs.contains(&"PS256".into()) && !request_algs.contains(&"none".into()));
    let methods = m["token_endpoint_auth_methods_supported"].as_array().unwrap();
    assert!(methods.contains(&"private_key_jwt".into()));
    assert!(!methods.contains(&"tls_client_auth".into()), "mTLS is not served yet");
    assert!(!m["token_endpoint_auth_signing_alg_values_supported"]
        .as_array()
        .unwrap()
        .contains(&"none".into()));
    // The browser flows (docs/browser-flows.md).
    assert_eq!(m["authorization_endpoint"], format!("{ISSUER}/authorize"));
    assert_eq!(m["userinfo_endpoint"], format!("{ISSUER}/userinfo"));
    assert_eq!(m["pushed_authorization_request_endpoint"], format!("{ISSUER}/par"));
    assert_eq!(m["require_pushed_authorization_requests"], false);
    assert_eq!(m["authorization_response_iss_parameter_supported"], true);
    assert_eq!(
        m["response_types_supported"],
        serde_json::json!(["code", "code id_token"])
    );
    assert_eq!(
        m["response_modes_supported"],
        serde_json::json!([
            "query",
            "fragment",
            "form_post",
            "jwt",
            "query.jwt",
            "fragment.jwt",
            "form_post.jwt"
        ])
    );
    for name in [
        "authorization_signing_alg_values_supported",
        "userinfo_signing_alg_values_supported",
    ] {
        let algs = m[name].as_array().unwrap();
        assert!(
            algs.contains(&"PS256".into()) && !algs.contains(&"none".into()),
            "{name}"
        );
    }
    assert_eq!(
        m["code_challenge_methods_supported"],
        serde_json::json!(["S256", "plain"])
    );
}

#[tokio::test]
async fn jwks_publishes_public_keys_with_kid_and_alg() {
    let server = TestServer::new().await;
    for path in ["/jwks", "/.well-known/jwks.json"] {
        let reply = server.get(path).await;
        assert_eq!(reply.status, 200);
        assert!(reply.headers[header::CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("max-age"));
        let keys = reply.json["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 4);
        let mut algs: Vec<&str> = keys.iter().map(|k| k["alg"].as_str().unwrap()).collect();
        algs.sort_unstable();
        assert_eq!(algs, ["ES256", "EdDSA", "PS256", "RS256"]);
        for key in keys {
            assert!(key["kid"].is_string());
            assert_eq!(key["use"], "sig");
            assert!(
                !is_private_jwk(&parse_jwk(key).unwrap()),
                "private material published: {key}"
            );
        }
    }
}

#[tokio::test]
async fn rotation_keeps_old_tokens_verifiable_until_the_overlap_ends() {
    let server = TestServer::new().await;
    server
        .add_secret_client("m", "pw-m", TokenEndpointAuthMethod::ClientSecretBasic, "payments")
        .await;
    let before = server
        .post_form("/token", "grant_type=client_credentials", Some(("m", "pw-m")))
        .await;
    let old_token = before.json["access_token"].as_str().unwrap().to_owned();
    let old_kid = outband_protocol::jose::UnverifiedJwt::decode(&old_token)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();

    let state = &server.state;
    let generation = state.keys.rotate(&state.store, state.now(), 3600).await.unwrap();
    assert_eq!(generation, 2);
    let after = server
        .post_form("/token", "grant_type=client_credentials", Some(("m", "pw-m")))
        .await;
    let new_token = after.json["access_token"].as_str().unwrap();
    let new_kid = outband_protocol::jose::UnverifiedJwt::decode(new_token)
        .unwrap()
        .kid()
        .unwrap()
        .to_owned();
    assert_ne!(old_kid, new_kid, "the new generation signs");

    let jwks = server.get("/jwks").await.json;
    let keys: Vec<_> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| parse_jwk(k).unwrap())
        .collect();
    assert_eq!(keys.len(), 8, "both generations are published during the overlap");
    verify_jwt(&old_token, &keys, &[SigningAlg::ES256]).unwrap();
    verify_jwt(new_token, &keys, &[SigningAlg::ES256]).unwrap();

    server.clock.advance(3601);
    state.keys.reload(&state.store, state.now()).await.unwrap();
    let jwks = server.get("/jwks").await.json;
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 4);
    assert!(
        !kids.contains(&old_kid.as_str()),
        "retired keys leave the JWKS after the overlap"
    );
}

#[tokio::test]
async fn health_and_not_found() {
    let server = TestServer::new().await;
    assert_eq!(server.get("/healthz").await.json["status"], "ok");
    let ready = server.get("/readyz").await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json["status"], "ready");
    let missing = server.get("/nope").await;
    missing.assert_error(404, "not_found");
    assert!(
        missing.headers.contains_key("x-request-id"),
        "every response carries a request id"
    );
}

#[tokio::test]
async fn readyz_says_unavailable_when_the_database_is_gone() {
    let server = TestServer::new().await;
    server.state.store.close().await;
    let reply = server.get("/readyz").await;
    assert_eq!(reply.status, 503);
    let token = server
        .post_form("/token", "grant_type=client_credentials", Some(("x", "y")))
        .await;
    assert!(token.status == 503 || token.status == 500, "{}", token.text);
    assert!(token.json["error"].is_string());
}

#[tokio::test]
async fn a_rotation_on_another_node_reaches_this_one_after_maintenance() {
    let server = TestServer::new().await;
    let state = &server.state;
    let before = state.keys.signer(SigningAlg::ES256).unwrap().kid().to_owned();
    // Another node sharing the database rotates: a second key set over the same store.
    let other = outband_server::keys::KeySet::from_records(
        outband_server::keys::Sealer::from_bytes(&[42u8; 32]).unwrap(),
        &state.store.signing_keys().await.unwrap(),
        state.now(),
    )
    .unwrap();
    other.rotate(&state.store, state.now(), 3600).await.unwrap();
    assert_eq!(
        state.keys.signer(SigningAlg::ES256).unwrap().kid(),
        before,
        "not seen before maintenance"
    );
    outband_server::maintenance::run_once(state).await;
    assert_ne!(
        state.keys.signer(SigningAlg::ES256).unwrap().kid(),
        before,
        "this node signs with the new generation"
    );
}

#[tokio::test]
async fn maintenance_purges_expired_tokens() {
    let server = TestServer::new().await;
    server
        .add_secret_client("m", "pw-m", TokenEndpointAuthMethod::ClientSecretBasic, "payments")
        .await;
    let reply = server
        .post_form("/token", "grant_type=client_credentials", Some(("m", "pw-m")))
        .await;
    let token = reply.json["access_token"].as_str().unwrap();
    let hash = outband_protocol::jose::sha256_b64url(token.as_bytes());
    assert!(server.state.store.token(&hash).await.unwrap().is_some());
    server.clock.advance(301);
    outband_server::maintenance::run_once(&server.state).await;
    assert!(
        server.state.store.token(&hash).await.unwrap().is_none(),
        "expired tokens are purged"
    );
}
