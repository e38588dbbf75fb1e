//! A sale through CIBA: [`CibaClient::start`] sends the backchannel
//! authentication request
//! ([CIBA Core §7](https://openid.net/specs/openid-client-initiated-backchannel-authentication-core-1_0.html#rfc.section.7)),
//! then the wait depends on the delivery mode: poll the token endpoint
//! (§7.3, §11: `interval`, `slow_down` adds 5 s), wait for a ping and redeem
//! (§10.2), or wait for pushed tokens and check their ID token (§10.3).
//! [`CibaClient::cancel`] withdraws a sale (our server's extension).
//!
//! Waiting uses `tokio::time`, so tests pause time instead of sleeping.

use std::time::Duration;

use outband_protocol::ciba::CIBA_GRANT_TYPE;
use outband_protocol::{
    AuthReqId, BackchannelAuthenticationResponse, BindingMessage, ClientNotificationToken, DeliveryMode, ErrorCode,
    ErrorResponse, PushCallback, TokenResponse,
};
use serde_json::{json, Value};
use tokio::time::{sleep, sleep_until, Instant};

use super::auth::random_token;
use super::cancel::CancelToken;
use super::notify::{Expected, Notification};
use super::payments::PaymentError;
use super::push::{verify_push_id_token, IdTokenExpectations};
use super::receipt::Receipt;
use super::sale::SaleRequest;
use super::{CibaClient, RequestError};

/// What a `slow_down` adds to the poll interval (CIBA Core §11).
pub const SLOW_DOWN: Duration = Duration::from_secs(5);
/// The interval when the server gives none (CIBA Core §7.3).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// How long after the request's expiry the client still waits for the
/// server's last word (an `expired_token` ping or push) before giving up.
pub const GRACE: Duration = Duration::from_secs(10);
/// Lifetime of a signed request object, in seconds (at most 5 minutes).
const REQUEST_OBJECT_LIFETIME: i64 = 300;
/// The discovery name of the backchannel authentication endpoint.
const BACKCHANNEL_ENDPOINT: &str = "backchannel_authentication_endpoint";
/// Transport failures in a row that end a wait.
const MAX_FAILURES: u32 = 3;

/// A sale the server accepted: what the till shows while the customer decides.
#[derive(Debug)]
pub struct Started {
    /// The request's identifier (a secret: never print it).
    pub auth_req_id: AuthReqId,
    /// The sale code, like `CAFE-7Q2K`.
    pub code: String,
    /// The binding message the customer compares, like `CAFE-7Q2K · EUR 12.50`.
    pub binding_message: BindingMessage,
    /// The merchant reference sent as `remittanceInformationUnstructured`.
    pub reference: String,
    /// The number the customer types on the device, for number-matching clients.
    pub number_match: Option<String>,
    /// How long the customer has.
    pub expires_in: Duration,
    /// The poll interval. Public so tests can poll faster than the server allows.
    pub interval: Duration,
    /// The delivery mode.
    pub mode: DeliveryMode,
    /// The sale.
    pub sale: SaleRequest,
    /// When the server answered, on the client's wall clock.
    pub started_unix: i64,
    /// When the server answered, on tokio's clock.
    pub started_at: Instant,
    notification_token: Option<ClientNotificationToken>,
    expected: Option<Expected>,
    /// Rebuilt from the journal after a restart: a ping may have been missed,
    /// so a resumed ping-mode sale polls (the server allows it for ping clients).
    resumed: bool,
}

/// What the journal keeps of a started sale, to rebuild its [`Started`].
pub(crate) struct ResumeParts {
    pub auth_req_id: AuthReqId,
    pub notification_token: Option<ClientNotificationToken>,
    pub code: String,
    pub binding_message: BindingMessage,
    pub reference: String,
    pub mode: DeliveryMode,
    pub sale: SaleRequest,
    pub interval: Duration,
    pub started_unix: i64,
    pub expires_at: i64,
}

