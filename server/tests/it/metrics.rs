//! `GET /metrics`: off by default, behind a bearer token or on a separate
//! listener when on, and the counters a CIBA flow leaves behind.
//!
//! The recorder is process-wide and every test server of this binary records
//! into it once a metrics-enabled server has installed it, so the tests compare
//! a scrape before and after (other tests only ever add) and never assume
//! absolute values, except the pending gauge, read from the scraping server's
//! database under [`SCRAPES`].

use std::collections::BTreeMap;

use axum::body::Body;
use axum::http::{header, Method, Request, StatusCode};
use outband_protocol::DeliveryMode;

use crate::ciba_support::LOOPBACK_OUTBOUND;
use crate::support::{Reply, TestServer};

const TOKEN: &str = "metrics-scraper-token-0123456789abcdefghij";

/// Held by each test that renders, so one test's pending gauge is not
/// overwritten by another's scrape between its setting and its rendering.
static SCRAPES: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A server with `[metrics]` on behind [`TOKEN`], plus `extra` configuration.
async fn server(extra: &str) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("metrics-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let config = format!(
        "{extra}\n[metrics]\nenabled = true\ntoken_file = {:?}\n",
        token.display().to_string()
    );
    (TestServer::with_config(&config).await, dir)
}

async fn scrape(server: &TestServer, bearer: Option<&str>) -> Reply {
    let mut request = Request::get("/metrics");
    if let Some(token) = bearer {
        request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
    }
    server.send(request.body(Body::empty()).unwrap()).await
}

/// `series → value` of a text exposition (comments skipped).
fn samples(text: &str) -> BTreeMap<String, f64> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (series, value) = line.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
        })
        .collect()
}

