//! `outband://` links. On Linux and Windows the scheme is registered at runtime (an app run from a
//! build tree is not installed), and a link opens a new process with the link as its only argument:
//! tauri-plugin-single-instance hands it to the running app. An `outband://enroll?...` link opens the
//! enroll screen with the link filled in; the user still chooses the PIN and confirms.

use tauri::{App, AppHandle, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::state::AppState;
use crate::watch::{emit, UiEvent};

/// Registers the scheme (where the OS needs it) and handles the link that started the app, if any.
pub(crate) fn setup<R: Runtime>(app: &App<R>) {
    #[cfg(any(target_os = "linux", windows))]
    if let Err(err) = app.deep_link().register_all() {
        tracing::warn!(error = %err, "could not register the outband:// scheme");
    }
    match app.deep_link().get_current() {
        Ok(Some(urls)) => urls.into_iter().for_each(|url| open(app.handle(), &url)),
        Ok(None) => {}
        Err(err) => tracing::warn!(error = %err, "could not read the link that started the app"),
    }
    let handle = app.handle().clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            open(&handle, &url);
        }
    });
}

/// Shows the enroll screen for an `outband://enroll` link; other links are ignored.
pub(crate) fn open<R: Runtime>(app: &AppHandle<R>, url: &url::Url) {
    if url.scheme() != "outband" || url.host_str() != Some("enroll") {
        tracing::warn!(scheme = url.scheme(), "ignoring a link the app does not handle");
        return;
    }
    app.state::<AppState>().set_pending_link(url.to_string());
    emit(app, UiEvent::Link { link: url.to_string() });
    crate::show_main_window(app);
}
