//! Faults: `kill -9` of the server under a small load, and ping receivers
//! that fail, redirect or hang (CIBA Core §10.2; docs/OPERATIONS.md "Ping
//! and push notifications").

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::collections::HashSet;
use std::time::Duration;

use outband_e2e::{ciba_client, wait_until, Answer, Device, Receiver, Server, Till, CUSTOMER, CUSTOMER_EMAIL};
use serde_json::Value;

/// Longer than the outbox lease (30 s) a killed node leaves behind.
const DELIVERED_WITHIN: Duration = Duration::from_secs(60);

/// A server whose client `hook-ping` notifies `receiver`, and an approving device.
async fn setup(receiver: &Receiver) -> (Server, Device) {
    let server = Server::start(&ciba_client("hook-ping", "ping", Some(&receiver.url), "")).await;
    let mut device = Device::enroll(&server, CUSTOMER);
    device.watch("approve");
    (server, device)
}

/// Waits until `receiver` saw every one of `ids` and the outbox holds nothing
/// more to deliver; then each was delivered exactly once (204).
async fn assert_delivered_once(server: &Server, receiver: &Receiver, ids: &[String]) {
    wait_until(
        "every ping delivered and the outbox empty",
        DELIVERED_WITHIN,
        || {
            let seen: HashSet<String> = receiver
                .hits()
                .iter()
                .filter_map(|hit| hit.body["auth_req_id"].as_str().map(str::to_owned))
                .collect();
            let done = ids.iter().all(|id| seen.contains(id)) && server.notifications(false).is_empty();
            std::future::ready(done)
        },
        || format!("{:?}\n{}", receiver.hits(), server.log()),
    )
    .await;
    for id in ids {
        let hits = receiver.hits_for(id);
        assert_eq!(hits.len(), 1, "{id} delivered {} times: {hits:?}", hits.len());
        assert_eq!(hits[0].status, 204, "{hits:?}");
    }
    assert!(
        server.notifications(true).is_empty(),
        "{:?}",
        server.notifications(true)
    );
}

/// Ten sales at once (five `outband-pos` tills polling, five ping requests),
/// the server `kill -9`ed while they are open and restarted: every sale
/// completes, every ping arrives exactly once, every till is paid once.
#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_loses_nothing_and_delivers_once() {
    let receiver = Receiver::start(Answer::Accept).await;
    let (mut server, device) = setup(&receiver).await;

    let tills: Vec<_> = (0..5)
        .map(|n| {
            let mut till = server.pos_in("pos-poll", &format!("till-{n}"));
            till.args([
                "pay",
                "--json",
                "--amount",
                &format!("1{n}.00"),
                "--currency",
                "EUR",
                "--mode",
                "poll",
            ])
            .args(["--customer", CUSTOMER_EMAIL, "--reference", &format!("E2E-LOAD-{n}")]);
            std::thread::spawn(move || till.output().expect("running outband-pos"))
        })
        .collect();
    let hook = Till::new(&server.issuer, "hook-ping");
    let pings = hook.start_notified(5, 2, "E2E-PING").await;
    wait_until(
        "ten requests at the server",
        Duration::from_secs(30),
        || std::future::ready(server.ciba_requests(None).len() >= 10),
        || server.log(),
    )
    .await;

    server.crash_and_restart().await;

    let mut payments = HashSet::new();
    for till in tills {
        let out = tokio::task::block_in_place(|| till.join().expect("a till thread"));
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}\n--- device:\n{}\n--- server:\n{}",
            String::from_utf8_lossy(&out.stderr),
            device.log(),
            server.log()
        );
        let receipt: Value = serde_json::from_slice(&out.stdout).expect("a JSON receipt");
        let id = receipt["payment"]["payment_id"]
            .as_str()
            .expect("a payment id")
            .to_owned();
        assert!(payments.insert(id), "paid twice: {receipt}");
    }
    assert_delivered_once(&server, &receiver, &pings).await;
    for (n, id) in pings.iter().enumerate() {
        let hits = receiver.hits_for(id);
        assert_eq!(
            hits[0].bearer.as_deref(),
            Some(format!("bearer-{n}-0123456789").as_str())
        );
        let (status, tokens) = hook.token(id, None).await;
        assert_eq!(status, 200, "{tokens}");
    }
    let states: Vec<Value> = server.ciba_requests(None).iter().map(|r| r["state"].clone()).collect();
    assert!(states.iter().all(|s| s == "redeemed"), "{states:?}");
}

