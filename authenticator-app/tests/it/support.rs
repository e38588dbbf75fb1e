//! The app on Tauri's mock runtime, with the real context (config and capabilities), a way to
//! call its commands as the webview does, and a way to run a test with its own `HOME`.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::Command;

use outband_authenticator::{context, run_app, Options, MAIN_WINDOW};
use outband_authenticator_core::KeyStorage;
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
            // Never the keyring of the desktop the tests run on.
            key_storage: Some(KeyStorage::File),
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

/// Set in the child process [`in_own_home`] starts: the temporary `HOME` it runs in.
const OWN_HOME_ENV: &str = "OUTBAND_TEST_OWN_HOME";
/// The file the child writes once `body` has run, with the test's name.
const DONE_FILE: &str = "test-ran";

/// Runs `body` (on a multi-threaded tokio runtime) in a child process of this test binary whose
/// `HOME` and XDG directories are a fresh temporary directory, passed to `body`. For tests that
/// reach what the OS keeps under `HOME` (the autostart entry): the developer's own is never
/// touched, and no environment variable changes in this multi-threaded process. `test` is the
/// test's full name (`module::name`); the parent checks that the child really ran it.
pub fn in_own_home<F, Fut>(test: &str, body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    in_own_home_from(test, None, body);
}

/// [`in_own_home`], with the child started from a link to this test binary in a directory
/// named `exe_dir` (beside the binary: a hard link needs the same file system), for paths
/// with spaces and the like. The link and the directory are removed afterwards.
pub fn in_own_home_from<F, Fut>(test: &str, exe_dir: Option<&str>, body: F)
where
    F: FnOnce(PathBuf) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(home) = std::env::var_os(OWN_HOME_ENV) {
        let home = PathBuf::from(home);
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap()
            .block_on(body(home.clone()));
        std::fs::write(home.join(DONE_FILE), test).unwrap();
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let linked = exe_dir.map(|name| {
        let dir = exe.parent().unwrap().join(format!("{name} {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join(exe.file_name().unwrap());
        let _ = std::fs::remove_file(&link);
        std::fs::hard_link(&exe, &link)
            .or_else(|_| std::fs::copy(&exe, &link).map(|_| ()))
            .unwrap();
        (dir, link)
    });
    let program = linked.as_ref().map_or(exe.clone(), |(_, link)| link.clone());
    let output = Command::new(&program)
        .args([test, "--exact", "--nocapture", "--test-threads", "1"])
        .env(OWN_HOME_ENV, home.path())
        .env("HOME", home.path())
        .env("XDG_CONFIG_HOME", home.path().join(".config"))
        .env("XDG_DATA_HOME", home.path().join(".local/share"))
        .env("XDG_CACHE_HOME", home.path().join(".cache"))
        .output();
    if let Some((dir, _)) = &linked {
        let _ = std::fs::remove_dir_all(dir);
    }
    let output = output.unwrap();
    eprintln!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "{test} failed in its own process: {}",
        output.status
    );
    let ran = std::fs::read_to_string(home.path().join(DONE_FILE)).unwrap_or_default();
    assert_eq!(ran, test, "the child process did not run {test}");
}
