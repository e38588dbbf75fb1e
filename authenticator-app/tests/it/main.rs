//! The authenticator app's one integration binary: the commands on Tauri's mock runtime
//! (`commands`) and the real app under Xvfb, driven through WebKitWebDriver (`gui`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod commands;
mod gui;
mod server;
mod support;
mod webdriver;
