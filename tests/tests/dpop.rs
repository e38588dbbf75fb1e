//! DPoP-bound tokens end to end (RFC 9449): a till registered with
//! `dpop_bound_access_tokens = true` pays with `outband-pos --dpop` in poll
//! and ping mode, and a stolen bound token is worthless without the key.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Output;
use std::time::Duration;

use outband_e2e::{ciba_client, jwt_claims, pay_json, wait_until, Device, DpopKey, Present, Server, Till, CUSTOMER};

fn clients() -> String {
    let bound = "dpop_bound_access_tokens = true";
    ciba_client("dpop-poll", "poll", None, bound) + &ciba_client("dpop-ping", "ping", Some("{notify}"), bound)
}

/// `outband-pos --dpop pay` as `client_id`: a receipt with an executed payment and a DPoP token.
fn assert_paid_with_dpop(out: &Output, server: &Server, device: &Device, reference: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}\n--- server:\n{}",
        String::from_utf8_lossy(&out.stderr),
        device.log(),
        server.log()
    );
    let receipt = pay_json(out, server, device);
    assert_eq!(receipt["status"], "paid", "{receipt}");
    assert_eq!(receipt["reference"], reference, "{receipt}");
    assert_eq!(receipt["token"]["token_type"], "DPoP", "{receipt}");
    let payment_id = receipt["payment"]["payment_id"].as_str().unwrap_or_default();
    assert!(payment_id.starts_with("pay_"), "{receipt}");
}

#[tokio::test(flavor = "multi_thread")]
async fn dpop_bound_sales_pay_and_a_stolen_token_is_refused() {
    let server = Server::start(&clients()).await;
    let mut device = Device::enroll(&server, CUSTOMER);
    device.watch("approve");

    // The POS in poll and ping mode, at the same time.
    let poll = server.pos("dpop-poll");
    let poll = std::thread::spawn(move || {
        let mut poll = poll;
        poll.arg("--dpop")
            .args([
                "pay",
                "--json",
                "--amount",
                "4.20",
                "--currency",
                "EUR",
                "--mode",
                "poll",
            ])
            .args([
                "--customer",
                outband_e2e::CUSTOMER_EMAIL,
                "--reference",
                "E2E-DPOP-POLL",
            ])
            .args(["--iban", "DE89370400440532013000"])
            .output()
            .expect("running outband-pos")
    });
    let ping = tokio::task::block_in_place(|| server.pay_as("dpop-ping", "ping", "5.30", "E2E-DPOP-PING", &["--dpop"]));
    assert_paid_with_dpop(&ping, &server, &device, "E2E-DPOP-PING");
    let poll = tokio::task::block_in_place(|| poll.join().expect("the poll till"));
    assert_paid_with_dpop(&poll, &server, &device, "E2E-DPOP-POLL");

    // The thief: a bound token, taken from a till that holds key A.
    let decided = device.events("decision").len();
    let till = Till::new(&server.issuer, "dpop-poll");
    let key = DpopKey::generate();
    let auth_req_id = till.start("9.99", "E2E-THIEF", None).await;
    wait_until(
        "the device approves",
        Duration::from_secs(30),
        || std::future::ready(device.events("decision").len() > decided),
        || device.log(),
    )
    .await;
    let (status, tokens) = till.token(&auth_req_id, Some(&key)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "DPoP", "{tokens}");
    let access_token = tokens["access_token"].as_str().expect("an access token");
    let claims = jwt_claims(access_token);
    assert_eq!(claims["cnf"]["jkt"], key.thumbprint().as_str(), "{claims}");

    // Replayed as a Bearer token, or with a proof by another key: refused.
    let (status, body) = till.pay(access_token, Present::Bearer, "9.99", "E2E-THIEF").await;
    assert_eq!(status, 401, "as Bearer: {body}");
    let thief = DpopKey::generate();
    let (status, body) = till.pay(access_token, Present::Dpop(&thief), "9.99", "E2E-THIEF").await;
    assert_eq!(status, 401, "with another key: {body}");

    // Nothing was paid: the key's holder pays now, once.
    let (status, receipt) = till.pay(access_token, Present::Dpop(&key), "9.99", "E2E-THIEF").await;
    assert_eq!(status, 201, "{receipt}");
    assert!(
        receipt["payment_id"].as_str().is_some_and(|id| id.starts_with("pay_")),
        "{receipt}"
    );
}
