//! A throwaway `outband-server demo` on a free 127.0.0.1 port with its data in a
//! temporary directory, for the steps that need a live server (schemathesis,
//! bench). Dropping it stops the server (SIGTERM, then SIGKILL after 5 s).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::{announce, display, without_cargo_run_env};

/// A running demo server.
pub struct LiveServer {
    /// `http://127.0.0.1:<port>`, also the issuer.
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

impl LiveServer {
    /// Starts `binary demo` with its output in `log`; waits (at most 60 s) until `/readyz` answers 200.
    pub fn start(binary: &Path, log: &Path) -> Result<Self> {
        Self::launch(binary, log, |listen, dir| {
            Ok(vec![
                "demo".into(),
                "--listen".into(),
                listen.into(),
                "--dir".into(),
                dir.into(),
            ])
        })
    }

    /// Starts `binary --config <dir>/server.toml serve`, the configuration being
    /// `config(listen, dir)`; otherwise as [`Self::start`].
    pub fn start_configured(binary: &Path, log: &Path, config: impl FnOnce(&str, &Path) -> String) -> Result<Self> {
        Self::launch(binary, log, |listen, dir| {
            let file = dir.join("server.toml");
            std::fs::write(&file, config(listen, dir)).with_context(|| format!("cannot write {}", file.display()))?;
            Ok(vec!["--config".into(), file.into(), "serve".into()])
        })
    }

    /// Starts `binary` with the arguments `args(listen, dir)` on a free port
    /// and a new temporary directory; waits until it is ready.
    fn launch(
        binary: &Path,
        log: &Path,
        args: impl FnOnce(&str, &Path) -> Result<Vec<std::ffi::OsString>>,
    ) -> Result<Self> {
        let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .context("cannot find a free port on 127.0.0.1")?
            .port();
        let listen = format!("127.0.0.1:{port}");
        let mut command = Command::new(binary);
        command.args(args(&listen, dir.path())?);
        let mut server = Self {
            url: format!("http://{listen}"),
            child: spawn_logged(command, log)?,
            dir,
        };
        wait_ready(&listen, &mut server.child, log)?;
        Ok(server)
    }

    /// The server's data directory (its SQLite database).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The server's process id (for its CPU time and memory in /proc).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for LiveServer {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Starts `command` with stdin closed and its output going to `log`.
pub fn spawn_logged(mut command: Command, log: &Path) -> Result<Child> {
    let out = File::create(log).with_context(|| format!("cannot create {}", log.display()))?;
    let err = out.try_clone().context("cannot share the log file")?;
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    without_cargo_run_env(&mut command);
    announce(&command);
    command
        .spawn()
        .with_context(|| format!("could not start `{}`", display(&command)))
}

/// Waits (at most 60 s) until the server `child` listening on `listen` answers
/// `/readyz` with 200; fails early when it exits. `log` is named in the errors.
pub fn wait_ready(listen: &str, child: &mut Child, log: &Path) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !readyz_ok(listen) {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the server exited ({status}) before it was ready: see {}",
                log.display()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "the server was not ready on {listen} within 60 s: see {}",
                log.display()
            );
        }
        std::thread::park_timeout(Duration::from_millis(100));
    }
    Ok(())
}

/// Stops `child` if it still runs: SIGTERM (the server shuts down cleanly on
/// it), then SIGKILL after 5 s. Returns whether it had to be killed.
pub fn stop(child: &mut Child) -> bool {
    let mut killed = false;
    if matches!(child.try_wait(), Ok(None)) {
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::park_timeout(Duration::from_millis(50));
        }
        if matches!(child.try_wait(), Ok(None)) {
            killed = true;
            let _ = child.kill();
        }
    }
    let _ = child.wait();
    killed
}

/// One plain HTTP/1.0 request: is the status line 200?
fn readyz_ok(listen: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(listen) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if stream
        .write_all(format!("GET /readyz HTTP/1.0\r\nHost: {listen}\r\n\r\n").as_bytes())
        .is_err()
    {
        return false;
    }
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).is_ok() && head.ends_with(b"200")
}
