//! `cargo xtask test`: what CI runs. setup, fmt, clippy, doc tests, then the test suites
//! built once and run twice: against SQLite and against PostgreSQL, then the interop
//! suite (`cargo xtask interop`: openid-client and Chromium against a live server) and
//! schemathesis against a live demo server (`cargo xtask schemathesis`).

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use signal_hook::consts::SIGINT;

use crate::{announce, cargo, display, interop, postgres, schemathesis, setup, target_dir};

#[derive(clap::Args)]
pub struct TestOpts {
    /// Run the test suites against SQLite only (needs no PostgreSQL)
    #[arg(long, conflicts_with = "pg_only")]
    pub sqlite_only: bool,
    /// Run the test suites against PostgreSQL only
    #[arg(long)]
    pub pg_only: bool,
    #[command(flatten)]
    pub setup: setup::SetupOpts,
}

pub fn run(root: &Path, opts: &TestOpts) -> Result<()> {
    // Ctrl-C reaches the running cargo too (same process group): we outlive it, so the
    // throwaway PostgreSQL is stopped and the summary printed.
    let interrupted = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(SIGINT, Arc::clone(&interrupted)).context("cannot handle SIGINT")?;

    setup::run(root, &opts.setup, !opts.sqlite_only)?;
    let mut report = Report::new(interrupted);
    let mut fmt = cargo();
    fmt.args(["fmt", "--all", "--check"]);
    if std::env::var_os("CI").is_some() {
        // rustfmt colours its diffs even into a pipe.
        fmt.args(["--", "--color", "never"]);
    }
    report.record("fmt", crate::run(&mut fmt))?;
    report.record(
        "clippy",
        crate::run(cargo().args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"])),
    )?;
    // Before the suites, so that a test runner's closing lines are the suites' own.
    report.record("doc tests", crate::run(cargo().args(["test", "--workspace", "--doc"])))?;

    let database = (!opts.sqlite_only).then(|| postgres::ensure_reachable(root));
    let runner = Runner::detect(root);
    let built = runner.build();
    let built_ok = built.is_ok();
    report.record("test build", built)?;
    // The test build made the binaries too (integration tests need them): the
    // e2e tests, interop and schemathesis use those instead of building their
    // own with other feature sets.
    let bin_dir = crate::target_dir(root).join("debug").display().to_string();

    if !opts.pg_only {
        let result = if built_ok {
            runner.run_suite(&[("OUTBAND_TEST_BACKEND", "sqlite"), ("E2E_BIN_DIR", bin_dir.as_str())])
        } else {
            Err(Skipped.into())
        };
        report.record("tests (sqlite)", result)?;
    }
    let interop = if built_ok {
        interop::run(root, true)
    } else {
        Err(Skipped.into())
    };
    report.record("interop", interop)?;
    let fuzzed = if built_ok {
        schemathesis::run(
            root,
            &schemathesis::SchemathesisOpts {
                prebuilt: true,
                ..Default::default()
            },
        )
    } else {
        Err(Skipped.into())
    };
    report.record("schemathesis", fuzzed)?;
    if let Some(database) = &database {
        let result = match database {
            Ok(database) if built_ok => postgres_suite(&runner, &database.url, &bin_dir),
            Ok(_) => Err(Skipped.into()),
            Err(err) => Err(anyhow::anyhow!("no PostgreSQL: {err:#}")),
        };
        report.record("tests (postgres)", result)?;
    }
    drop(database); // stops the throwaway PostgreSQL, if one was started
    report.finish()
}

/// Drop leftover per-test databases, run the suite against `url`, and clean up again.
fn postgres_suite(runner: &Runner, url: &str, bin_dir: &str) -> Result<()> {
    postgres::drop_test_databases(url)?;
    let result = runner.run_suite(&[
        ("OUTBAND_TEST_BACKEND", "postgres"),
        ("DATABASE_URL", url),
        ("E2E_BIN_DIR", bin_dir),
    ]);
    let cleanup = postgres::drop_test_databases(url);
    result.and(cleanup)
}

/// How the test suites are built once and run twice.
enum Runner {
    /// cargo-nextest, reusing one build: the runs do not invoke cargo at all.
    Nextest { binaries: PathBuf, cargo_metadata: PathBuf },
    /// Plain `cargo test` (all targets but doc tests, which run separately).
    CargoTest,
}

impl Runner {
    fn detect(root: &Path) -> Self {
        let mut probe = cargo();
        probe
            .args(["nextest", "--version"])
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        announce(&probe);
        if probe.status().is_ok_and(|status| status.success()) {
            let dir = target_dir(root).join("xtask");
            Self::Nextest {
                binaries: dir.join("binaries-metadata.json"),
                cargo_metadata: dir.join("cargo-metadata.json"),
            }
        } else {
            eprintln!("==> cargo-nextest not available: using cargo test");
            Self::CargoTest
        }
    }

    /// Build the test binaries (and record where they are, for nextest).
    fn build(&self) -> Result<()> {
        match self {
            Self::Nextest {
                binaries,
                cargo_metadata,
            } => {
                if let Some(dir) = binaries.parent() {
                    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
                }
                run_to_file(
                    cargo()
                        .args(["nextest", "list", "--workspace", "--list-type", "binaries-only"])
                        .args(["--message-format", "json"]),
                    binaries,
                )?;
                run_to_file(
                    cargo().args(["metadata", "--format-version", "1", "--all-features"]),
                    cargo_metadata,
                )
            }
            Self::CargoTest => crate::run(cargo().args(["test", "--workspace", "--all-targets", "--no-run"])),
        }
    }

    /// Run the built suites with `envs` added to the test processes' environment; all of
    /// them, so that one run reports every failure.
    fn run_suite(&self, envs: &[(&str, &str)]) -> Result<()> {
        let mut cmd = cargo();
        match self {
            Self::Nextest {
                binaries,
                cargo_metadata,
            } => {
                cmd.args(["nextest", "run", "--no-fail-fast", "--binaries-metadata"])
                    .arg(binaries)
                    .arg("--cargo-metadata")
                    .arg(cargo_metadata);
            }
            Self::CargoTest => {
                cmd.args(["test", "--workspace", "--all-targets", "--no-fail-fast"]);
            }
        }
        crate::run(cmd.envs(envs.iter().copied()))
    }
}

/// Announce and run `cmd` with its stdout written to `path` (stderr stays on the terminal).
fn run_to_file(cmd: &mut Command, path: &Path) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    cmd.stdout(file);
    eprintln!("==> {} > {}", display(cmd), path.display());
    let status = cmd
        .status()
        .with_context(|| format!("could not start `{}`", display(cmd)))?;
    if !status.success() {
        bail!("`{}` failed ({status})", display(cmd));
    }
    Ok(())
}

