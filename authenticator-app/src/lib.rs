//! # outband-authenticator
//!
//! The desktop authenticator: a thin Tauri 2 shell over `outband-authenticator-core`.
//!
//! - [`run`] starts the app; [`run_app`] configures any `tauri::Builder`, so tests pass
//!   `tauri::test::mock_builder()`.
//! - `commands.rs`: what the webview may call, each delegating to the core; failures are
//!   [`CommandError`] `{code, message}`.
//! - `state.rs`: unlocked sessions (keys stay here), account statuses and the request cards.
//! - `watch.rs`: one `Session::watch` per unlocked account, forwarded to the webview as
//!   [`UiEvent`]s on [`EVENT`], with desktop notifications and the tray count (`tray.rs`).
//! - `deep_link.rs`: `outband://enroll?...` links; `settings.rs`: the settings screen's file;
//!   `autostart.rs`: the Linux autostart entry's `Exec=` line, quoted.
//! - `ui/`: the static frontend (no npm, no network: its CSP allows only IPC).
//!
//! The data directory is `$OUTBAND_AUTHENTICATOR_DIR`, else the platform's app data directory.

#[cfg(target_os = "linux")]
mod autostart;
mod commands;
mod deep_link;
mod error;
mod settings;
mod state;
mod tray;
mod watch;

use std::path::PathBuf;

use outband_authenticator_core::{system_clock, Authenticator, KeyStorage};
use tauri::{App, AppHandle, Manager, Runtime, WindowEvent};

pub use commands::UnlockReport;
pub use error::{CommandError, CommandResult};
pub use settings::Settings;
pub use state::{AccountStatus, AccountView, AppState, Card};
pub use watch::{RemovedReason, UiEvent, EVENT};

/// The label of the one window.
pub const MAIN_WINDOW: &str = "main";

/// The environment variable that chooses the data directory.
pub const DIR_ENV: &str = "OUTBAND_AUTHENTICATOR_DIR";

/// The environment variable that keeps new keys in files: `file` (anything else: the
/// OS keyring when one answers, else the file).
pub const KEY_STORE_ENV: &str = "OUTBAND_AUTHENTICATOR_KEY_STORE";

/// The argument autostart passes: start hidden, in the tray.
const MINIMIZED_ARG: &str = "--minimized";

/// How [`run_app`] sets the app up.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Where the accounts live; None: the platform's app data directory.
    pub data_dir: Option<PathBuf>,
    /// Tray icon, `outband://` registration, hide-on-close: off in mock-runtime tests.
    pub desktop: bool,
    /// Where new keys go; None: the OS keyring when one answers, else the 0600 file
    /// (the core's default). `Some(KeyStorage::File)`: always the file.
    pub key_storage: Option<KeyStorage>,
}

impl Options {
    /// The real app's options: the directory from [`DIR_ENV`], desktop integration on.
    pub fn from_env() -> Self {
        Self {
            data_dir: std::env::var_os(DIR_ENV).map(PathBuf::from),
            desktop: true,
            key_storage: (std::env::var(KEY_STORE_ENV).as_deref() == Ok("file")).then_some(KeyStorage::File),
        }
    }
}

/// Starts the desktop app (the binary's `main`).
pub fn run() {
    init_tracing();
    // First plugin, as its docs ask: a second start (or an outband:// link) wakes the running app.
    let builder = tauri::Builder::default().plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
        show_main_window(app);
    }));
    let app = match run_app(builder, Options::from_env()).build(context()) {
        Ok(app) => app,
        Err(err) => {
            eprintln!("outband-authenticator: {err}");
            std::process::exit(1);
        }
    };
    app.run(|_app, _event| {});
}

/// The app's configuration, assets and capabilities (from tauri.conf.json, ui/ and capabilities/),
/// for any runtime: tests build the mock runtime with the real capabilities.
pub fn context<R: Runtime>() -> tauri::Context<R> {
    tauri::generate_context!()
}

/// Adds the plugins, the state, the commands and the setup to `builder`.
pub fn run_app<R: Runtime>(builder: tauri::Builder<R>, options: Options) -> tauri::Builder<R> {
    let setup_options = options.clone();
    builder
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_autostart::Builder::new().arg(MINIMIZED_ARG).build())
        .setup(move |app| setup(app, &setup_options))
        .on_window_event(move |window, event| {
            // With a tray the app keeps listening for requests when its window is closed.
            if let WindowEvent::CloseRequested { api, .. } = event {
                if options.desktop
                    && window.label() == MAIN_WINDOW
                    && window.app_handle().tray_by_id(tray::TRAY_ID).is_some()
                {
                    api.prevent_close();
                    if let Err(err) = window.hide() {
                        tracing::warn!(error = %err, "could not hide the window");
                    }
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            commands::list_accounts,
            commands::unlock,
            commands::enroll,
            commands::enroll_from_qr,
            commands::remove_account,
            commands::list_requests,
            commands::approve,
            commands::deny,
            commands::history,
            commands::list_grants,
            commands::revoke_grant,
            commands::get_settings,
            commands::set_settings,
            commands::take_link,
        ])
}

fn setup<R: Runtime>(app: &mut App<R>, options: &Options) -> Result<(), Box<dyn std::error::Error>> {
    let dir = match &options.data_dir {
        Some(dir) => dir.clone(),
        None => app.path().app_data_dir()?,
    };
    let mut auth = Authenticator::open(dir)?;
    if let Some(storage) = options.key_storage {
        auth = auth.with_key_storage(storage);
    }
    app.manage(AppState::new(auth, system_clock())?);
    if options.desktop {
        if let Err(err) = tray::create(app) {
            tracing::warn!(error = %err, "no tray icon");
        }
        deep_link::setup(app);
        if std::env::args().any(|arg| arg == MINIMIZED_ARG) && app.tray_by_id(tray::TRAY_ID).is_some() {
            if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
                window.hide()?;
            }
        }
    }
    Ok(())
}

/// Brings the window to the front (tray, notification, second start, deep link).
pub(crate) fn show_main_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window(MAIN_WINDOW) {
        let shown = window
            .show()
            .and_then(|()| window.unminimize())
            .and_then(|()| window.set_focus());
        if let Err(err) = shown {
            tracing::warn!(error = %err, "could not show the window");
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,outband_authenticator=info,outband_authenticator_core=info")
    });
    // Logs go to stderr; a second subscriber (never here) would only be refused.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
