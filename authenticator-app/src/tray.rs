//! The tray icon: how many requests wait (tooltip, label and first menu entry), "Show" and "Quit".
//!
//! On Linux the tray is an AppIndicator, which reports no clicks: the menu is how to get back to the
//! window there. Elsewhere a left click shows the window too.

use tauri::menu::{Menu, MenuItem, PredefinedMenuItem};
use tauri::tray::{MouseButton, MouseButtonState, TrayIconBuilder, TrayIconEvent};
use tauri::{App, AppHandle, Manager, Runtime};

use crate::state::AppState;

pub(crate) const TRAY_ID: &str = "outband";

/// The menu entry that shows the count, kept to update its text.
struct TrayItems<R: Runtime> {
    pending: MenuItem<R>,
}

/// Creates the tray icon (once, at setup).
pub(crate) fn create<R: Runtime>(app: &App<R>) -> tauri::Result<()> {
    let pending = MenuItem::with_id(app, "pending", capitalised(&pending_text(0)), true, None::<&str>)?;
    let show = MenuItem::with_id(app, "show", "Show Outband Authenticator", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit", true, None::<&str>)?;
    let separator = PredefinedMenuItem::separator(app)?;
    let menu = Menu::with_items(app, &[&pending, &separator, &show, &quit])?;
    let mut builder = TrayIconBuilder::with_id(TRAY_ID)
        .tooltip(format!("Outband Authenticator: {}", pending_text(0)))
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(|app, event| match event.id().as_ref() {
            "show" | "pending" => crate::show_main_window(app),
            "quit" => app.exit(0),
            _ => {}
        })
        .on_tray_icon_event(|tray, event| {
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
            {
                crate::show_main_window(tray.app_handle());
            }
        });
    if let Some(icon) = app.default_window_icon() {
        builder = builder.icon(icon.clone());
    }
    builder.build(app)?;
    app.manage(TrayItems { pending });
    Ok(())
}

fn pending_text(count: usize) -> String {
    match count {
        0 => "no pending requests".to_owned(),
        1 => "1 pending request".to_owned(),
        n => format!("{n} pending requests"),
    }
}

/// Shows the current number of pending requests (a no-op without a tray, as in tests).
pub(crate) fn refresh<R: Runtime>(app: &AppHandle<R>) {
    let count = app.state::<AppState>().pending_count();
    let text = pending_text(count);
    if let Some(tray) = app.tray_by_id(TRAY_ID) {
        let results = [
            tray.set_tooltip(Some(format!("Outband Authenticator: {text}"))),
            tray.set_title((count > 0).then(|| count.to_string())),
        ];
        for err in results.into_iter().filter_map(Result::err) {
            tracing::warn!(error = %err, "could not update the tray icon");
        }
    }
    if let Some(items) = app.try_state::<TrayItems<R>>() {
        if let Err(err) = items.pending.set_text(capitalised(&text)) {
            tracing::warn!(error = %err, "could not update the tray menu");
        }
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
