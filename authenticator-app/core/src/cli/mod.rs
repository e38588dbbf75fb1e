//! The `outband-device` command line: the headless authenticator, a thin layer
//! over this crate's API for scripts, demos and CI (`docs/authenticator.md`).
//!
//! - `account.rs`: `enroll`, `accounts`, `remove`.
//! - `requests.rs`: `pending`, `approve`, `deny`, `history`.
//! - `grants.rs`: `grants` (what the user allowed applications), `grants revoke`.
//! - `watch.rs`: `watch`, the live stream (interactive or `--auto approve|deny`).
//! - `pin.rs`: where the PIN comes from (`--pin-file` or the terminal).
//! - `show.rs`: how requests, accounts and history look on screen.
//!
//! Exit codes: 0 ok, 1 error (a sentence on stderr), 2 usage.

mod account;
mod grants;
mod pin;
mod requests;
mod show;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::{Authenticator, Error, KeyStorage, Pin, Session};

/// Outband's headless authentication device: enroll with an authorization
/// server, receive its backchannel (CIBA) requests and approve or deny them.
#[derive(Debug, Parser)]
#[command(name = "outband-device", version)]
pub struct Cli {
    #[command(flatten)]
    global: GlobalArgs,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Args)]
struct GlobalArgs {
    /// Data directory (accounts, sealed keys, history)
    /// [default: $XDG_DATA_HOME/outband-device, else ~/.local/share/outband-device].
    #[arg(long, global = true, env = "OUTBAND_DEVICE_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,
    /// Read the PIN from this file (surrounding whitespace ignored) instead of
    /// asking on the terminal: for unattended use.
    #[arg(long, global = true, env = "OUTBAND_DEVICE_PIN_FILE", value_name = "FILE")]
    pin_file: Option<PathBuf>,
    /// Machine-readable output: JSON (one object per line for `watch`).
    #[arg(long, global = true)]
    json: bool,
    /// Where `enroll` keeps the new key (sealed under the PIN): `auto`, the OS keyring
    /// when one answers and a 0600 file otherwise; `file`, always the file.
    #[arg(
        long,
        global = true,
        env = "OUTBAND_DEVICE_KEY_STORE",
        value_enum,
        default_value = "auto",
        value_name = "WHERE"
    )]
    key_store: KeyStoreArg,
}

/// `--key-store`.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
enum KeyStoreArg {
    /// The OS keyring when one answers, else the file.
    Auto,
    /// Always the 0600 file in the data directory.
    File,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Enroll this device with an activation code, an outband://enroll link or a QR image.
    Enroll(account::EnrollArgs),
    /// List the enrolled accounts.
    Accounts,
    /// Remove an account: revoke the device at the server, then delete it here.
    Remove(account::RemoveArgs),
    /// Follow the live request stream; ask, or decide with --auto.
    Watch(watch::WatchArgs),
    /// List the pending requests.
    Pending(requests::AccountArg),
    /// Approve a pending request.
    Approve(requests::ApproveArgs),
    /// Deny a pending request (--fraud: "not me", reported to the bank).
    Deny(requests::DenyArgs),
    /// Show the decisions made on this device, newest first.
    History(requests::AccountArg),
    /// List what you allowed applications (grants); `grants revoke <id>` takes one back.
    Grants(grants::GrantsArgs),
}

/// What every command gets.
struct Ctx {
    authenticator: Authenticator,
    pin: pin::PinSource,
    json: bool,
}

impl Ctx {
    /// Prints `value` as one line of JSON.
    fn print_json(&self, value: &impl serde::Serialize) -> anyhow::Result<()> {
        println!("{}", serde_json::to_string(value).context("encoding the output")?);
        Ok(())
    }

    /// Unlocks the account `selector` names, or (without one) every account that
    /// is not revoked and opens with this PIN.
    async fn unlock(&self, selector: Option<&str>, pin: &Pin) -> anyhow::Result<Vec<Session>> {
        let accounts = match selector {
            Some(selector) => vec![self.authenticator.find_account(Some(selector))?],
            None => {
                let all = self.authenticator.accounts()?;
                if all.is_empty() {
                    return Err(Error::UnknownAccount("no account is enrolled on this device".into()).into());
                }
                let live: Vec<_> = all.into_iter().filter(|a| !a.revoked).collect();
                if live.is_empty() {
                    return Err(Error::Revoked.into());
                }
                live
            }
        };
        let mut sessions = Vec::new();
        let mut first_error = None;
        for account in accounts {
            let (authenticator, pin, id) = (self.authenticator.clone(), pin.clone(), account.id.clone());
            let unlocked = tokio::task::spawn_blocking(move || authenticator.unlock(&id, &pin))
                .await
                .context("unlocking the key")?;
            match unlocked {
                Ok(session) => sessions.push(session),
                Err(err) if selector.is_none() => {
                    tracing::info!(account = %account.id, error = %err, "skipping an account");
                    first_error.get_or_insert(err);
                }
                Err(err) => return Err(err.into()),
            }
        }
        match first_error {
            Some(err) if sessions.is_empty() => Err(err.into()),
            Some(_) => {
                eprintln!("note: some accounts do not open with this PIN; name one with --account to use it");
                Ok(sessions)
            }
            None => Ok(sessions),
        }
    }
}

