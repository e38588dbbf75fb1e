//! # outband-authenticator-core
//!
//! The Outband authentication device without a GUI: everything an
//! authenticator does, for the desktop app (Tauri) and the headless
//! `outband-device` alike. It speaks the AS's device API
//! (`docs/device-api.md`).
//!
//! ## Where to start reading
//! - [`Invite`] (`invite.rs`): the `outband://enroll` link, a bare code, or a QR image.
//! - [`Authenticator`] (`accounts.rs`): the data directory; enroll, list, unlock, remove.
//! - `keystore.rs`: the PIN ([`Pin`]), sealing the key under it (Argon2id +
//!   AES-256-GCM), the 0600 files or the OS keyring.
//! - [`Session`] (`session.rs`): an unlocked account; HTTP with DPoP and the
//!   server's nonces is in `api.rs`, request verification in `request.rs`.
//! - [`Session::watch`] (`stream.rs`): the live Server-Sent Events stream.
//! - [`Session::decide`] (`decision.rs`): the signed decision; [`HistoryEntry`] (`history.rs`).
//! - [`Session::grants`], [`Session::revoke_grant`] (`grants.rs`): what the user
//!   allowed applications, and taking it back.
//!
//! The `outband-device` binary (`src/bin/outband-device.rs` + [`cli`]) is a thin
//! command line over this API.

mod accounts;
mod api;
pub mod cli;
mod clock;
mod decision;
mod error;
mod grants;
mod history;
mod invite;
mod keystore;
mod request;
mod session;
mod stream;

pub use accounts::{Account, AccountId, Authenticator, KeyAlg, KeyStorage};
pub use clock::{system_clock, Clock};
pub use decision::{Decision, DecisionOutcome};
pub use error::Error;
pub use grants::Grant;
pub use history::HistoryEntry;
pub use invite::{Invite, PinnedKey};
pub use keystore::Pin;
pub use request::{PaymentSummary, VerifiedRequest};
pub use session::Session;
pub use stream::{Removal, WatchEnd, WatchEvent};
