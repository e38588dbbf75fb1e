//! Authenticator devices from the command line: `users invite` makes the
//! one-time activation code that enrolls one (as text, as an `outband://enroll`
//! link and as a QR code in the terminal); `devices list` and `devices revoke`
//! manage the enrolled ones.
//!
//! `users invite` is added to the other `users` commands of `admin.rs` by
//! flattening them into [`UsersCli`].

use std::io::IsTerminal;

use anyhow::{anyhow, bail};
use clap::{Args, Subcommand};
use outband_protocol::Subject;
use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use serde_json::json;

use super::admin::UsersCommand;
use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::device::enroll::{self, DEFAULT_CODE_TTL};
use crate::keys::KeySet;
use crate::store::{AuditEvent, DeviceRecord, Store, UserRecord};

/// `users ...`: the admin commands plus `invite`.
#[derive(Debug, Subcommand)]
pub enum UsersCli {
    /// Make a one-time activation code that enrolls an authenticator for a user.
    Invite(InviteArgs),
    /// The other user commands.
    #[command(flatten)]
    Admin(UsersCommand),
}

/// `users invite`
#[derive(Debug, Args)]
pub struct InviteArgs {
    /// Who (username, e-mail, phone or subject).
    pub user: String,
    /// Seconds the code stays valid (60 to 86400).
    #[arg(long, default_value_t = DEFAULT_CODE_TTL)]
    pub ttl: i64,
    /// Print the QR code even when standard output is not a terminal.
    #[arg(long)]
    pub qr: bool,
}

/// `devices ...`
#[derive(Debug, Subcommand)]
pub enum DevicesCommand {
    /// List enrolled devices, newest first.
    List {
        /// Only this user's devices (username, e-mail, phone or subject).
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a device: its tokens stop working and its event streams end.
    Revoke {
        /// The device id.
        device_id: String,
    },
}

fn now() -> i64 {
    SystemClock.now()
}

fn print_json(value: &serde_json::Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

fn format_time(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| unix.to_string())
}

async fn find_user(store: &Store, who: &str) -> anyhow::Result<UserRecord> {
    if let Some(user) = store.user_by_login_hint(who).await? {
        return Ok(user);
    }
    store
        .user(&Subject::new(who))
        .await?
        .ok_or_else(|| anyhow!("no user {who}"))
}

/// `users invite`
pub async fn invite(settings: &Settings, store: &Store, args: InviteArgs, json_out: bool) -> anyhow::Result<()> {
    let user = find_user(store, &args.user).await?;
    if user.locked {
        bail!("user {} is locked; unlock them first", user.username);
    }
    let now = now();
    let keys = KeySet::load_or_create(store, &settings.key_file, now).await?;
    let invitation = enroll::invite(store, &keys, &settings.issuer, &user.subject, args.ttl, now).await?;
    if json_out {
        return print_json(&json!({
            "code": invitation.code.secret(),
            "link": invitation.link,
            "expires_at": invitation.expires_at,
        }));
    }
    println!(
        "activation code for {} (one use, expires {}):\n\n    {}\n\nlink: {}",
        user.username,
        format_time(invitation.expires_at),
        enroll::grouped(&invitation.code),
        invitation.link
    );
    if args.qr || std::io::stdout().is_terminal() {
        let code = QrCode::new(invitation.link.as_bytes()).map_err(|e| anyhow!("cannot make a QR code: {e}"))?;
        // Light modules drawn dark and the other way round: terminals are mostly dark.
        let image = code
            .render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .build();
        println!("\nscan with the Outband authenticator:\n\n{image}");
    }
    Ok(())
}

fn device_json(device: &DeviceRecord, username: Option<&str>) -> serde_json::Value {
    json!({
        "device_id": device.id,
        "subject": device.subject,
        "username": username,
        "name": device.name,
        "alg": device.alg,
        "jkt": device.jkt,
        "created_at": device.created_at,
        "last_seen_at": device.last_seen_at,
        "revoked_at": device.revoked_at,
    })
}

/// `devices ...`
pub async fn devices(store: &Store, command: DevicesCommand, json_out: bool) -> anyhow::Result<()> {
    match command {
        DevicesCommand::List { user } => {
            let devices = match &user {
                Some(who) => store.devices_of_subject(&find_user(store, who).await?.subject).await?,
                None => store.list_devices().await?,
            };
            let users = store.list_users().await?;
            let username = |device: &DeviceRecord| {
                users
                    .iter()
                    .find(|u| u.subject == device.subject)
                    .map(|u| u.username.clone())
            };
            if json_out {
                let list: Vec<_> = devices.iter().map(|d| device_json(d, username(d).as_deref())).collect();
                return print_json(&json!(list));
            }
            if devices.is_empty() {
                println!("no devices");
            }
            for d in &devices {
                let status = match d.revoked_at {
                    Some(at) => format!("revoked {}", format_time(at)),
                    None => format!("last seen {}", d.last_seen_at.map_or("never".into(), format_time)),
                };
                println!(
                    "{}\t{}\t{}\t{}\t{status}",
                    d.id,
                    username(d).unwrap_or_else(|| d.subject.to_string()),
                    d.name,
                    d.alg
                );
            }
            Ok(())
        }
        DevicesCommand::Revoke { device_id } => {
            let device = store
                .device(&device_id)
                .await?
                .ok_or_else(|| anyhow!("no device {device_id}"))?;
            if !store.revoke_device(&device_id, now()).await? {
                bail!("device {device_id} is already revoked");
            }
            let event = AuditEvent {
                id: 0,
                at: now(),
                event: "device.revoked".into(),
                client_id: None,
                subject: Some(device.subject.to_string()),
                request_id: None,
                detail: json!({ "device_id": device_id, "by": "admin" }),
            };
            store.append_audit(&event).await?;
            if json_out {
                return print_json(&json!({ "revoked": device_id }));
            }
            println!(
                "revoked device {device_id} ({}); its open event streams end within 15 seconds",
                device.name
            );
            Ok(())
        }
    }
}
