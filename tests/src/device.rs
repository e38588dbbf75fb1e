//! An enrolled `outband-device` and its `watch` process.

use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::{binaries, Running, Server, PIN};

/// An `outband-device` data directory enrolled for a user, and its watch process.
pub struct Device {
    pub dir: tempfile::TempDir,
    watch: Option<Running>,
}

impl Device {
    /// Enrolls a new authenticator for `user` at `server` (an invitation
    /// made there; the device talks to the link's issuer), with PIN [`PIN`].
    pub fn enroll(server: &Server, user: &str) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        std::fs::write(dir.path().join("pin"), PIN).expect("writing the PIN file");
        let device = Self { dir, watch: None };
        let link = server.invite(user);
        let out = device
            .command(&["enroll", &link, "--name", "e2e authenticator"])
            .output()
            .expect("running outband-device");
        assert!(
            out.status.success(),
            "outband-device enroll: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        device
    }

    /// `outband-device --dir <dir> --pin-file <pin> --key-store file <args>` (the key in the
    /// temporary directory, never in the keyring of the desktop the tests run on).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&binaries().device);
        command
            .arg("--dir")
            .arg(self.dir.path().join("data"))
            .arg("--pin-file")
            .arg(self.dir.path().join("pin"))
            .args(["--key-store", "file"])
            .args(args)
            .stdin(Stdio::null());
        command
    }

    /// Starts `outband-device watch --auto <decision>` in the background.
    pub fn watch(&mut self, decision: &str) {
        let command = self.command(&["--json", "watch", "--auto", decision]);
        self.watch = Some(Running::spawn(command, &self.dir.path().join("watch.log")));
    }

    /// What the watch printed so far.
    pub fn log(&self) -> String {
        self.watch.as_ref().map(Running::log).unwrap_or_default()
    }

    /// The watch's JSON events of kind `event` (`decision`, `connected`, …).
    pub fn events(&self, event: &str) -> Vec<Value> {
        self.log()
            .lines()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|line| line["event"] == event)
            .collect()
    }
}

/// The JSON object `outband-pos pay --json` printed, or a panic that shows everything.
pub fn pay_json(out: &Output, server: &Server, device: &Device) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|err| {
        panic!(
            "outband-pos printed no JSON ({err}), exit {}:\nstdout: {}\nstderr: {}\n--- device:\n{}\n--- server:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            device.log(),
            server.log()
        )
    })
}
