//! `pending`, `approve`, `deny` and `history`.

use anyhow::bail;
use clap::Args;
use serde_json::json;

use super::{show, Ctx};
use crate::{system_clock, Decision, Session, VerifiedRequest};

/// `--account`, for commands that work on one or every account.
#[derive(Debug, Args)]
pub(super) struct AccountArg {
    /// Only this account (id or unique prefix, username or device name) [default: every account].
    #[arg(long, value_name = "ACCOUNT")]
    pub(super) account: Option<String>,
}

/// `approve` options.
#[derive(Debug, Args)]
pub(super) struct ApproveArgs {
    /// The request id (or a unique prefix), as `pending` or `watch` shows it
    /// (ids may start with `-`).
    #[arg(allow_hyphen_values = true)]
    request: String,
    /// The number the terminal shows (requests with number matching).
    #[arg(long, value_name = "N")]
    number: Option<String>,
    #[command(flatten)]
    account: AccountArg,
}

/// `deny` options.
#[derive(Debug, Args)]
pub(super) struct DenyArgs {
    /// The request id (or a unique prefix), as `pending` or `watch` shows it
    /// (ids may start with `-`).
    #[arg(allow_hyphen_values = true)]
    request: String,
    /// "Not me": deny and report it as fraud.
    #[arg(long)]
    fraud: bool,
    #[command(flatten)]
    account: AccountArg,
}

/// Every verified pending request of the unlocked accounts.
async fn pending_of(sessions: &[Session]) -> anyhow::Result<Vec<(Session, VerifiedRequest)>> {
    let mut all = Vec::new();
    for session in sessions {
        for request in session.pending().await? {
            all.push((session.clone(), request));
        }
    }
    Ok(all)
}

pub(super) async fn pending(ctx: &Ctx, args: AccountArg) -> anyhow::Result<()> {
    let pin = ctx.pin.get("PIN: ").await?;
    let sessions = ctx.unlock(args.account.as_deref(), &pin).await?;
    let requests = pending_of(&sessions).await?;
    if ctx.json {
        let list: Vec<&VerifiedRequest> = requests.iter().map(|(_, r)| r).collect();
        return ctx.print_json(&json!({ "requests": list }));
    }
    if requests.is_empty() {
        println!("no pending requests");
    }
    let now = system_clock()();
    for (session, request) in &requests {
        println!("{}", show::request(request, Some(session.account()), now));
    }
    Ok(())
}

/// Unlocks, finds request `wanted` (exact id or unique prefix) and decides it.
async fn decide(
    ctx: &Ctx,
    account: Option<&str>,
    wanted: &str,
    decision: Decision,
    number: Option<&str>,
) -> anyhow::Result<()> {
    let prompt = match decision {
        Decision::Approve => "PIN to approve: ",
        Decision::Deny | Decision::DenyFraud => "PIN: ",
    };
    let pin = ctx.pin.get(prompt).await?;
    let sessions = ctx.unlock(account, &pin).await?;
    let requests = pending_of(&sessions).await?;
    let exact = requests.iter().find(|(_, r)| r.id == wanted);
    let found = match exact {
        Some(found) => found,
        None => {
            let matches: Vec<_> = requests.iter().filter(|(_, r)| r.id.starts_with(wanted)).collect();
            match matches.as_slice() {
                [one] => *one,
                [] => bail!(
                    "no pending request {wanted}: it may have been decided, withdrawn or expired (see `outband-device pending`)"
                ),
                _ => bail!("{wanted} names several pending requests: use more of the id"),
            }
        }
    };
    let (session, request) = found;
    let outcome = session.decide(request, decision, Some(&pin), number).await?;
    if ctx.json {
        return ctx.print_json(&json!({ "id": outcome.id, "decision": decision, "state": outcome.state }));
    }
    println!("{} request {}", outcome.state, outcome.id);
    Ok(())
}

pub(super) async fn approve(ctx: &Ctx, args: ApproveArgs) -> anyhow::Result<()> {
    decide(
        ctx,
        args.account.account.as_deref(),
        &args.request,
        Decision::Approve,
        args.number.as_deref(),
    )
    .await
}

pub(super) async fn deny(ctx: &Ctx, args: DenyArgs) -> anyhow::Result<()> {
    let decision = if args.fraud {
        Decision::DenyFraud
    } else {
        Decision::Deny
    };
    decide(ctx, args.account.account.as_deref(), &args.request, decision, None).await
}

pub(super) fn history(ctx: &Ctx, args: AccountArg) -> anyhow::Result<()> {
    let mut entries = ctx.authenticator.history()?;
    if let Some(selector) = &args.account {
        let account = ctx.authenticator.find_account(Some(selector))?;
        entries.retain(|entry| entry.account == account.id);
    }
    if ctx.json {
        return ctx.print_json(&entries);
    }
    if entries.is_empty() {
        println!("no decisions yet");
    }
    for entry in &entries {
        println!("{}", show::history(entry));
    }
    Ok(())
}