impl Started {
    /// A sale started by an earlier run, rebuilt on `client` (whose wall clock
    /// says how much of its lifetime is left). Ping and push sales register
    /// their notification token with the client's listener again.
    pub(crate) fn resume(client: &CibaClient, parts: ResumeParts) -> Result<Self, RequestError> {
        let now = client.now();
        let expected = match (&parts.notification_token, client.listener()) {
            (Some(token), Some(listener)) => Some(listener.expect(token.clone())),
            (Some(_), None) if parts.mode == DeliveryMode::Push => return Err(RequestError::ListenerGone),
            _ => None,
        };
        let lifetime = u64::try_from(parts.expires_at.saturating_sub(parts.started_unix)).unwrap_or(0);
        let elapsed = Duration::from_secs(u64::try_from(now.saturating_sub(parts.started_unix)).unwrap_or(0));
        // The deadline on tokio's clock is what matters; when the monotonic
        // clock cannot go back that far, count what is left from now instead.
        let (started_at, expires_in, started_unix) = match Instant::now().checked_sub(elapsed) {
            Some(at) => (at, Duration::from_secs(lifetime), parts.started_unix),
            None => (
                Instant::now(),
                Duration::from_secs(u64::try_from(parts.expires_at.saturating_sub(now)).unwrap_or(0)),
                now,
            ),
        };
        Ok(Self {
            auth_req_id: parts.auth_req_id,
            code: parts.code,
            binding_message: parts.binding_message,
            reference: parts.reference,
            number_match: None,
            expires_in,
            interval: parts.interval,
            mode: parts.mode,
            sale: parts.sale,
            started_unix,
            started_at,
            notification_token: parts.notification_token,
            expected,
            resumed: true,
        })
    }

    /// An approved sale rebuilt from the journal: nothing to wait for, so no
    /// listener is needed.
    pub(crate) fn resume_approved(client: &CibaClient, parts: ResumeParts) -> Self {
        Self {
            auth_req_id: parts.auth_req_id,
            code: parts.code,
            binding_message: parts.binding_message,
            reference: parts.reference,
            number_match: None,
            expires_in: Duration::from_secs(u64::try_from(parts.expires_at.saturating_sub(client.now())).unwrap_or(0)),
            interval: parts.interval,
            mode: parts.mode,
            sale: parts.sale,
            started_unix: parts.started_unix,
            started_at: Instant::now(),
            notification_token: None,
            expected: None,
            resumed: true,
        }
    }

    /// When the request expires, seconds since the epoch.
    pub fn expires_at_unix(&self) -> i64 {
        self.started_unix
            .saturating_add(i64::try_from(self.expires_in.as_secs()).unwrap_or(i64::MAX))
    }

    /// Whether this sale was rebuilt from the journal after a restart.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// When the request expires, on tokio's clock.
    pub fn deadline(&self) -> Instant {
        self.started_at + self.expires_in
    }

    /// Time left for the customer.
    pub fn remaining(&self) -> Duration {
        self.deadline().saturating_duration_since(Instant::now())
    }

    /// The bearer the server must present at the notification endpoint (ping and push).
    pub fn client_notification_token(&self) -> Option<&ClientNotificationToken> {
        self.notification_token.as_ref()
    }
}

/// How a sale ended.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// The customer approved: the tokens.
    Approved(Box<TokenResponse>),
    /// The customer (or the bank) refused; the server's description.
    Denied(Option<String>),
    /// Nobody answered in time.
    Expired,
    /// The till cancelled the wait.
    Cancelled,
    /// The server ended the request with another error.
    Failed(ErrorResponse),
}

/// One poll of the token endpoint.
#[derive(Clone, Debug)]
pub enum PollResult {
    /// `authorization_pending`.
    Pending,
    /// `slow_down`: poll less often.
    SlowDown,
    /// The request is over.
    Finished(Outcome),
}

/// Progress while waiting, for a UI to show.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitEvent {
    /// The server said `authorization_pending`; the next poll is in `next_poll_in`.
    Pending {
        /// Until the next poll.
        next_poll_in: Duration,
    },
    /// The server said `slow_down`; the interval is now `interval`.
    SlowDown {
        /// The new interval.
        interval: Duration,
    },
    /// A ping or push for this sale arrived.
    Notified,
    /// Pushed tokens were refused (a bad ID token); still waiting.
    Refused(String),
    /// A call failed on the way (network, 5xx); trying again.
    Retrying(String),
}

/// Why [`CibaClient::pay`] did not end in a receipt.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PayError {
    /// The customer or the bank refused.
    #[error("the payment was denied{}", .0.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
    Denied(Option<String>),
    /// Nobody answered in time.
    #[error("the payment request expired before the customer answered")]
    Expired,
    /// The till cancelled.
    #[error("the sale was cancelled")]
    Cancelled,
    /// The server ended the request with another error.
    #[error("the payment failed: {}", .0.error)]
    Failed(ErrorResponse),
    /// A call failed.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The approved payment could not be executed.
    #[error("the payment was approved but not executed: {0}")]
    Payment(#[source] PaymentError),
}

