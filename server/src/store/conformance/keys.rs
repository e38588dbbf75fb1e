//! Signing key generations and the jti replay cache, including their races.

use std::collections::BTreeSet;

use super::{key, sorted};
use crate::store::testing::fresh_store;
use crate::store::{KeyRecord, StoreError};

fn kids(keys: &[KeyRecord]) -> BTreeSet<String> {
    keys.iter().map(|k| k.kid.clone()).collect()
}

#[tokio::test]
async fn first_generation_is_created_once() {
    let store = fresh_store().await;
    assert!(store.signing_keys().await.unwrap().is_empty());
    let first = vec![key("a1", 1, 100), key("a2", 1, 100)];
    assert!(store.create_first_key_generation(&first).await.unwrap());
    assert!(!store.create_first_key_generation(&[key("b1", 1, 200)]).await.unwrap());
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(sorted(&stored, |k| k.kid.clone()), first);
    assert!(!store.create_first_key_generation(&[]).await.unwrap());
}

#[tokio::test]
async fn first_generation_must_be_generation_one() {
    let store = fresh_store().await;
    let err = store
        .create_first_key_generation(&[key("x", 2, 100)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    let err = store
        .create_first_key_generation(&[key("x", 1, 100), key("y", 2, 100)])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database(_)), "{err:?}");
    assert!(store.signing_keys().await.unwrap().is_empty());
    // A failed attempt claims nothing.
    assert!(store.create_first_key_generation(&[key("z", 1, 100)]).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_first_generations_agree_on_one_key_set() {
    let store = fresh_store().await;
    let candidates: Vec<Vec<KeyRecord>> = (0..8)
        .map(|node| vec![key(&format!("n{node}-es"), 1, 100), key(&format!("n{node}-ps"), 1, 100)])
        .collect();
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|keys| {
            let store = store.clone();
            tokio::spawn(async move { store.create_first_key_generation(&keys).await })
        })
        .collect();
    let mut winners = Vec::new();
    for (node, task) in tasks.into_iter().enumerate() {
        if task.await.unwrap().unwrap() {
            winners.push(node);
        }
    }
    assert_eq!(winners.len(), 1, "winners: {winners:?}");
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(kids(&stored), kids(&candidates[winners[0]]));
    assert_eq!(stored.len(), 2);
}

#[tokio::test]
async fn rotation_retires_the_previous_generation_and_purge_waits_for_publish_until() {
    let store = fresh_store().await;
    assert!(store.create_first_key_generation(&[key("g1", 1, 100)]).await.unwrap());
    assert!(store
        .rotate_keys(&[key("g2a", 2, 500), key("g2b", 2, 500)], 500, 900)
        .await
        .unwrap());

    let stored = store.signing_keys().await.unwrap();
    let order: Vec<(&str, i64)> = stored.iter().map(|k| (k.kid.as_str(), k.generation)).collect();
    assert_eq!(order, [("g2a", 2), ("g2b", 2), ("g1", 1)], "newest generation first");
    let old = stored.iter().find(|k| k.kid == "g1").unwrap();
    assert_eq!((old.retired_at, old.publish_until), (Some(500), Some(900)));
    assert!(stored
        .iter()
        .filter(|k| k.generation == 2)
        .all(|k| k.retired_at.is_none() && k.publish_until.is_none()));

    // Still published until 900 (inclusive).
    assert_eq!(store.purge_unpublished_keys(899).await.unwrap(), 0);
    assert_eq!(store.purge_unpublished_keys(900).await.unwrap(), 0);
    assert_eq!(store.signing_keys().await.unwrap().len(), 3);
    assert_eq!(store.purge_unpublished_keys(901).await.unwrap(), 1);
    assert_eq!(
        kids(&store.signing_keys().await.unwrap()),
        kids(&[key("g2a", 2, 0), key("g2b", 2, 0)])
    );
    // Current keys are never purged.
    assert_eq!(store.purge_unpublished_keys(i64::MAX).await.unwrap(), 0);

    // A third generation retires the second but leaves retired keys' times alone.
    assert!(store.rotate_keys(&[key("g3", 3, 1000)], 1000, 1500).await.unwrap());
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.first().map(|k| k.kid.as_str()), Some("g3"));
    assert!(stored
        .iter()
        .filter(|k| k.generation == 2)
        .all(|k| k.retired_at == Some(1000)));
}

#[tokio::test]
async fn rotation_to_a_generation_that_is_not_next_changes_nothing() {
    let store = fresh_store().await;
    // Nothing to rotate from: generation 1 is not created by rotation of generation 2.
    assert!(!store.rotate_keys(&[key("early", 2, 10)], 10, 20).await.unwrap());
    assert!(store.create_first_key_generation(&[key("g1", 1, 100)]).await.unwrap());
    assert!(!store.rotate_keys(&[key("stale", 1, 200)], 200, 300).await.unwrap());
    assert!(!store.rotate_keys(&[key("gap", 3, 200)], 200, 300).await.unwrap());
    assert!(!store.rotate_keys(&[], 200, 300).await.unwrap());
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(kids(&stored), kids(&[key("g1", 1, 0)]));
    assert_eq!(stored.first().and_then(|k| k.retired_at), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rotations_produce_one_generation() {
    let store = fresh_store().await;
    assert!(store.create_first_key_generation(&[key("g1", 1, 100)]).await.unwrap());
    let tasks: Vec<_> = (0..6)
        .map(|node| {
            let store = store.clone();
            let keys = vec![key(&format!("n{node}"), 2, 200)];
            tokio::spawn(async move { store.rotate_keys(&keys, 200, 400).await })
        })
        .collect();
    let mut wins = 0;
    for task in tasks {
        wins += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(wins, 1);
    let stored = store.signing_keys().await.unwrap();
    assert_eq!(stored.len(), 2);
    assert_eq!(stored.iter().filter(|k| k.generation == 2).count(), 1);
}

#[tokio::test]
async fn jti_is_accepted_once_per_namespace() {
    let store = fresh_store().await;
    assert!(store.use_jti("client_assertion:a", "j1", 100).await.unwrap());
    assert!(!store.use_jti("client_assertion:a", "j1", 100).await.unwrap());
    assert!(!store.use_jti("client_assertion:a", "j1", 999).await.unwrap());
    assert!(store.use_jti("client_assertion:b", "j1", 100).await.unwrap());
    assert!(store.use_jti("client_assertion:a", "j2", 200).await.unwrap());

    // Purge forgets only ids that expired before `now`.
    assert_eq!(store.purge_expired_jtis(100).await.unwrap(), 0);
    assert_eq!(store.purge_expired_jtis(101).await.unwrap(), 2);
    assert!(!store.use_jti("client_assertion:a", "j2", 200).await.unwrap());
    assert!(store.use_jti("client_assertion:a", "j1", 300).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_uses_of_one_jti_accept_exactly_one() {
    let store = fresh_store().await;
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.use_jti("client_assertion:race", "same-jti", 1_000).await })
        })
        .collect();
    let mut accepted = 0;
    for task in tasks {
        accepted += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(accepted, 1);
}
