//! The conformance suite: what every backend must do, tested through the public
//! Store API only. Each test gets its own database from
//! [`testing::fresh_store`](super::testing::fresh_store), so the suite runs on
//! SQLite by default and on PostgreSQL with `OUTBAND_TEST_BACKEND=postgres`:
//!
//! ```text
//! cargo test -p outband-server --lib store
//! OUTBAND_TEST_BACKEND=postgres cargo test -p outband-server --lib store
//! ```
//!
//! The race tests run on a multi-threaded runtime so the calls really overlap
//! on different connections.
//!
//! Layout: this file has the builders and the client/user tests;
//! `conformance/keys.rs` has signing keys and the jti replay cache;
//! `conformance/tokens.rs` has tokens and the audit log; `conformance/ciba.rs`
//! and `conformance/ciba_polling.rs` have backchannel requests;
//! `conformance/devices.rs` has devices, activation codes and device tokens;
//! `conformance/outbox.rs` has the ping/push outbox.

mod ciba;
mod ciba_polling;
mod consents;
mod devices;
mod keys;
mod outbox;
mod tokens;

use outband_protocol::{ClientId, ClientMetadata, Scope, SigningAlg, Subject};

use super::testing::fresh_store;
use super::*;

pub(super) fn client(id: &str) -> ClientRecord {
    let mut metadata = ClientMetadata::new(ClientId::new(id));
    metadata.client_name = Some(format!("Client {id}"));
    metadata.scope = Scope::new("openid payments");
    metadata.dpop_bound_access_tokens = true;
    ClientRecord {
        metadata,
        secret_hash: Some(format!("hash-of-{id}")),
        created_at: 1_700_000_000,
    }
}

pub(super) fn user(username: &str, email: Option<&str>, phone: Option<&str>) -> UserRecord {
    UserRecord {
        subject: Subject::new(format!("sub-{username}")),
        username: username.to_owned(),
        email: email.map(str::to_owned),
        phone: phone.map(str::to_owned),
        name: Some(format!("{username} Example")),
        password_hash: None,
        user_code_hash: None,
        locked: false,
        test_decision: None,
        created_at: 1_700_000_100,
    }
}

pub(super) fn key(kid: &str, generation: i64, created_at: UnixTime) -> KeyRecord {
    KeyRecord {
        kid: kid.to_owned(),
        alg: SigningAlg::ES256,
        generation,
        public_jwk: format!(r#"{{"kid":"{kid}","kty":"EC"}}"#),
        private_jwk_sealed: format!("sealed-{kid}"),
        created_at,
        retired_at: None,
        publish_until: None,
    }
}

pub(super) fn token(hash: &str, grant_id: Option<&str>, subject: Option<&str>) -> TokenRecord {
    TokenRecord {
        token_hash: hash.to_owned(),
        kind: TokenKind::Access,
        jti: format!("jti-{hash}"),
        client_id: ClientId::new("client-a"),
        subject: subject.map(Subject::new),
        scope: Scope::new("openid payments"),
        authorization_details: None,
        grant_id: grant_id.map(str::to_owned),
        cnf_jkt: None,
        cnf_x5t: None,
        issued_at: 1_000,
        expires_at: 2_000,
        revoked: false,
    }
}

fn sorted<T: Clone, K: Ord>(items: &[T], key: impl Fn(&T) -> K) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort_by_key(key);
    items
}

#[tokio::test]
async fn connects_to_the_configured_backend_and_answers_ping() {
    let store = fresh_store().await;
    let expected = match std::env::var(testing::BACKEND_VAR).as_deref() {
        Ok("postgres") => Backend::Postgres,
        _ => Backend::Sqlite,
    };
    assert_eq!(store.backend(), expected);
    store.ping().await.unwrap();
    // Migrating twice is a no-op (every node migrates at start).
    store.migrate().await.unwrap();
}

#[tokio::test]
async fn clients_round_trip_update_list_and_delete() {
    let store = fresh_store().await;
    let (b, a) = (client("client-b"), client("client-a"));
    store.insert_client(&b).await.unwrap();
    store.insert_client(&a).await.unwrap();

    assert_eq!(store.client(a.client_id()).await.unwrap(), Some(a.clone()));
    assert_eq!(store.client(&ClientId::new("nobody")).await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap(), vec![a.clone(), b.clone()]);

    let mut changed = a.clone();
    changed.metadata.client_name = Some("Renamed".into());
    changed.secret_hash = None;
    changed.created_at = 42; // not updatable: registration time stays
    assert!(store.update_client(&changed).await.unwrap());
    let stored = store.client(a.client_id()).await.unwrap().unwrap();
    assert_eq!(stored.metadata.client_name.as_deref(), Some("Renamed"));
    assert_eq!((stored.secret_hash, stored.created_at), (None, a.created_at));
    assert!(!store.update_client(&client("nobody")).await.unwrap());

    assert!(store.delete_client(a.client_id()).await.unwrap());
    assert!(!store.delete_client(a.client_id()).await.unwrap());
    assert_eq!(store.client(a.client_id()).await.unwrap(), None);
    assert_eq!(store.list_clients().await.unwrap(), vec![b]);
}

