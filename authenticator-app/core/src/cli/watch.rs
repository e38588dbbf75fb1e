//! `watch`: follows the live stream of one or every account, prints each
//! verified request and what happens to it, and decides: by asking on a
//! terminal, or by itself with `--auto approve|deny`. Runs until killed
//! (Ctrl-C or SIGTERM end it cleanly, exit 0) or until every watched account
//! is revoked (exit 1, with a sentence saying so).

use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, ValueEnum};
use serde_json::json;
use tokio::sync::mpsc;

use super::{show, Ctx};
use crate::{system_clock, AccountId, Decision, Error, Pin, Session, VerifiedRequest, WatchEvent};

/// `watch` options.
#[derive(Debug, Args)]
pub(super) struct WatchArgs {
    /// Only this account (id or unique prefix, username or device name) [default: every account].
    #[arg(long, value_name = "ACCOUNT")]
    account: Option<String>,
    /// Decide every request without asking (unattended: tests, demos).
    #[arg(long, value_enum, value_name = "DECISION")]
    auto: Option<Auto>,
}

/// What `--auto` does.
#[derive(Clone, Copy, Debug, ValueEnum)]
enum Auto {
    /// Approve every request.
    Approve,
    /// Deny every request.
    Deny,
}

/// The watch's state.
struct Watch<'a> {
    ctx: &'a Ctx,
    sessions: HashMap<AccountId, Session>,
    /// The PIN that unlocked the accounts (used by `--auto`).
    pin: Pin,
    auto: Option<Auto>,
    /// Ask y/n on the terminal.
    interactive: bool,
    /// `--auto` decisions that did not reach the server (it was down or the
    /// connection broke): tried again when the stream reconnects, while the
    /// request is still pending, so a server crash loses no decision.
    undelivered: HashMap<String, VerifiedRequest>,
}

