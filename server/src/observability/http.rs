//! The request metrics middleware: `outband_http_requests_total` and
//! `outband_http_request_duration_seconds`, labelled by the route pattern the
//! router matched (`/device/v1/requests/{id}/decision`), never the raw path,
//! so ids in paths cannot grow the number of series.

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics::{counter, histogram};

use super::{HTTP_DURATION, HTTP_REQUESTS};
use crate::clock::Stopwatch;

/// The `route` of a request no route matched (the fallback's 404).
pub const UNMATCHED: &str = "unmatched";

/// Counts and times every request (time to the response head; a streamed
/// body such as the device event stream is not included).
pub async fn track(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED, MatchedPath::as_str)
        .to_owned();
    let method = method_label(request.method());
    let stopwatch = Stopwatch::start();
    let response = next.run(request).await;
    let seconds = stopwatch.elapsed().as_secs_f64();
    counter!(
        HTTP_REQUESTS,
        "method" => method,
        "route" => route.clone(),
        "status" => response.status().as_str().to_owned()
    )
    .increment(1);
    histogram!(HTTP_DURATION, "route" => route).record(seconds);
    response
}

/// The method, with any non-standard one as `other` (a client picks the method).
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
