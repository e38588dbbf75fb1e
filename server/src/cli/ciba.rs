//! Operator commands for CIBA: look at backchannel requests and cancel one
//! (`ciba ...`), and look after the ping/push outbox (`notifications ...`).
//!
//! Like the other admin commands they talk to the database directly. A request
//! is named by its public `id`, never by its `auth_req_id` (the server keeps
//! only a hash of that, and it is the client's credential).
//!
//! This process has no event bus: cancelling here does not push a `withdrawn`
//! event to the user's devices. They drop the request when they next read
//! their pending list, and a decision on it is refused (409).

use std::collections::HashMap;

use anyhow::{anyhow, bail};
use clap::Subcommand;
use outband_protocol::Subject;
use serde_json::{json, Value};

use super::admin::{format_time, now, print_json};
use crate::store::{AuditQuery, CibaRequestRecord, CibaState, NotificationRecord, Store};

/// `ciba ...`
#[derive(Debug, Subcommand)]
pub enum CibaCommand {
    /// List backchannel requests, newest first.
    List {
        /// Only requests in this state.
        #[arg(long, value_parser = parse_state)]
        state: Option<CibaState>,
        /// At most this many requests.
        #[arg(long, default_value_t = crate::store::DEFAULT_CIBA_LIST_LIMIT)]
        limit: u32,
    },
    /// Show one request with its audit events (JSON).
    Show {
        /// The request's id (as `ciba list` shows it; ids may start with `-`).
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
    /// Cancel a pending request on the operator's authority.
    Cancel {
        /// The request's id.
        #[arg(allow_hyphen_values = true)]
        id: String,
    },
}

/// `notifications ...`
#[derive(Debug, Subcommand)]
pub enum NotificationsCommand {
    /// List ping/push notifications still to deliver, or with `--failed` those given up.
    List {
        /// Only notifications whose delivery was given up.
        #[arg(long)]
        failed: bool,
        /// At most this many notifications.
        #[arg(long, default_value_t = crate::store::DEFAULT_NOTIFICATION_LIST_LIMIT)]
        limit: u32,
    },
    /// Queue a failed notification again, due now; a running server delivers it within a second.
    Redeliver {
        /// The notification's id (as `notifications list --failed` shows it).
        id: i64,
    },
}

fn parse_state(text: &str) -> Result<CibaState, String> {
    CibaState::parse(text).ok_or_else(|| {
        let states: Vec<&str> = CibaState::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown state {text:?}; one of {}", states.join(", "))
    })
}

fn optional_time(unix: Option<i64>) -> Value {
    unix.map_or(Value::Null, |t| json!(format_time(t)))
}

/// What an operator may see of a request: no `auth_req_id` (nor its hash), no
/// sealed values.
fn request_json(r: &CibaRequestRecord, username: Option<&str>) -> Value {
    json!({
        "id": r.id,
        "client_id": r.client_id,
        "subject": r.subject,
        "username": username,
        "state": r.state.as_str(),
        "delivery_mode": r.delivery_mode.as_str(),
        "scope": r.scope,
        "acr_values": r.acr_values,
        "binding_message": r.binding_message,
        "authorization_details": r.authorization_details.as_deref().and_then(|d| serde_json::from_str::<Value>(d).ok()),
        "created_at": format_time(r.created_at),
        "expires_at": format_time(r.expires_at),
        "poll_interval": r.interval,
        "last_polled_at": optional_time(r.last_polled_at),
        "decided_at": optional_time(r.decided_at),
        "device_id": r.device_id,
        "amr": r.amr.as_deref().and_then(|a| serde_json::from_str::<Value>(a).ok()),
        "acr": r.acr,
        "deny_reason": r.deny_reason,
        "redeemed_at": optional_time(r.redeemed_at),
    })
}

/// Usernames of the subjects in `requests`, one lookup per user.
async fn usernames(store: &Store, requests: &[CibaRequestRecord]) -> anyhow::Result<HashMap<Subject, String>> {
    let mut names = HashMap::new();
    for r in requests {
        if !names.contains_key(&r.subject) {
            if let Some(user) = store.user(&r.subject).await? {
                names.insert(r.subject.clone(), user.username);
            }
        }
    }
    Ok(names)
}

async fn find_request(store: &Store, id: &str) -> anyhow::Result<CibaRequestRecord> {
    store
        .ciba_request(id)
        .await?
        .ok_or_else(|| anyhow!("no CIBA request {id} (use the id `ciba list` shows, not the auth_req_id)"))
}

/// `ciba ...`
pub async fn ciba(store: &Store, command: CibaCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        CibaCommand::List { state, limit } => {
            let requests = store.list_ciba_requests(state, limit).await?;
            let names = usernames(store, &requests).await?;
            let name = |r: &CibaRequestRecord| names.get(&r.subject).map(String::as_str);
            if json_out {
                let list: Vec<Value> = requests.iter().map(|r| request_json(r, name(r))).collect();
                return print_json(&json!(list));
            }
            if requests.is_empty() {
                println!("no CIBA requests");
            }
            for r in &requests {
                println!(
                    "{}\t{}\t{}\t{}\t{}\tcreated {}\texpires {}",
                    r.id,
                    r.client_id,
                    name(r).unwrap_or(r.subject.as_str()),
                    r.state,
                    r.binding_message
                        .as_deref()
                        .map_or_else(|| "-".to_owned(), |m| format!("{m:?}")),
                    format_time(r.created_at),
                    format_time(r.expires_at),
                );
            }
            Ok(())
        }
        CibaCommand::Show { id } => {
            let request = find_request(store, &id).await?;
            let names = usernames(store, std::slice::from_ref(&request)).await?;
            let mut out = request_json(&request, names.get(&request.subject).map(String::as_str));
            let events = store
                .audit(&AuditQuery {
                    request_id: Some(request.id.clone()),
                    ..AuditQuery::default()
                })
                .await?;
            if let Some(map) = out.as_object_mut() {
                map.insert("audit".into(), serde_json::to_value(&events)?);
            }
            print_json(&out)
        }
        CibaCommand::Cancel { id } => {
            let request = find_request(store, &id).await?;
            let at = now();
            let Some(cancelled) = store.cancel_ciba_request(&request.id, &request.client_id, at).await? else {
                let state = store.ciba_request(&id).await?.map_or(request.state, |r| r.state);
                bail!("request {id} is {state} and cannot be cancelled (only pending requests can)");
            };
            let event = crate::store::AuditEvent {
                id: 0,
                at,
                event: "ciba.cancelled".to_owned(),
                client_id: Some(cancelled.client_id.to_string()),
                subject: Some(cancelled.subject.to_string()),
                request_id: Some(cancelled.id.clone()),
                detail: json!({ "by": "operator" }),
            };
            if let Err(err) = store.append_audit(&event).await {
                eprintln!("warning: the request is cancelled but the audit event could not be written: {err}");
            }
            if json_out {
                return print_json(&json!({ "id": cancelled.id, "state": cancelled.state.as_str() }));
            }
            println!("cancelled request {} of client {}", cancelled.id, cancelled.client_id);
            println!("the client's next poll gets access_denied; the user's devices drop it when they next refresh");
            Ok(())
        }
    }
}

