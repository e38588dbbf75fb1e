//! The live part: one core `Session::watch` per unlocked account, its events kept in [`AppState`]
//! and forwarded to the webview as [`UiEvent`]s on [`EVENT`], plus the tray count and a desktop
//! notification for requests that arrive while the window is in the background.

use outband_authenticator_core::{AccountId, Removal, Session, WatchEnd, WatchEvent};
use serde::Serialize;
use tauri::{AppHandle, Emitter, Manager, Runtime};
use tauri_plugin_notification::NotificationExt;

use crate::state::{AccountStatus, AppState, Card};

/// The one event name the webview listens to.
pub const EVENT: &str = "authenticator://event";

/// What the webview is told. Carries only what is shown: never a JWT, key or credential.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum UiEvent {
    /// An account's connection changed.
    Status {
        /// Which account.
        account: AccountId,
        /// Its new status.
        status: AccountStatus,
    },
    /// A new, verified request to show.
    Request {
        /// The card (boxed: it is far larger than the other events).
        card: Box<Card>,
    },
    /// A card goes away.
    Removed {
        /// The request id.
        id: String,
        /// Why.
        reason: RemovedReason,
    },
    /// A request failed verification and is not shown (the user should know something is off).
    Rejected {
        /// For which account.
        account: AccountId,
        /// What failed.
        error: String,
    },
    /// An `outband://enroll` link was opened: show the enroll screen with it.
    Link {
        /// The link.
        link: String,
    },
}

/// Why a card goes away.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RemovedReason {
    /// Approved or denied, here or on another device.
    Decided,
    /// The client cancelled it.
    Withdrawn,
    /// Nobody answered in time.
    Expired,
    /// The server no longer lists it as pending.
    NoLongerPending,
    /// Its account was removed, locked or revoked.
    AccountGone,
}

impl From<Removal> for RemovedReason {
    fn from(removal: Removal) -> Self {
        match removal {
            Removal::Decided => Self::Decided,
            Removal::Withdrawn => Self::Withdrawn,
            Removal::Expired => Self::Expired,
            Removal::NoLongerPending => Self::NoLongerPending,
        }
    }
}

/// Sends an event to the webview (a webview that is not there yet fetches the state on load).
pub(crate) fn emit<R: Runtime>(app: &AppHandle<R>, event: UiEvent) {
    if let Err(err) = app.emit(EVENT, event) {
        tracing::warn!(error = %err, "could not send an event to the webview");
    }
}

/// Keeps `session` and starts streaming its requests, unless the account is already streaming.
pub(crate) fn start<R: Runtime>(app: &AppHandle<R>, session: Session) {
    let state = app.state::<AppState>();
    let id = session.account().id.clone();
    if !state.add_session(session.clone()) {
        return;
    }
    emit(
        app,
        UiEvent::Status {
            account: id.clone(),
            status: AccountStatus::Connecting,
        },
    );
    let (tx, mut rx) = tokio::sync::mpsc::channel(64);
    let watch_app = app.clone();
    let watch_id = id.clone();
    let watcher = tauri::async_runtime::spawn(async move {
        match session.watch(tx).await {
            Ok(WatchEnd::Closed) => {}
            Ok(WatchEnd::Revoked) => tracing::info!(account = %watch_id, "device revoked: stream ended"),
            Err(err) => {
                tracing::warn!(account = %watch_id, error = %err, "request stream ended");
                let status = AccountStatus::Disconnected {
                    error: err.to_string(),
                    retry_in_ms: 0,
                };
                watch_app.state::<AppState>().set_status(&watch_id, status.clone());
                emit(
                    &watch_app,
                    UiEvent::Status {
                        account: watch_id,
                        status,
                    },
                );
            }
        }
    });
    let forward_app = app.clone();
    let forwarder = tauri::async_runtime::spawn(async move {
        while let Some(event) = rx.recv().await {
            on_event(&forward_app, event);
        }
    });
    state.attach_tasks(&id, vec![watcher, forwarder]);
}

/// Stops an account's stream and drops its cards (lock, remove, revoke).
pub(crate) fn stop<R: Runtime>(app: &AppHandle<R>, id: &AccountId, status: Option<AccountStatus>) {
    let gone = app.state::<AppState>().end_session(id, status.clone());
    for request_id in gone {
        emit(
            app,
            UiEvent::Removed {
                id: request_id,
                reason: RemovedReason::AccountGone,
            },
        );
    }
    if let Some(status) = status {
        emit(
            app,
            UiEvent::Status {
                account: id.clone(),
                status,
            },
        );
    }
    crate::tray::refresh(app);
}

fn set_status<R: Runtime>(app: &AppHandle<R>, account: AccountId, status: AccountStatus) {
    app.state::<AppState>().set_status(&account, status.clone());
    emit(app, UiEvent::Status { account, status });
}

fn on_event<R: Runtime>(app: &AppHandle<R>, event: WatchEvent) {
    let state = app.state::<AppState>();
    match event {
        WatchEvent::Connected { account } => set_status(app, account, AccountStatus::Connected),
        WatchEvent::Disconnected {
            account,
            error,
            retry_in_ms,
        } => set_status(app, account, AccountStatus::Disconnected { error, retry_in_ms }),
        WatchEvent::Request { request } => {
            if let Some(card) = state.add_card(*request) {
                notify(app, &card);
                emit(app, UiEvent::Request { card: Box::new(card) });
                crate::tray::refresh(app);
            }
        }
        WatchEvent::Removed { id, reason, .. } => {
            if state.remove_card(&id) {
                emit(
                    app,
                    UiEvent::Removed {
                        id,
                        reason: reason.into(),
                    },
                );
                crate::tray::refresh(app);
            }
        }
        WatchEvent::Rejected { account, id, error } => {
            tracing::warn!(%account, request = %id, %error, "a request failed verification and is not shown");
            emit(app, UiEvent::Rejected { account, error });
        }
        WatchEvent::Revoked { account } => stop(app, &account, Some(AccountStatus::Revoked)),
    }
}

/// A desktop notification for a new request, when the user wants them and the window is not in front.
fn notify<R: Runtime>(app: &AppHandle<R>, card: &Card) {
    if !app.state::<AppState>().settings().notifications || window_is_focused(app) {
        return;
    }
    let request = &card.request;
    let who = request.client_name.as_deref().unwrap_or(&request.client_id);
    let title = match &card.display_amount {
        Some(amount) => format!("{who}: approve {amount}?"),
        None => format!("{who} asks you to approve"),
    };
    let body = match &request.binding_message {
        Some(code) => format!("Check the code on the till: {code}"),
        None => "Open Outband Authenticator to approve or deny.".to_owned(),
    };
    if let Err(err) = app.notification().builder().title(title).body(body).show() {
        tracing::warn!(error = %err, "could not show a desktop notification");
    }
}

fn window_is_focused<R: Runtime>(app: &AppHandle<R>) -> bool {
    app.get_webview_window(crate::MAIN_WINDOW)
        .and_then(|window| window.is_focused().ok())
        .unwrap_or(false)
}
