//! Consents in the browser flow: named by the `openbanking_intent_id` claim (UK
//! Open Banking) or the `consent:{consentId}` scope (Open Finance Brasil),
//! shown on the consent page, authorised or rejected by the user, bound to the
//! tokens, consumed by the payment, revoked with the tokens.

use serde_json::json;

use crate::browser_support::{authorize_path, claims, redeem, Browser, Live, CHALLENGE, VERIFIER};
use crate::consent_support::{accounts_body, consent_path, intent_claims, payment, payment_body, CLIENT};
use crate::support::TestServer;

async fn server() -> (TestServer, Live) {
    let server = TestServer::new().await;
    server.add_consent_client(CLIENT).await;
    server.add_consent_client("other").await;
    server.add_password_user("alice").await;
    let live = server.live().await;
    (server, live)
}

/// Runs the browser flow with `extra` parameters to the consent page; returns it.
async fn consent_page(live: &Live, extra: &[(&str, &str)]) -> (Browser, crate::browser_support::Page) {
    let mut browser = Browser::new(live);
    let login = browser.get(&authorize_path(CLIENT, extra)).await;
    assert_eq!(login.status, 200, "{}", login.text);
    let after_login = browser.login(&login, "alice", crate::browser_support::PASSWORD).await;
    assert_eq!(after_login.status, 303, "{}", after_login.text);
    let consent = browser.get(&after_login.location().unwrap()).await;
    assert_eq!(consent.status, 200, "{}", consent.text);
    (browser, consent)
}

#[tokio::test]
async fn a_uk_payment_consent_is_authorised_consumed_once_and_named_in_the_id_token() {
    let (server, live) = server().await;
    let id = server.create_consent(CLIENT, &payment_body("12.50")).await;
    let claims_param = intent_claims(&id);
    let (mut browser, page) = consent_page(&live, &[("scope", "openid payments"), ("claims", &claims_param)]).await;
    assert!(
        page.text
            .contains("Pay <strong>EUR 12.50</strong> to <strong>Demo Shop</strong>"),
        "{}",
        page.text
    );
    assert!(page.text.contains(&id), "{}", page.text);

    let redirect = browser.decide(&page, "approve").await.redirect_params();
    let code = redirect.get("code").expect("a code").clone();
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Authorised");

    let (status, tokens) = redeem(&live, CLIENT, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())["openbanking_intent_id"],
        id.as_str()
    );
    let token = tokens["access_token"].as_str().unwrap();

    // The payment the consent names, once.
    let paid = server
        .bearer(
            "POST",
            "/api/payments",
            token,
            Some(&payment("12.50")),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Consumed");
    // A retry with the same key gets the same receipt; a second payment is refused.
    let retry = server
        .bearer(
            "POST",
            "/api/payments",
            token,
            Some(&payment("12.50")),
            &[("idempotency-key", "k-1")],
        )
        .await;
    assert_eq!((retry.status.as_u16(), &retry.json), (201, &paid.json));
    let again = server
        .bearer(
            "POST",
            "/api/payments",
            token,
            Some(&payment("12.50")),
            &[("idempotency-key", "k-2")],
        )
        .await;
    again.assert_error(409, "payment_already_executed");
    // Another amount than the consent's is a mismatch.
    let other = server
        .bearer(
            "POST",
            "/api/payments",
            token,
            Some(&payment("99.00")),
            &[("idempotency-key", "k-3")],
        )
        .await;
    other.assert_error(403, "payment_mismatch");
    // A consumed consent can be neither revoked nor authorised again.
    let admin = server.client_token(CLIENT, "consents").await;
    server
        .bearer("DELETE", &consent_path(&id), &admin, None, &[])
        .await
        .assert_error(422, "consent_status_invalid");
    let mut browser = Browser::new(&live);
    let refused = browser
        .get(&authorize_path(
            CLIENT,
            &[("scope", "openid payments"), ("claims", &claims_param)],
        ))
        .await
        .redirect_params();
    assert_eq!(refused["error"], "invalid_request", "{refused:?}");
    assert!(refused["error_description"].contains("Consumed"), "{refused:?}");
}

