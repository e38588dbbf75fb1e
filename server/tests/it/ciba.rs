//! CIBA in poll mode: the backchannel authentication endpoint, every error of
//! CIBA Core §13 and §11, slow_down, expiry, cancellation, races.

use outband_protocol::jose::{verify_jwt, UnverifiedJwt};
use outband_protocol::{DeliveryMode, SigningAlg};
use outband_server::store::{CibaState, TestDecision};
use serde_json::json;

use crate::support::{TestServer, ISSUER, T0};

const POS: &str = "pos";

async fn server() -> TestServer {
    let server = TestServer::new().await;
    server.add_ciba_client(POS, DeliveryMode::Poll, None).await;
    server.add_user("alice", None).await;
    server
}

async fn start(server: &TestServer, body: &str) -> String {
    let reply = server.bc_authorize(POS, body).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    reply.json["auth_req_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn poll_mode_from_request_to_tokens() {
    let server = server().await;
    let reply = server
        .bc_authorize(
            POS,
            "scope=openid%20payments&login_hint=alice%40example.com&binding_message=CAFE-7Q2K",
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["expires_in"], 120);
    assert_eq!(reply.json["interval"], 5);
    let auth_req_id = reply.json["auth_req_id"].as_str().unwrap().to_owned();
    assert!(auth_req_id.len() >= 22, "at least 128 bits");
    let stored = server.ciba_request(&auth_req_id).await;
    assert_ne!(stored.auth_req_id_hash, auth_req_id, "only the hash is stored");
    assert_eq!(stored.binding_message.as_deref(), Some("CAFE-7Q2K"));

    server
        .poll(POS, &auth_req_id)
        .await
        .assert_error(400, "authorization_pending");
    server.decide(&auth_req_id, true).await;
    server.clock.advance(1);
    let tokens = server.poll(POS, &auth_req_id).await;
    assert_eq!(tokens.status, 200, "{}", tokens.text);
    assert_eq!(tokens.json["token_type"], "Bearer");
    assert_eq!(tokens.json["scope"], "openid payments");
    let keys = server.jwks().await;
    let id_token = verify_jwt(tokens.json["id_token"].as_str().unwrap(), &keys, &[SigningAlg::RS256]).unwrap();
    assert_eq!(id_token.claims["iss"], ISSUER);
    assert_eq!(id_token.claims["sub"], "sub-alice");
    assert_eq!(id_token.claims["aud"], POS);
    assert_eq!(id_token.claims["amr"], json!(["hwk", "pin"]));
    assert_eq!(id_token.claims["auth_time"], T0);
    assert!(id_token.claims["at_hash"].is_string());
    let access = verify_jwt(
        tokens.json["access_token"].as_str().unwrap(),
        &keys,
        &[SigningAlg::ES256],
    )
    .unwrap();
    assert_eq!(access.claims["sub"], "sub-alice");

    let again = server.poll(POS, &auth_req_id).await;
    again.assert_error(400, "invalid_grant");
}

#[tokio::test]
async fn slow_down_adds_five_seconds_and_never_delays_a_decided_request() {
    let server = server().await;
    let id = start(&server, "scope=openid&login_hint=alice").await;
    server.poll(POS, &id).await.assert_error(400, "authorization_pending");
    server.poll(POS, &id).await.assert_error(400, "slow_down");
    assert_eq!(server.ciba_request(&id).await.interval, 10);
    server.clock.advance(6);
    server.poll(POS, &id).await.assert_error(400, "slow_down");
    server.clock.advance(15);
    server.poll(POS, &id).await.assert_error(400, "authorization_pending");
    server.decide(&id, true).await;
    assert_eq!(
        server.poll(POS, &id).await.status,
        200,
        "a decided request is answered whatever the timing"
    );
}

#[tokio::test]
async fn expiry_denial_and_cancellation() {
    let server = server().await;
    let expired = start(&server, "scope=openid&login_hint=alice&requested_expiry=30").await;
    assert_eq!(server.ciba_request(&expired).await.expires_at, T0 + 30);
    server.clock.advance(31);
    server.poll(POS, &expired).await.assert_error(400, "expired_token");
    assert_eq!(
        outband_server::ciba::lifecycle::expire_due(&server.state)
            .await
            .unwrap(),
        1
    );
    server.poll(POS, &expired).await.assert_error(400, "expired_token");

    let denied = start(&server, "scope=openid&login_hint=alice").await;
    server.decide(&denied, false).await;
    server.poll(POS, &denied).await.assert_error(400, "access_denied");

    let cancelled = start(&server, "scope=openid&login_hint=alice").await;
    let creds = Some((POS, "pos-secret"));
    let reply = server
        .post_form("/bc-authorize/cancel", &format!("auth_req_id={cancelled}"), creds)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    server.poll(POS, &cancelled).await.assert_error(400, "access_denied");
    let again = server
        .post_form("/bc-authorize/cancel", &format!("auth_req_id={cancelled}"), creds)
        .await;
    assert_eq!(again.status, 409, "{}", again.text);
    let request = server.ciba_request(&cancelled).await;
    let decision = outband_server::store::CibaDecision {
        approve: true,
        device_id: None,
        amr: None,
        acr: None,
        deny_reason: None,
    };
    let late = outband_server::ciba::lifecycle::decide(&server.state, &request.id, &decision).await;
    assert!(late.is_err(), "a cancelled request cannot be approved");
}

#[tokio::test]
async fn an_approved_request_is_not_redeemed_after_it_expired() {
    let server = server().await;
    let id = start(&server, "scope=openid%20payments&login_hint=alice&requested_expiry=30").await;
    server.decide(&id, true).await;
    // CIBA Core §7.3: at `expires_in` the auth_req_id is spent, approved or not.
    server.clock.advance(30);
    server.poll(POS, &id).await.assert_error(400, "expired_token");
    server.clock.advance(60);
    server.poll(POS, &id).await.assert_error(400, "expired_token");
    let request = server.ciba_request(&id).await;
    assert_eq!(request.state, CibaState::Approved, "not redeemed");
    assert_eq!(request.redeemed_at, None);
    // The store's redemption refuses it too, whoever asks.
    let hash = outband_protocol::AuthReqId::new(id.as_str()).hash();
    let redeemed = server
        .state
        .store
        .redeem_ciba_request(&hash, &outband_protocol::ClientId::new(POS), T0 + 30)
        .await
        .unwrap();
    assert_eq!(redeemed, None);
    let tokens = server
        .state
        .store
        .revoke_tokens_of_subject(&outband_protocol::Subject::new("sub-alice"))
        .await
        .unwrap();
    assert_eq!(tokens, 0, "no token was stored");
}

#[tokio::test]
async fn a_requested_expiry_above_the_maximum_is_cut_to_it() {
    let server = server().await;
    let reply = server
        .bc_authorize(POS, "scope=openid&login_hint=alice&requested_expiry=3600")
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["expires_in"], outband_server::ciba::lifecycle::MAX_EXPIRY);
    let id = reply.json["auth_req_id"].as_str().unwrap();
    assert_eq!(
        server.ciba_request(id).await.expires_at,
        T0 + outband_server::ciba::lifecycle::MAX_EXPIRY
    );
    let reply = server
        .bc_authorize(POS, "scope=openid&login_hint=alice&requested_expiry=600")
        .await;
    assert_eq!(reply.json["expires_in"], 600, "{}", reply.text);
    let reply = server
        .bc_authorize(POS, "scope=openid&login_hint=alice&requested_expiry=45")
        .await;
    assert_eq!(reply.json["expires_in"], 45, "{}", reply.text);
}

