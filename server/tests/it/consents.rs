//! The consent API (lodging intent): create, read and delete with the client's
//! client-credentials token, its errors, and the states a consent moves through
//! without a user (rejection by DELETE, expiry of the authorisation window).

use serde_json::json;

use crate::consent_support::{accounts_body, consent_path, payment_body, CLIENT, CONSENTS};
use crate::support::TestServer;

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_consent_client(CLIENT).await;
    server.add_consent_client("other").await;
    server
}

#[tokio::test]
async fn a_consent_is_created_read_and_deleted_by_its_client() {
    let server = server().await;
    let token = server.client_token(CLIENT, "consents").await;
    let mut body = accounts_body(&["ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "RESOURCES_READ"]);
    body["data"]["expirationDateTime"] = json!("2027-06-01T00:00:00Z");
    let interaction = "4b2c5a3e-8f1d-4c6b-9a7e-2d3f4a5b6c7d";
    let created = server
        .bearer(
            "POST",
            CONSENTS,
            &token,
            Some(&body),
            &[("x-fapi-interaction-id", interaction)],
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.text);
    assert_eq!(created.headers["x-fapi-interaction-id"], interaction);
    let data = &created.json["data"];
    let id = data["consentId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("urn:outband:"), "{id}");
    assert_eq!(created.headers["location"], consent_path(&id));
    assert_eq!(data["status"], "AwaitingAuthorisation");
    assert_eq!(data["creationDateTime"], "2027-01-15T08:00:00Z");
    assert_eq!(data["expirationDateTime"], "2027-06-01T00:00:00Z");
    assert_eq!(
        data["permissions"],
        json!(["ACCOUNTS_READ", "ACCOUNTS_BALANCES_READ", "RESOURCES_READ"])
    );
    assert_eq!(data["loggedUser"]["document"]["rel"], "CPF");
    assert_eq!(
        created.json["links"]["self"],
        format!("https://as.example.test{}", consent_path(&id))
    );

    let read = server.bearer("GET", &consent_path(&id), &token, None, &[]).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert_eq!(read.json["data"], created.json["data"]);

    // Deleted before authorisation: rejected, by the user's wish.
    server.clock.advance(10);
    let deleted = server.bearer("DELETE", &consent_path(&id), &token, None, &[]).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    assert!(deleted.headers.contains_key("x-fapi-interaction-id"));
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Rejected");
    assert_eq!(data["statusUpdateDateTime"], "2027-01-15T08:00:10Z");
    assert_eq!(
        data["rejection"],
        json!({"rejectedBy": "USER", "reason": {"code": "CUSTOMER_MANUALLY_REJECTED"}})
    );
    // A rejected consent cannot be deleted again.
    let again = server.bearer("DELETE", &consent_path(&id), &token, None, &[]).await;
    again.assert_error(422, "consent_status_invalid");
}

#[tokio::test]
async fn uk_spellings_and_payments_are_accepted() {
    let server = server().await;
    let token = server.client_token(CLIENT, "consents").await;
    let uk = json!({"Data": {"Permissions": ["ReadAccountsBasic", "ReadBalances"], "ExpirationDateTime": "2027-02-01T00:00:00+00:00"}, "Risk": {}});
    let reply = server.bearer("POST", CONSENTS, &token, Some(&uk), &[]).await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json["data"]["permissions"],
        json!(["ReadAccountsBasic", "ReadBalances"])
    );

    let reply = server
        .bearer("POST", CONSENTS, &token, Some(&payment_body("12.50")), &[])
        .await;
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert_eq!(
        reply.json["data"]["payment"]["instructedAmount"],
        json!({"currency": "EUR", "amount": "12.50"})
    );
    assert!(reply.json["data"].get("permissions").is_none());
}

#[tokio::test]
async fn bad_bodies_are_invalid_requests() {
    let server = server().await;
    let token = server.client_token(CLIENT, "consents").await;
    for (body, names) in [
        (json!({"data": {}}), "data.permissions or data.payment"),
        (json!({"data": {"permissions": []}}), "must not be empty"),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ", "TAKE_EVERYTHING"]}}),
            "data.permissions[1]",
        ),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ"], "expirationDateTime": "2026-01-01T00:00:00Z"}}),
            "expirationDateTime",
        ),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ"], "expirationDateTime": "tomorrow"}}),
            "expirationDateTime",
        ),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ"], "payment": payment_body("1.00")["data"]["payment"]}}),
            "not both",
        ),
        (
            json!({"data": {"payment": {"instructedAmount": {"currency": "EUR", "amount": "1.001"}, "creditorName": "x"}}}),
            "data.payment.instructedAmount.amount",
        ),
        (
            json!({"data": {"payment": {"instructedAmount": {"currency": "EUR", "amount": "1.00"}, "creditorName": "x", "creditorAccount": {"iban": "DE00370400440532013000"}}}}),
            "data.payment.creditorAccount",
        ),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ"], "loggedUser": {"document": {"identification": "", "rel": "CPF"}}}}),
            "loggedUser",
        ),
        (
            json!({"data": {"permissions": ["ACCOUNTS_READ"]}, "surprise": 1}),
            "malformed",
        ),
        (json!([1, 2]), "malformed"),
    ] {
        let reply = server.bearer("POST", CONSENTS, &token, Some(&body), &[]).await;
        reply.assert_error(400, "invalid_request");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(description.contains(names), "{body}: {description}");
    }
    let request = axum::http::Request::post(CONSENTS)
        .header("authorization", format!("Bearer {token}"))
        .body(axum::body::Body::from("{not json"))
        .unwrap();
    server.send(request).await.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn only_the_owning_client_with_a_consents_token_may_use_a_consent() {
    let server = server().await;
    let id = server.create_consent(CLIENT, &accounts_body(&["ACCOUNTS_READ"])).await;

    // Another client: 403 on read and delete, and the consent is untouched.
    let other = server.client_token("other", "consents").await;
    let path = consent_path(&id);
    server
        .bearer("GET", &path, &other, None, &[])
        .await
        .assert_error(403, "access_denied");
    server
        .bearer("DELETE", &path, &other, None, &[])
        .await
        .assert_error(403, "access_denied");
    assert_eq!(
        server.read_consent(CLIENT, &id).await["status"],
        "AwaitingAuthorisation"
    );

    // Unknown consents are 404.
    let own = server.client_token(CLIENT, "consents").await;
    let unknown = consent_path("urn:outband:nothing-here");
    server
        .bearer("GET", &unknown, &own, None, &[])
        .await
        .assert_error(404, "not_found");
    server
        .bearer("DELETE", &unknown, &own, None, &[])
        .await
        .assert_error(404, "not_found");

    // A token without the consents scope, and no token at all.
    let payments = server.client_token(CLIENT, "payments").await;
    let reply = server.bearer("GET", &path, &payments, None, &[]).await;
    reply.assert_error(403, "insufficient_scope");
    assert!(reply.headers["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("scope=\"consents\""));
    let reply = server.get(&path).await;
    reply.assert_error(401, "invalid_token");
    assert!(reply.headers.contains_key("x-fapi-interaction-id"));
    let reply = server
        .bearer(
            "POST",
            CONSENTS,
            "not-a-token",
            Some(&accounts_body(&["ACCOUNTS_READ"])),
            &[],
        )
        .await;
    reply.assert_error(401, "invalid_token");
}

