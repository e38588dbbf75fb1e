//! The commands the webview may call (and nothing else: see capabilities/main.json). Each one
//! delegates to the core. Arguments arrive in snake_case, as on the wire elsewhere.
//!
//! What comes back is public: account metadata, verified request contents, history, settings. PINs
//! go in and are dropped; keys, credentials and the signed request JWTs stay in Rust.

use base64::Engine as _;
use outband_authenticator_core::{
    AccountId, Decision, DecisionOutcome, Error as CoreError, Grant, HistoryEntry, Invite, KeyAlg, Pin,
};
use serde::Serialize;
use tauri::{AppHandle, Runtime, State};
use tauri_plugin_autostart::ManagerExt as _;

use crate::error::{CommandError, CommandResult};
use crate::settings::Settings;
use crate::state::{AccountStatus, AccountView, AppState, Card};
use crate::watch::{self, RemovedReason, UiEvent};

/// The device name used when the user leaves the field empty.
const DEFAULT_DEVICE_NAME: &str = "Desktop authenticator";

/// Which accounts an unlock opened and which stay locked (another PIN).
#[derive(Debug, Default, Serialize)]
pub struct UnlockReport {
    /// Now receiving requests.
    pub unlocked: Vec<AccountId>,
    /// Still locked.
    pub locked: Vec<AccountId>,
}

/// All accounts on this device with their status.
#[tauri::command(rename_all = "snake_case")]
pub fn list_accounts(state: State<'_, AppState>) -> CommandResult<Vec<AccountView>> {
    state.account_views()
}

/// Unlocks `account` with `pin`, or without `account` every locked account that this PIN opens.
#[tauri::command(rename_all = "snake_case")]
pub async fn unlock<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    pin: String,
    account: Option<AccountId>,
) -> CommandResult<UnlockReport> {
    let targets = match account {
        Some(id) => vec![id],
        None => locked_accounts(&state)?,
    };
    let auth = state.auth.clone();
    let results = blocking(move || {
        let pin = Pin::new(pin)?;
        Ok(targets
            .into_iter()
            .map(|id| (auth.unlock(&id, &pin), id))
            .collect::<Vec<_>>())
    })
    .await?;
    let mut report = UnlockReport::default();
    let mut first_error = None;
    for (result, id) in results {
        match result {
            Ok(session) => {
                watch::start(&app, session);
                report.unlocked.push(id);
            }
            Err(err) => {
                first_error.get_or_insert(err);
                report.locked.push(id);
            }
        }
    }
    match first_error {
        Some(err) if report.unlocked.is_empty() => Err(err.into()),
        _ => Ok(report),
    }
}

/// Enrolls with a pasted activation code or `outband://enroll` link (`issuer` for a bare code).
#[tauri::command(rename_all = "snake_case")]
pub async fn enroll<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    input: String,
    issuer: Option<String>,
    device_name: String,
    pin: String,
    pin_repeat: String,
) -> CommandResult<AccountView> {
    let pin = chosen_pin(pin, &pin_repeat)?;
    let issuer = parse_issuer(issuer.as_deref())?;
    let invite = Invite::parse(input.trim(), issuer.as_ref())?;
    enroll_with(&app, &state, invite, &device_name, pin).await
}

/// Enrolls with the invitation in a QR code image (PNG or JPEG bytes, base64 or a data: URL).
#[tauri::command(rename_all = "snake_case")]
pub async fn enroll_from_qr<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    image_base64: String,
    device_name: String,
    pin: String,
    pin_repeat: String,
) -> CommandResult<AccountView> {
    let pin = chosen_pin(pin, &pin_repeat)?;
    let bytes = decode_image(&image_base64)?;
    let invite = blocking(move || Ok(Invite::from_qr_image(&bytes)?)).await?;
    enroll_with(&app, &state, invite, &device_name, pin).await
}

/// Revokes the device at the server and deletes the account here (`force`: even when the server
/// cannot be reached).
#[tauri::command(rename_all = "snake_case")]
pub async fn remove_account<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    account: AccountId,
    pin: String,
    force: Option<bool>,
) -> CommandResult<()> {
    let pin = Pin::new(pin)?;
    state.auth.remove(&account, &pin, force.unwrap_or(false)).await?;
    watch::stop(&app, &account, None);
    Ok(())
}

/// The request cards on screen, the one expiring first first (for a webview that (re)loads).
#[tauri::command(rename_all = "snake_case")]
pub fn list_requests(state: State<'_, AppState>) -> CommandResult<Vec<Card>> {
    Ok(state.cards())
}

/// Approves a request with the PIN (and the number from the terminal, for number matching).
#[tauri::command(rename_all = "snake_case")]
pub async fn approve<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
    pin: String,
    number_match: Option<String>,
) -> CommandResult<DecisionOutcome> {
    let (session, request) = state.card_for_decision(&id)?;
    let pin = Pin::new(pin)?;
    let number_match = number_match.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    let result = session
        .decide(&request, Decision::Approve, Some(&pin), number_match.as_deref())
        .await;
    settle(&app, &state, &id, result)
}

/// Denies a request; `fraud`: "not me", reported to the bank as fraud.
#[tauri::command(rename_all = "snake_case")]
pub async fn deny<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    id: String,
    fraud: Option<bool>,
) -> CommandResult<DecisionOutcome> {
    let (session, request) = state.card_for_decision(&id)?;
    let decision = if fraud.unwrap_or(false) {
        Decision::DenyFraud
    } else {
        Decision::Deny
    };
    let result = session.decide(&request, decision, None, None).await;
    settle(&app, &state, &id, result)
}

