//! The TUI over mutual TLS: the real `outband-pos` in a tmux pane, with
//! `client_cert`/`client_key`/`ca_file`, against the in-process server
//! speaking TLS (`TestServer::start_tls`) that authenticates the till by its
//! certificate (`tls_client_auth`) and binds the tokens to it. The sale runs
//! to the executed payment, which the payments API only accepts over a
//! connection with that certificate.

use std::process::Command;

use outband_protocol::{DeliveryMode, Scope, TokenEndpointAuthMethod};
use outband_server::store::TestDecision;

use crate::mtls::{pki, DN_A, SCOPE};
use crate::support::{TestServer, T0};
use crate::tmux::{send, wait_for, Session};

#[tokio::test]
async fn the_tui_pays_over_mutual_tls() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    let pki = pki();
    let server = TestServer::start_tls(T0, &pki.server_toml());
    server
        .add_client("till-a", DeliveryMode::Poll, None, |meta| {
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::TlsClientAuth;
            meta.tls_client_auth_subject_dn = Some(DN_A.into());
            meta.tls_client_certificate_bound_access_tokens = true;
            meta.scope = Scope::new(SCOPE);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    let data = tempfile::tempdir().unwrap();

    let port = server.url.rsplit(':').next().unwrap().to_owned();
    let session = format!("outband-pos-mtls-{}-{port}", std::process::id());
    let command = format!(
        "env -u OUTBAND_POS_CONFIG -u OUTBAND_POS_CLIENT_SECRET -u OUTBAND_POS_KEY_FILE \
         OUTBAND_POS_ISSUER={} OUTBAND_POS_CLIENT_ID=till-a OUTBAND_POS_AUTH_METHOD=tls_client_auth \
         OUTBAND_POS_CLIENT_CERT={} OUTBAND_POS_CLIENT_KEY={} OUTBAND_POS_CA_FILE={} \
         OUTBAND_POS_DATA_DIR={} {}",
        server.url,
        pki.path("a.pem"),
        pki.path("a.key"),
        pki.path("ca.pem"),
        data.path().display(),
        env!("CARGO_BIN_EXE_outband-pos"),
    );
    assert!(Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &command])
        .status()
        .unwrap()
        .success());
    let _session = Session(session.clone());
    // Discovery over TLS worked: the server's user_code support shows as a field.
    wait_for(&session, "User code").await;
    send(
        &session,
        &["12.50", "Tab", "Tab", "bob@example.com", "Tab", "TUI-MTLS", "Enter"],
    );
    let receipt = wait_for(&session, "PAYMENT EXECUTED").await;
    assert!(receipt.contains("Payment    pay_"), "{receipt}");
    assert!(receipt.contains("Reference  TUI-MTLS"), "{receipt}");
    assert!(receipt.contains("Customer   bob@example.com (sub-bob)"), "{receipt}");

    // The bank holds the payment, made by this till.
    let payments = server
        .on_server(|state| async move {
            let client = outband_protocol::ClientId::new("till-a");
            state
                .store
                .payments_by_reference(&client, "TUI-MTLS", None)
                .await
                .unwrap()
        })
        .await;
    assert_eq!(payments.len(), 1, "one payment");
    send(&session, &["C-c"]);
}
