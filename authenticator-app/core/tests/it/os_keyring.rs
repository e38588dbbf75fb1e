//! The `os-keyring` feature against a real Secret Service: the sealed key goes
//! to the OS keyring (not to `keys/`), unlocking and approving read it from
//! there, and removing the account deletes it. Compiled only with the
//! feature; runs only when `OUTBAND_TEST_OS_KEYRING=1` says a Secret Service
//! with an unlocked default collection is on the session bus (without one the
//! core falls back to the file, which the other tests cover). How to run it:
//! docs/authenticator.md, "The OS keyring".
#![cfg(feature = "os-keyring")]

use outband_authenticator_core::{Decision, KeyStorage};
use outband_server::store::CibaState;

use crate::support::{enrolled, payment, pin, request_id, server};

#[tokio::test]
async fn the_sealed_key_lives_in_the_os_keyring_and_goes_with_the_account() {
    if std::env::var("OUTBAND_TEST_OS_KEYRING").as_deref() != Ok("1") {
        eprintln!("OUTBAND_TEST_OS_KEYRING is not 1 (no Secret Service promised): skipped");
        return;
    }
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    assert_eq!(account.key_storage, KeyStorage::OsKeyring);
    let keys = dir.path().join("keys");
    assert!(
        !keys.exists() || std::fs::read_dir(&keys).unwrap().next().is_none(),
        "no sealed key file"
    );
    let entry = keyring::Entry::new("outband-device", &account.id.0).unwrap();
    let sealed = entry.get_password().unwrap();
    assert!(!sealed.contains("\"d\""), "only the sealed blob is in the keyring");

    // Unlock and approve with the key from the keyring.
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    let auth_req_id = server
        .bc_authorize("pos", "alice", Some("KEYR-0001"), Some(&payment()))
        .await;
    let id = request_id(&server, &auth_req_id).await;
    let request = session
        .pending()
        .await
        .unwrap()
        .into_iter()
        .find(|r| r.id == id)
        .unwrap();
    session
        .decide(&request, Decision::Approve, Some(&pin()), None)
        .await
        .unwrap();
    assert_eq!(server.request(&auth_req_id).await.state, CibaState::Approved);

    // Removing the account deletes the keyring entry.
    authenticator.remove(&account.id, &pin(), false).await.unwrap();
    assert!(matches!(entry.get_password(), Err(keyring::Error::NoEntry)));
}
