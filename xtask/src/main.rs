//! `cargo xtask <command>`: the Outband workspace's developer tooling.
//!
//! Every external command is announced on stderr as `==> ...` before it runs, so a log
//! shows exactly what happened; stdout is kept for results (`pg-url`, the test summary).

mod bench;
mod demo;
mod interop;
mod live;
mod peer;
mod postgres;
mod schemathesis;
mod setup;
mod soak;
mod test;

use std::env;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Outband developer tasks", version)]
struct Cli {
    #[command(subcommand)]
    command: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install missing Debian packages and rustup components (fast no-op when nothing is missing)
    Setup(setup::SetupOpts),
    /// What CI runs: setup, fmt, clippy, doc tests, then the test suites against SQLite and PostgreSQL
    Test(test::TestOpts),
    /// Build outband-server and run its demo in the foreground
    Demo(demo::DemoOpts),
    /// Load a release-built demo server; results in target/bench/results.json, targets in docs/benchmarks.md
    Bench(bench::BenchOpts),
    /// Many complete CIBA flows against a release-built demo server, sampling its memory (target/bench/soak.json)
    Soak(soak::SoakOpts),
    /// Outband side by side with the peer harness (oidc-provider, ../shared/bench); see docs/PERFORMANCE.md
    PeerBench(peer::PeerOpts),
    /// Fuzz a live demo server from its /openapi.json with schemathesis (PyPI, installed under target/)
    Schemathesis(schemathesis::SchemathesisOpts),
    /// Run interop/: openid-client and Chromium through the browser flows of a live server (part of `test`)
    Interop,
    /// Print the URL of a reachable PostgreSQL (DATABASE_URL or the default); fails if none answers
    PgUrl,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli.command) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("xtask: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn dispatch(task: Task) -> Result<ExitCode> {
    let root = workspace_root()?;
    env::set_current_dir(&root).with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    match task {
        Task::Setup(opts) => setup::run(&root, &opts, true).map(|()| ExitCode::SUCCESS),
        Task::Test(opts) => test::run(&root, &opts).map(|()| ExitCode::SUCCESS),
        Task::Demo(opts) => demo::run(&root, &opts),
        Task::Bench(opts) => bench::run(&root, &opts).map(|()| ExitCode::SUCCESS),
        Task::Soak(opts) => soak::run(&root, &opts).map(|()| ExitCode::SUCCESS),
        Task::PeerBench(opts) => peer::run_peer(&root, &opts).map(|()| ExitCode::SUCCESS),
        Task::Schemathesis(opts) => schemathesis::run(&root, &opts).map(|()| ExitCode::SUCCESS),
        Task::Interop => interop::run(&root, false).map(|()| ExitCode::SUCCESS),
        Task::PgUrl => pg_url(),
    }
}

/// `pg-url`: only reports; starting a throwaway server is `test`'s job.
fn pg_url() -> Result<ExitCode> {
    let url = postgres::configured_url();
    if postgres::is_reachable(&url)? {
        println!("{url}");
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("xtask: no PostgreSQL answers at {url} (`cargo xtask test` would start a throwaway one)");
        Ok(ExitCode::FAILURE)
    }
}

/// The workspace root: the parent of this crate's directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir
        .parent()
        .map(Path::to_path_buf)
        .context("xtask's manifest directory has no parent")
}

/// The debug `outband-server` for the steps that run it live: built with
/// `cargo build -p outband-server --bins`, unless `prebuilt` (inside `test`,
/// whose test build made it) and it is there.
pub fn server_binary(root: &Path, prebuilt: bool) -> Result<PathBuf> {
    let binary = target_dir(root).join("debug").join("outband-server");
    if !(prebuilt && binary.is_file()) {
        run(cargo().args(["build", "-p", "outband-server", "--bins"]))?;
    }
    Ok(binary)
}

/// Cargo's target directory (honours CARGO_TARGET_DIR).
pub fn target_dir(root: &Path) -> PathBuf {
    match env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => root.join(dir),
        _ => root.join("target"),
    }
}

/// A `cargo` command: the same cargo that runs xtask, without colours under CI.
pub fn cargo() -> Command {
    let mut cmd = Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    without_cargo_run_env(&mut cmd);
    if env::var_os("CI").is_some() {
        cmd.env("CARGO_TERM_COLOR", "never");
    }
    cmd
}

/// Remove the variables `cargo run` set for xtask itself (CARGO_PKG_NAME=xtask, ...).
/// Build scripts watch some of them (ring: `rerun-if-env-changed=CARGO_PKG_NAME`), so left in,
/// every build started from xtask would rebuild what a build from the shell built, and back.
pub fn without_cargo_run_env(cmd: &mut Command) {
    for (key, _) in env::vars_os() {
        let key_str = key.to_string_lossy();
        let from_cargo_run = key_str.starts_with("CARGO_PKG_")
            || matches!(
                key_str.as_ref(),
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            );
        if from_cargo_run {
            cmd.env_remove(&key);
        }
    }
}

/// Announce `cmd`, run it with inherited stdio, and fail unless it exits successfully.
pub fn run(cmd: &mut Command) -> Result<()> {
    announce(cmd);
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if status.success() {
        Ok(())
    } else {
        bail!("`{}` failed ({status})", display(cmd))
    }
}

/// Announce `cmd`, run it and return its stdout; fails unless it exits successfully.
pub fn capture(cmd: &mut Command) -> Result<String> {
    announce(cmd);
    let output = cmd
        .output()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if output.status.success() {
        String::from_utf8(output.stdout).with_context(|| format!("`{}` printed non-UTF-8 output", display(cmd)))
    } else {
        let stderr = String::from_utf8_lossy(&output.stderr);
        bail!("`{}` failed ({}): {}", display(cmd), output.status, stderr.trim())
    }
}

/// Print the step line for `cmd`.
pub fn announce(cmd: &Command) {
    eprintln!("==> {}", display(cmd));
}

/// `cmd` as a shell-like line, with the environment variables it sets.
pub fn display(cmd: &Command) -> String {
    let envs = cmd
        .get_envs()
        .filter_map(|(key, value)| value.map(|value| format!("{}={}", key.to_string_lossy(), quote(value))));
    // The cargo running xtask is shown as plain `cargo`.
    let program = match env::var_os("CARGO") {
        Some(cargo) if cargo == cmd.get_program() => "cargo".to_owned(),
        _ => quote(cmd.get_program()),
    };
    let words = std::iter::once(program).chain(cmd.get_args().map(quote));
    envs.chain(words).collect::<Vec<_>>().join(" ")
}

/// Shell-quote `word` if needed; a URL's password is shown as `***`.
fn quote(word: &OsStr) -> String {
    let word = postgres::redact(&word.to_string_lossy());
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+%".contains(c));
    if plain {
        word
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Whether an executable named `name` is on PATH.
pub fn on_path(name: &str) -> bool {
    env::var_os("PATH").is_some_and(|path| env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

/// Whether this process runs as root (`id -u` prints 0).
pub fn is_root() -> Result<bool> {
    let output = Command::new("id").arg("-u").output().context("could not run `id -u`")?;
    Ok(String::from_utf8_lossy(&output.stdout).trim() == "0")
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_valid() {
        super::Cli::command().debug_assert();
    }
}
