//! `users invite` and `devices list|revoke` through the real binary, checked
//! against a server over the same database.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request};
use http_body_util::BodyExt;
use outband_protocol::jose::{jwk_thumbprint, parse_jwk};
use outband_protocol::SigningAlg;
use outband_server::clock::SystemClock;
use outband_server::config::Config;
use outband_server::state::AppState;
use outband_server::store::Store;
use serde_json::{json, Value};
use tower::ServiceExt;

use crate::cli_support::{CliEnv as Env, ISSUER};
use crate::device_support::{device_key, public_jwk};

/// A server over the same database and key file as the commands of `env`.
async fn server(env: &Env) -> AppState {
    let text = format!(
        "issuer = \"{ISSUER}\"\nenvironment = \"development\"\ndatabase_url = \"{}\"\nkey_file = \"{}\"\n",
        env.database_url(),
        env.key_file().display()
    );
    let settings = Config::from_toml(&text).unwrap().validate().unwrap();
    let store = Store::connect(&settings.database_url).await.unwrap();
    store.migrate().await.unwrap();
    AppState::build(settings, store, Arc::new(SystemClock)).await.unwrap()
}

async fn call(state: &AppState, request: Request<Body>) -> (u16, Value) {
    let response = outband_server::app(state.clone()).oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test]
async fn invite_links_name_the_as_key_and_enroll_a_device() {
    let env = Env::new();
    env.ok(&["users", "add", "alice", "--email", "alice@example.com"]);
    let invite: Value = serde_json::from_str(&env.ok(&["users", "invite", "alice", "--json"])).unwrap();
    let code = invite["code"].as_str().unwrap();
    assert!(code.len() >= 26, "at least 128 bits");
    assert!(invite["expires_at"].as_i64().unwrap() > 0);
    let link = url::Url::parse(invite["link"].as_str().unwrap()).unwrap();
    assert_eq!(link.scheme(), "outband");
    assert_eq!(link.host_str(), Some("enroll"));
    assert!(invite["link"]
        .as_str()
        .unwrap()
        .contains("issuer=https%3A%2F%2Fas.example.test"));
    let param = |name: &str| {
        link.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_else(|| panic!("no {name} in {link}"))
    };
    assert_eq!(param("issuer"), ISSUER);
    assert_eq!(param("code"), code);

    let state = server(&env).await;
    let (status, jwks) = call(&state, Request::get("/jwks").body(Body::empty()).unwrap()).await;
    assert_eq!(status, 200);
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == param("kid").as_str())
        .expect("the link's kid is in /jwks");
    assert_eq!(key["alg"], SigningAlg::ES256.as_str());
    assert_eq!(jwk_thumbprint(&parse_jwk(key).unwrap()).unwrap(), param("jkt"));

    // The code enrolls a device on the server.
    let body =
        json!({ "activation_code": code, "public_jwk": public_jwk(&device_key(SigningAlg::ES256)), "name": "laptop" });
    let request = Request::post("/device/v1/enroll")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let (status, enrolled) = call(&state, request).await;
    assert_eq!(status, 201, "{enrolled}");
    let device_id = enrolled["device_id"].as_str().unwrap().to_owned();
    state.store.close().await;

    let list: Value = serde_json::from_str(&env.ok(&["devices", "list", "--user", "alice", "--json"])).unwrap();
    assert_eq!(list[0]["device_id"], device_id.as_str());
    assert_eq!(list[0]["username"], "alice");
    assert_eq!(list[0]["revoked_at"], Value::Null);
    assert!(env.ok(&["devices", "list"]).contains(&device_id));
    assert!(env.ok(&["devices", "revoke", &device_id]).contains("revoked device"));
    assert!(env
        .fails(&["devices", "revoke", &device_id])
        .contains("already revoked"));
    assert!(env.fails(&["devices", "revoke", "nope"]).contains("no device nope"));
    assert!(env.ok(&["devices", "list"]).contains("revoked "));
    let audit = env.ok(&["audit", "--json"]);
    assert!(
        audit.contains("device.revoked") && audit.contains("device.enrolled"),
        "{audit}"
    );
    assert!(!audit.contains(code), "codes never reach the audit log");
}

#[test]
fn invite_prints_text_and_a_qr_code_when_asked() {
    let env = Env::new();
    env.ok(&["users", "add", "bob"]);
    let text = env.ok(&["users", "invite", "bob"]);
    assert!(text.contains("activation code for bob"), "{text}");
    assert!(text.contains("link: outband://enroll?issuer="), "{text}");
    assert!(
        !text.contains('█') && !text.contains('▀'),
        "no QR code when stdout is not a terminal"
    );
    let code_line = text.lines().find(|l| l.starts_with("    ")).unwrap().trim();
    assert_eq!(code_line.split('-').count(), 7, "shown in groups: {code_line}");
    let with_qr = env.ok(&["users", "invite", "bob", "--qr", "--ttl", "120"]);
    assert!(with_qr.contains('▀') || with_qr.contains('▄'), "{with_qr}");
    assert!(env
        .fails(&["users", "invite", "bob", "--ttl", "5"])
        .contains("between 60 and 86400"));
    assert!(env.fails(&["users", "invite", "mallory"]).contains("no user mallory"));
    assert!(env.ok(&["devices", "list"]).contains("no devices"));
}
