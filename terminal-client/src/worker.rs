//! The TUI's network side: every CIBA call runs in a tokio task that reports
//! back with [`Action`]s, so drawing never waits on the bank. One sale at a
//! time: tasks take the `busy` lock, so a sale typed while a journaled one is
//! being resumed starts after it.
//!
//! Every sale goes through the journal (`CibaClient::start_journaled`); a
//! sale whose wait failed stays open there and is resumed by `ResumeSales`
//! (R on the error screen, or the next start).

use std::sync::{Arc, Mutex};

use outband_protocol::{DeliveryMode, TokenResponse};
use outband_terminal::{
    Amount, CancelResult, CancelToken, CibaClient, Journal, JournalEntry, NotificationListener, Outcome,
    RecoverSaleError, Recovery, RefundOutcome, RequestError, SaleState, Settlement, Started, WaitEvent,
};
use tokio::sync::mpsc::UnboundedSender;

use crate::action::{Action, Lookup, OpenSale, SaleInfo, SaleOrder, SaleResult};
use crate::cli::Settings;

/// Starts the network work that actions ask for.
pub struct Worker {
    ctx: Arc<Context>,
}

/// What the tasks share.
struct Context {
    settings: Settings,
    journal: Journal,
    tx: UnboundedSender<Action>,
    /// The ping/push listener, bound on first use.
    listener: tokio::sync::Mutex<Option<NotificationListener>>,
    /// One sale at a time.
    busy: tokio::sync::Mutex<()>,
    /// Cancels the sale being waited for.
    cancel: Mutex<CancelToken>,
}

impl Worker {
    /// A worker that reports on `tx`.
    pub fn new(settings: Settings, journal: Journal, tx: UnboundedSender<Action>) -> Self {
        Self {
            ctx: Arc::new(Context {
                settings,
                journal,
                tx,
                listener: tokio::sync::Mutex::new(None),
                busy: tokio::sync::Mutex::new(()),
                cancel: Mutex::new(CancelToken::new()),
            }),
        }
    }

    /// Starts what `action` asks of the network; ignores the rest.
    pub fn handle(&mut self, action: &Action) {
        match action {
            Action::StartSale(order) => {
                let ctx = self.ctx.clone();
                let order = SaleOrder {
                    sale: order.sale.clone(),
                    mode: order.mode,
                };
                tokio::spawn(async move { ctx.run_sale(order).await });
            }
            Action::ResumeSales => {
                let ctx = self.ctx.clone();
                tokio::spawn(async move { ctx.resume_sales().await });
            }
            Action::CheckJournal => {
                let found = match self.ctx.journal.unresolved() {
                    Ok(entries) => Action::RecoveryFound(entries.iter().map(OpenSale::new).collect()),
                    Err(err) => Action::Notice(format!("Cannot read the sale journal: {err}")),
                };
                self.ctx.send(found);
            }
            Action::Discover => {
                let ctx = self.ctx.clone();
                tokio::spawn(async move { ctx.discover().await });
            }
            Action::LookupSales(reference) => {
                let ctx = self.ctx.clone();
                let reference = reference.clone();
                tokio::spawn(async move { ctx.lookup(reference).await });
            }
            Action::Refund { payment_id, amount } => {
                let ctx = self.ctx.clone();
                let (payment_id, amount) = (payment_id.clone(), *amount);
                tokio::spawn(async move { ctx.refund(payment_id, amount).await });
            }
            Action::CancelSale => {
                if let Ok(cancel) = self.ctx.cancel.lock() {
                    cancel.cancel();
                }
            }
            _ => {}
        }
    }
}

impl Context {
    fn send(&self, action: Action) {
        // The receiver is gone only when the app is quitting.
        let _ = self.tx.send(action);
    }

    /// A fresh cancel token for the sale about to wait.
    fn new_cancel(&self) -> CancelToken {
        let token = CancelToken::new();
        if let Ok(mut cancel) = self.cancel.lock() {
            *cancel = token.clone();
        }
        token
    }

    async fn client(&self, mode: DeliveryMode) -> anyhow::Result<CibaClient> {
        let mut listener = self.listener.lock().await;
        self.settings
            .client_for(mode, self.settings.sale.listen, &mut listener)
            .await
    }

    async fn run_sale(&self, order: SaleOrder) {
        let _busy = self.busy.lock().await;
        let cancel = self.new_cancel();
        let client = match self.client(order.mode).await {
            Ok(client) => client,
            Err(err) => return self.send(failed(None, format!("{err:#}"), None, false)),
        };
        let (started, entry) = match client.start_journaled(&self.journal, order.sale).await {
            Ok(started) => started,
            Err(err) => {
                tracing::warn!(error = %chain(&err), "the sale could not be started");
                let (error, description) = describe_error(&err);
                return self.send(failed(None, error, description, false));
            }
        };
        self.wait_and_finish(&client, &started, entry, &cancel).await;
    }

