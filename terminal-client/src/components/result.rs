//! The result screen: the receipt of an approved sale, or why there is
//! none (denied, expired, cancelled, or an error with the server's
//! `error_description`). Enter starts a new sale.
//!
//! An approved sale shows the bank's payment (id, status, time); on a server
//! without the payments API the receipt is the grant alone, and says so.

use crossterm::event::{KeyCode, KeyEvent};
use outband_terminal::Receipt;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use time::format_description::well_known::Rfc3339;

use super::{field, Component, Ctx};
use crate::action::{Action, SaleInfo, SaleResult};

/// The result screen.
#[derive(Debug)]
pub struct ResultScreen {
    result: SaleResult,
}

impl ResultScreen {
    /// Shows `result`.
    pub fn new(result: SaleResult) -> Self {
        Self { result }
    }

    /// What the screen shows.
    pub fn result(&self) -> &SaleResult {
        &self.result
    }

    fn is_open(&self) -> bool {
        matches!(self.result, SaleResult::Failed { open: true, .. })
    }
}

fn title(symbol: &str, text: &str, color: Color) -> Line<'static> {
    Line::from(Span::styled(
        format!("  {symbol} {text}"),
        Style::new().fg(color).add_modifier(Modifier::BOLD),
    ))
}

fn sale_lines(sale: &SaleInfo) -> Vec<Line<'static>> {
    vec![
        field("Amount", sale.amount.clone()),
        field("Customer", sale.customer.clone()),
        field("Reference", sale.reference.clone()),
        field("Code", sale.binding_message.clone()),
    ]
}

fn receipt_lines(receipt: &Receipt) -> Vec<Line<'static>> {
    let when = match &receipt.payment {
        Some(payment) => payment.created_at.clone(),
        None => time::OffsetDateTime::from_unix_timestamp(receipt.approved_at)
            .ok()
            .and_then(|t| t.format(&Rfc3339).ok())
            .unwrap_or_else(|| receipt.approved_at.to_string()),
    };
    let payee = match &receipt.iban {
        Some(iban) => format!("{} ({iban})", receipt.payee),
        None => receipt.payee.clone(),
    };
    let customer = match &receipt.token.sub {
        Some(sub) => format!("{} ({sub})", receipt.customer),
        None => receipt.customer.clone(),
    };
    let token = &receipt.token;
    let mut grant = format!("{:?}", token.token_type);
    if let Some(scope) = &token.scope {
        grant.push_str(&format!(", scope \"{scope}\""));
    }
    if let Some(expires_in) = token.expires_in {
        grant.push_str(&format!(", valid {expires_in} s"));
    }
    grant.push_str(&format!(" ({} delivery)", receipt.mode));
    let (heading, payment) = match &receipt.payment {
        Some(payment) => (
            "PAYMENT EXECUTED",
            format!("{} ({})", payment.payment_id, payment.status),
        ),
        None => (
            "PAYMENT APPROVED",
            "approved, not executed: the server has no payments API".to_owned(),
        ),
    };
    vec![
        title("✔", heading, Color::Green),
        Line::raw(""),
        field("Payment", payment).bold(),
        field("Amount", format!("{} {}", receipt.currency, receipt.amount)).bold(),
        field("Payee", payee),
        field("Reference", receipt.reference.clone()),
        field("Code", receipt.binding_message.clone()),
        field("Customer", customer),
        field("Time", when),
        field("Grant", grant),
    ]
}

impl Component for ResultScreen {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Enter => Some(Action::NewSale),
            KeyCode::Char('r' | 'R') if self.is_open() => Some(Action::ResumeSales),
            _ => None,
        }
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _ctx: &Ctx) {
        let mut lines = vec![Line::raw("")];
        match &self.result {
            SaleResult::Approved(receipt) => lines.extend(receipt_lines(receipt)),
            SaleResult::Denied { sale, reason } => {
                lines.push(title("✘", "PAYMENT DENIED", Color::Red));
                lines.push(Line::raw(""));
                lines.extend(sale_lines(sale));
                let reason = reason.clone().unwrap_or_else(|| "no reason given".to_owned());
                lines.push(field("Reason", reason));
            }
            SaleResult::Expired { sale } => {
                lines.push(title("⌛", "REQUEST EXPIRED", Color::Yellow));
                lines.push(Line::raw(""));
                lines.extend(sale_lines(sale));
                lines.push(field("Reason", "the customer did not answer in time"));
            }
            SaleResult::Cancelled { sale, detail } => {
                lines.push(title("⊘", "SALE CANCELLED", Color::Yellow));
                lines.push(Line::raw(""));
                lines.extend(sale_lines(sale));
                lines.push(field("Bank", detail.clone()));
            }
            SaleResult::Failed {
                sale,
                error,
                description,
                open,
            } => {
                lines.push(title("✘", "ERROR", Color::Red));
                lines.push(Line::raw(""));
                if let Some(sale) = sale {
                    lines.extend(sale_lines(sale));
                }
                lines.push(field("Error", error.clone()).red());
                if let Some(description) = description {
                    lines.push(field("Details", description.clone()));
                }
                if *open {
                    lines.push(Line::raw(""));
                    lines.push(Line::raw(
                        "  The sale is still open at the bank and in the journal: R resumes waiting for it.",
                    ));
                }
            }
        }
        frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), area);
    }

    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        let mut keys = vec![("Enter", "new sale")];
        if self.is_open() {
            keys.push(("R", "resume waiting"));
        }
        keys.push(("F2", "enrol help"));
        keys.push(("F3", "sales & refunds"));
        keys.push(("Ctrl-C", "quit"));
        keys
    }
}