/// The answer of the cancel endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CancelResult {
    /// The request was pending and is now cancelled.
    Cancelled,
    /// The request had already been decided, expired or redeemed (409).
    AlreadyFinished,
}

impl CibaClient {
    /// Sends the sale to the backchannel authentication endpoint.
    pub async fn start(&self, sale: SaleRequest) -> Result<Started, RequestError> {
        sale.validate()?;
        let metadata = self.discover().await?;
        let endpoint = metadata
            .backchannel_authentication_endpoint
            .as_deref()
            .ok_or_else(|| RequestError::Discovery("the server has no backchannel_authentication_endpoint".into()))?;
        let endpoint = self.endpoint(&metadata, BACKCHANNEL_ENDPOINT, endpoint).to_owned();
        if sale.user_code.is_some() && metadata.backchannel_user_code_parameter_supported != Some(true) {
            return Err(RequestError::UserCodeNotSupported);
        }
        let code = sale.new_code();
        let binding_message = sale.binding_message(&code);
        let reference = sale.reference.clone().unwrap_or_else(|| code.clone());
        let mode = self.mode();
        let notification_token = (mode != DeliveryMode::Poll).then(|| ClientNotificationToken::new(random_token()));
        // Registered before the request is sent: the callback may beat the response.
        let expected = match (&notification_token, self.listener()) {
            (Some(token), Some(listener)) => Some(listener.expect(token.clone())),
            (Some(_), None) => return Err(RequestError::ListenerGone),
            _ => None,
        };
        let mut params = serde_json::Map::new();
        params.insert("scope".into(), json!(self.scope()));
        params.insert("login_hint".into(), json!(sale.customer));
        params.insert("binding_message".into(), json!(binding_message));
        params.insert("authorization_details".into(), sale.authorization_details(&reference));
        if let Some(expiry) = sale.requested_expiry {
            params.insert("requested_expiry".into(), json!(expiry.as_secs()));
        }
        if let Some(token) = &notification_token {
            params.insert("client_notification_token".into(), json!(token.secret()));
        }
        if let Some(user_code) = &sale.user_code {
            params.insert("user_code".into(), json!(user_code.secret()));
        }
        let form = self.backchannel_form(params)?;
        let response: BackchannelAuthenticationResponse =
            self.post_form("backchannel authentication", &endpoint, form).await?;
        tracing::info!(code = %code, mode = %mode, expires_in = response.expires_in, "sale started");
        Ok(Started {
            auth_req_id: response.auth_req_id,
            code,
            binding_message,
            reference,
            number_match: response.number_match,
            expires_in: Duration::from_secs(response.expires_in),
            interval: response.interval.map_or(DEFAULT_INTERVAL, Duration::from_secs),
            mode,
            sale,
            started_unix: self.now(),
            started_at: Instant::now(),
            notification_token,
            expected,
            resumed: false,
        })
    }

    /// The form of a backchannel request: the parameters themselves, or one
    /// signed `request` object holding them (§7.1.1) when a key is configured.
    fn backchannel_form(
        &self,
        params: serde_json::Map<String, Value>,
    ) -> Result<Vec<(&'static str, String)>, RequestError> {
        let Some(key) = self.request_key() else {
            return Ok(params
                .into_iter()
                .filter_map(|(name, value)| {
                    let name = FORM_NAMES.iter().find(|n| **n == name)?;
                    let text = match value {
                        Value::String(text) => text,
                        other => other.to_string(),
                    };
                    Some((*name, text))
                })
                .collect());
        };
        let now = self.now();
        let mut claims = params;
        claims.insert("iss".into(), json!(self.client_id()));
        claims.insert("aud".into(), json!(self.issuer()));
        claims.insert("iat".into(), json!(now));
        claims.insert("nbf".into(), json!(now));
        claims.insert("exp".into(), json!(now + REQUEST_OBJECT_LIFETIME));
        claims.insert("jti".into(), json!(random_token()));
        Ok(vec![("request", key.sign(Some("JWT"), &claims)?)])
    }

    /// Polls the token endpoint once with the CIBA grant.
    pub async fn poll(&self, started: &Started) -> Result<PollResult, RequestError> {
        let form = vec![
            ("grant_type", CIBA_GRANT_TYPE.to_owned()),
            ("auth_req_id", started.auth_req_id.secret().to_owned()),
        ];
        match self.post_token::<TokenResponse>(form).await {
            Ok(tokens) => Ok(PollResult::Finished(Outcome::Approved(Box::new(tokens)))),
            Err(RequestError::Oauth { error, status, .. }) if status < 500 => Ok(match error.error {
                ErrorCode::AuthorizationPending => PollResult::Pending,
                ErrorCode::SlowDown => PollResult::SlowDown,
                ErrorCode::ExpiredToken => PollResult::Finished(Outcome::Expired),
                ErrorCode::AccessDenied => PollResult::Finished(Outcome::Denied(error.error_description)),
                _ => PollResult::Finished(Outcome::Failed(error)),
            }),
            Err(other) => Err(other),
        }
    }

