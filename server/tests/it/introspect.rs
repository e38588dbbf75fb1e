//! Introspection (RFC 7662) and revocation (RFC 7009).

use outband_protocol::{ClientId, TokenEndpointAuthMethod as M};

use crate::support::{TestServer, ISSUER, T0};

async fn setup() -> (TestServer, String) {
    let server = TestServer::new().await;
    server
        .add_secret_client("shop", "pw-shop", M::ClientSecretBasic, "payments")
        .await;
    server
        .add_secret_client("other", "pw-other", M::ClientSecretBasic, "payments")
        .await;
    server
        .add_secret_client("rs", "pw-rs", M::ClientSecretBasic, "introspection")
        .await;
    let reply = server
        .post_form("/token", "grant_type=client_credentials", Some(("shop", "pw-shop")))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let token = reply.json["access_token"].as_str().unwrap().to_owned();
    (server, token)
}

#[tokio::test]
async fn own_token_is_active_with_its_claims() {
    let (server, token) = setup().await;
    let reply = server
        .post_form("/introspect", &format!("token={token}"), Some(("shop", "pw-shop")))
        .await;
    assert_eq!(reply.status, 200);
    let body = &reply.json;
    assert_eq!(body["active"], true);
    assert_eq!(body["client_id"], "shop");
    assert_eq!(body["scope"], "payments");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["iss"], ISSUER);
    assert_eq!(body["exp"], T0 + 300);
    assert_eq!(body["iat"], T0);
}

#[tokio::test]
async fn other_clients_see_inactive_but_resource_servers_see_all() {
    let (server, token) = setup().await;
    let other = server
        .post_form("/introspect", &format!("token={token}"), Some(("other", "pw-other")))
        .await;
    assert_eq!(other.json, serde_json::json!({ "active": false }));
    let rs = server
        .post_form("/introspect", &format!("token={token}"), Some(("rs", "pw-rs")))
        .await;
    assert_eq!(rs.json["active"], true);
}

#[tokio::test]
async fn unknown_expired_and_revoked_tokens_are_inactive() {
    let (server, token) = setup().await;
    let creds = Some(("shop", "pw-shop"));
    let unknown = server.post_form("/introspect", "token=nonsense", creds).await;
    assert_eq!(unknown.json, serde_json::json!({ "active": false }));

    // Another client's revocation does nothing.
    let foreign = server
        .post_form("/revoke", &format!("token={token}"), Some(("other", "pw-other")))
        .await;
    assert_eq!(foreign.status, 200);
    assert_eq!(
        server
            .post_form("/introspect", &format!("token={token}"), creds)
            .await
            .json["active"],
        true
    );

    let revoked = server
        .post_form("/revoke", &format!("token={token}&token_type_hint=access_token"), creds)
        .await;
    assert_eq!(revoked.status, 200);
    assert_eq!(
        server
            .post_form("/introspect", &format!("token={token}"), creds)
            .await
            .json["active"],
        false
    );
    // Revoking again, or revoking garbage, still answers 200 (RFC 7009 §2.2).
    assert_eq!(
        server
            .post_form("/revoke", &format!("token={token}"), creds)
            .await
            .status,
        200
    );
    assert_eq!(server.post_form("/revoke", "token=garbage", creds).await.status, 200);

    let fresh = server.post_form("/token", "grant_type=client_credentials", creds).await;
    let fresh = fresh.json["access_token"].as_str().unwrap().to_owned();
    server.clock.advance(301);
    assert_eq!(
        server
            .post_form("/introspect", &format!("token={fresh}"), creds)
            .await
            .json["active"],
        false
    );
}

#[tokio::test]
async fn errors() {
    let (server, token) = setup().await;
    server
        .post_form("/introspect", "", Some(("shop", "pw-shop")))
        .await
        .assert_error(400, "invalid_request");
    server
        .post_form("/introspect", &format!("token={token}"), None)
        .await
        .assert_error(401, "invalid_client");
    server
        .post_form("/revoke", "", Some(("shop", "pw-shop")))
        .await
        .assert_error(400, "invalid_request");
    server
        .post_form("/revoke", &format!("token={token}"), Some(("shop", "bad")))
        .await
        .assert_error(401, "invalid_client");
}