fn notification_json(n: &NotificationRecord) -> Value {
    json!({
        "id": n.id,
        "kind": n.kind.as_str(),
        "client_id": n.client_id,
        "ciba_request_id": n.ciba_request_id,
        "endpoint": n.endpoint,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "next_attempt_at": format_time(n.next_attempt_at),
        "created_at": format_time(n.created_at),
        "failed_at": optional_time(n.failed_at),
    })
}

/// `notifications ...`
pub async fn notifications(store: &Store, command: NotificationsCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        NotificationsCommand::List { failed, limit } => {
            let list = if failed {
                store.failed_notifications(limit).await?
            } else {
                store.pending_notifications(limit).await?
            };
            if json_out {
                return print_json(&json!(list.iter().map(notification_json).collect::<Vec<_>>()));
            }
            if list.is_empty() {
                println!(
                    "{}",
                    if failed {
                        "no failed notifications"
                    } else {
                        "no notifications to deliver"
                    }
                );
            }
            for n in &list {
                let when = match n.failed_at {
                    Some(at) => format!("failed {}", format_time(at)),
                    None => format!("next attempt {}", format_time(n.next_attempt_at)),
                };
                println!(
                    "{}\t{}\t{}\trequest {}\t{} attempts\t{when}\t{}",
                    n.id,
                    n.kind.as_str(),
                    n.client_id,
                    n.ciba_request_id,
                    n.attempts,
                    n.last_error.as_deref().unwrap_or("-"),
                );
            }
            Ok(())
        }
        NotificationsCommand::Redeliver { id } => {
            if !store.redeliver_notification(id, now()).await? {
                bail!("notification {id} is not a failed one (unknown, still being delivered, or delivered); see `notifications list --failed`");
            }
            if json_out {
                return print_json(&json!({ "redelivered": id }));
            }
            println!("notification {id} is due again; a running server delivers it within a second");
            Ok(())
        }
    }
}