    /// Waits for the sale's outcome in the client's delivery mode.
    pub async fn wait(&self, started: &Started, cancel: &CancelToken) -> Result<Outcome, RequestError> {
        self.wait_with(started, cancel, |_| {}).await
    }

    /// [`wait`](Self::wait), reporting progress to `on_event`.
    pub async fn wait_with(
        &self,
        started: &Started,
        cancel: &CancelToken,
        on_event: impl FnMut(WaitEvent),
    ) -> Result<Outcome, RequestError> {
        match started.mode {
            DeliveryMode::Poll => self.wait_poll_with(started, cancel, on_event).await,
            DeliveryMode::Ping if started.resumed => self.wait_poll_with(started, cancel, on_event).await,
            DeliveryMode::Ping | DeliveryMode::Push => self.wait_notified(started, cancel, on_event).await,
        }
    }

    /// Polls every `interval` (plus 5 s per `slow_down`) until the sale ends.
    pub async fn wait_poll(&self, started: &Started, cancel: &CancelToken) -> Result<Outcome, RequestError> {
        self.wait_poll_with(started, cancel, |_| {}).await
    }

    /// [`wait_poll`](Self::wait_poll), reporting progress to `on_event`.
    pub async fn wait_poll_with(
        &self,
        started: &Started,
        cancel: &CancelToken,
        mut on_event: impl FnMut(WaitEvent),
    ) -> Result<Outcome, RequestError> {
        let mut interval = started.interval;
        let mut failures = 0;
        loop {
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Outcome::Cancelled),
                () = sleep(interval) => {}
            }
            let polled = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Outcome::Cancelled),
                polled = self.poll(started) => polled,
            };
            match polled {
                Ok(PollResult::Finished(outcome)) => return Ok(outcome),
                Ok(PollResult::Pending) => on_event(WaitEvent::Pending { next_poll_in: interval }),
                Ok(PollResult::SlowDown) => {
                    interval += SLOW_DOWN;
                    tracing::debug!(interval_secs = interval.as_secs(), "slow_down");
                    on_event(WaitEvent::SlowDown { interval });
                }
                Err(err) if err.is_transient() && failures < MAX_FAILURES => {
                    failures += 1;
                    on_event(WaitEvent::Retrying(err.to_string()));
                    continue;
                }
                Err(err) => return Err(err),
            }
            failures = 0;
            if Instant::now() >= started.deadline() + GRACE {
                return Ok(Outcome::Expired);
            }
        }
    }

    /// Waits for a ping (then redeems) or a push (then checks its ID token).
    async fn wait_notified(
        &self,
        started: &Started,
        cancel: &CancelToken,
        mut on_event: impl FnMut(WaitEvent),
    ) -> Result<Outcome, RequestError> {
        let expected = started.expected.as_ref().ok_or(RequestError::ListenerGone)?;
        let give_up = started.deadline() + GRACE;
        let mut refused = None;
        loop {
            let notification = tokio::select! {
                biased;
                () = cancel.cancelled() => return Ok(Outcome::Cancelled),
                received = expected.recv() => received.ok_or(RequestError::ListenerGone)?,
                () = sleep_until(give_up) => {
                    return match (started.mode, refused) {
                        (_, Some(why)) => Err(RequestError::Tokens(why)),
                        // The ping may have been lost: ask the token endpoint.
                        (DeliveryMode::Ping, None) => match self.poll(started).await? {
                            PollResult::Finished(outcome) => Ok(outcome),
                            PollResult::Pending | PollResult::SlowDown => Ok(Outcome::Expired),
                        },
                        _ => Ok(Outcome::Expired),
                    };
                }
            };
            let push = match notification {
                Notification::Ping(ping) if ping.auth_req_id == started.auth_req_id => {
                    on_event(WaitEvent::Notified);
                    if let PollResult::Finished(outcome) = self.poll(started).await? {
                        return Ok(outcome);
                    }
                    continue;
                }
                Notification::Push(push) if push_auth_req_id(&push) == &started.auth_req_id => *push,
                _ => {
                    tracing::warn!("a notification for another request was ignored");
                    continue;
                }
            };
            on_event(WaitEvent::Notified);
            match push {
                PushCallback::Error {
                    error,
                    error_description,
                    ..
                } => {
                    return Ok(match error {
                        ErrorCode::AccessDenied => Outcome::Denied(error_description),
                        ErrorCode::ExpiredToken => Outcome::Expired,
                        error => Outcome::Failed(ErrorResponse {
                            error,
                            error_description,
                        }),
                    })
                }
                PushCallback::Tokens { tokens, .. } => match self.check_pushed_tokens(started, &tokens).await? {
                    Ok(()) => return Ok(Outcome::Approved(Box::new(tokens))),
                    Err(why) => {
                        tracing::warn!(reason = %why, "pushed tokens refused");
                        on_event(WaitEvent::Refused(why.clone()));
                        refused = Some(why);
                    }
                },
            }
        }
    }

    /// Checks pushed tokens against the server's current keys; the inner error
    /// says why they were refused.
    async fn check_pushed_tokens(
        &self,
        started: &Started,
        tokens: &TokenResponse,
    ) -> Result<Result<(), String>, RequestError> {
        let metadata = self.discover().await?;
        let keys = self.server_keys().await?;
        let algs = Self::id_token_algs(&metadata);
        let expect = IdTokenExpectations {
            issuer: self.issuer(),
            client_id: self.client_id().as_str(),
            auth_req_id: &started.auth_req_id,
            algs: &algs,
            now: self.now(),
        };
        Ok(verify_push_id_token(tokens, &keys, &expect)
            .map(|_| ())
            .map_err(|e| e.to_string()))
    }

    /// Withdraws a pending sale (`POST /bc-authorize/cancel`, our server's extension).
    pub async fn cancel(&self, started: &Started) -> Result<CancelResult, RequestError> {
        let metadata = self.discover().await?;
        let endpoint = metadata
            .backchannel_authentication_endpoint
            .as_deref()
            .ok_or_else(|| RequestError::Discovery("the server has no backchannel_authentication_endpoint".into()))?;
        let endpoint = self.endpoint(&metadata, BACKCHANNEL_ENDPOINT, endpoint);
        let url = format!("{}/cancel", endpoint.trim_end_matches('/'));
        let form = vec![("auth_req_id", started.auth_req_id.secret().to_owned())];
        match self.post_form::<Value>("cancel", &url, form).await {
            Ok(_) => Ok(CancelResult::Cancelled),
            Err(RequestError::Oauth { status: 409, .. }) => Ok(CancelResult::AlreadyFinished),
            Err(err) => Err(err),
        }
    }

    /// The receipt of an approved sale (the granted token's claims, until the
    /// payments API exists).
    pub fn receipt(&self, started: &Started, tokens: &TokenResponse) -> Result<Receipt, RequestError> {
        Receipt::new(started, tokens, self.now()).map_err(|e| RequestError::Tokens(e.to_string()))
    }

    /// The whole sale without a journal: start, wait, execute the payment
    /// and the receipt (the grant's on a server without the payments API).
    /// When `cancel` fires, the sale is withdrawn at the server before this
    /// returns.
    pub async fn pay(&self, sale: SaleRequest, cancel: &CancelToken) -> Result<Receipt, PayError> {
        let started = self.start(sale).await?;
        match self.wait(&started, cancel).await? {
            Outcome::Approved(tokens) => {
                let receipt = self.receipt(&started, &tokens)?;
                let key = random_token();
                match self
                    .execute_payment(&tokens, &started.sale, &started.reference, &key)
                    .await
                {
                    Ok(payment) => Ok(receipt.with_payment(payment)),
                    Err(PaymentError::NotAvailable) => Ok(receipt),
                    Err(err) => Err(PayError::Payment(err)),
                }
            }
            Outcome::Denied(why) => Err(PayError::Denied(why)),
            Outcome::Expired => Err(PayError::Expired),
            Outcome::Failed(error) => Err(PayError::Failed(error)),
            Outcome::Cancelled => {
                self.cancel(&started).await?;
                Err(PayError::Cancelled)
            }
        }
    }
}

fn push_auth_req_id(push: &PushCallback) -> &AuthReqId {
    match push {
        PushCallback::Error { auth_req_id, .. } | PushCallback::Tokens { auth_req_id, .. } => auth_req_id,
    }
}

/// The form parameter names a backchannel request may carry.
const FORM_NAMES: [&str; 7] = [
    "scope",
    "login_hint",
    "binding_message",
    "authorization_details",
    "requested_expiry",
    "client_notification_token",
    "user_code",
];
