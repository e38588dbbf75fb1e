//! `enroll`, `accounts` and `remove`.

use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use serde_json::json;

use super::{show, Ctx};
use crate::{Invite, KeyAlg};

/// The device key's algorithm, as typed.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub(super) enum AlgArg {
    /// ECDSA P-256 (ES256).
    Es256,
    /// Ed25519 (EdDSA).
    Eddsa,
}

impl From<AlgArg> for KeyAlg {
    fn from(alg: AlgArg) -> Self {
        match alg {
            AlgArg::Es256 => Self::Es256,
            AlgArg::Eddsa => Self::Eddsa,
        }
    }
}

/// `enroll` options.
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("invitation").required(true).args(["invite", "qr"]))]
pub(super) struct EnrollArgs {
    /// The activation code (with --issuer) or the outband://enroll link.
    #[arg(value_name = "CODE|LINK")]
    invite: Option<String>,
    /// A PNG or JPEG image of the invitation's QR code.
    #[arg(long, value_name = "FILE")]
    qr: Option<PathBuf>,
    /// The name the server lists this device under.
    #[arg(long, default_value = "outband-device")]
    name: String,
    /// The device key's algorithm.
    #[arg(long, value_enum, default_value = "es256")]
    alg: AlgArg,
    /// The authorization server's URL (needed with a bare code; checked against a link's).
    #[arg(long, value_name = "URL")]
    issuer: Option<String>,
}

pub(super) async fn enroll(ctx: &Ctx, args: EnrollArgs) -> anyhow::Result<()> {
    let issuer = args.issuer.as_deref().map(crate::invite::parse_issuer).transpose()?;
    let invite = match (&args.invite, &args.qr) {
        (Some(text), _) => Invite::parse(text, issuer.as_ref())?,
        (None, Some(file)) => {
            let bytes = std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?;
            Invite::from_qr_image(&bytes)?
        }
        (None, None) => bail!("give an activation code, an outband://enroll link or --qr FILE"),
    };
    if let Some(issuer) = &issuer {
        let same = issuer.as_str().trim_end_matches('/') == invite.issuer.as_str().trim_end_matches('/');
        if !same {
            bail!(
                "the invitation is for {}, not for --issuer {}",
                invite.issuer.as_str().trim_end_matches('/'),
                issuer.as_str().trim_end_matches('/')
            );
        }
    }
    let pin = ctx.pin.choose().await?;
    let account = ctx
        .authenticator
        .enroll(&invite, &args.name, args.alg.into(), &pin)
        .await?;
    if ctx.json {
        return ctx.print_json(&json!({
            "account": account.id,
            "issuer": account.issuer,
            "user": account.username,
            "device_name": account.device_name,
            "alg": account.alg,
            "key_storage": account.key_storage,
        }));
    }
    println!(
        "enrolled {} at {} as {:?} ({})",
        account.username,
        account.issuer.as_str().trim_end_matches('/'),
        account.device_name,
        account.alg
    );
    println!("account {}", account.id);
    println!("{}", show::key_storage(&ctx.authenticator, &account));
    Ok(())
}

pub(super) fn list(ctx: &Ctx) -> anyhow::Result<()> {
    let accounts = ctx.authenticator.accounts()?;
    if ctx.json {
        return ctx.print_json(&accounts);
    }
    if accounts.is_empty() {
        println!("no accounts: enroll one with `outband-device enroll <code|link>`");
    }
    for account in &accounts {
        println!("{}", show::account(account));
    }
    Ok(())
}

/// `remove` options.
#[derive(Debug, Args)]
pub(super) struct RemoveArgs {
    /// The account: its id (or a unique prefix), username or device name.
    account: String,
    /// Remove it here even when the server cannot be told.
    #[arg(long)]
    force: bool,
}

pub(super) async fn remove(ctx: &Ctx, args: RemoveArgs) -> anyhow::Result<()> {
    let account = ctx.authenticator.find_account(Some(&args.account))?;
    let pin = ctx.pin.get(&format!("PIN of {}: ", account.username)).await?;
    ctx.authenticator.remove(&account.id, &pin, args.force).await?;
    if ctx.json {
        return ctx.print_json(&json!({ "removed": account.id }));
    }
    println!(
        "removed account {} ({} at {}); the server no longer sends it anything",
        account.id,
        account.username,
        account.issuer.as_str().trim_end_matches('/')
    );
    Ok(())
}
