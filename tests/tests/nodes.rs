//! Three `outband-server serve` processes on one PostgreSQL database and one
//! key file, behind the harness's path-routing proxy (the issuer is the
//! proxy's address on every node; see `src/cluster.rs`). Skipped on SQLite,
//! which is one node by design.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use outband_e2e::{ciba_client, on_postgres, pay_json, wait_until, Answer, Cluster, Device, Receiver, Till, CUSTOMER};

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;

#[tokio::test(flavor = "multi_thread")]
async fn three_nodes_share_requests_events_decisions_and_the_outbox() {
    if !on_postgres() {
        println!("skipped: several nodes need PostgreSQL (OUTBAND_TEST_BACKEND=postgres)");
        return;
    }
    let receiver = Receiver::start(Answer::Accept).await;
    let cluster = Cluster::start(3, &ciba_client("hook-ping", "ping", Some(&receiver.url), "")).await;
    let a = &cluster.nodes[A];

    // The device streams from B and decides through C; everything else is A.
    cluster.proxy.route(|path| match path {
        "/device/v1/events" => B,
        p if p.starts_with("/device/v1/requests/") && p.ends_with("/decision") => C,
        _ => A,
    });
    let mut device = Device::enroll(a, CUSTOMER);
    device.watch("approve");
    wait_until(
        "the device connected",
        Duration::from_secs(30),
        || std::future::ready(!device.events("connected").is_empty()),
        || device.log(),
    )
    .await;
    let before = cluster.proxy.served().len();

    let out = tokio::task::block_in_place(|| a.pay("poll", "12.50", "E2E-NODES"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        device.log(),
        cluster.logs()
    );
    let receipt = pay_json(&out, a, &device);
    assert!(receipt["payment"]["payment_id"].is_string(), "{receipt}");

    // Who served what during the sale: the request reached the device only
    // through B's stream (A's NOTIFY), the decision went through C, and A
    // issued the token.
    let served = cluster.proxy.served().split_off(before);
    let on = |node: usize, path: &dyn Fn(&str) -> bool| {
        served.iter().any(|s| s.node == node && path(&s.path) && s.status < 300)
    };
    assert!(on(A, &|p| p == "/bc-authorize"), "{served:?}");
    assert!(on(C, &|p| p.ends_with("/decision")), "{served:?}");
    assert!(on(A, &|p| p == "/token"), "{served:?}");
    assert!(
        !served.iter().any(|s| s.path == "/device/v1/requests"),
        "the device had to read its pending list: {served:?}"
    );
    assert!(
        device.log().contains("E2E-NODES") || device.log().contains("12.50"),
        "{}",
        device.log()
    );

    // Ping delivery across nodes: requests and polls spread round-robin,
    // every node's worker competes for the outbox; each ping arrives once.
    let (next, decisions) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    cluster.proxy.route(move |path| match path {
        "/device/v1/events" => B,
        p if p.ends_with("/decision") => decisions.fetch_add(1, Ordering::Relaxed) % 3,
        _ => next.fetch_add(1, Ordering::Relaxed) % 3,
    });
    let hook = Till::new(&a.issuer, "hook-ping");
    let ids = hook.start_notified(6, 3, "E2E-NODE-PING").await;
    wait_until(
        "every ping delivered and the outbox empty",
        Duration::from_secs(60),
        || {
            let seen: HashSet<String> = receiver
                .hits()
                .iter()
                .filter_map(|hit| hit.body["auth_req_id"].as_str().map(str::to_owned))
                .collect();
            std::future::ready(ids.iter().all(|id| seen.contains(id)) && a.notifications(false).is_empty())
        },
        || format!("{:?}\n{}", receiver.hits(), cluster.logs()),
    )
    .await;
    for id in &ids {
        assert_eq!(receiver.hits_for(id).len(), 1, "{:?}", receiver.hits());
        let (status, tokens) = hook.token(id, None).await;
        assert_eq!(status, 200, "{tokens}");
    }
    let decided_on: HashSet<usize> = cluster
        .proxy
        .served()
        .iter()
        .filter(|s| s.path.ends_with("/decision"))
        .map(|s| s.node)
        .collect();
    assert!(decided_on.len() > 1, "decisions spread over nodes: {decided_on:?}");
}