#[tokio::test]
async fn a_consent_not_authorised_within_the_hour_is_rejected() {
    let server = server().await;
    let id = server.create_consent(CLIENT, &payment_body("5.00")).await;
    server.clock.advance(3599);
    assert_eq!(
        server.read_consent(CLIENT, &id).await["status"],
        "AwaitingAuthorisation"
    );
    server.clock.advance(1);
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Rejected");
    assert_eq!(data["statusUpdateDateTime"], "2027-01-15T09:00:00Z");
    assert_eq!(
        data["rejection"],
        json!({"rejectedBy": "ASPSP", "reason": {"code": "CONSENT_EXPIRED"}})
    );
    let token = server.client_token(CLIENT, "consents").await;
    server
        .bearer("DELETE", &consent_path(&id), &token, None, &[])
        .await
        .assert_error(422, "consent_status_invalid");
}

#[tokio::test]
async fn discovery_names_the_consents_scope_and_the_intent_claim() {
    let server = TestServer::new().await;
    let doc = server.get("/.well-known/openid-configuration").await.json;
    assert!(
        doc["scopes_supported"].as_array().unwrap().contains(&json!("consents")),
        "{doc}"
    );
    assert!(
        doc["claims_supported"]
            .as_array()
            .unwrap()
            .contains(&json!("openbanking_intent_id")),
        "{doc}"
    );
    assert_eq!(doc["claims_parameter_supported"], true);
}
