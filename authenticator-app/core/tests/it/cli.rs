//! `outband-device`, the real binary, against the in-process server. The
//! server's clock is set to the real time: the binary reads the system clock
//! for its DPoP proofs.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use outband_server::clock::{Clock as _, SystemClock};
use outband_server::test_server::TestServer;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

use crate::support::{payment, request_id, with_users, PIN, WAIT};

/// A data directory and a PIN file.
pub(crate) struct Device {
    _dir: tempfile::TempDir,
    pub(crate) data: PathBuf,
    pin_file: PathBuf,
}

impl Device {
    pub(crate) fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pin_file = dir.path().join("pin");
        std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
        Self {
            data: dir.path().join("device"),
            pin_file,
            _dir: dir,
        }
    }

    /// The binary on this device's directory and PIN file. Its keys go to the 0600 file
    /// (`--key-store file`): the tests never touch the keyring of the desktop they run on;
    /// `os_keyring.rs` tests the default with a Secret Service of its own.
    pub(crate) fn command(&self, args: &[&str]) -> Command {
        self.command_with_pin(&self.pin_file, args)
    }

    fn command_with_pin(&self, pin_file: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_outband-device"));
        command
            .arg("--dir")
            .arg(&self.data)
            .arg("--pin-file")
            .arg(pin_file)
            .args(args)
            .env_remove("OUTBAND_DEVICE_DIR")
            .env_remove("OUTBAND_DEVICE_PIN_FILE")
            .env("OUTBAND_DEVICE_KEY_STORE", "file")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        command
    }

    async fn run(&self, args: &[&str]) -> Output {
        tokio::time::timeout(WAIT, self.command(args).output())
            .await
            .expect("outband-device did not finish in time")
            .unwrap()
    }

    /// Runs a command that must succeed; returns its stdout.
    pub(crate) async fn ok(&self, args: &[&str]) -> String {
        let output = self.run(args).await;
        assert!(
            output.status.success(),
            "{args:?}: {}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    /// Runs a command that must fail with `code`; returns its stderr.
    pub(crate) async fn fails(&self, args: &[&str], code: i32) -> String {
        let output = self.run(args).await;
        let stderr = String::from_utf8(output.stderr).unwrap();
        assert_eq!(output.status.code(), Some(code), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("panicked") && !stderr.contains("RUST_BACKTRACE"),
            "{stderr}"
        );
        stderr
    }
}

/// A server whose clock starts at the real time (and stands still: the
/// binary's proofs stay well within the 60 s the server allows).
pub(crate) async fn real_time_server() -> TestServer {
    with_users(TestServer::start_at(SystemClock.now(), "")).await
}

/// The next line of JSON on a child's stdout.
async fn next_json(lines: &mut Lines<BufReader<ChildStdout>>) -> Value {
    let line = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("no output in time")
        .unwrap()
        .expect("the watch ended");
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
}

/// Reads JSON lines until `event`; returns it and what came before.
async fn until_event(lines: &mut Lines<BufReader<ChildStdout>>, event: &str) -> (Value, Vec<Value>) {
    let mut before = Vec::new();
    loop {
        let line = next_json(lines).await;
        if line["event"] == event {
            return (line, before);
        }
        before.push(line);
    }
}

/// Sends SIGTERM and waits for the exit.
async fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().unwrap().to_string();
    let sent = Command::new("kill").args(["-TERM", &pid]).status().await.unwrap();
    assert!(sent.success());
    tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("watch did not stop")
        .unwrap()
}

pub(crate) async fn enroll(device: &Device, server: &TestServer) -> String {
    let (_, link) = server.invite("alice").await;
    let out = device.ok(&["enroll", &link, "--name", "CI device"]).await;
    assert!(out.contains(&format!("enrolled alice at {}", server.url)), "{out}");
    let account = out
        .lines()
        .find_map(|l| l.strip_prefix("account "))
        .expect("the account id is printed")
        .to_owned();
    account
}

