//! Tokens (revocation, cascades, purge) and the audit log.

use outband_protocol::{ClientId, Scope, Subject};
use serde_json::json;

use super::token;
use crate::store::testing::fresh_store;
use crate::store::{AuditEvent, AuditQuery, StoreError, TokenKind, TokenRecord, DEFAULT_AUDIT_LIMIT};

#[tokio::test]
async fn tokens_round_trip_by_hash_and_jti() {
    let store = fresh_store().await;
    let full = TokenRecord {
        token_hash: "h-full".into(),
        kind: TokenKind::Refresh,
        jti: "jti-full".into(),
        client_id: ClientId::new("client-a"),
        subject: Some(Subject::new("sub-alice")),
        scope: Scope::new("openid offline_access"),
        authorization_details: Some(r#"[{"type":"payment_initiation"}]"#.into()),
        grant_id: Some("grant-1".into()),
        cnf_jkt: Some("jkt".into()),
        cnf_x5t: Some("x5t".into()),
        issued_at: 1_000,
        expires_at: 5_000,
        revoked: false,
    };
    let bare = token("h-bare", None, None);
    store.insert_token(&full).await.unwrap();
    store.insert_token(&bare).await.unwrap();

    assert_eq!(store.token("h-full").await.unwrap(), Some(full.clone()));
    assert_eq!(store.token("h-bare").await.unwrap(), Some(bare.clone()));
    assert_eq!(store.token("unknown").await.unwrap(), None);
    assert_eq!(store.token_by_jti("jti-full").await.unwrap(), Some(full.clone()));
    assert_eq!(store.token_by_jti("jti-h-bare").await.unwrap(), Some(bare));
    assert_eq!(store.token_by_jti("unknown").await.unwrap(), None);

    let err = store.insert_token(&full).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

#[tokio::test]
async fn a_token_is_revoked_once() {
    let store = fresh_store().await;
    store.insert_token(&token("h1", None, None)).await.unwrap();
    assert!(store.revoke_token("h1").await.unwrap());
    assert!(!store.revoke_token("h1").await.unwrap());
    assert!(!store.revoke_token("unknown").await.unwrap());
    assert!(store.token("h1").await.unwrap().unwrap().revoked);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_revocations_report_one_revoker() {
    let store = fresh_store().await;
    store.insert_token(&token("h1", None, None)).await.unwrap();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.revoke_token("h1").await })
        })
        .collect();
    let mut revoked = 0;
    for task in tasks {
        revoked += usize::from(task.await.unwrap().unwrap());
    }
    assert_eq!(revoked, 1);
}

#[tokio::test]
async fn revocation_cascades_by_grant_and_by_subject() {
    let store = fresh_store().await;
    for record in [
        token("g1-access", Some("grant-1"), Some("alice")),
        token("g1-refresh", Some("grant-1"), Some("alice")),
        token("g2-access", Some("grant-2"), Some("alice")),
        token("g3-access", Some("grant-3"), Some("bob")),
        token("cc-access", None, None),
    ] {
        store.insert_token(&record).await.unwrap();
    }
    assert!(store.revoke_token("g1-access").await.unwrap());
    // Counts only the tokens this call revoked.
    assert_eq!(store.revoke_tokens_of_grant("grant-1").await.unwrap(), 1);
    assert_eq!(store.revoke_tokens_of_grant("grant-1").await.unwrap(), 0);
    assert_eq!(store.revoke_tokens_of_grant("no-grant").await.unwrap(), 0);
    let revoked = |hash: &'static str| {
        let store = store.clone();
        async move { store.token(hash).await.unwrap().unwrap().revoked }
    };
    assert!(revoked("g1-refresh").await);
    assert!(!revoked("g2-access").await);

    assert_eq!(store.revoke_tokens_of_subject(&Subject::new("alice")).await.unwrap(), 1);
    assert!(revoked("g2-access").await);
    assert!(!revoked("g3-access").await);
    assert!(!revoked("cc-access").await);
    assert_eq!(store.revoke_tokens_of_subject(&Subject::new("alice")).await.unwrap(), 0);
}

