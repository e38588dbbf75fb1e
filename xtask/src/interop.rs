//! `cargo xtask interop`: interoperability tests in `interop/`. A third-party client
//! library (openid-client, npm) and a real browser (Debian's Chromium driven by
//! playwright-core) run the browser flows against a live `outband-server` that each
//! test file starts itself (SQLite, a free 127.0.0.1 port). Uses the debug binary,
//! building it first; `npm ci` runs when `interop/node_modules` is missing or older
//! than `package-lock.json`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{announce, display, on_path, target_dir};

/// The suite is stopped (and fails) after this long; it normally takes well under a minute.
const TIMEOUT: Duration = Duration::from_secs(240);
/// The Node.js major version the suite needs (openid-client 6, playwright-core, `node --test`).
const NODE_MAJOR: u32 = 20;

/// The interop directory.
pub fn dir(root: &Path) -> PathBuf {
    root.join("interop")
}

/// Installs the npm packages with `npm ci` unless `node_modules` is current.
pub fn install(root: &Path) -> Result<()> {
    let dir = dir(root);
    if !on_path("node") || !on_path("npm") {
        bail!("node and npm are needed for interop/ (Node.js {NODE_MAJOR} or newer)");
    }
    check_node_version()?;
    let lock = dir.join("package-lock.json");
    // npm writes node_modules/.package-lock.json on every install.
    let installed = dir.join("node_modules").join(".package-lock.json");
    let modified = |path: &Path| path.metadata().and_then(|m| m.modified()).ok();
    let current = match (modified(&lock), modified(&installed)) {
        (Some(lock), Some(installed)) => installed >= lock,
        _ => false,
    };
    if current {
        eprintln!("==> interop/node_modules is up to date");
        return Ok(());
    }
    crate::run(
        Command::new("npm")
            .current_dir(&dir)
            .args(["ci", "--no-audit", "--no-fund"]),
    )
}

fn check_node_version() -> Result<()> {
    let version = crate::capture(Command::new("node").arg("--version"))?;
    let major = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|major| major.parse::<u32>().ok())
        .with_context(|| format!("cannot read the Node.js version {version:?}"))?;
    if major < NODE_MAJOR {
        bail!(
            "interop/ needs Node.js {NODE_MAJOR} or newer; this is {}",
            version.trim()
        );
    }
    Ok(())
}

/// Builds the server (unless `prebuilt`, see [`crate::server_binary`]) and
/// runs `node --test` in `interop/`.
pub fn run(root: &Path, prebuilt: bool) -> Result<()> {
    install(root)?;
    let binary = crate::server_binary(root, prebuilt)?;
    let mut command = Command::new("node");
    command
        .current_dir(dir(root))
        // A hung test fails after a minute instead of running into TIMEOUT.
        .args(["--test", "--test-reporter", "spec", "--test-timeout", "60000"])
        .arg("test/")
        .env("OUTBAND_SERVER_BIN", &binary)
        .env("INTEROP_TARGET_DIR", target_dir(root));
    if std::env::var_os("CI").is_some() {
        command.env("NO_COLOR", "1");
    }
    announce(&command);
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", display(&command)))?;
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "the interop tests did not finish within {} s (server logs: {})",
                TIMEOUT.as_secs(),
                target_dir(root).join("interop").display()
            );
        }
        std::thread::park_timeout(Duration::from_millis(200));
    };
    if !status.success() {
        bail!(
            "the interop tests failed ({status}); server logs: {}, screenshots: {}",
            target_dir(root).join("interop").display(),
            target_dir(root).join("screenshots").display()
        );
    }
    Ok(())
}
