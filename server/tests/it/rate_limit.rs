//! `[rate_limits.bc_authorize]` over real HTTP: a client over its limit gets 429
//! with `Retry-After` and `slow_down`, other clients do not notice, the
//! allowance comes back as the (manual) clock moves through the window, and
//! the refusals are counted in `/metrics`.

use outband_protocol::DeliveryMode;
use outband_server::test_server::TestServer;
use reqwest::header::{CACHE_CONTROL, RETRY_AFTER};
use serde_json::Value;

/// 3 requests per 30 s: a burst of 3, then one more every 10 s.
const LIMIT: &str = "[rate_limits.bc_authorize]\nrequests = 3\nwindow_seconds = 30\n";
const METRICS_TOKEN: &str = "rate-limit-metrics-token-0123456789abcdef";

/// `POST /bc-authorize` for alice as `client`, with `secret`: status, `Retry-After`, body.
async fn bc_authorize(server: &TestServer, client: &str, secret: &str) -> (u16, Option<String>, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/bc-authorize", server.url))
        .basic_auth(client, Some(secret))
        // The notification token is for ping mode; poll mode ignores it.
        .form(&[
            ("scope", "openid"),
            ("login_hint", "alice"),
            ("client_notification_token", "rate-limit-test-notification-token"),
        ])
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(RETRY_AFTER)
        .map(|v| v.to_str().unwrap().to_owned());
    if status == 429 {
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    }
    (status, retry_after, response.json().await.unwrap())
}

async fn ok(server: &TestServer, client: &str) {
    let (status, _, body) = bc_authorize(server, client, &format!("{client}-secret")).await;
    assert_eq!(status, 200, "{client}: {body}");
    assert!(body["auth_req_id"].is_string(), "{body}");
}

async fn limited(server: &TestServer, client: &str, retry_after: &str) {
    let (status, retry, body) = bc_authorize(server, client, &format!("{client}-secret")).await;
    assert_eq!(status, 429, "{client}: {body}");
    assert_eq!(retry.as_deref(), Some(retry_after), "{body}");
    assert_eq!(body["error"], "slow_down", "{body}");
    let description = body["error_description"].as_str().unwrap();
    assert!(
        description.contains("at most 3 requests per 30 seconds"),
        "{description}"
    );
}

#[tokio::test]
async fn bc_authorize_is_limited_per_client_over_a_window() {
    let server = TestServer::start_with(LIMIT);
    server.add_ciba_client("till-a", DeliveryMode::Poll).await;
    server.add_ciba_client("till-b", DeliveryMode::Poll).await;
    server.add_user("alice").await;

    // Requests that fail client authentication do not use the client's allowance.
    for _ in 0..4 {
        let (status, _, body) = bc_authorize(&server, "till-a", "wrong-secret").await;
        assert_eq!(
            (status, body["error"].as_str()),
            (401, Some("invalid_client")),
            "{body}"
        );
    }
    for _ in 0..3 {
        ok(&server, "till-a").await;
    }
    limited(&server, "till-a", "10").await;
    limited(&server, "till-a", "10").await;

    // Another client has its own allowance.
    for _ in 0..3 {
        ok(&server, "till-b").await;
    }
    limited(&server, "till-b", "10").await;

    // One request comes back every 10 s; the whole burst after the window.
    server.clock.advance(9);
    limited(&server, "till-a", "1").await;
    server.clock.advance(1);
    ok(&server, "till-a").await;
    limited(&server, "till-a", "10").await;
    server.clock.advance(30);
    for _ in 0..3 {
        ok(&server, "till-a").await;
    }
    limited(&server, "till-a", "10").await;
}

#[tokio::test]
async fn without_a_limit_and_by_default_nothing_is_refused() {
    let server = TestServer::start_with("[rate_limits.bc_authorize]\nrequests = 0\n");
    server.add_ciba_client("till", DeliveryMode::Poll).await;
    server.add_user("alice").await;
    for _ in 0..20 {
        ok(&server, "till").await;
    }
    let defaults = TestServer::start();
    assert_eq!(
        defaults
            .state
            .settings
            .rate_limits
            .bc_authorize
            .map(|l| (l.requests.get(), l.window.as_secs())),
        Some((6000, 60))
    );
}

/// `outband_ciba_requests_total{mode="ping",outcome="rate_limited"}` (only this test uses ping mode here).
async fn rate_limited_count(server: &TestServer) -> f64 {
    let text = reqwest::Client::new()
        .get(format!("{}/metrics", server.url))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| {
            line.starts_with("outband_ciba_requests_total{")
                && line.contains("mode=\"ping\"")
                && line.contains("outcome=\"rate_limited\"")
        })
        .map_or(0.0, |line| line.rsplit_once(' ').unwrap().1.parse().unwrap())
}

#[tokio::test]
async fn refusals_are_counted_and_documented() {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("metrics-token");
    std::fs::write(&token, METRICS_TOKEN).unwrap();
    let config = format!(
        "{LIMIT}[metrics]\nenabled = true\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    let server = TestServer::start_with(&config);
    server
        .add_client("till-ping", DeliveryMode::Ping, Some("http://127.0.0.1:9/cb"), |_| {})
        .await;
    server.add_user("alice").await;
    let before = rate_limited_count(&server).await;
    for _ in 0..3 {
        ok(&server, "till-ping").await;
    }
    limited(&server, "till-ping", "10").await;
    limited(&server, "till-ping", "10").await;
    assert_eq!(rate_limited_count(&server).await - before, 2.0);

    let document: Value = reqwest::get(format!("{}/openapi.json", server.url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let too_many = &document["paths"]["/bc-authorize"]["post"]["responses"]["429"];
    assert!(
        too_many["description"].as_str().unwrap().contains("slow_down"),
        "{too_many}"
    );
    assert!(too_many["headers"]["Retry-After"].is_object(), "{too_many}");
}
