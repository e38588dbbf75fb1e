//! Rich Authorization Requests (RFC 9396) at the CIBA endpoint.

use outband_protocol::{ClientId, DeliveryMode};
use serde_json::{json, Value};

use crate::support::{Reply, TestServer};

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server
}

async fn ask(server: &TestServer, client: &str, details: &Value) -> Reply {
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("scope", "openid payments")
        .append_pair("login_hint", "alice")
        .append_pair("binding_message", "CAFE-7Q2K")
        .append_pair("authorization_details", &details.to_string())
        .finish();
    server.bc_authorize(client, &body).await
}

/// What the POS terminal sends for a sale (terminal-client `Sale::authorization_details`).
fn pos_payment() -> Value {
    json!({
        "type": "payment_initiation",
        "instructedAmount": { "currency": "EUR", "amount": "12.50" },
        "creditorName": "Corner Café",
        "remittanceInformationUnstructured": "CAFE-7Q2K",
        "creditorAccount": { "iban": "DE89370400440532013000" },
    })
}

#[tokio::test]
async fn known_types_are_accepted_and_stored_as_sent() {
    let server = server().await;
    let mut payment = pos_payment();
    payment["debtorAccount"] = json!({ "iban": "GB82 WEST 1234 5698 7654 32" });
    payment["merchantId"] = json!("M-4711");
    payment["terminalId"] = json!("TILL-2");
    let accounts = json!({ "type": "account_information", "access": ["balances"],
                           "accounts": [{ "other": { "identification": "12345678", "schemeName": "SortCodeAccountNumber" } }] });
    let details = json!([payment, accounts]);
    let reply = ask(&server, "pos", &details).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let id = reply.json["auth_req_id"].as_str().unwrap();
    let stored = server.ciba_request(id).await;
    let stored: Value = serde_json::from_str(stored.authorization_details.as_deref().unwrap()).unwrap();
    assert_eq!(stored, details, "checked, never rewritten");

    let pos_only = ask(&server, "pos", &json!([pos_payment()])).await;
    assert_eq!(pos_only.status, 200, "{}", pos_only.text);
    let discovery = server.get("/.well-known/openid-configuration").await.json;
    assert_eq!(
        discovery["authorization_details_types_supported"],
        json!(["payment_initiation", "account_information"])
    );
}

#[tokio::test]
async fn invalid_details_are_refused_with_the_problem_named() {
    let server = server().await;
    let with = |pointer: &str, value: Value| {
        let mut detail = pos_payment();
        match detail.pointer_mut(pointer) {
            Some(slot) => *slot = value,
            None => detail[pointer.trim_start_matches('/')] = value,
        }
        json!([detail])
    };
    let without = |field: &str| {
        let mut detail = pos_payment();
        detail.as_object_mut().unwrap().remove(field);
        json!([detail])
    };
    let cases = [
        (
            json!([{ "type": "crypto_transfer" }]),
            "authorization_details[0].type: unknown type \"crypto_transfer\"",
        ),
        (
            json!([{ "instructedAmount": {} }]),
            "authorization_details[0].type: is required",
        ),
        (json!([]), "authorization_details: must contain at least one entry"),
        (
            json!({ "type": "payment_initiation" }),
            "authorization_details: must be a JSON array",
        ),
        (
            with("/instructedAmount/amount", json!("-1.00")),
            "authorization_details[0].instructedAmount.amount",
        ),
        (
            with("/instructedAmount/amount", json!("0")),
            "authorization_details[0].instructedAmount.amount",
        ),
        (
            with("/instructedAmount/amount", json!("1.005")),
            "authorization_details[0].instructedAmount.amount",
        ),
        (
            with("/instructedAmount/amount", json!(12.5)),
            "authorization_details[0].instructedAmount.amount: must be a decimal string",
        ),
        (
            with("/instructedAmount/currency", json!("EURO")),
            "authorization_details[0].instructedAmount.currency",
        ),
        (
            without("instructedAmount"),
            "authorization_details[0].instructedAmount: is required",
        ),
        (
            without("creditorName"),
            "authorization_details[0].creditorName: is required",
        ),
        (
            with("/creditorAccount/iban", json!("DE89370400440532013001")),
            "authorization_details[0].creditorAccount.iban",
        ),
        (
            with("/creditorAccount", json!({})),
            "authorization_details[0].creditorAccount: must have exactly one of iban, bban or other",
        ),
        (
            with("/remittanceInformationUnstructured", json!("x".repeat(141))),
            "authorization_details[0].remittanceInformationUnstructured",
        ),
        (
            with("/surcharge", json!("1.00")),
            "authorization_details[0].surcharge: is not a field of this type",
        ),
        (
            json!([{ "type": "account_information", "access": ["standing_orders"] }]),
            "authorization_details[0].access[0]",
        ),
    ];
    for (details, description) in cases {
        let reply = ask(&server, "pos", &details).await;
        reply.assert_error(400, "invalid_authorization_details");
        let text = reply.json["error_description"].as_str().unwrap();
        assert!(text.starts_with(description), "{details}: {text}");
    }
    let not_json = server
        .bc_authorize(
            "pos",
            "scope=openid&login_hint=alice&binding_message=x&authorization_details=%5B%7B",
        )
        .await;
    not_json.assert_error(400, "invalid_authorization_details");
}

#[tokio::test]
async fn a_client_uses_only_its_registered_types() {
    let server = server().await;
    let mut meta = server.state.store.client(&ClientId::new("pos")).await.unwrap().unwrap();
    meta.metadata.authorization_details_types = Some(vec!["account_information".into()]);
    assert!(server.state.store.update_client(&meta).await.unwrap());
    let refused = ask(&server, "pos", &json!([pos_payment()])).await;
    refused.assert_error(400, "invalid_authorization_details");
    assert_eq!(
        refused.json["error_description"],
        "authorization_details[0].type: payment_initiation is not allowed for this client"
    );
    let allowed = ask(
        &server,
        "pos",
        &json!([{ "type": "account_information", "access": ["transactions"] }]),
    )
    .await;
    assert_eq!(allowed.status, 200, "{}", allowed.text);
}