#[tokio::test]
async fn duplicate_client_id_is_a_conflict() {
    let store = fresh_store().await;
    store.insert_client(&client("dup")).await.unwrap();
    let err = store.insert_client(&client("dup")).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(what) if what.contains("dup")),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "client dup already exists");
}

#[tokio::test]
async fn deleting_a_client_deletes_its_tokens() {
    let store = fresh_store().await;
    store.insert_client(&client("client-a")).await.unwrap();
    store.insert_token(&token("t1", None, None)).await.unwrap();
    let mut other = token("t2", None, None);
    other.client_id = ClientId::new("client-b");
    store.insert_token(&other).await.unwrap();
    assert!(store.delete_client(&ClientId::new("client-a")).await.unwrap());
    assert_eq!(store.token("t1").await.unwrap(), None);
    assert_eq!(store.token("t2").await.unwrap(), Some(other));
}

#[tokio::test]
async fn corrupt_rows_are_reported_not_panicked_on() {
    let store = fresh_store().await;
    sqlx::query("INSERT INTO clients (client_id, metadata, secret_hash, created_at) VALUES ($1, $2, NULL, 1)")
        .bind("broken")
        .bind("{not json")
        .execute(store.pool())
        .await
        .unwrap();
    let err = store.client(&ClientId::new("broken")).await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    assert!(matches!(store.list_clients().await, Err(StoreError::Corrupt(_))));

    // Metadata of another client under this id.
    sqlx::query("INSERT INTO clients (client_id, metadata, secret_hash, created_at) VALUES ($1, $2, NULL, 1)")
        .bind("impostor")
        .bind(serde_json::to_string(&client("someone-else").metadata).unwrap())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(
        store.client(&ClientId::new("impostor")).await,
        Err(StoreError::Corrupt(_))
    ));

    let alice = user("alice", None, None);
    store.insert_user(&alice).await.unwrap();
    sqlx::query("UPDATE users SET test_decision = 'maybe' WHERE subject = $1")
        .bind(alice.subject.as_str())
        .execute(store.pool())
        .await
        .unwrap();
    assert!(matches!(store.user(&alice.subject).await, Err(StoreError::Corrupt(_))));
}

#[tokio::test]
async fn users_round_trip_and_list_by_username() {
    let store = fresh_store().await;
    let mut bob = user("bob", Some("bob@example.com"), Some("+4915100000001"));
    bob.password_hash = Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
    bob.test_decision = Some(TestDecision::Approve);
    bob.locked = true;
    let alice = user("alice", None, None);
    store.insert_user(&bob).await.unwrap();
    store.insert_user(&alice).await.unwrap();

    // UserRecord's Debug hides most fields, so compare field by field on failure.
    let stored = store.user(&bob.subject).await.unwrap().unwrap();
    assert_eq!(
        (&stored.email, &stored.phone, &stored.name, &stored.password_hash),
        (&bob.email, &bob.phone, &bob.name, &bob.password_hash)
    );
    assert!(stored == bob, "{stored:?}");
    assert!(store.user(&Subject::new("nobody")).await.unwrap().is_none());
    let usernames: Vec<String> = store
        .list_users()
        .await
        .unwrap()
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(usernames, ["alice", "bob"]);
}

#[tokio::test]
async fn duplicate_users_are_conflicts_on_every_unique_key() {
    let store = fresh_store().await;
    store
        .insert_user(&user("alice", Some("Alice@Example.com"), Some("+4915100000001")))
        .await
        .unwrap();
    // Users without e-mail or phone do not collide with each other.
    store.insert_user(&user("nobody1", None, None)).await.unwrap();
    store.insert_user(&user("nobody2", None, None)).await.unwrap();

    let with_subject = |mut user: UserRecord, subject: &str| {
        user.subject = Subject::new(subject);
        user
    };
    // Each collides on exactly one unique key.
    let cases = [
        (with_subject(user("alice", None, None), "sub-2"), "username"),
        (user("alice2", Some("aLICE@example.COM"), None), "email"),
        (user("alice3", None, Some("+4915100000001")), "phone"),
        (with_subject(user("other", None, None), "sub-alice"), "subject"),
    ];
    for (duplicate, key) in cases {
        match store.insert_user(&duplicate).await {
            Err(StoreError::Conflict(what)) => assert!(what.contains(key), "{key}: {what}"),
            other => panic!("{key}: expected a conflict, got {other:?}"),
        }
    }
    assert_eq!(store.list_users().await.unwrap().len(), 3);
}

