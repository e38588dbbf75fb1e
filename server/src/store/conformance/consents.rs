//! Consent resources: round trip, lookup by grant, and every state change
//! settled once by the database, also under concurrency.

use outband_protocol::{ClientId, Subject};

use crate::store::testing::fresh_store;
use crate::store::{ConsentRecord, ConsentRejection};

fn consent(id: &str) -> ConsentRecord {
    ConsentRecord {
        id: id.to_owned(),
        client_id: ClientId::new("tpp"),
        kind: "payment".to_owned(),
        status: "AwaitingAuthorisation".to_owned(),
        permissions: None,
        payment: Some(r#"{"creditorName":"Shop"}"#.to_owned()),
        logged_user: None,
        subject: None,
        grant_id: None,
        intent_claim: false,
        rejected_by: None,
        rejection_reason: None,
        created_at: 100,
        status_updated_at: 100,
        authorise_by: 200,
        expires_at: Some(1000),
    }
}

#[tokio::test]
async fn consents_round_trip_and_are_found_by_grant() {
    let store = fresh_store().await;
    store.insert_consent(&consent("urn:outband:a")).await.unwrap();
    assert_eq!(
        store.consent("urn:outband:a").await.unwrap(),
        Some(consent("urn:outband:a"))
    );
    assert_eq!(store.consent("urn:outband:b").await.unwrap(), None);
    assert_eq!(store.consent_by_grant("g-1").await.unwrap(), None);

    let alice = Subject::new("sub-alice");
    // The authorisation window is closed at 200.
    assert!(!store
        .authorise_consent("urn:outband:a", &alice, "g-1", true, 200)
        .await
        .unwrap());
    assert!(store
        .authorise_consent("urn:outband:a", &alice, "g-1", true, 150)
        .await
        .unwrap());
    let authorised = store.consent_by_grant("g-1").await.unwrap().unwrap();
    assert_eq!(authorised.status, "Authorised");
    assert_eq!(authorised.subject, Some(alice.clone()));
    assert!(authorised.intent_claim);
    assert_eq!(authorised.status_updated_at, 150);
    // Once only.
    assert!(!store
        .authorise_consent("urn:outband:a", &alice, "g-2", false, 160)
        .await
        .unwrap());

    let revoked = ConsentRejection {
        by: "USER",
        reason: "CUSTOMER_MANUALLY_REVOKED",
    };
    assert!(!store
        .move_consent("urn:outband:a", "AwaitingAuthorisation", "Rejected", Some(revoked), 170)
        .await
        .unwrap());
    assert!(store
        .move_consent("urn:outband:a", "Authorised", "Revoked", Some(revoked), 170)
        .await
        .unwrap());
    let stored = store.consent("urn:outband:a").await.unwrap().unwrap();
    assert_eq!(
        (
            stored.status.as_str(),
            stored.rejected_by.as_deref(),
            stored.rejection_reason.as_deref()
        ),
        ("Revoked", Some("USER"), Some("CUSTOMER_MANUALLY_REVOKED"))
    );
}

#[tokio::test]
async fn concurrent_consumption_moves_a_consent_once() {
    let store = fresh_store().await;
    store.insert_consent(&consent("urn:outband:c")).await.unwrap();
    let alice = Subject::new("sub-alice");
    assert!(store
        .authorise_consent("urn:outband:c", &alice, "g-c", false, 150)
        .await
        .unwrap());
    let attempts = (0..8).map(|_| {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .move_consent("urn:outband:c", "Authorised", "Consumed", None, 160)
                .await
                .unwrap()
        })
    });
    let mut won = 0;
    for attempt in attempts.collect::<Vec<_>>() {
        won += usize::from(attempt.await.unwrap());
    }
    assert_eq!(won, 1);
    let stored = store.consent("urn:outband:c").await.unwrap().unwrap();
    assert_eq!((stored.status.as_str(), stored.rejected_by), ("Consumed", None));
}
