//! Integration tests of the authenticator core and `outband-device` against a
//! real Outband server started in-process on 127.0.0.1 (SQLite, or PostgreSQL
//! with `OUTBAND_TEST_BACKEND=postgres`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod cli;
mod decide;
mod enroll;
mod grants;
mod os_keyring;
mod removals;
mod security;
mod stream;
mod support;
mod tty;
