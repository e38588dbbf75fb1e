//! The waiting screen: the binding message in large type, for the customer
//! to compare with their authenticator, the amount and customer, a spinner,
//! and a countdown to the request's expiry with a gauge. Esc cancels the sale
//! (the worker withdraws it at the bank).

use crossterm::event::{KeyCode, KeyEvent};
use outband_protocol::DeliveryMode;
use ratatui::layout::{Alignment, Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Gauge, Paragraph};
use ratatui::Frame;
use tui_big_text::{BigText, PixelSize};

use super::{field, minutes, Component, Ctx};
use crate::action::{Action, SaleInfo, SaleOrder};

/// Braille spinner frames.
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/// The spinner's character at `frame`.
pub fn spinner(frame: usize) -> char {
    SPINNER.get(frame % SPINNER.len()).copied().unwrap_or(' ')
}

/// The waiting screen.
#[derive(Debug)]
pub struct WaitingScreen {
    /// `EUR 12.50`, the customer and the mode, known before the bank answers.
    amount: String,
    mode: DeliveryMode,
    customer: String,
    /// The started sale; `None` while the bank has not answered yet.
    info: Option<SaleInfo>,
    /// The latest progress note.
    status: Option<String>,
    /// Esc was pressed.
    cancelling: bool,
}

impl WaitingScreen {
    /// While the sale is being sent.
    pub fn sending(order: &SaleOrder) -> Self {
        Self {
            amount: order.sale.display_amount(),
            mode: order.mode,
            customer: order.sale.customer.to_string(),
            info: None,
            status: None,
            cancelling: false,
        }
    }

    /// A started (or resumed) sale.
    pub fn started(info: SaleInfo) -> Self {
        Self {
            amount: info.amount.clone(),
            mode: info.mode,
            customer: info.customer.clone(),
            info: Some(info),
            status: None,
            cancelling: false,
        }
    }

    /// The sale's delivery mode.
    pub fn mode(&self) -> DeliveryMode {
        self.mode
    }

    fn draw_binding_message(&self, frame: &mut Frame, area: Rect, info: &SaleInfo) {
        let block = Block::bordered()
            .border_type(BorderType::Thick)
            .border_style(Style::new().fg(Color::Cyan));
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [big, exact] = Layout::vertical([Constraint::Min(0), Constraint::Length(1)]).areas(inner);
        // The large type: the font has no middle dot, so the parts are spaced apart.
        let text = info.binding_message.replace(" · ", "  ");
        let chars = u16::try_from(text.chars().count()).unwrap_or(u16::MAX);
        let size = if chars.saturating_mul(8) <= big.width && big.height >= 8 {
            Some(PixelSize::Full)
        } else if chars.saturating_mul(8) <= big.width && big.height >= 4 {
            Some(PixelSize::HalfHeight)
        } else if chars.saturating_mul(4) <= big.width && big.height >= 4 {
            Some(PixelSize::Quadrant)
        } else {
            None
        };
        if let Some(size) = size {
            let glyph_rows = match size {
                PixelSize::Full => 8,
                _ => 4,
            };
            let top = big.y + big.height.saturating_sub(glyph_rows) / 2;
            let area = Rect::new(big.x, top, big.width, glyph_rows.min(big.height));
            let widget = BigText::builder()
                .pixel_size(size)
                .style(Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD))
                .lines(vec![Line::from(text)])
                .centered()
                .build();
            frame.render_widget(widget, area);
        }
        let exact_line = Line::from(info.binding_message.clone()).bold().centered();
        frame.render_widget(Paragraph::new(exact_line), exact);
    }

    fn draw_progress(&self, frame: &mut Frame, area: Rect, ctx: &Ctx, info: Option<&SaleInfo>) {
        let spinner = spinner(ctx.frame);
        let what = match (info, self.cancelling) {
            (_, true) => "cancelling the sale at the bank…",
            (None, false) => "sending the sale to the bank…",
            (Some(_), false) => "waiting for approval",
        };
        let [text, gauge] = Layout::horizontal([Constraint::Length(36), Constraint::Min(10)]).areas(area);
        let line = Line::from(vec![Span::raw(format!("  {spinner} ")).cyan(), Span::raw(what)]);
        frame.render_widget(Paragraph::new(line), text);
        if let Some(info) = info {
            let total = (info.expires_at - info.started_at).max(1);
            let left = (info.expires_at - ctx.now).clamp(0, total);
            #[allow(clippy::cast_precision_loss)] // seconds: far below 2^52
            let ratio = left as f64 / total as f64;
            let color = if left <= 30 { Color::Red } else { Color::Green };
            let widget = Gauge::default()
                .gauge_style(Style::new().fg(color).bg(Color::DarkGray))
                .ratio(ratio.clamp(0.0, 1.0))
                .label(format!("{} left", minutes(left)));
            frame.render_widget(widget, gauge);
        }
    }
}

impl Component for WaitingScreen {
    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        match key.code {
            KeyCode::Esc if !self.cancelling => Some(Action::CancelSale),
            _ => None,
        }
    }

    fn update(&mut self, action: &Action) -> Option<Action> {
        match action {
            Action::Started(info) => {
                self.amount = info.amount.clone();
                self.customer = info.customer.clone();
                self.mode = info.mode;
                self.info = Some((**info).clone());
            }
            Action::Progress(text) => self.status = Some(text.clone()),
            Action::CancelSale => self.cancelling = true,
            _ => {}
        }
        None
    }

    fn draw(&self, frame: &mut Frame, area: Rect, ctx: &Ctx) {
        let info = self.info.as_ref();
        let [facts, _, ask, message, number_row, _, progress, status] = Layout::vertical([
            Constraint::Length(4),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(8),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(1),
        ])
        .areas(area);
        let mut lines = vec![
            Line::raw(""),
            field("Amount", self.amount.clone()),
            field("Customer", self.customer.clone()),
        ];
        if let Some(info) = info {
            let mut reference = info.reference.clone();
            if info.resumed {
                reference.push_str("   (resumed after a restart)");
            }
            lines.push(field("Reference", reference));
        }
        frame.render_widget(Paragraph::new(lines), facts);
        if let Some(info) = info {
            let prompt = Line::from("Ask the customer to check their authenticator for").centered();
            frame.render_widget(Paragraph::new(prompt), ask);
            let width = message.width.saturating_sub(4);
            let boxed = Rect::new(message.x + 2, message.y, width, message.height);
            self.draw_binding_message(frame, boxed, info);
            if let Some(number) = &info.number_match {
                let line = Line::from(format!("and to type the number {number} on their device")).centered();
                frame.render_widget(Paragraph::new(line), number_row);
            }
        }
        self.draw_progress(frame, progress, ctx, info);
        if let Some(text) = &self.status {
            let line = Line::from(format!("    {text}")).dark_gray().alignment(Alignment::Left);
            frame.render_widget(Paragraph::new(line), status);
        }
    }

    fn keys(&self) -> Vec<(&'static str, &'static str)> {
        if self.cancelling {
            vec![("Ctrl-C", "quit after cancelling")]
        } else {
            vec![("Esc", "cancel sale"), ("F2", "enrol help")]
        }
    }
}
