//! # outband-e2e
//!
//! The whole system as a user runs it: the real `outband-server`,
//! `outband-device` and `outband-pos` binaries as separate processes talking
//! HTTP on 127.0.0.1. Each test gets its own server on a free port, with its own
//! data directory and a fresh database on the backend `OUTBAND_TEST_BACKEND`
//! names (a SQLite file, or a new PostgreSQL database on `DATABASE_URL`).
//!
//! - [`Server`]: one `outband-server serve` process; [`Cluster`]: several
//!   sharing one PostgreSQL database and one key file behind a path-routing
//!   [`Proxy`] (the issuer is the proxy's address, as behind a load balancer).
//! - [`Device`]: an enrolled `outband-device` and its `watch`.
//! - [`DbProxy`]: a TCP proxy in front of PostgreSQL that the test cuts and
//!   restores, for database outages.
//! - [`Receiver`]: a ping/push notification endpoint that counts what it gets
//!   and answers as the test says (success, 500s, a redirect, or not yet).
//! - [`Till`]: a CIBA client made of plain HTTP calls (with [`DpopKey`]
//!   proofs), for what `outband-pos` does not show: its tokens.
//!
//! The binaries are built once per test process (`cargo build --bins` of the
//! three packages), unless `E2E_BIN_DIR` points at built ones (as
//! `cargo xtask test` does, with those of its own test build). Every child
//! process is killed when its guard drops, so a failing test leaves nothing
//! running; its output goes to a log file in the test's directory, which
//! failures print.
//!
//! This is test code: it panics instead of returning errors.

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::panic, clippy::indexing_slicing)]

mod cluster;
mod db_proxy;
mod device;
mod proxy;
mod receiver;
mod server;
mod till;

use std::fs::File;
use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

pub use cluster::Cluster;
pub use db_proxy::DbProxy;
pub use device::{pay_json, Device};
pub use proxy::{Proxy, Route, Served};
pub use receiver::{Answer, Hit, Receiver};
pub use server::ciba_client;
pub use server::Server;
pub use till::{jwt_claims, DpopKey, Present, Till};

/// The PIN every test authenticator is enrolled with.
pub const PIN: &str = "482916";
/// The demo user whose device approves or denies.
pub const CUSTOMER: &str = "alice";
/// Her e-mail address: the POS's `login_hint`.
pub const CUSTOMER_EMAIL: &str = "alice@example.com";
/// The secret of every CIBA client in [`Server::start`]'s configuration.
pub const CLIENT_SECRET: &str = "e2e-secret-0123456789";
/// How long anything may take to become ready before the test fails.
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Where the three binaries are.
pub struct Binaries {
    pub server: PathBuf,
    pub device: PathBuf,
    pub pos: PathBuf,
}

/// The binaries in `dir`, when all three are there.
fn prebuilt(dir: &Path) -> Option<Binaries> {
    let bin = |name: &str| Some(dir.join(name)).filter(|path| path.is_file());
    Some(Binaries {
        server: bin("outband-server")?,
        device: bin("outband-device")?,
        pos: bin("outband-pos")?,
    })
}

/// Builds the binaries once per test process and returns their paths. When
/// `E2E_BIN_DIR` names a directory holding all three (`cargo xtask
/// test` points it at the ones its test build made), those are used as they are.
pub fn binaries() -> &'static Binaries {
    static BINARIES: OnceLock<Binaries> = OnceLock::new();
    BINARIES.get_or_init(|| {
        if let Some(found) = std::env::var_os("E2E_BIN_DIR").and_then(|dir| prebuilt(Path::new(&dir))) {
            return found;
        }
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(&workspace)
            .args(["build", "--quiet", "--bins"])
            .args([
                "-p",
                "outband-server",
                "-p",
                "outband-terminal",
                "-p",
                "outband-authenticator-core",
            ])
            .status()
            .expect("running cargo build");
        assert!(status.success(), "building the binaries failed");
        // The test binary is target/<profile>/deps/<name>; the binaries are in target/<profile>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>")
            .to_path_buf();
        let bin = |name: &str| {
            let path = dir.join(name);
            assert!(path.exists(), "{} was not built", path.display());
            path
        };
        Binaries {
            server: bin("outband-server"),
            device: bin("outband-device"),
            pos: bin("outband-pos"),
        }
    })
}

/// Whether the tests run on PostgreSQL (`OUTBAND_TEST_BACKEND=postgres`).
pub fn on_postgres() -> bool {
    std::env::var("OUTBAND_TEST_BACKEND").as_deref() == Ok("postgres")
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("binding a free port")
        .port()
}

/// Checks `done` every 100 ms until it holds; panics with `what` and
/// `context()` after `within`. The bound is a deadline, not an assertion on
/// speed: it is generous so that only a hang fails.
pub async fn wait_until<F, Fut>(what: &str, within: Duration, mut done: F, context: impl Fn() -> String)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if done().await {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {within:?}\n{}",
            context()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A child process killed (SIGKILL) when dropped.
pub struct Running {
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Starts `command` with stdout and stderr appended to `log`.
    pub fn spawn(mut command: Command, log: &Path) -> Self {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .expect("opening a log file");
        let err = out.try_clone().expect("cloning a log file handle");
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|err| panic!("starting {command:?}: {err}"));
        Self {
            child,
            log: log.to_owned(),
        }
    }

    /// What the process wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether it has exited (and how).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().expect("polling a child process")
    }

    /// `kill -9`, and wait for it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("temporary paths are UTF-8")
}
