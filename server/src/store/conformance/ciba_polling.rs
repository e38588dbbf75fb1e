//! The token endpoint's side of CIBA requests: polling with `slow_down`,
//! redemption (and its race), expiry sweeps (and their race) and purge.

use std::collections::BTreeSet;

use outband_protocol::ClientId;

use super::ciba::{approve, ciba_request, deny, ids, state_of};
use crate::store::testing::fresh_store;
use crate::store::{CibaRequestRecord, CibaState, PollOutcome, Store};

/// Polls and expects the request to be found.
async fn poll(store: &Store, id: &str, client: &str, now: i64) -> (CibaRequestRecord, bool) {
    let hash = format!("hash-{id}");
    match store
        .poll_ciba_request(&hash, &ClientId::new(client), now)
        .await
        .unwrap()
    {
        PollOutcome::Found { request, slow_down } => (request, slow_down),
        PollOutcome::Unknown => panic!("{id} not found for {client}"),
    }
}

#[tokio::test]
async fn polling_too_early_slows_the_client_down() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();

    // The first poll is never too early, however soon it comes.
    let (request, slow_down) = poll(&store, "r1", "pos-1", 1_000).await;
    assert!(!slow_down);
    assert_eq!((request.last_polled_at, request.interval), (Some(1_000), 5));
    assert_eq!(request.state, CibaState::Pending);

    // 4 s later is within the 5 s interval: slow down, interval 5 -> 10.
    let (request, slow_down) = poll(&store, "r1", "pos-1", 1_004).await;
    assert!(slow_down);
    assert_eq!((request.last_polled_at, request.interval), (Some(1_004), 10));
    assert_eq!(store.ciba_request("r1").await.unwrap(), Some(request));

    // 9 s after that is still within the new 10 s interval: 10 -> 15.
    let (request, slow_down) = poll(&store, "r1", "pos-1", 1_013).await;
    assert!(slow_down);
    assert_eq!(request.interval, 15);

    // Waiting the full interval is fine, and the interval stays.
    let (request, slow_down) = poll(&store, "r1", "pos-1", 1_028).await;
    assert!(!slow_down);
    assert_eq!((request.last_polled_at, request.interval), (Some(1_028), 15));
}

#[tokio::test]
async fn decided_or_expired_requests_are_never_slowed() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    assert!(!poll(&store, "r1", "pos-1", 1_000).await.1);
    store.decide_ciba_request("r1", &approve("d"), 1_001).await.unwrap();
    // Right after the decision the client gets its answer, not slow_down.
    let (request, slow_down) = poll(&store, "r1", "pos-1", 1_002).await;
    assert!(!slow_down);
    assert_eq!((request.state, request.interval), (CibaState::Approved, 5));
    assert_eq!(request.last_polled_at, Some(1_002));

    // A pending request past its expiry gets expired_token, not slow_down.
    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    assert!(!poll(&store, "r2", "pos-1", 1_298).await.1);
    let (request, slow_down) = poll(&store, "r2", "pos-1", 1_300).await;
    assert!(!slow_down);
    assert_eq!((request.state, request.interval), (CibaState::Pending, 5));
}

#[tokio::test]
async fn another_clients_request_is_unknown_to_the_poller() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    let outcome = store
        .poll_ciba_request("hash-r1", &ClientId::new("pos-2"), 1_000)
        .await
        .unwrap();
    assert_eq!(outcome, PollOutcome::Unknown);
    let outcome = store
        .poll_ciba_request("hash-unknown", &ClientId::new("pos-1"), 1_000)
        .await
        .unwrap();
    assert_eq!(outcome, PollOutcome::Unknown);
    // The other client's poll left no trace: the owner's first poll is not slowed.
    assert_eq!(store.ciba_request("r1").await.unwrap().unwrap().last_polled_at, None);
    assert!(!poll(&store, "r1", "pos-1", 1_001).await.1);
}

#[tokio::test]
async fn an_approved_request_is_redeemed_once_by_its_client() {
    let store = fresh_store().await;
    let (owner, other) = (ClientId::new("pos-1"), ClientId::new("pos-2"));
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    // Not yet approved.
    assert_eq!(store.redeem_ciba_request("hash-r1", &owner, 1_010).await.unwrap(), None);
    store.decide_ciba_request("r1", &approve("d"), 1_020).await.unwrap();
    assert_eq!(store.redeem_ciba_request("hash-r1", &other, 1_030).await.unwrap(), None);
    let redeemed = store
        .redeem_ciba_request("hash-r1", &owner, 1_030)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (redeemed.state, redeemed.redeemed_at),
        (CibaState::Redeemed, Some(1_030))
    );
    assert_eq!(store.redeem_ciba_request("hash-r1", &owner, 1_031).await.unwrap(), None);
    assert_eq!(store.ciba_request("r1").await.unwrap(), Some(redeemed));

    // Denied requests are never redeemed.
    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    store.decide_ciba_request("r2", &deny("denied"), 1_020).await.unwrap();
    assert_eq!(store.redeem_ciba_request("hash-r2", &owner, 1_030).await.unwrap(), None);
    assert_eq!(state_of(&store, "r2").await, CibaState::Denied);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_redemptions_have_one_winner() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    store.decide_ciba_request("r1", &approve("d"), 1_010).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .redeem_ciba_request("hash-r1", &ClientId::new("pos-1"), 1_020 + n)
                    .await
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        winners.extend(task.await.unwrap().unwrap());
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    assert_eq!(store.ciba_request("r1").await.unwrap().as_ref(), winners.first());
}

