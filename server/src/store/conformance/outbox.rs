//! The ping/push outbox: claiming with leases (exactly once across nodes),
//! delivery, retries, giving up and redelivery.

use std::collections::BTreeMap;

use outband_protocol::ClientId;

use crate::store::testing::fresh_store;
use crate::store::{NewNotification, NotificationKind, NotificationRecord, Store};

fn notification(request: &str, due_at: i64) -> NewNotification {
    NewNotification {
        kind: NotificationKind::Ping,
        client_id: ClientId::new("pos-1"),
        ciba_request_id: request.to_owned(),
        endpoint: "https://pos.example/cb".to_owned(),
        bearer_sealed: format!("sealed-bearer-{request}"),
        body_sealed: format!("sealed-body-{request}"),
        due_at,
    }
}

async fn enqueue(store: &Store, request: &str, due_at: i64) -> i64 {
    store
        .enqueue_notification(&notification(request, due_at))
        .await
        .unwrap()
        .expect("a new notification")
}

async fn claim(store: &Store, now: i64) -> Option<NotificationRecord> {
    store.claim_due_notification(now, 60).await.unwrap()
}

async fn pending(store: &Store) -> Vec<NotificationRecord> {
    store.pending_notifications(0).await.unwrap()
}

fn ids(records: &[NotificationRecord]) -> Vec<i64> {
    records.iter().map(|n| n.id).collect()
}

#[tokio::test]
async fn an_enqueued_notification_is_due_untried_and_unleased() {
    let store = fresh_store().await;
    let push = NewNotification {
        kind: NotificationKind::Push,
        ..notification("r1", 1_000)
    };
    let id = store.enqueue_notification(&push).await.unwrap().unwrap();
    let second = enqueue(&store, "r2", 1_000).await;
    assert!(second > id);
    let stored = pending(&store).await;
    let expected = NotificationRecord {
        id,
        kind: NotificationKind::Push,
        client_id: ClientId::new("pos-1"),
        ciba_request_id: "r1".into(),
        endpoint: "https://pos.example/cb".into(),
        bearer_sealed: "sealed-bearer-r1".into(),
        body_sealed: "sealed-body-r1".into(),
        attempts: 0,
        next_attempt_at: 1_000,
        locked_until: 0,
        created_at: 1_000,
        delivered_at: None,
        failed_at: None,
        last_error: None,
    };
    assert!(stored.first() == Some(&expected), "{stored:?}");
    assert_eq!(ids(&stored), [id, second]);
}

#[tokio::test]
async fn a_request_gets_at_most_one_notification_of_each_kind() {
    let store = fresh_store().await;
    let ping = enqueue(&store, "r1", 1_000).await;
    assert_eq!(
        store.enqueue_notification(&notification("r1", 1_005)).await.unwrap(),
        None
    );
    let push = NewNotification {
        kind: NotificationKind::Push,
        ..notification("r1", 1_005)
    };
    assert!(store.enqueue_notification(&push).await.unwrap().is_some());
    let stored = pending(&store).await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert_eq!(stored.first().map(|n| (n.id, n.created_at)), Some((ping, 1_000)));
}

#[tokio::test]
async fn a_claim_leases_the_longest_due_notification() {
    let store = fresh_store().await;
    let later = enqueue(&store, "r-later", 1_010).await;
    let first = enqueue(&store, "r-first", 1_000).await;
    let future = enqueue(&store, "r-future", 2_000).await;

    assert!(claim(&store, 999).await.is_none());
    let claimed = claim(&store, 1_020).await.unwrap();
    assert_eq!((claimed.id, claimed.attempts, claimed.locked_until), (first, 1, 1_080));
    let claimed = claim(&store, 1_020).await.unwrap();
    assert_eq!((claimed.id, claimed.attempts), (later, 1));
    // Both are leased; the third is not due yet.
    assert!(claim(&store, 1_020).await.is_none());
    // Leased rows are still pending (not delivered, not failed).
    assert_eq!(ids(&pending(&store).await), [first, later, future]);

    // A lease that ran out (the node died) lets another node try again.
    let reclaimed = claim(&store, 1_080).await.unwrap();
    assert_eq!(
        (reclaimed.id, reclaimed.attempts, reclaimed.locked_until),
        (first, 2, 1_140)
    );
}

#[tokio::test]
async fn a_lease_lasts_at_least_a_second() {
    let store = fresh_store().await;
    let id = enqueue(&store, "r1", 1_000).await;
    let claimed = store.claim_due_notification(1_000, 0).await.unwrap().unwrap();
    assert_eq!((claimed.id, claimed.locked_until), (id, 1_001));
    assert!(store.claim_due_notification(1_000, 0).await.unwrap().is_none());
    assert!(store.claim_due_notification(1_001, 0).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_get_every_notification_exactly_once() {
    let store = fresh_store().await;
    let mut all = Vec::new();
    for n in 0..20 {
        all.push(enqueue(&store, &format!("r{n}"), 1_000 + n % 3).await);
    }
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                while let Some(claimed) = store.claim_due_notification(1_100, 300).await.unwrap() {
                    assert_eq!(claimed.attempts, 1);
                    mine.push(claimed.id);
                }
                mine
            })
        })
        .collect();
    let mut claims: BTreeMap<i64, usize> = BTreeMap::new();
    for task in tasks {
        for id in task.await.unwrap() {
            *claims.entry(id).or_default() += 1;
        }
    }
    let claimed: Vec<i64> = claims.keys().copied().collect();
    all.sort_unstable();
    assert_eq!(claimed, all);
    assert!(claims.values().all(|&n| n == 1), "{claims:?}");
    assert!(claim(&store, 1_100).await.is_none());
}

