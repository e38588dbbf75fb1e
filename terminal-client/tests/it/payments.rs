//! Executing approved payments through the server's payments API: the
//! journaled idempotency key (a crash between approval and payment charges
//! once), DPoP-bound tokens with server nonces (FAPI 2), lookups by reference
//! and refunds; and the `sales` / `refund` commands.

use std::sync::Arc;

use outband_protocol::{DeliveryMode, Profile, SigningAlg, TokenEndpointAuthMethod, TokenType};
use outband_server::store::TestDecision;
use outband_terminal::{
    CancelToken, ClientAuth, DpopKey, Journal, Outcome, PaymentError, Recovery, SaleState, Settlement,
};
use serde_json::{json, Value};

use crate::support::{new_key, sale, TerminalServer, TestServer};

const SCOPE: &str = "openid payments refunds";

async fn server() -> TestServer {
    let server = TestServer::start();
    server
        .add_client("till", DeliveryMode::Poll, None, |meta| {
            meta.scope = outband_protocol::Scope::new(SCOPE);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;
    server
}

#[tokio::test(start_paused = true)]
async fn an_approved_sale_is_paid_once_and_can_be_refunded() {
    let server = server().await;
    let client = server.client("till").build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let mut sale = sale("bob@example.com");
    sale.reference = Some("INV-7".into());

    let (started, mut entry) = client.start_journaled(&journal, sale).await.unwrap();
    let Outcome::Approved(tokens) = client.wait(&started, &CancelToken::new()).await.unwrap() else {
        panic!("expected approval")
    };
    assert_eq!(
        tokens.token_type,
        TokenType::Bearer,
        "demo-style clients keep bearer tokens"
    );
    let Settlement::Paid(receipt) = client.settle(&journal, &mut entry, &started, &tokens).await.unwrap() else {
        panic!("expected a payment")
    };
    let payment = receipt.payment.clone().unwrap();
    assert!(payment.payment_id.starts_with("pay_"), "{}", payment.payment_id);
    assert_eq!(payment.status, "executed");
    assert_eq!(payment.instructed_amount.amount, "12.50");
    assert_eq!(payment.creditor_name, "Corner Café");
    assert_eq!(receipt.status, "paid");

    // The journal closed the sale with its payment, and dropped the tokens.
    assert!(journal.unresolved().unwrap().is_empty());
    let found = journal.find("INV-7").unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].state, SaleState::Approved);
    assert_eq!(found[0].payment.as_ref().unwrap().payment_id, payment.payment_id);
    let on_disk = std::fs::read_to_string(
        std::fs::read_dir(dir.path().join("done"))
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path(),
    )
    .unwrap();
    assert!(
        !on_disk.contains(tokens.access_token.secret()),
        "no token is kept after the sale"
    );

    // The merchant finds it by reference and refunds part, then the rest.
    let listed = client.payments_by_reference("INV-7").await.unwrap();
    assert_eq!(listed.len(), 1);
    let refund = client
        .refund(&payment.payment_id, Some("5.00".parse().unwrap()), "r-1")
        .await
        .unwrap();
    assert_eq!(refund.amount, "5.00");
    assert_eq!(refund.payment.status, "partially_refunded");
    let too_much = client
        .refund(&payment.payment_id, Some("8.00".parse().unwrap()), "r-2")
        .await
        .unwrap_err();
    assert_eq!(too_much.code(), Some("refund_exceeds_payment"), "{too_much}");
    let rest = client.refund(&payment.payment_id, None, "r-3").await.unwrap();
    assert_eq!(rest.amount, "7.50");
    assert_eq!(rest.payment.status, "refunded");
    assert_eq!(client.payment(&payment.payment_id).await.unwrap().status, "refunded");
}