/// `$XDG_DATA_HOME/outband-device`, else `~/.local/share/outband-device`.
fn default_dir() -> anyhow::Result<PathBuf> {
    let from_env = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|path| path.is_absolute())
    };
    if let Some(data) = from_env("XDG_DATA_HOME") {
        return Ok(data.join("outband-device"));
    }
    let home = from_env("HOME").context("no data directory: pass --dir DIR (or set OUTBAND_DEVICE_DIR)")?;
    Ok(home.join(".local").join("share").join("outband-device"))
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dir = match cli.global.dir {
        Some(dir) => dir,
        None => default_dir()?,
    };
    let ctx = Ctx {
        authenticator: Authenticator::open(dir)?.with_key_storage(match cli.global.key_store {
            KeyStoreArg::Auto => KeyStorage::OsKeyring,
            KeyStoreArg::File => KeyStorage::File,
        }),
        pin: pin::PinSource::new(cli.global.pin_file),
        json: cli.global.json,
    };
    match cli.command {
        Command::Enroll(args) => account::enroll(&ctx, args).await?,
        Command::Accounts => account::list(&ctx)?,
        Command::Remove(args) => account::remove(&ctx, args).await?,
        Command::Watch(args) => return watch::run(&ctx, args).await,
        Command::Pending(args) => requests::pending(&ctx, args).await?,
        Command::Approve(args) => requests::approve(&ctx, args).await?,
        Command::Deny(args) => requests::deny(&ctx, args).await?,
        Command::History(args) => requests::history(&ctx, args)?,
        Command::Grants(args) => grants::run(&ctx, args).await?,
    }
    Ok(ExitCode::SUCCESS)
}

/// The `outband-device` program: parses the arguments, runs the command, and
/// turns errors into a sentence on stderr and exit code 1 (2 for usage errors).
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return ExitCode::from(u8::try_from(err.exit_code()).unwrap_or(2));
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("outband-device: cannot start: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(cli));
    // A prompt may still be waiting for a line on stdin: do not wait for it.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("outband-device: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_spellings_other_tools_use_parse() {
        let parse = |args: &[&str]| Cli::try_parse_from(args).map(|cli| cli.command);
        let watch = parse(&[
            "outband-device",
            "--dir",
            "d",
            "--pin-file",
            "p",
            "watch",
            "--auto",
            "approve",
        ])
        .unwrap();
        assert!(matches!(watch, Command::Watch(_)));
        let enroll = parse(&[
            "outband-device",
            "enroll",
            "outband://enroll?x",
            "--name",
            "Demo authenticator",
        ])
        .unwrap();
        assert!(matches!(enroll, Command::Enroll(_)));
        assert!(matches!(
            parse(&["outband-device", "deny", "r1", "--fraud"]).unwrap(),
            Command::Deny(_)
        ));
        // Ids are random base64url: one in 64 starts with `-`.
        assert!(matches!(
            parse(&["outband-device", "deny", "-Sfr604EgCLUg", "--fraud"]).unwrap(),
            Command::Deny(_)
        ));
        assert!(matches!(
            parse(&["outband-device", "approve", "-x1"]).unwrap(),
            Command::Approve(_)
        ));
        assert!(matches!(
            parse(&["outband-device", "grants", "revoke", "-g1"]).unwrap(),
            Command::Grants(_)
        ));
        assert!(parse(&["outband-device", "watch", "--auto", "maybe"]).is_err());
        assert!(matches!(
            parse(&["outband-device", "grants"]).unwrap(),
            Command::Grants(_)
        ));
        assert!(matches!(
            parse(&["outband-device", "--json", "grants", "--account", "alice"]).unwrap(),
            Command::Grants(_)
        ));
        assert!(matches!(
            parse(&["outband-device", "grants", "revoke", "g1", "--account", "alice"]).unwrap(),
            Command::Grants(_)
        ));
        assert!(
            parse(&["outband-device", "grants", "revoke"]).is_err(),
            "revoke needs an id"
        );
        assert!(
            parse(&["outband-device", "enroll"]).is_err(),
            "a code, link or --qr is required"
        );
        assert!(parse(&["outband-device", "enroll", "CODE", "--qr", "f.png"]).is_err());
        assert!(parse(&["outband-device", "--key-store", "file", "enroll", "CODE"]).is_ok());
        assert!(parse(&["outband-device", "--key-store", "usb", "enroll", "CODE"]).is_err());
    }
}
