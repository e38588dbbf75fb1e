//! `outband-device watch` on a real terminal: the binary runs in a tmux pane
//! (a pty), asks for the PIN to unlock, shows each request, asks
//! `Approve? [y]es, [n]o…` and, to approve, the PIN again, all typed with
//! `send-keys`; the screen is read with `capture-pane`. The client then gets
//! its tokens, or `access_denied`. Needs tmux; skipped (with a message) when
//! tmux is not installed.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use outband_server::clock::{Clock as _, SystemClock};
use outband_server::test_server::TestServer;

use crate::support::{payment, request_id, with_users, PIN, WAIT};

/// Kills the tmux session on drop.
struct Pane(String);

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["kill-session", "-t", &self.0])
            .stderr(Stdio::null())
            .status();
    }
}

impl Pane {
    /// Everything the pane showed, scrollback included.
    fn capture(&self) -> String {
        let out = Command::new("tmux")
            .args(["capture-pane", "-p", "-J", "-S", "-", "-t", &self.0])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `text`, then Enter.
    fn type_line(&self, text: &str) {
        let typed = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, "-l", text])
            .status()
            .unwrap();
        let entered = Command::new("tmux")
            .args(["send-keys", "-t", &self.0, "Enter"])
            .status()
            .unwrap();
        assert!(typed.success() && entered.success());
    }

    /// Waits (bounded) until `needle` shows `times` times; returns the screen.
    async fn wait_for(&self, needle: &str, times: usize) -> String {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            let screen = self.capture();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the pane never showed {needle:?} {times} time(s):\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn watch_on_a_terminal_approves_with_y_and_the_pin_and_denies_with_n() {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("tmux is not installed: skipped");
        return;
    }
    // The binary reads the system clock for its DPoP proofs.
    let server = with_users(TestServer::start_at(SystemClock.now(), "")).await;
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("device");
    let pin_file = dir.path().join("pin");
    std::fs::write(&pin_file, format!("{PIN}\n")).unwrap();
    let bin = env!("CARGO_BIN_EXE_outband-device");

    // Enrolled without a terminal (the PIN from a file) ...
    let (_, link) = server.invite("alice").await;
    let enrolled = Command::new(bin)
        .args([
            "--dir",
            data.to_str().unwrap(),
            "--pin-file",
            pin_file.to_str().unwrap(),
        ])
        .args(["enroll", &link])
        .env("OUTBAND_DEVICE_KEY_STORE", "file")
        .env_remove("OUTBAND_DEVICE_DIR")
        .env_remove("OUTBAND_DEVICE_PIN_FILE")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        enrolled.status.success(),
        "{}",
        String::from_utf8_lossy(&enrolled.stderr)
    );

    // ... then watching on a terminal, with no PIN file: it asks.
    let name = format!(
        "outband-device-{}-{}",
        std::process::id(),
        server.url.rsplit(':').next().unwrap()
    );
    let command = format!(
        "env -u OUTBAND_DEVICE_DIR -u OUTBAND_DEVICE_PIN_FILE RUST_LOG=off {bin} --dir {} watch",
        data.display()
    );
    assert!(Command::new("tmux")
        .args(["new-session", "-d", "-s", &name, "-x", "160", "-y", "50", &command])
        .status()
        .unwrap()
        .success());
    let pane = Pane(name);
    pane.wait_for("PIN to unlock: ", 1).await;
    pane.type_line(PIN);

    // A payment: the pane shows it and asks; y, then the PIN, approves it.
    let approved = server
        .bc_authorize("pos", "alice", Some("TTY-APPROVE"), Some(&payment()))
        .await;
    let approved_id = request_id(&server, &approved).await;
    let screen = pane.wait_for("Approve? [y]es, [n]o", 1).await;
    assert!(screen.contains("TTY-APPROVE"), "{screen}");
    assert!(screen.contains("EUR 12.50"), "{screen}");
    assert!(screen.contains("Corner Café"), "{screen}");
    pane.type_line("y");
    pane.wait_for("PIN to approve: ", 1).await;
    pane.type_line(PIN);
    let screen = pane.wait_for(&format!("approved request {approved_id}"), 1).await;
    assert!(!screen.contains(PIN), "the PIN is never echoed:\n{screen}");
    server.clock.advance(5);
    let (status, tokens) = server.poll_token("pos", &approved).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens["access_token"].as_str().is_some_and(|t| !t.is_empty()));

    // Another: n denies it, and the client hears access_denied.
    let denied = server.bc_authorize("pos", "alice", Some("TTY-DENY"), None).await;
    let denied_id = request_id(&server, &denied).await;
    pane.wait_for("Approve? [y]es, [n]o", 2).await;
    pane.type_line("n");
    pane.wait_for(&format!("denied request {denied_id}"), 1).await;
    server.clock.advance(5);
    let (status, body) = server.poll_token("pos", &denied).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("access_denied")), "{body}");
}
