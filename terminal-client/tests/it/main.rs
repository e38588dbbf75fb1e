//! The one integration test binary of outband-terminal (CONVENTIONS 8): the
//! CIBA client and the `outband-pos` binary against a real Outband server
//! started in-process on 127.0.0.1:0 (SQLite, or PostgreSQL with
//! `OUTBAND_TEST_BACKEND=postgres`).

// Test support code panics on purpose: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod cli;
mod mtls;
mod notify;
mod payments;
mod ping;
mod poll;
mod refunds;
mod support;
mod tmux;
mod tui_mtls;
mod user_code;
