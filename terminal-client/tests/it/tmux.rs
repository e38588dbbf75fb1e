//! The real `outband-pos` binary in tmux, through a whole sale: a real
//! `outband-server demo` process, alice enrolled on `outband-device`, which
//! approves with `watch --auto approve`; keys typed with `send-keys`, the
//! screen read with `capture-pane`.
//!
//! The sibling binaries are built (`cargo build -p outband-server -p
//! outband-authenticator-core --bins`) into the same target directory. Needs
//! tmux; skipped (with a message) when tmux is not installed.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long one screen may take to appear (bounded wait, not a timing assertion).
const SCREEN_WAIT: Duration = Duration::from_secs(60);

/// Kills the child on drop.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Kills the tmux session on drop.
pub struct Session(pub String);

impl Drop for Session {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

fn target_dir() -> PathBuf {
    // target/debug/outband-pos → target/debug
    Path::new(env!("CARGO_BIN_EXE_outband-pos"))
        .parent()
        .unwrap()
        .to_owned()
}

fn build_siblings() {
    let status = Command::new(env!("CARGO"))
        .args([
            "build",
            "-p",
            "outband-server",
            "-p",
            "outband-authenticator-core",
            "--bins",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .unwrap();
    assert!(status.success(), "cannot build outband-server and outband-device");
}

fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{} {args:?}: {}",
        program.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn capture(session: &str) -> String {
    let out = Command::new("tmux")
        .args(["capture-pane", "-p", "-t", session])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn send(session: &str, keys: &[&str]) {
    let mut args = vec!["send-keys", "-t", session];
    args.extend_from_slice(keys);
    assert!(Command::new("tmux").args(&args).status().unwrap().success());
}

/// Waits (bounded) until the pane shows `needle`; returns the screen.
pub async fn wait_for(session: &str, needle: &str) -> String {
    let deadline = std::time::Instant::now() + SCREEN_WAIT;
    loop {
        let screen = capture(session);
        if screen.contains(needle) {
            return screen;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the screen never showed {needle:?}:\n{screen}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_whole_sale_in_tmux_approved_by_outband_device() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    // Blocking here is fine: nothing else runs on this test's runtime yet.
    build_siblings();
    let bin = target_dir();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let issuer = format!("http://127.0.0.1:{port}");

    // The server.
    let server_dir = dir.path().join("server");
    let _server = Guard(
        Command::new(bin.join("outband-server"))
            .args([
                "demo",
                "--dir",
                server_dir.to_str().unwrap(),
                "--listen",
                &format!("127.0.0.1:{port}"),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let config = server_dir.join("outband.toml");
    let deadline = std::time::Instant::now() + SCREEN_WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() || !config.exists() {
        assert!(std::time::Instant::now() < deadline, "the demo server did not start");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Alice's device: enrolled with an invitation, then approving everything.
    let invite = run(
        &bin.join("outband-server"),
        &[
            "--config",
            config.to_str().unwrap(),
            "users",
            "invite",
            "alice",
            "--json",
        ],
    );
    let invite: serde_json::Value = serde_json::from_str(&invite).unwrap();
    let link = invite["link"].as_str().unwrap();
    let device_dir = dir.path().join("device");
    let pin = dir.path().join("pin");
    std::fs::write(&pin, "2468\n").unwrap();
    let device = |args: &[&str]| {
        let mut all = vec![
            "--dir",
            device_dir.to_str().unwrap(),
            "--pin-file",
            pin.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        all.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()
    };
    let enroll = device(&["enroll", link]);
    run(
        &bin.join("outband-device"),
        &enroll.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let _watch = Guard(
        Command::new(bin.join("outband-device"))
            .args(device(&["watch", "--auto", "approve"]))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );

    // The till.
    let session = format!("outband-pos-{}-{port}", std::process::id());
    let pos_dir = dir.path().join("pos");
    let command = format!(
        "env -u OUTBAND_POS_CONFIG -u OUTBAND_POS_CLIENT_ID OUTBAND_POS_ISSUER={issuer} OUTBAND_POS_DATA_DIR={} {}",
        pos_dir.display(),
        bin.join("outband-pos").display()
    );
    assert!(Command::new("tmux")
        .args(["new-session", "-d", "-s", &session, "-x", "120", "-y", "40", &command])
        .status()
        .unwrap()
        .success());
    let _session = Session(session.clone());
    wait_for(&session, "Enter start sale").await;
    send(
        &session,
        &["12.50", "Tab", "Tab", "alice@example.com", "Tab", "TMUX-1", "Enter"],
    );
    let receipt = wait_for(&session, "PAYMENT EXECUTED").await;
    assert!(receipt.contains("Payment    pay_"), "{receipt}");
    assert!(receipt.contains("Amount     EUR 12.50"), "{receipt}");
    assert!(receipt.contains("Payee      Corner Café"), "{receipt}");
    assert!(receipt.contains("Reference  TMUX-1"), "{receipt}");
    assert!(receipt.contains("Customer   alice@example.com"), "{receipt}");

    // Back to a new sale, then look the sale up and refund part of it.
    send(&session, &["Enter"]);
    wait_for(&session, "Enter start sale").await;
    send(&session, &["F3"]);
    wait_for(&session, "Enter looks it up").await;
    send(&session, &["TMUX-1", "Enter"]);
    wait_for(&session, "Bank payments:").await;
    send(&session, &["Tab", "2.50", "Enter"]);
    let refunded = wait_for(&session, "Refunded EUR 2.50").await;
    assert!(refunded.contains("partially_refunded"), "{refunded}");

    send(&session, &["C-c"]);
    // The terminal is given back: the shell command ends, and so does the session.
    let deadline = std::time::Instant::now() + SCREEN_WAIT;
    while Command::new("tmux")
        .args(["has-session", "-t", &session])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(std::time::Instant::now() < deadline, "outband-pos did not quit");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
