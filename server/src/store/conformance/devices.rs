//! Authentication devices, activation codes and device tokens, including the
//! races on revocation and on using a code.

use outband_protocol::Subject;

use crate::store::testing::fresh_store;
use crate::store::{ActivationCodeRecord, DeviceRecord, DeviceTokenRecord, StoreError};

fn device(id: &str, subject: &str, created_at: i64) -> DeviceRecord {
    DeviceRecord {
        id: id.to_owned(),
        subject: Subject::new(subject),
        name: format!("Laptop {id}"),
        alg: "ES256".to_owned(),
        public_jwk: format!(r#"{{"kty":"EC","crv":"P-256","kid":"{id}"}}"#),
        jkt: format!("jkt-{id}"),
        credential_hash: format!("cred-{id}"),
        created_at,
        last_seen_at: None,
        revoked_at: None,
    }
}

fn code(hash: &str, subject: &str, expires_at: i64) -> ActivationCodeRecord {
    ActivationCodeRecord {
        code_hash: hash.to_owned(),
        subject: Subject::new(subject),
        created_at: expires_at - 600,
        expires_at,
        used_at: None,
    }
}

fn device_token(hash: &str, device_id: &str, expires_at: i64) -> DeviceTokenRecord {
    DeviceTokenRecord {
        token_hash: hash.to_owned(),
        device_id: device_id.to_owned(),
        jkt: format!("jkt-{device_id}"),
        expires_at,
    }
}

fn ids(devices: &[DeviceRecord]) -> Vec<&str> {
    devices.iter().map(|d| d.id.as_str()).collect()
}

#[tokio::test]
async fn devices_round_trip_and_list_newest_first() {
    let store = fresh_store().await;
    let seen = DeviceRecord {
        last_seen_at: Some(1_500),
        revoked_at: Some(1_600),
        alg: "EdDSA".into(),
        ..device("d-old", "alice", 1_000)
    };
    let alice_new = device("d-new", "alice", 2_000);
    let bob = device("d-bob", "bob", 1_500);
    for record in [&seen, &alice_new, &bob] {
        store.insert_device(record).await.unwrap();
    }

    assert_eq!(store.device("d-old").await.unwrap(), Some(seen.clone()));
    assert_eq!(store.device("unknown").await.unwrap(), None);
    assert_eq!(
        store.device_by_credential_hash("cred-d-new").await.unwrap(),
        Some(alice_new.clone())
    );
    assert_eq!(store.device_by_credential_hash("d-new").await.unwrap(), None);
    // Revoked devices are listed too.
    assert_eq!(
        store.devices_of_subject(&Subject::new("alice")).await.unwrap(),
        vec![alice_new, seen]
    );
    assert!(store
        .devices_of_subject(&Subject::new("carol"))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(ids(&store.list_devices().await.unwrap()), ["d-new", "d-bob", "d-old"]);
}

#[tokio::test]
async fn duplicate_devices_are_conflicts_on_every_unique_key() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    let cases = [
        (
            DeviceRecord {
                jkt: "other-jkt".into(),
                credential_hash: "other-cred".into(),
                ..device("d1", "bob", 1_000)
            },
            "id",
        ),
        (
            DeviceRecord {
                jkt: "jkt-d1".into(),
                ..device("d2", "bob", 1_000)
            },
            "jkt",
        ),
        (
            DeviceRecord {
                credential_hash: "cred-d1".into(),
                ..device("d3", "bob", 1_000)
            },
            "credential_hash",
        ),
    ];
    for (duplicate, key) in cases {
        match store.insert_device(&duplicate).await {
            Err(StoreError::Conflict(what)) => {
                assert!(what.contains(&duplicate.id) && what.contains(key), "{key}: {what}");
            }
            other => panic!("{key}: expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.list_devices().await.unwrap().len(), 1);
}

#[tokio::test]
async fn revoking_a_device_deletes_its_tokens_once() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    store.insert_device(&device("d2", "alice", 1_000)).await.unwrap();
    for token in [
        device_token("t1", "d1", 5_000),
        device_token("t2", "d1", 5_000),
        device_token("t3", "d2", 5_000),
    ] {
        store.insert_device_token(&token).await.unwrap();
    }

    assert!(store.revoke_device("d1", 2_000).await.unwrap());
    assert!(!store.revoke_device("d1", 2_100).await.unwrap());
    assert!(!store.revoke_device("unknown", 2_100).await.unwrap());
    assert_eq!(store.device("d1").await.unwrap().unwrap().revoked_at, Some(2_000));
    assert_eq!(store.device_token("t1").await.unwrap(), None);
    assert_eq!(store.device_token("t2").await.unwrap(), None);
    assert_eq!(
        store.device_token("t3").await.unwrap(),
        Some(device_token("t3", "d2", 5_000))
    );
    // A token written for a revoked device (say, while it was being revoked)
    // never authenticates.
    store
        .insert_device_token(&device_token("t4", "d1", 5_000))
        .await
        .unwrap();
    assert_eq!(store.device_token("t4").await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revocations_of_a_device_report_one_revoker() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    store
        .insert_device_token(&device_token("t1", "d1", 5_000))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|n| {
            let store = store.clone();
            tokio::spawn(async move { store.revoke_device("d1", 2_000 + n).await })
        })
        .collect();
    let mut revoked = 0;
    for task in tasks {
        revoked += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(revoked, 1);
    assert_eq!(store.device_token("t1").await.unwrap(), None);
}

#[tokio::test]
async fn touching_a_device_never_goes_back_in_time() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    let last_seen = |store: crate::store::Store| async move { store.device("d1").await.unwrap().unwrap().last_seen_at };

    store.touch_device("d1", 1_100).await.unwrap();
    assert_eq!(last_seen(store.clone()).await, Some(1_100));
    store.touch_device("d1", 1_050).await.unwrap();
    assert_eq!(last_seen(store.clone()).await, Some(1_100));
    store.touch_device("d1", 1_200).await.unwrap();
    assert_eq!(last_seen(store.clone()).await, Some(1_200));
    store.touch_device("unknown", 1_300).await.unwrap();

    store.revoke_device("d1", 1_300).await.unwrap();
    store.touch_device("d1", 1_400).await.unwrap();
    assert_eq!(last_seen(store.clone()).await, Some(1_200));
}

#[tokio::test]
async fn an_activation_code_works_once_before_it_expires() {
    let store = fresh_store().await;
    store.insert_activation_code(&code("c1", "alice", 2_000)).await.unwrap();
    store.insert_activation_code(&code("c2", "bob", 2_000)).await.unwrap();

    assert_eq!(
        store.consume_activation_code("c1", 1_999).await.unwrap(),
        Some(Subject::new("alice"))
    );
    assert_eq!(store.consume_activation_code("c1", 1_999).await.unwrap(), None);
    assert_eq!(store.consume_activation_code("unknown", 1_000).await.unwrap(), None);
    // Expired at 2_000 sharp.
    assert_eq!(store.consume_activation_code("c2", 2_000).await.unwrap(), None);

    let err = store
        .insert_activation_code(&code("c1", "carol", 3_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_enrollments_use_a_code_once() {
    let store = fresh_store().await;
    store.insert_activation_code(&code("c1", "alice", 2_000)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.consume_activation_code("c1", 1_500).await })
        })
        .collect();
    let mut subjects = Vec::new();
    for task in tasks {
        subjects.extend(task.await.unwrap().unwrap());
    }
    assert_eq!(subjects, [Subject::new("alice")]);
}

#[tokio::test]
async fn device_tokens_round_trip_and_need_a_device() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    let token = device_token("t1", "d1", 5_000);
    store.insert_device_token(&token).await.unwrap();
    // Expired tokens are returned too; the caller checks `expires_at`.
    assert_eq!(store.device_token("t1").await.unwrap(), Some(token.clone()));
    assert_eq!(store.device_token("unknown").await.unwrap(), None);

    let err = store.insert_device_token(&token).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .insert_device_token(&device_token("t2", "no-such-device", 5_000))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
}

#[tokio::test]
async fn purge_deletes_expired_device_tokens_and_codes() {
    let store = fresh_store().await;
    store.insert_device(&device("d1", "alice", 1_000)).await.unwrap();
    store
        .insert_device_token(&device_token("t-early", "d1", 100))
        .await
        .unwrap();
    store
        .insert_device_token(&device_token("t-late", "d1", 200))
        .await
        .unwrap();
    store
        .insert_activation_code(&code("c-early", "alice", 100))
        .await
        .unwrap();
    store
        .insert_activation_code(&code("c-late", "alice", 200))
        .await
        .unwrap();
    store
        .insert_activation_code(&code("c-used", "alice", 120))
        .await
        .unwrap();
    assert!(store.consume_activation_code("c-used", 110).await.unwrap().is_some());

    assert_eq!(store.purge_expired_device_tokens(100).await.unwrap(), 0);
    assert_eq!(store.purge_expired_device_tokens(150).await.unwrap(), 1);
    assert_eq!(store.device_token("t-early").await.unwrap(), None);
    assert!(store.device_token("t-late").await.unwrap().is_some());

    assert_eq!(store.purge_expired_activation_codes(100).await.unwrap(), 0);
    assert_eq!(store.purge_expired_activation_codes(150).await.unwrap(), 2);
    // The purged code is gone (so unknown), the other still works.
    assert_eq!(store.consume_activation_code("c-early", 50).await.unwrap(), None);
    assert!(store.consume_activation_code("c-late", 150).await.unwrap().is_some());
}
