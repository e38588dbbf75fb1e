//! Prometheus metrics (`GET /metrics`, [`crate::endpoints::metrics`]).
//!
//! The [`metrics`] facade records; the `metrics-exporter-prometheus` recorder
//! keeps the values and renders the text exposition format. The recorder is
//! process-global: it is installed once ([`install`]), the first time a router
//! is built with `[metrics] enabled = true`; before that (and in a server with
//! metrics off) every record call is a no-op.
//!
//! Counters and histograms are per node (each node counts what it did; sum
//! them across nodes). `outband_ciba_pending` is read from the database at
//! every scrape, so every node reports the same, cluster-wide number (take its
//! `max`, not its `sum`, across nodes).

pub mod config;
pub mod http;
pub mod otel;

use std::future::Future;
use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use outband_protocol::DeliveryMode;

use crate::error::{Error, Result};
use crate::state::AppState;
use crate::store::NotificationKind;

pub use config::{MetricsConfig, MetricsSettings};

/// Requests answered, by `method`, `route` (the router's path pattern) and `status`.
pub const HTTP_REQUESTS: &str = "outband_http_requests_total";
/// Seconds from a request's arrival to its response's head, by `route`.
pub const HTTP_DURATION: &str = "outband_http_request_duration_seconds";
/// CIBA requests by delivery `mode` and `outcome`.
pub const CIBA_REQUESTS: &str = "outband_ciba_requests_total";
/// CIBA requests waiting for a decision, by `mode` (from the database).
pub const CIBA_PENDING: &str = "outband_ciba_pending";
/// Ping/push notification attempts by `kind` and `result`.
pub const NOTIFICATION_DELIVERIES: &str = "outband_notification_deliveries_total";
/// Seconds from a CIBA request's creation to the device's decision.
pub const DECISION_LATENCY: &str = "outband_device_decision_latency_seconds";

const HTTP_BUCKETS: &[f64] = &[0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0];
const DECISION_BUCKETS: &[f64] = &[1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0];
/// How often histogram samples are folded into their buckets between scrapes.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);
const MODES: [DeliveryMode; 3] = [DeliveryMode::Poll, DeliveryMode::Ping, DeliveryMode::Push];

/// What happened to a CIBA request (the `outcome` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CibaOutcome {
    /// Accepted at `/bc-authorize`.
    Started,
    /// Approved (by a device, a test user or the admin endpoint).
    Approved,
    /// Denied.
    Denied,
    /// Expired undecided.
    Expired,
    /// Cancelled by its client.
    Cancelled,
    /// Refused at `/bc-authorize` by the client's rate limit (429, [`crate::rate_limit`]).
    RateLimited,
}

impl CibaOutcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Approved => "approved",
            Self::Denied => "denied",
            Self::Expired => "expired",
            Self::Cancelled => "cancelled",
            Self::RateLimited => "rate_limited",
        }
    }
}

/// The result of one notification attempt (the `result` label).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    /// The client answered 2xx.
    Delivered,
    /// Failed; another attempt is scheduled.
    Retried,
    /// Failed for good (4xx, refused destination, or the last attempt).
    Failed,
}

impl DeliveryResult {
    fn as_str(self) -> &'static str {
        match self {
            Self::Delivered => "delivered",
            Self::Retried => "retried",
            Self::Failed => "failed",
        }
    }
}

/// Installs the process-wide recorder once; `None` when it could not be
/// installed (another recorder was there first: logged once).
pub fn install() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| match builder().and_then(PrometheusBuilder::install_recorder) {
            Ok(handle) => {
                describe();
                Some(handle)
            }
            Err(err) => {
                tracing::error!(error = %err, "could not install the metrics recorder; /metrics will fail");
                None
            }
        })
        .as_ref()
}

fn builder() -> std::result::Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(HTTP_DURATION.to_owned()), HTTP_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(DECISION_LATENCY.to_owned()), DECISION_BUCKETS)
}

fn describe() {
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by method, route pattern and status."
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from a request's arrival to its response head, by route pattern."
    );
    describe_counter!(CIBA_REQUESTS, "CIBA requests by delivery mode and outcome.");
    describe_gauge!(
        CIBA_PENDING,
        "CIBA requests waiting for a decision, by delivery mode (whole database)."
    );
    describe_counter!(
        NOTIFICATION_DELIVERIES,
        "CIBA ping/push notification attempts by kind and result."
    );
    describe_histogram!(
        DECISION_LATENCY,
        Unit::Seconds,
        "Time from a CIBA request's creation to the device's decision."
    );
}

/// Counts a CIBA request reaching `outcome`.
pub fn ciba_request(mode: DeliveryMode, outcome: CibaOutcome) {
    counter!(CIBA_REQUESTS, "mode" => mode.as_str(), "outcome" => outcome.as_str()).increment(1);
}

/// Counts one notification attempt.
pub fn notification_delivery(kind: NotificationKind, result: DeliveryResult) {
    counter!(NOTIFICATION_DELIVERIES, "kind" => kind.as_str(), "result" => result.as_str()).increment(1);
}

/// Records a device decision made `seconds` after its request was created.
pub fn decision_latency(seconds: i64) {
    #[allow(clippy::cast_precision_loss)] // seconds, far below 2^52
    histogram!(DECISION_LATENCY).record(seconds.max(0) as f64);
}

/// The text exposition of every metric, with the pending gauge read from the database now.
pub async fn render(state: &AppState) -> Result<String> {
    let handle = install().ok_or_else(|| Error::internal("the metrics recorder is not installed"))?;
    let pending = state.store.count_pending_ciba_requests_by_mode(state.now()).await?;
    for mode in MODES {
        let count = pending
            .iter()
            .find(|(name, _)| name == mode.as_str())
            .map_or(0, |(_, count)| *count);
        #[allow(clippy::cast_precision_loss)]
        gauge!(CIBA_PENDING, "mode" => mode.as_str()).set(count as f64);
    }
    handle.run_upkeep();
    Ok(handle.render())
}

/// Folds histogram samples into their buckets every few seconds until
/// `shutdown`, so memory stays bounded however rarely Prometheus scrapes.
pub async fn upkeep(shutdown: impl Future<Output = ()>) {
    let Some(handle) = install() else {
        shutdown.await;
        return;
    };
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            () = tokio::time::sleep(UPKEEP_EVERY) => handle.run_upkeep(),
        }
    }
}
