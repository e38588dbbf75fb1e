//! The resource API: payments executed once per authorisation and idempotently,
//! matched against the approved authorization details, refunds that never
//! exceed the payment, account information, RFC 6750 errors and the FAPI
//! interaction id.

use serde_json::{json, Value};

use crate::api_support::{challenge, detail, Call};
use crate::support::{TestServer, T0};

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_pos_client().await;
    server.add_user("alice", None).await;
    server
}

/// `detail` without `type` is the body; the token's detail has it.
fn typed(detail: &Value) -> Value {
    let mut typed = detail.clone();
    typed["type"] = json!("payment_initiation");
    typed
}

#[tokio::test]
async fn a_payment_executes_once_and_retries_get_the_same_receipt() {
    let server = server().await;
    let body = detail("12.50", "REF-1");
    let token = server.payment_token(&[typed(&body)]).await;

    let reply = server.pay(&token, &body, "key-1").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    let id = reply.json["payment_id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("pay_"), "{id}");
    assert_eq!(reply.headers["location"], format!("/api/payments/{id}"));
    assert!(reply.headers.contains_key("x-fapi-interaction-id"));
    assert_eq!(
        reply.json,
        json!({
            "payment_id": id,
            "status": "executed",
            "instructedAmount": {"currency": "EUR", "amount": "12.50"},
            "creditorName": "Demo Shop",
            "creditorAccount": {"iban": "DE89370400440532013000"},
            "remittanceInformationUnstructured": "REF-1",
            "debtor": "sub-alice",
            "client_id": "pos",
            "created_at": "2027-01-15T08:00:00Z",
            "refunded_amount": "0.00",
        })
    );
    let receipt = reply.json;

    // The retry (lost answer): the same receipt, no second payment.
    server.clock.advance(5);
    let retry = server.pay(&token, &body, "key-1").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.json, receipt);
    // The key with another body.
    let other = server.pay(&token, &detail("12.00", "REF-1"), "key-1").await;
    other.assert_error(422, "idempotency_key_reused");
    // The same payment again under another key: the token already paid.
    let again = server.pay(&token, &body, "key-2").await;
    again.assert_error(409, "payment_already_executed");
    assert_eq!(again.json["payment_id"], id.as_str());
    // A refreshed token of the same grant cannot pay again either.
    let refresh = token.refresh.clone().unwrap();
    let proof = server.token_proof(token.key.as_ref().unwrap(), None, &json!({}));
    let refreshed = server
        .token_with_proof(
            &format!("grant_type=refresh_token&refresh_token={refresh}"),
            Some(&proof),
        )
        .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.text);
    let refreshed = crate::api_support::Token {
        access: refreshed.json["access_token"].as_str().unwrap().to_owned(),
        refresh: None,
        key: token.key,
    };
    server
        .pay(&refreshed, &body, "key-3")
        .await
        .assert_error(409, "payment_already_executed");

    // Exactly one payment is stored, and it is readable by id.
    let stored = server.state.store.payment(&id).await.unwrap().unwrap();
    assert_eq!((stored.amount_minor, stored.refunded_minor), (1250, 0));
    assert_eq!(stored.created_at, T0);
    let by_ref = server
        .state
        .store
        .payments_by_reference(&stored.client_id, "REF-1", None)
        .await
        .unwrap();
    assert_eq!(by_ref.len(), 1);
    let get = server
        .api(
            "GET",
            &format!("/api/payments/{id}"),
            Some(&refreshed),
            None,
            Call::default(),
        )
        .await;
    assert_eq!(get.status, 200, "{}", get.text);
    assert_eq!(get.json, receipt);
    // The merchant looks it up by reference with its client-credentials token.
    let merchant = server.merchant_token("payments refunds").await;
    let found = server
        .api(
            "GET",
            "/api/payments?reference=REF-1",
            Some(&merchant),
            None,
            Call::default(),
        )
        .await;
    assert_eq!(found.status, 200, "{}", found.text);
    assert_eq!(found.json, json!({ "payments": [receipt] }));
    server
        .api("GET", "/api/payments/pay_nope", Some(&merchant), None, Call::default())
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn idempotency_keys_survive_a_restart() {
    let server = server().await;
    let body = detail("3.00", "REF-R");
    let token = server.payment_token(&[typed(&body)]).await;
    let first = server.pay(&token, &body, "key-r").await;
    assert_eq!(first.status, 201, "{}", first.text);
    // A new server process over the same database.
    let settings = (*server.state.settings).clone();
    let state = outband_server::state::AppState::build(settings, server.state.store.clone(), server.clock.clone())
        .await
        .unwrap();
    let restarted = TestServer::from_parts(state, server.clock.clone());
    let retry = restarted.pay(&token, &body, "key-r").await;
    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.json, first.json);
}

