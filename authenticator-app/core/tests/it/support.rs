//! What every test needs: a server with user alice and a poll-mode CIBA
//! client `pos`, an authenticator on a temporary directory that reads the
//! server's clock, and bounded waits for watch events.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use outband_authenticator_core::{
    Account, Authenticator, Clock, Invite, KeyAlg, KeyStorage, Pin, Session, WatchEnd, WatchEvent,
};
use outband_protocol::DeliveryMode;
use outband_server::clock::Clock as _;
use outband_server::test_server::TestServer;
use serde_json::{json, Value};
use tokio::sync::mpsc::Receiver;
use tokio::task::JoinHandle;

/// The PIN every test device uses.
pub const PIN: &str = "2468";
/// How long a test waits for something that should happen at once.
pub const WAIT: Duration = Duration::from_secs(30);

pub fn pin() -> Pin {
    Pin::new(PIN).unwrap()
}

/// A server with user `alice` (answers through devices) and CIBA client `pos` (poll mode).
pub async fn server() -> TestServer {
    with_users(TestServer::start()).await
}

/// Adds alice and `pos` to `server`.
pub async fn with_users(server: TestServer) -> TestServer {
    server.add_user("alice").await;
    server.add_ciba_client("pos", DeliveryMode::Poll).await;
    server
}

/// The server's clock, for the device (DPoP proofs and request expiry are checked against it).
pub fn server_clock(server: &TestServer) -> Clock {
    let clock = server.clock.clone();
    Arc::new(move || clock.now())
}

/// Keys in the 0600 file: the tests never touch the keyring of the desktop they run on
/// (`os_keyring.rs` tests the keyring with a Secret Service of its own).
pub fn authenticator(server: &TestServer, dir: &Path) -> Authenticator {
    Authenticator::open(dir)
        .unwrap()
        .with_clock(server_clock(server))
        .with_key_storage(KeyStorage::File)
}

/// Enrolls a device for alice with an invitation link; returns it and the account.
pub async fn enrolled(server: &TestServer, dir: &Path) -> (Authenticator, Account) {
    let (_, link) = server.invite("alice").await;
    let authenticator = authenticator(server, dir);
    let invite = Invite::parse(&link, None).unwrap();
    let account = authenticator
        .enroll(&invite, "laptop", KeyAlg::Es256, &pin())
        .await
        .unwrap();
    (authenticator, account)
}

/// Enrolls and unlocks.
pub async fn session(server: &TestServer, dir: &Path) -> Session {
    let (authenticator, account) = enrolled(server, dir).await;
    authenticator.unlock(&account.id, &pin()).unwrap()
}

/// A payment of EUR 12.50 to Corner Café.
pub fn payment() -> Value {
    json!([{
        "type": "payment_initiation",
        "instructedAmount": {"currency": "EUR", "amount": "12.50"},
        "creditorName": "Corner Café",
        "creditorAccount": {"iban": "DE89370400440532013000"},
        "remittanceInformationUnstructured": "Receipt 42",
    }])
}

/// A running watch and its events.
pub struct Watching {
    pub events: Receiver<WatchEvent>,
    pub task: JoinHandle<WatchEnd>,
}

pub fn watch(session: &Session) -> Watching {
    let (tx, events) = tokio::sync::mpsc::channel(64);
    let session = session.clone();
    let task = tokio::spawn(async move { session.watch(tx).await.unwrap() });
    Watching { events, task }
}

impl Watching {
    /// The next event (waiting at most [`WAIT`]).
    pub async fn next(&mut self) -> WatchEvent {
        tokio::time::timeout(WAIT, self.events.recv())
            .await
            .expect("no watch event in time")
            .expect("the watch ended")
    }

    /// Skips events until one `wanted` returns `Some` for; returns the skipped events too.
    pub async fn until<T>(&mut self, mut wanted: impl FnMut(&WatchEvent) -> Option<T>) -> (T, Vec<WatchEvent>) {
        let mut skipped = Vec::new();
        loop {
            let event = self.next().await;
            if let Some(found) = wanted(&event) {
                return (found, skipped);
            }
            skipped.push(event);
        }
    }

    pub async fn connected(&mut self) {
        self.until(|e| matches!(e, WatchEvent::Connected { .. }).then_some(()))
            .await;
    }

    /// Waits for the request `id` (announced, verified); panics on a rejection.
    pub async fn request(&mut self, id: &str) -> outband_authenticator_core::VerifiedRequest {
        self.until(|e| match e {
            WatchEvent::Request { request } if request.id == id => Some((**request).clone()),
            WatchEvent::Rejected {
                id: rejected, error, ..
            } if rejected == id => panic!("{id} rejected: {error}"),
            _ => None,
        })
        .await
        .0
    }
}

/// The public request id of a CIBA request the server holds.
pub async fn request_id(server: &TestServer, auth_req_id: &outband_protocol::AuthReqId) -> String {
    server.request(auth_req_id).await.id
}
