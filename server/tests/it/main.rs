//! The one integration test binary of outband-server (CONVENTIONS 8).

// Test support code panics on purpose: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod api_support;
mod authorize;
mod browser_support;
mod ciba;
mod ciba_admin;
mod ciba_cli;
mod ciba_modes;
mod ciba_signed;
mod ciba_support;
mod cli;
mod cli_support;
mod device;
mod device_cli;
mod device_decision;
mod device_events;
mod device_support;
mod discovery;
mod dpop;
mod events;
mod introspect;
mod jar;
mod mtls;
mod openapi;
mod outbound;
mod par;
mod payments;
mod rar;
mod refresh;
mod register;
mod robustness;
mod support;
mod token;
mod userinfo;