#[tokio::test]
async fn a_delivered_notification_is_done() {
    let store = fresh_store().await;
    let id = enqueue(&store, "r1", 1_000).await;
    let other = enqueue(&store, "r2", 1_000).await;
    assert_eq!(claim(&store, 1_000).await.map(|n| n.id), Some(id));
    assert!(store.mark_notification_delivered(id, 1_001).await.unwrap());
    assert!(!store.mark_notification_delivered(id, 1_002).await.unwrap());
    assert!(!store.mark_notification_delivered(9_999, 1_002).await.unwrap());
    // Never claimed, retried or failed again; no longer pending.
    assert_eq!(ids(&pending(&store).await), [other]);
    assert!(!store.schedule_notification_retry(id, 1_100, "late").await.unwrap());
    assert!(!store.mark_notification_failed(id, 1_100, "late").await.unwrap());
    assert!(!store.redeliver_notification(id, 1_100).await.unwrap());
    assert_eq!(claim(&store, 5_000).await.map(|n| n.id), Some(other));
    assert!(claim(&store, 5_000).await.is_none());
}

#[tokio::test]
async fn a_retry_releases_the_lease_until_the_next_attempt() {
    let store = fresh_store().await;
    let id = enqueue(&store, "r1", 1_000).await;
    claim(&store, 1_000).await.unwrap();
    assert!(store
        .schedule_notification_retry(id, 1_030, "503 from client")
        .await
        .unwrap());
    let stored = pending(&store).await;
    let record = stored.first().unwrap();
    assert_eq!(
        (record.attempts, record.next_attempt_at, record.locked_until),
        (1, 1_030, 0)
    );
    assert_eq!(record.last_error.as_deref(), Some("503 from client"));

    assert!(claim(&store, 1_029).await.is_none());
    let again = claim(&store, 1_030).await.unwrap();
    assert_eq!((again.id, again.attempts, again.locked_until), (id, 2, 1_090));
    assert!(!store.schedule_notification_retry(9_999, 1_030, "x").await.unwrap());
}

#[tokio::test]
async fn a_failed_notification_waits_for_redelivery() {
    let store = fresh_store().await;
    let first = enqueue(&store, "r1", 1_000).await;
    let second = enqueue(&store, "r2", 1_000).await;
    for _ in 0..3 {
        let claimed = claim(&store, 1_000).await.unwrap();
        assert_eq!(claimed.id, first);
        store
            .schedule_notification_retry(first, 1_000, "timeout")
            .await
            .unwrap();
    }
    assert!(store
        .mark_notification_failed(first, 1_050, "gave up: timeout")
        .await
        .unwrap());
    assert!(!store.mark_notification_failed(first, 1_060, "again").await.unwrap());
    assert!(!store.mark_notification_delivered(first, 1_060).await.unwrap());
    assert!(store.mark_notification_failed(second, 1_070, "410 Gone").await.unwrap());

    let failed = store.failed_notifications(0).await.unwrap();
    assert_eq!(ids(&failed), [second, first]);
    let record = failed.last().unwrap();
    assert_eq!(
        (record.failed_at, record.attempts, record.last_error.as_deref()),
        (Some(1_050), 3, Some("gave up: timeout"))
    );
    assert_eq!(ids(&store.failed_notifications(1).await.unwrap()), [second]);
    assert!(pending(&store).await.is_empty());
    assert!(claim(&store, 9_000).await.is_none());

    assert!(store.redeliver_notification(first, 2_000).await.unwrap());
    assert!(!store.redeliver_notification(first, 2_000).await.unwrap());
    assert!(!store.redeliver_notification(9_999, 2_000).await.unwrap());
    assert_eq!(ids(&store.failed_notifications(0).await.unwrap()), [second]);
    let stored = pending(&store).await;
    let record = stored.first().unwrap();
    assert_eq!(
        (
            record.id,
            record.failed_at,
            record.attempts,
            record.next_attempt_at,
            record.locked_until
        ),
        (first, None, 0, 2_000, 0)
    );
    assert!(claim(&store, 1_999).await.is_none());
    let claimed = claim(&store, 2_000).await.unwrap();
    assert_eq!((claimed.id, claimed.attempts), (first, 1));
}

#[tokio::test]
async fn purge_deletes_delivered_notifications_only() {
    let store = fresh_store().await;
    let delivered = enqueue(&store, "r1", 1_000).await;
    let failed = enqueue(&store, "r2", 1_000).await;
    let open = enqueue(&store, "r3", 1_000).await;
    store.mark_notification_delivered(delivered, 1_100).await.unwrap();
    store.mark_notification_failed(failed, 1_100, "gone").await.unwrap();

    assert_eq!(store.purge_delivered_notifications(1_100).await.unwrap(), 0);
    assert_eq!(store.purge_delivered_notifications(5_000).await.unwrap(), 1);
    assert_eq!(ids(&pending(&store).await), [open]);
    assert_eq!(ids(&store.failed_notifications(0).await.unwrap()), [failed]);
}