    async fn wait_and_finish(
        &self,
        client: &CibaClient,
        started: &Started,
        mut entry: JournalEntry,
        cancel: &CancelToken,
    ) {
        let info = SaleInfo::new(started, &entry);
        self.send(Action::Started(Box::new(info.clone())));
        let waited = client
            .wait_with(started, cancel, |event| {
                if let Some(text) = describe_event(&event) {
                    self.send(Action::Progress(text));
                }
            })
            .await;
        let result = match waited {
            Ok(outcome) => self.finish(client, started, &mut entry, info, outcome).await,
            Err(err) => {
                // The request may still be approved: the journal keeps it open.
                tracing::warn!(error = %chain(&err), code = %info.code, "waiting failed; the sale stays open");
                let (error, description) = describe_request_error(&err);
                failed(Some(info), error, description, true)
            }
        };
        self.send(result);
    }

    /// Closes the sale in the journal and says how it ended.
    async fn finish(
        &self,
        client: &CibaClient,
        started: &Started,
        entry: &mut JournalEntry,
        sale: SaleInfo,
        outcome: Outcome,
    ) -> Action {
        let now = client.now();
        let (state, detail, result) = match outcome {
            Outcome::Approved(tokens) => return self.settle(client, started, entry, sale, &tokens).await,
            Outcome::Denied(reason) => (SaleState::Denied, reason.clone(), SaleResult::Denied { sale, reason }),
            Outcome::Expired => (SaleState::Expired, None, SaleResult::Expired { sale }),
            Outcome::Failed(error) => {
                let detail = error.error_description.clone();
                let result = SaleResult::Failed {
                    sale: Some(sale),
                    error: error.error.to_string(),
                    description: error.error_description,
                    open: false,
                };
                (SaleState::Failed, detail, result)
            }
            Outcome::Cancelled => {
                let detail = match client.cancel(started).await {
                    Ok(CancelResult::Cancelled) => "The request was withdrawn at the bank.".to_owned(),
                    Ok(CancelResult::AlreadyFinished) => "The bank had already closed the request.".to_owned(),
                    Err(err) => format!(
                        "Withdrawing it at the bank failed ({}); it expires on its own.",
                        chain(&err)
                    ),
                };
                let result = SaleResult::Cancelled {
                    sale,
                    detail: detail.clone(),
                };
                (SaleState::Cancelled, Some(detail), result)
            }
        };
        if let Err(err) = self.journal.resolve(entry, state, detail, now) {
            tracing::error!(error = %chain(&err), "cannot close the sale in the journal");
            self.send(Action::Notice(format!("Journal: {err}")));
        }
        Action::Finished(Box::new(result))
    }

    /// Executes the approved payment (once: the journal holds its idempotency key).
    async fn settle(
        &self,
        client: &CibaClient,
        started: &Started,
        entry: &mut JournalEntry,
        sale: SaleInfo,
        tokens: &TokenResponse,
    ) -> Action {
        self.send(Action::Progress("Approved: executing the payment…".to_owned()));
        let result = match client.settle(&self.journal, entry, started, tokens).await {
            Ok(Settlement::Paid(receipt) | Settlement::ApprovedOnly(receipt)) => SaleResult::Approved(receipt),
            Ok(Settlement::Refused { error, description }) => SaleResult::Failed {
                sale: Some(sale),
                error: format!("payment refused: {error}"),
                description,
                open: false,
            },
            Err(err) => {
                tracing::warn!(error = %chain(&err), code = %sale.code, "the payment's outcome is unknown");
                SaleResult::Failed {
                    sale: Some(sale),
                    error: "the payment's outcome is unknown".to_owned(),
                    description: Some(chain(&err)),
                    open: true,
                }
            }
        };
        Action::Finished(Box::new(result))
    }

    /// The journal's sales and the bank's payments with `reference`.
    async fn lookup(&self, reference: String) {
        let sales = match self.journal.find(&reference) {
            Ok(entries) => entries.iter().map(OpenSale::new).collect(),
            Err(err) => {
                tracing::warn!(error = %chain(&err), "cannot read the journal");
                Vec::new()
            }
        };
        let payments = match self.settings.client(None) {
            Ok(client) => client
                .payments_by_reference(&reference)
                .await
                .map_err(|err| chain(&err)),
            Err(err) => Err(format!("{err:#}")),
        };
        self.send(Action::SalesFound(Box::new(Lookup {
            reference,
            sales,
            payments,
        })));
    }

