//! The real app, end to end: an in-process server, the app binary under Xvfb driven through
//! WebKitWebDriver, a CIBA request started with a real `POST /bc-authorize`, the card checked
//! and photographed, a wrong PIN refused, the right one approving, and the client's tokens; the
//! tray's count on the session bus; then, with the window hidden, a request that arrives is
//! announced by a desktop notification.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use tokio::time::Instant;

use crate::bus::{Message, Monitor, Tray};
use crate::server::Server;
use crate::webdriver::{missing_gui_programs, Display, Driver};

const PIN: &str = "2468";

/// Where screenshots go: `<target dir>/screenshots` (the binary lives in `<target dir>/<profile>/`).
fn screenshot_dir() -> PathBuf {
    let binary = PathBuf::from(env!("CARGO_BIN_EXE_outband-authenticator"));
    binary
        .parent()
        .and_then(|profile| profile.parent())
        .map(|target| target.join("screenshots"))
        .unwrap_or_else(|| PathBuf::from("target/screenshots"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enroll_then_approve_a_payment_in_the_real_app() {
    if std::env::var("OUTBAND_SKIP_GUI").as_deref() == Ok("1") {
        eprintln!("skipped: OUTBAND_SKIP_GUI=1");
        return;
    }
    if std::env::var("OUTBAND_TEST_BACKEND").as_deref() == Ok("postgres") {
        eprintln!("skipped: the GUI test runs once, with the SQLite backend (the app never sees the server's storage)");
        return;
    }
    let missing = missing_gui_programs();
    assert!(
        missing.is_empty(),
        "the GUI test needs {}: run `cargo xtask setup`, or set OUTBAND_SKIP_GUI=1 to skip it",
        missing.join(", ")
    );
    if let Err(err) = run().await {
        panic!("{err:#}");
    }
}

async fn run() -> Result<()> {
    let server = Server::start().await?;
    let link = server.invite_link("alice").await?;

    let home = tempfile::tempdir()?;
    let data_dir = home.path().join("authenticator");
    let display = Display::start()?;
    let home_path = home.path().to_str().context("temp path")?.to_owned();
    let data_path = data_dir.to_str().context("temp path")?.to_owned();
    let config_home = format!("{home_path}/.config");
    let data_home = format!("{home_path}/.local/share");
    let cache_home = format!("{home_path}/.cache");
    // The app inherits the driver's environment: its own HOME and XDG dirs keep the test from
    // touching the user's autostart entries, URL handlers or keyring.
    let driver = Driver::start(&[
        ("DISPLAY", display.name.as_str()),
        ("TAURI_WEBVIEW_AUTOMATION", "true"),
        ("OUTBAND_AUTHENTICATOR_DIR", data_path.as_str()),
        ("HOME", home_path.as_str()),
        ("XDG_CONFIG_HOME", config_home.as_str()),
        ("XDG_DATA_HOME", data_home.as_str()),
        ("XDG_CACHE_HOME", cache_home.as_str()),
        ("GDK_BACKEND", "x11"),
        ("WEBKIT_DISABLE_COMPOSITING_MODE", "1"),
        // No accessibility bus: nothing reads it here.
        ("NO_AT_BRIDGE", "1"),
        (
            "RUST_LOG",
            "warn,outband_authenticator=debug,outband_authenticator_core=debug",
        ),
    ])
    .await?;
    // Watches the app's session bus: notifications and the tray icon.
    let monitor = Monitor::start(&driver.bus_address).await?;
    // Started with the invitation link as its only argument, as the OS starts it for an
    // outband:// link.
    let app = driver
        .session(
            std::path::Path::new(env!("CARGO_BIN_EXE_outband-authenticator")),
            &[link.as_str()],
        )
        .await?;
    let long = Duration::from_secs(30);

    // The link opens the enroll screen with the link filled in.
    app.wait_for(
        "the app to start",
        long,
        "return document.body.dataset.ready === 'true'",
    )
    .await?;
    app.wait_for(
        "the enroll screen",
        long,
        "return !document.getElementById('view-enroll').hidden",
    )
    .await?;
    let prefilled = app
        .execute("return document.getElementById('enroll-input').value", vec![])
        .await?;
    ensure!(
        prefilled == json!(link),
        "the enroll field holds {prefilled}, not the link"
    );
    app.type_into("#enroll-name", "Alice's desktop").await?;
    app.type_into("#enroll-pin", PIN).await?;
    app.type_into("#enroll-pin2", PIN).await?;
    app.click("#enroll-submit").await?;
    app.wait_for(
        "the requests screen after enrolling",
        long,
        "return !document.getElementById('view-requests').hidden",
    )
    .await
    .context(error_text(&app, "#enroll-error").await)?;
    let accounts = server.devices_of("alice").await?;
    ensure!(
        accounts == 1,
        "the server should list one device for alice, got {accounts}"
    );

    // A payment, started as a POS terminal would.
    let auth_req_id = server
        .bc_authorize(&[
            ("scope", "openid payments"),
            ("login_hint", "alice"),
            ("binding_message", "CAFE-7Q2K"),
            (
                "authorization_details",
                &json!([{
                    "type": "payment_initiation",
                    "instructedAmount": {"currency": "EUR", "amount": "12.50"},
                    "creditorName": "Corner Café Ltd",
                    "creditorAccount": {"iban": "DE89370400440532013000"},
                    "remittanceInformationUnstructured": "Flat white and a croissant",
                }])
                .to_string(),
            ),
        ])
        .await?;

    app.wait_for(
        "the request card",
        long,
        "return document.querySelector('#cards .card') !== null",
    )
    .await?;
    let amount = app.text("#cards .card .amount").await?;
    let payee = app.text("#cards .card .payee-name").await?;
    let iban = app.text("#cards .card .iban").await?;
    let binding = app.text("#cards .card .binding-message").await?;
    let title = app.text("#cards .card .card-title").await?;
    ensure!(amount == "EUR 12.50", "amount on the card: {amount:?}");
    ensure!(payee == "Corner Café Ltd", "payee on the card: {payee:?}");
    ensure!(iban == "DE89 3704 0044 0532 0130 00", "IBAN on the card: {iban:?}");
    ensure!(binding == "CAFE-7Q2K", "binding message on the card: {binding:?}");
    ensure!(
        title.contains("wants you to approve a payment"),
        "card title: {title:?}"
    );
    // The countdown shows time left (m:ss).
    let countdown = app.text("#cards .card .countdown").await?;
    ensure!(
        countdown.len() >= 4 && countdown.contains(':') && countdown != "0:00",
        "countdown: {countdown:?}"
    );
    // The tray icon counts it: its label, shown beside the icon (on the bus as a panel sees it).
    monitor
        .wait_for("the tray label \"1\"", long, |m| {
            (tray_label(m, 0).as_deref() == Some("1")).then_some(())
        })
        .await?;

    // A panel reads the tray icon's menu over dbusmenu: the count is its first entry.
    let tray = Tray::find(&driver.bus_address, &monitor.messages()?)?;
    ensure!(tray.label()? == "1", "the tray label property");
    tray.wait_for_menu(long, &["1 pending request", "Show Outband Authenticator", "Quit"])
        .await?;

    let screenshot = app.screenshot().await?;
    let dir = screenshot_dir();
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("request-card.png");
    std::fs::write(&path, &screenshot)?;
    eprintln!("screenshot of the request card: {}", path.display());

    // A wrong PIN: an error on the card, nothing approved.
    app.type_into("#cards .card .pin-input", "0000").await?;
    app.click("#cards .card .approve").await?;
    let error = app
        .wait_for(
            "the wrong-PIN error",
            long,
            "const e = document.querySelector('#cards .card .error'); return e && e.textContent",
        )
        .await?;
    ensure!(
        error.as_str().unwrap_or_default().contains("Wrong PIN"),
        "error shown: {error}"
    );
    let poll = server.poll_token(&auth_req_id).await?;
    ensure!(
        poll["error"] == "authorization_pending",
        "after a wrong PIN the request must still be pending: {poll}"
    );

    // The right PIN, with Enter in the PIN field as a user would.
    app.type_into("#cards .card .pin-input", &format!("{PIN}\u{E007}"))
        .await?;
    app.wait_for(
        "the card to go away",
        long,
        "return document.querySelector('#cards .card') === null",
    )
    .await
    .context(error_text(&app, "#cards .card .error").await)?;

    let deadline = Instant::now() + long;
    let tokens = loop {
        let reply = server.poll_token(&auth_req_id).await?;
        if reply.get("access_token").is_some() {
            break reply;
        }
        ensure!(
            reply["error"] == "authorization_pending" || reply["error"] == "slow_down",
            "token endpoint: {reply}"
        );
        ensure!(Instant::now() < deadline, "no tokens within {long:?}: {reply}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    ensure!(
        tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()),
        "{tokens}"
    );

    // The decision is in the history.
    app.click("button.tab[data-view='history']").await?;
    let row = app
        .wait_for(
            "the history row",
            long,
            "const r = document.querySelector('#history-rows tr'); return r && r.textContent",
        )
        .await?;
    ensure!(row.as_str().unwrap_or_default().contains("Approved"), "history: {row}");
    // The approval gave the café access: listed under Access, in plain words.
    app.click("button.tab[data-view='access']").await?;
    let grant = app
        .wait_for(
            "the grant in the Access view",
            long,
            "const g = document.querySelector('#grant-list .grant'); return g && g.textContent",
        )
        .await?;
    ensure!(
        grant
            .as_str()
            .is_some_and(|g| g.contains("Corner Café") && g.contains("pay EUR 12.50")),
        "access: {grant}"
    );
    // Nothing waits any more: the tray's label is cleared, its menu says so.
    monitor
        .wait_for("the tray label to clear", long, |m| {
            (tray_label(m, 0).as_deref() == Some("")).then_some(())
        })
        .await?;
    tray.wait_for_menu(long, &["No pending requests", "Show Outband Authenticator", "Quit"])
        .await?;
    // That request arrived with the window in front (WebDriver focuses it): no notification.
    ensure!(
        !monitor.messages()?.iter().any(|m| m.is("Notify")),
        "a notification was sent for a request that arrived with the window in front"
    );

    // The window goes to the background (hidden, as when closed to the tray): a request that
    // arrives now is announced by a desktop notification with its amount and binding message.
    hide_window(&display.name)?;
    // Once the page sees itself hidden, the app's window has lost the focus too.
    app.wait_for(
        "the page to see its window hidden",
        long,
        "return document.visibilityState === 'hidden'",
    )
    .await?;
    let seen = monitor.messages()?.len();
    server
        .bc_authorize(&[
            ("scope", "openid payments"),
            ("login_hint", "alice"),
            ("binding_message", "TEA-3F9X"),
            (
                "authorization_details",
                &json!([{
                    "type": "payment_initiation",
                    "instructedAmount": {"currency": "EUR", "amount": "4.20"},
                    "creditorName": "Corner Café Ltd",
                }])
                .to_string(),
            ),
        ])
        .await?;
    let (summary, body) = monitor
        .wait_for("the Notify call", long, |m| {
            m.get(seen..)?.iter().find(|m| m.is("Notify")).map(|notify| {
                // Notify(app_name, replaces_id, app_icon, summary, body, ...)
                let strings = notify.strings();
                (
                    strings.get(2).cloned().unwrap_or_default(),
                    strings.get(3).cloned().unwrap_or_default(),
                )
            })
        })
        .await?;
    ensure!(summary.contains("EUR 4.20"), "notification summary: {summary:?}");
    ensure!(body.contains("TEA-3F9X"), "notification body: {body:?}");
    monitor
        .wait_for("the tray label \"1\" again", long, |m| {
            (tray_label(m, seen).as_deref() == Some("1")).then_some(())
        })
        .await?;
    tray.wait_for_menu(long, &["1 pending request", "Show Outband Authenticator", "Quit"])
        .await?;

    app.close().await.ok();
    Ok(())
}

/// The tray icon's label as last announced from message `from` on (the AppIndicator's
/// `XAyatanaNewLabel(label, guide)` signal), None when it was not announced.
fn tray_label(messages: &[Message], from: usize) -> Option<String> {
    messages
        .get(from..)?
        .iter()
        .rev()
        .find(|m| m.is("XAyatanaNewLabel"))
        .and_then(|m| m.strings().first().cloned())
}

/// Unmaps the app's window on `display` (no window manager runs there to minimize it).
fn hide_window(display: &str) -> Result<()> {
    let status = std::process::Command::new("xdotool")
        .args([
            "search",
            "--sync",
            "--onlyvisible",
            "--name",
            "^Outband Authenticator$",
            "windowunmap",
            "--sync",
            "%@",
        ])
        .env("DISPLAY", display)
        .status()
        .context("running xdotool")?;
    ensure!(status.success(), "xdotool could not hide the window: {status}");
    Ok(())
}

/// The text of an error element, to explain a timeout.
async fn error_text(app: &crate::webdriver::Session, css: &str) -> String {
    let script = format!("const e = document.querySelector({css:?}); return e ? e.textContent : ''");
    match app.execute(&script, vec![]).await {
        Ok(Value::String(text)) if !text.is_empty() => format!("the app shows: {text}"),
        _ => "no error shown".to_owned(),
    }
}
