//! The UserInfo endpoint: claims by scope, for tokens of the code flow; the
//! token in a `POST` body (RFC 6750 §2.2).

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::Profile;
use serde_json::{json, Value};

use crate::api_support::key;
use crate::browser_support::{authorize_path, redeem, Browser, Live, VERIFIER, WEB};
use crate::support::{Reply, TestServer};

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

/// `POST /userinfo` with `access_token=<token>` as a form body (RFC 6750 §2.2).
fn body_request(token: &str, authorization: Option<String>) -> Request<Body> {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("access_token", token)
        .finish();
    let mut request = Request::post("/userinfo").header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    if let Some(value) = authorization {
        request = request.header(header::AUTHORIZATION, value);
    }
    request.body(Body::from(body)).unwrap()
}

fn challenge(reply: &Reply) -> &str {
    reply.headers[header::WWW_AUTHENTICATE].to_str().unwrap()
}

/// RFC 6750 §2.2 (the conformance suite's `oidcc-userinfo-post-body`): the token
/// in a form body at `POST /userinfo`, with Bearer semantics; not together with
/// the header (§2), not in the query string (§2.3), not beyond the body limit.
#[tokio::test]
async fn token_in_a_post_body() {
    let server = TestServer::new().await;
    server.add_pos_client().await;
    let subject = server.add_user("alice", None).await;
    let details = json!([{
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "1.00"},
        "creditorName": "Demo Shop",
        "creditorAccount": {"iban": "DE89370400440532013000"},
    }]);
    let auth_req_id = server.approved_request("alice", "openid payments", &details).await;
    let bearer = server.redeem(&auth_req_id, None).await.access;

    let reply = server.send(body_request(&bearer, None)).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["sub"], subject.as_str());
    assert_eq!(
        reply.json["email"],
        Value::Null,
        "scope openid payments releases no email"
    );

    let both = server
        .send(body_request(&bearer, Some(format!("Bearer {bearer}"))))
        .await;
    both.assert_error(400, "invalid_request");
    assert!(
        challenge(&both).starts_with("Bearer realm=\"outband\", error=\"invalid_request\""),
        "{}",
        challenge(&both)
    );
    let repeated = Request::post("/userinfo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("access_token={bearer}&access_token={bearer}")))
        .unwrap();
    server.send(repeated).await.assert_error(400, "invalid_request");
    // A token in the header is read whatever the body holds.
    let header_and_odd_body = Request::post("/userinfo")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::AUTHORIZATION, format!("Bearer {bearer}"))
        .body(Body::from("a=1&a=2"))
        .unwrap();
    let reply = server.send(header_and_odd_body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Not in the query string (§2.3), for GET or POST.
    for method in ["GET", "POST"] {
        let query = Request::builder()
            .method(method)
            .uri(format!("/userinfo?access_token={bearer}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(server.send(query).await.status, 401, "{method} with a query token");
    }
    // Nor in a body of another content type.
    let json_body = Request::post("/userinfo")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(json!({"access_token": bearer}).to_string()))
        .unwrap();
    assert_eq!(server.send(json_body).await.status, 401);
    // The body is read within the server's limit.
    let huge = format!("access_token={bearer}&pad={}", "x".repeat(200 * 1024));
    let reply = server.post_form("/userinfo", &huge, None).await;
    assert_eq!(reply.status, 413, "{}", reply.text);

    // A DPoP-bound token in the body is refused as it is when presented as Bearer.
    let auth_req_id = server.approved_request("alice", "openid payments", &details).await;
    let bound = server.redeem(&auth_req_id, Some(key())).await.access;
    let as_bearer = server
        .send(
            Request::get("/userinfo")
                .header(header::AUTHORIZATION, format!("Bearer {bound}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    as_bearer.assert_error(401, "invalid_token");
    let in_body = server.send(body_request(&bound, None)).await;
    in_body.assert_error(401, "invalid_token");
    assert_eq!(challenge(&in_body), challenge(&as_bearer));
    assert!(
        challenge(&in_body).starts_with("DPoP error=\"invalid_token\""),
        "{}",
        challenge(&in_body)
    );
}