#[tokio::test]
async fn payments_must_match_what_the_user_approved() {
    let server = server().await;
    let body = detail("12.50", "REF-1");
    let token = server.payment_token(&[typed(&body)]).await;
    let other_token = server.payment_token(&[typed(&detail("99.00", "REF-2"))]).await;
    let mut wrong_creditor = body.clone();
    wrong_creditor["creditorAccount"]["iban"] = json!("GB33BUKB20201555555555");
    let mut wrong_currency = body.clone();
    wrong_currency["instructedAmount"]["currency"] = json!("USD");
    for (what, candidate) in [
        ("amount", detail("12.51", "REF-1")),
        ("reference", detail("12.50", "REF-9")),
        ("creditor account", wrong_creditor),
        ("currency", wrong_currency),
    ] {
        let reply = server
            .pay(&token, &candidate, &format!("k-{}", what.replace(' ', "-")))
            .await;
        reply.assert_error(403, "payment_mismatch");
    }
    // A token approved for another payment.
    server
        .pay(&other_token, &body, "k-other")
        .await
        .assert_error(403, "payment_mismatch");
    // A token with no payment at all (the merchant's client credentials).
    let merchant = server.merchant_token("payments").await;
    server
        .pay(&merchant, &body, "k-merchant")
        .await
        .assert_error(403, "payment_mismatch");
    // Nothing was paid by any of these.
    let client = outband_protocol::ClientId::new("pos");
    assert!(server
        .state
        .store
        .payments_by_reference(&client, "REF-1", None)
        .await
        .unwrap()
        .is_empty());

    // Amounts compare as decimals, IBANs without spaces.
    let mut same = detail("12.5", "REF-1");
    same["creditorAccount"]["iban"] = json!("de89 3704 0044 0532 0130 00");
    let reply = server.pay(&token, &same, "k-same").await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(reply.json["instructedAmount"]["amount"], "12.50");
}