#[tokio::test]
async fn bc_authorize_errors() {
    let server = server().await;
    server.add_user("locked", None).await;
    server
        .state
        .store
        .set_user_locked(&outband_protocol::Subject::new("sub-locked"), true)
        .await
        .unwrap();
    let cases = [
        ("login_hint=alice", 400, "invalid_request"),
        ("scope=payments&login_hint=alice", 400, "invalid_scope"),
        ("scope=openid%20admin&login_hint=alice", 400, "invalid_scope"),
        ("scope=openid", 400, "invalid_request"),
        ("scope=openid&login_hint=alice&id_token_hint=x", 400, "invalid_request"),
        ("scope=openid&login_hint=nobody", 400, "unknown_user_id"),
        ("scope=openid&login_hint=locked", 403, "access_denied"),
        ("scope=openid&login_hint=alice&binding_message=", 200, ""),
        ("scope=openid&login_hint=alice&binding_message=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", 400, "invalid_binding_message"),
        ("scope=openid&login_hint=alice&binding_message=a%0Ab", 400, "invalid_binding_message"),
        ("scope=openid&login_hint=alice&requested_expiry=1000", 200, ""),
        ("scope=openid&login_hint=alice&requested_expiry=soon", 400, "invalid_request"),
        ("scope=openid&login_hint=alice&requested_expiry=0", 400, "invalid_request"),
        ("scope=openid&login_hint=alice&requested_expiry=-30", 400, "invalid_request"),
        ("scope=openid&login_hint=alice&requested_expiry=1.5", 400, "invalid_request"),
        ("scope=openid&login_hint=alice&authorization_details=%7B", 400, "invalid_authorization_details"),
        ("scope=openid&login_hint=alice&id_token_hint=garbage&login_hint_token=x", 400, "invalid_request"),
        ("scope=openid&id_token_hint=garbage", 400, "invalid_request"),
    ];
    for (body, status, code) in cases {
        let reply = server.bc_authorize(POS, body).await;
        assert_eq!(reply.status.as_u16(), status, "{body}: {}", reply.text);
        if !code.is_empty() {
            assert_eq!(reply.json["error"], code, "{body}");
        }
    }
    let bad_auth = server
        .post_form("/bc-authorize", "scope=openid&login_hint=alice", Some((POS, "wrong")))
        .await;
    bad_auth.assert_error(401, "invalid_client");
    server
        .add_secret_client(
            "cc-only",
            "pw-cc",
            outband_protocol::TokenEndpointAuthMethod::ClientSecretBasic,
            "",
        )
        .await;
    let reply = server
        .post_form(
            "/bc-authorize",
            "scope=openid&login_hint=alice",
            Some(("cc-only", "pw-cc")),
        )
        .await;
    reply.assert_error(400, "unauthorized_client");
}

