//! The `outband-server` command line: `serve`, `demo`, `migrate` and the admin
//! commands (`clients`, `users`, `devices`, `keys`, `audit`, `ciba`, `notifications`).
//! Admin commands talk to the database directly, so they work while the server
//! runs and on any node.

mod admin;
mod ciba;
mod demo;
mod devices;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::clock::SystemClock;
use crate::config::{Config, Settings};
use crate::state::AppState;
use crate::store::Store;

pub use admin::{AuditArgs, ClientsCommand, KeysCommand, UsersCommand};
pub use ciba::{CibaCommand, NotificationsCommand};
pub use devices::{DevicesCommand, InviteArgs, UsersCli};

/// Outband authorization server.
#[derive(Debug, Parser)]
#[command(name = "outband-server", version, about)]
pub struct Cli {
    /// Configuration file (TOML). `OUTBAND_*` environment variables override it.
    #[arg(long, short, global = true, env = "OUTBAND_CONFIG")]
    pub config: Option<PathBuf>,
    /// Print results as JSON.
    #[arg(long, global = true)]
    pub json: bool,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Run a development server on SQLite with a demo merchant client and demo users.
    Demo(demo::DemoArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Manage OAuth clients.
    #[command(subcommand)]
    Clients(ClientsCommand),
    /// Manage users and invite their authenticators.
    #[command(subcommand)]
    Users(UsersCli),
    /// Manage enrolled authenticator devices.
    #[command(subcommand)]
    Devices(DevicesCommand),
    /// Manage the server's signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Query the audit log.
    Audit(AuditArgs),
    /// Inspect and cancel CIBA backchannel requests.
    #[command(subcommand)]
    Ciba(CibaCommand),
    /// Inspect and redeliver CIBA ping/push notifications.
    #[command(subcommand)]
    Notifications(NotificationsCommand),
}

/// Runs a parsed command line.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    if let Command::Demo(args) = cli.command {
        return demo::run(args).await;
    }
    let settings = load_settings(cli.config.as_deref())?;
    let store = open_store(&settings).await?;
    match cli.command {
        Command::Serve => serve(settings, store).await,
        Command::Migrate => {
            println!("database is up to date ({})", redact_url(&settings.database_url));
            Ok(())
        }
        Command::Clients(command) => admin::clients(&store, command, cli.json).await,
        Command::Users(UsersCli::Invite(args)) => devices::invite(&settings, &store, args, cli.json).await,
        Command::Users(UsersCli::Admin(command)) => admin::users(&settings, &store, command, cli.json).await,
        Command::Devices(command) => devices::devices(&store, command, cli.json).await,
        Command::Keys(command) => admin::keys(&settings, &store, command, cli.json).await,
        Command::Audit(args) => admin::audit(&store, args, cli.json).await,
        Command::Ciba(command) => ciba::ciba(&store, command, cli.json).await,
        Command::Notifications(command) => ciba::notifications(&store, command, cli.json).await,
        Command::Demo(_) => Ok(()),
    }
}

fn load_settings(file: Option<&std::path::Path>) -> anyhow::Result<Settings> {
    Ok(Config::load(file)?.validate()?)
}

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let store = Store::connect(&settings.database_url)
        .await
        .with_context(|| format!("cannot open the database {}", redact_url(&settings.database_url)))?;
    store.migrate().await.context("cannot apply database migrations")?;
    Ok(store)
}

/// Serves until SIGTERM or Ctrl-C.
pub async fn serve(settings: Settings, store: Store) -> anyhow::Result<()> {
    let listen = settings.listen;
    let issuer = settings.issuer.clone();
    let state = AppState::build(settings, store, Arc::new(SystemClock)).await?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| listen.to_string(), |a| a.to_string());
    tracing::info!(listen = %bound, %issuer, "outband-server is listening");
    crate::run(listener, state, shutdown_signal()).await?;
    tracing::info!("outband-server stopped");
    Ok(())
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}

/// A database URL without its password, for messages.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some("***"));
            parsed.to_string()
        }
        _ => url.to_owned(),
    }
}
