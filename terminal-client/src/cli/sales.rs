//! `outband-pos sales` and `outband-pos refund`: looking up past sales by
//! merchant reference (in the till's journal, and at the bank through the
//! payments API) and refunding a payment in full or in part.

use std::process::ExitCode;

use anyhow::{bail, Context};
use clap::Args;
use outband_terminal::{Amount, CibaClient, JournalEntry, Payment, PaymentError, Refund, RefundOutcome};
use serde_json::{json, Value};

use super::config::Settings;

/// Sales listed without `--reference`.
const RECENT: usize = 20;

/// `sales` options.
#[derive(Debug, Args)]
pub struct SalesArgs {
    /// The merchant reference (or sale code) to look up; also asks the bank.
    #[arg(long)]
    pub reference: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// `refund` options.
#[derive(Debug, Args)]
pub struct RefundArgs {
    /// A payment id (`pay_…`) or the merchant reference of exactly one payment.
    pub target: String,
    /// How much to refund [default: all that is left].
    #[arg(long)]
    pub amount: Option<Amount>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// Lists sales.
pub async fn list(settings: &Settings, args: SalesArgs) -> anyhow::Result<ExitCode> {
    let journal = settings.journal()?;
    let entries = match &args.reference {
        Some(reference) => journal.find(reference)?,
        None => {
            let mut entries = journal.unresolved()?;
            entries.extend(journal.resolved()?.into_iter().take(RECENT));
            entries
        }
    };
    let payments = match &args.reference {
        Some(reference) => {
            let client = settings.client(None)?;
            match client.payments_by_reference(reference).await {
                Ok(payments) => Some(payments),
                Err(PaymentError::NotAvailable) => {
                    eprintln!("outband-pos: the server has no payments API; showing the journal only");
                    None
                }
                Err(err) => return Err(anyhow::Error::new(err).context("cannot look the payments up at the bank")),
            }
        }
        None => None,
    };
    if args.json {
        let body = json!({
            "sales": entries.iter().map(entry_json).collect::<Vec<_>>(),
            "payments": payments,
        });
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(ExitCode::SUCCESS);
    }
    if entries.is_empty() && payments.as_ref().is_none_or(Vec::is_empty) {
        eprintln!("outband-pos: no sales found");
        return Ok(ExitCode::FAILURE);
    }
    if !entries.is_empty() {
        println!("Sales in this till's journal:");
        for entry in &entries {
            println!("  {}", entry_line(entry));
        }
    }
    if let Some(payments) = &payments {
        println!("Payments at the bank:");
        if payments.is_empty() {
            println!("  (none)");
        }
        for payment in payments {
            println!("  {}", payment_line(payment));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Refunds a payment.
pub async fn refund(settings: &Settings, args: RefundArgs) -> anyhow::Result<ExitCode> {
    let client = settings.client(None)?;
    let journal = settings.journal()?;
    let payment_id = resolve_target(&client, &args.target).await?;
    // Journaled with a fresh key before the call: a rerun after a crash sends
    // the open refund again with its key and reports it, never a second one.
    let outcome = client
        .refund_journaled(&journal, &payment_id, args.amount)
        .await
        .with_context(|| format!("cannot refund payment {payment_id}"))?;
    let (refund, recovered, matches) = match outcome {
        RefundOutcome::Refunded(refund) => (refund, false, true),
        RefundOutcome::Recovered { refund, matches } => (refund, true, matches),
    };
    if args.json {
        let mut body = serde_json::to_value(&refund)?;
        if let Some(map) = body.as_object_mut() {
            map.insert("recovered".into(), json!(recovered));
        }
        println!("{}", serde_json::to_string_pretty(&body)?);
    } else {
        if recovered {
            println!("An earlier refund of this payment was interrupted; the bank holds it:");
        }
        println!("{}", refund_line(&refund));
    }
    if !matches {
        eprintln!(
            "outband-pos: the interrupted refund of payment {payment_id} was completed instead of the one asked for; \
             run the command again if another refund is still wanted"
        );
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// The payment id of `target`: itself when it looks like one, else the one
/// payment with that reference.
pub async fn resolve_target(client: &CibaClient, target: &str) -> anyhow::Result<String> {
    if target.starts_with("pay_") {
        return Ok(target.to_owned());
    }
    let payments = client
        .payments_by_reference(target)
        .await
        .context("cannot look the payment up at the bank")?;
    match payments.as_slice() {
        [only] => Ok(only.payment_id.clone()),
        [] => bail!("no payment has the reference {target:?}"),
        many => bail!(
            "{} payments have the reference {target:?}; name one: {}",
            many.len(),
            many.iter()
                .map(|p| p.payment_id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// `Refunded EUR 5.00 of pay_1 (ref_1): 5.00 of 12.50 refunded, partially_refunded`.
pub fn refund_line(refund: &Refund) -> String {
    let payment = &refund.payment;
    format!(
        "Refunded {} {} of payment {} (refund {}): {} of {} refunded, status {}",
        refund.currency,
        refund.amount,
        refund.payment_id,
        refund.refund_id,
        payment.refunded_amount.as_deref().unwrap_or("?"),
        payment.instructed_amount.amount,
        payment.status
    )
}

/// One payment on a line.
pub fn payment_line(payment: &Payment) -> String {
    format!(
        "{}  {} {}  {}  refunded {}  {}  {}",
        payment.payment_id,
        payment.instructed_amount.currency,
        payment.instructed_amount.amount,
        payment.status,
        payment.refunded_amount.as_deref().unwrap_or("0.00"),
        payment.remittance_information_unstructured.as_deref().unwrap_or("-"),
        payment.created_at
    )
}

fn entry_line(entry: &JournalEntry) -> String {
    let when = time::OffsetDateTime::from_unix_timestamp(entry.created_at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default();
    let payment = entry.payment.as_ref().map(|p| p.payment_id.as_str()).unwrap_or("-");
    format!(
        "{when}  {:<20}  {:<12}  {:<10}  {}  {payment}{}",
        entry.display_reference().unwrap_or("(not started)"),
        entry.sale.display_amount(),
        format!("{:?}", entry.state).to_lowercase(),
        entry.sale.customer.as_str(),
        entry.detail.as_deref().map(|d| format!("  ({d})")).unwrap_or_default()
    )
}

fn entry_json(entry: &JournalEntry) -> Value {
    json!({
        "reference": entry.display_reference(),
        "code": entry.code,
        "state": entry.state,
        "amount": entry.sale.amount,
        "currency": entry.sale.currency,
        "customer": entry.sale.customer,
        "mode": entry.mode,
        "created_at": entry.created_at,
        "resolved_at": entry.resolved_at,
        "detail": entry.detail,
        "payment": entry.payment,
    })
}
