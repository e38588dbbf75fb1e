//! The user's grants from the authenticator: after a CIBA approval the list
//! shows what the application may do; revoking it (library or `outband-device
//! grants revoke`) ends the application's tokens; unknown ids are refused.

use outband_authenticator_core::{Decision, Error};
use outband_server::test_server::TestServer;
use serde_json::Value;

use crate::cli::{enroll, real_time_server, Device};
use crate::support::{enrolled, payment, pin, request_id, server};

/// `GET /userinfo` with the client's access token: the status.
async fn userinfo_status(server: &TestServer, access_token: &str) -> u16 {
    reqwest::Client::new()
        .get(format!("{}/userinfo", server.url))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

const PAYMENT_LINE: &str = "pay EUR 12.50 to Corner Café, account DE89370400440532013000, reference Receipt 42";

#[tokio::test]
async fn the_session_lists_and_revokes_the_grant_of_an_approval() {
    let server = server().await;
    let dir = tempfile::tempdir().unwrap();
    let (authenticator, account) = enrolled(&server, dir.path()).await;
    let session = authenticator.unlock(&account.id, &pin()).unwrap();
    assert!(session.grants().await.unwrap().is_empty());

    let auth_req_id = server
        .bc_authorize("pos", "alice", Some("CAFE-7Q2K"), Some(&payment()))
        .await;
    let pending = session.pending().await.unwrap();
    session
        .decide(&pending[0], Decision::Approve, Some(&pin()), None)
        .await
        .unwrap();
    let (status, tokens) = server.poll_token("pos", &auth_req_id).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let grant_id = tokens["grant_id"].as_str().unwrap();
    assert_eq!(userinfo_status(&server, access_token).await, 200);

    let grants = session.grants().await.unwrap();
    assert_eq!(grants.len(), 1, "{grants:?}");
    let grant = &grants[0];
    assert_eq!(grant.grant_id, grant_id);
    assert_eq!(grant.account, account.id);
    assert_eq!(
        (grant.client_id.as_str(), grant.client_name.as_str()),
        ("pos", "Corner Café")
    );
    assert_eq!(grant.scopes, ["openid", "payments"]);
    assert_eq!(grant.created_at, server.now());
    assert_eq!(
        grant.description,
        [
            "know who you are (your user id)",
            "make payments you approve",
            PAYMENT_LINE
        ]
    );
    assert_eq!(
        grant.authorization_details.as_ref().unwrap()[0]["creditorName"],
        "Corner Café"
    );

    // An id that would leave the grants path is refused here, not sent.
    let escape = session.revoke_grant("../device").await;
    assert!(matches!(escape, Err(Error::UnknownGrant(_))), "{escape:?}");
    let unknown = session.revoke_grant("no-such-grant").await;
    assert!(
        matches!(&unknown, Err(Error::UnknownGrant(id)) if id == "no-such-grant"),
        "{unknown:?}"
    );
    assert_eq!(unknown.unwrap_err().code(), "unknown_grant");
    assert_eq!(session.grants().await.unwrap().len(), 1, "the device still works");

    session.revoke_grant(grant_id).await.unwrap();
    assert_eq!(userinfo_status(&server, access_token).await, 401);
    assert!(session.grants().await.unwrap().is_empty());
    let again = session.revoke_grant(grant_id).await;
    assert!(matches!(again, Err(Error::UnknownGrant(_))), "{again:?}");
}

#[tokio::test]
async fn outband_device_grants_lists_and_revokes() {
    let server = real_time_server().await;
    let device = Device::new();
    enroll(&device, &server).await;
    let listed = device.ok(&["grants"]).await;
    assert!(listed.contains("no application has access to your account"), "{listed}");

    let sale = server
        .bc_authorize("pos", "alice", Some("CAFE-7Q2K"), Some(&payment()))
        .await;
    let sale_id = request_id(&server, &sale).await;
    device.ok(&["approve", &sale_id]).await;
    let (status, tokens) = server.poll_token("pos", &sale).await;
    assert_eq!(status, 200, "{tokens}");
    let access_token = tokens["access_token"].as_str().unwrap();
    let grant_id = tokens["grant_id"].as_str().unwrap();

    let listed = device.ok(&["grants"]).await;
    for expected in [
        format!("grant {grant_id} for alice at {}", server.url),
        "app       Corner Café (pos)".to_owned(),
        "may       know who you are (your user id)".to_owned(),
        format!("          {PAYMENT_LINE}"),
        "given     ".to_owned(),
    ] {
        assert!(listed.contains(&expected), "{expected:?} in\n{listed}");
    }
    let json: Value = serde_json::from_str(&device.ok(&["--json", "grants"]).await).unwrap();
    assert_eq!(json["grants"][0]["grant_id"], grant_id);
    assert_eq!(json["grants"][0]["client_name"], "Corner Café");
    assert_eq!(json["grants"][0]["scopes"][1], "payments");

    // An unknown id: a sentence, exit 1, nothing revoked.
    let stderr = device.fails(&["grants", "revoke", "no-such-grant"], 1).await;
    assert!(
        stderr.contains("no grant no-such-grant: it may have been revoked already"),
        "{stderr}"
    );
    assert_eq!(userinfo_status(&server, access_token).await, 200);
    device.fails(&["grants", "revoke"], 2).await;

    // Revoked by a prefix of its id.
    let out = device.ok(&["grants", "revoke", &grant_id[..12]]).await;
    assert_eq!(
        out.trim(),
        format!("revoked grant {grant_id} of Corner Café: its tokens no longer work")
    );
    assert_eq!(userinfo_status(&server, access_token).await, 401);
    let listed = device.ok(&["grants"]).await;
    assert!(listed.contains("no application has access to your account"), "{listed}");
    let stderr = device.fails(&["grants", "revoke", grant_id], 1).await;
    assert!(stderr.contains(&format!("no grant {grant_id}")), "{stderr}");
}
