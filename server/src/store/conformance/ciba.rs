//! Backchannel authentication requests: lookups, listing, decisions (and
//! their race) and cancellation. `ciba_polling.rs` has the token endpoint's
//! side: polling with `slow_down`, redemption, expiry and purge.

use outband_protocol::{ClientId, DeliveryMode, Scope, Subject};

use crate::store::testing::fresh_store;
use crate::store::{CibaDecision, CibaRequestRecord, CibaState, Store, StoreError, DEFAULT_CIBA_LIST_LIMIT};

/// A pending poll-mode request of `client` for `subject`, made at `created_at`
/// and valid for 300 s, polled every 5 s.
pub(super) fn ciba_request(id: &str, client: &str, subject: &str, created_at: i64) -> CibaRequestRecord {
    CibaRequestRecord {
        id: id.to_owned(),
        auth_req_id_hash: format!("hash-{id}"),
        client_id: ClientId::new(client),
        subject: Subject::new(subject),
        scope: Scope::new("openid payments"),
        acr_values: None,
        binding_message: None,
        authorization_details: None,
        delivery_mode: DeliveryMode::Poll,
        auth_req_id_sealed: None,
        number_match: None,
        notification_token_sealed: None,
        request_jwt: format!("jwt-{id}"),
        created_at,
        expires_at: created_at + 300,
        interval: 5,
        last_polled_at: None,
        state: CibaState::Pending,
        decided_at: None,
        device_id: None,
        amr: None,
        acr: None,
        deny_reason: None,
        redeemed_at: None,
    }
}