#[tokio::test]
async fn denying_rejects_the_consent_and_bad_references_are_refused() {
    let (server, live) = server().await;
    let id = server.create_consent(CLIENT, &payment_body("3.00")).await;
    let scope = format!("openid payments consent:{id}");
    let (mut browser, page) = consent_page(&live, &[("scope", &scope)]).await;
    assert!(page.text.contains("act on the consent below"), "{}", page.text);
    let denied = browser.decide(&page, "deny").await.redirect_params();
    assert_eq!(denied["error"], "access_denied");
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Rejected");
    assert_eq!(data["rejection"]["reason"]["code"], "CUSTOMER_MANUALLY_REJECTED");

    // A rejected consent, another client's, an unknown one, two of them: invalid_scope.
    let foreign = server.create_consent("other", &payment_body("3.00")).await;
    let fresh = server.create_consent(CLIENT, &payment_body("3.00")).await;
    for (scope, says) in [
        (format!("openid consent:{id}"), "Rejected"),
        (format!("openid consent:{foreign}"), "unknown"),
        ("openid consent:urn:outband:nope".to_owned(), "unknown"),
        (format!("openid consent:{fresh} consent:{id}"), "one"),
    ] {
        let mut browser = Browser::new(&live);
        let refused = browser
            .get(&authorize_path(CLIENT, &[("scope", &scope)]))
            .await
            .redirect_params();
        assert_eq!(refused["error"], "invalid_scope", "{scope}: {refused:?}");
        assert!(refused["error_description"].contains(says), "{scope}: {refused:?}");
    }
    // The claim naming another consent than the scope, or a claim without a value.
    let mismatch = intent_claims(&id);
    let scope = format!("openid consent:{fresh}");
    let mut browser = Browser::new(&live);
    let refused = browser
        .get(&authorize_path(CLIENT, &[("scope", &scope), ("claims", &mismatch)]))
        .await
        .redirect_params();
    assert_eq!(refused["error"], "invalid_request", "{refused:?}");
    let no_value = json!({"id_token": {"openbanking_intent_id": {"essential": true}}}).to_string();
    let refused = browser
        .get(&authorize_path(CLIENT, &[("scope", "openid"), ("claims", &no_value)]))
        .await
        .redirect_params();
    assert_eq!(refused["error"], "invalid_request", "{refused:?}");

    // At /par too, in JSON.
    let reply = reqwest::Client::new()
        .post(format!("{}/par", live.base))
        .basic_auth(CLIENT, Some(format!("{CLIENT}-secret")))
        .form(&[
            ("response_type", "code"),
            ("redirect_uri", crate::browser_support::REDIRECT_URI),
            ("scope", &format!("openid consent:{foreign}")),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 400);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["error"], "invalid_scope", "{body}");
}

