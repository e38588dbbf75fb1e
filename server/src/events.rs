//! Live events for the user's authentication devices: a new request, and the
//! end of one (decided elsewhere, withdrawn by the client, expired), so no card
//! stays on a screen after it stopped mattering.
//!
//! Within one node this is a broadcast channel. With several nodes on one
//! PostgreSQL, every event is also sent with `NOTIFY` and each node's
//! [`run_bridge`] task re-publishes the events of the other nodes locally, so a
//! device streaming from node B sees a request started on node A. Devices that
//! were offline catch up through `GET /device/v1/requests?state=pending`, so a
//! missed event loses nothing: events are a latency optimisation over the
//! durable state.

use std::future::Future;
use std::time::Duration;

use outband_protocol::Subject;
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast;

use crate::store::{Backend, Store};

/// The PostgreSQL channel events travel on.
pub const CHANNEL: &str = "outband_device_events";
/// `NOTIFY` payloads must stay under 8000 bytes; a larger request JWT is left
/// out and the device reads it from the pending list.
const MAX_PAYLOAD: usize = 7900;

/// What happened to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceEventKind {
    /// A new request waits for the user.
    Request,
    /// The request was approved or denied (possibly on another device).
    Decided,
    /// The client cancelled it.
    Withdrawn,
    /// Nobody answered in time.
    Expired,
}

impl DeviceEventKind {
    /// The SSE `event:` name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Request => "request",
            Self::Decided => "decided",
            Self::Withdrawn => "withdrawn",
            Self::Expired => "expired",
        }
    }
}

/// One event for the devices of `subject`.
#[derive(Clone, Debug, Serialize)]
pub struct DeviceEvent {
    /// Whose devices it is for (not sent to the device).
    #[serde(skip)]
    pub subject: Subject,
    /// What happened.
    #[serde(skip)]
    pub kind: DeviceEventKind,
    /// The request's public id.
    pub id: String,
    /// For `request`: the AS-signed request JWT to verify and show.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_jwt: Option<String>,
    /// When the request expires (unix seconds).
    pub expires_at: i64,
}

/// An event as it crosses between nodes.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    node: String,
    subject: String,
    kind: DeviceEventKind,
    id: String,
    request_jwt: Option<String>,
    expires_at: i64,
}

/// Fans events out to every SSE stream of this node (and, on PostgreSQL, of the
/// other nodes).
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<DeviceEvent>,
    /// Set on PostgreSQL: the store to `NOTIFY` through and this node's id.
    bridge: Option<(Store, String)>,
}

impl EventBus {
    /// A bus that buffers up to 1024 events per slow subscriber; a subscriber
    /// that falls further behind is told to catch up from the pending list.
    pub fn new(store: &Store) -> Self {
        let (sender, _) = broadcast::channel(1024);
        let bridge = (store.backend() == Backend::Postgres).then(|| (store.clone(), uuid::Uuid::new_v4().to_string()));
        Self { sender, bridge }
    }

    /// Publishes an event to this node's streams and, on PostgreSQL, to the other nodes.
    pub fn publish(&self, event: DeviceEvent) {
        if let Some((store, node)) = &self.bridge {
            let mut wire = WireEvent {
                node: node.clone(),
                subject: event.subject.to_string(),
                kind: event.kind,
                id: event.id.clone(),
                request_jwt: event.request_jwt.clone(),
                expires_at: event.expires_at,
            };
            let mut payload = serde_json::to_string(&wire).unwrap_or_default();
            if payload.len() > MAX_PAYLOAD {
                wire.request_jwt = None;
                payload = serde_json::to_string(&wire).unwrap_or_default();
            }
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(err) = store.notify(CHANNEL, &payload).await {
                    tracing::warn!(error = %err, "could not pass a device event to the other nodes");
                }
            });
        }
        let _ = self.sender.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.sender.subscribe()
    }

    fn deliver_remote(&self, payload: &str) {
        let Some((_, node)) = &self.bridge else { return };
        let Ok(wire) = serde_json::from_str::<WireEvent>(payload) else {
            tracing::warn!("ignored a malformed device event from another node");
            return;
        };
        if wire.node == *node {
            return; // our own, already delivered locally
        }
        let _ = self.sender.send(DeviceEvent {
            subject: Subject::new(wire.subject),
            kind: wire.kind,
            id: wire.id,
            request_jwt: wire.request_jwt,
            expires_at: wire.expires_at,
        });
    }
}

/// Re-publishes the other nodes' events on this node until `shutdown`
/// completes; returns at once on SQLite. Reconnects after a lost connection.
pub async fn run_bridge(bus: EventBus, shutdown: impl Future<Output = ()>) {
    let Some((store, _)) = bus.bridge.clone() else { return };
    tokio::pin!(shutdown);
    loop {
        let mut listener = match store.listen(CHANNEL).await {
            Ok(Some(listener)) => listener,
            Ok(None) => return,
            Err(err) => {
                tracing::warn!(error = %err, "cannot listen for device events; retrying");
                tokio::select! {
                    () = &mut shutdown => return,
                    () = tokio::time::sleep(Duration::from_secs(2)) => continue,
                }
            }
        };
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                received = listener.recv() => match received {
                    Ok(notification) => bus.deliver_remote(notification.payload()),
                    Err(err) => {
                        tracing::warn!(error = %err, "lost the device event listener; reconnecting");
                        break;
                    }
                },
            }
        }
    }
}
