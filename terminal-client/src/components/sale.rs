//! The sale screen: amount, currency, customer, merchant reference and
//! delivery mode, and the customer's user code when the server's discovery
//! says it takes one (`backchannel_user_code_parameter_supported`). Tab and
//! Shift-Tab move between the fields, Enter checks them all and starts the
//! sale; what is wrong shows under the field.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use outband_protocol::{DeliveryMode, Password};
use outband_terminal::{Amount, Currency, Iban, ParseSaleError, SaleRequest};
use ratatui::layout::{Position, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

use super::{Component, Ctx};
use crate::action::{Action, SaleOrder};

/// Longest customer hint (an e-mail address is at most 254 characters).
const MAX_CUSTOMER: usize = 254;
/// Longest merchant reference (`remittanceInformationUnstructured`: 140).
const MAX_REFERENCE: usize = 140;
/// Longest user code.
const MAX_USER_CODE: usize = 64;
/// Width of the input boxes.
const BOX: usize = 34;
/// Column where input boxes start.
const LABEL: usize = 14;

/// The form's fields, in Tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Field {
    Amount,
    Currency,
    Customer,
    Reference,
    UserCode,
    Mode,
}

const FIELDS: [Field; 6] = [
    Field::Amount,
    Field::Currency,
    Field::Customer,
    Field::Reference,
    Field::UserCode,
    Field::Mode,
];
const MODES: [DeliveryMode; 3] = [DeliveryMode::Poll, DeliveryMode::Ping, DeliveryMode::Push];

/// What every sale of this till shares (from the settings).
#[derive(Clone, Debug)]
pub struct SaleDefaults {
    /// The payee.
    pub merchant: String,
    /// The payee's IBAN.
    pub iban: Option<Iban>,
    /// The sale code prefix.
    pub prefix: Option<String>,
    /// How long the customer has.
    pub requested_expiry: Option<Duration>,
    /// Where ping and push notifications arrive.
    pub listen_url: String,
}

/// The sale form.
#[derive(Debug)]
pub struct SaleForm {
    amount: String,
    currency: String,
    customer: String,
    /// The customer's user code (shown masked).
    user_code: String,
    /// The server takes a user code: the field shows.
    user_code_supported: bool,
    reference: String,
    mode: DeliveryMode,
    focus: Field,
    errors: Vec<(Field, String)>,
    defaults: SaleDefaults,
}

impl SaleForm {
    /// An empty form in `currency` and `mode`.
    pub fn new(currency: Currency, mode: DeliveryMode, defaults: SaleDefaults) -> Self {
        Self {
            amount: String::new(),
            currency: currency.to_string(),
            customer: String::new(),
            user_code: String::new(),
            user_code_supported: false,
            reference: String::new(),
            mode,
            focus: Field::Amount,
            errors: Vec::new(),
            defaults,
        }
    }

    /// Empties the form for the next sale; the currency and the mode stay.
    pub fn clear(&mut self) {
        self.amount.clear();
        self.customer.clear();
        self.user_code.clear();
        self.reference.clear();
        self.focus = Field::Amount;
        self.errors.clear();
    }

    /// Shows the user code field (the server's discovery says it takes one) or hides it.
    pub fn set_user_code_supported(&mut self, supported: bool) {
        self.user_code_supported = supported;
        if !supported {
            self.user_code.clear();
            if self.focus == Field::UserCode {
                self.focus = Field::Reference;
            }
        }
    }

    /// The fields on the screen, in Tab order.
    fn fields(&self) -> Vec<Field> {
        FIELDS
            .into_iter()
            .filter(|f| *f != Field::UserCode || self.user_code_supported)
            .collect()
    }

    /// The chosen delivery mode.
    pub fn mode(&self) -> DeliveryMode {
        self.mode
    }

    fn error(&self, field: Field) -> Option<&str> {
        self.errors.iter().find(|(f, _)| *f == field).map(|(_, e)| e.as_str())
    }

    fn text_mut(&mut self, field: Field) -> Option<&mut String> {
        match field {
            Field::Amount => Some(&mut self.amount),
            Field::Currency => Some(&mut self.currency),
            Field::Customer => Some(&mut self.customer),
            Field::UserCode => Some(&mut self.user_code),
            Field::Reference => Some(&mut self.reference),
            Field::Mode => None,
        }
    }

    fn step(&mut self, forward: bool) {
        let fields = self.fields();
        let at = fields.iter().position(|f| *f == self.focus).unwrap_or(0);
        let next = if forward { at + 1 } else { at + fields.len() - 1 };
        self.focus = fields.get(next % fields.len()).copied().unwrap_or(Field::Amount);
    }

    fn cycle_mode(&mut self, forward: bool) {
        let at = MODES.iter().position(|m| *m == self.mode).unwrap_or(0);
        let next = if forward { at + 1 } else { at + MODES.len() - 1 };
        self.mode = MODES.get(next % MODES.len()).copied().unwrap_or(DeliveryMode::Poll);
    }

