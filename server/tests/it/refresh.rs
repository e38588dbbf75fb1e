//! Refresh tokens: issued with CIBA tokens to clients registered for them,
//! rotated on every use, and a replay revokes the whole grant.

use outband_protocol::{ClientId, DeliveryMode, GrantType};

use crate::support::TestServer;

/// A completed CIBA flow for alice at `pos`: the token response.
pub(crate) async fn tokens(server: &TestServer) -> serde_json::Value {
    let reply = server
        .bc_authorize("pos", "scope=openid%20payments&login_hint=alice")
        .await;
    let id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    server.decide(&id, true).await;
    let tokens = server.poll("pos", &id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    tokens.json
}

/// A server with the CIBA client `pos` (with the refresh grant when asked) and alice.
pub(crate) async fn server(with_refresh: bool) -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    if with_refresh {
        let mut client = server.state.store.client(&ClientId::new("pos")).await.unwrap().unwrap();
        client.metadata.grant_types.push(GrantType::RefreshToken);
        server.state.store.update_client(&client).await.unwrap();
    }
    server.add_user("alice", None).await;
    server
}

async fn refresh(server: &TestServer, token: &str, extra: &str) -> crate::support::Reply {
    server
        .post_form(
            "/token",
            &format!("grant_type=refresh_token&refresh_token={token}{extra}"),
            Some(("pos", "pos-secret")),
        )
        .await
}

#[tokio::test]
async fn only_clients_registered_for_refresh_get_one() {
    let without = server(false).await;
    assert!(tokens(&without).await.get("refresh_token").is_none());
    let with = server(true).await;
    assert!(tokens(&with).await["refresh_token"].is_string());
}

#[tokio::test]
async fn rotation_narrowing_and_replay() {
    let server = server(true).await;
    let first = tokens(&server).await;
    let r1 = first["refresh_token"].as_str().unwrap();

    let wider = refresh(&server, r1, "&scope=openid%20payments%20admin").await;
    wider.assert_error(400, "invalid_scope");

    let second = refresh(&server, r1, "&scope=payments").await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json["scope"], "payments");
    let r2 = second.json["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(r1, r2, "rotated");
    let a2 = second.json["access_token"].as_str().unwrap().to_owned();

    // The old one again, after the retry grace window (tests/it/refresh_grace.rs):
    // theft is assumed and the whole grant dies.
    server.clock.advance(server.state.settings.refresh_grace_seconds + 1);
    refresh(&server, r1, "").await.assert_error(400, "invalid_grant");
    refresh(&server, &r2, "").await.assert_error(400, "invalid_grant");
    let introspected = server
        .post_form("/introspect", &format!("token={a2}"), Some(("pos", "pos-secret")))
        .await;
    assert_eq!(
        introspected.json["active"], false,
        "access tokens of the grant are revoked too"
    );
}

#[tokio::test]
async fn refresh_errors() {
    let server = server(true).await;
    server.add_ciba_client("other", DeliveryMode::Poll, None).await;
    let first = tokens(&server).await;
    let r1 = first["refresh_token"].as_str().unwrap();
    refresh(&server, "nonsense", "")
        .await
        .assert_error(400, "invalid_grant");
    let foreign = server
        .post_form(
            "/token",
            &format!("grant_type=refresh_token&refresh_token={r1}"),
            Some(("other", "other-secret")),
        )
        .await;
    foreign.assert_error(400, "unauthorized_client");
    server
        .state
        .store
        .set_user_locked(&outband_protocol::Subject::new("sub-alice"), true)
        .await
        .unwrap();
    refresh(&server, r1, "").await.assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn expired_and_revoked_refresh_tokens() {
    let server = server(true).await;
    let first = tokens(&server).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_owned();
    let a1 = first["access_token"].as_str().unwrap().to_owned();
    let revoked = server
        .post_form(
            "/revoke",
            &format!("token={r1}&token_type_hint=refresh_token"),
            Some(("pos", "pos-secret")),
        )
        .await;
    assert_eq!(revoked.status, 200);
    refresh(&server, &r1, "").await.assert_error(400, "invalid_grant");
    let introspected = server
        .post_form("/introspect", &format!("token={a1}"), Some(("pos", "pos-secret")))
        .await;
    assert_eq!(
        introspected.json["active"], false,
        "revoking the refresh token revokes its grant"
    );

    let second = tokens(&server).await;
    server.clock.advance(server.state.settings.refresh_token_lifetime + 1);
    refresh(&server, second["refresh_token"].as_str().unwrap(), "")
        .await
        .assert_error(400, "invalid_grant");
}