/// A receiver that answers 500 gets the notification again (2 s later), and
/// then it counts as delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_ping_answered_500_is_retried() {
    let receiver = Receiver::start(Answer::FailFirst(1)).await;
    let (server, _device) = setup(&receiver).await;
    let hook = Till::new(&server.issuer, "hook-ping");
    let id = hook.start("3.00", "E2E-RETRY", Some("bearer-retry-0123456789")).await;

    wait_until(
        "a second attempt",
        DELIVERED_WITHIN,
        || std::future::ready(receiver.hits().len() >= 2 && server.notifications(false).is_empty()),
        || format!("{:?}\n{}", receiver.hits(), server.log()),
    )
    .await;
    let hits = receiver.hits_for(&id);
    let statuses: Vec<u16> = hits.iter().map(|hit| hit.status).collect();
    assert_eq!(statuses, [500, 204], "{hits:?}");
    assert!(hits
        .iter()
        .all(|hit| hit.bearer.as_deref() == Some("bearer-retry-0123456789")));
    assert!(server.notifications(true).is_empty());
    let (status, tokens) = hook.token(&id, None).await;
    assert_eq!(status, 200, "{tokens}");
}

/// A receiver that redirects: the server never follows (the target hears
/// nothing) and records the redirect as the delivery's error.
#[tokio::test(flavor = "multi_thread")]
async fn a_redirecting_receiver_is_never_followed() {
    let target = Receiver::start(Answer::Accept).await;
    let receiver = Receiver::start(Answer::Redirect(target.url.clone())).await;
    let (server, _device) = setup(&receiver).await;
    let hook = Till::new(&server.issuer, "hook-ping");
    let id = hook
        .start("4.00", "E2E-REDIRECT", Some("bearer-redirect-0123456789"))
        .await;

    let error = || {
        let open = server.notifications(false);
        let failed = server.notifications(true);
        open.iter()
            .chain(&failed)
            .find_map(|n| n["last_error"].as_str().map(str::to_owned))
    };
    wait_until(
        "the redirect recorded",
        DELIVERED_WITHIN,
        || std::future::ready(error().is_some()),
        || format!("{:?}\n{}", receiver.hits(), server.log()),
    )
    .await;
    let error = error().unwrap();
    assert!(error.contains("307"), "{error}");
    assert!(!receiver.hits_for(&id).is_empty());
    assert!(
        target.hits().is_empty(),
        "the redirect was followed: {:?}",
        target.hits()
    );
    // The ping is only a hint: the client still gets its tokens.
    let (status, tokens) = hook.token(&id, None).await;
    assert_eq!(status, 200, "{tokens}");
}

/// A receiver that does not answer: meanwhile the server answers `/readyz`,
/// the token endpoint and new requests; once it answers, the ping is delivered.
#[tokio::test(flavor = "multi_thread")]
async fn a_slow_receiver_does_not_stall_the_server() {
    let receiver = Receiver::start(Answer::Hold).await;
    let (server, _device) = setup(&receiver).await;
    let hook = Till::new(&server.issuer, "hook-ping");
    let id = hook.start("5.00", "E2E-SLOW", Some("bearer-slow-0123456789")).await;
    wait_until(
        "the ping held",
        DELIVERED_WITHIN,
        || std::future::ready(receiver.hits().iter().any(|hit| hit.status == 0)),
        || server.log(),
    )
    .await;

    let ready = reqwest::get(format!("{}/readyz", server.url)).await.expect("readyz");
    assert_eq!(ready.status(), 200);
    let (status, tokens) = hook.token(&id, None).await;
    assert_eq!(status, 200, "{tokens}");
    let other = hook.start("6.00", "E2E-SLOW-2", Some("bearer-slow2-0123456789")).await;
    assert!(!other.is_empty());
    assert!(receiver.hits().iter().any(|hit| hit.status == 0), "still held");

    receiver.release();
    wait_until(
        "both pings delivered",
        DELIVERED_WITHIN,
        || std::future::ready(server.notifications(false).is_empty() && !receiver.hits_for(&other).is_empty()),
        || format!("{:?}\n{}", receiver.hits(), server.log()),
    )
    .await;
    assert!(
        receiver.hits_for(&id).iter().any(|hit| hit.status == 204),
        "{:?}",
        receiver.hits()
    );
}