#[tokio::test]
async fn login_hint_finds_users_by_username_email_or_phone() {
    let store = fresh_store().await;
    let alice = user("alice", Some("Alice.Smith@Example.com"), Some("+4915100000001"));
    store.insert_user(&alice).await.unwrap();
    store
        .insert_user(&user("bob", Some("bob@example.com"), Some("+4915100000002")))
        .await
        .unwrap();

    for hint in [
        "alice",
        "alice.smith@example.com",
        "ALICE.SMITH@EXAMPLE.COM",
        "+4915100000001",
    ] {
        let found = store.user_by_login_hint(hint).await.unwrap();
        assert_eq!(found.map(|u| u.subject), Some(alice.subject.clone()), "{hint}");
    }
    // Usernames and phone numbers match exactly.
    for hint in ["Alice", "4915100000001", "", "sub-alice"] {
        assert!(store.user_by_login_hint(hint).await.unwrap().is_none(), "{hint}");
    }
    // E-mails are stored lowercased.
    let stored = store.user(&alice.subject).await.unwrap().unwrap();
    assert_eq!(stored.email.as_deref(), Some("alice.smith@example.com"));
}

#[tokio::test]
async fn login_hint_prefers_a_username_match() {
    let store = fresh_store().await;
    let by_email = user("carol", Some("dave"), None);
    let by_name = user("dave", None, None);
    store.insert_user(&by_email).await.unwrap();
    store.insert_user(&by_name).await.unwrap();
    let found = store.user_by_login_hint("dave").await.unwrap().unwrap();
    assert_eq!(found.subject, by_name.subject);
}

#[tokio::test]
async fn user_flags_password_and_test_decision_update() {
    let store = fresh_store().await;
    let alice = user("alice", None, None);
    let nobody = Subject::new("nobody");
    store.insert_user(&alice).await.unwrap();

    assert!(store.set_user_locked(&alice.subject, true).await.unwrap());
    assert!(store.user(&alice.subject).await.unwrap().unwrap().locked);
    assert!(store.set_user_locked(&alice.subject, false).await.unwrap());
    assert!(!store.user(&alice.subject).await.unwrap().unwrap().locked);
    assert!(!store.set_user_locked(&nobody, true).await.unwrap());

    assert!(store
        .set_password_hash(&alice.subject, Some("$argon2id$x"))
        .await
        .unwrap());
    assert_eq!(
        store
            .user(&alice.subject)
            .await
            .unwrap()
            .unwrap()
            .password_hash
            .as_deref(),
        Some("$argon2id$x")
    );
    assert!(store.set_password_hash(&alice.subject, None).await.unwrap());
    assert_eq!(store.user(&alice.subject).await.unwrap().unwrap().password_hash, None);
    assert!(!store.set_password_hash(&nobody, None).await.unwrap());

    for decision in [Some(TestDecision::Deny), Some(TestDecision::Approve), None] {
        assert!(store.set_test_decision(&alice.subject, decision).await.unwrap());
        assert_eq!(
            store.user(&alice.subject).await.unwrap().unwrap().test_decision,
            decision
        );
    }
    assert!(!store.set_test_decision(&nobody, None).await.unwrap());
}

#[tokio::test]
async fn deleting_a_user_deletes_their_tokens_once() {
    let store = fresh_store().await;
    let alice = user("alice", Some("alice@example.com"), None);
    store.insert_user(&alice).await.unwrap();
    store
        .insert_token(&token("t-alice", None, Some("sub-alice")))
        .await
        .unwrap();
    store
        .insert_token(&token("t-bob", None, Some("sub-bob")))
        .await
        .unwrap();

    assert!(store.delete_user(&alice.subject).await.unwrap());
    assert!(!store.delete_user(&alice.subject).await.unwrap());
    assert!(store.user(&alice.subject).await.unwrap().is_none());
    assert!(store.user_by_login_hint("alice@example.com").await.unwrap().is_none());
    assert_eq!(store.token("t-alice").await.unwrap(), None);
    assert!(store.token("t-bob").await.unwrap().is_some());
    // The username is free again.
    store.insert_user(&alice).await.unwrap();
}
