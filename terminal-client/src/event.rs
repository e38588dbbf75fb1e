//! Terminal input and the clock tick, as [`Action`]s on the app's channel:
//! crossterm's async `EventStream` and a `tokio::time::interval`, in one task.

use std::time::Duration;

use crossterm::event::{Event, EventStream, KeyEventKind};
use futures::StreamExt;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

use crate::action::Action;

/// How often the spinner and the countdown move.
pub const TICK: Duration = Duration::from_millis(250);

/// Sends key presses, resizes and ticks to `tx` until the receiver is gone or
/// the terminal's input ends.
pub fn spawn(tx: UnboundedSender<Action>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut events = EventStream::new();
        let mut ticks = tokio::time::interval(TICK);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let action = tokio::select! {
                _ = ticks.tick() => Action::Tick,
                event = events.next() => match event {
                    // Windows reports releases too; act on presses only.
                    Some(Ok(Event::Key(key))) if key.kind == KeyEventKind::Press => Action::Key(key),
                    Some(Ok(Event::Resize(..))) => Action::Resize,
                    Some(Ok(_)) => continue,
                    Some(Err(err)) => {
                        tracing::error!(error = %err, "cannot read the terminal");
                        Action::Quit
                    }
                    None => Action::Quit,
                },
            };
            let quit = matches!(action, Action::Quit);
            if tx.send(action).is_err() || quit {
                break;
            }
        }
    })
}
