//! `outband-server`: argument parsing, logging and exit codes; everything else
//! lives in the library (`outband_server::cli`).

use std::io::IsTerminal;

use clap::Parser;
use outband_server::observability::otel;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{EnvFilter, Layer as _};

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = outband_server::cli::Cli::parse();
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn"));
    let json_logs = std::env::var("OUTBAND_LOG_FORMAT").is_ok_and(|v| v == "json");
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    let logs = if json_logs { logs.json().boxed() } else { logs.boxed() };
    let (export, _flush_on_exit) = match otel::layer() {
        Ok(Some((layer, guard))) => (Some(layer), Some(guard)),
        Ok(None) => (None, None),
        Err(err) => {
            eprintln!("error: {err}");
            return std::process::ExitCode::FAILURE;
        }
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(export)
        .init();
    match outband_server::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
