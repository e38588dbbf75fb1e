//! `cargo xtask schemathesis`: property-based tests of the live API from its own
//! description. Installs schemathesis (PyPI) into `target/schemathesis/venv`
//! when missing, starts `outband-server demo` on a free port, and runs
//! `schemathesis run <server>/openapi.json` with a bounded budget. Fails on any
//! 5xx or response that does not match the document, and after at most
//! `--timeout` seconds. A run that fails only inside schemathesis itself (its
//! "Runtime Error", no check failing) is repeated once; its output is kept in
//! `target/schemathesis/schemathesis.log`.
//!
//! `xtask/schemathesis/hooks.py` gives the protected operations real
//! credentials (client, admin, a user's access token, an enrolled device with
//! DPoP proofs), so they are fuzzed past their authentication check.

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::live::LiveServer;
use crate::{announce, display, target_dir};

/// What `install` puts in the virtual environment: the schemathesis versions the
/// options below are written for, and the JOSE library the hooks sign DPoP proofs with.
const REQUIREMENTS: [&str; 2] = ["schemathesis>=4.32,<5", "pyjwt[crypto]>=2.8,<3"];

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

    // Should schemathesis still fail in its own code ("Runtime Error" in the ERRORS
    // section, no check failed), the run is repeated once. A check that fails is
    // never repeated.
    for attempt in 1..=2 {
        let hook_env = hook_environment(root, &binary, &server)?;
        let (passed, output) = run_once(&schemathesis, &work, &server, hook_env, opts)?;
        if passed {
            return Ok(());
        }
        if attempt == 1 && only_tool_errors(&output) {
            eprintln!("==> schemathesis failed in its own code, with no check failing: running it once more");
            continue;
        }
        break;
    }
    drop(server);
    bail!(
        "schemathesis found problems; server log: {}",
        work.join("server.log").display()
    )
}

/// One `schemathesis run`; whether it passed, and what it printed (also copied to stdout).
fn run_once(
    schemathesis: &Path,
    work: &Path,
    server: &LiveServer,
    hook_env: Vec<(&str, OsString)>,
    opts: &SchemathesisOpts,
) -> Result<(bool, String)> {
    let log = work.join("schemathesis.log");
    let out = std::fs::File::create(&log).with_context(|| format!("cannot create {}", log.display()))?;
    let mut command = Command::new(schemathesis);
    command
        .current_dir(work)
        .envs(hook_env)
        .arg("run")
        .arg(format!("{}/openapi.json", server.url))
        .args(["--checks", "not_a_server_error,response_schema_conformance"])
        .args(["--max-examples", &opts.max_examples.to_string()])
        // One worker: with two, Hypothesis parses sources with `ast.parse` on two
        // threads at once, which CPython 3.11 does not survive ("SystemError: AST
        // constructor recursion depth mismatch", reported as a Runtime Error).
        .args(["--request-timeout", "10", "--workers", "1", "--seed", "1"])
        .args(["--generation-database", "none", "--no-color"])
        .stdout(out.try_clone().context("cannot share the log file")?)
        .stderr(out);
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
            print!("{}", std::fs::read_to_string(&log).unwrap_or_default());
            bail!(
                "schemathesis did not finish within {} s (server log: {})",
                opts.timeout,
                work.join("server.log").display()
            );
        }
        std::thread::park_timeout(Duration::from_millis(200));
    };
    let output = std::fs::read_to_string(&log).with_context(|| format!("cannot read {}", log.display()))?;
    print!("{output}");
    Ok((status.success(), output))
}

/// The variables `xtask/schemathesis/hooks.py` reads: where the hooks are, the
/// server, the demo client's credentials, and the files holding the admin token
/// and a fresh invitation for `alice` (each run enrolls its own device). The
/// secrets travel in files, as the command line with its variables is printed.
fn hook_environment(root: &Path, binary: &Path, server: &LiveServer) -> Result<Vec<(&'static str, OsString)>> {
    let invite = Command::new(binary)
        .arg("--config")
        .arg(server.dir().join("outband.toml"))
        .args(["users", "invite", "alice", "--json"])
        .output()
        .context("cannot run `outband-server users invite alice`")?;
    if !invite.status.success() {
        bail!(
            "`outband-server users invite alice` failed: {}",
            String::from_utf8_lossy(&invite.stderr)
        );
    }
    let invitation = server.dir().join("invitation.json");
    std::fs::write(&invitation, &invite.stdout).with_context(|| format!("cannot write {}", invitation.display()))?;
    Ok(vec![
        ("PYTHONPATH", root.join("xtask").join("schemathesis").into()),
        ("SCHEMATHESIS_HOOKS", "hooks".into()),
        ("FUZZ_SERVER_URL", server.url.clone().into()),
        ("FUZZ_CLIENT_ID", "demo-pos".into()),
        ("FUZZ_CLIENT_SECRET", "demo-pos-secret".into()),
        ("FUZZ_ADMIN_TOKEN_FILE", server.dir().join("admin-token").into()),
        ("FUZZ_INVITATION_FILE", invitation.into()),
    ])
}

/// Whether a failed run's report holds only errors of schemathesis itself: an
/// ERRORS section whose entries are all "Runtime Error", and no FAILURES section.
fn only_tool_errors(output: &str) -> bool {
    let has_failures = output
        .lines()
        .any(|line| line.contains(" FAILURES ") && line.starts_with('='));
    let errors = output.split_once(" ERRORS ").map(|(_, rest)| rest);
    match errors {
        Some(errors) if !has_failures => {
            let kinds: Vec<&str> = errors
                .lines()
                .zip(errors.lines().skip(1))
                .filter(|(title, _)| title.starts_with('_') && title.ends_with('_'))
                .map(|(_, kind)| kind.trim())
                .collect();
            !kinds.is_empty() && kinds.iter().all(|kind| *kind == "Runtime Error")
        }
        _ => false,
    }
}

/// The schemathesis executable in `work/venv`, installed first if missing.
fn install(work: &Path) -> Result<std::path::PathBuf> {
    let venv = work.join("venv");
    let bin = venv.join("bin").join("schemathesis");
    // What was installed last, so a venv from before a change of REQUIREMENTS is topped up.
    let stamp = venv.join("outband-requirements");
    let wanted = REQUIREMENTS.join("\n");
    if bin.is_file() && std::fs::read_to_string(&stamp).is_ok_and(|installed| installed == wanted) {
        return Ok(bin);
    }
    if !venv.join("bin").join("pip").is_file() {
        crate::run(Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    crate::run(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check"])
            .args(REQUIREMENTS),
    )?;
    if !bin.is_file() {
        bail!("pip installed schemathesis, but {} is missing", bin.display());
    }
    std::fs::write(&stamp, wanted).with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(bin)
}

#[cfg(test)]
mod tests {
    use super::only_tool_errors;

    #[test]
    fn only_runtime_errors_without_failures_are_repeated() {
        let tool = "=== ERRORS ===\n____ POST /device/v1/enroll ____\nRuntime Error\nInconsistent results\n";
        assert!(only_tool_errors(tool));
        let failed = "=== FAILURES ===\n____ POST /token ____\n1. Server error\n=== ERRORS ===\n____ POST /x ____\nRuntime Error\n";
        assert!(!only_tool_errors(failed));
        let other = "=== ERRORS ===\n____ GET /x ____\nNetwork Error\n";
        assert!(!only_tool_errors(other));
        assert!(!only_tool_errors("exit 1 without a report"));
    }
}
