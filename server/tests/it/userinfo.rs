//! The UserInfo endpoint: claims by scope, for tokens of the code flow.

use outband_protocol::Profile;
use serde_json::Value;

use crate::browser_support::{authorize_path, redeem, Browser, Live, VERIFIER, WEB};
use crate::support::TestServer;

async fn token(live: &Live, scope: &str) -> String {
    let mut browser = Browser::new(live);
    let login = browser.get(&authorize_path(WEB, &[("scope", scope)])).await;
    let params = browser.login_and_approve(&login).await.redirect_params();
    let (status, tokens) = redeem(live, WEB, &params["code"], Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    tokens["access_token"].as_str().unwrap().to_owned()
}

pub async fn userinfo(live: &Live, token: Option<&str>, post: bool) -> (u16, Value) {
    let client = reqwest::Client::new();
    let url = format!("{}/userinfo", live.base);
    let mut request = if post { client.post(url) } else { client.get(url) };
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let reply = request.send().await.unwrap();
    let status = reply.status().as_u16();
    (status, reply.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn claims_follow_the_scope() {
    let server = TestServer::new().await;
    server.add_web_client(WEB, Profile::Oidc, |_| {}).await;
    server.add_password_user("alice").await;
    let live = server.live().await;

    let full = token(&live, "openid profile email").await;
    for post in [false, true] {
        let (status, claims) = userinfo(&live, Some(&full), post).await;
        assert_eq!(status, 200, "{claims}");
        assert_eq!(claims["sub"], "sub-alice");
        assert_eq!(claims["preferred_username"], "alice");
        assert_eq!(claims["email"], "alice@example.com");
        assert!(claims.get("phone_number").is_none());
    }
    let narrow = token(&live, "openid").await;
    let (_, claims) = userinfo(&live, Some(&narrow), false).await;
    assert_eq!(claims, serde_json::json!({"sub": "sub-alice"}));

    let no_openid = token(&live, "payments").await;
    let (status, body) = userinfo(&live, Some(&no_openid), false).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("insufficient_scope")));
    assert_eq!(userinfo(&live, None, false).await.0, 401);
    assert_eq!(userinfo(&live, Some("made-up"), false).await.0, 401);
}
