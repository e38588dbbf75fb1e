//! Cards go away: a request the device shows disappears when it is decided
//! on another device, withdrawn by the client (`POST /bc-authorize/cancel`),
//! or expires (the server's clock passes its expiry and its sweep expires
//! it). Each time the live stream says why, and the pending list no longer
//! has it, so nothing stale can be approved.

use outband_authenticator_core::{Decision, Removal, Session, WatchEvent};
use outband_protocol::AuthReqId;
use outband_server::store::CibaState;
use outband_server::test_server::TestServer;

use crate::support::{payment, pin, request_id, server, session, watch, Watching};

/// Waits for the removal of `id`; its reason.
async fn removed(watching: &mut Watching, id: &str) -> Removal {
    watching
        .until(|e| match e {
            WatchEvent::Removed {
                id: removed, reason, ..
            } if removed == id => Some(*reason),
            _ => None,
        })
        .await
        .0
}

/// A request shown on the device: its `auth_req_id` and public id.
async fn shown(server: &TestServer, watching: &mut Watching, code: &str) -> (AuthReqId, String) {
    let auth_req_id = server.bc_authorize("pos", "alice", Some(code), Some(&payment())).await;
    let id = request_id(server, &auth_req_id).await;
    let card = watching.request(&id).await;
    assert_eq!(card.binding_message.as_deref(), Some(code));
    (auth_req_id, id)
}

async fn not_pending(session: &Session, id: &str) {
    let pending = session.pending().await.unwrap();
    assert!(pending.iter().all(|r| r.id != id), "{id} is still pending");
}

#[tokio::test]
async fn a_card_goes_when_another_device_decides() {
    let server = server().await;
    let (laptop_dir, phone_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let laptop = session(&server, laptop_dir.path()).await;
    let phone = session(&server, phone_dir.path()).await;
    let mut watching = watch(&laptop);
    watching.connected().await;
    let (auth_req_id, id) = shown(&server, &mut watching, "ELSE-0001").await;

    // The user approves on the phone; the laptop's card goes.
    let on_phone = phone
        .pending()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .expect("the phone shows it too");
    phone
        .decide(&on_phone, Decision::Approve, Some(&pin()), None)
        .await
        .unwrap();
    assert_eq!(removed(&mut watching, &id).await, Removal::Decided);
    not_pending(&laptop, &id).await;
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Approved);
}

#[tokio::test]
async fn a_card_goes_when_the_client_withdraws_the_request() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let session = session(&server, dir.path()).await;
    let mut watching = watch(&session);
    watching.connected().await;
    let (auth_req_id, id) = shown(&server, &mut watching, "GONE-0002").await;

    // The till cancels the sale (our cancellation extension).
    let response = reqwest::Client::new()
        .post(format!("{}/bc-authorize/cancel", server.url))
        .basic_auth("pos", Some("pos-secret"))
        .form(&[("auth_req_id", auth_req_id.secret())])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    assert_eq!(removed(&mut watching, &id).await, Removal::Withdrawn);
    not_pending(&session, &id).await;
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Cancelled);
}

#[tokio::test]
async fn a_card_goes_when_the_request_expires() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let session = session(&server, dir.path()).await;
    let mut watching = watch(&session);
    watching.connected().await;
    let (auth_req_id, id) = shown(&server, &mut watching, "LATE-0003").await;
    let expires_at = server.request(&auth_req_id).await.expires_at;

    // Time passes on the server: its sweep expires the request and says so.
    server.clock.set(expires_at + 1);
    assert_eq!(removed(&mut watching, &id).await, Removal::Expired);
    not_pending(&session, &id).await;
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Expired);
    let (status, body) = server.poll_token("pos", &auth_req_id).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("expired_token")));
}
