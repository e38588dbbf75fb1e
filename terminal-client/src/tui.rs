//! The interactive till's entry point: logging to a file, the async runtime,
//! the terminal (raw mode and the alternate screen through `ratatui::try_init`,
//! whose panic hook restores the terminal before the panic message prints),
//! and the loop that draws, reads actions and hands them to the worker and
//! the app.

use std::fs::OpenOptions;
use std::sync::Mutex;

use anyhow::Context;
use ratatui::DefaultTerminal;
use tokio::sync::mpsc;

use crate::action::Action;
use crate::app::{App, Till};
use crate::cli::Settings;
use crate::worker::Worker;

/// Runs the till until the shop assistant quits.
pub fn main(settings: Settings) -> anyhow::Result<()> {
    init_logging(&settings)?;
    let journal = settings.journal()?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let (tx, rx) = mpsc::unbounded_channel();
        let till = Till::from_settings(&settings);
        let app = App::new(till, outband_terminal::system_clock());
        let mut worker = Worker::new(settings, journal, tx.clone());
        let mut terminal = ratatui::try_init().context("cannot set up the terminal")?;
        let events = crate::event::spawn(tx.clone());
        // Sales an earlier run left open come first (the recovery prompt).
        let _ = tx.send(Action::CheckJournal);
        // What the server supports decides which fields the sale screen has.
        let _ = tx.send(Action::Discover);
        let result = run(&mut terminal, app, &mut worker, rx).await;
        ratatui::restore();
        events.abort();
        tracing::info!("outband-pos stopped");
        result
    })
}

/// Draw, wait for an action, apply it (and whatever it leads to), repeat.
async fn run(
    terminal: &mut DefaultTerminal,
    mut app: App,
    worker: &mut Worker,
    mut rx: mpsc::UnboundedReceiver<Action>,
) -> anyhow::Result<()> {
    loop {
        terminal.draw(|frame| app.draw(frame)).context("cannot draw")?;
        let Some(first) = rx.recv().await else {
            return Ok(());
        };
        let mut next = Some(first);
        while let Some(action) = next.take() {
            worker.handle(&action);
            next = app.update(action);
        }
        if app.should_quit() {
            // A sale still waiting stays open in the journal; the next start resumes it.
            return Ok(());
        }
    }
}

/// Logs go to a file (never to the screen the TUI draws on): `RUST_LOG`, else `info`.
fn init_logging(settings: &Settings) -> anyhow::Result<()> {
    let Some(path) = &settings.log_file else {
        anyhow::bail!("no log file: set --log-file (or OUTBAND_POS_LOG_FILE), or a data directory");
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open the log file {}", path.display()))?;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(false)
        .with_writer(Mutex::new(file))
        .init();
    tracing::info!(issuer = %settings.issuer, "outband-pos started");
    Ok(())
}
