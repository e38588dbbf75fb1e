//! The commands on Tauri's mock runtime with the app's real capabilities, against a real server.

use serde_json::json;

use crate::server::Server;
use crate::support::{code, MockApp};

fn app(dir: &tempfile::TempDir) -> MockApp {
    MockApp::new(dir.path())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_device_has_no_accounts_no_requests_and_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    assert_eq!(app.call("list_accounts", json!({})).await.unwrap(), json!([]));
    assert_eq!(app.call("list_requests", json!({})).await.unwrap(), json!([]));
    assert_eq!(app.call("history", json!({})).await.unwrap(), json!([]));
    assert_eq!(app.call("take_link", json!({})).await.unwrap(), json!(null));
    let settings = app.call("get_settings", json!({})).await.unwrap();
    assert_eq!(settings["notifications"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_enrollment_input_gives_a_typed_error() {
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    let args = |input: &str, pin2: &str| json!({"input": input, "issuer": null, "device_name": "test", "pin": "1234", "pin_repeat": pin2});
    // A bare code needs the server's address.
    let err = app.call("enroll", args("ABCD-EFGH", "1234")).await.unwrap_err();
    assert_eq!(code(&err), "invalid_invite", "{err}");
    assert!(!err["message"].as_str().unwrap().is_empty());
    let err = app
        .call("enroll", args("not a code at all!", "1234"))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_invite", "{err}");
    let link = "outband://enroll?issuer=http%3A%2F%2F127.0.0.1%3A1&code=ABCDEFGH";
    let err = app.call("enroll", args(link, "4321")).await.unwrap_err();
    assert_eq!(code(&err), "pin_mismatch", "{err}");
    let err = app
        .call(
            "enroll",
            json!({"input": "ABCD", "issuer": "not a url", "device_name": "", "pin": "1234", "pin_repeat": "1234"}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_input", "{err}");
    // A QR "image" that is no image.
    let qr = |image: &str| json!({"image_base64": image, "device_name": "", "pin": "1234", "pin_repeat": "1234"});
    let err = app.call("enroll_from_qr", qr("%%%")).await.unwrap_err();
    assert_eq!(code(&err), "invalid_input", "{err}");
    let err = app
        .call("enroll_from_qr", qr("data:image/png;base64,aGVsbG8="))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_invite", "{err}");
    // Nothing was stored.
    assert_eq!(app.call("list_accounts", json!({})).await.unwrap(), json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_lock_and_unlock_with_the_right_pin_only() {
    let server = Server::start().await.unwrap();
    let link = server.invite_link("alice").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    {
        let app = app(&dir);
        let account = app
            .call(
                "enroll",
                json!({"input": link, "issuer": null, "device_name": "Alice's desktop", "pin": "2468", "pin_repeat": "2468"}),
            )
            .await
            .unwrap();
        assert_eq!(account["username"], "alice");
        assert_eq!(account["device_name"], "Alice's desktop");
        assert!(account.get("device_credential").is_none() && account.get("private_jwk").is_none());
        assert_ne!(account["status"]["state"], "locked", "enrolling unlocks: {account}");
        assert_eq!(server.devices_of("alice").await.unwrap(), 1);
        // The code was used once.
        let err = app
            .call(
                "enroll",
                json!({"input": link, "issuer": null, "device_name": "again", "pin": "2468", "pin_repeat": "2468"}),
            )
            .await
            .unwrap_err();
        assert_eq!(code(&err), "server", "{err}");
    }

    // A restart: the account is there, locked.
    let app = app(&dir);
    let accounts = app.call("list_accounts", json!({})).await.unwrap();
    assert_eq!(accounts.as_array().unwrap().len(), 1);
    assert_eq!(accounts[0]["status"]["state"], "locked");
    let id = accounts[0]["id"].clone();

    let err = app
        .call("unlock", json!({"pin": "1111", "account": null}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "wrong_pin", "{err}");
    let err = app
        .call("unlock", json!({"pin": "1111", "account": id}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "wrong_pin", "{err}");
    let err = app
        .call("unlock", json!({"pin": "12", "account": null}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "invalid_pin", "{err}");
    let accounts = app.call("list_accounts", json!({})).await.unwrap();
    assert_eq!(accounts[0]["status"]["state"], "locked");

    let report = app
        .call("unlock", json!({"pin": "2468", "account": null}))
        .await
        .unwrap();
    assert_eq!(report["unlocked"], json!([id]));
    assert_eq!(report["locked"], json!([]));
    let accounts = app.call("list_accounts", json!({})).await.unwrap();
    assert_ne!(accounts[0]["status"]["state"], "locked");

    // Deciding on a request that is not on screen.
    let err = app
        .call("approve", json!({"id": "nope", "pin": "2468", "number_match": null}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "unknown_request", "{err}");
    let err = app
        .call("deny", json!({"id": "nope", "fraud": true}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "unknown_request", "{err}");

    // Removing needs the PIN, then revokes the device at the server.
    let err = app
        .call("remove_account", json!({"account": id, "pin": "1111", "force": false}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "wrong_pin", "{err}");
    app.call("remove_account", json!({"account": id, "pin": "2468", "force": false}))
        .await
        .unwrap();
    assert_eq!(app.call("list_accounts", json!({})).await.unwrap(), json!([]));
    assert_eq!(server.devices_of("alice").await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_becomes_a_card_without_its_jwt_and_is_approved() {
    let server = Server::start().await.unwrap();
    let link = server.invite_link("alice").await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let app = app(&dir);
    app.call(
        "enroll",
        json!({"input": link, "issuer": null, "device_name": "", "pin": "2468", "pin_repeat": "2468"}),
    )
    .await
    .unwrap();
    let auth_req_id = server
        .bc_authorize(&[
            ("scope", "openid payments"),
            ("login_hint", "alice"),
            ("binding_message", "TILL-42"),
            (
                "authorization_details",
                r#"[{"type":"payment_initiation","instructedAmount":{"currency":"EUR","amount":"3.20"},"creditorName":"Kiosk"}]"#,
            ),
        ])
        .await
        .unwrap();
    // The card arrives through the stream (or the catch-up after connecting).
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(20);
    let card = loop {
        let cards = app.call("list_requests", json!({})).await.unwrap();
        if let Some(card) = cards.as_array().and_then(|c| c.first()) {
            break card.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "no card within 20 s");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert_eq!(card["binding_message"], "TILL-42");
    assert_eq!(card["display_amount"], "EUR 3.20");
    assert_eq!(card["payment"]["creditor_name"], "Kiosk");
    assert_eq!(card["username"], "alice");
    assert!(
        card.get("request_jwt").is_none(),
        "the signed JWT stays in Rust: {card}"
    );
    let id = card["id"].clone();

    let err = app
        .call("approve", json!({"id": id, "pin": "0000", "number_match": null}))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "wrong_pin", "{err}");
    assert_eq!(
        server.poll_token(&auth_req_id).await.unwrap()["error"],
        "authorization_pending"
    );

    let outcome = app
        .call("approve", json!({"id": id, "pin": "2468", "number_match": null}))
        .await
        .unwrap();
    assert_eq!(outcome["state"], "approved");
    assert_eq!(app.call("list_requests", json!({})).await.unwrap(), json!([]));
    let tokens = server.poll_token(&auth_req_id).await.unwrap();
    assert!(tokens["access_token"].is_string(), "{tokens}");
    let history = app.call("history", json!({})).await.unwrap();
    assert_eq!(history[0]["decision"], "approve");
    assert_eq!(history[0]["binding_message"], "TILL-42");

    // The approval is a grant the user can see and revoke from the app.
    let grants = app.call("list_grants", json!({})).await.unwrap();
    let grant = grants
        .as_array()
        .and_then(|g| g.first())
        .cloned()
        .unwrap_or_else(|| panic!("no grant listed: {grants}"));
    assert_eq!(grant["scopes"], json!(["openid", "payments"]), "{grant}");
    assert!(grant["description"].to_string().contains("3.20"), "{grant}");
    let err = app
        .call(
            "revoke_grant",
            json!({"account": grant["account"], "grant_id": "no-such-grant"}),
        )
        .await
        .unwrap_err();
    assert_eq!(code(&err), "unknown_grant", "{err}");
    app.call(
        "revoke_grant",
        json!({"account": grant["account"], "grant_id": grant["grant_id"]}),
    )
    .await
    .unwrap();
    assert_eq!(app.call("list_grants", json!({})).await.unwrap(), json!([]));
    let access_token = tokens["access_token"].as_str().unwrap();
    assert_eq!(server.introspect(access_token).await.unwrap()["active"], false);
}
