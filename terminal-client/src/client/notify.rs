//! The till's notification endpoint for ping and push mode
//! ([CIBA Core §10.2–§10.3](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.10.2)):
//! a small HTTP server that the authorization server POSTs to.
//!
//! A sale registers its `client_notification_token` *before* it is sent to the
//! server (a test user may be approved, and the ping sent, before the
//! backchannel response arrives). A callback is accepted only with
//! `Authorization: Bearer <token>` of a pending sale, compared in constant time;
//! anything else gets a 401 that says nothing about the expected token.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use outband_protocol::{ClientNotificationToken, PingCallback, PushCallback};
use serde_json::Value;
use tokio::sync::mpsc;

use super::cancel::CancelToken;

/// The path callbacks are accepted at, unless another is given.
pub const DEFAULT_PATH: &str = "/ciba/notify";
/// Largest callback body accepted (a push carries tokens: a few KiB).
const MAX_BODY: usize = 64 * 1024;
/// Callbacks queued per sale before the listener answers 503 (and the server retries).
const QUEUE: usize = 8;

/// A callback that passed the bearer check.
#[derive(Clone, Debug)]
pub enum Notification {
    /// Ping: the request is ready at the token endpoint.
    Ping(PingCallback),
    /// Push: the tokens, or the error, themselves.
    Push(Box<PushCallback>),
}

impl Notification {
    /// A push body has `access_token` or `error`; a ping body has neither.
    fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        if value.get("access_token").is_some() || value.get("error").is_some() {
            serde_json::from_value(value)
                .ok()
                .map(|push| Self::Push(Box::new(push)))
        } else {
            serde_json::from_value(value).ok().map(Self::Ping)
        }
    }
}

/// Sales waiting for a callback, by registration number.
#[derive(Default)]
struct Registry {
    next: u64,
    pending: HashMap<u64, (ClientNotificationToken, mpsc::Sender<Notification>)>,
}

type SharedRegistry = Arc<Mutex<Registry>>;

/// The running notification endpoint. Clones share it; it stops when the last
/// clone is dropped.
#[derive(Clone)]
pub struct NotificationListener {
    inner: Arc<ListenerInner>,
}

struct ListenerInner {
    addr: SocketAddr,
    path: String,
    registry: SharedRegistry,
    stop: CancelToken,
}

impl Drop for ListenerInner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl std::fmt::Debug for NotificationListener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NotificationListener")
            .field("url", &self.url())
            .finish_non_exhaustive()
    }
}

impl NotificationListener {
    /// Listens on `addr` (port 0 picks a free one) at [`DEFAULT_PATH`].
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Self> {
        Self::bind_with_path(addr, DEFAULT_PATH).await
    }

    /// Listens on `addr` at `path` (which must start with `/`).
    pub async fn bind_with_path(addr: SocketAddr, path: &str) -> std::io::Result<Self> {
        if !path.starts_with('/') {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("notification path {path:?} must start with /"),
            ));
        }
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let registry = SharedRegistry::default();
        let stop = CancelToken::new();
        let app = Router::new()
            .route(path, post(notification_post))
            .layer(DefaultBodyLimit::max(MAX_BODY))
            .with_state(registry.clone());
        let stopped = stop.clone();
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await;
            if let Err(err) = served {
                tracing::warn!(error = %err, "the notification listener stopped");
            }
        });
        tracing::debug!(%addr, path, "notification listener started");
        Ok(Self {
            inner: Arc::new(ListenerInner {
                addr,
                path: path.to_owned(),
                registry,
                stop,
            }),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// The URL to register as the client's `backchannel_client_notification_endpoint`.
    pub fn url(&self) -> String {
        format!("http://{}{}", self.inner.addr, self.inner.path)
    }

    /// Accepts callbacks bearing `token` until the returned [`Expected`] is dropped.
    pub fn expect(&self, token: ClientNotificationToken) -> Expected {
        let (tx, rx) = mpsc::channel(QUEUE);
        let id = match self.inner.registry.lock() {
            Ok(mut registry) => {
                registry.next += 1;
                let id = registry.next;
                registry.pending.insert(id, (token, tx));
                id
            }
            // A poisoned registry: nothing is registered and the sale times out.
            Err(_) => 0,
        };
        Expected {
            id,
            registry: self.inner.registry.clone(),
            rx: tokio::sync::Mutex::new(rx),
        }
    }
}

/// One sale's registration: its callbacks arrive here.
pub struct Expected {
    id: u64,
    registry: SharedRegistry,
    rx: tokio::sync::Mutex<mpsc::Receiver<Notification>>,
}

impl std::fmt::Debug for Expected {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Expected").field("id", &self.id).finish_non_exhaustive()
    }
}

impl Expected {
    /// The next accepted callback; `None` when the listener is gone.
    pub async fn recv(&self) -> Option<Notification> {
        self.rx.lock().await.recv().await
    }
}

impl Drop for Expected {
    fn drop(&mut self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.pending.remove(&self.id);
        }
    }
}

/// `POST <path>`: 204 for a pending sale's bearer, 401 otherwise.
async fn notification_post(State(registry): State<SharedRegistry>, headers: HeaderMap, body: Bytes) -> Response {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| ClientNotificationToken::new(token.trim()));
    let sender = presented.and_then(|presented| {
        let registry = registry.lock().ok()?;
        // Compare with every pending token (constant-time each), not stopping early.
        let mut found = None;
        for (token, tx) in registry.pending.values() {
            if *token == presented && found.is_none() {
                found = Some(tx.clone());
            }
        }
        found
    });
    let Some(sender) = sender else {
        tracing::warn!("notification refused: missing or unknown bearer token");
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer error=\"invalid_token\"")],
        )
            .into_response();
    };
    let Some(notification) = Notification::parse(&body) else {
        tracing::warn!("notification refused: the body is not a ping or push callback");
        return StatusCode::BAD_REQUEST.into_response();
    };
    match sender.try_send(notification) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(mpsc::error::TrySendError::Full(_)) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        // The sale stopped waiting between the lookup and now.
        Err(mpsc::error::TrySendError::Closed(_)) => StatusCode::UNAUTHORIZED.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_and_push_bodies() {
        assert!(matches!(
            Notification::parse(br#"{"auth_req_id":"a"}"#),
            Some(Notification::Ping(_))
        ));
        let push = |body: &[u8]| match Notification::parse(body) {
            Some(Notification::Push(push)) => Some(*push),
            _ => None,
        };
        assert!(matches!(
            push(br#"{"auth_req_id":"a","access_token":"t","token_type":"Bearer"}"#),
            Some(PushCallback::Tokens { .. })
        ));
        assert!(matches!(
            push(br#"{"auth_req_id":"a","error":"access_denied"}"#),
            Some(PushCallback::Error { .. })
        ));
        assert!(Notification::parse(b"[]").is_none());
        assert!(Notification::parse(br#"{"access_token":"t"}"#).is_none());
    }
}