    fn type_char(&mut self, c: char) {
        let field = self.focus;
        let (c, max) = match field {
            Field::Amount if c.is_ascii_digit() || c == '.' => (c, 14),
            // A decimal comma is a decimal point.
            Field::Amount if c == ',' => ('.', 14),
            Field::Currency if c.is_ascii_alphabetic() => (c.to_ascii_uppercase(), 3),
            Field::Customer if !c.is_control() => (c, MAX_CUSTOMER),
            Field::UserCode if !c.is_control() => (c, MAX_USER_CODE),
            Field::Reference if !c.is_control() => (c, MAX_REFERENCE),
            _ => return,
        };
        if let Some(text) = self.text_mut(field) {
            if text.chars().count() < max {
                text.push(c);
            }
        }
        self.errors.retain(|(f, _)| *f != field);
    }

    /// Checks every field; the sale, or what is wrong with which field.
    pub fn validate(&self) -> Result<SaleOrder, Vec<(Field, String)>> {
        let mut errors = Vec::new();
        let currency = match self.currency.parse::<Currency>() {
            Ok(currency) if currency.minor_units() > 2 => {
                errors.push((
                    Field::Currency,
                    format!(
                        "{currency} has {} decimal places; this till handles currencies with at most 2",
                        currency.minor_units()
                    ),
                ));
                None
            }
            Ok(currency) => Some(currency),
            Err(_) if self.currency.is_empty() => {
                errors.push((Field::Currency, "enter a currency code, like EUR".to_owned()));
                None
            }
            Err(_) => {
                errors.push((Field::Currency, "three letters (ISO 4217), like EUR".to_owned()));
                None
            }
        };
        let amount = match check_amount(&self.amount, currency) {
            Ok(amount) => Some(amount),
            Err(message) => {
                errors.push((Field::Amount, message));
                None
            }
        };
        let customer = self.customer.trim();
        if customer.is_empty() {
            errors.push((
                Field::Customer,
                "enter the customer's e-mail, phone number or username".to_owned(),
            ));
        }
        let reference = self.reference.trim();
        let (Some(amount), Some(currency), true) = (amount, currency, errors.is_empty()) else {
            return Err(errors);
        };
        let defaults = &self.defaults;
        let mut sale = SaleRequest::new(amount, currency, customer, defaults.merchant.clone());
        sale.iban = defaults.iban.clone();
        sale.prefix = defaults.prefix.clone();
        sale.reference = (!reference.is_empty()).then(|| reference.to_owned());
        sale.requested_expiry = defaults.requested_expiry;
        sale.user_code =
            (self.user_code_supported && !self.user_code.is_empty()).then(|| Password::new(self.user_code.clone()));
        match sale.validate() {
            Ok(()) => Ok(SaleOrder { sale, mode: self.mode }),
            Err(ParseSaleError::Customer) => Err(vec![(Field::Customer, "not a valid customer".to_owned())]),
            Err(ParseSaleError::Text("user code")) => Err(vec![(Field::UserCode, "not a valid user code".to_owned())]),
            Err(err) => Err(vec![(Field::Reference, err.to_string())]),
        }
    }

    fn input_line(&self, field: Field, label: &str, value: &str, hint: &str) -> Line<'static> {
        let focused = self.focus == field;
        let shown: String = value
            .chars()
            .rev()
            .take(BOX)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        let mut spans = vec![label_span(label, focused)];
        let box_style = if focused {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new().dark_gray()
        };
        spans.push(Span::styled("[", box_style));
        spans.push(Span::raw(format!("{shown:<BOX$}")));
        spans.push(Span::styled("]", box_style));
        spans.push(Span::raw(format!("  {hint}")).dark_gray());
        Line::from(spans)
    }

    fn mode_line(&self) -> Line<'static> {
        let focused = self.focus == Field::Mode;
        let mut spans = vec![label_span("Delivery", focused)];
        for mode in MODES {
            let text = format!(" {mode} ");
            spans.push(if mode == self.mode {
                let style = Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED);
                Span::styled(format!("‹{text}›"), style)
            } else {
                Span::raw(format!(" {text} ")).dark_gray()
            });
            spans.push(Span::raw(" "));
        }
        if focused {
            spans.push(Span::raw(" ←/→ to change").dark_gray());
        }
        Line::from(spans)
    }

    fn message_line(&self, field: Field) -> Line<'static> {
        let indent = " ".repeat(LABEL);
        match self.error(field) {
            Some(error) => Line::from(vec![Span::raw(indent), Span::raw(format!("✘ {error}")).red()]),
            None if field == Field::Mode && self.mode != DeliveryMode::Poll => Line::from(vec![
                Span::raw(indent),
                Span::raw(format!("notifications at {}", self.defaults.listen_url)).dark_gray(),
            ]),
            None => Line::raw(""),
        }
    }
}