/// A scrape that must succeed, as samples.
async fn read(server: &TestServer) -> (BTreeMap<String, f64>, String) {
    let reply = scrape(server, Some(TOKEN)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let content_type = reply.headers[header::CONTENT_TYPE].to_str().unwrap();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    (samples(&reply.text), reply.text)
}

fn delta(before: &BTreeMap<String, f64>, after: &BTreeMap<String, f64>, series: &str) -> f64 {
    let Some(now) = after.get(series) else {
        panic!("{series} is missing from {after:#?}")
    };
    now - before.get(series).copied().unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_are_off_unless_configured() {
    let server = TestServer::new().await;
    for method in [Method::GET, Method::POST] {
        let reply = server
            .send(
                Request::builder()
                    .method(method)
                    .uri("/metrics")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await;
        assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
        assert_eq!(reply.json["error_description"], "no such endpoint");
    }
}

#[tokio::test]
async fn metrics_need_the_bearer_token() {
    let (server, _dir) = server("").await;
    let reply = scrape(&server, None).await;
    reply.assert_error(401, "invalid_token");
    assert_eq!(reply.headers[header::WWW_AUTHENTICATE], "Bearer");
    let reply = scrape(&server, Some("metrics-scraper-token-wrong-0123456789abcdef")).await;
    reply.assert_error(401, "invalid_token");
    let reply = server
        .send(
            Request::post("/metrics")
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await;
    assert_eq!(reply.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(reply.headers[header::ALLOW], "GET");
}

#[tokio::test]
async fn a_ciba_flow_is_counted_by_mode_outcome_and_route() {
    let (server, _dir) = server(LOOPBACK_OUTBOUND).await;
    let _scrapes = SCRAPES.lock().await;
    let (before, _) = read(&server).await;

    // Poll: started, approved by a device 3 s later, redeemed at /token.
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    let mut device = server.enrolled_device("alice").await;
    let reply = server
        .bc_authorize("pos", "scope=openid%20payments&login_hint=alice&binding_message=M-1")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    let record = server.ciba_request(&auth_req_id).await;
    server.clock.advance(3);
    let reply = device.decide(&server, &record.id, &record.request_jwt, "approve").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.clock.advance(5);
    assert_eq!(server.poll("pos", &auth_req_id).await.status, 200);

    // Poll: one cancelled by the client, one left to expire, one still pending.
    let mut ids = Vec::new();
    for _ in 0..3 {
        let reply = server
            .bc_authorize("pos", "scope=openid&login_hint=alice&requested_expiry=60")
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        ids.push(reply.json["auth_req_id"].as_str().unwrap().to_owned());
    }
    let reply = server
        .post_form(
            "/bc-authorize/cancel",
            &format!("auth_req_id={}", ids[0]),
            Some(("pos", "pos-secret")),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.clock.advance(61);
    outband_server::ciba::lifecycle::expire_due(&server.state)
        .await
        .unwrap();
    let reply = server
        .bc_authorize("pos", "scope=openid&login_hint=alice&requested_expiry=60")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Ping: denied, and the notification refused by the client (4xx: failed).
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}/cb", listener.local_addr().unwrap());
    let receiver = axum::Router::new().route("/cb", axum::routing::post(|| async { StatusCode::BAD_REQUEST }));
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    server
        .add_ciba_client("shop", DeliveryMode::Ping, Some(&endpoint))
        .await;
    let reply = server
        .bc_authorize(
            "shop",
            "scope=openid&login_hint=alice&client_notification_token=nt-5b1e",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.decide(reply.json["auth_req_id"].as_str().unwrap(), false).await;
    assert_eq!(
        outband_server::ciba::delivery::deliver_due(&server.state)
            .await
            .unwrap(),
        1
    );

    let (after, text) = read(&server).await;
    for (series, at_least) in [
        (r#"outband_ciba_requests_total{mode="poll",outcome="started"}"#, 5.0),
        (r#"outband_ciba_requests_total{mode="poll",outcome="approved"}"#, 1.0),
        (r#"outband_ciba_requests_total{mode="poll",outcome="cancelled"}"#, 1.0),
        (r#"outband_ciba_requests_total{mode="poll",outcome="expired"}"#, 2.0),
        (r#"outband_ciba_requests_total{mode="ping",outcome="started"}"#, 1.0),
        (r#"outband_ciba_requests_total{mode="ping",outcome="denied"}"#, 1.0),
        (
            r#"outband_notification_deliveries_total{kind="ping",result="failed"}"#,
            1.0,
        ),
        (
            r#"outband_http_requests_total{method="POST",route="/token",status="200"}"#,
            1.0,
        ),
        (
            r#"outband_http_requests_total{method="POST",route="/bc-authorize",status="200"}"#,
            6.0,
        ),
        (
            r#"outband_http_requests_total{method="POST",route="/device/v1/requests/{id}/decision",status="200"}"#,
            1.0,
        ),
        (
            r#"outband_http_request_duration_seconds_count{route="/bc-authorize"}"#,
            6.0,
        ),
        (r#"outband_device_decision_latency_seconds_count"#, 1.0),
    ] {
        let grew = delta(&before, &after, series);
        assert!(
            grew >= at_least,
            "{series} grew by {grew}, expected at least {at_least}"
        );
    }
    // The 3 s decision fell in the 5 s bucket, not the 2 s one (ours is the only device decision here).
    assert!(
        delta(
            &before,
            &after,
            r#"outband_device_decision_latency_seconds_bucket{le="5"}"#
        ) >= 1.0,
        "{text}"
    );
    // Routes are patterns: no request id appears in a label.
    assert!(!text.contains(&record.id), "a raw path leaked into a label");
    assert_eq!(after[r#"outband_ciba_pending{mode="poll"}"#], 1.0, "{text}");
    assert_eq!(after[r#"outband_ciba_pending{mode="ping"}"#], 0.0, "{text}");
    assert!(
        text.contains("# TYPE outband_http_request_duration_seconds histogram"),
        "{text}"
    );
}

#[tokio::test]
async fn a_separate_listener_serves_metrics_and_the_main_one_does_not() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let config = format!("[metrics]\nenabled = true\nlisten = \"127.0.0.1:{port}\"\n");
    let server = TestServer::with_config(&config).await;
    let reply = scrape(&server, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{}", reply.text);
    assert_eq!(reply.json["error_description"], "no such endpoint");

    let _scrapes = SCRAPES.lock().await;
    let live = server.live().await;
    let client = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let mut response = None;
    for _ in 0..50 {
        // `run` binds the metrics address before it serves; wait until it answers.
        if let Ok(answer) = client.get(&url).send().await {
            response = Some(answer);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let response = response.expect("the metrics listener answers");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let text = response.text().await.unwrap();
    assert!(text.contains(r#"outband_ciba_pending{mode="poll"} 0"#), "{text}");
    let other = client
        .get(format!("http://127.0.0.1:{port}/token"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let main = client.get(format!("{}/metrics", live.base)).send().await.unwrap();
    assert_eq!(main.status(), 404);
    assert!(main.text().await.unwrap().contains("no such endpoint"));
}
