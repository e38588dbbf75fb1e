//! Introspection (RFC 7662) and revocation (RFC 7009).

use outband_protocol::{ClientId, DeliveryMode, GrantType, TokenEndpointAuthMethod as M};

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
    let server = TestServer::new().await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    let mut client = server.state.store.client(&ClientId::new("pos")).await.unwrap().unwrap();
    client.metadata.grant_types.push(GrantType::RefreshToken);
    server.state.store.update_client(&client).await.unwrap();
    server.add_user("alice", None).await;
    let creds = Some(("pos", "pos-secret"));
    for (hint, revoke_refresh) in [("id_token", true), ("access_token", true), ("refresh_token", false)] {
        let reply = server
            .bc_authorize("pos", "scope=openid%20payments&login_hint=alice")
            .await;
        let id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
        server.decide(&id, true).await;
        let tokens = server.poll("pos", &id).await;
        assert_eq!(tokens.status, 200, "{}", tokens.text);
        let refresh = tokens.json["refresh_token"].as_str().unwrap();
        let access = tokens.json["access_token"].as_str().unwrap();
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
