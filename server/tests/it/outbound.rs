//! Outbound calls against real HTTP servers on 127.0.0.1: a client's `jwks_uri`
//! used for `private_key_jwt`, and the client's policy (no redirects, size limit,
//! timeouts, allow-list, POST outcomes).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use outband_protocol::jose::SigningKey;
use outband_protocol::{ClientId, ClientMetadata, Scope, SigningAlg, TokenEndpointAuthMethod};
use outband_server::config::Config;
use outband_server::outbound::{OutboundClient, OutboundError};
use serde_json::{json, Value};
use url::Url;

use crate::support::{client_assertion, ClientKey, Reply, TestServer};

/// What the remote server saw of a POST.
#[derive(Clone, Debug)]
struct Received {
    authorization: Option<String>,
    content_type: Option<String>,
    body: Value,
}

/// A client's web server: publishes a JWKS, and misbehaves on purpose elsewhere.
#[derive(Clone, Default)]
struct Remote {
    jwks: Arc<Mutex<Value>>,
    jwks_hits: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Remote {
    async fn start() -> (Self, SocketAddr) {
        let remote = Self::default();
        let app = Router::new()
            .route("/jwks", get(jwks))
            .route("/redirect", get(redirect).post(redirect))
            .route("/big", get(|| async { vec![b' '; 1024 * 1024] }))
            .route("/big-chunked", get(big_chunked))
            .route("/slow", get(slow))
            .route("/not-json", get(|| async { "<html>hello</html>" }))
            .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
            .route("/notify/{status}", post(notify))
            .layer(axum::middleware::from_fn_with_state(remote.clone(), count))
            .with_state(remote.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (remote, addr)
    }

    fn publish(&self, keys: &[&ClientKey]) {
        let keys: Vec<Value> = keys
            .iter()
            .map(|k| Value::Object(k.key.public_jwk().as_ref().clone()))
            .collect();
        *self.jwks.lock().unwrap() = json!({ "keys": keys });
    }

    fn hits(&self) -> usize {
        self.jwks_hits.load(Ordering::SeqCst)
    }

    /// Every request, whatever the path.
    fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

async fn count(
    State(remote): State<Remote>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    remote.requests.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

async fn jwks(State(remote): State<Remote>) -> Json<Value> {
    remote.jwks_hits.fetch_add(1, Ordering::SeqCst);
    Json(remote.jwks.lock().unwrap().clone())
}

async fn redirect() -> (StatusCode, [(header::HeaderName, &'static str); 1]) {
    (StatusCode::FOUND, [(header::LOCATION, "/jwks")])
}

/// 1 MiB with no Content-Length: the limit must hold while reading.
async fn big_chunked() -> Body {
    let chunks = (0..64).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b' '; 16 * 1024])));
    Body::from_stream(futures::stream::iter(chunks))
}

async fn slow() -> Json<Value> {
    tokio::time::sleep(Duration::from_secs(5)).await;
    Json(json!({ "keys": [] }))
}

async fn notify(
    State(remote): State<Remote>,
    Path(status): Path<u16>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> StatusCode {
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &header::HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    remote.received.lock().unwrap().push(Received {
        authorization: text(header::AUTHORIZATION),
        content_type: text(header::CONTENT_TYPE),
        body,
    });
    StatusCode::from_u16(status).unwrap()
}

/// Development settings that let the server call the loopback test servers.
const LOOPBACK: &str = "[outbound]\nallow_insecure_http_loopback = true\nallow_private = [\"127.0.0.1/32\"]\n";

fn outbound_client(extra: &str) -> OutboundClient {
    let text = format!("environment = \"development\"\n{LOOPBACK}{extra}");
    let settings = Config::from_toml(&text).unwrap().validate().unwrap();
    OutboundClient::new(&settings.outbound).unwrap()
}

fn url(addr: SocketAddr, path: &str) -> Url {
    Url::parse(&format!("http://{addr}{path}")).unwrap()
}

fn new_key(alg: SigningAlg) -> ClientKey {
    ClientKey {
        key: SigningKey::from_private_jwk(&alg.generate_private_jwk().unwrap(), alg).unwrap(),
    }
}

/// Registers a `private_key_jwt` client with only a `jwks_uri`.
async fn add_jwks_uri_client(server: &TestServer, id: &str, jwks_uri: Url) {
    let mut meta = ClientMetadata::new(ClientId::new(id));
    meta.token_endpoint_auth_method = TokenEndpointAuthMethod::PrivateKeyJwt;
    meta.scope = Scope::new("payments");
    meta.jwks_uri = Some(jwks_uri);
    server.add_client(meta, None).await;
}

async fn token(server: &TestServer, key: &ClientKey, id: &str) -> Reply {
    let assertion = client_assertion(key, id, server.state.now(), json!({}));
    let body = format!(
        "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion={assertion}"
    );
    server.post_form("/token", &body, None).await
}

mod jwks_uri {
    use super::*;

    #[tokio::test]
    async fn a_client_with_only_a_jwks_uri_authenticates() {
        let (remote, addr) = Remote::start().await;
        let key = new_key(SigningAlg::ES256);
        remote.publish(&[&key]);
        let server = TestServer::with_config(LOOPBACK).await;
        add_jwks_uri_client(&server, "remote-keys", url(addr, "/jwks")).await;

        let reply = token(&server, &key, "remote-keys").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(remote.hits(), 1);
        // Cached: a second authentication does not fetch again.
        let reply = token(&server, &key, "remote-keys").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(remote.hits(), 1);
        // After the cache lifetime, the set is fetched again.
        server.clock.advance(301);
        assert_eq!(token(&server, &key, "remote-keys").await.status, 200);
        assert_eq!(remote.hits(), 2);
    }

    #[tokio::test]
    async fn a_name_is_resolved_and_checked_too() {
        let (remote, addr) = Remote::start().await;
        let key = new_key(SigningAlg::ES256);
        remote.publish(&[&key]);
        let server = TestServer::with_config(LOOPBACK).await;
        let jwks_uri = Url::parse(&format!("http://localhost:{}/jwks", addr.port())).unwrap();
        add_jwks_uri_client(&server, "by-name", jwks_uri).await;
        let reply = token(&server, &key, "by-name").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
    }

    #[tokio::test]
    async fn a_loopback_jwks_uri_is_refused_without_allow_private() {
        let (remote, addr) = Remote::start().await;
        let key = new_key(SigningAlg::ES256);
        remote.publish(&[&key]);
        let server = TestServer::with_config("[outbound]\nallow_insecure_http_loopback = true\n").await;
        add_jwks_uri_client(&server, "internal", url(addr, "/jwks")).await;
        let reply = token(&server, &key, "internal").await;
        reply.assert_error(401, "invalid_client");
        let description = reply.json["error_description"].as_str().unwrap();
        assert!(description.contains("destination refused"), "{description}");
        assert!(description.contains("loopback"), "{description}");
        assert_eq!(remote.requests(), 0, "no request may leave");
    }

    #[tokio::test]
    async fn plain_http_is_refused_without_the_flag() {
        let (remote, addr) = Remote::start().await;
        let key = new_key(SigningAlg::ES256);
        remote.publish(&[&key]);
        let server = TestServer::with_config("[outbound]\nallow_private = [\"127.0.0.1/32\"]\n").await;
        add_jwks_uri_client(&server, "plain", url(addr, "/jwks")).await;
        let reply = token(&server, &key, "plain").await;
        reply.assert_error(401, "invalid_client");
        assert!(reply.text.contains("https"), "{}", reply.text);
        assert_eq!(remote.requests(), 0);
    }

    #[tokio::test]
    async fn a_rotated_client_key_is_picked_up_by_a_refetch() {
        let (remote, addr) = Remote::start().await;
        let old = new_key(SigningAlg::ES256);
        remote.publish(&[&old]);
        let server = TestServer::with_config(LOOPBACK).await;
        add_jwks_uri_client(&server, "rotating", url(addr, "/jwks")).await;
        assert_eq!(token(&server, &old, "rotating").await.status, 200);
        assert_eq!(remote.hits(), 1);

        let new = new_key(SigningAlg::PS256);
        remote.publish(&[&new]);
        // The new kid is unknown, but the set was fetched moments ago: no new
        // fetch yet, so unknown kids cannot make the server hammer the client.
        token(&server, &new, "rotating")
            .await
            .assert_error(401, "invalid_client");
        assert_eq!(remote.hits(), 1);

        server.clock.advance(31);
        let reply = token(&server, &new, "rotating").await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        assert_eq!(remote.hits(), 2);
        // The old key is gone from the set.
        token(&server, &old, "rotating")
            .await
            .assert_error(401, "invalid_client");
        assert_eq!(remote.hits(), 2);
    }

    #[tokio::test]
    async fn a_failing_jwks_uri_is_not_asked_on_every_request() {
        let (remote, addr) = Remote::start().await;
        let key = new_key(SigningAlg::ES256);
        let server = TestServer::with_config(LOOPBACK).await;
        add_jwks_uri_client(&server, "broken", url(addr, "/missing")).await;
        let reply = token(&server, &key, "broken").await;
        reply.assert_error(401, "invalid_client");
        assert!(reply.text.contains("404"), "{}", reply.text);
        assert_eq!(remote.requests(), 1);
        // The failure is remembered for 30 seconds.
        let reply = token(&server, &key, "broken").await;
        reply.assert_error(401, "invalid_client");
        assert!(reply.text.contains("404"), "{}", reply.text);
        assert_eq!(remote.requests(), 1);
        server.clock.advance(31);
        token(&server, &key, "broken").await.assert_error(401, "invalid_client");
        assert_eq!(remote.requests(), 2);
        // A redirect is not followed.
        remote.publish(&[&key]);
        add_jwks_uri_client(&server, "redirected", url(addr, "/redirect")).await;
        let reply = token(&server, &key, "redirected").await;
        reply.assert_error(401, "invalid_client");
        assert!(reply.text.contains("302"), "{}", reply.text);
        assert_eq!(remote.requests(), 3);
        assert_eq!(remote.hits(), 0);
    }
}

mod policy {
    use super::*;

    #[tokio::test]
    async fn redirects_are_not_followed() {
        let (remote, addr) = Remote::start().await;
        remote.publish(&[]);
        let client = outbound_client("");
        let err = client.get_json(&url(addr, "/redirect")).await.unwrap_err();
        assert!(matches!(err, OutboundError::Redirect(302)), "{err:?}");
        assert!(err.to_string().contains("302"), "{err}");
        let err = client
            .post_json(&url(addr, "/redirect"), Some("tok"), &json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Redirect(302)), "{err:?}");
        assert_eq!(remote.hits(), 0, "the redirect target was not requested");
    }

    #[tokio::test]
    async fn oversized_bodies_are_refused() {
        let (_remote, addr) = Remote::start().await;
        let client = outbound_client("");
        for path in ["/big", "/big-chunked"] {
            let err = client.get_json(&url(addr, path)).await.unwrap_err();
            assert!(matches!(err, OutboundError::TooLarge), "{path}: {err:?}");
        }
        // With a higher limit the same body is read (and is not JSON).
        let client = outbound_client("max_response_bytes = 2000000\n");
        let err = client.get_json(&url(addr, "/big-chunked")).await.unwrap_err();
        assert!(matches!(err, OutboundError::InvalidBody(_)), "{err:?}");
    }

    #[tokio::test]
    async fn a_slow_endpoint_times_out_quickly() {
        let (_remote, addr) = Remote::start().await;
        let client = outbound_client("timeout_ms = 500\n");
        let started = Instant::now();
        let err = client.get_json(&url(addr, "/slow")).await.unwrap_err();
        let elapsed = started.elapsed();
        assert!(matches!(err, OutboundError::Timeout), "{err:?}");
        assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    }

    #[tokio::test]
    async fn statuses_and_bodies_are_reported() {
        let (_remote, addr) = Remote::start().await;
        let client = outbound_client("");
        let err = client.get_json(&url(addr, "/missing")).await.unwrap_err();
        assert!(matches!(err, OutboundError::Status(404)), "{err:?}");
        let err = client.get_json(&url(addr, "/not-json")).await.unwrap_err();
        assert!(matches!(err, OutboundError::InvalidBody(_)), "{err:?}");
        // Nothing listens on port 1.
        let err = client
            .get_json(&Url::parse("http://127.0.0.1:1/").unwrap())
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Transport(_)), "{err:?}");
    }

