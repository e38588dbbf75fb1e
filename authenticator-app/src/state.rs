//! What the shell keeps in memory: the core [`Authenticator`], the unlocked [`Session`]s (their keys
//! never leave Rust), each account's connection status and the request cards on screen.
//!
//! One `std::sync::Mutex` guards it all: every critical section is a few map operations and never
//! awaits (CONVENTIONS 20), and Tauri's `State` is already shared, so no `Arc`.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use outband_authenticator_core::{Account, AccountId, Authenticator, Clock, Session, VerifiedRequest};
use serde::Serialize;
use tauri::async_runtime::JoinHandle;

use crate::error::{CommandError, CommandResult};
use crate::settings::Settings;

/// The connection state of one account, as the accounts screen shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AccountStatus {
    /// Its key is sealed: unlock it with its PIN to receive requests.
    Locked,
    /// Unlocked, the stream is being opened.
    Connecting,
    /// The live stream is open.
    Connected,
    /// The stream dropped; the core retries by itself.
    Disconnected {
        /// Why, in words.
        error: String,
        /// When the next attempt is made.
        retry_in_ms: u64,
    },
    /// The server revoked this device: it receives nothing any more.
    Revoked,
}

/// An account with its status: an entry of the accounts screen. Public metadata only.
#[derive(Clone, Debug, Serialize)]
pub struct AccountView {
    /// Id, issuer, username, device name, algorithm, enrollment time, key storage.
    #[serde(flatten)]
    pub account: Account,
    /// Locked, connecting, connected, disconnected or revoked.
    pub status: AccountStatus,
}

/// A request card: the verified request (its signed JWT stays in Rust) and whose account it is for.
#[derive(Clone, Debug, Serialize)]
pub struct Card {
    /// What the server signed, verified by the core (`request_jwt` is never serialized).
    #[serde(flatten)]
    pub request: VerifiedRequest,
    /// The account's username, to tell accounts apart.
    pub username: String,
    /// The account's server.
    pub issuer: String,
    /// The payment amount as people read it ("EUR 12.50"), when it is a payment.
    pub display_amount: Option<String>,
    /// Seconds left to answer, as of this copy of the card: what the countdown starts from. It
    /// is measured with this device's clock from when the card arrived, and never more than the
    /// request's whole lifetime, so a device whose clock is off from the server's still counts
    /// down sensibly (the webview never compares `expires_at` with its own clock).
    pub seconds_left: i64,
    /// When the card arrived, by this device's clock.
    #[serde(skip)]
    pub received_at: i64,
}

impl Card {
    /// The card as of `now` (this device's clock), with [`Card::seconds_left`] up to date.
    fn as_of(&self, now: i64) -> Self {
        let request = &self.request;
        let at_arrival = (request.expires_at - request.issued_at).min(request.expires_at - self.received_at);
        Self {
            seconds_left: (at_arrival - (now - self.received_at)).max(0),
            ..self.clone()
        }
    }
}