fn sealed_key(device: &Device, account: &str) -> PathBuf {
    device.data.join("keys").join(format!("{account}.sealed"))
}

#[tokio::test]
async fn enroll_then_watch_auto_approve_gives_the_client_tokens() {
    let server = real_time_server().await;
    let device = Device::new();
    let account = enroll(&device, &server).await;
    assert!(sealed_key(&device, &account).exists());
    let accounts: Value = serde_json::from_str(&device.ok(&["--json", "accounts"]).await).unwrap();
    assert_eq!(accounts[0]["id"], account.as_str());
    assert_eq!(accounts[0]["username"], "alice");
    assert_eq!(accounts[0]["device_name"], "CI device");

    // pending and deny --fraud, by hand.
    let first = server.bc_authorize("pos", "alice", Some("HAND-0001"), None).await;
    let first_id = request_id(&server, &first).await;
    let listed = device.ok(&["pending"]).await;
    assert!(
        listed.contains(&first_id) && listed.contains("code      HAND-0001"),
        "{listed}"
    );
    let out = device.ok(&["deny", &first_id, "--fraud"]).await;
    assert!(out.contains(&format!("denied request {first_id}")), "{out}");
    let (status, body) = server.poll_token("pos", &first).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")));
    assert_eq!(server.request(&first).await.deny_reason.as_deref(), Some("fraud"));

    // watch --auto approve --json approves what comes.
    let mut watch = device
        .command(&["watch", "--auto", "approve", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    until_event(&mut lines, "connected").await;
    let sale = server
        .bc_authorize("pos", "alice", Some("CAFE-7Q2K"), Some(&payment()))
        .await;
    let sale_id = request_id(&server, &sale).await;
    let (shown, _) = until_event(&mut lines, "request").await;
    assert_eq!(shown["request"]["id"], sale_id.as_str());
    assert_eq!(shown["request"]["binding_message"], "CAFE-7Q2K");
    assert_eq!(shown["request"]["client_name"], "Corner Café");
    assert_eq!(shown["request"]["payment"]["amount"], "12.50");
    assert_eq!(shown["request"]["payment"]["creditor_iban"], "DE89370400440532013000");
    assert!(shown["request"].get("request_jwt").is_none());
    let (decided, _) = until_event(&mut lines, "decision").await;
    assert_eq!(decided["id"], sale_id.as_str());
    assert_eq!(decided["state"], "approved");
    let (status, tokens) = server.poll_token("pos", &sale).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].is_string());

    let status = terminate(&mut watch).await;
    assert_eq!(status.code(), Some(0), "a clean exit on SIGTERM");
    let (stopped, _) = until_event(&mut lines, "stopped").await;
    assert_eq!(stopped["event"], "stopped");

    let history = device.ok(&["history"]).await;
    let rows: Vec<&str> = history.lines().collect();
    assert_eq!(rows.len(), 2, "{history}");
    assert!(
        rows[0].contains("\tapprove\tapproved\t") && rows[0].contains("EUR 12.50"),
        "{history}"
    );
    assert!(rows[1].contains("\tdeny_fraud\tdenied\t"), "{history}");
}

/// `text` as a PNG QR code, as a phone camera or a screenshot would give it.
fn qr_png(text: &str) -> Vec<u8> {
    let code = qrcode::QrCode::new(text.as_bytes()).unwrap();
    let (width, colors) = (code.width() as u32, code.to_colors());
    let (scale, quiet) = (6, 4);
    let size = (width + 2 * quiet) * scale;
    let image = image::GrayImage::from_fn(size, size, |x, y| {
        let (mx, my) = ((x / scale).wrapping_sub(quiet), (y / scale).wrapping_sub(quiet));
        let dark = mx < width && my < width && colors[(my * width + mx) as usize] == qrcode::Color::Dark;
        image::Luma([if dark { 0 } else { 255 }])
    });
    let mut png = std::io::Cursor::new(Vec::new());
    image.write_to(&mut png, image::ImageFormat::Png).unwrap();
    png.into_inner()
}

