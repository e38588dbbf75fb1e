//! The result screen: the receipt of an approved sale, or why there is
//! none (denied, expired, cancelled, or an error with the server's
//! `error_description`). Enter starts a new sale.
//!
//! An approved sale shows the bank's payment (id, status, time); on a server
//! without the payments API the receipt is the grant alone, and says so.
//! With a `receipt_url` in the config, an executed payment also shows the
//! customer's digital receipt as a QR code beside it (what a real till offers
//! instead of paper); it is left out when the screen is too small for it.

use crossterm::event::{KeyCode, KeyEvent};
use outband_terminal::Receipt;
use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};
use ratatui::Frame;
use time::format_description::well_known::Rfc3339;

use super::qr::QrWidget;
use super::{field, Component, Ctx};
use crate::action::{Action, SaleInfo, SaleResult};

/// The result screen.
#[derive(Debug)]
pub struct ResultScreen {
    result: SaleResult,
    /// The customer's digital receipt: its address and QR code.
    receipt: Option<(String, QrWidget)>,
}

impl ResultScreen {
    /// Shows `result`.
    pub fn new(result: SaleResult) -> Self {
        Self { result, receipt: None }
    }

    /// Also shows `link` (the customer's digital receipt) as a QR code.
    pub fn with_receipt_link(mut self, link: Option<String>) -> Self {
        self.receipt = link.map(|link| {
            let qr = QrWidget::new(&link);
            (link, qr)
        });
        self
    }

    /// The digital receipt's address, when the screen shows one.
    pub fn receipt_link(&self) -> Option<&str> {
        self.receipt.as_ref().map(|(link, _)| link.as_str())
    }

    /// Draws the receipt QR code and its caption at the right of `area`;
    /// returns what is left for the text (all of it when the code does not fit).
    fn draw_receipt_qr(&self, frame: &mut Frame, area: Rect) -> Rect {
        let Some((_, qr)) = &self.receipt else {
            return area;
        };
        let (width, height) = qr.size();
        let column = width.saturating_add(2);
        // Room for the receipt text (50 columns) and the code with its caption.
        let caption_rows = 1;
        let rows_needed = height.saturating_add(caption_rows);
        if area.width < column.saturating_add(50) || area.height < rows_needed {
            return area;
        }
        let [text, right] = Layout::horizontal([Constraint::Min(0), Constraint::Length(column)]).areas(area);
        let [code, caption] = Layout::vertical([Constraint::Length(height), Constraint::Length(caption_rows)])
            .flex(Flex::Center)
            .areas(right);
        let [code] = Layout::horizontal([Constraint::Length(width)])
            .flex(Flex::Center)
            .areas(code);
        frame.render_widget(qr, code);
        frame.render_widget(
            Paragraph::new(Line::raw("Scan for your receipt").bold().centered()),
            caption,
        );
        text
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
        let area = self.draw_receipt_qr(frame, area);
        let mut lines = vec![Line::raw("")];
        match &self.result {
            SaleResult::Approved(receipt) => {
                lines.extend(receipt_lines(receipt));
                if let Some(link) = self.receipt_link() {
                    lines.push(field("Receipt", link.to_owned()).cyan());
                }
            }
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
