//! `outband-pos pay`: one sale, start to receipt, in plain text. The binding
//! message and a countdown go to stderr; the receipt (or, with `--json`, a JSON
//! object) goes to stdout.
//!
//! Every sale goes through the journal. Sales an earlier run left open are
//! picked up first (their outcome goes to stderr); when one has the
//! `--reference` of this sale, its outcome *is* this command's answer and no
//! new sale is started, so re-running a crashed `pay` never charges twice.

use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use outband_protocol::{DeliveryMode, Password, TokenResponse};
use outband_terminal::{
    Amount, CancelResult, CancelToken, CibaClient, Currency, Iban, Journal, JournalEntry, NotificationListener,
    Outcome, Receipt, Recovery, SaleRequest, SaleState, Settlement, Started, WaitEvent,
};
use serde_json::json;

use super::config::Settings;
use super::{EXIT_CANCELLED, EXIT_DENIED, EXIT_EXPIRED};

/// Seconds between countdown lines when stderr is not a terminal.
const PLAIN_COUNTDOWN_EVERY: u64 = 15;

/// `pay` options.
#[derive(Debug, Args)]
pub struct PayArgs {
    /// Amount, a decimal with at most 2 fraction digits (12.50).
    #[arg(long)]
    pub amount: Amount,
    /// ISO 4217 currency [default: the config's, else EUR].
    #[arg(long)]
    pub currency: Option<Currency>,
    /// The customer at the bank: e-mail, phone number or username.
    #[arg(long)]
    pub customer: String,
    /// Delivery mode, as registered for this client: poll, ping or push [default: poll].
    #[arg(long)]
    pub mode: Option<DeliveryMode>,
    /// Merchant reference for the customer's statement [default: the sale code].
    #[arg(long)]
    pub reference: Option<String>,
    /// Payee name shown to the customer [default: Corner Café].
    #[arg(long)]
    pub merchant: Option<String>,
    /// Letters before the sale code's random part [default: from the merchant name].
    #[arg(long)]
    pub prefix: Option<String>,
    /// Payee IBAN.
    #[arg(long)]
    pub iban: Option<Iban>,
    /// Where to receive ping/push notifications [default: 127.0.0.1:8090].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Seconds the customer has to answer [default: the server's].
    #[arg(long, value_name = "SECONDS")]
    pub expiry: Option<u64>,
    /// The customer's CIBA user code (a secret they set at the bank), for
    /// servers that support `user_code`; prefer the environment variable to
    /// the flag, which other users of the machine can see.
    #[arg(long, env = "OUTBAND_POS_USER_CODE", hide_env_values = true, value_name = "CODE", value_parser = parse_secret)]
    pub user_code: Option<Password>,
    /// Print a JSON object instead of the human receipt.
    #[arg(long)]
    pub json: bool,
}

/// A secret argument, kept redacted in `Debug`.
fn parse_secret(text: &str) -> Result<Password, std::convert::Infallible> {
    Ok(Password::new(text))
}

/// Runs one sale.
pub async fn run(settings: &Settings, args: PayArgs) -> anyhow::Result<ExitCode> {
    let defaults = &settings.sale;
    let mode = args.mode.unwrap_or(defaults.mode);
    let addr = args.listen.unwrap_or(defaults.listen);
    let mut listener: Option<NotificationListener> = None;
    let mut sale = SaleRequest::new(
        args.amount,
        args.currency.or(defaults.currency).unwrap_or(Currency::EUR),
        args.customer,
        args.merchant.unwrap_or_else(|| defaults.merchant.clone()),
    );
    sale.iban = args.iban.or_else(|| defaults.iban.clone());
    sale.reference = args.reference;
    sale.prefix = args.prefix.or_else(|| defaults.prefix.clone());
    sale.requested_expiry = args.expiry.or(defaults.requested_expiry).map(Duration::from_secs);
    sale.user_code = args.user_code;
    sale.validate()?;
    let journal = settings.journal()?;

    // Ctrl-C from here on cancels the sale instead of killing the process.
    let cancel = CancelToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            on_ctrl_c.cancel();
        }
    });

    for entry in journal.unresolved()? {
        let same = sale.reference.is_some() && entry.sale.reference == sale.reference;
        let report = if same {
            Report::Stdout { json: args.json }
        } else {
            Report::Stderr
        };
        let reference = entry.display_reference().unwrap_or("(not started)").to_owned();
        eprintln!("outband-pos: resuming sale {reference} from an earlier run");
        let client = settings.client_for(entry.mode, addr, &mut listener).await?;
        let code = match resume(&client, &journal, entry, &cancel, report).await {
            Ok(code) => code,
            Err(err) if !same => {
                eprintln!("outband-pos: sale {reference} stays open: {err:#}");
                continue;
            }
            Err(err) => return Err(err),
        };
        if same {
            eprintln!("outband-pos: that was this sale (reference {reference}): no new sale was started");
            return Ok(code);
        }
        if cancel.is_cancelled() {
            return Ok(code);
        }
    }

    let client = settings.client_for(mode, addr, &mut listener).await?;
    if let Some(listener) = &listener {
        eprintln!("Notifications ({mode}) are received at {}", listener.url());
    }
    let (started, mut entry) = client
        .start_journaled(&journal, sale)
        .await
        .context("the sale could not be started")?;
    show_waiting(&started);
    let outcome = wait_with_countdown(&client, &started, &cancel).await.map_err(|err| {
        err.context(format!(
            "waiting for sale {} failed; it stays open in the journal and the next run resumes it",
            started.reference
        ))
    })?;
    finish(
        &client,
        &journal,
        &mut entry,
        &started,
        outcome,
        Report::Stdout { json: args.json },
    )
    .await
}

