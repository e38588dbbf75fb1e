//! Live events for the user's authentication devices: a new request, and the
//! end of one (decided elsewhere, withdrawn by the client, expired), so no card
//! stays on a screen after it stopped mattering.
//!
//! Within one node this is a broadcast channel. Devices that were offline catch
//! up through `GET /device/v1/requests?state=pending`, so a missed event loses
//! nothing: events are a latency optimisation over the durable state.

use outband_protocol::Subject;
use serde::Serialize;
use tokio::sync::broadcast;

/// What happened to a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// Fans events out to every SSE stream of this node.
#[derive(Clone, Debug)]
pub struct EventBus {
    sender: broadcast::Sender<DeviceEvent>,
}

impl Default for EventBus {
    fn default() -> Self {
        Self::new()
    }
}

impl EventBus {
    /// A bus that buffers up to 1024 events per slow subscriber; a subscriber
    /// that falls further behind is told to catch up from the pending list.
    pub fn new() -> Self {
        let (sender, _) = broadcast::channel(1024);
        Self { sender }
    }

    /// Publishes an event; nobody listening is fine.
    pub fn publish(&self, event: DeviceEvent) {
        let _ = self.sender.send(event);
    }

    /// A new subscription.
    pub fn subscribe(&self) -> broadcast::Receiver<DeviceEvent> {
        self.sender.subscribe()
    }
}
