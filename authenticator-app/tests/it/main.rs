//! The authenticator app's one integration binary: the commands on Tauri's mock runtime
//! (`commands`, and `settings` with a `HOME` of its own) and the real app under Xvfb, driven
//! through WebKitWebDriver (`gui`), its session bus watched with `dbus-monitor` (`bus`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod bus;
mod commands;
mod gui;
mod server;
mod settings;
mod support;
mod webdriver;