/// Where the outcome of a sale goes.
#[derive(Clone, Copy)]
enum Report {
    /// This command's answer: stdout (the receipt, or JSON).
    Stdout { json: bool },
    /// An earlier sale: a note on stderr.
    Stderr,
}

/// Picks up a sale an earlier run left open and reports how it ends.
async fn resume(
    client: &CibaClient,
    journal: &Journal,
    mut entry: JournalEntry,
    cancel: &CancelToken,
    report: Report,
) -> anyhow::Result<ExitCode> {
    let recovery = client.recover(&entry).await?;
    let (started, outcome) = match recovery {
        Recovery::Wait(started) => {
            show_waiting(&started);
            let outcome = wait_with_countdown(client, &started, cancel).await?;
            (started, outcome)
        }
        Recovery::Finished { started, outcome } => (started, outcome),
        Recovery::Pay { started, tokens } => {
            eprintln!(
                "outband-pos: sale {} was approved; making sure its payment is executed",
                started.reference
            );
            return settle(client, journal, &mut entry, &started, &tokens, report).await;
        }
        Recovery::Lost => {
            journal.resolve(&mut entry, SaleState::Lost, None, client.now())?;
            eprintln!(
                "outband-pos: the sale was interrupted before the bank answered; it can never be charged, \
                 and the customer's request expires on its own"
            );
            return Ok(ExitCode::FAILURE);
        }
    };
    finish(client, journal, &mut entry, &started, outcome, report).await
}

async fn wait_with_countdown(client: &CibaClient, started: &Started, cancel: &CancelToken) -> anyhow::Result<Outcome> {
    let tty = std::io::stderr().is_terminal();
    let wait = client.wait_with(started, cancel, |event| match event {
        WaitEvent::SlowDown { interval } => note(
            tty,
            &format!("the server asked to slow down: polling every {} s", interval.as_secs()),
        ),
        WaitEvent::Retrying(why) => note(tty, &format!("retrying after a problem: {why}")),
        WaitEvent::Refused(why) => note(tty, &format!("refused pushed tokens: {why}")),
        WaitEvent::Notified => note(tty, "the bank has answered"),
        _ => {}
    });
    tokio::pin!(wait);
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    let mut ticks: u64 = 0;
    let outcome = loop {
        tokio::select! {
            outcome = &mut wait => break outcome,
            _ = ticker.tick() => {
                let left = started.remaining().as_secs();
                if tty {
                    eprint!("\r  waiting for approval … {}:{:02} left   ", left / 60, left % 60);
                    let _ = std::io::stderr().flush();
                } else if ticks % PLAIN_COUNTDOWN_EVERY == 0 {
                    eprintln!("  waiting for approval … {}:{:02} left", left / 60, left % 60);
                }
                ticks += 1;
            }
        }
    };
    if tty {
        eprintln!();
    }
    Ok(outcome?)
}

fn note(tty: bool, text: &str) {
    if tty {
        eprintln!("\r  {text}                    ");
    } else {
        eprintln!("  {text}");
    }
}

/// The binding message, big enough to read across the counter.
fn show_waiting(started: &Started) {
    let message = started.binding_message.as_str();
    let width = message.chars().count() + 6;
    eprintln!();
    eprintln!("  Ask the customer to check their authenticator for");
    eprintln!("  ┏{}┓", "━".repeat(width));
    eprintln!("  ┃   {message}   ┃");
    eprintln!("  ┗{}┛", "━".repeat(width));
    if let Some(number) = &started.number_match {
        eprintln!("  and to type the number {number} on their device");
    }
    eprintln!(
        "  {} for {} · Ctrl-C cancels the sale",
        started.sale.display_amount(),
        started.sale.customer
    );
}

