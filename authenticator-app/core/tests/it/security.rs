//! What must never happen: a tampered request shown, a revoked device that
//! keeps going, an account removed here but still live at the server.

use outband_authenticator_core::{Decision, Error, Pin, WatchEnd, WatchEvent};

use crate::support::{enrolled, payment, pin, request_id, server, watch, WAIT};

#[tokio::test]
async fn a_tampered_request_is_rejected_and_never_shown() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let mut watching = watch(&session);
    watching.connected().await;
    let genuine = server
        .bc_authorize("pos", "alice", Some("CAFE-7Q2K"), Some(&payment()))
        .await;
    let genuine_id = request_id(&server, &genuine).await;
    watching.request(&genuine_id).await;

    // The same request with a bigger amount and the AS's original signature.
    let forged_id = server
        .forge_request(&genuine, |claims| {
            claims["authorization_details"][0]["instructedAmount"]["amount"] = "9999.00".into();
        })
        .await;
    let (error, skipped) = watching
        .until(|e| match e {
            WatchEvent::Rejected { id, error, .. } if *id == forged_id => Some(error.clone()),
            _ => None,
        })
        .await;
    assert!(error.contains("signature"), "{error}");
    assert!(
        !skipped
            .iter()
            .any(|e| matches!(e, WatchEvent::Request { request } if request.id == forged_id)),
        "{skipped:?}"
    );

    // The pending list shows only the genuine one; verifying the forgery fails.
    let pending = session.pending().await.unwrap();
    let ids: Vec<_> = pending.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, [genuine_id.as_str()]);
    let id = forged_id.clone();
    let forged = server
        .on_server(|state| async move { state.store.ciba_request(&id).await.unwrap().unwrap() })
        .await;
    let forged_jwt = forged.request_jwt;
    assert!(matches!(session.verify(&forged_jwt).await, Err(Error::Verification(_))));

    // A request JWT for another user is refused too.
    server.add_user("bob").await;
    let bobs = server.bc_authorize("pos", "bob", Some("BOB-0001"), None).await;
    let bobs_jwt = server.request(&bobs).await.request_jwt;
    assert!(matches!(session.verify(&bobs_jwt).await, Err(Error::Verification(_))));
}

#[tokio::test]
async fn a_revoked_device_stops_and_says_so() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let auth_req_id = server.bc_authorize("pos", "alice", Some("LOST-0001"), None).await;
    let mut watching = watch(&session);
    let request = watching.request(&request_id(&server, &auth_req_id).await).await;

    server.revoke_device(&account.id.0).await;
    let (revoked, _) = watching
        .until(|e| match e {
            WatchEvent::Revoked { account } => Some(account.clone()),
            _ => None,
        })
        .await;
    assert_eq!(revoked, account.id);
    let ended = tokio::time::timeout(WAIT, watching.task).await.unwrap().unwrap();
    assert_eq!(ended, WatchEnd::Revoked);
    assert!(
        authenticator.account(&account.id).unwrap().revoked,
        "written down locally"
    );

    // Nothing more: no list, no decision, a new watch ends at once.
    assert!(matches!(session.pending().await, Err(Error::Revoked)));
    let approve = session.decide(&request, Decision::Approve, Some(&pin()), None).await;
    assert!(matches!(approve, Err(Error::Revoked)), "{approve:?}");
    assert_eq!(server.request(&auth_req_id).await.device_id, None);
    let again = authenticator.unlock(&account.id, &pin()).unwrap();
    let mut rewatch = watch(&again);
    assert!(matches!(rewatch.next().await, WatchEvent::Revoked { .. }));
    assert!(matches!(
        again.decide(&request, Decision::Approve, Some(&pin()), None).await,
        Err(Error::Revoked)
    ));

    // It can still be removed here (the server already knows).
    authenticator.remove(&account.id, &pin(), false).await.unwrap();
    assert!(authenticator.accounts().unwrap().is_empty());
}

#[tokio::test]
async fn removing_an_account_revokes_it_at_the_server() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let key_file = dir.path().join("keys").join(format!("{}.sealed", account.id));
    assert!(key_file.exists());

    let wrong = authenticator
        .remove(&account.id, &Pin::new("1357").unwrap(), false)
        .await;
    assert!(matches!(wrong, Err(Error::WrongPin)), "{wrong:?}");
    assert_eq!(authenticator.accounts().unwrap().len(), 1);
    assert_eq!(device(&server, &account.id.0).await.revoked_at, None);

    authenticator.remove(&account.id, &pin(), false).await.unwrap();
    assert!(device(&server, &account.id.0).await.revoked_at.is_some());
    assert!(authenticator.accounts().unwrap().is_empty());
    assert!(!key_file.exists());
    assert!(matches!(
        authenticator.unlock(&account.id, &pin()),
        Err(Error::UnknownAccount(_))
    ));
}

async fn device(server: &outband_server::test_server::TestServer, id: &str) -> outband_server::store::DeviceRecord {
    let id = id.to_owned();
    server
        .on_server(|state| async move { state.store.device(&id).await.unwrap().unwrap() })
        .await
}