    /// Refunds a payment.
    async fn refund(&self, payment_id: String, amount: Option<Amount>) {
        let refunded = match self.settings.client(None) {
            Ok(client) => match client.refund_journaled(&self.journal, &payment_id, amount).await {
                Ok(RefundOutcome::Refunded(refund)) | Ok(RefundOutcome::Recovered { refund, matches: true }) => {
                    Ok(refund)
                }
                Ok(RefundOutcome::Recovered { refund, .. }) => Err(format!(
                    "an interrupted refund of {} {} was completed instead (refund {}); refund again if more is due",
                    refund.currency, refund.amount, refund.refund_id
                )),
                Err(err) => Err(chain(&err)),
            },
            Err(err) => Err(format!("{err:#}")),
        };
        if let Err(why) = &refunded {
            tracing::warn!(payment_id, error = %why, "refund failed");
        }
        self.send(Action::Refunded(refunded));
    }

    /// Reads the server's discovery document and reports what the sale
    /// screen needs of it; a server that cannot be reached yet is reported
    /// when the first sale fails.
    async fn discover(&self) {
        let supported = match self.settings.client(None) {
            Ok(client) => client.supports_user_code().await,
            Err(err) => return tracing::warn!(error = %format!("{err:#}"), "no client for discovery"),
        };
        match supported {
            Ok(user_code) => self.send(Action::ServerFeatures { user_code }),
            Err(err) => tracing::warn!(error = %chain(&err), "discovery failed"),
        }
    }

    /// Picks up the sales an earlier run (or a failed wait) left open.
    async fn resume_sales(&self) {
        let _busy = self.busy.lock().await;
        let entries = match self.journal.unresolved() {
            Ok(entries) => entries,
            Err(err) => return self.send(Action::Notice(format!("Cannot read the sale journal: {err}"))),
        };
        for mut entry in entries {
            let reference = entry.display_reference().unwrap_or("(not started)").to_owned();
            let client = match self.client(entry.mode).await {
                Ok(client) => client,
                Err(err) => {
                    self.send(Action::Notice(format!("Sale {reference} stays open: {err:#}")));
                    continue;
                }
            };
            match client.recover(&entry).await {
                Ok(Recovery::Wait(started)) => {
                    tracing::info!(reference, "resumed a journaled sale");
                    let cancel = self.new_cancel();
                    self.wait_and_finish(&client, &started, entry, &cancel).await;
                }
                Ok(Recovery::Pay { started, tokens }) => {
                    let info = SaleInfo::new(&started, &entry);
                    self.send(Action::Started(Box::new(info.clone())));
                    let result = self.settle(&client, &started, &mut entry, info, &tokens).await;
                    self.send(result);
                }
                Ok(Recovery::Finished { started, outcome }) => {
                    let info = SaleInfo::new(&started, &entry);
                    let result = self.finish(&client, &started, &mut entry, info, outcome).await;
                    self.send(result);
                }
                Ok(Recovery::Lost) => {
                    if let Err(err) = self.journal.resolve(&mut entry, SaleState::Lost, None, client.now()) {
                        tracing::error!(error = %chain(&err), "cannot close the sale in the journal");
                    }
                    self.send(Action::Notice(format!(
                        "Sale {reference} was interrupted before the bank answered: it can never be charged."
                    )));
                }
                Err(err) => {
                    tracing::warn!(error = %chain(&err), reference, "cannot resume a journaled sale");
                    self.send(Action::Notice(format!("Sale {reference} stays open: {err}")));
                }
            }
        }
    }
}

fn failed(sale: Option<SaleInfo>, error: String, description: Option<String>, open: bool) -> Action {
    Action::Finished(Box::new(SaleResult::Failed {
        sale,
        error,
        description,
        open,
    }))
}

/// The OAuth error code and description, or the error's text.
fn describe_error(err: &RecoverSaleError) -> (String, Option<String>) {
    match err {
        RecoverSaleError::Request(err) => describe_request_error(err),
        other => (chain(other), None),
    }
}

fn describe_request_error(err: &RequestError) -> (String, Option<String>) {
    match err {
        RequestError::Oauth { error, .. } => (error.error.to_string(), error.error_description.clone()),
        other => (chain(other), None),
    }
}

/// An error and its causes, `a: b: c`.
fn chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// A status line for a wait event worth showing.
fn describe_event(event: &WaitEvent) -> Option<String> {
    match event {
        WaitEvent::SlowDown { interval } => Some(format!(
            "The bank asked to poll less often: every {} s now.",
            interval.as_secs()
        )),
        WaitEvent::Notified => Some("The bank has answered.".to_owned()),
        WaitEvent::Refused(why) => Some(format!("Refused the pushed tokens: {why}")),
        WaitEvent::Retrying(why) => Some(format!("Retrying: {why}")),
        _ => None,
    }
}
