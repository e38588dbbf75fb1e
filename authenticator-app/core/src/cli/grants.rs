//! `grants` (what the user allowed applications) and `grants revoke`.

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::json;

use super::requests::AccountArg;
use super::{show, Ctx};
use crate::{Grant, Session};

/// `grants` options.
#[derive(Debug, Args)]
pub(super) struct GrantsArgs {
    #[command(subcommand)]
    action: Option<GrantsAction>,
    #[command(flatten)]
    account: AccountArg,
}

#[derive(Debug, Subcommand)]
enum GrantsAction {
    /// Revoke a grant: the application loses the access, and its tokens stop working.
    Revoke(RevokeArgs),
}

/// `grants revoke` options.
#[derive(Debug, Args)]
struct RevokeArgs {
    /// The grant id (or a unique prefix), as `grants` shows it.
    #[arg(allow_hyphen_values = true)]
    grant: String,
    #[command(flatten)]
    account: AccountArg,
}

/// The grants of every unlocked account.
async fn grants_of(sessions: &[Session]) -> anyhow::Result<Vec<(Session, Grant)>> {
    let mut all = Vec::new();
    for session in sessions {
        for grant in session.grants().await? {
            all.push((session.clone(), grant));
        }
    }
    Ok(all)
}

pub(super) async fn run(ctx: &Ctx, args: GrantsArgs) -> anyhow::Result<()> {
    match args.action {
        None => list(ctx, args.account).await,
        Some(GrantsAction::Revoke(revoke_args)) => {
            let account = revoke_args.account.account.or(args.account.account);
            revoke(ctx, account.as_deref(), &revoke_args.grant).await
        }
    }
}

async fn list(ctx: &Ctx, args: AccountArg) -> anyhow::Result<()> {
    let pin = ctx.pin.get("PIN: ").await?;
    let sessions = ctx.unlock(args.account.as_deref(), &pin).await?;
    let grants = grants_of(&sessions).await?;
    if ctx.json {
        let list: Vec<&Grant> = grants.iter().map(|(_, g)| g).collect();
        return ctx.print_json(&json!({ "grants": list }));
    }
    if grants.is_empty() {
        println!("no application has access to your account");
    }
    for (session, grant) in &grants {
        println!("{}", show::grant(grant, Some(session.account())));
    }
    Ok(())
}

/// Unlocks, finds grant `wanted` (exact id or unique prefix) and revokes it.
async fn revoke(ctx: &Ctx, account: Option<&str>, wanted: &str) -> anyhow::Result<()> {
    let pin = ctx.pin.get("PIN: ").await?;
    let sessions = ctx.unlock(account, &pin).await?;
    let grants = grants_of(&sessions).await?;
    let found = match grants.iter().find(|(_, g)| g.grant_id == wanted) {
        Some(found) => found,
        None => {
            let matches: Vec<_> = grants
                .iter()
                .filter(|(_, g)| !wanted.is_empty() && g.grant_id.starts_with(wanted))
                .collect();
            match matches.as_slice() {
                [one] => *one,
                [] => bail!("no grant {wanted}: it may have been revoked already (see `outband-device grants`)"),
                _ => bail!("{wanted} names several grants: use more of the id"),
            }
        }
    };
    let (session, grant) = found;
    session.revoke_grant(&grant.grant_id).await?;
    if ctx.json {
        return ctx.print_json(&json!({
            "grant_id": grant.grant_id,
            "client_id": grant.client_id,
            "client_name": grant.client_name,
            "revoked": true,
        }));
    }
    println!(
        "revoked grant {} of {}: its tokens no longer work",
        grant.grant_id, grant.client_name
    );
    Ok(())
}
