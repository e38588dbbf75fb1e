//! Decisions: approve (the client gets tokens), deny, deny as fraud, the PIN,
//! expiry, and the local history.

use outband_authenticator_core::{Decision, Error, Pin};
use outband_server::store::CibaState;

use crate::support::{enrolled, payment, pin, request_id, server};

#[tokio::test]
async fn approving_with_the_pin_gives_the_client_its_tokens() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let auth_req_id = server
        .bc_authorize("pos", "alice", Some("CAFE-7Q2K"), Some(&payment()))
        .await;

    let pending = session.pending().await.unwrap();
    assert_eq!(pending.len(), 1);
    let request = &pending[0];
    assert_eq!(request.id, request_id(&server, &auth_req_id).await);
    assert_eq!(request.client_id, "pos");
    assert_eq!(request.client_name.as_deref(), Some("Corner Café"));
    assert_eq!(request.binding_message.as_deref(), Some("CAFE-7Q2K"));
    assert_eq!(request.scope.as_deref(), Some("openid payments"));
    let payment = request.payment.as_ref().unwrap();
    assert_eq!(payment.display_amount(), "EUR 12.50");
    assert_eq!(payment.creditor_name.as_deref(), Some("Corner Café"));
    assert_eq!(payment.creditor_iban.as_deref(), Some("DE89370400440532013000"));
    assert_eq!(request.expires_at, server.now() + 120);

    // No PIN, or a wrong one: nothing is decided.
    let no_pin = session.decide(request, Decision::Approve, None, None).await;
    assert!(matches!(no_pin, Err(Error::PinRequired)), "{no_pin:?}");
    let wrong = session
        .decide(request, Decision::Approve, Some(&Pin::new("1357").unwrap()), None)
        .await;
    assert!(matches!(wrong, Err(Error::WrongPin)), "{wrong:?}");
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Pending);
    let (status, body) = server.poll_token("pos", &auth_req_id).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("authorization_pending")));
    assert!(authenticator.history().unwrap().is_empty());

    let outcome = session
        .decide(request, Decision::Approve, Some(&pin()), None)
        .await
        .unwrap();
    assert_eq!(
        (outcome.id.as_str(), outcome.state.as_str()),
        (request.id.as_str(), "approved")
    );
    let stored = server.request(&auth_req_id).await;
    assert_eq!(stored.device_id.as_deref(), Some(account.id.0.as_str()));
    assert_eq!(stored.amr.as_deref(), Some("[\"hwk\",\"pin\"]"));
    server.clock.advance(5);
    let (status, tokens) = server.poll_token("pos", &auth_req_id).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()));
    assert!(tokens["id_token"].is_string());
    assert!(session.pending().await.unwrap().is_empty());

    // Deciding again: the server says it is over; the history keeps both.
    let again = session.decide(request, Decision::Approve, Some(&pin()), None).await;
    assert!(matches!(again, Err(Error::RequestGone(_))), "{again:?}");
    let history = authenticator.history().unwrap();
    assert_eq!(history.len(), 2);
    assert!(history[0].outcome.starts_with("conflict"), "{}", history[0].outcome);
    assert_eq!(history[1].outcome, "approved");
    assert_eq!(history[1].decision, Decision::Approve);
    assert_eq!(history[1].request_id, request.id);
    assert_eq!(history[1].binding_message.as_deref(), Some("CAFE-7Q2K"));
    assert_eq!(history[1].payment.as_ref().unwrap().amount, "12.50");
}

#[tokio::test]
async fn denying_and_reporting_fraud_refuse_the_client() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let plain = server.bc_authorize("pos", "alice", Some("DENY-0001"), None).await;
    let fraud = server
        .bc_authorize("pos", "alice", Some("FRAU-0002"), Some(&payment()))
        .await;
    let pending = session.pending().await.unwrap();
    assert_eq!(pending.len(), 2);
    let by_message = |message: &str| {
        pending
            .iter()
            .find(|r| r.binding_message.as_deref() == Some(message))
            .unwrap()
    };

    // Denying needs no PIN.
    let denied = session
        .decide(by_message("DENY-0001"), Decision::Deny, None, None)
        .await
        .unwrap();
    assert_eq!(denied.state, "denied");
    let reported = session
        .decide(by_message("FRAU-0002"), Decision::DenyFraud, Some(&pin()), None)
        .await
        .unwrap();
    assert_eq!(reported.state, "denied");

    for auth_req_id in [&plain, &fraud] {
        let (status, body) = server.poll_token("pos", auth_req_id).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
    }
    assert_eq!(server.request(&plain).await.amr.as_deref(), Some("[\"hwk\"]"));
    assert_ne!(server.request(&plain).await.deny_reason.as_deref(), Some("fraud"));
    assert_eq!(server.request(&fraud).await.deny_reason.as_deref(), Some("fraud"));

    let history = authenticator.history().unwrap();
    let decisions: Vec<_> = history.iter().map(|h| (h.decision, h.outcome.as_str())).collect();
    assert_eq!(decisions, [(Decision::DenyFraud, "denied"), (Decision::Deny, "denied")]);
}

#[tokio::test]
async fn an_expired_request_cannot_be_approved() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let auth_req_id = server.bc_authorize("pos", "alice", Some("LATE-0001"), None).await;
    let request = session.pending().await.unwrap().pop().unwrap();

    server.clock.advance(121);
    let late = session.decide(&request, Decision::Approve, Some(&pin()), None).await;
    assert!(matches!(late, Err(Error::RequestExpired)), "{late:?}");
    assert!(session.pending().await.unwrap().is_empty());
    assert!(session.verify(&request.request_jwt).await.is_err(), "no longer shown");
    let (status, body) = server.poll_token("pos", &auth_req_id).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("expired_token")), "{body}");
    assert!(authenticator.history().unwrap().is_empty());
}