#[tokio::test]
async fn token_endpoint_errors_for_the_ciba_grant() {
    let server = server().await;
    server.add_ciba_client("other", DeliveryMode::Poll, None).await;
    let id = start(&server, "scope=openid&login_hint=alice").await;
    server
        .poll(POS, "not-a-request")
        .await
        .assert_error(400, "invalid_grant");
    server.poll("other", &id).await.assert_error(400, "invalid_grant");
    server.poll(POS, &id).await.assert_error(400, "authorization_pending");
}

#[tokio::test]
async fn a_user_locked_after_approval_gets_no_tokens() {
    let server = server().await;
    let id = start(&server, "scope=openid&login_hint=alice").await;
    server.decide(&id, true).await;
    server
        .state
        .store
        .set_user_locked(&outband_protocol::Subject::new("sub-alice"), true)
        .await
        .unwrap();
    server.poll(POS, &id).await.assert_error(400, "access_denied");
}

#[tokio::test]
async fn concurrent_polls_redeem_exactly_once() {
    let server = server().await;
    let id = start(&server, "scope=openid&login_hint=alice").await;
    server.decide(&id, true).await;
    let polls = (0..8).map(|_| server.poll(POS, &id));
    let replies = futures::future::join_all(polls).await;
    let ok = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        replies.iter().map(|r| r.text.clone()).collect::<Vec<_>>()
    );
    assert!(replies
        .iter()
        .filter(|r| r.status != 200)
        .all(|r| r.json["error"] == "invalid_grant"));
}

#[tokio::test]
async fn test_users_answer_by_themselves_in_development() {
    let server = server().await;
    server.add_user("bob", Some(TestDecision::Approve)).await;
    server.add_user("carol", Some(TestDecision::Deny)).await;
    let bob = start(&server, "scope=openid&login_hint=bob").await;
    assert_eq!(server.poll(POS, &bob).await.status, 200);
    let carol = start(&server, "scope=openid&login_hint=carol").await;
    server.poll(POS, &carol).await.assert_error(400, "access_denied");
}

