//! A sale from till to customer's device and back, with every part a real
//! process: `outband-pos pay` starts the CIBA request, `outband-device watch
//! --auto approve|deny` decides it, the server delivers the answer in poll,
//! ping or push mode.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::process::Output;
use std::time::Duration;

use outband_e2e::{pay_json, Device, Server, CUSTOMER};
use serde_json::Value;

/// What a failed `outband-pos` run said, with both other parties' logs.
fn explain(out: &Output, server: &Server, device: &Device) -> String {
    format!(
        "exit {}\nstdout: {}\nstderr: {}\n--- device:\n{}\n--- server:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        device.log(),
        server.log()
    )
}

/// An approved sale in `mode`: exit 0 and a receipt for exactly what was rung up.
async fn approved_sale(mode: &str) {
    let server = Server::start("").await;
    let mut device = Device::enroll(&server, CUSTOMER);
    device.watch("approve");
    let reference = format!("E2E-{}", mode.to_uppercase());

    let out = tokio::task::block_in_place(|| server.pay(mode, "12.50", &reference));
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out, &server, &device));
    let receipt = pay_json(&out, &server, &device);
    assert_eq!(receipt["amount"], "12.50", "{receipt}");
    assert_eq!(receipt["currency"], "EUR", "{receipt}");
    assert_eq!(receipt["reference"], reference.as_str(), "{receipt}");

    // The device showed the amount and the binding message the till printed.
    let binding = receipt["binding_message"]
        .as_str()
        .expect("the receipt's binding message");
    let seen = device.log();
    assert!(seen.contains(binding), "the device never showed {binding:?}:\n{seen}");
    assert!(seen.contains("12.50"), "the device never showed the amount:\n{seen}");

    // The server recorded the request as approved by that device, then redeemed by the till.
    let list = server.admin(&["--json", "ciba", "list"]);
    let requests: Value = serde_json::from_slice(&list.stdout).expect("ciba list --json");
    let request = &requests[0];
    assert_eq!(request["state"], "redeemed", "{requests}");
    assert_eq!(request["amr"], serde_json::json!(["hwk", "pin"]), "{requests}");
    assert_eq!(request["delivery_mode"], mode, "{requests}");
    assert!(request["device_id"].is_string(), "{requests}");
}

#[tokio::test(flavor = "multi_thread")]
async fn poll_sale_approved_on_the_device() {
    approved_sale("poll").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn ping_sale_approved_on_the_device() {
    approved_sale("ping").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn push_sale_approved_on_the_device() {
    approved_sale("push").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_sale_exits_2_and_charges_nothing() {
    let server = Server::start("").await;
    let mut device = Device::enroll(&server, CUSTOMER);
    device.watch("deny");

    let out = tokio::task::block_in_place(|| server.pay("poll", "99.00", "E2E-DENY"));
    assert_eq!(out.status.code(), Some(2), "{}", explain(&out, &server, &device));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.to_lowercase().contains("denied"), "{stderr}");

    let list = server.admin(&["--json", "ciba", "list"]);
    let requests: Value = serde_json::from_slice(&list.stdout).expect("ciba list --json");
    assert_eq!(requests[0]["state"], "denied", "{requests}");
}

/// `kill -9` of the server while a sale waits for the customer: after the
/// restart the request is still there, the device approves it, and the till
/// (which kept polling through the outage) gets its receipt.
#[tokio::test(flavor = "multi_thread")]
async fn a_server_crash_loses_no_pending_sale() {
    let mut server = Server::start("").await;
    let mut device = Device::enroll(&server, CUSTOMER);

    let till = server.pos("pos-poll");
    let sale = std::thread::spawn(move || {
        let mut till = till;
        till.args(["pay", "--json", "--amount", "7.00", "--currency", "EUR"])
            .args([
                "--customer",
                outband_e2e::CUSTOMER_EMAIL,
                "--mode",
                "poll",
                "--reference",
                "E2E-CRASH",
            ])
            .output()
            .expect("running outband-pos")
    });
    wait_for_pending(&server).await;

    server.crash_and_restart().await;
    device.watch("approve");

    let out = tokio::task::block_in_place(|| sale.join().expect("the till thread"));
    assert_eq!(out.status.code(), Some(0), "{}", explain(&out, &server, &device));
    let receipt = pay_json(&out, &server, &device);
    assert_eq!(receipt["amount"], "7.00", "{receipt}");
}

/// Waits until the server holds a pending request.
async fn wait_for_pending(server: &Server) {
    for _ in 0..300 {
        let list = server.admin(&["--json", "ciba", "list", "--state", "pending"]);
        if let Ok(Value::Array(requests)) = serde_json::from_slice::<Value>(&list.stdout) {
            if !requests.is_empty() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no pending request appeared:\n{}", server.log());
}