/// A step not run because an earlier one failed.
#[derive(Debug)]
struct Skipped;

impl std::fmt::Display for Skipped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("skipped: the test build failed")
    }
}

impl std::error::Error for Skipped {}

/// The outcome of each step, printed at the end.
struct Report {
    steps: Vec<(&'static str, Result<()>)>,
    interrupted: Arc<AtomicBool>,
}

impl Report {
    fn new(interrupted: Arc<AtomicBool>) -> Self {
        Self {
            steps: Vec::new(),
            interrupted,
        }
    }

    /// Note how `step` went; stop everything (after the summary) on Ctrl-C.
    fn record(&mut self, step: &'static str, result: Result<()>) -> Result<()> {
        if let Err(err) = &result {
            if !err.is::<Skipped>() {
                eprintln!("xtask: {step} failed: {err:#}");
            }
        }
        self.steps.push((step, result));
        if self.interrupted.load(Ordering::SeqCst) {
            self.print();
            bail!("interrupted");
        }
        Ok(())
    }

    fn print(&self) {
        println!("==> summary");
        for (step, result) in &self.steps {
            let outcome = match result {
                Ok(()) => "ok".to_owned(),
                Err(err) if err.is::<Skipped>() => err.to_string(),
                Err(_) => "FAILED".to_owned(),
            };
            println!("xtask: {step:<17} {outcome}");
        }
    }

    /// Print the summary; an error if any step failed or was skipped.
    fn finish(self) -> Result<()> {
        self.print();
        let failed: Vec<&str> = self
            .steps
            .iter()
            .filter(|(_, result)| result.is_err())
            .map(|(step, _)| *step)
            .collect();
        if failed.is_empty() {
            println!("xtask: all {} steps ok", self.steps.len());
            Ok(())
        } else {
            bail!("not ok: {}", failed.join(", "))
        }
    }
}
