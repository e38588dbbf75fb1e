//! # outband-terminal
//!
//! The Outband point-of-sale terminal's CIBA client, with no UI: the `outband-pos`
//! command (and, later, its ratatui screens) drive it, as gitui's UI drives
//! `asyncgit`.
//!
//! Where to start reading:
//! - [`CibaClient`] (built with [`CibaClient::builder`]): discovery, client
//!   authentication ([`ClientAuth`]), [`start`](CibaClient::start) a sale,
//!   [`poll`](CibaClient::poll) / [`wait`](CibaClient::wait) for the outcome,
//!   [`cancel`](CibaClient::cancel) it, or [`pay`](CibaClient::pay) in one call.
//! - [`SaleRequest`], [`Amount`], [`Currency`], [`Iban`]: money in integer minor
//!   units, the binding message and the RFC 9396 `payment_initiation` details.
//! - [`NotificationListener`]: the till's ping/push endpoint, with its bearer check.
//! - [`verify_push_id_token`]: what pushed tokens must prove before they are used.
//! - [`Receipt`]: what the till prints; [`CibaClient::settle`] executes an
//!   approved payment through the payments API ([`Payment`], [`Refund`]) exactly
//!   once, with an idempotency key journaled before the call.
//! - [`ClientTls`]: the till's TLS client certificate and extra trusted CAs
//!   (mutual TLS, RFC 8705): `tls_client_auth` / `self_signed_tls_client_auth`
//!   ([`ClientAuth`]) and certificate-bound tokens.
//! - [`DpopKey`]: the till's DPoP key; with one, token requests and payment
//!   calls carry proofs and the tokens are bound to the till.
//! - [`Journal`]: crash recovery. [`CibaClient::start_journaled`] writes a sale
//!   down before it is sent; [`CibaClient::recover`] picks open sales up after
//!   a restart. Refunds are journaled with their idempotency key too
//!   ([`CibaClient::refund_journaled`]), so a rerun never refunds twice.
//!
//! Time: the wall clock is a [`Clock`] parameter; waiting uses `tokio::time`, so
//! tests pause it.
#![warn(missing_docs)]

mod client;

pub use client::auth::{client_assertion, load_signing_key, ClientAuth, LoadKeyError};
pub use client::cancel::CancelToken;
pub use client::ciba::{
    CancelResult, Outcome, PayError, PollResult, Started, WaitEvent, DEFAULT_INTERVAL, GRACE, SLOW_DOWN,
};
pub use client::clock::{system_clock, Clock};
pub use client::dpop::{DpopKey, LoadDpopKeyError, DPOP_KEY_FILE};
pub use client::journal::{Journal, JournalEntry, JournalError, RecoverSaleError, Recovery, SaleState};
pub use client::notify::{Expected, Notification, NotificationListener, DEFAULT_PATH};
pub use client::payments::{
    new_idempotency_key, payment_body, InstructedAmount, Payment, PaymentError, Refund, PAYMENTS_PATH,
};
pub use client::push::{verify_push_id_token, IdTokenExpectations, VerifyIdTokenError};
pub use client::receipt::{ReadReceiptError, Receipt, TokenSummary};
pub use client::refunds::{RefundEntry, RefundError, RefundOutcome};
pub use client::sale::{Amount, Currency, Iban, ParseSaleError, SaleRequest, MAX_BINDING_MESSAGE, PAYMENT_INITIATION};
pub use client::settle::{SettleError, Settlement};
pub use client::tls::{ClientTls, LoadTlsError};
pub use client::{
    default_http_client, http_client, BuildClientError, CibaClient, CibaClientBuilder, RequestError, PAYMENT_SCOPE,
};
