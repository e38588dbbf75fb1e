//! `cargo xtask demo`: the whole story on one machine. It builds the three
//! programs, starts `outband-server demo` (SQLite, in `target/demo/server`),
//! enrolls a headless authenticator (`outband-device`, in `target/demo/device`)
//! for the demo user alice with an invitation code, lets it approve every
//! request (`watch --auto approve`), and runs the POS terminal: its screens on
//! a terminal, or one `outband-pos pay` when there is none (scripts, CI).
//!
//! With `--desktop` the desktop authenticator is started instead of the
//! headless one, and the enrollment link is printed for you to paste.
//!
//! Every run starts from empty data directories; logs are kept in
//! `target/demo/*.log`.

use std::io::IsTerminal;
use std::path::Path;
use std::process::{Child, Command, ExitCode};

use anyhow::{bail, Context, Result};

use crate::{announce, cargo, display, live, target_dir, without_cargo_run_env};

/// The demo user who owns the authenticator.
const DEMO_USER: &str = "alice";
/// The demo PIN of the headless authenticator (a demo, not a secret).
const DEMO_PIN: &str = "4711";

#[derive(clap::Args)]
pub struct DemoOpts {
    /// Address the demo server listens on (the POS terminal's default is 127.0.0.1:8080)
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// Start the desktop authenticator (Tauri) instead of the headless `outband-device`
    #[arg(long)]
    pub desktop: bool,
    /// Take one payment with `outband-pos pay` and exit, even on a terminal
    #[arg(long)]
    pub no_tui: bool,
}

/// Child processes that are stopped when the demo ends, however it ends.
struct Children(Vec<(String, Child)>);

impl Drop for Children {
    fn drop(&mut self) {
        for (name, child) in self.0.iter_mut().rev() {
            if live::stop(child) {
                eprintln!("xtask: {name} did not stop on SIGTERM: killed it");
            }
        }
    }
}

pub fn run(root: &Path, opts: &DemoOpts) -> Result<ExitCode> {
    let mut build = cargo();
    build.args([
        "build",
        "-p",
        "outband-server",
        "-p",
        "outband-authenticator-core",
        "-p",
        "outband-terminal",
    ]);
    crate::run(&mut build)?;
    let bin = target_dir(root).join("debug");
    let demo = target_dir(root).join("demo");
    if demo.exists() {
        std::fs::remove_dir_all(&demo).with_context(|| format!("cannot clear {}", demo.display()))?;
    }
    std::fs::create_dir_all(&demo).with_context(|| format!("cannot create {}", demo.display()))?;
    let issuer = format!("http://{}", opts.listen);
    // Ctrl-C at the terminal reaches every process of the demo; xtask itself must
    // live on to stop the ones that ignore it (the flag is only there to catch it).
    let interrupted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, interrupted).context("cannot handle Ctrl-C")?;
    let mut children = Children(Vec::new());

    let server_dir = demo.join("server");
    let mut server = Command::new(bin.join("outband-server"));
    server
        .args(["demo", "--listen", &opts.listen, "--dir"])
        .arg(&server_dir);
    let server_log = demo.join("server.log");
    let mut server = live::spawn_logged(server, &server_log)?;
    let ready = live::wait_ready(&opts.listen, &mut server, &server_log);
    children.0.push(("outband-server".into(), server));
    ready?;
    println!("==> the server is up on {issuer} (log: {})", server_log.display());

    let link = invite(&bin, &server_dir)?;
    if opts.desktop {
        start_desktop(&bin, &demo, &link, &mut children)?;
    } else {
        start_device(&bin, &demo, &link, &mut children)?;
    }

    let mut pos = Command::new(bin.join("outband-pos"));
    pos.arg("--issuer").arg(&issuer);
    let interactive = !opts.no_tui && std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
    if interactive {
        println!("==> starting the POS terminal: type an amount, customer {DEMO_USER}@example.com, Enter");
    } else {
        pos.args(["pay", "--amount", "12.50", "--currency", "EUR", "--customer"])
            .arg(format!("{DEMO_USER}@example.com"));
    }
    without_cargo_run_env(&mut pos);
    announce(&pos);
    let status = pos
        .status()
        .with_context(|| format!("could not start `{}`", display(&pos)))?;
    drop(children);
    println!("==> demo over; logs are in {}", demo.display());
    Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)))
}

/// `outband-server users invite alice --json` against the demo's configuration; returns the link.
fn invite(bin: &Path, server_dir: &Path) -> Result<String> {
    let mut command = Command::new(bin.join("outband-server"));
    command
        .arg("--config")
        .arg(server_dir.join("outband.toml"))
        .args(["--json", "users", "invite", DEMO_USER]);
    without_cargo_run_env(&mut command);
    announce(&command);
    let output = command
        .output()
        .with_context(|| format!("could not run `{}`", display(&command)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed: {}",
            display(&command),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let answer: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`users invite --json` did not print JSON")?;
    answer
        .get("link")
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .context("`users invite --json` printed no link")
}

/// Enrolls `outband-device` with the invitation and starts `watch --auto approve`.
fn start_device(bin: &Path, demo: &Path, link: &str, children: &mut Children) -> Result<()> {
    let device_dir = demo.join("device");
    let pin_file = demo.join("device-pin");
    std::fs::write(&pin_file, DEMO_PIN).with_context(|| format!("cannot write {}", pin_file.display()))?;
    let device = |args: &[&str]| {
        let mut command = Command::new(bin.join("outband-device"));
        command
            .arg("--dir")
            .arg(&device_dir)
            .arg("--pin-file")
            .arg(&pin_file)
            // A throwaway device: its key stays in the demo directory, out of the user's keyring.
            .args(["--key-store", "file"])
            .args(args);
        command
    };
    let mut enroll = device(&["enroll", link, "--name", "Demo authenticator"]);
    without_cargo_run_env(&mut enroll);
    announce(&enroll);
    let status = enroll.status().context("could not run outband-device enroll")?;
    if !status.success() {
        bail!("outband-device could not enroll ({status})");
    }
    let log = demo.join("device.log");
    let watch = device(&["watch", "--auto", "approve"]);
    children
        .0
        .push(("outband-device".into(), live::spawn_logged(watch, &log)?));
    println!(
        "==> the authenticator for {DEMO_USER} approves every request (follow it: tail -f {})",
        log.display()
    );
    Ok(())
}

/// Starts the desktop authenticator on its own data directory and prints the link to paste.
fn start_desktop(bin: &Path, demo: &Path, link: &str, children: &mut Children) -> Result<()> {
    crate::run(cargo().args(["build", "-p", "outband-authenticator"]))?;
    let mut app = Command::new(bin.join("outband-authenticator"));
    app.env("OUTBAND_AUTHENTICATOR_DIR", demo.join("desktop"));
    children.0.push((
        "outband-authenticator".into(),
        live::spawn_logged(app, &demo.join("desktop.log"))?,
    ));
    println!("==> in the desktop authenticator, choose Enroll and paste this link, then pick a PIN:");
    println!();
    println!("    {link}");
    println!();
    Ok(())
}
