//! The one integration test binary of outband-server (CONVENTIONS 8).

// Test support code panics on purpose: a failed setup step is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod account;
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
mod consent_support;
mod consents;
mod consents_flow;
mod device;
mod device_cli;
mod device_decision;
mod device_events;
mod device_grants;
mod device_support;
mod discovery;
mod dpop;
mod dpop_binding;
mod events;
mod fuzz_properties;
mod grant_management;
mod grant_management_browser;
mod hybrid;
mod introspect;
mod jar;
mod jarm;
mod logout;
mod metrics;
mod mtls;
mod native_clients;
mod native_support;
mod openapi;
mod openbanking_br;
mod outbound;
mod par;
mod payments;
mod profile_matrix;
mod profile_matrix_support;
mod rar;
mod rate_limit;
mod refresh;
mod refresh_grace;
mod register;
mod robustness;
mod support;
mod token;
mod userinfo;