fn label_span(label: &str, focused: bool) -> Span<'static> {
    let width = LABEL - 2;
    if focused {
        Span::styled(format!("▸ {label:<width$}"), Style::new().fg(Color::Yellow).bold())
    } else {
        Span::raw(format!("  {label:<width$}"))
    }
}

/// The amount, or a short message: a positive decimal with no more decimals
/// than the currency's minor unit has.
fn check_amount(text: &str, currency: Option<Currency>) -> Result<Amount, String> {
    if text.is_empty() {
        return Err("enter an amount, like 12.50".to_owned());
    }
    let decimals = text.split_once('.').map_or(0, |(_, fraction)| fraction.len());
    if let Some(currency) = currency {
        let allowed = usize::from(currency.minor_units());
        if decimals > allowed {
            return Err(if allowed == 0 {
                format!("{currency} has no minor unit: enter a whole amount")
            } else {
                format!("{currency} amounts have at most {allowed} decimals, like 12.50")
            });
        }
    }
    text.parse::<Amount>().map_err(|err| match err {
        ParseSaleError::ZeroAmount => "the amount must be more than zero".to_owned(),
        ParseSaleError::AmountTooLarge(_) => "that amount is too large for this till".to_owned(),
        _ => "a positive decimal number, like 12.50".to_owned(),
    })
}

impl Component for SaleForm {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Tab | KeyCode::Down => self.step(true),
            KeyCode::BackTab | KeyCode::Up => self.step(false),
            KeyCode::Enter => match self.validate() {
                Ok(order) => {
                    self.errors.clear();
                    return Some(Action::StartSale(Box::new(order)));
                }
                Err(errors) => {
                    if let Some((first, _)) = errors.first() {
                        self.focus = *first;
                    }
                    self.errors = errors;
                }
            },
            KeyCode::Left if self.focus == Field::Mode => self.cycle_mode(false),
            KeyCode::Right | KeyCode::Char(' ') if self.focus == Field::Mode => self.cycle_mode(true),
            KeyCode::Backspace => {
                let field = self.focus;
                if let Some(text) = self.text_mut(field) {
                    text.pop();
                }
                self.errors.retain(|(f, _)| *f != field);
            }
            KeyCode::Char('u') if ctrl => {
                let field = self.focus;
                if let Some(text) = self.text_mut(field) {
                    text.clear();
                }
            }
            KeyCode::Char(c) if !ctrl && !key.modifiers.contains(KeyModifiers::ALT) => self.type_char(c),
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect, _ctx: &Ctx) {
        let currency_hint = match self.currency.parse::<Currency>() {
            Ok(currency) => match currency.minor_units() {
                0 => format!("{currency}, whole amounts"),
                n => format!("{currency}, up to {n} decimals"),
            },
            Err(_) => String::new(),
        };
        let mut lines = vec![
            Line::raw(""),
            self.input_line(Field::Amount, "Amount", &self.amount, &currency_hint),
            self.message_line(Field::Amount),
            self.input_line(Field::Currency, "Currency", &self.currency, "ISO 4217 code"),
            self.message_line(Field::Currency),
            self.input_line(Field::Customer, "Customer", &self.customer, "e-mail, phone or username"),
            self.message_line(Field::Customer),
            self.input_line(
                Field::Reference,
                "Reference",
                &self.reference,
                "optional: the sale code if empty",
            ),
            self.message_line(Field::Reference),
        ];
        // The customer's code is typed by the customer and never shown.
        let masked = "•".repeat(self.user_code.chars().count());
        if self.user_code_supported {
            lines.push(self.input_line(
                Field::UserCode,
                "User code",
                &masked,
                "optional: the customer types their code",
            ));
            lines.push(self.message_line(Field::UserCode));
        }
        lines.push(self.mode_line());
        lines.push(self.message_line(Field::Mode));
        frame.render_widget(Paragraph::new(lines), area);
        // The cursor sits at the end of the focused text field.
        let row = match self.focus {
            Field::Amount => Some((1, &self.amount)),
            Field::Currency => Some((3, &self.currency)),
            Field::Customer => Some((5, &self.customer)),
            Field::Reference => Some((7, &self.reference)),
            Field::UserCode => Some((9, &masked)),
            Field::Mode => None,
        };
        if let Some((row, text)) = row {
            let column = LABEL + 1 + text.chars().count().min(BOX);
            let x = area.x.saturating_add(u16::try_from(column).unwrap_or(u16::MAX));
            let y = area.y.saturating_add(row);
            if x < area.right() && y < area.bottom() {
                frame.set_cursor_position(Position::new(x, y));
            }
        }
    }

    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        vec![
            ("Tab/Shift-Tab", "next/previous field"),
            ("Enter", "start sale"),
            ("F2", "enrol help"),
            ("F3", "sales & refunds"),
            ("Ctrl-C", "quit"),
        ]
    }
}
