//! The recovery prompt: at start, the sales an earlier run left open. Enter
//! picks them up (the till waits for each, or reports how it ended; an
//! approved one whose payment may not have gone through is paid with its
//! journaled idempotency key, so it is charged once). Esc leaves them open
//! for later (they stay in the journal, and their references stay taken).

use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{Component, Ctx};
use crate::action::{Action, OpenSale};

/// The recovery prompt.
#[derive(Debug)]
pub struct RecoveryPrompt {
    sales: Vec<OpenSale>,
}

impl RecoveryPrompt {
    /// Lists `sales`.
    pub fn new(sales: Vec<OpenSale>) -> Self {
        Self { sales }
    }
}

fn explain(state: &str) -> &'static str {
    match state {
        "paying" => "approved: its payment is confirmed (once)",
        "in_flight" => "waits for the customer, or fetches the outcome",
        _ => "cut off before the bank answered: never charged",
    }
}

impl Component for RecoveryPrompt {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Enter => Some(Action::ResumeSales),
            KeyCode::Esc => Some(Action::NewSale),
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _ctx: &Ctx) {
        let mut lines = vec![
            Line::raw(""),
            Line::from(Span::styled(
                format!("  ⟳ {} SALE(S) LEFT OPEN BY AN EARLIER RUN", self.sales.len()),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            )),
            Line::raw(""),
        ];
        for sale in &self.sales {
            lines.push(Line::from(vec![
                Span::raw(format!("  {:<16} ", sale.reference)).bold(),
                Span::raw(format!("{:<11} ", sale.amount)),
                Span::raw(format!("{:<20} ", sale.customer)),
                Span::raw(explain(&sale.state)).dark_gray(),
            ]));
        }
        lines.push(Line::raw(""));
        lines.push(Line::raw(
            "  Enter picks them up now: the till waits for each, or shows how it ended.",
        ));
        lines.push(Line::raw(
            "  Esc leaves them open in the journal; the next start asks again.",
        ));
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
    }

    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        vec![("Enter", "resume open sales"), ("Esc", "later"), ("Ctrl-C", "quit")]
    }
}
