//! The sales lookup (F3): type a merchant reference, Enter finds the till's
//! journaled sales and the bank's payments with it. ↑/↓ pick a payment;
//! Tab moves to the refund amount (empty: all that is left) and Enter there
//! refunds it.

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use outband_terminal::Amount;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;

use super::{Component, Ctx};
use crate::action::{Action, Lookup};

/// Longest reference typed.
const MAX_REFERENCE: usize = 140;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Focus {
    Reference,
    Amount,
}

/// Where the screen stands.
#[derive(Debug)]
enum Status {
    Idle,
    Busy(&'static str),
    Message(Result<String, String>),
}

/// The lookup screen.
#[derive(Debug)]
pub struct LookupScreen {
    reference: String,
    amount: String,
    focus: Focus,
    found: Option<Lookup>,
    selected: usize,
    status: Status,
}

impl Default for LookupScreen {
    fn default() -> Self {
        Self::new()
    }
}

impl LookupScreen {
    /// An empty lookup.
    pub fn new() -> Self {
        Self {
            reference: String::new(),
            amount: String::new(),
            focus: Focus::Reference,
            found: None,
            selected: 0,
            status: Status::Idle,
        }
    }

    fn payments_len(&self) -> usize {
        self.found
            .as_ref()
            .and_then(|f| f.payments.as_ref().ok())
            .map_or(0, Vec::len)
    }

    fn selected_payment(&self) -> Option<String> {
        let payments = self.found.as_ref()?.payments.as_ref().ok()?;
        payments.get(self.selected).map(|p| p.payment_id.clone())
    }

    fn submit(&mut self) -> Option<Action> {
        match self.focus {
            Focus::Reference => {
                let reference = self.reference.trim().to_owned();
                if reference.is_empty() {
                    self.status = Status::Message(Err("type a merchant reference or sale code".into()));
                    return None;
                }
                self.status = Status::Busy("looking up…");
                Some(Action::LookupSales(reference))
            }
            Focus::Amount => {
                let Some(payment_id) = self.selected_payment() else {
                    self.status = Status::Message(Err("look a payment up first".into()));
                    return None;
                };
                let amount = match self.amount.trim() {
                    "" => None,
                    text => match text.parse::<Amount>() {
                        Ok(amount) => Some(amount),
                        Err(err) => {
                            self.status = Status::Message(Err(err.to_string()));
                            return None;
                        }
                    },
                };
                self.status = Status::Busy("refunding…");
                Some(Action::Refund { payment_id, amount })
            }
        }
    }
}

impl Component for LookupScreen {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Esc => return Some(Action::NewSale),
            KeyCode::Enter => return self.submit(),
            KeyCode::Tab | KeyCode::BackTab => {
                self.focus = match self.focus {
                    Focus::Reference => Focus::Amount,
                    Focus::Amount => Focus::Reference,
                }
            }
            KeyCode::Up => self.selected = self.selected.saturating_sub(1),
            KeyCode::Down => self.selected = (self.selected + 1).min(self.payments_len().saturating_sub(1)),
            KeyCode::Backspace => {
                match self.focus {
                    Focus::Reference => self.reference.pop(),
                    Focus::Amount => self.amount.pop(),
                };
            }
            KeyCode::Char(c) if !ctrl && !c.is_control() => match self.focus {
                Focus::Reference if self.reference.chars().count() < MAX_REFERENCE => self.reference.push(c),
                Focus::Amount if c.is_ascii_digit() || c == '.' || c == ',' => {
                    self.amount.push(if c == ',' { '.' } else { c })
                }
                _ => {}
            },
            _ => {}
        }
        None
    }

    fn update(&mut self, action: &Action) -> Option<Action> {
        match action {
            Action::SalesFound(found) => {
                self.found = Some((**found).clone());
                self.selected = 0;
                self.status = Status::Idle;
            }
            Action::Refunded(Ok(refund)) => {
                let payment = &refund.payment;
                if let Some(found) = &mut self.found {
                    if let Ok(payments) = &mut found.payments {
                        for p in payments.iter_mut().filter(|p| p.payment_id == payment.payment_id) {
                            *p = payment.clone();
                        }
                    }
                }
                self.amount.clear();
                self.status = Status::Message(Ok(format!(
                    "Refunded {} {} of {}",
                    refund.currency, refund.amount, refund.payment_id
                )));
            }
            Action::Refunded(Err(why)) => self.status = Status::Message(Err(why.clone())),
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let field = |label: &str, value: &str, focused: bool, hint: &str| {
            let style = if focused {
                Style::new().fg(Color::Yellow).bold()
            } else {
                Style::new()
            };
            Line::from(vec![
                Span::styled(format!("{} {label:<11}", if focused { "▸" } else { " " }), style),
                Span::raw(format!("[{value:<34}]")),
                Span::raw(format!("  {hint}")).dark_gray(),
            ])
        };
        let mut lines = vec![
            Line::raw(""),
            field(
                "Reference",
                &self.reference,
                self.focus == Focus::Reference,
                "Enter looks it up",
            ),
            field(
                "Refund",
                &self.amount,
                self.focus == Focus::Amount,
                "amount; empty refunds all that is left",
            ),
            Line::raw(""),
        ];
        if let Some(found) = &self.found {
            lines.push(Line::raw(format!("  Till journal ({}):", found.reference)).bold());
            if found.sales.is_empty() {
                lines.push(Line::raw("    no sale with this reference").dark_gray());
            }
            for sale in &found.sales {
                lines.push(Line::raw(format!(
                    "    {:<20} {:<14} {:<24} {}",
                    sale.reference, sale.amount, sale.customer, sale.state
                )));
            }
            lines.push(Line::raw("  Bank payments:").bold());
            match &found.payments {
                Ok(payments) if payments.is_empty() => lines.push(Line::raw("    none").dark_gray()),
                Ok(payments) => {
                    for (i, p) in payments.iter().enumerate() {
                        let chosen = i == self.selected;
                        let id = Line::raw(format!("  {} {}", if chosen { "▸" } else { " " }, p.payment_id));
                        lines.push(if chosen {
                            id.add_modifier(Modifier::REVERSED)
                        } else {
                            id
                        });
                        lines.push(Line::raw(format!(
                            "      {} {}  refunded {}  {}  {}",
                            p.instructed_amount.currency,
                            p.instructed_amount.amount,
                            p.refunded_amount.as_deref().unwrap_or("0.00"),
                            p.status,
                            p.created_at
                        )));
                    }
                }
                Err(why) => lines.push(Line::raw(format!("    {why}")).red()),
            }
        }
        lines.push(Line::raw(""));
        match &self.status {
            Status::Idle => {}
            Status::Busy(what) => {
                let spinner = super::waiting::spinner(ctx.frame);
                lines.push(Line::raw(format!("  {spinner} {what}")).cyan());
            }
            Status::Message(Ok(text)) => lines.push(Line::raw(format!("  ✔ {text}")).green()),
            Status::Message(Err(text)) => lines.push(Line::raw(format!("  ✘ {text}")).red()),
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
    }

    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("Enter", "look up / refund"),
            ("Tab", "reference/amount"),
            ("↑/↓", "pick payment"),
            ("Esc", "back to sale"),
        ]
    }
}
