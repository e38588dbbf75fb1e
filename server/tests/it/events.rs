//! Device events reach every node: locally through the broadcast channel, and
//! across nodes sharing PostgreSQL through LISTEN/NOTIFY.

use std::time::Duration;

use outband_protocol::DeliveryMode;
use outband_server::events::{run_bridge, DeviceEventKind};
use outband_server::store::Backend;

use crate::support::TestServer;

#[tokio::test]
async fn a_request_started_on_one_node_reaches_devices_on_another() {
    let node_a = TestServer::new().await;
    node_a.add_ciba_client("pos", DeliveryMode::Poll, None).await;
    node_a.add_user("alice", None).await;
    // Node B: another server process over the same database.
    let node_b = outband_server::state::AppState::build(
        (*node_a.state.settings).clone(),
        node_a.state.store.clone(),
        node_a.clock.clone(),
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let bridge = tokio::spawn(run_bridge(node_b.events.clone(), async {
        let _ = stopped.await;
    }));
    let mut on_a = node_a.state.events.subscribe();
    let mut on_b = node_b.events.subscribe();
    // Give the listener time to connect before publishing.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let auth_req_id = node_a.bc_authorize("pos", "scope=openid&login_hint=alice").await.json["auth_req_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let request = node_a.ciba_request(&auth_req_id).await;

    let local = tokio::time::timeout(Duration::from_secs(5), on_a.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(local.kind, DeviceEventKind::Request);
    assert_eq!(local.id, request.id);

    let wait = match node_a.state.store.backend() {
        Backend::Postgres => Duration::from_secs(5),
        Backend::Sqlite => Duration::from_millis(300),
    };
    let remote = tokio::time::timeout(wait, on_b.recv()).await;
    match node_a.state.store.backend() {
        Backend::Postgres => {
            let event = remote.expect("the event crosses nodes").unwrap();
            assert_eq!(event.kind, DeviceEventKind::Request);
            assert_eq!(event.id, request.id);
            assert_eq!(event.subject.as_str(), "sub-alice");
            assert_eq!(event.request_jwt.as_deref(), Some(request.request_jwt.as_str()));
            // Node B's own event is not echoed back to it twice.
            node_b.events.publish(event.clone());
            let first = on_b.recv().await.unwrap();
            assert_eq!(first.id, request.id);
            let echo = tokio::time::timeout(Duration::from_millis(500), on_b.recv()).await;
            assert!(echo.is_err(), "a node does not receive its own events back");
        }
        Backend::Sqlite => assert!(remote.is_err(), "one SQLite node has no other nodes to tell"),
    }
    // On SQLite the bridge has already returned, so nobody hears the stop.
    let _ = stop.send(());
    bridge.await.unwrap();
}
