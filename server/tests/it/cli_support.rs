//! The `outband-server` binary run the way an operator runs it: one temporary
//! directory per test holding the SQLite database and the key file, passed in
//! through the `OUTBAND_*` environment.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The issuer every CLI test configures.
pub const ISSUER: &str = "https://as.example.test";

/// A data directory and the commands that use it.
pub struct CliEnv {
    pub dir: tempfile::TempDir,
}

impl CliEnv {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}", self.dir.path().join("cli.db").display())
    }

    pub fn key_file(&self) -> PathBuf {
        self.dir.path().join("cli.key")
    }

    /// `outband-server <args>` over this directory, ignoring any outside configuration.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_outband-server"));
        cmd.args(args)
            .env_remove("OUTBAND_CONFIG")
            .env("OUTBAND_DATABASE_URL", self.database_url())
            .env("OUTBAND_ISSUER", ISSUER)
            .env("OUTBAND_KEY_FILE", self.key_file())
            .env("RUST_LOG", "info");
        cmd
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    pub fn run_with_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .command(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; returns its standard output.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs a command that must fail; returns its standard error.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(!out.status.success(), "{args:?} should fail");
        String::from_utf8(out.stderr).unwrap()
    }
}

/// Parses a command's JSON output, saying what it was when it is not JSON.
pub fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
