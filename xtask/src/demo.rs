//! `cargo xtask demo`: build the server and run `outband-server demo` in the foreground.
//! (To grow into the server, authenticator and POS terminal side by side in tmux.)

use std::path::Path;
use std::process::{Command, ExitCode};
use std::thread;

use anyhow::{Context, Result};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::exfiltrator::WithOrigin;
use signal_hook::iterator::SignalsInfo;
use signal_hook::low_level::siginfo::Cause;

use crate::{announce, cargo, display, target_dir, without_cargo_run_env};

#[derive(clap::Args)]
pub struct DemoOpts {
    /// Extra arguments for `outband-server demo`
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

pub fn run(root: &Path, opts: &DemoOpts) -> Result<ExitCode> {
    crate::run(cargo().args(["build", "-p", "outband-server", "--bin", "outband-server"]))?;
    let mut server = Command::new(target_dir(root).join("debug").join("outband-server"));
    server.arg("demo").args(&opts.args);
    without_cargo_run_env(&mut server);
    announce(&server);
    let mut child = server
        .spawn()
        .with_context(|| format!("could not start `{}`", display(&server)))?;

    // Ctrl-C at the terminal reaches the server directly (same process group): we only must
    // not die first. A SIGINT/SIGTERM sent to xtask by another process is passed on.
    let mut signals = SignalsInfo::<WithOrigin>::new([SIGINT, SIGTERM]).context("cannot handle signals")?;
    let signals_handle = signals.handle();
    let pid = child.id().to_string();
    let forwarder = thread::spawn(move || {
        for origin in &mut signals {
            if matches!(origin.cause, Cause::Sent(_)) {
                let name = if origin.signal == SIGTERM { "TERM" } else { "INT" };
                if let Err(err) = Command::new("kill").args(["-s", name, &pid]).status() {
                    eprintln!("xtask: warning: could not pass SIG{name} on to the demo: {err}");
                }
            }
        }
    });

    let status = child.wait().context("waiting for outband-server")?;
    signals_handle.close();
    if forwarder.join().is_err() {
        eprintln!("xtask: warning: the signal forwarding thread panicked");
    }
    Ok(exit_code(status))
}

/// The server's exit code, or 128 + signal when a signal ended it (as a shell reports it).
fn exit_code(status: std::process::ExitStatus) -> ExitCode {
    use std::os::unix::process::ExitStatusExt;
    let code = status
        .code()
        .or_else(|| status.signal().map(|signal| 128 + signal))
        .unwrap_or(1);
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