#[tokio::test]
async fn push_requests_are_marked_redeemed_by_id_once() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    assert_eq!(store.mark_redeemed("r1", 1_010).await.unwrap(), None);
    store.decide_ciba_request("r1", &approve("d"), 1_020).await.unwrap();
    let redeemed = store.mark_redeemed("r1", 1_030).await.unwrap().unwrap();
    assert_eq!(
        (redeemed.state, redeemed.redeemed_at),
        (CibaState::Redeemed, Some(1_030))
    );
    assert_eq!(store.mark_redeemed("r1", 1_040).await.unwrap(), None);
    assert_eq!(store.mark_redeemed("unknown", 1_040).await.unwrap(), None);
    // Nor can the client redeem it a second time.
    let owner = ClientId::new("pos-1");
    assert_eq!(store.redeem_ciba_request("hash-r1", &owner, 1_040).await.unwrap(), None);
}

#[tokio::test]
async fn expiry_moves_only_overdue_pending_requests() {
    let store = fresh_store().await;
    for request in [
        ciba_request("r-due", "pos-1", "alice", 1_000),   // expires 1_300
        ciba_request("r-early", "pos-1", "bob", 900),     // expires 1_200
        ciba_request("r-later", "pos-1", "alice", 1_001), // expires 1_301
        ciba_request("r-approved", "pos-1", "carol", 900),
    ] {
        store.insert_ciba_request(&request).await.unwrap();
    }
    store
        .decide_ciba_request("r-approved", &approve("d"), 950)
        .await
        .unwrap();

    let expired = store.expire_ciba_requests(1_300).await.unwrap();
    assert_eq!(ids(&expired), ["r-early", "r-due"]);
    assert!(expired
        .iter()
        .all(|r| r.state == CibaState::Expired && r.decided_at == Some(1_300)));
    assert!(store.expire_ciba_requests(1_300).await.unwrap().is_empty());
    assert_eq!(state_of(&store, "r-later").await, CibaState::Pending);
    assert_eq!(state_of(&store, "r-approved").await, CibaState::Approved);
    // Expired requests are neither decided nor cancelled any more.
    assert_eq!(
        store.decide_ciba_request("r-due", &approve("d"), 1_000).await.unwrap(),
        None
    );
    let owner = ClientId::new("pos-1");
    assert_eq!(store.cancel_ciba_request("r-due", &owner, 1_000).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_expiry_sweeps_return_each_request_once() {
    let store = fresh_store().await;
    let total = 40;
    for n in 0..total {
        store
            .insert_ciba_request(&ciba_request(&format!("r{n:02}"), "pos-1", "alice", 1_000 + n))
            .await
            .unwrap();
    }
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.expire_ciba_requests(5_000).await })
        })
        .collect();
    let mut seen = Vec::new();
    for task in tasks {
        seen.extend(task.await.unwrap().unwrap().into_iter().map(|r| r.id));
    }
    let unique: BTreeSet<_> = seen.iter().cloned().collect();
    assert_eq!((seen.len(), unique.len()), (total as usize, total as usize), "{seen:?}");
    assert!(store
        .list_ciba_requests(Some(CibaState::Pending), 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn purge_deletes_finished_requests_past_expiry() {
    let store = fresh_store().await;
    for request in [
        ciba_request("r-pending", "pos-1", "alice", 0),    // expires 300
        ciba_request("r-denied", "pos-1", "alice", 0),     // expires 300
        ciba_request("r-approved", "pos-1", "alice", 100), // expires 400
    ] {
        store.insert_ciba_request(&request).await.unwrap();
    }
    store
        .decide_ciba_request("r-denied", &deny("denied"), 10)
        .await
        .unwrap();
    store
        .decide_ciba_request("r-approved", &approve("d"), 110)
        .await
        .unwrap();

    assert_eq!(store.purge_finished_ciba_requests(300).await.unwrap(), 0);
    assert_eq!(store.purge_finished_ciba_requests(301).await.unwrap(), 1);
    assert_eq!(store.ciba_request("r-denied").await.unwrap(), None);
    // Pending requests stay until expired (and then purged on a later run).
    assert_eq!(store.purge_finished_ciba_requests(1_000).await.unwrap(), 1);
    assert_eq!(state_of(&store, "r-pending").await, CibaState::Pending);
    store.expire_ciba_requests(1_000).await.unwrap();
    assert_eq!(store.purge_finished_ciba_requests(1_000).await.unwrap(), 1);
    assert!(store.list_ciba_requests(None, 0).await.unwrap().is_empty());
}
