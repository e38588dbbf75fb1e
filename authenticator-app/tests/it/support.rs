//! The app on Tauri's mock runtime, with the real context (config and capabilities), and a
//! way to call its commands as the webview does.

use std::path::Path;

use outband_authenticator::{context, run_app, Options, MAIN_WINDOW};
use serde_json::Value;
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{get_ipc_response, mock_builder, MockRuntime, INVOKE_KEY};
use tauri::webview::InvokeRequest;
use tauri::{App, Manager, WebviewWindow};

/// The app over the data directory `dir`, and its main window.
pub struct MockApp {
    _app: App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
}

impl MockApp {
    pub fn new(dir: &Path) -> Self {
        let options = Options {
            data_dir: Some(dir.to_owned()),
            desktop: false,
        };
        let mut app = run_app(mock_builder(), options).build(context()).unwrap();
        // `build` does not run the setup (config windows, our state): the first event-loop
        // iteration does, and on the mock runtime an iteration does nothing else.
        #[allow(deprecated)]
        app.run_iteration(|_, _| {});
        let window = app
            .get_webview_window(MAIN_WINDOW)
            .expect("the main window from tauri.conf.json");
        Self { _app: app, window }
    }

    /// Calls `cmd` with `args` as the webview's `invoke` would; Ok(value) or Err({code, message}).
    /// The mock IPC blocks until the command answers, so it runs on a blocking thread (the window,
    /// unlike the app, may move to one).
    pub async fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let window = self.window.clone();
        let cmd = cmd.to_owned();
        tokio::task::spawn_blocking(move || invoke(&window, &cmd, args))
            .await
            .unwrap()
    }
}

fn invoke(window: &WebviewWindow<MockRuntime>, cmd: &str, args: Value) -> Result<Value, Value> {
    let request = InvokeRequest {
        cmd: cmd.into(),
        callback: CallbackFn(0),
        error: CallbackFn(1),
        url: "tauri://localhost".parse().unwrap(),
        body: InvokeBody::Json(args),
        headers: Default::default(),
        invoke_key: INVOKE_KEY.to_string(),
    };
    get_ipc_response(window, request).map(|body| body.deserialize::<Value>().unwrap())
}

/// The `code` of a command error.
pub fn code(error: &Value) -> &str {
    error["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not a CommandError: {error}"))
}