#[tokio::test]
async fn id_token_hint_from_an_earlier_login() {
    let server = server().await;
    server.add_ciba_client("other", DeliveryMode::Poll, None).await;
    let first = start(&server, "scope=openid&login_hint=alice").await;
    server.decide(&first, true).await;
    let id_token = server.poll(POS, &first).await.json["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    server.clock.advance(3600);
    let again = server
        .bc_authorize(POS, &format!("scope=openid&id_token_hint={id_token}"))
        .await;
    assert_eq!(again.status, 200, "an expired ID token is still a hint: {}", again.text);
    let foreign = server
        .bc_authorize("other", &format!("scope=openid&id_token_hint={id_token}"))
        .await;
    foreign.assert_error(400, "invalid_request");
}

#[tokio::test]
async fn the_device_display_jwt_says_what_is_asked() {
    let server = server().await;
    let details = r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"12.50"},"creditorName":"Corner Café"}]"#;
    let body = format!(
        "scope=openid%20payments&login_hint=alice&binding_message=CAFE-7Q2K&authorization_details={}",
        url::form_urlencoded::byte_serialize(details.as_bytes()).collect::<String>()
    );
    let id = start(&server, &body).await;
    let stored = server.ciba_request(&id).await;
    let jwt = verify_jwt(&stored.request_jwt, &server.jwks().await, &[SigningAlg::ES256]).unwrap();
    assert_eq!(
        UnverifiedJwt::decode(&stored.request_jwt).unwrap().typ(),
        Some("outband-ciba-request+jwt")
    );
    assert_eq!(jwt.claims["binding_message"], "CAFE-7Q2K");
    assert_eq!(jwt.claims["client_name"], "pos shop");
    assert_eq!(
        jwt.claims["authorization_details"][0]["instructedAmount"]["amount"],
        "12.50"
    );
    assert_eq!(jwt.claims["sub"], "sub-alice");
    assert_eq!(jwt.claims["exp"], T0 + 120);
}

#[tokio::test]
async fn pending_requests_per_client_are_bounded() {
    use outband_server::ciba::lifecycle::MAX_PENDING_PER_CLIENT;
    let server = server().await;
    let template = server
        .ciba_request(&start(&server, "scope=openid&login_hint=alice").await)
        .await;
    // Fill the client's quota directly in the store (a thousand HTTP calls would only slow the test).
    for i in 1..MAX_PENDING_PER_CLIENT {
        let mut record = template.clone();
        record.id = format!("filler-{i}");
        record.auth_req_id_hash = format!("filler-hash-{i}");
        server.state.store.insert_ciba_request(&record).await.unwrap();
    }
    let reply = server.bc_authorize(POS, "scope=openid&login_hint=alice").await;
    reply.assert_error(429, "temporarily_unavailable");
    server.clock.advance(121);
    assert_eq!(
        server.bc_authorize(POS, "scope=openid&login_hint=alice").await.status,
        200,
        "expired ones do not count"
    );
}

#[tokio::test]
async fn number_matching_clients_get_a_number_to_show() {
    let server = server().await;
    let mut client = server
        .state
        .store
        .client(&outband_protocol::ClientId::new(POS))
        .await
        .unwrap()
        .unwrap();
    client.metadata.number_matching = true;
    server.state.store.update_client(&client).await.unwrap();
    let reply = server.bc_authorize(POS, "scope=openid&login_hint=alice").await;
    let number = reply.json["number_match"].as_str().unwrap().to_owned();
    assert!(
        number.len() == 2 && number.chars().all(|c| c.is_ascii_digit()),
        "{number}"
    );
    let request = server.ciba_request(reply.json["auth_req_id"].as_str().unwrap()).await;
    assert_eq!(request.number_match.as_deref(), Some(number.as_str()));
    let shown = UnverifiedJwt::decode(&request.request_jwt).unwrap();
    assert_eq!(shown.claims["number_matching"], true);
    assert!(
        shown.claims.get("number_match").is_none(),
        "the device is not told the number"
    );
    assert!(
        !shown.claims.values().any(|v| v.as_str() == Some(number.as_str())),
        "nor under another name"
    );
    use outband_server::ciba::lifecycle::check_number_match;
    assert!(check_number_match(&request, true, Some(&number)).is_ok());
    assert!(check_number_match(&request, true, Some("00")).is_err());
    assert!(check_number_match(&request, true, None).is_err());
    assert!(
        check_number_match(&request, false, None).is_ok(),
        "denying never needs the number"
    );
}
