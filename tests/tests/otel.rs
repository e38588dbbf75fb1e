//! OpenTelemetry export (docs/OPERATIONS.md "Tracing"): with the standard
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` set, the server sends its request spans
//! over OTLP/HTTP to a collector, inside the trace the caller's `traceparent`
//! names (whose "sampled" flag cannot keep a request out of the export).

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::Router;
use outband_e2e::{wait_until, Server};

/// What a collector received: path, content type, body.
type Export = (String, String, Vec<u8>);

/// An OTLP/HTTP collector on 127.0.0.1 that records every export.
struct Collector {
    url: String,
    exports: Arc<Mutex<Vec<Export>>>,
}

impl Collector {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/traces", listener.local_addr().unwrap());
        let exports = Arc::new(Mutex::new(Vec::new()));
        let app = Router::new().fallback(record).with_state(Arc::clone(&exports));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, exports }
    }

    /// Whether an export's body holds every one of `needles`.
    fn saw(&self, needles: &[&[u8]]) -> bool {
        self.exports
            .lock()
            .unwrap()
            .iter()
            .any(|(_, _, body)| needles.iter().all(|needle| contains(body, needle)))
    }
}

async fn record(
    State(exports): State<Arc<Mutex<Vec<Export>>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    exports
        .lock()
        .unwrap()
        .push((uri.path().to_owned(), content_type, body.to_vec()));
    StatusCode::OK
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn request_spans_reach_an_otlp_collector_in_the_callers_trace() {
    let collector = Collector::start().await;
    let database_url = outband_server::store::testing::fresh_database_url().await;
    let server = Server::start_with_env(
        &database_url,
        "",
        &[
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", collector.url.as_str()),
            ("OTEL_SERVICE_NAME", "outband-e2e-node"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    )
    .await;

    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let response = reqwest::Client::new()
        .get(format!("{}/.well-known/openid-configuration", server.url))
        // Flags 00: the caller says "not sampled"; the server exports it all the same.
        .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-00"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // The span of that request: in the caller's trace, named for its route,
    // from the service OTEL_SERVICE_NAME names.
    let trace = hex_bytes(trace_id);
    let needles: [&[u8]; 4] = [
        &trace,
        b"outband-e2e-node",
        b"/.well-known/openid-configuration",
        b"http",
    ];
    wait_until(
        "the request's span exported",
        Duration::from_secs(20),
        || std::future::ready(collector.saw(&needles)),
        || {
            format!(
                "{} exports so far\n{}",
                collector.exports.lock().unwrap().len(),
                server.log()
            )
        },
    )
    .await;
    let exports = collector.exports.lock().unwrap();
    let (path, content_type, _) = exports.iter().find(|(_, _, body)| contains(body, &trace)).unwrap();
    assert_eq!(path, "/v1/traces");
    assert_eq!(content_type, "application/x-protobuf");
}