#[tokio::test]
async fn a_watch_of_a_revoked_device_exits_and_says_so() {
    let server = real_time_server().await;
    let device = Device::new();
    // Enrolled from the invitation's QR code this time.
    let (_, link) = server.invite("alice").await;
    let image = device.data.with_file_name("invite.png");
    std::fs::write(&image, qr_png(&link)).unwrap();
    let enrolled: Value = serde_json::from_str(
        &device
            .ok(&["--json", "enroll", "--qr", image.to_str().unwrap(), "--alg", "eddsa"])
            .await,
    )
    .unwrap();
    assert_eq!(enrolled["user"], "alice");
    assert_eq!(enrolled["alg"], "eddsa");
    let account = enrolled["account"].as_str().unwrap().to_owned();
    let mut watch = device
        .command(&["watch", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(watch.stdout.take().unwrap()).lines();
    until_event(&mut lines, "connected").await;
    server.revoke_device(&account).await;
    let (revoked, _) = until_event(&mut lines, "revoked").await;
    assert_eq!(revoked["account"], account.as_str());
    let output = tokio::time::timeout(WAIT, watch.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert!(stderr.contains("this device was revoked at the server"), "{stderr}");
    let listed = device.ok(&["accounts"]).await;
    assert!(listed.contains("REVOKED"), "{listed}");
}

#[tokio::test]
async fn bad_input_gets_a_readable_error() {
    let server = real_time_server().await;
    let device = Device::new();
    let stderr = device.fails(&["remove", "nobody"], 1).await;
    assert!(stderr.contains("no such account: nobody"), "{stderr}");
    let stderr = device.fails(&["approve", "r1"], 1).await;
    assert!(stderr.contains("no account is enrolled"), "{stderr}");
    let stderr = device.fails(&["enroll", "outband://enroll?code=ABCD"], 1).await;
    assert!(
        stderr.contains("invalid invitation: the link has no issuer"),
        "{stderr}"
    );
    let stderr = device.fails(&["enroll", "https://evil.example/enroll"], 1).await;
    assert!(stderr.contains("invalid invitation"), "{stderr}");
    let stderr = device.fails(&["enroll", "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345"], 1).await;
    assert!(stderr.contains("--issuer"), "{stderr}");
    let image = device.data.with_file_name("not-a-qr.png");
    std::fs::write(&image, b"not a picture").unwrap();
    let stderr = device.fails(&["enroll", "--qr", image.to_str().unwrap()], 1).await;
    assert!(stderr.contains("cannot be read as PNG or JPEG"), "{stderr}");
    // A code the server does not know.
    let stderr = device
        .fails(
            &["enroll", "ABCD-EFGH-JKMN-PQRS-TVWX-YZ01-2345", "--issuer", &server.url],
            1,
        )
        .await;
    assert!(stderr.contains("invalid_grant"), "{stderr}");

    // Usage errors: 2.
    device.fails(&["frobnicate"], 2).await;
    device.fails(&["watch", "--auto", "maybe"], 2).await;

    // Enrolled, then a wrong PIN file and an unknown request.
    let account = enroll(&device, &server).await;
    let stderr = device.fails(&["approve", "no-such-request"], 1).await;
    assert!(stderr.contains("no pending request no-such-request"), "{stderr}");
    let wrong = device.data.with_file_name("wrong-pin");
    std::fs::write(&wrong, "1357").unwrap();
    let output = device.command_with_pin(&wrong, &["pending"]).output().await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong PIN"));
    let output = device
        .command_with_pin(Path::new("/nonexistent/pin"), &["pending"])
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let missing = String::from_utf8_lossy(&output.stderr);
    assert!(
        missing.contains("cannot read the PIN file /nonexistent/pin"),
        "{missing}"
    );
    assert!(Path::new(&sealed_key(&device, &account)).exists());
}