pub(super) fn approve(device: &str) -> CibaDecision {
    CibaDecision {
        approve: true,
        device_id: Some(device.to_owned()),
        amr: Some(r#"["hwk","pin"]"#.to_owned()),
        acr: Some("urn:outband:acr:device".to_owned()),
        deny_reason: None,
    }
}

pub(super) fn deny(reason: &str) -> CibaDecision {
    CibaDecision {
        approve: false,
        device_id: None,
        amr: None,
        acr: None,
        deny_reason: Some(reason.to_owned()),
    }
}

pub(super) fn ids(requests: &[CibaRequestRecord]) -> Vec<&str> {
    requests.iter().map(|r| r.id.as_str()).collect()
}

pub(super) async fn state_of(store: &Store, id: &str) -> CibaState {
    store.ciba_request(id).await.unwrap().unwrap().state
}

#[tokio::test]
async fn ciba_requests_round_trip_by_id_and_hash() {
    let store = fresh_store().await;
    let full = CibaRequestRecord {
        acr_values: Some("urn:a urn:b".into()),
        binding_message: Some("Pay 12.34 EUR at Kiosk 7".into()),
        authorization_details: Some(r#"[{"type":"payment_initiation","amount":"12.34"}]"#.into()),
        delivery_mode: DeliveryMode::Push,
        auth_req_id_sealed: Some("sealed-id".into()),
        number_match: Some("42".into()),
        notification_token_sealed: Some("sealed-token".into()),
        last_polled_at: Some(1_010),
        ..ciba_request("r-full", "pos-1", "alice", 1_000)
    };
    let bare = ciba_request("r-bare", "pos-1", "alice", 1_000);
    store.insert_ciba_request(&full).await.unwrap();
    store.insert_ciba_request(&bare).await.unwrap();

    assert_eq!(store.ciba_request("r-full").await.unwrap(), Some(full.clone()));
    assert_eq!(store.ciba_request("r-bare").await.unwrap(), Some(bare.clone()));
    assert_eq!(
        store.ciba_request_by_hash("hash-r-full").await.unwrap(),
        Some(full.clone())
    );
    assert_eq!(store.ciba_request("unknown").await.unwrap(), None);
    assert_eq!(store.ciba_request_by_hash("r-full").await.unwrap(), None);

    // Decided states and every field survive too.
    let decided = CibaRequestRecord {
        state: CibaState::Redeemed,
        decided_at: Some(1_020),
        device_id: Some("dev-1".into()),
        amr: Some(r#"["hwk"]"#.into()),
        acr: Some("acr-1".into()),
        deny_reason: None,
        redeemed_at: Some(1_030),
        delivery_mode: DeliveryMode::Ping,
        ..ciba_request("r-done", "pos-2", "bob", 900)
    };
    store.insert_ciba_request(&decided).await.unwrap();
    assert_eq!(store.ciba_request("r-done").await.unwrap(), Some(decided));
}

#[tokio::test]
async fn duplicate_id_or_hash_is_a_conflict() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    let same_id = CibaRequestRecord {
        auth_req_id_hash: "other-hash".into(),
        ..ciba_request("r1", "pos-1", "alice", 1_000)
    };
    let same_hash = CibaRequestRecord {
        auth_req_id_hash: "hash-r1".into(),
        ..ciba_request("r2", "pos-1", "alice", 1_000)
    };
    for duplicate in [same_id, same_hash] {
        match store.insert_ciba_request(&duplicate).await {
            Err(StoreError::Conflict(what)) => assert!(what.contains(&duplicate.id), "{what}"),
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.list_ciba_requests(None, 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn pending_requests_of_a_subject_are_the_open_ones_oldest_first() {
    let store = fresh_store().await;
    let expired_at_now = CibaRequestRecord {
        expires_at: 2_000,
        ..ciba_request("r-expiring", "pos-1", "alice", 1_000)
    };
    for request in [
        ciba_request("r-new", "pos-1", "alice", 1_900),
        ciba_request("r-old", "pos-2", "alice", 1_800),
        ciba_request("r-decided", "pos-1", "alice", 1_850),
        ciba_request("r-bob", "pos-1", "bob", 1_850),
        expired_at_now,
    ] {
        store.insert_ciba_request(&request).await.unwrap();
    }
    assert!(store
        .decide_ciba_request("r-decided", &deny("denied"), 1_950)
        .await
        .unwrap()
        .is_some());
    let alice = store
        .pending_ciba_requests_for_subject(&Subject::new("alice"), 2_000)
        .await
        .unwrap();
    assert_eq!(ids(&alice), ["r-old", "r-new"]);
    let earlier = store
        .pending_ciba_requests_for_subject(&Subject::new("alice"), 1_999)
        .await
        .unwrap();
    assert_eq!(ids(&earlier), ["r-expiring", "r-old", "r-new"]);
    assert!(store
        .pending_ciba_requests_for_subject(&Subject::new("carol"), 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn listing_is_newest_first_filtered_by_state_and_limited() {
    let store = fresh_store().await;
    for (n, id) in ["r1", "r2", "r3", "r4"].into_iter().enumerate() {
        let created_at = 1_000 + i64::try_from(n).unwrap();
        store
            .insert_ciba_request(&ciba_request(id, "pos-1", "alice", created_at))
            .await
            .unwrap();
    }
    store.decide_ciba_request("r2", &approve("d"), 1_100).await.unwrap();
    store.decide_ciba_request("r3", &deny("fraud"), 1_100).await.unwrap();

    assert_eq!(
        ids(&store.list_ciba_requests(None, 0).await.unwrap()),
        ["r4", "r3", "r2", "r1"]
    );
    assert_eq!(ids(&store.list_ciba_requests(None, 2).await.unwrap()), ["r4", "r3"]);
    let pending = store.list_ciba_requests(Some(CibaState::Pending), 0).await.unwrap();
    assert_eq!(ids(&pending), ["r4", "r1"]);
    let approved = store.list_ciba_requests(Some(CibaState::Approved), 0).await.unwrap();
    assert_eq!(ids(&approved), ["r2"]);
    assert!(store
        .list_ciba_requests(Some(CibaState::Redeemed), 0)
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test]
async fn listing_limit_defaults_to_a_hundred() {
    let store = fresh_store().await;
    let total = i64::from(DEFAULT_CIBA_LIST_LIMIT) + 3;
    for n in 0..total {
        store
            .insert_ciba_request(&ciba_request(&format!("r{n:04}"), "pos-1", "alice", n))
            .await
            .unwrap();
    }
    let page = store.list_ciba_requests(None, 0).await.unwrap();
    assert_eq!(page.len(), DEFAULT_CIBA_LIST_LIMIT as usize);
    assert_eq!(page.first().map(|r| r.created_at), Some(total - 1));
    assert_eq!(store.list_ciba_requests(None, 1_000).await.unwrap().len() as i64, total);
}

#[tokio::test]
async fn pending_requests_of_a_client_are_counted() {
    let store = fresh_store().await;
    for request in [
        ciba_request("r1", "pos-1", "alice", 1_000),
        ciba_request("r2", "pos-1", "bob", 1_100),
        ciba_request("r3", "pos-1", "carol", 1_100),
        ciba_request("r4", "pos-2", "alice", 1_100),
    ] {
        store.insert_ciba_request(&request).await.unwrap();
    }
    store.decide_ciba_request("r3", &approve("d"), 1_200).await.unwrap();
    let count = |client: &'static str, now: i64| {
        let store = store.clone();
        async move {
            store
                .count_pending_ciba_requests_of_client(&ClientId::new(client), now)
                .await
                .unwrap()
        }
    };
    assert_eq!(count("pos-1", 1_200).await, 2);
    // r1 expires at 1_300.
    assert_eq!(count("pos-1", 1_300).await, 1);
    assert_eq!(count("pos-2", 1_200).await, 1);
    assert_eq!(count("pos-3", 1_200).await, 0);
}

#[tokio::test]
async fn a_pending_request_is_decided_once() {
    let store = fresh_store().await;
    let request = ciba_request("r1", "pos-1", "alice", 1_000);
    store.insert_ciba_request(&request).await.unwrap();

    let decided = store
        .decide_ciba_request("r1", &approve("dev-1"), 1_050)
        .await
        .unwrap()
        .unwrap();
    let expected = CibaRequestRecord {
        state: CibaState::Approved,
        decided_at: Some(1_050),
        device_id: Some("dev-1".into()),
        amr: Some(r#"["hwk","pin"]"#.into()),
        acr: Some("urn:outband:acr:device".into()),
        ..request
    };
    assert_eq!(decided, expected);
    assert_eq!(store.ciba_request("r1").await.unwrap(), Some(expected.clone()));
    // Neither another approval nor a denial changes it.
    assert_eq!(
        store.decide_ciba_request("r1", &deny("denied"), 1_060).await.unwrap(),
        None
    );
    assert_eq!(
        store.decide_ciba_request("r1", &approve("dev-2"), 1_060).await.unwrap(),
        None
    );
    assert_eq!(store.ciba_request("r1").await.unwrap(), Some(expected));
    assert_eq!(
        store
            .decide_ciba_request("unknown", &approve("d"), 1_060)
            .await
            .unwrap(),
        None
    );

    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    let denied = store
        .decide_ciba_request("r2", &deny("fraud"), 1_070)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            denied.state,
            denied.decided_at,
            denied.deny_reason.as_deref(),
            denied.device_id
        ),
        (CibaState::Denied, Some(1_070), Some("fraud"), None)
    );
}

#[tokio::test]
async fn expired_or_cancelled_requests_cannot_be_decided() {
    let store = fresh_store().await;
    // Expires at 1_300: deciding at that second is too late.
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    assert_eq!(
        store.decide_ciba_request("r1", &approve("d"), 1_300).await.unwrap(),
        None
    );
    assert_eq!(state_of(&store, "r1").await, CibaState::Pending);
    assert!(store
        .decide_ciba_request("r1", &approve("d"), 1_299)
        .await
        .unwrap()
        .is_some());

    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    assert!(store
        .cancel_ciba_request("r2", &ClientId::new("pos-1"), 1_010)
        .await
        .unwrap()
        .is_some());
    assert_eq!(
        store.decide_ciba_request("r2", &approve("d"), 1_020).await.unwrap(),
        None
    );
    assert_eq!(state_of(&store, "r2").await, CibaState::Cancelled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_decisions_have_one_winner() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            let decision = if n % 2 == 0 {
                approve(&format!("dev-{n}"))
            } else {
                deny(&format!("reason-{n}"))
            };
            tokio::spawn(async move { store.decide_ciba_request("r1", &decision, 1_100).await })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        if let Some(decided) = task.await.unwrap().unwrap() {
            winners.push(decided);
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    // What the winner was told is what is stored.
    assert_eq!(store.ciba_request("r1").await.unwrap().as_ref(), winners.first());
}

#[tokio::test]
async fn only_the_owning_client_cancels_a_pending_request() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    let (owner, other) = (ClientId::new("pos-1"), ClientId::new("pos-2"));
    assert_eq!(store.cancel_ciba_request("r1", &other, 1_010).await.unwrap(), None);
    assert_eq!(store.cancel_ciba_request("unknown", &owner, 1_010).await.unwrap(), None);
    let cancelled = store.cancel_ciba_request("r1", &owner, 1_010).await.unwrap().unwrap();
    assert_eq!(
        (cancelled.state, cancelled.decided_at),
        (CibaState::Cancelled, Some(1_010))
    );
    assert_eq!(store.cancel_ciba_request("r1", &owner, 1_020).await.unwrap(), None);

    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    store.decide_ciba_request("r2", &approve("d"), 1_010).await.unwrap();
    assert_eq!(store.cancel_ciba_request("r2", &owner, 1_020).await.unwrap(), None);
    assert_eq!(state_of(&store, "r2").await, CibaState::Approved);
}

#[tokio::test]
async fn corrupt_ciba_rows_are_reported() {
    let store = fresh_store().await;
    store
        .insert_ciba_request(&ciba_request("r1", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    store
        .insert_ciba_request(&ciba_request("r2", "pos-1", "alice", 1_000))
        .await
        .unwrap();
    for (id, sql) in [
        ("r1", "UPDATE ciba_requests SET state = 'maybe' WHERE id = $1"),
        (
            "r2",
            "UPDATE ciba_requests SET delivery_mode = 'carrier-pigeon' WHERE id = $1",
        ),
    ] {
        sqlx::query(sql).bind(id).execute(store.pool()).await.unwrap();
        let err = store.ciba_request(id).await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(what) if what.contains(id)),
            "{err:?}"
        );
    }
    assert!(matches!(
        store.list_ciba_requests(None, 0).await,
        Err(StoreError::Corrupt(_))
    ));
}