pub(super) async fn run(ctx: &Ctx, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let pin = ctx.pin.get("PIN to unlock: ").await?;
    let sessions = ctx.unlock(args.account.as_deref(), &pin).await?;
    let interactive = args.auto.is_none() && std::io::stdin().is_terminal();
    if args.auto.is_none() && !interactive && !ctx.json {
        println!("no terminal to ask on: showing requests only (decide with `outband-device approve|deny <id>`)");
    }
    let (events, mut received) = mpsc::channel(64);
    let mut watchers = tokio::task::JoinSet::new();
    for session in &sessions {
        let (session, events) = (session.clone(), events.clone());
        watchers.spawn(async move { session.watch(events).await });
    }
    drop(events);
    let mut watch = Watch {
        ctx,
        sessions: sessions.into_iter().map(|s| (s.account().id.clone(), s)).collect(),
        pin,
        auto: args.auto,
        interactive,
        undelivered: HashMap::new(),
    };
    let mut live = watch.sessions.len();
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let event = tokio::select! {
            event = received.recv() => event,
            () = &mut stop => return Ok(watch.stopped()),
        };
        let Some(event) = event else { break };
        let revoked = matches!(event, WatchEvent::Revoked { .. });
        tokio::select! {
            handled = watch.handle(event) => handled?,
            () = &mut stop => return Ok(watch.stopped()),
        }
        if revoked {
            live = live.saturating_sub(1);
            if live == 0 {
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    // Every watcher ended without a revocation: only an error does that.
    while let Some(ended) = watchers.join_next().await {
        ended.context("the stream task failed")??;
    }
    anyhow::bail!("the event streams ended")
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => tokio::select! {
                () = ctrl_c => {}
                _ = term.recv() => {}
            },
            Err(_) => ctrl_c.await,
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await;
}

impl Watch<'_> {
    fn print(&self, value: serde_json::Value) {
        if let Err(err) = self.ctx.print_json(&value) {
            tracing::warn!(error = %err, "could not print");
        }
    }

    fn who(&self, account: &AccountId) -> String {
        self.sessions.get(account).map_or_else(
            || account.to_string(),
            |s| {
                let a = s.account();
                format!("{} at {}", a.username, a.issuer.as_str().trim_end_matches('/'))
            },
        )
    }

    fn stopped(&self) -> ExitCode {
        if self.ctx.json {
            self.print(json!({ "event": "stopped" }));
        } else {
            println!("stopped");
        }
        ExitCode::SUCCESS
    }

    async fn handle(&mut self, event: WatchEvent) -> anyhow::Result<()> {
        if self.ctx.json {
            self.print(serde_json::to_value(&event).context("encoding an event")?);
        }
        match event {
            WatchEvent::Request { request } => {
                if !self.ctx.json {
                    let account = self.sessions.get(&request.account).map(Session::account);
                    println!("{}", show::request(&request, account, system_clock()()));
                }
                self.decide(&request).await?;
            }
            WatchEvent::Revoked { account } => {
                eprintln!(
                    "outband-device: this device was revoked at the server for {} (account {account}): it receives no \
                     more requests; remove it with `outband-device remove {account}`",
                    self.who(&account)
                );
            }
            WatchEvent::Connected { account } => {
                if !self.ctx.json {
                    println!("connected: {}", self.who(&account));
                }
                self.retry_undelivered(&account).await?;
            }
            WatchEvent::Removed { id, .. } if self.ctx.json => {
                self.undelivered.remove(&id);
            }
            _ if self.ctx.json => {}
            WatchEvent::Disconnected {
                account,
                error,
                retry_in_ms,
            } => println!(
                "disconnected: {} ({error}); reconnecting in {:.1} s",
                self.who(&account),
                // Whole milliseconds to seconds for display only.
                retry_in_ms as f64 / 1000.0
            ),
            WatchEvent::Removed { id, reason, .. } => {
                self.undelivered.remove(&id);
                println!("request {id} {}", show::removal(reason));
            }
            WatchEvent::Rejected { id, error, .. } => {
                println!("request {id} REJECTED, not shown: {error}");
            }
        }
        Ok(())
    }

    /// Decides again, after a reconnect, the `--auto` decisions of `account`
    /// that did not reach the server.
    async fn retry_undelivered(&mut self, account: &AccountId) -> anyhow::Result<()> {
        let mut retry: Vec<VerifiedRequest> = Vec::new();
        self.undelivered.retain(|_, request| {
            let mine = &request.account == account;
            if mine {
                retry.push(request.clone());
            }
            !mine
        });
        for request in &retry {
            self.decide(request).await?;
        }
        Ok(())
    }

    /// Decides a shown request: by itself (`--auto`), by asking, or not at all.
    async fn decide(&mut self, request: &VerifiedRequest) -> anyhow::Result<()> {
        let Some(session) = self.sessions.get(&request.account) else {
            return Ok(());
        };
        let (decision, pin, number) = match self.auto {
            Some(Auto::Approve) if request.number_matching => {
                self.note(
                    request,
                    "needs the number the terminal shows: approve it with `outband-device approve <id> --number N`",
                );
                return Ok(());
            }
            Some(Auto::Approve) => (Decision::Approve, Some(self.pin.clone()), None),
            Some(Auto::Deny) => (Decision::Deny, Some(self.pin.clone()), None),
            None if self.interactive => match self.ask(request).await? {
                Some(answer) => answer,
                None => {
                    println!("skipped request {}", request.id);
                    return Ok(());
                }
            },
            None => return Ok(()),
        };
        let result = session.decide(request, decision, pin.as_ref(), number.as_deref()).await;
        if self.auto.is_some() && matches!(result, Err(Error::Network(_))) {
            self.undelivered.insert(request.id.clone(), request.clone());
        }
        match result {
            Ok(outcome) if self.ctx.json => self.print(json!({
                "event": "decision", "account": request.account, "id": outcome.id,
                "decision": decision, "state": outcome.state,
            })),
            Ok(outcome) => println!("{} request {}", outcome.state, outcome.id),
            Err(err) if self.ctx.json => self.print(json!({
                "event": "decision_failed", "account": request.account, "id": request.id,
                "decision": decision, "code": err.code(), "error": err.to_string(),
            })),
            Err(err) => eprintln!("outband-device: could not {decision} request {}: {err}", request.id),
        }
        Ok(())
    }

    fn note(&self, request: &VerifiedRequest, why: &str) {
        if self.ctx.json {
            self.print(json!({ "event": "skipped", "account": request.account, "id": request.id, "why": why }));
        } else {
            println!("request {} {why}", request.id);
        }
    }

    /// Asks y/n (f: fraud) and, to approve, the PIN (and the number when needed).
    async fn ask(&self, request: &VerifiedRequest) -> anyhow::Result<Option<(Decision, Option<Pin>, Option<String>)>> {
        let answer = read_line("Approve? [y]es, [n]o, [f]raud (not me), anything else skips: ").await?;
        let decision = match answer.trim().to_ascii_lowercase().as_str() {
            "y" | "yes" => Decision::Approve,
            "n" | "no" => Decision::Deny,
            "f" | "fraud" => Decision::DenyFraud,
            _ => return Ok(None),
        };
        if decision != Decision::Approve {
            return Ok(Some((decision, None, None)));
        }
        let number = if request.number_matching {
            Some(read_line("Number shown on the terminal: ").await?.trim().to_owned())
        } else {
            None
        };
        let pin = if self.ctx.pin.asks() {
            match self.ctx.pin.get("PIN to approve: ").await {
                Ok(pin) => pin,
                Err(err) => {
                    eprintln!("outband-device: {err:#}");
                    return Ok(None);
                }
            }
        } else {
            self.pin.clone()
        };
        Ok(Some((decision, Some(pin), number)))
    }
}

/// Prints `prompt` and reads a line from stdin (empty at end of input).
async fn read_line(prompt: &str) -> anyhow::Result<String> {
    print!("{prompt}");
    let _ = std::io::stdout().flush();
    tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).map(|_| line)
    })
    .await
    .context("reading the answer")?
    .context("cannot read the answer")
}