#[tokio::test]
async fn purge_deletes_only_expired_tokens() {
    let store = fresh_store().await;
    let mut early = token("early", None, None);
    early.expires_at = 100;
    let mut late = token("late", None, None);
    late.expires_at = 200;
    store.insert_token(&early).await.unwrap();
    store.insert_token(&late).await.unwrap();
    assert_eq!(store.purge_expired_tokens(100).await.unwrap(), 0);
    assert_eq!(store.purge_expired_tokens(150).await.unwrap(), 1);
    assert_eq!(store.token("early").await.unwrap(), None);
    assert_eq!(store.token("late").await.unwrap(), Some(late));
}

fn event(at: i64, name: &str, client: Option<&str>, subject: Option<&str>, request: Option<&str>) -> AuditEvent {
    AuditEvent {
        id: 0,
        at,
        event: name.to_owned(),
        client_id: client.map(str::to_owned),
        subject: subject.map(str::to_owned),
        request_id: request.map(str::to_owned),
        detail: json!({ "n": at, "nested": { "list": [1, "two", null] } }),
    }
}

fn names(events: &[AuditEvent]) -> Vec<&str> {
    events.iter().map(|e| e.event.as_str()).collect()
}

#[tokio::test]
async fn audit_events_are_appended_and_filtered_newest_first() {
    let store = fresh_store().await;
    let inputs = [
        event(10, "e10", Some("c1"), Some("alice"), Some("r1")),
        event(20, "e20", Some("c1"), Some("bob"), Some("r2")),
        event(30, "e30", Some("c2"), Some("alice"), Some("r3")),
        event(30, "e30b", None, None, None),
        event(40, "e40", Some("c1"), Some("alice"), Some("r1")),
    ];
    let mut ids = Vec::new();
    for mut input in inputs.clone() {
        input.id = 999; // ignored
        ids.push(store.append_audit(&input).await.unwrap());
    }
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");

    let all = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(names(&all), ["e40", "e30b", "e30", "e20", "e10"]);
    let first = all.last().unwrap();
    assert_eq!(
        first,
        &AuditEvent {
            id: ids[0],
            ..inputs[0].clone()
        }
    );

    let query = |f: fn(&mut AuditQuery)| {
        let mut q = AuditQuery::default();
        f(&mut q);
        q
    };
    let cases: [(AuditQuery, &[&str]); 8] = [
        (query(|q| q.subject = Some("alice".into())), &["e40", "e30", "e10"]),
        (query(|q| q.client_id = Some("c1".into())), &["e40", "e20", "e10"]),
        (query(|q| q.request_id = Some("r1".into())), &["e40", "e10"]),
        (query(|q| q.since = Some(30)), &["e40", "e30b", "e30"]),
        (query(|q| q.until = Some(30)), &["e20", "e10"]),
        (
            query(|q| {
                q.subject = Some("alice".into());
                q.client_id = Some("c1".into());
                q.since = Some(11);
            }),
            &["e40"],
        ),
        (query(|q| q.limit = 2), &["e40", "e30b"]),
        (query(|q| q.subject = Some("alice' OR '1'='1".into())), &[]),
    ];
    for (q, expected) in cases {
        assert_eq!(names(&store.audit(&q).await.unwrap()), expected, "{q:?}");
    }
}

#[tokio::test]
async fn audit_limit_defaults_to_a_hundred() {
    let store = fresh_store().await;
    let total = i64::from(DEFAULT_AUDIT_LIMIT) + 5;
    for at in 0..total {
        store.append_audit(&event(at, "tick", None, None, None)).await.unwrap();
    }
    let page = store.audit(&AuditQuery::default()).await.unwrap();
    assert_eq!(page.len(), DEFAULT_AUDIT_LIMIT as usize);
    assert_eq!(page.first().map(|e| e.at), Some(total - 1));
    let all = store
        .audit(&AuditQuery {
            limit: 1_000,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(all.len() as i64, total);
}
