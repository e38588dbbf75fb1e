//! `cargo xtask schemathesis`: property-based tests of the live API from its own
//! description. Installs schemathesis (PyPI) into `target/schemathesis/venv`
//! when missing, starts `outband-server demo` on a free port, and runs
//! `schemathesis run <server>/openapi.json` with a bounded budget. Fails on any
//! 5xx or response that does not match the document, and after at most
//! `--timeout` seconds.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::live::LiveServer;
use crate::{announce, display, target_dir};

/// The schemathesis versions the options below are written for.
const REQUIREMENT: &str = "schemathesis>=4.32,<5";

#[derive(clap::Args)]
pub struct SchemathesisOpts {
    /// Test cases per operation and phase
    #[arg(long, default_value_t = 20)]
    pub max_examples: u32,
    /// Stop (and fail) after this many seconds
    #[arg(long, default_value_t = 170)]
    pub timeout: u64,
    /// Use the server binary `test` already built (see `crate::server_binary`)
    #[arg(skip)]
    pub prebuilt: bool,
}

impl Default for SchemathesisOpts {
    fn default() -> Self {
        Self {
            max_examples: 20,
            timeout: 170,
            prebuilt: false,
        }
    }
}

pub fn run(root: &Path, opts: &SchemathesisOpts) -> Result<()> {
    let work = target_dir(root).join("schemathesis");
    std::fs::create_dir_all(&work).with_context(|| format!("cannot create {}", work.display()))?;
    let schemathesis = install(&work)?;
    let binary = crate::server_binary(root, opts.prebuilt)?;
    let server = LiveServer::start(&binary, &work.join("server.log"))?;

    let mut command = Command::new(schemathesis);
    command
        .current_dir(&work)
        .arg("run")
        .arg(format!("{}/openapi.json", server.url))
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        // The demo client's Basic credentials get past client authentication on
        // the OAuth endpoints; the others just refuse them.
        .args(["--auth", "demo-pos:demo-pos-secret"])
        .args(["--max-examples", &opts.max_examples.to_string()])
        .args(["--request-timeout", "10", "--workers", "2", "--seed", "1"])
        .args(["--generation-database", "none", "--no-color"]);
    announce(&command);
    let mut child = command
        .spawn()
        .with_context(|| format!("could not start `{}`", display(&command)))?;
    let deadline = Instant::now() + Duration::from_secs(opts.timeout);
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!(
                "schemathesis did not finish within {} s (server log: {})",
                opts.timeout,
                work.join("server.log").display()
            );
        }
        std::thread::park_timeout(Duration::from_millis(200));
    };
    drop(server);
    if !status.success() {
        bail!(
            "schemathesis found problems ({status}); server log: {}",
            work.join("server.log").display()
        );
    }
    Ok(())
}

/// The schemathesis executable in `work/venv`, installed first if missing.
fn install(work: &Path) -> Result<std::path::PathBuf> {
    let venv = work.join("venv");
    let bin = venv.join("bin").join("schemathesis");
    if bin.is_file() {
        return Ok(bin);
    }
    crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    crate::run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .arg(REQUIREMENT),
    )?;
    if !bin.is_file() {
        bail!("pip installed schemathesis, but {} is missing", bin.display());
    }
    Ok(bin)
}