/// Closes the sale in the journal and reports its outcome.
async fn finish(
    client: &CibaClient,
    journal: &Journal,
    entry: &mut JournalEntry,
    started: &Started,
    outcome: Outcome,
    report: Report,
) -> anyhow::Result<ExitCode> {
    let now = client.now();
    if let Outcome::Approved(tokens) = &outcome {
        return settle(client, journal, entry, started, tokens, report).await;
    }
    if !matches!(outcome, Outcome::Cancelled) {
        journal.resolve_outcome(entry, &outcome, now)?;
    }
    let (status, message, code) = match outcome {
        Outcome::Approved(_) => return Ok(ExitCode::SUCCESS),
        Outcome::Denied(why) => (
            "denied",
            format!("payment denied{}", why.map(|w| format!(" ({w})")).unwrap_or_default()),
            ExitCode::from(EXIT_DENIED),
        ),
        Outcome::Expired => (
            "expired",
            "payment request expired: the customer did not answer in time".to_owned(),
            ExitCode::from(EXIT_EXPIRED),
        ),
        Outcome::Failed(error) => (
            "failed",
            format!(
                "payment failed: {}{}",
                error.error,
                error.error_description.map(|d| format!(" ({d})")).unwrap_or_default()
            ),
            ExitCode::FAILURE,
        ),
        Outcome::Cancelled => {
            let message = match client.cancel(started).await {
                Ok(CancelResult::Cancelled) => "sale cancelled; the request was withdrawn at the bank".to_owned(),
                Ok(CancelResult::AlreadyFinished) => {
                    "sale cancelled; the bank had already closed the request".to_owned()
                }
                Err(err) => format!("sale cancelled here, but withdrawing it at the bank failed: {err}"),
            };
            journal.resolve(entry, SaleState::Cancelled, Some(message.clone()), now)?;
            ("cancelled", message, ExitCode::from(EXIT_CANCELLED))
        }
    };
    eprintln!("outband-pos: {message}");
    if let Report::Stdout { json: true } = report {
        let body = json!({
            "status": status,
            "message": message,
            "binding_message": started.binding_message,
            "reference": started.reference,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
    }
    Ok(code)
}

/// Executes the approved payment (once) and reports the receipt.
async fn settle(
    client: &CibaClient,
    journal: &Journal,
    entry: &mut JournalEntry,
    started: &Started,
    tokens: &TokenResponse,
    report: Report,
) -> anyhow::Result<ExitCode> {
    let settled = client.settle(journal, entry, started, tokens).await.with_context(|| {
        format!(
            "sale {} was approved, but the payment could not be confirmed; run outband-pos again to retry it",
            started.reference
        )
    })?;
    let receipt = match settled {
        Settlement::Paid(receipt) => receipt,
        Settlement::ApprovedOnly(receipt) => {
            eprintln!("outband-pos: note: the server has no payments API; the receipt is the approval only");
            receipt
        }
        Settlement::Refused { error, description } => {
            let message = format!(
                "the payment was approved but the bank refused to execute it: {error}{}",
                description.map(|d| format!(" ({d})")).unwrap_or_default()
            );
            eprintln!("outband-pos: {message}");
            if let Report::Stdout { json: true } = report {
                let body = json!({"status": "refused", "message": message, "reference": started.reference});
                println!("{}", serde_json::to_string_pretty(&body)?);
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    match report {
        Report::Stdout { json: true } => println!("{}", serde_json::to_string_pretty(&receipt)?),
        Report::Stdout { json: false } => print_receipt(&mut std::io::stdout(), &receipt)?,
        Report::Stderr => print_receipt(&mut std::io::stderr(), &receipt)?,
    }
    Ok(ExitCode::SUCCESS)
}

fn print_receipt(out: &mut dyn Write, receipt: &Receipt) -> std::io::Result<()> {
    let when = time::OffsetDateTime::from_unix_timestamp(receipt.approved_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| receipt.approved_at.to_string());
    writeln!(out)?;
    match &receipt.payment {
        Some(_) => writeln!(out, "  PAYMENT EXECUTED")?,
        None => writeln!(out, "  PAYMENT APPROVED (not executed: the server has no payments API)")?,
    }
    writeln!(out)?;
    if let Some(payment) = &receipt.payment {
        writeln!(out, "  Payment    {} ({})", payment.payment_id, payment.status)?;
    }
    writeln!(out, "  Amount     {} {}", receipt.currency, receipt.amount)?;
    match &receipt.iban {
        Some(iban) => writeln!(out, "  Payee      {} ({iban})", receipt.payee)?,
        None => writeln!(out, "  Payee      {}", receipt.payee)?,
    }
    writeln!(out, "  Reference  {}", receipt.reference)?;
    writeln!(out, "  Code       {}", receipt.binding_message)?;
    match &receipt.token.sub {
        Some(sub) => writeln!(out, "  Customer   {} ({sub})", receipt.customer)?,
        None => writeln!(out, "  Customer   {}", receipt.customer)?,
    }
    let when = receipt.payment.as_ref().map_or(when, |p| p.created_at.clone());
    writeln!(out, "  Time       {when}")?;
    let token = &receipt.token;
    let mut summary = format!("{:?}", token.token_type);
    if let Some(scope) = &token.scope {
        summary.push_str(&format!(", scope \"{scope}\""));
    }
    if let Some(expires_in) = token.expires_in {
        summary.push_str(&format!(", valid {expires_in} s"));
    }
    writeln!(out, "  Token      {summary} ({} delivery)", receipt.mode)?;
    writeln!(out)?;
    Ok(())
}