#[tokio::test(start_paused = true)]
async fn a_crash_between_approval_and_payment_charges_once() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let mut sale = sale("bob@example.com");
    sale.reference = Some("INV-CRASH".into());

    // First run: approved, the key is journaled, the call reaches the bank,
    // and the till dies before it reads the answer.
    let first_payment = {
        let client = server.client("till").build().unwrap();
        let (started, mut entry) = client.start_journaled(&journal, sale).await.unwrap();
        let Outcome::Approved(tokens) = client.wait(&started, &CancelToken::new()).await.unwrap() else {
            panic!("expected approval")
        };
        journal.record_approved(&mut entry, &tokens).unwrap();
        let key = entry.idempotency_key.clone().unwrap();
        client
            .execute_payment(&tokens, &started.sale, &started.reference, &key)
            .await
            .unwrap()
    };

    // Second run: the sale is open in state `paying`; settling it again
    // sends the same key and gets the same payment back.
    let client = server.client("till").build().unwrap();
    let open = journal.unresolved().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!(open[0].state, SaleState::Paying);
    let mut entry = open.into_iter().next().unwrap();
    let Recovery::Pay { started, tokens } = client.recover(&entry).await.unwrap() else {
        panic!("expected to pay")
    };
    let Settlement::Paid(receipt) = client.settle(&journal, &mut entry, &started, &tokens).await.unwrap() else {
        panic!("expected the payment")
    };
    assert_eq!(receipt.payment.unwrap().payment_id, first_payment.payment_id);
    assert_eq!(
        client.payments_by_reference("INV-CRASH").await.unwrap().len(),
        1,
        "charged once"
    );
    assert!(journal.unresolved().unwrap().is_empty());

    // A payment the grant already made under another key is read back, not repeated.
    let again = client
        .execute_payment(&tokens, &started.sale, &started.reference, "another-key")
        .await
        .unwrap();
    assert_eq!(again.payment_id, first_payment.payment_id);
    assert_eq!(client.payments_by_reference("INV-CRASH").await.unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn fapi2_tokens_are_dpop_bound_and_nonces_are_answered() {
    let server = TestServer::start();
    let key = Arc::new(new_key(SigningAlg::ES256));
    let jwks = json!({ "keys": [Value::Object(key.public_jwk().as_ref().clone())] });
    server
        .add_client("fapi-till", DeliveryMode::Poll, None, |meta| {
            meta.profile = Profile::Fapi2Security;
            meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
            meta.token_endpoint_auth_signing_alg = Some(SigningAlg::ES256);
            meta.jwks = Some(jwks);
            meta.scope = outband_protocol::Scope::new(SCOPE);
        })
        .await;
    server.add_test_user("bob", Some(TestDecision::Approve)).await;

    // Without DPoP the FAPI 2 client gets no token.
    let bare = server
        .client("fapi-till")
        .set_client_auth(ClientAuth::PrivateKeyJwt(key.clone()))
        .build()
        .unwrap();
    let err = bare.client_credentials(None).await.unwrap_err();
    assert!(err.to_string().contains("invalid_dpop_proof"), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let dpop = DpopKey::load_or_create(dir.path()).unwrap();
    let client = server
        .client("fapi-till")
        .set_client_auth(ClientAuth::PrivateKeyJwt(key))
        .set_dpop_key(Some(dpop.clone()))
        .build()
        .unwrap();
    let mut sale = sale("bob@example.com");
    sale.reference = Some("INV-FAPI".into());
    // The first token request has no nonce yet: use_dpop_nonce, then the retry.
    let receipt = client.pay(sale, &CancelToken::new()).await.unwrap();
    assert_eq!(receipt.token.token_type, TokenType::DPoP);
    let payment = receipt.payment.unwrap();
    assert_eq!(payment.remittance_information_unstructured.as_deref(), Some("INV-FAPI"));

    // The merchant's own tokens are bound too; a till without the key cannot use a bound token.
    assert_eq!(client.payments_by_reference("INV-FAPI").await.unwrap().len(), 1);
    let refund = client.refund(&payment.payment_id, None, "full").await.unwrap();
    assert_eq!(refund.payment.status, "refunded");
    let tokens = client
        .client_credentials(Some(&outband_protocol::Scope::new("payments")))
        .await
        .unwrap();
    let keyless = server.client("till-keyless").build().unwrap();
    let err = keyless
        .execute_payment(&tokens, &sale_for_ref("X"), "X", "k")
        .await
        .unwrap_err();
    assert!(matches!(err, PaymentError::NoDpopKey), "{err}");
}

fn sale_for_ref(reference: &str) -> outband_terminal::SaleRequest {
    let mut sale = sale("bob@example.com");
    sale.reference = Some(reference.into());
    sale
}
