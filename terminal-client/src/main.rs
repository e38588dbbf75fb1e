//! `outband-pos`: the Outband point-of-sale terminal (see `cli`). With no
//! subcommand it is an interactive till: `tui` owns the terminal, `event`
//! turns key presses and ticks into `action::Action`s, `worker` runs the CIBA
//! calls in tasks that answer with more actions, and `app` folds every action
//! into the state the `components` draw.

mod action;
mod app;
mod cli;
mod components;
mod event;
mod tui;
mod worker;

fn main() -> std::process::ExitCode {
    cli::main()
}
