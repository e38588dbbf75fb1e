//! The `outband-pos` command line: with no subcommand the interactive till
//! (see `crate::tui` and `crate::app`); `pay`, `discover` and `token` are
//! non-interactive, over the same [`outband_terminal`] library.
//!
//! Exit codes of `pay`: 0 approved, 1 error, 2 denied, 3 expired, 130 cancelled
//! (Ctrl-C, after withdrawing the sale at the server).

pub mod config;
mod pay;
pub mod sales;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use outband_protocol::Scope;

pub use self::config::Settings;

/// Exit code: the customer or the bank refused.
pub const EXIT_DENIED: u8 = 2;
/// Exit code: nobody answered in time.
pub const EXIT_EXPIRED: u8 = 3;
/// Exit code: the sale was cancelled with Ctrl-C.
pub const EXIT_CANCELLED: u8 = 130;

/// Outband point-of-sale terminal: starts decoupled (CIBA) payments.
#[derive(Debug, Parser)]
#[command(name = "outband-pos", version)]
pub struct Cli {
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// How to reach the bank and who the till is (flags, then environment, then
/// the config file, then the demo server's values).
#[derive(Debug, Default, Args)]
pub struct ConnectionArgs {
    /// TOML configuration file (unknown keys are refused).
    #[arg(long, global = true, env = "OUTBAND_POS_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Issuer URL of the authorization server [default: http://127.0.0.1:8080].
    #[arg(long, global = true, env = "OUTBAND_POS_ISSUER", value_name = "URL")]
    pub issuer: Option<String>,
    /// Client id of this till [default: demo-pos].
    #[arg(long, global = true, env = "OUTBAND_POS_CLIENT_ID", value_name = "ID")]
    pub client_id: Option<String>,
    /// File holding the client secret (client_secret_basic); the secret itself
    /// may come from OUTBAND_POS_CLIENT_SECRET instead.
    #[arg(long, global = true, env = "OUTBAND_POS_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub client_secret_file: Option<PathBuf>,
    /// Private JWK file: authenticate with private_key_jwt (and sign requests).
    #[arg(long, global = true, env = "OUTBAND_POS_KEY_FILE", value_name = "FILE")]
    pub key_file: Option<PathBuf>,
    /// Client authentication: client_secret_basic, private_key_jwt,
    /// tls_client_auth or self_signed_tls_client_auth
    /// [default: private_key_jwt with --key-file, else client_secret_basic].
    #[arg(long, global = true, env = "OUTBAND_POS_AUTH_METHOD", value_name = "METHOD")]
    pub auth_method: Option<String>,
    /// PEM client certificate (chain, leaf first) presented on every call to
    /// the server (mutual TLS); needs --client-key.
    #[arg(long, global = true, env = "OUTBAND_POS_CLIENT_CERT", value_name = "FILE")]
    pub client_cert: Option<PathBuf>,
    /// PEM private key of --client-cert.
    #[arg(long, global = true, env = "OUTBAND_POS_CLIENT_KEY", value_name = "FILE")]
    pub client_key: Option<PathBuf>,
    /// PEM CA certificates trusted for the server's certificate, in addition
    /// to the system's (a private PKI, a test CA).
    #[arg(long, global = true, env = "OUTBAND_POS_CA_FILE", value_name = "FILE")]
    pub ca_file: Option<PathBuf>,
    /// Send CIBA requests as signed request objects (needs --key-file).
    #[arg(long, global = true)]
    pub signed_requests: bool,
    /// Bind tokens to this till with DPoP: token requests and payment calls
    /// carry proofs of a key kept in the data directory (FAPI 2 clients, or
    /// clients registered with dpop_bound_access_tokens).
    #[arg(long, global = true, env = "OUTBAND_POS_DPOP")]
    pub dpop: bool,
    /// Directory of the sale journal (and the TUI's log)
    /// [default: $XDG_STATE_HOME/outband-pos, else ~/.local/state/outband-pos].
    #[arg(long, global = true, env = "OUTBAND_POS_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log file of the interactive till [default: outband-pos.log in the data directory].
    #[arg(long, global = true, env = "OUTBAND_POS_LOG_FILE", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Take a payment: start a CIBA request and wait for the customer's answer.
    Pay(pay::PayArgs),
    /// Print the authorization server's discovery document.
    Discover,
    /// Get a client_credentials access token (for scripts).
    Token(TokenArgs),
    /// Look up sales: the journal's, and with --reference the bank's payments.
    Sales(sales::SalesArgs),
    /// Refund a payment, fully or partly.
    Refund(sales::RefundArgs),
}

/// `token` options.
#[derive(Debug, Args)]
pub struct TokenArgs {
    /// Scope to ask for [default: the client's registered scope].
    #[arg(long)]
    pub scope: Option<String>,
    /// Print the whole token response as JSON instead of the access token alone.
    #[arg(long)]
    pub json: bool,
}

/// Parses the command line, runs it, and maps the result to an exit code.
pub fn main() -> ExitCode {
    // Usage errors exit 1, not clap's 2: 2 means "denied" here.
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => {
            let _ = err.print();
            return if err.use_stderr() {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    let settings = match Settings::resolve(&cli.connection, &|name| std::env::var(name).ok()) {
        Ok(settings) => settings,
        Err(err) => return fail(&err),
    };
    let Some(command) = cli.command else {
        // The screen belongs to the TUI: it logs to a file.
        return match crate::tui::main(settings) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        };
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(err) => return fail(&anyhow::Error::new(err).context("cannot start the async runtime")),
    };
    match runtime.block_on(run(&settings, command)) {
        Ok(code) => code,
        Err(err) => fail(&err),
    }
}

fn fail(err: &anyhow::Error) -> ExitCode {
    eprintln!("outband-pos: error: {err:#}");
    ExitCode::FAILURE
}

async fn run(settings: &Settings, command: Command) -> anyhow::Result<ExitCode> {
    match command {
        Command::Pay(args) => pay::run(settings, args).await,
        Command::Sales(args) => sales::list(settings, args).await,
        Command::Refund(args) => sales::refund(settings, args).await,
        Command::Discover => {
            let client = settings.client(None)?;
            let metadata = client.discover().await?;
            println!("{}", serde_json::to_string_pretty(&*metadata)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Token(args) => {
            let client = settings.client(None)?;
            let scope = args.scope.as_deref().map(Scope::new);
            let tokens = client
                .client_credentials(scope.as_ref())
                .await
                .context("cannot get a token")?;
            if args.json {
                println!("{}", serde_json::to_string_pretty(&tokens)?);
            } else {
                // Printing the token is this command's purpose (scripts capture it).
                println!("{}", tokens.access_token.secret());
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
