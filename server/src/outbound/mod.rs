//! Every request the server sends: to clients' `jwks_uri`, to CIBA ping and
//! push notification endpoints, and back-channel logout tokens to clients'
//! `backchannel_logout_uri` (DESIGN "Outbound calls").
//!
//! One [`OutboundClient`], built once from [`OutboundSettings`] and kept in
//! `AppState`, applies the whole policy so no caller can forget a part of it:
//! - short timeouts (connect and total, `outbound.connect_timeout_ms`/`timeout_ms`);
//! - no redirects followed: a 3xx is an error naming the status;
//! - a size limit on response bodies (`outbound.max_response_bytes`), read in chunks;
//! - the system trust store (plus Mozilla's, compiled in) and an optional
//!   operator CA bundle (`outbound.ca_bundle`) for private PKI;
//! - no proxy from the environment: a proxy would resolve the destination
//!   itself and bypass the allow-list;
//! - the SSRF allow-list of [`policy`]: checked on the URL (scheme, IP literal)
//!   and again on every address DNS returns, inside the connection's own
//!   resolver ([`PolicyResolver`]), so DNS rebinding cannot get around it.
//!
//! Bearer tokens and bodies are never logged nor put in an error message.

pub mod policy;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use reqwest::{Certificate, Response};
use serde_json::Value;
use url::Url;

pub use policy::{DestinationPolicy, IpCidr, ParseIpCidrError};

/// Default connect timeout.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 3_000;
/// Default timeout of a whole request, body included.
pub const DEFAULT_TIMEOUT_MS: u32 = 10_000;
/// Default response size limit: far more than any JWKS or notification reply.
pub const DEFAULT_MAX_RESPONSE_BYTES: u32 = 256 * 1024;

/// The validated `[outbound]` configuration.
#[derive(Clone, Debug)]
pub struct OutboundSettings {
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Time for the whole request, reading the body included.
    pub timeout: Duration,
    /// Largest response body accepted.
    pub max_response_bytes: usize,
    /// Where the extra CA certificates came from (for messages).
    pub ca_bundle: Option<PathBuf>,
    /// Extra trusted roots from `ca_bundle`, parsed at load.
    pub ca_certificates: Vec<Certificate>,
    /// The allow-list and the plain-http rule.
    pub policy: DestinationPolicy,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_millis(u64::from(DEFAULT_CONNECT_TIMEOUT_MS)),
            timeout: Duration::from_millis(u64::from(DEFAULT_TIMEOUT_MS)),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES as usize,
            ca_bundle: None,
            ca_certificates: Vec::new(),
            policy: DestinationPolicy::default(),
        }
    }
}

/// Why an outbound request did not produce a usable answer.
///
/// Messages never include a bearer token or a body.
#[derive(Debug, thiserror::Error)]
pub enum OutboundError {
    /// The destination is not allowed by the policy (scheme, address, allow-list).
    #[error("destination refused: {0}")]
    Refused(String),
    /// No answer within the configured time.
    #[error("timed out")]
    Timeout,
    /// The destination answered with a redirect, which is never followed.
    #[error("redirect (HTTP {0}) not followed")]
    Redirect(u16),
    /// The response body exceeds `outbound.max_response_bytes`.
    #[error("response is larger than the configured limit")]
    TooLarge,
    /// The destination answered with an unexpected status.
    #[error("unexpected HTTP status {0}")]
    Status(u16),
    /// The connection or the exchange failed.
    #[error("request failed: {0}")]
    Transport(String),
    /// The body is not what was expected (not JSON, for instance).
    #[error("invalid response body: {0}")]
    InvalidBody(String),
}

/// Why the outbound client could not be built.
#[derive(Debug, thiserror::Error)]
#[error("outbound HTTP client: {0}")]
pub struct BuildOutboundClientError(String);

/// The answer to a POST: the caller decides what the status means (for CIBA
/// notifications: 2xx delivered, 4xx not retried, 5xx retried).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PostOutcome {
    /// The HTTP status.
    pub status: u16,
}

impl PostOutcome {
    /// 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// 4xx: the receiver refused the request; sending it again will not help.
    pub fn is_client_error(&self) -> bool {
        (400..500).contains(&self.status)
    }

    /// 5xx: the receiver failed; a later retry may succeed.
    pub fn is_server_error(&self) -> bool {
        (500..600).contains(&self.status)
    }
}

/// The one HTTP client for outbound calls. Cheap to clone.
#[derive(Clone, Debug)]
pub struct OutboundClient {
    http: reqwest::Client,
    policy: Arc<DestinationPolicy>,
    max_response_bytes: usize,
}

