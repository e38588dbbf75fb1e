//! Refunds survive a crash: the refund is journaled with its
//! `Idempotency-Key` before the call, so rerunning `outband-pos refund` after
//! the till died mid-call sends the same key and reports the refund the bank
//! already made, never a second one.

use outband_server::store::TestDecision;
use outband_terminal::{ClientAuth, Journal, RefundOutcome};
use serde_json::Value;

use crate::cli::{data_dir, outband_pos, server_with, text};
use crate::support::TestServer;

/// Pays EUR 12.50 with reference `reference` through the binary; the payment id.
async fn paid(server: &TestServer, reference: &str) -> String {
    let out = outband_pos(
        server,
        &[
            "pay",
            "--amount",
            "12.50",
            "--customer",
            "bob@example.com",
            "--reference",
            reference,
            "--json",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let receipt: Value = serde_json::from_slice(&out.stdout).unwrap();
    receipt["payment"]["payment_id"].as_str().unwrap().to_owned()
}

/// How much of `payment_id` the bank's database says is refunded, in cents.
async fn refunded_minor(server: &TestServer, payment_id: &str) -> i64 {
    let id = payment_id.to_owned();
    server
        .on_server(|state| async move { state.store.payment(&id).await.unwrap().unwrap().refunded_minor })
        .await
}

/// The client `outband-pos` is (same issuer, client and data directory).
fn till_client(server: &TestServer) -> outband_terminal::CibaClient {
    outband_terminal::CibaClient::builder()
        .set_issuer(server.url.clone())
        .set_client_id("till")
        .set_client_auth(ClientAuth::ClientSecretBasic(outband_protocol::ClientSecret::new(
            "till-secret",
        )))
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_refund_interrupted_after_the_call_is_not_made_twice_on_rerun() {
    let server = server_with("bob", Some(TestDecision::Approve)).await;
    let payment_id = paid(&server, "R-CRASH").await;

    // The till journals the refund and sends it; the bank refunds 2.50; the
    // till "dies" before it records the answer (the journal entry stays open).
    let journal = Journal::open(data_dir(&server)).unwrap();
    let client = till_client(&server);
    let entry = journal
        .begin_refund(&client, &payment_id, Some("2.50".parse().unwrap()))
        .unwrap();
    let first = client
        .refund(&payment_id, entry.amount, entry.idempotency_key())
        .await
        .unwrap();
    drop(entry);
    assert_eq!(refunded_minor(&server, &payment_id).await, 250);
    assert!(journal.open_refund(&client, &payment_id).unwrap().is_some());

    // The shop assistant runs the same refund again: the open one is sent
    // with its key, and the bank's stored refund is reported.
    let out = outband_pos(&server, &["refund", &payment_id, "--amount", "2.50", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let reported: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(reported["refund_id"], first.refund_id.as_str(), "the same refund");
    assert_eq!(reported["recovered"], true);
    assert_eq!(reported["amount"], "2.50");
    assert_eq!(reported["payment"]["refunded_amount"], "2.50");
    assert_eq!(
        refunded_minor(&server, &payment_id).await,
        250,
        "the bank refunded 2.50 once, not twice"
    );
    assert!(
        journal.open_refund(&client, &payment_id).unwrap().is_none(),
        "closed now"
    );
    let done = journal.refunds().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].refund.as_ref().unwrap().refund_id, first.refund_id);

    // A later, deliberate refund of the same amount is a new refund.
    let out = outband_pos(&server, &["refund", &payment_id, "--amount", "2.50", "--json"]).await;
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let second: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(second["refund_id"], first.refund_id.as_str());
    assert_eq!(second["recovered"], false);
    assert_eq!(refunded_minor(&server, &payment_id).await, 500);
    let _ = std::fs::remove_dir_all(data_dir(&server));
}

#[tokio::test]
async fn a_rerun_with_another_amount_completes_the_interrupted_refund_only() {
    let server = server_with("bob", Some(TestDecision::Approve)).await;
    let payment_id = paid(&server, "R-OTHER").await;
    let journal = Journal::open(data_dir(&server)).unwrap();
    let client = till_client(&server);

    // Journaled, then the till died before the call left (or its answer was lost).
    let entry = journal
        .begin_refund(&client, &payment_id, Some("3.00".parse().unwrap()))
        .unwrap();
    drop(entry);
    assert_eq!(refunded_minor(&server, &payment_id).await, 0);

    // Asked for 1.00 now: the interrupted 3.00 is completed, the 1.00 is not made.
    let out = outband_pos(&server, &["refund", &payment_id, "--amount", "1.00"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("Refunded EUR 3.00"), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("run the command again"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(refunded_minor(&server, &payment_id).await, 300);

    // The library says the same thing to a UI.
    let again = client
        .refund_journaled(&journal, &payment_id, Some("1.00".parse().unwrap()))
        .await
        .unwrap();
    assert!(matches!(again, RefundOutcome::Refunded(_)), "{again:?}");
    assert_eq!(refunded_minor(&server, &payment_id).await, 400);
    let _ = std::fs::remove_dir_all(data_dir(&server));
}
