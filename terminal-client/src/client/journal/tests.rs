use std::sync::Arc;

use outband_protocol::ClientSecret;

use super::*;
use crate::client::auth::ClientAuth;

const NOW: i64 = 1_800_000_000;

fn client() -> CibaClient {
    CibaClient::builder()
        .set_issuer("http://127.0.0.1:9")
        .set_client_id("till")
        .set_client_auth(ClientAuth::ClientSecretBasic(ClientSecret::new("s")))
        .set_clock(Arc::new(|| NOW))
        .build()
        .unwrap()
}

fn sale(reference: Option<&str>) -> SaleRequest {
    let mut sale = SaleRequest::new("12.50".parse().unwrap(), "EUR".parse().unwrap(), "bob", "Corner Café");
    sale.reference = reference.map(str::to_owned);
    sale
}

/// A started sale as the server would have answered it.
fn started(client: &CibaClient, entry: &JournalEntry) -> Started {
    let parts = ResumeParts {
        auth_req_id: AuthReqId::new("the-auth-req-id"),
        notification_token: None,
        code: "CORN-7Q2K".into(),
        binding_message: BindingMessage::new("CORN-7Q2K · EUR 12.50"),
        reference: entry.sale.reference.clone().unwrap_or_else(|| "CORN-7Q2K".into()),
        mode: DeliveryMode::Poll,
        sale: entry.sale.clone(),
        interval: Duration::from_secs(5),
        started_unix: NOW,
        expires_at: NOW + 120,
    };
    Started::resume(client, parts).unwrap()
}

#[cfg(unix)]
fn mode_of(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn a_reference_cannot_be_in_flight_twice() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path().join("pos")).unwrap();
    let client = client();
    let mut first = journal.begin(&client, &sale(Some("INV-1"))).unwrap();
    let err = journal.begin(&client, &sale(Some("INV-1"))).unwrap_err();
    assert!(matches!(err, JournalError::InFlight(ref r) if r == "INV-1"), "{err}");
    assert!(err.to_string().contains("INV-1"));
    journal.begin(&client, &sale(Some("INV-2"))).unwrap();
    journal.begin(&client, &sale(None)).unwrap();
    journal.begin(&client, &sale(None)).unwrap();
    assert_eq!(journal.unresolved().unwrap().len(), 4);

    journal.resolve(&mut first, SaleState::Denied, None, NOW + 1).unwrap();
    journal
        .begin(&client, &sale(Some("INV-1")))
        .expect("a closed reference is free again");
    let done = journal.resolved().unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].state, SaleState::Denied);
    assert_eq!(done[0].resolved_at, Some(NOW + 1));
}

#[test]
fn an_open_sale_keeps_its_auth_req_id_in_a_private_file_and_drops_it_when_closed() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let client = client();
    let mut entry = journal.begin(&client, &sale(Some("INV-9"))).unwrap();
    let started = started(&client, &entry);
    journal.record_started(&mut entry, &started).unwrap();

    let [open] = journal.unresolved().unwrap().try_into().unwrap();
    assert_eq!(open.state, SaleState::InFlight);
    assert_eq!(open.expires_at, Some(NOW + 120));
    assert_eq!(open.binding_message.as_ref().unwrap().as_str(), "CORN-7Q2K · EUR 12.50");
    assert!(!format!("{open:?}").contains("the-auth-req-id"), "{open:?}");
    let file = journal.inflight_path(&open);
    assert!(std::fs::read_to_string(&file).unwrap().contains("the-auth-req-id"));
    #[cfg(unix)]
    {
        assert_eq!(mode_of(&file), 0o600);
        assert_eq!(mode_of(dir.path()), 0o700);
    }

    journal
        .resolve_outcome(&mut entry, &Outcome::Expired, NOW + 130)
        .unwrap();
    assert!(!file.exists());
    assert!(journal.unresolved().unwrap().is_empty());
    for item in std::fs::read_dir(dir.path().join(DONE)).unwrap() {
        let text = std::fs::read_to_string(item.unwrap().path()).unwrap();
        assert!(
            !text.contains("the-auth-req-id"),
            "a closed sale keeps no credential: {text}"
        );
    }
}

#[test]
fn open_sales_of_another_live_process_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let mut entry = journal.begin(&client(), &sale(Some("INV-3"))).unwrap();
    entry.pid = 1; // init: alive on Linux
    journal.replace(&journal.inflight_path(&entry), &entry).unwrap();
    let expected = if cfg!(target_os = "linux") { 0 } else { 1 };
    assert_eq!(journal.unresolved().unwrap().len(), expected);
}

#[test]
fn a_damaged_record_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    std::fs::write(dir.path().join(INFLIGHT).join("ref-x.json"), "{not json").unwrap();
    let err = journal.unresolved().unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("ref-x.json"), "{err}");
}

#[tokio::test]
async fn recovering_needs_the_same_client_and_an_id() {
    let dir = tempfile::tempdir().unwrap();
    let journal = Journal::open(dir.path()).unwrap();
    let client = client();
    let entry = journal.begin(&client, &sale(Some("INV-4"))).unwrap();
    assert!(matches!(client.recover(&entry).await.unwrap(), Recovery::Lost));

    let other = CibaClient::builder()
        .set_issuer("http://127.0.0.1:9")
        .set_client_id("another-till")
        .set_client_auth(ClientAuth::ClientSecretBasic(ClientSecret::new("s")))
        .build()
        .unwrap();
    let err = other.recover(&entry).await.unwrap_err();
    assert!(
        err.to_string().contains("INV-4") && err.to_string().contains("till"),
        "{err}"
    );
}
