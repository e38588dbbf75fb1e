//! The live stream: `GET /device/v1/events` (Server-Sent Events, framed by
//! `eventsource-stream`), then the pending list after every (re)connect, since
//! the stream is an optimisation and the list is the record. Reconnects with
//! exponential backoff; ends when the device is revoked or the receiver of the
//! events goes away.

use std::collections::HashSet;
use std::time::Duration;

use eventsource_stream::Eventsource;
use futures::{Stream, StreamExt};
use reqwest::Method;
use serde::Serialize;
use tokio::sync::mpsc::Sender;

use crate::session::RequestRef;
use crate::{AccountId, Error, Session, VerifiedRequest};

/// First reconnect delay; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The AS sends a keep-alive every 15 s: silence this long means the connection died.
const IDLE_LIMIT: Duration = Duration::from_secs(45);

/// What the watch loop reports.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum WatchEvent {
    /// The stream is open.
    Connected {
        /// The account.
        account: AccountId,
    },
    /// The stream dropped or could not open; retrying after `retry_in_ms`.
    Disconnected {
        /// The account.
        account: AccountId,
        /// Why.
        error: String,
        /// When the next attempt is.
        retry_in_ms: u64,
    },
    /// A new, verified request: show it.
    Request {
        /// The request (boxed: it is far larger than the other events).
        request: Box<VerifiedRequest>,
    },
    /// A request shown earlier is gone: remove its card.
    Removed {
        /// The account.
        account: AccountId,
        /// The request id.
        id: String,
        /// Why.
        reason: Removal,
    },
    /// A request failed verification: never shown as a card.
    Rejected {
        /// The account.
        account: AccountId,
        /// The request id.
        id: String,
        /// Why.
        error: String,
    },
    /// The device was revoked; the watch ends.
    Revoked {
        /// The account.
        account: AccountId,
    },
}

/// Why a request went away.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Removal {
    /// Approved or denied (maybe on another device).
    Decided,
    /// The client cancelled it.
    Withdrawn,
    /// Nobody answered in time.
    Expired,
    /// Not in the pending list after a reconnect.
    NoLongerPending,
}

/// How a watch ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchEnd {
    /// The device was revoked.
    Revoked,
    /// The receiver of the events was dropped.
    Closed,
}

/// How one connection ended.
enum Ended {
    Revoked,
    Closed,
    Dropped(String),
}

/// The watch's state across connections.
struct Watcher<'a> {
    session: &'a Session,
    events: &'a Sender<WatchEvent>,
    /// Requests announced and not yet removed.
    shown: HashSet<String>,
    /// Requests that failed verification (reported once).
    rejected: HashSet<String>,
    /// The last connection opened and caught up.
    healthy: bool,
}