/// The error the resolver returns when no address of a name is allowed; found
/// again in reqwest's error chain to report [`OutboundError::Refused`].
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAddress(String);

/// A DNS resolver that drops every address the policy refuses, and fails when
/// none is left: the check happens on the addresses actually connected to.
#[derive(Debug)]
pub struct PolicyResolver {
    policy: Arc<DestinationPolicy>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refusal = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.allows_address(Some(&host), addr.ip()) {
                    Ok(()) => true,
                    Err(why) => {
                        refusal.get_or_insert(why);
                        false
                    }
                })
                .collect();
            if allowed.is_empty() {
                let why = refusal.unwrap_or_else(|| "no address found".into());
                return Err(Box::new(RefusedAddress(format!("{host}: {why}"))) as Box<_>);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

impl OutboundClient {
    /// Builds the client. Call once, at start.
    pub fn new(settings: &OutboundSettings) -> Result<Self, BuildOutboundClientError> {
        let policy = Arc::new(settings.policy.clone());
        let mut builder = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .user_agent(concat!("outband/", env!("CARGO_PKG_VERSION")))
            .min_tls_version(reqwest::tls::Version::TLS_1_2)
            .dns_resolver(Arc::new(PolicyResolver {
                policy: Arc::clone(&policy),
            }));
        for certificate in &settings.ca_certificates {
            builder = builder.add_root_certificate(certificate.clone());
        }
        let http = builder.build().map_err(|e| BuildOutboundClientError(error_chain(&e)))?;
        Ok(Self {
            http,
            policy,
            max_response_bytes: settings.max_response_bytes,
        })
    }

    /// Checks a URL the way a request to it would, but without DNS: the scheme,
    /// an IP-literal host against the allow-list, loopback names. For refusing
    /// a `jwks_uri` or notification endpoint when it is registered.
    pub fn check_destination(&self, url: &Url) -> Result<(), OutboundError> {
        self.policy.check_url(url).map_err(OutboundError::Refused)
    }

    /// `GET url` expecting a 2xx JSON answer (a JWKS, for instance).
    pub async fn get_json(&self, url: &Url) -> Result<Value, OutboundError> {
        self.check_destination(url)?;
        let request = self
            .http
            .get(url.clone())
            .header(ACCEPT, HeaderValue::from_static("application/json"));
        let response = self.send(request, url).await?;
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            return Err(OutboundError::Status(status));
        }
        let body = self.read_limited(response).await?;
        serde_json::from_slice(&body).map_err(|e| OutboundError::InvalidBody(e.to_string()))
    }

    /// `POST url` with a JSON body and, when given, `Authorization: Bearer`.
    /// Any final status is an outcome for the caller to judge; a redirect, a
    /// refused destination, a timeout or a transport failure is an error.
    pub async fn post_json(&self, url: &Url, bearer: Option<&str>, body: &Value) -> Result<PostOutcome, OutboundError> {
        self.check_destination(url)?;
        let bytes = serde_json::to_vec(body).map_err(|e| OutboundError::InvalidBody(e.to_string()))?;
        let mut request = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(bytes);
        if let Some(token) = bearer {
            let mut value = HeaderValue::from_str(&format!("Bearer {token}"))
                .map_err(|_| OutboundError::Transport("the bearer token is not a valid header value".into()))?;
            value.set_sensitive(true);
            request = request.header(AUTHORIZATION, value);
        }
        let response = self.send(request, url).await?;
        let outcome = PostOutcome {
            status: response.status().as_u16(),
        };
        // The reply body is of no interest, but is read (within the limit) so
        // the connection can be reused.
        let _ = self.read_limited(response).await;
        Ok(outcome)
    }

    /// `POST url` with an `application/x-www-form-urlencoded` body (a
    /// back-channel logout token). Outcomes and errors as [`Self::post_json`].
    pub async fn post_form(&self, url: &Url, form: &[(&str, &str)]) -> Result<PostOutcome, OutboundError> {
        self.check_destination(url)?;
        let body = url::form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .http
            .post(url.clone())
            .header(
                CONTENT_TYPE,
                HeaderValue::from_static("application/x-www-form-urlencoded"),
            )
            .body(body);
        let response = self.send(request, url).await?;
        let outcome = PostOutcome {
            status: response.status().as_u16(),
        };
        let _ = self.read_limited(response).await;
        Ok(outcome)
    }

    async fn send(&self, request: reqwest::RequestBuilder, url: &Url) -> Result<Response, OutboundError> {
        let host = url.host_str().unwrap_or_default();
        let response = request.send().await.map_err(|e| {
            let error = map_error(&e);
            tracing::debug!(host, error = %error, "outbound request failed");
            error
        })?;
        let status = response.status();
        tracing::debug!(host, status = status.as_u16(), "outbound request answered");
        if status.is_redirection() {
            return Err(OutboundError::Redirect(status.as_u16()));
        }
        Ok(response)
    }

    /// Reads the body, giving up as soon as it exceeds the limit.
    async fn read_limited(&self, mut response: Response) -> Result<Vec<u8>, OutboundError> {
        let limit = self.max_response_bytes;
        let declared = response
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return Err(OutboundError::TooLarge);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| map_error(&e))? {
            if body.len() + chunk.len() > limit {
                return Err(OutboundError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Maps a reqwest error to ours, finding a policy refusal made by the resolver.
fn map_error(error: &reqwest::Error) -> OutboundError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = source {
        if let Some(refused) = e.downcast_ref::<RefusedAddress>() {
            return OutboundError::Refused(refused.0.clone());
        }
        source = e.source();
    }
    if error.is_timeout() {
        return OutboundError::Timeout;
    }
    OutboundError::Transport(error_chain(error))
}

/// The error and its causes, without the URL (which may carry a query the
/// operator does not want in logs).
fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(e) = source {
        parts.push(e.to_string());
        source = e.source();
    }
    let head = if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "could not read the response"
    } else if error.is_builder() {
        "could not build the request"
    } else {
        "could not send the request"
    };
    parts.dedup();
    if parts.is_empty() {
        head.to_owned()
    } else {
        format!("{head}: {}", parts.join(": "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(policy: DestinationPolicy) -> OutboundClient {
        OutboundClient::new(&OutboundSettings {
            policy,
            ..OutboundSettings::default()
        })
        .unwrap()
    }

    #[tokio::test]
    async fn the_resolver_drops_refused_addresses() {
        let policy = DestinationPolicy {
            networks: vec!["127.0.0.0/8".parse().unwrap()],
            ..DestinationPolicy::default()
        };
        let resolver = PolicyResolver {
            policy: Arc::new(policy),
        };
        let addrs: Vec<SocketAddr> = resolver.resolve("localhost".parse().unwrap()).await.unwrap().collect();
        assert!(!addrs.is_empty());
        assert!(addrs.iter().all(|a| a.is_ipv4() && a.ip().is_loopback()), "{addrs:?}");

        let strict = PolicyResolver {
            policy: Arc::new(DestinationPolicy::default()),
        };
        let err = strict.resolve("localhost".parse().unwrap()).await.err().unwrap();
        assert!(err.to_string().contains("loopback"), "{err}");
    }

    #[tokio::test]
    async fn a_resolver_refusal_is_reported_as_refused() {
        let client = client(DestinationPolicy {
            insecure_http_loopback: true,
            ..DestinationPolicy::default()
        });
        let url = Url::parse("http://localhost:9/").unwrap();
        // The URL check alone would refuse it already: send directly, so the
        // refusal must come from the resolver, through reqwest's error chain.
        let err = client.send(client.http.get(url.clone()), &url).await.unwrap_err();
        assert!(
            matches!(&err, OutboundError::Refused(why) if why.contains("localhost") && why.contains("loopback")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn refused_urls_never_leave_the_process() {
        let client = client(DestinationPolicy::default());
        for url in [
            "https://169.254.169.254/latest/meta-data/",
            "https://[::ffff:10.0.0.1]/",
            "http://client.example/",
            "https://localhost/",
        ] {
            let url = Url::parse(url).unwrap();
            let err = client
                .post_json(&url, Some("secret-token-value"), &serde_json::json!({}))
                .await
                .unwrap_err();
            assert!(matches!(err, OutboundError::Refused(_)), "{url}: {err:?}");
            assert!(!format!("{err} {err:?}").contains("secret-token-value"));
            assert!(
                matches!(client.get_json(&url).await, Err(OutboundError::Refused(_))),
                "{url}"
            );
        }
    }

    #[test]
    fn post_outcomes_classify_statuses() {
        let at = |status| PostOutcome { status };
        assert!(at(204).is_success() && !at(204).is_client_error());
        assert!(at(404).is_client_error() && !at(404).is_server_error());
        assert!(at(503).is_server_error() && !at(503).is_success());
    }
}
