//! PostgreSQL restarted or briefly unreachable (issue "The whole system",
//! Faults): while the database is away the server answers 503
//! `temporarily_unavailable` instead of failing or crashing, and when it is
//! back everything works again without restarting the server: the pending
//! request survives, new ones start, and device events flow again (the
//! `LISTEN` connection reconnects). Skipped on SQLite, which is a file.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::time::Duration;

use outband_e2e::{on_postgres, wait_until, DbProxy, Device, Server, Till, CLIENT_SECRET, CUSTOMER, CUSTOMER_EMAIL};
use serde_json::Value;

/// Longer than the store's wait for a connection (5 s), with room for a slow machine.
const WITHIN: Duration = Duration::from_secs(60);

/// `POST /bc-authorize` for a small sale: the status and the JSON body.
async fn start_sale(server: &Server, reference: &str) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(format!("{}/bc-authorize", server.issuer))
        .basic_auth("pos-poll", Some(CLIENT_SECRET))
        .form(&[
            ("scope", "openid"),
            ("login_hint", CUSTOMER_EMAIL),
            ("binding_message", reference),
        ])
        .send()
        .await
        .expect("an HTTP answer");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Polls until the request is decided; the token response.
async fn tokens_for(server: &Server, till: &Till, auth_req_id: &str) -> Value {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        let (status, body) = till.token(auth_req_id, None).await;
        if status == 200 {
            return body;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no tokens for {auth_req_id}: {status} {body}\n{}",
            server.log()
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_database_outage_answers_503_and_recovers_without_a_restart() {
    if !on_postgres() {
        println!("skipped: a database outage needs PostgreSQL (OUTBAND_TEST_BACKEND=postgres)");
        return;
    }
    let database_url = outband_server::store::testing::fresh_database_url().await;
    let upstream = url::Url::parse(&database_url).expect("a database URL");
    let proxy = DbProxy::start(&format!(
        "{}:{}",
        upstream.host_str().expect("a host"),
        upstream.port().unwrap_or(5432)
    ))
    .await;
    let mut server = Server::start_on(&proxy.url_for(&database_url), "").await;
    let mut device = Device::enroll(&server, CUSTOMER);
    let till = Till::new(&server.issuer, "pos-poll");

    // A sale waiting for the customer when the database goes away.
    let (status, pending) = start_sale(&server, "DB-OUTAGE-1").await;
    assert_eq!(status, 200, "{pending}");
    let pending_id = pending["auth_req_id"].as_str().expect("an auth_req_id").to_owned();

    proxy.cut();
    let (status, body) = start_sale(&server, "DB-OUTAGE-2").await;
    assert_eq!(status, 503, "{body}\n{}", server.log());
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let (status, body) = till.token(&pending_id, None).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "temporarily_unavailable", "{body}");
    let ready = reqwest::get(format!("{}/readyz", server.url))
        .await
        .expect("an HTTP answer");
    assert_eq!(ready.status().as_u16(), 503, "/readyz while the database is away");
    assert!(server.is_running(), "the server died:\n{}", server.log());

    // Back, without restarting the server: the device catches up on the
    // pending sale, and a new sale reaches its open stream live.
    proxy.restore();
    wait_until(
        "the server is ready again",
        WITHIN,
        || async {
            reqwest::get(format!("{}/readyz", server.url))
                .await
                .is_ok_and(|r| r.status().is_success())
        },
        || server.log(),
    )
    .await;
    device.watch("approve");
    let tokens = tokens_for(&server, &till, &pending_id).await;
    assert!(tokens["access_token"].is_string(), "{tokens}");

    let (status, fresh) = start_sale(&server, "DB-OUTAGE-3").await;
    assert_eq!(status, 200, "{fresh}");
    let tokens = tokens_for(&server, &till, fresh["auth_req_id"].as_str().expect("an auth_req_id")).await;
    assert!(tokens["id_token"].is_string(), "{tokens}");

    assert!(server.is_running(), "the server died:\n{}", server.log());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}
