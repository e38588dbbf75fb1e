//! OpenTelemetry trace export: the server's `tracing` spans (one `http` span per
//! request, with the database calls inside it) sent over OTLP/HTTP (protobuf)
//! to a collector.
//!
//! Off unless the standard variable `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set; the other standard `OTEL_*` variables
//! (`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_BSP_SCHEDULE_DELAY`, ...) apply as the OpenTelemetry specification says.
//! A request's W3C `traceparent` header makes its span a child of the caller's
//! trace, but its sampled flag is not obeyed: every request is exported unless
//! `OTEL_TRACES_SAMPLER` says otherwise. Spans leave in batches from a background thread, so a slow or absent
//! collector never holds a request up; spans it cannot take are dropped.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_otlp::{SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracer, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing::Subscriber;
use tracing_opentelemetry::{OpenTelemetryLayer, OpenTelemetrySpanExt as _};
use tracing_subscriber::registry::LookupSpan;

/// The variables that turn export on (OpenTelemetry's OTLP exporter specification).
const ENDPOINT_VARIABLES: [&str; 2] = ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"];
/// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
const SERVICE_NAME: &str = "outband-server";

/// The `tracing` layer that turns spans into OpenTelemetry spans for export.
pub type ExportLayer<S> = OpenTelemetryLayer<S, SdkTracer>;

/// Flushes the spans still queued when dropped (at the end of `main`).
pub struct ExportGuard(SdkTracerProvider);

impl Drop for ExportGuard {
    fn drop(&mut self) {
        if let Err(err) = self.0.shutdown() {
            eprintln!("warning: could not flush the last OpenTelemetry spans: {err}");
        }
    }
}

/// Whether one of the OTLP endpoint variables is set (and not empty).
pub fn configured() -> bool {
    ENDPOINT_VARIABLES
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// The layer that exports spans, and the guard that flushes them; `None` when
/// export is off. Also installs the W3C trace-context propagator read by
/// [`adopt_remote_parent`].
pub fn layer<S>() -> Result<Option<(ExportLayer<S>, ExportGuard)>, String>
where
    S: Subscriber + for<'span> LookupSpan<'span>,
{
    if !configured() {
        return Ok(None);
    }
    let mut exporter = SpanExporter::builder().with_http();
    if let Some(traces) = std::env::var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        .ok()
        .filter(|value| !value.is_empty())
    {
        // The signal-specific endpoint is used as given (no `/v1/traces` appended).
        exporter = exporter.with_endpoint(traces);
    }
    let exporter = exporter
        .build()
        .map_err(|err| format!("cannot set up the OTLP exporter: {err}"))?;
    let mut resource = Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(SERVICE_NAME);
    }
    let mut provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource.build());
    if std::env::var_os("OTEL_TRACES_SAMPLER").is_none() {
        // The SDK's default obeys the caller's `traceparent` sampled flag, so
        // any caller could keep its requests out of the exported traces.
        provider = provider.with_sampler(Sampler::AlwaysOn);
    }
    let provider = provider.build();
    let tracer = provider.tracer(SERVICE_NAME);
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    Ok(Some((
        tracing_opentelemetry::layer().with_tracer(tracer),
        ExportGuard(provider),
    )))
}

/// Makes `span` a child of the trace named by the request's `traceparent`
/// header, if any (without export the propagator is a no-op).
pub fn adopt_remote_parent(span: &tracing::Span, headers: &axum::http::HeaderMap) {
    let parent =
        opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&HeaderExtractor(headers)));
    // Fails only when the span is disabled or has no OpenTelemetry layer: nothing to adopt then.
    let _ = span.set_parent(parent);
}