#[tokio::test]
async fn refunds_partial_then_the_rest_never_more() {
    let server = server().await;
    let body = detail("12.50", "REF-1");
    let token = server.payment_token(&[typed(&body)]).await;
    let id = server.pay(&token, &body, "pay-1").await.json["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let merchant = server.merchant_token("payments refunds").await;
    let path = format!("/api/payments/{id}/refunds");
    let refund = |key: &'static str, body: Value| {
        let (server, merchant, path) = (&server, &merchant, &path);
        async move {
            let call = Call {
                idempotency_key: Some(key),
                ..Call::default()
            };
            server.api("POST", path, Some(merchant), Some(body), call).await
        }
    };

    let first = refund("r-1", json!({"amount": "5.00", "reason": "one coffee too many"})).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert!(first.json["refund_id"].as_str().unwrap().starts_with("ref_"));
    assert_eq!(first.json["amount"], "5.00");
    assert_eq!(first.json["currency"], "EUR");
    assert_eq!(first.json["payment"]["status"], "partially_refunded");
    assert_eq!(first.json["payment"]["refunded_amount"], "5.00");
    // The retry is the same refund.
    let retry = refund("r-1", json!({"amount": "5.00", "reason": "one coffee too many"})).await;
    assert_eq!(retry.json["refund_id"], first.json["refund_id"]);
    refund("r-1", json!({"amount": "1.00"}))
        .await
        .assert_error(422, "idempotency_key_reused");
    // More than remains.
    let over = refund("r-2", json!({"amount": "7.51"})).await;
    over.assert_error(422, "refund_exceeds_payment");
    assert!(over.text.contains("7.50"), "{}", over.text);
    // The rest.
    let rest = refund("r-3", json!({})).await;
    assert_eq!(rest.status, 201, "{}", rest.text);
    assert_eq!(rest.json["amount"], "7.50");
    assert_eq!(rest.json["payment"]["status"], "refunded");
    assert_eq!(rest.json["payment"]["refunded_amount"], "12.50");
    refund("r-4", json!({"amount": "0.01"}))
        .await
        .assert_error(422, "refund_exceeds_payment");
    let stored = server.state.store.payment(&id).await.unwrap().unwrap();
    assert_eq!(stored.refunded_minor, 1250);

    // Bad amounts, and a payment that is not there.
    refund("r-5", json!({"amount": "-1"}))
        .await
        .assert_error(400, "invalid_request");
    let call = Call {
        idempotency_key: Some("r-6"),
        ..Call::default()
    };
    server
        .api(
            "POST",
            "/api/payments/pay_nope/refunds",
            Some(&merchant),
            Some(json!({})),
            call,
        )
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn scopes_and_missing_credentials() {
    let server = server().await;
    let body = detail("12.50", "REF-1");
    let token = server.payment_token(&[typed(&body)]).await;
    let id = server.pay(&token, &body, "pay-1").await.json["payment_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = format!("/api/payments/{id}/refunds");
    let call = || Call {
        idempotency_key: Some("r-1"),
        ..Call::default()
    };
    // A merchant token without the refunds scope.
    let payments_only = server.merchant_token("payments").await;
    let reply = server
        .api("POST", &path, Some(&payments_only), Some(json!({})), call())
        .await;
    reply.assert_error(403, "insufficient_scope");
    let www = challenge(&reply);
    assert!(www.starts_with("DPoP error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"refunds\""), "{www}");
    // The customer's payment token cannot refund.
    server
        .api("POST", &path, Some(&token), Some(json!({})), call())
        .await
        .assert_error(403, "insufficient_scope");
    // No token at all: 401 with a challenge naming both schemes.
    let reply = server.api("POST", &path, None, Some(json!({})), call()).await;
    reply.assert_error(401, "invalid_token");
    let www = challenge(&reply);
    assert!(www.contains("Bearer") && www.contains("DPoP"), "{www}");
    let reply = server
        .api("POST", "/api/payments", None, Some(body.clone()), call())
        .await;
    reply.assert_error(401, "invalid_token");
    // An unknown token.
    let forged = crate::api_support::Token {
        access: "forged".into(),
        refresh: None,
        key: None,
    };
    server
        .api("GET", "/api/accounts", Some(&forged), None, Call::default())
        .await
        .assert_error(401, "invalid_token");
    // Missing Idempotency-Key, malformed bodies.
    server
        .api(
            "POST",
            "/api/payments",
            Some(&token),
            Some(body.clone()),
            Call::default(),
        )
        .await
        .assert_error(400, "invalid_request");
    for bad in [
        json!([]),
        json!({"instructedAmount": {"currency": "EUR", "amount": "1e3"}, "creditorName": "x"}),
    ] {
        let call = Call {
            idempotency_key: Some("bad"),
            ..Call::default()
        };
        server
            .api("POST", "/api/payments", Some(&token), Some(bad), call)
            .await
            .assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn interaction_ids_are_echoed_or_made() {
    let server = server().await;
    let id = "0e5b7f6c-3a52-4d0c-9b8e-7c2f1f3a9d11";
    let call = Call {
        headers: vec![("x-fapi-interaction-id", id.to_owned())],
        ..Call::default()
    };
    let reply = server.api("GET", "/api/accounts", None, None, call).await;
    assert_eq!(reply.status, 401);
    assert_eq!(reply.headers["x-fapi-interaction-id"], id);
    let call = Call {
        headers: vec![("x-fapi-interaction-id", "not-a-uuid".to_owned())],
        ..Call::default()
    };
    let reply = server.api("GET", "/api/nowhere", None, None, call).await;
    reply.assert_error(404, "not_found");
    let made = reply.headers["x-fapi-interaction-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(made).is_ok(), "{made}");
}

#[tokio::test]
async fn accounts_and_balances_of_the_user() {
    let server = server().await;
    let body = detail("12.50", "REF-1");
    let token = server.payment_token(&[typed(&body)]).await;
    let reply = server
        .api("GET", "/api/accounts", Some(&token), None, Call::default())
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let accounts = reply.json["accounts"].as_array().unwrap().clone();
    assert_eq!(accounts.len(), 2);
    assert!(accounts[0]["iban"].as_str().unwrap().starts_with("DE"));
    let account = accounts[0]["account_id"].as_str().unwrap().to_owned();
    let balances_path = format!("/api/accounts/{account}/balances");
    let available = |reply: &crate::support::Reply| {
        outband_server::payments::amount::parse_minor(reply.json["balances"][0]["amount"].as_str().unwrap(), "EUR")
            .unwrap()
    };
    let before = server
        .api("GET", &balances_path, Some(&token), None, Call::default())
        .await;
    assert_eq!(before.status, 200, "{}", before.text);
    assert_eq!(before.json["balances"][0]["type"], "available");
    assert_eq!(server.pay(&token, &body, "k").await.status, 201);
    let after = server
        .api("GET", &balances_path, Some(&token), None, Call::default())
        .await;
    assert_eq!(available(&before) - available(&after), 1250, "the payment shows");
    // Another user's account is not found; the merchant has no accounts.
    server
        .api(
            "GET",
            "/api/accounts/acc_someone/balances",
            Some(&token),
            None,
            Call::default(),
        )
        .await
        .assert_error(404, "not_found");
    let merchant = server.merchant_token("payments accounts").await;
    server
        .api("GET", "/api/accounts", Some(&merchant), None, Call::default())
        .await
        .assert_error(403, "insufficient_scope");
    // A token without the accounts scope.
    let auth_req_id = server
        .approved_request("alice", "openid payments", &json!([typed(&detail("1.00", "R"))]))
        .await;
    let narrow = server.redeem(&auth_req_id, Some(crate::api_support::key())).await;
    server
        .api("GET", "/api/accounts", Some(&narrow), None, Call::default())
        .await
        .assert_error(403, "insufficient_scope");
}
