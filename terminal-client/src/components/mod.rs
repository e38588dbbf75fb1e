//! The screens of the till, each a [`Component`]: `sale` (the form),
//! `waiting` (binding message and countdown), `result` (receipt or why not),
//! `recovery` (sales an earlier run left open), `lookup` (F3: past sales by
//! reference, refunds) and `help` (F2: enrolling an authenticator, with a
//! `qr` code). They draw
//! from their own state only; the app gives them the time and the spinner
//! frame in a [`Ctx`], so a test fixes both.

pub mod help;
pub mod lookup;
pub mod qr;
pub mod recovery;
pub mod result;
pub mod sale;
pub mod waiting;

use crossterm::event::KeyEvent;
use ratatui::layout::Rect;
use ratatui::style::{Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::Frame;

use crate::action::Action;

/// What every screen needs to draw that is not its own state.
#[derive(Clone, Copy, Debug)]
pub struct Ctx {
    /// The wall clock, seconds since the epoch.
    pub now: i64,
    /// The spinner's frame.
    pub frame: usize,
}

/// One screen of the till.
pub trait Component {
    /// A key press; what the app should do about it.
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action>;

    /// An action addressed to the whole app; what it leads to.
    fn update(&mut self, _action: &Action) -> Option<Action> {
        None
    }

    /// Draws the screen's body into `area`.
    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx);

    /// The key hints of the footer: (key, what it does).
    fn keys(&self) -> Vec<(&'static str, &'static str)>;
}

/// `Esc cancel sale · F2 help`: keys bold, meanings plain.
pub fn key_hints(keys: &[(&str, &str)]) -> Line<'static> {
    let mut spans = Vec::new();
    for (i, (key, meaning)) in keys.iter().enumerate() {
        if i > 0 {
            spans.push(Span::raw("  ·  ").dark_gray());
        }
        spans.push(Span::styled(
            (*key).to_owned(),
            Style::new().add_modifier(Modifier::BOLD),
        ));
        spans.push(Span::raw(format!(" {meaning}")));
    }
    Line::from(spans)
}

/// `  Amount      EUR 12.50`: a dim label column and a value.
pub fn field(label: &str, value: impl Into<String>) -> Line<'static> {
    Line::from(vec![
        Span::raw(format!("  {label:<11}")).dark_gray(),
        Span::raw(value.into()),
    ])
}

/// `1:47`.
pub fn minutes(seconds: i64) -> String {
    let seconds = seconds.max(0);
    format!("{}:{:02}", seconds / 60, seconds % 60)
}
