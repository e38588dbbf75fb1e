//! The `outband-pos` binary end to end against an in-process server.

use std::process::Output;

use outband_protocol::DeliveryMode;
use outband_server::store::TestDecision;
use serde_json::Value;

use outband_server::clock::Clock;

use crate::support::TestServer;

/// `outband-pos` with `args` against `server` as client `till`, ready to run.
fn command(server: &TestServer, args: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_outband-pos"));
    for (name, _) in std::env::vars() {
        if name.starts_with("OUTBAND_POS_") {
            command.env_remove(name);
        }
    }
    command
        .args(args)
        .env("OUTBAND_POS_ISSUER", &server.url)
        .env("OUTBAND_POS_CLIENT_ID", "till")
        .env("OUTBAND_POS_CLIENT_SECRET", "till-secret")
        .env("OUTBAND_POS_DATA_DIR", data_dir(server))
        .env("RUST_LOG", "off")
        .kill_on_drop(true);
    command
}

/// The till's data directory for `server` (one per server: its port is unique).
pub fn data_dir(server: &TestServer) -> std::path::PathBuf {
    let port = server.url.rsplit(':').next().unwrap_or("0");
    std::env::temp_dir().join(format!("outband-pos-test-{}-{port}", std::process::id()))
}

/// Runs `outband-pos` with `args` against `server` as client `till`.
pub async fn outband_pos(server: &TestServer, args: &[&str]) -> Output {
    command(server, args).output().await.unwrap()
}