/// An unlocked account and the tasks that stream its requests.
struct Live {
    session: Session,
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Live {
    /// The streams end with the session, also when the whole state goes away (app exit):
    /// a stream left running could otherwise write to the accounts file after the app.
    fn drop(&mut self) {
        self.tasks.iter().for_each(JoinHandle::abort);
    }
}

#[derive(Default)]
struct Inner {
    live: HashMap<AccountId, Live>,
    status: HashMap<AccountId, AccountStatus>,
    cards: BTreeMap<String, Card>,
    settings: Settings,
    pending_link: Option<String>,
}

/// The shell's state (managed by Tauri).
pub struct AppState {
    /// The core: accounts, sealed keys, history.
    pub auth: Authenticator,
    clock: Clock,
    settings_path: PathBuf,
    inner: Mutex<Inner>,
}

impl AppState {
    /// State over an opened authenticator, with the settings read from its directory.
    pub fn new(auth: Authenticator, clock: Clock) -> CommandResult<Self> {
        let settings_path = crate::settings::path(auth.dir());
        let settings = crate::settings::load(&settings_path)?;
        Ok(Self {
            auth,
            clock,
            settings_path,
            inner: Mutex::new(Inner {
                settings,
                ..Inner::default()
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding this lock cannot leave the maps half-updated in a way that matters
        // more than losing the whole app, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// All accounts with their status.
    pub fn account_views(&self) -> CommandResult<Vec<AccountView>> {
        let accounts = self.auth.accounts()?;
        let inner = self.lock();
        Ok(accounts
            .into_iter()
            .map(|account| AccountView {
                status: inner.status.get(&account.id).cloned().unwrap_or(AccountStatus::Locked),
                account,
            })
            .collect())
    }

    /// One account with its status.
    pub fn account_view(&self, account: Account) -> AccountView {
        let status = self.status(&account.id);
        AccountView { account, status }
    }

    /// The status of an account (locked unless we know better).
    pub fn status(&self, id: &AccountId) -> AccountStatus {
        self.lock().status.get(id).cloned().unwrap_or(AccountStatus::Locked)
    }

    /// Records an account's status.
    pub fn set_status(&self, id: &AccountId, status: AccountStatus) {
        self.lock().status.insert(id.clone(), status);
    }

    /// The unlocked sessions, one per account.
    pub fn sessions(&self) -> Vec<Session> {
        self.lock().live.values().map(|live| live.session.clone()).collect()
    }

    /// The unlocked session of `id`; [`CommandError::Locked`] when it is locked.
    pub fn session(&self, id: &AccountId) -> CommandResult<Session> {
        self.lock()
            .live
            .get(id)
            .map(|live| live.session.clone())
            .ok_or(CommandError::Locked)
    }

    /// Whether this account has an unlocked session.
    pub fn is_unlocked(&self, id: &AccountId) -> bool {
        self.lock().live.contains_key(id)
    }

    /// Keeps an unlocked session; false when the account already had one (the new one is dropped).
    pub fn add_session(&self, session: Session) -> bool {
        let id = session.account().id.clone();
        let mut inner = self.lock();
        if inner.live.contains_key(&id) {
            return false;
        }
        inner.live.insert(
            id.clone(),
            Live {
                session,
                tasks: Vec::new(),
            },
        );
        inner.status.insert(id, AccountStatus::Connecting);
        true
    }

    /// Remembers the tasks streaming for an account, so that locking or removing it stops them.
    /// When the account went away meanwhile, the tasks are stopped at once.
    pub fn attach_tasks(&self, id: &AccountId, tasks: Vec<JoinHandle<()>>) {
        let mut inner = self.lock();
        match inner.live.get_mut(id) {
            Some(live) => live.tasks.extend(tasks),
            None => tasks.iter().for_each(JoinHandle::abort),
        }
    }

    /// Forgets an account's session (stopping its stream) and its cards; `status` is what it becomes.
    /// Returns the ids of the cards that went away.
    pub fn end_session(&self, id: &AccountId, status: Option<AccountStatus>) -> Vec<String> {
        let mut inner = self.lock();
        // Dropping the session stops its streams.
        inner.live.remove(id);
        match status {
            Some(status) => inner.status.insert(id.clone(), status),
            None => inner.status.remove(id),
        };
        let gone: Vec<String> = inner
            .cards
            .iter()
            .filter(|(_, card)| &card.request.account == id)
            .map(|(request_id, _)| request_id.clone())
            .collect();
        for request_id in &gone {
            inner.cards.remove(request_id);
        }
        gone
    }

    /// Adds a card for a verified request; None when it is already shown (each id is shown once).
    pub fn add_card(&self, request: VerifiedRequest) -> Option<Card> {
        let mut inner = self.lock();
        if inner.cards.contains_key(&request.id) {
            return None;
        }
        let account = inner
            .live
            .get(&request.account)
            .map(|live| live.session.account().clone());
        let now = (self.clock)();
        let card = Card {
            username: account.as_ref().map(|a| a.username.clone()).unwrap_or_default(),
            issuer: account.as_ref().map(|a| a.issuer.to_string()).unwrap_or_default(),
            display_amount: request.payment.as_ref().map(|p| p.display_amount()),
            seconds_left: 0,
            received_at: now,
            request,
        };
        inner.cards.insert(card.request.id.clone(), card.clone());
        Some(card.as_of(now))
    }

    /// Removes a card; true when it was there.
    pub fn remove_card(&self, id: &str) -> bool {
        self.lock().cards.remove(id).is_some()
    }

    /// The cards, the one expiring first first.
    pub fn cards(&self) -> Vec<Card> {
        let now = (self.clock)();
        let mut cards: Vec<Card> = self.lock().cards.values().map(|card| card.as_of(now)).collect();
        cards.sort_by(|a, b| (a.request.expires_at, &a.request.id).cmp(&(b.request.expires_at, &b.request.id)));
        cards
    }

    /// How many requests wait for the user.
    pub fn pending_count(&self) -> usize {
        self.lock().cards.len()
    }

    /// The request with this id and the session that can decide it.
    pub fn card_for_decision(&self, id: &str) -> CommandResult<(Session, VerifiedRequest)> {
        let inner = self.lock();
        let card = inner.cards.get(id).ok_or(CommandError::UnknownRequest)?;
        let live = inner.live.get(&card.request.account).ok_or(CommandError::Locked)?;
        Ok((live.session.clone(), card.request.clone()))
    }

    /// The current settings (notifications; start at login is read from the OS by the command).
    pub fn settings(&self) -> Settings {
        self.lock().settings.clone()
    }

    /// Stores new settings.
    pub fn save_settings(&self, settings: Settings) -> CommandResult<()> {
        crate::settings::save(&self.settings_path, &settings)?;
        self.lock().settings = settings;
        Ok(())
    }

    /// Keeps an `outband://enroll` link until the webview asks for it (it may not be loaded yet).
    pub fn set_pending_link(&self, link: String) {
        self.lock().pending_link = Some(link);
    }

    /// The link that opened the app, once.
    pub fn take_pending_link(&self) -> Option<String> {
        self.lock().pending_link.take()
    }
}