    #[tokio::test]
    async fn post_json_sends_the_bearer_and_reports_the_status() {
        let (remote, addr) = Remote::start().await;
        let client = outbound_client("");
        let body = json!({ "auth_req_id": "abc-123" });
        let outcome = client
            .post_json(&url(addr, "/notify/204"), Some("notification-token"), &body)
            .await
            .unwrap();
        assert_eq!(outcome.status, 204);
        assert!(outcome.is_success());
        let outcome = client.post_json(&url(addr, "/notify/400"), None, &body).await.unwrap();
        assert_eq!(outcome.status, 400);
        assert!(outcome.is_client_error());
        let outcome = client.post_json(&url(addr, "/notify/503"), None, &body).await.unwrap();
        assert_eq!(outcome.status, 503);
        assert!(outcome.is_server_error());

        let received = remote.received.lock().unwrap().clone();
        assert_eq!(received.len(), 3);
        assert_eq!(received[0].authorization.as_deref(), Some("Bearer notification-token"));
        assert_eq!(received[0].content_type.as_deref(), Some("application/json"));
        assert_eq!(received[0].body, body);
        assert_eq!(received[1].authorization, None);
    }

    #[tokio::test]
    async fn loopback_needs_the_allow_list_even_in_development() {
        let (remote, addr) = Remote::start().await;
        remote.publish(&[]);
        let text = "environment = \"development\"\n[outbound]\nallow_insecure_http_loopback = true\n";
        let settings = Config::from_toml(text).unwrap().validate().unwrap();
        let client = OutboundClient::new(&settings.outbound).unwrap();
        let err = client.get_json(&url(addr, "/jwks")).await.unwrap_err();
        assert!(matches!(err, OutboundError::Refused(_)), "{err:?}");
        let err = client
            .post_json(&url(addr, "/notify/204"), Some("notification-token"), &json!({}))
            .await
            .unwrap_err();
        assert!(matches!(err, OutboundError::Refused(_)), "{err:?}");
        assert!(!err.to_string().contains("notification-token"));
        assert_eq!(remote.requests(), 0);
        // A URL is refused at registration time the same way, without a request.
        assert!(client.check_destination(&url(addr, "/jwks")).is_err());
        assert!(client
            .check_destination(&Url::parse("https://169.254.169.254/").unwrap())
            .is_err());
        assert!(client
            .check_destination(&Url::parse("https://client.example/jwks").unwrap())
            .is_ok());
    }
}