/// RFC 7009 §2.1: `token_type_hint` is a hint. An unknown one is ignored and a
/// hint naming the other type does not stop the search: the token is revoked.
#[tokio::test]
async fn revocation_ignores_unknown_and_wrong_hints() {
    let server = crate::refresh::server(true).await;
    let creds = Some(("pos", "pos-secret"));
    for (hint, revoke_refresh) in [("id_token", true), ("access_token", true), ("refresh_token", false)] {
        let tokens = crate::refresh::tokens(&server).await;
        let refresh = tokens["refresh_token"].as_str().unwrap();
        let access = tokens["access_token"].as_str().unwrap();
        let token = if revoke_refresh { refresh } else { access };
        let reply = server
            .post_form("/revoke", &format!("token={token}&token_type_hint={hint}"), creds)
            .await;
        assert_eq!(reply.status, 200, "hint {hint}: {}", reply.text);
        let hash = outband_protocol::jose::sha256_b64url(token.as_bytes());
        let record = server.state.store.token(&hash).await.unwrap().unwrap();
        assert!(record.revoked, "hint {hint}: the token is revoked");
        let active = server.post_form("/introspect", &format!("token={access}"), creds).await;
        assert_eq!(active.json["active"], false, "hint {hint}: {}", active.text);
        if revoke_refresh {
            server
                .post_form(
                    "/token",
                    &format!("grant_type=refresh_token&refresh_token={refresh}"),
                    creds,
                )
                .await
                .assert_error(400, "invalid_grant");
        }
    }
}

/// `POST /introspect` by `client` asking for a JWT answer (RFC 9701 §4).
async fn introspect_as_jwt(server: &TestServer, token: &str, client: (&str, &str)) -> crate::support::Reply {
    let request = axum::http::Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/json;q=0.5, application/token-introspection+jwt")
        .header("authorization", crate::support::basic_header(client.0, client.1))
        .body(axum::body::Body::from(format!("token={token}")))
        .unwrap();
    server.send(request).await
}

#[tokio::test]
async fn a_resource_server_asking_for_a_jwt_gets_the_answer_signed() {
    let (server, token) = setup().await;
    let reply = introspect_as_jwt(&server, &token, ("rs", "pw-rs")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.headers["content-type"], "application/token-introspection+jwt");
    assert_eq!(reply.headers["cache-control"], "no-store");
    let jwks = server.get("/jwks").await.json;
    let (alg, claims) = crate::jarm::verify_with(&jwks, &reply.text);
    assert_eq!(alg, "RS256", "RFC 9701's default for a client of the oidc profile");
    let header = josekit::jwt::decode_header(&reply.text).unwrap();
    assert_eq!(header.claim("typ"), Some(&serde_json::json!("token-introspection+jwt")));
    assert_eq!(claims["iss"], ISSUER);
    assert_eq!(claims["aud"], "rs");
    assert_eq!(claims["iat"], T0);
    let answer = &claims["token_introspection"];
    assert_eq!(answer["active"], true);
    assert_eq!(answer["client_id"], "shop");
    assert_eq!(answer["scope"], "payments");
    assert_eq!(answer["token_type"], "Bearer");

    let unknown = introspect_as_jwt(&server, "nonsense", ("rs", "pw-rs")).await;
    let (_, claims) = crate::jarm::verify_with(&jwks, &unknown.text);
    assert_eq!(claims["token_introspection"], serde_json::json!({ "active": false }));

    let plain = server
        .post_form("/introspect", &format!("token={token}"), Some(("rs", "pw-rs")))
        .await;
    assert_eq!(plain.headers["content-type"], "application/json");
    assert_eq!(plain.json["active"], true);
    // q=0: "not acceptable" (RFC 9110 §12.5.1).
    let refused = axum::http::Request::post("/introspect")
        .header("content-type", "application/x-www-form-urlencoded")
        .header("accept", "application/token-introspection+jwt; q=0, application/json")
        .header("authorization", crate::support::basic_header("rs", "pw-rs"))
        .body(axum::body::Body::from(format!("token={token}")))
        .unwrap();
    let refused = server.send(refused).await;
    assert_eq!(refused.headers["content-type"], "application/json");
    assert_eq!(refused.json["active"], true);
}

#[tokio::test]
async fn the_registered_introspection_alg_signs_the_answer() {
    let (server, token) = setup().await;
    let mut meta = outband_protocol::ClientMetadata::new(ClientId::new("rs-es"));
    meta.token_endpoint_auth_method = M::ClientSecretBasic;
    meta.scope = outband_protocol::Scope::new("introspection");
    meta.introspection_signed_response_alg = Some(outband_protocol::SigningAlg::ES256);
    server.add_client(meta, Some("pw-rs-es")).await;
    let reply = introspect_as_jwt(&server, &token, ("rs-es", "pw-rs-es")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let (alg, claims) = crate::jarm::verify_with(&server.get("/jwks").await.json, &reply.text);
    assert_eq!(alg, "ES256");
    assert_eq!(claims["aud"], "rs-es");
    assert_eq!(claims["token_introspection"]["active"], true);
}