#[tokio::test]
async fn an_accounts_consent_limits_the_token_and_revoking_it_kills_the_token() {
    let (server, live) = server().await;
    let id = server
        .create_consent(CLIENT, &accounts_body(&["ACCOUNTS_READ", "RESOURCES_READ"]))
        .await;
    let scope = format!("openid accounts consent:{id}");
    let (mut browser, page) = consent_page(&live, &[("scope", &scope)]).await;
    assert!(
        page.text.contains("See your account data: your accounts"),
        "{}",
        page.text
    );
    let code = browser.decide(&page, "approve").await.redirect_params()["code"].clone();
    let (status, tokens) = redeem(&live, CLIENT, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(claims(tokens["id_token"].as_str().unwrap())
        .get("openbanking_intent_id")
        .is_none());
    let token = tokens["access_token"].as_str().unwrap();
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Authorised");

    let accounts = server.bearer("GET", "/api/accounts", token, None, &[]).await;
    assert_eq!(accounts.status, 200, "{}", accounts.text);
    let account = accounts.json["accounts"][0]["account_id"].as_str().unwrap().to_owned();
    // Balances need ACCOUNTS_BALANCES_READ, which this consent lacks.
    let balances = server
        .bearer("GET", &format!("/api/accounts/{account}/balances"), token, None, &[])
        .await;
    balances.assert_error(403, "consent_permission_missing");

    // Revoked: the consent says so, and its token is dead.
    let admin = server.client_token(CLIENT, "consents").await;
    let deleted = server.bearer("DELETE", &consent_path(&id), &admin, None, &[]).await;
    assert_eq!(deleted.status, 204, "{}", deleted.text);
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Revoked");
    assert_eq!(data["rejection"]["reason"]["code"], "CUSTOMER_MANUALLY_REVOKED");
    server
        .bearer("GET", "/api/accounts", token, None, &[])
        .await
        .assert_error(401, "invalid_token");
    server
        .bearer("DELETE", &consent_path(&id), &admin, None, &[])
        .await
        .assert_error(422, "consent_status_invalid");
}

#[tokio::test]
async fn an_authorised_consent_past_its_expiration_no_longer_works() {
    let (server, live) = server().await;
    let mut body = accounts_body(&["ACCOUNTS_READ"]);
    body["data"]["expirationDateTime"] = json!("2027-01-15T08:02:00Z");
    let id = server.create_consent(CLIENT, &body).await;
    let scope = format!("openid accounts consent:{id}");
    let (mut browser, page) = consent_page(&live, &[("scope", &scope)]).await;
    assert!(page.text.contains("Until 2027-01-15T08:02:00Z"), "{}", page.text);
    let code = browser.decide(&page, "approve").await.redirect_params()["code"].clone();
    let (_, tokens) = redeem(&live, CLIENT, &code, Some(VERIFIER)).await;
    let token = tokens["access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        server.bearer("GET", "/api/accounts", &token, None, &[]).await.status,
        200
    );

    // Two minutes on the token (five-minute lifetime) still works; its consent does not.
    server.clock.advance(120);
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Expired");
    assert_eq!(data["statusUpdateDateTime"], "2027-01-15T08:02:00Z");
    server
        .bearer("GET", "/api/accounts", &token, None, &[])
        .await
        .assert_error(403, "consent_not_authorised");
}

#[tokio::test]
async fn the_hybrid_flow_names_the_intent_in_the_front_channel_id_token() {
    let (server, live) = server().await;
    let id = server
        .create_consent(CLIENT, &accounts_body(&["ReadAccountsBasic"]))
        .await;
    let claims_param = intent_claims(&id);
    let (mut browser, page) = consent_page(
        &live,
        &[
            ("scope", "openid accounts"),
            ("response_type", "code id_token"),
            ("claims", &claims_param),
        ],
    )
    .await;
    let decided = browser.decide(&page, "approve").await;
    let location = url::Url::parse(&decided.location().unwrap()).unwrap();
    let fragment: std::collections::BTreeMap<String, String> =
        url::form_urlencoded::parse(location.fragment().unwrap_or_default().as_bytes())
            .into_owned()
            .collect();
    let id_token = fragment.get("id_token").expect("an ID token in the fragment");
    assert_eq!(claims(id_token)["openbanking_intent_id"], id.as_str());
    assert_eq!(server.read_consent(CLIENT, &id).await["status"], "Authorised");
}

/// The user revokes the grant on the account page: the consent it carries is
/// revoked with it (the consent API says `Revoked`, not `Authorised`).
#[tokio::test]
async fn revoking_the_grant_revokes_its_consent() {
    let (server, live) = server().await;
    let id = server.create_consent(CLIENT, &accounts_body(&["ACCOUNTS_READ"])).await;
    let scope = format!("openid accounts consent:{id}");
    let (mut browser, page) = consent_page(&live, &[("scope", &scope)]).await;
    let code = browser.decide(&page, "approve").await.redirect_params()["code"].clone();
    let (status, tokens) = redeem(&live, CLIENT, &code, Some(VERIFIER)).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(server.read_consent(CLIENT, &id).await["status"], "Authorised");

    let account = browser.get("/account").await;
    let (grant_id, csrf) = (account.hidden("grant_id"), account.hidden("csrf"));
    let revoked = browser
        .post("/account/revoke-grant", &[("grant_id", &grant_id), ("csrf", &csrf)])
        .await;
    assert_eq!(revoked.status, 303, "{}", revoked.text);
    let data = server.read_consent(CLIENT, &id).await;
    assert_eq!(data["status"], "Revoked", "{data}");
    assert_eq!(data["rejection"]["reason"]["code"], "CUSTOMER_MANUALLY_REVOKED");
}
