//! The live stream: catch-up of what came while disconnected, live requests,
//! removals, and reconnecting after the server restarts.

use outband_authenticator_core::{Removal, WatchEvent};

use crate::support::{payment, request_id, server, session, watch};

#[tokio::test]
async fn requests_arrive_live_after_catch_up_and_after_a_restart() {
    let mut server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let session = session(&server, dir.path()).await;

    // Made while the device was not listening: the catch-up after connecting brings it.
    let offline = server.bc_authorize("pos", "alice", Some("OFFL-0001"), None).await;
    let offline_id = request_id(&server, &offline).await;
    let mut watching = watch(&session);
    watching.connected().await;
    let shown = watching.request(&offline_id).await;
    assert_eq!(shown.binding_message.as_deref(), Some("OFFL-0001"));

    // Made while listening: the stream brings it, verified, with what to show.
    let live = server
        .bc_authorize("pos", "alice", Some("LIVE-0002"), Some(&payment()))
        .await;
    let live_id = request_id(&server, &live).await;
    let shown = watching.request(&live_id).await;
    assert_eq!(shown.payment.unwrap().display_amount(), "EUR 12.50");

    // Decided elsewhere: the card goes.
    server.decide(&offline, false).await;
    let (reason, _) = watching
        .until(|e| match e {
            WatchEvent::Removed { id, reason, .. } if *id == offline_id => Some(*reason),
            _ => None,
        })
        .await;
    assert_eq!(reason, Removal::Decided);

    // The server restarts: the stream drops, the device reconnects and catches up.
    server.restart();
    watching
        .until(|e| matches!(e, WatchEvent::Disconnected { .. }).then_some(()))
        .await;
    let after = server.bc_authorize("pos", "alice", Some("BACK-0003"), None).await;
    let after_id = request_id(&server, &after).await;
    let (_, skipped) = watching
        .until(|e| match e {
            WatchEvent::Request { request } if request.id == after_id => Some(()),
            _ => None,
        })
        .await;
    for event in &skipped {
        if let WatchEvent::Request { request } = event {
            panic!("{} announced twice", request.id);
        }
    }
    assert!(
        skipped.iter().any(|e| matches!(e, WatchEvent::Connected { .. })),
        "reconnected: {skipped:?}"
    );

    // Down, up, and the request decided at once: the stream or the catch-up removes the card.
    server.stop();
    watching
        .until(|e| matches!(e, WatchEvent::Disconnected { .. }).then_some(()))
        .await;
    server.restart();
    server.decide(&live, true).await;
    let (reason, _) = watching
        .until(|e| match e {
            WatchEvent::Removed { id, reason, .. } if *id == live_id => Some(*reason),
            _ => None,
        })
        .await;
    assert!(
        matches!(reason, Removal::Decided | Removal::NoLongerPending),
        "{reason:?}"
    );

    drop(watching.events);
    let ended = tokio::time::timeout(crate::support::WAIT, watching.task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(ended, outband_authenticator_core::WatchEnd::Closed);
}
