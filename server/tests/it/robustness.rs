//! No input, however malformed, produces a 5xx or a panic (DESIGN "Errors"), and
//! the server serves and stops cleanly on a real socket.

use axum::body::Body;
use axum::http::{header, Request};
use outband_protocol::TokenEndpointAuthMethod as M;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::{basic_header, TestServer};

fn param_strategy() -> impl Strategy<Value = String> {
    let names = prop_oneof![
        Just("grant_type"),
        Just("scope"),
        Just("client_id"),
        Just("client_secret"),
        Just("client_assertion"),
        Just("client_assertion_type"),
        Just("token"),
        Just("token_type_hint"),
        Just("auth_req_id"),
        Just("code"),
        Just("refresh_token"),
        Just("login_hint"),
        Just("id_token_hint"),
        Just("login_hint_token"),
        Just("binding_message"),
        Just("requested_expiry"),
        Just("authorization_details"),
        Just("client_notification_token"),
        Just("request"),
        Just("user_code"),
    ];
    let values = prop_oneof![
        Just("client_credentials".to_owned()),
        Just("urn:ietf:params:oauth:client-assertion-type:jwt-bearer".to_owned()),
        Just("urn:openid:params:grant-type:ciba".to_owned()),
        Just("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned()),
        Just("e30.e30.e30".to_owned()),
        Just("openid".to_owned()),
        Just("alice".to_owned()),
        Just("[{\"type\":\"payment_initiation\"}]".to_owned()),
        Just("-1".to_owned()),
        "[a-zA-Z0-9%._~=&+-]{0,40}",
        any::<String>(),
    ];
    (names, values).prop_map(|(n, v)| {
        let v: String = url::form_urlencoded::byte_serialize(v.as_bytes()).collect();
        format!("{n}={v}")
    })
}

fn body_strategy() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(param_strategy(), 0..6).prop_map(|p| p.join("&").into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..300),
    ]
}

#[test]
fn arbitrary_bodies_never_produce_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(async {
        let server = TestServer::new().await;
        server
            .add_secret_client("m", "pw-m", M::ClientSecretBasic, "payments")
            .await;
        server
    });
    let paths = [
        "/token",
        "/introspect",
        "/revoke",
        "/jwks",
        "/.well-known/openid-configuration",
    ];
    let content_types = [
        "application/x-www-form-urlencoded",
        "application/json",
        "text/plain",
        "",
    ];
    let strategy = (body_strategy(), 0..paths.len(), 0..content_types.len(), any::<bool>());
    let mut runner = TestRunner::new(Config {
        cases: 300,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&strategy, |(body, path, content_type, with_auth)| {
            let mut request = Request::post(paths[path]);
            if !content_types[content_type].is_empty() {
                request = request.header(header::CONTENT_TYPE, content_types[content_type]);
            }
            if with_auth {
                let (id, secret) = if paths[path].starts_with("/bc-") {
                    ("c", "c-secret")
                } else {
                    ("m", "pw-m")
                };
                request = request.header(header::AUTHORIZATION, basic_header(id, secret));
            }
            let reply = rt.block_on(server.send(request.body(Body::from(body)).unwrap()));
            prop_assert!(
                reply.status.as_u16() < 500,
                "{} {}: {}",
                paths[path],
                reply.status,
                reply.text
            );
            if reply.status.as_u16() >= 400 && reply.status.as_u16() != 405 {
                prop_assert!(
                    reply.json["error"].is_string(),
                    "not an OAuth error body: {}",
                    reply.text
                );
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn arbitrary_authorization_headers_never_produce_5xx() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = rt.block_on(TestServer::new());
    let mut runner = TestRunner::new(Config {
        cases: 200,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&("(Basic |Bearer |DPoP |basic )?[ -~]{0,80}"), |value| {
            let request = Request::post("/token")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::AUTHORIZATION, value.as_str())
                .body(Body::from("grant_type=client_credentials"))
                .unwrap();
            let reply = rt.block_on(server.send(request));
            prop_assert!(reply.status.as_u16() < 500, "{value:?}: {}", reply.text);
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn serves_on_a_real_socket_and_shuts_down_gracefully() {
    let server = TestServer::new().await;
    server
        .add_secret_client("m", "pw-m", M::ClientSecretBasic, "payments")
        .await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(outband_server::run(listener, server.state.clone(), async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let reply = client
        .post(format!("http://{addr}/token"))
        .basic_auth("m", Some("pw-m"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: serde_json::Value = reply.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    stop.send(()).unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        client.get(format!("http://{addr}/healthz")).send().await.is_err(),
        "the server has stopped"
    );
}