impl Session {
    /// Runs the live stream until the device is revoked (Ok(WatchEnd::Revoked)) or `events` is closed
    /// (Ok(WatchEnd::Closed)). Connect = token if needed, GET /device/v1/events (SSE via eventsource-stream), then
    /// catch-up with pending(). Reconnects forever with exponential backoff (0.5 s doubling to 30 s, reset after a
    /// healthy connection); a 429 too_many_streams backs off too. Each request id is announced once.
    pub async fn watch(&self, events: Sender<WatchEvent>) -> Result<WatchEnd, Error> {
        let mut watcher = Watcher {
            session: self,
            events: &events,
            shown: HashSet::new(),
            rejected: HashSet::new(),
            healthy: false,
        };
        let account = self.account().id.clone();
        if self.account().revoked {
            let _ = events.send(WatchEvent::Revoked { account }).await;
            return Ok(WatchEnd::Revoked);
        }
        let mut backoff = FIRST_BACKOFF;
        loop {
            let ended = tokio::select! {
                ended = watcher.connection() => ended,
                () = events.closed() => Ended::Closed,
            };
            let error = match ended {
                Ended::Closed => return Ok(WatchEnd::Closed),
                Ended::Revoked => {
                    self.mark_revoked();
                    let _ = events.send(WatchEvent::Revoked { account }).await;
                    return Ok(WatchEnd::Revoked);
                }
                Ended::Dropped(error) => error,
            };
            if watcher.healthy {
                backoff = FIRST_BACKOFF;
            }
            let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
            tracing::info!(account = %account, error = %error, retry_in_ms, "event stream disconnected");
            let disconnected = WatchEvent::Disconnected {
                account: account.clone(),
                error,
                retry_in_ms,
            };
            if events.send(disconnected).await.is_err() {
                return Ok(WatchEnd::Closed);
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = events.closed() => return Ok(WatchEnd::Closed),
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The response body, ended with an error after [`IDLE_LIMIT`] of silence.
fn guarded(response: reqwest::Response) -> impl Stream<Item = Result<impl AsRef<[u8]>, String>> {
    futures::stream::unfold(Some(response.bytes_stream()), |body| async move {
        let mut body = body?;
        match tokio::time::timeout(IDLE_LIMIT, body.next()).await {
            Ok(Some(Ok(bytes))) => Some((Ok(bytes), Some(body))),
            Ok(Some(Err(err))) => Some((Err(Error::from(err).to_string()), None)),
            Ok(None) => None,
            Err(_) => Some((Err("the stream went silent".to_owned()), None)),
        }
    })
}

impl Watcher<'_> {
    async fn send(&self, event: WatchEvent) -> Result<(), Ended> {
        self.events.send(event).await.map_err(|_| Ended::Closed)
    }

    fn account(&self) -> AccountId {
        self.session.account().id.clone()
    }

    /// One connection: open, announce, catch up, then follow the events.
    async fn connection(&mut self) -> Ended {
        self.healthy = false;
        match self.follow().await {
            Ok(()) => Ended::Dropped("the server closed the stream".into()),
            Err(ended) => ended,
        }
    }

    async fn follow(&mut self) -> Result<(), Ended> {
        let response = self
            .session
            .api()
            .call(Method::GET, "/device/v1/events", None, None)
            .await
            .map_err(ended_by)?;
        self.send(WatchEvent::Connected {
            account: self.account(),
        })
        .await?;
        let mut stream = std::pin::pin!(guarded(response).eventsource());
        self.catch_up().await?;
        self.healthy = true;
        while let Some(event) = stream.next().await {
            let event = event.map_err(|e| Ended::Dropped(format!("the stream broke: {e}")))?;
            self.handle(&event.event, &event.data).await?;
        }
        Ok(())
    }

    async fn handle(&mut self, name: &str, data: &str) -> Result<(), Ended> {
        let removal = match name {
            "request" => {
                let Ok(entry) = serde_json::from_str::<RequestRef>(data) else {
                    tracing::warn!("an unreadable request event");
                    return Ok(());
                };
                if entry.request_jwt.is_none() {
                    // Too large to cross between nodes: the list has it.
                    return self.catch_up().await;
                }
                return self.announce(&entry).await;
            }
            "resync" => return self.catch_up().await,
            "revoked" => return Err(Ended::Revoked),
            "decided" => Removal::Decided,
            "withdrawn" => Removal::Withdrawn,
            "expired" => Removal::Expired,
            other => {
                tracing::debug!(event = other, "ignoring an unknown event");
                return Ok(());
            }
        };
        let id = serde_json::from_str::<serde_json::Value>(data)
            .ok()
            .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_owned));
        if let Some(id) = id {
            self.rejected.remove(&id);
            if self.shown.remove(&id) {
                let account = self.account();
                self.send(WatchEvent::Removed {
                    account,
                    id,
                    reason: removal,
                })
                .await?;
            }
        }
        Ok(())
    }

    /// Verifies and announces a request not seen before.
    async fn announce(&mut self, entry: &RequestRef) -> Result<(), Ended> {
        if self.shown.contains(&entry.id) || self.rejected.contains(&entry.id) {
            return Ok(());
        }
        match self.session.verify_ref(entry).await {
            Ok(request) => {
                self.shown.insert(request.id.clone());
                self.send(WatchEvent::Request {
                    request: Box::new(request),
                })
                .await
            }
            Err(Error::Network(error)) => Err(Ended::Dropped(error)),
            Err(err) => {
                tracing::warn!(request = %entry.id, error = %err, "a request failed verification");
                self.rejected.insert(entry.id.clone());
                let account = self.account();
                self.send(WatchEvent::Rejected {
                    account,
                    id: entry.id.clone(),
                    error: err.to_string(),
                })
                .await
            }
        }
    }

    /// Reads the pending list: announces what is new, removes what is gone.
    async fn catch_up(&mut self) -> Result<(), Ended> {
        let pending = self.session.pending_refs().await.map_err(ended_by)?;
        let still: HashSet<&str> = pending.iter().map(|entry| entry.id.as_str()).collect();
        let mut gone: Vec<String> = self
            .shown
            .iter()
            .filter(|id| !still.contains(id.as_str()))
            .cloned()
            .collect();
        gone.sort();
        for id in gone {
            self.shown.remove(&id);
            let account = self.account();
            self.send(WatchEvent::Removed {
                account,
                id,
                reason: Removal::NoLongerPending,
            })
            .await?;
        }
        self.rejected.retain(|id| still.contains(id.as_str()));
        for entry in &pending {
            self.announce(entry).await?;
        }
        Ok(())
    }
}

fn ended_by(err: Error) -> Ended {
    match err {
        Error::Revoked => Ended::Revoked,
        err => Ended::Dropped(err.to_string()),
    }
}