/// Past decisions on this device, newest first.
#[tauri::command(rename_all = "snake_case")]
pub fn history(state: State<'_, AppState>) -> CommandResult<Vec<HistoryEntry>> {
    Ok(state.auth.history()?)
}

/// The grants (applications with access) of every unlocked account, newest change first.
/// Locked accounts are left out: asking the server needs the device key.
#[tauri::command(rename_all = "snake_case")]
pub async fn list_grants(state: State<'_, AppState>) -> CommandResult<Vec<Grant>> {
    let mut grants = Vec::new();
    for session in state.sessions() {
        grants.extend(session.grants().await?);
    }
    grants.sort_by_key(|grant| std::cmp::Reverse(grant.updated_at));
    Ok(grants)
}

/// Revokes a grant of `account` at the server: every token of it stops working.
#[tauri::command(rename_all = "snake_case")]
pub async fn revoke_grant(state: State<'_, AppState>, account: AccountId, grant_id: String) -> CommandResult<()> {
    state.session(&account)?.revoke_grant(&grant_id).await?;
    Ok(())
}

/// The settings; "start at login" as the OS has it.
#[tauri::command(rename_all = "snake_case")]
pub fn get_settings<R: Runtime>(app: AppHandle<R>, state: State<'_, AppState>) -> CommandResult<Settings> {
    Ok(Settings {
        start_at_login: app.autolaunch().is_enabled().unwrap_or(false),
        ..state.settings()
    })
}

/// Changes the settings; returns them as they now are.
#[tauri::command(rename_all = "snake_case")]
pub fn set_settings<R: Runtime>(
    app: AppHandle<R>,
    state: State<'_, AppState>,
    settings: Settings,
) -> CommandResult<Settings> {
    let autostart = app.autolaunch();
    if settings.start_at_login != autostart.is_enabled().unwrap_or(false) {
        let changed = if settings.start_at_login {
            autostart.enable()
        } else {
            autostart.disable()
        };
        changed.map_err(|err| CommandError::internal("changing start at login", err))?;
        #[cfg(target_os = "linux")]
        if settings.start_at_login {
            if let Err(err) = crate::autostart::quote_exec(&app) {
                // An entry that cannot start the app is worse than none.
                let _ = autostart.disable();
                return Err(CommandError::internal("changing start at login", err));
            }
        }
    }
    state.save_settings(settings)?;
    get_settings(app, state)
}

/// The `outband://enroll` link that opened the app, once (None when there is none).
#[tauri::command(rename_all = "snake_case")]
pub fn take_link(state: State<'_, AppState>) -> CommandResult<Option<String>> {
    Ok(state.take_pending_link())
}

fn locked_accounts(state: &AppState) -> CommandResult<Vec<AccountId>> {
    Ok(state
        .account_views()?
        .into_iter()
        .filter(|view| view.status == AccountStatus::Locked)
        .map(|view| view.account.id)
        .collect())
}

async fn enroll_with<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    invite: Invite,
    device_name: &str,
    pin: Pin,
) -> CommandResult<AccountView> {
    let name = match device_name.trim() {
        "" => DEFAULT_DEVICE_NAME,
        name => name,
    };
    let account = state.auth.enroll(&invite, name, KeyAlg::Es256, &pin).await?;
    let (auth, id) = (state.auth.clone(), account.id.clone());
    let session = blocking(move || Ok(auth.unlock(&id, &pin)?)).await?;
    watch::start(app, session);
    Ok(state.account_view(account))
}

/// The PIN chosen at enrollment, typed twice: checked before anything else.
fn chosen_pin(pin: String, pin_repeat: &str) -> CommandResult<Pin> {
    if pin != pin_repeat {
        return Err(CommandError::PinMismatch);
    }
    Ok(Pin::new(pin)?)
}

/// Removes the card when the decision went through or the request is gone anyway.
fn settle<R: Runtime>(
    app: &AppHandle<R>,
    state: &AppState,
    id: &str,
    result: Result<DecisionOutcome, CoreError>,
) -> CommandResult<DecisionOutcome> {
    let gone = match &result {
        Ok(_) => Some(RemovedReason::Decided),
        Err(CoreError::RequestGone(_)) => Some(RemovedReason::NoLongerPending),
        Err(CoreError::RequestExpired) => Some(RemovedReason::Expired),
        Err(_) => None,
    };
    if let Some(reason) = gone {
        if state.remove_card(id) {
            watch::emit(
                app,
                UiEvent::Removed {
                    id: id.to_owned(),
                    reason,
                },
            );
            crate::tray::refresh(app);
        }
    }
    Ok(result?)
}

fn parse_issuer(issuer: Option<&str>) -> CommandResult<Option<url::Url>> {
    match issuer.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(text) => url::Url::parse(text)
            .map(Some)
            .map_err(|err| CommandError::InvalidInput(format!("the server address is not a URL: {err}"))),
    }
}

fn decode_image(text: &str) -> CommandResult<Vec<u8>> {
    // A FileReader data: URL carries a prefix before the base64.
    let data = text.split_once(";base64,").map_or(text, |(_, data)| data).trim();
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|err| CommandError::InvalidInput(format!("the image could not be read: {err}")))
}

/// Runs CPU-heavy work (argon2, image decoding) off the async runtime's threads.
async fn blocking<T: Send + 'static>(work: impl FnOnce() -> CommandResult<T> + Send + 'static) -> CommandResult<T> {
    tauri::async_runtime::spawn_blocking(work)
        .await
        .map_err(|err| CommandError::internal("background task", err))?
}
