//! `GET /device/v1/events`: the live feed of a device, as Server-Sent Events.
//!
//! A stream subscribes to [`crate::events::EventBus`] and passes on the events
//! of its device's user, named `request`, `decided`, `withdrawn` and `expired`,
//! each with JSON data `{id, request_jwt?, expires_at}`. A comment goes out
//! every [`KEEP_ALIVE`] so proxies keep the connection open. When the stream
//! falls behind the bus it sends `resync`: the device re-reads
//! `GET /device/v1/requests?state=pending`, as it does after every reconnect.
//!
//! A stream ends after sending `revoked` once its device is revoked. A
//! revocation on this node (`DELETE /device/v1/device`) ends it at once; one
//! made elsewhere (the CLI, another node) is noticed at the next event or
//! keep-alive tick, when the stream re-reads the device.
//!
//! ## The stream registry
//! Each device may hold [`MAX_STREAMS_PER_DEVICE`] streams per node; the
//! registry counts them and carries the revocation signal. It is a process-wide
//! map keyed by the random device id (not per [`AppState`]: state is not ours
//! to extend here, and random keys keep tests and servers in one process from
//! seeing each other's devices). A [`StreamLease`] releases its slot when the
//! stream is dropped, which is when the client goes away.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Duration;

use axum::response::sse::Event;
use futures::Stream;
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::{broadcast, watch};
use tokio::time::{Instant, Interval};

use crate::events::DeviceEvent;
use crate::state::AppState;
use crate::store::DeviceRecord;

/// Streams one device may have open on one node.
pub const MAX_STREAMS_PER_DEVICE: usize = 4;
/// Interval of keep-alive comments and of the revocation re-check.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);

struct Entry {
    streams: usize,
    revoked: watch::Sender<bool>,
}

fn registry() -> &'static Mutex<HashMap<String, Entry>> {
    static REGISTRY: OnceLock<Mutex<HashMap<String, Entry>>> = OnceLock::new();
    REGISTRY.get_or_init(Mutex::default)
}

/// A device's slot for one open stream.
#[derive(Debug)]
pub struct StreamLease {
    device_id: String,
    revoked: watch::Receiver<bool>,
}

impl StreamLease {
    /// Takes a slot; `None` when the device already has [`MAX_STREAMS_PER_DEVICE`] streams.
    pub fn acquire(device_id: &str) -> Option<Self> {
        let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
        let entry = map.entry(device_id.to_owned()).or_insert_with(|| Entry {
            streams: 0,
            revoked: watch::Sender::new(false),
        });
        if entry.streams >= MAX_STREAMS_PER_DEVICE {
            return None;
        }
        entry.streams += 1;
        Some(Self {
            device_id: device_id.to_owned(),
            revoked: entry.revoked.subscribe(),
        })
    }
}

impl Drop for StreamLease {
    fn drop(&mut self) {
        let mut map = registry().lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = map.get_mut(&self.device_id) {
            entry.streams = entry.streams.saturating_sub(1);
            if entry.streams == 0 {
                map.remove(&self.device_id);
            }
        }
    }
}

/// Tells this node's streams of a device that it was revoked.
pub fn announce_revoked(device_id: &str) {
    let map = registry().lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(entry) = map.get(device_id) {
        entry.revoked.send_replace(true);
    }
}

/// How many streams a device has open on this node.
pub fn open_streams(device_id: &str) -> usize {
    let map = registry().lock().unwrap_or_else(PoisonError::into_inner);
    map.get(device_id).map_or(0, |entry| entry.streams)
}

/// One device's feed.
struct Feed {
    state: AppState,
    device: DeviceRecord,
    events: broadcast::Receiver<DeviceEvent>,
    ticker: Interval,
    lease: StreamLease,
    /// Whether the revocation signal can still fire.
    watching: bool,
    ended: bool,
}

/// The events of `device`'s user until the device is revoked or the client goes away.
/// Subscribes at once, so nothing published after this call is missed.
pub fn open(
    state: AppState,
    device: DeviceRecord,
    lease: StreamLease,
) -> impl Stream<Item = Result<Event, Infallible>> {
    let events = state.events.subscribe();
    let ticker = tokio::time::interval_at(Instant::now() + KEEP_ALIVE, KEEP_ALIVE);
    let feed = Feed {
        state,
        device,
        events,
        ticker,
        lease,
        watching: true,
        ended: false,
    };
    futures::stream::unfold(feed, |mut feed| async move {
        if feed.ended {
            return None;
        }
        let event = feed.next_event().await?;
        Some((Ok(event), feed))
    })
}

impl Feed {
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            tokio::select! {
                _ = self.ticker.tick() => {
                    return Some(if self.is_revoked().await { self.revoked() } else { Event::default().comment("keep-alive") });
                }
                changed = self.lease.revoked.changed(), if self.watching => {
                    if changed.is_err() {
                        self.watching = false;
                    } else if *self.lease.revoked.borrow_and_update() {
                        return Some(self.revoked());
                    }
                }
                received = self.events.recv() => match received {
                    Ok(event) if event.subject == self.device.subject => {
                        if self.is_revoked().await {
                            return Some(self.revoked());
                        }
                        return Some(device_event(&event));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        tracing::debug!(device_id = %self.device.id, missed, "a device stream fell behind");
                        return Some(named("resync", &json!({ "missed": missed })));
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// Whether the device is revoked now; a database failure keeps the stream
    /// open (the next tick asks again).
    async fn is_revoked(&self) -> bool {
        match self.state.store.device(&self.device.id).await {
            Ok(device) => device.is_none_or(|d| d.revoked_at.is_some()),
            Err(err) => {
                tracing::warn!(error = %err, device_id = %self.device.id, "could not re-check a streaming device");
                false
            }
        }
    }

    fn revoked(&mut self) -> Event {
        self.ended = true;
        named("revoked", &json!({ "device_id": self.device.id }))
    }
}

fn named(name: &str, data: &serde_json::Value) -> Event {
    Event::default().event(name).data(data.to_string())
}

fn device_event(event: &DeviceEvent) -> Event {
    let data = serde_json::to_value(event).unwrap_or_else(|_| json!({ "id": event.id }));
    named(event.kind.as_str(), &data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_limited_and_released() {
        let id = uuid::Uuid::new_v4().to_string();
        let leases: Vec<_> = (0..MAX_STREAMS_PER_DEVICE)
            .map(|_| StreamLease::acquire(&id).unwrap())
            .collect();
        assert_eq!(open_streams(&id), MAX_STREAMS_PER_DEVICE);
        assert!(StreamLease::acquire(&id).is_none());
        let mut receivers: Vec<_> = leases.iter().map(|l| l.revoked.clone()).collect();
        announce_revoked(&id);
        assert!(receivers.iter_mut().all(|r| *r.borrow_and_update()));
        drop(leases);
        assert_eq!(open_streams(&id), 0);
        assert!(
            StreamLease::acquire(&id).is_some(),
            "a new device entry after all streams closed"
        );
    }
}