pub async fn server_with(customer: &str, decision: Option<TestDecision>) -> TestServer {
    let server = TestServer::start();
    server
        .add_client("till", DeliveryMode::Poll, None, |meta| {
            meta.scope = outband_protocol::Scope::new("openid payments refunds");
        })
        .await;
    server.add_test_user(customer, decision).await;
    server
}

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test]
async fn pay_json_prints_the_receipt_and_exits_0() {
    let server = server_with("bob", Some(TestDecision::Approve)).await;
    let out = outband_pos(
        &server,
        &[
            "pay",
            "--amount",
            "12.50",
            "--currency",
            "EUR",
            "--customer",
            "bob@example.com",
            "--reference",
            "R-77",
            "--prefix",
            "CAFE",
            "--iban",
            "DE89 3704 0044 0532 0130 00",
            "--json",
        ],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "stdout: {stdout}\nstderr: {stderr}");
    let receipt: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(receipt["status"], "paid");
    let payment_id = receipt["payment"]["payment_id"].as_str().unwrap().to_owned();
    assert!(payment_id.starts_with("pay_"), "{payment_id}");
    assert_eq!(receipt["payment"]["status"], "executed");
    assert_eq!(receipt["amount"], "12.50");
    assert_eq!(receipt["currency"], "EUR");
    assert_eq!(receipt["payee"], "Corner Café");
    assert_eq!(receipt["iban"], "DE89 3704 0044 0532 0130 00");
    assert_eq!(receipt["reference"], "R-77");
    assert_eq!(receipt["customer"], "bob@example.com");
    assert_eq!(receipt["mode"], "poll");
    assert_eq!(receipt["token"]["sub"], "sub-bob");
    assert_eq!(receipt["token"]["scope"], "openid payments");
    assert_eq!(
        receipt["token"]["authorization_details"][0]["instructedAmount"]["amount"],
        "12.50"
    );
    assert!(
        receipt.get("access_token").is_none() && !stdout.contains("eyJ"),
        "no token on the receipt"
    );
    let message = receipt["binding_message"].as_str().unwrap();
    assert!(
        message.starts_with("CAFE-") && message.ends_with(" · EUR 12.50"),
        "{message}"
    );
    assert!(
        stderr.contains(message),
        "the binding message is shown while waiting: {stderr}"
    );
    assert!(stderr.contains("left"), "a countdown line: {stderr}");

    // The sale is found by its reference, in the journal and at the bank.
    let out = outband_pos(&server, &["sales", "--reference", "R-77", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let found: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(found["sales"][0]["state"], "approved");
    assert_eq!(found["sales"][0]["payment"]["payment_id"], payment_id.as_str());
    assert_eq!(found["payments"].as_array().unwrap().len(), 1);
    let out = outband_pos(&server, &["sales", "--reference", "R-77"]).await;
    assert!(text(&out.stdout).contains(&payment_id), "{}", text(&out.stdout));

    // Refund part by reference, then the rest by payment id; then nothing is left.
    let out = outband_pos(&server, &["refund", "R-77", "--amount", "2.50", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let refund: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(refund["amount"], "2.50");
    assert_eq!(refund["payment"]["status"], "partially_refunded");
    let out = outband_pos(&server, &["refund", &payment_id]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("Refunded EUR 10.00"),
        "{}",
        text(&out.stdout)
    );
    let out = outband_pos(&server, &["refund", &payment_id, "--amount", "1"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("refund_exceeds_payment"),
        "{}",
        text(&out.stderr)
    );
    let out = outband_pos(&server, &["refund", "NO-SUCH-REF"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("no payment has the reference"),
        "{}",
        text(&out.stderr)
    );
    let _ = std::fs::remove_dir_all(data_dir(&server));
}

#[tokio::test]
async fn pay_exits_2_on_denial() {
    let server = server_with("dave", Some(TestDecision::Deny)).await;
    let out = outband_pos(&server, &["pay", "--amount", "3", "--customer", "dave", "--json"]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    let body: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body["status"], "denied");
    assert!(stderr.contains("payment denied"), "{stderr}");
}

#[tokio::test]
async fn bad_input_and_unknown_clients_exit_1_with_a_message() {
    let server = server_with("bob", Some(TestDecision::Approve)).await;
    let out = outband_pos(&server, &["pay", "--amount", "12.505", "--customer", "bob"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("at most 2 fraction digits"),
        "{}",
        text(&out.stderr)
    );
    let out = outband_pos(
        &server,
        &["pay", "--amount", "1", "--currency", "euro", "--customer", "bob"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("three uppercase letters"));

    let out = outband_pos(
        &server,
        &["--client-id", "nobody", "pay", "--amount", "1", "--customer", "bob"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid_client"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn discover_and_token() {
    let server = server_with("bob", Some(TestDecision::Approve)).await;
    let out = outband_pos(&server, &["discover"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(metadata["issuer"], server.url);
    assert!(metadata["backchannel_authentication_endpoint"].is_string());

    let out = outband_pos(&server, &["token", "--scope", "payments"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let token = text(&out.stdout);
    assert_eq!(token.trim().split('.').count(), 3, "a JWT access token: {token}");
    let out = outband_pos(&server, &["token", "--json"]).await;
    let body: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(body["token_type"], "Bearer");
}

/// Pending requests of client `till` at the server.
async fn pending(server: &TestServer) -> i64 {
    let now = server.clock.now();
    server
        .on_server(move |state| async move {
            let till = outband_protocol::ClientId::new("till");
            state
                .store
                .count_pending_ciba_requests_of_client(&till, now)
                .await
                .unwrap()
        })
        .await
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_withdraws_the_sale_at_the_server() {
    use tokio::io::{AsyncBufReadExt, BufReader};

    let server = server_with("alice", None).await;
    let mut child = command(&server, &["pay", "--amount", "4.20", "--customer", "alice"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = String::new();
    let waiting = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(line) = stderr.next_line().await.unwrap() {
            seen.push_str(&line);
            seen.push('\n');
            if line.contains("waiting for approval") {
                return;
            }
        }
    })
    .await;
    assert!(waiting.is_ok(), "the sale never started waiting: {seen}");
    assert_eq!(pending(&server).await, 1);

    let pid = child.id().unwrap().to_string();
    let killed = std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    assert!(killed.success());
    while let Some(line) = stderr.next_line().await.unwrap() {
        seen.push_str(&line);
        seen.push('\n');
    }
    let status = child.wait().await.unwrap();
    assert_eq!(status.code(), Some(130), "{seen}");
    assert!(seen.contains("withdrawn at the bank"), "{seen}");
    assert_eq!(pending(&server).await, 0, "the request was cancelled, not left pending");
}
