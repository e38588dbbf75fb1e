//! The TUI's state, [`App`]: which screen shows, the sale form (which keeps
//! its currency and mode from sale to sale), the help panel, the clock and
//! the spinner. [`App::update`] folds one [`Action`] into it and may answer
//! with a follow-up; [`App::draw`] only reads it. No network here: the worker
//! acts on the same actions.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use outband_protocol::DeliveryMode;
use outband_terminal::{Clock, Currency};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};
use ratatui::Frame;

use crate::action::{Action, SaleResult};
use crate::cli::Settings;
use crate::components::help::HelpPanel;
use crate::components::lookup::LookupScreen;
use crate::components::recovery::RecoveryPrompt;
use crate::components::result::ResultScreen;
use crate::components::sale::{SaleDefaults, SaleForm};
use crate::components::waiting::WaitingScreen;
use crate::components::{key_hints, Component, Ctx};

/// Who this till is: what the header and the sale form need from the settings.
#[derive(Clone, Debug)]
pub struct Till {
    /// The server (issuer URL).
    pub server: String,
    /// The default currency.
    pub currency: Currency,
    /// The default delivery mode.
    pub mode: DeliveryMode,
    /// What every sale shares.
    pub sale: SaleDefaults,
    /// The F2 panel's enrollment link.
    pub enroll_link: Option<String>,
    /// The digital-receipt address template (`{payment_id}`, `{reference}`)
    /// of the result screen's QR code.
    pub receipt_url: Option<String>,
}

impl Till {
    /// From the resolved settings.
    pub fn from_settings(settings: &Settings) -> Self {
        let defaults = &settings.sale;
        Self {
            server: settings.issuer.clone(),
            currency: defaults.currency.unwrap_or(Currency::EUR),
            mode: defaults.mode,
            sale: SaleDefaults {
                merchant: defaults.merchant.clone(),
                iban: defaults.iban.clone(),
                prefix: defaults.prefix.clone(),
                requested_expiry: defaults.requested_expiry.map(Duration::from_secs),
                listen_url: format!("http://{}{}", defaults.listen, outband_terminal::DEFAULT_PATH),
            },
            enroll_link: settings.enroll_link.clone(),
            receipt_url: settings.receipt_url.clone(),
        }
    }
}

/// Which screen shows.
#[derive(Debug)]
enum Screen {
    Sale,
    Waiting(WaitingScreen),
    Result(ResultScreen),
    Recovery(RecoveryPrompt),
    Lookup(LookupScreen),
}

/// The whole TUI state.
pub struct App {
    till: Till,
    sale: SaleForm,
    screen: Screen,
    help: HelpPanel,
    show_help: bool,
    notices: Vec<String>,
    clock: Clock,
    now: i64,
    frame: usize,
    quit: bool,
    /// Ctrl-C while waiting: quit once the sale is cancelled.
    quit_when_done: bool,
}

/// Notices kept on the sale screen.
const MAX_NOTICES: usize = 3;

impl App {
    /// A till on the sale screen, reading the wall clock from `clock`.
    pub fn new(till: Till, clock: Clock) -> Self {
        let sale = SaleForm::new(till.currency, till.mode, till.sale.clone());
        let help = HelpPanel::new(till.enroll_link.clone());
        let now = clock();
        Self {
            till,
            sale,
            screen: Screen::Sale,
            help,
            show_help: false,
            notices: Vec::new(),
            clock,
            now,
            frame: 0,
            quit: false,
            quit_when_done: false,
        }
    }

    /// Whether the app should stop.
    pub fn should_quit(&self) -> bool {
        self.quit
    }

    fn waiting(&self) -> bool {
        matches!(self.screen, Screen::Waiting(_))
    }

    fn component(&mut self) -> &mut dyn Component {
        match &mut self.screen {
            Screen::Sale => &mut self.sale,
            Screen::Waiting(waiting) => waiting,
            Screen::Result(result) => result,
            Screen::Recovery(prompt) => prompt,
            Screen::Lookup(lookup) => lookup,
        }
    }

    /// Applies `action`; returns what it leads to.
    pub fn update(&mut self, action: Action) -> Option<Action> {
        match action {
            Action::Tick => {
                self.frame = self.frame.wrapping_add(1);
                self.now = (self.clock)();
                None
            }
            Action::Key(key) => self.handle_key(key),
            Action::Resize
            | Action::CheckJournal
            | Action::Discover
            | Action::LookupSales(_)
            | Action::Refund { .. } => None,
            Action::ServerFeatures { user_code } => {
                self.sale.set_user_code_supported(user_code);
                None
            }
            Action::ResumeSales => {
                if matches!(self.screen, Screen::Recovery(_)) {
                    self.screen = Screen::Sale;
                }
                None
            }
            Action::RecoveryFound(sales) => {
                if matches!(self.screen, Screen::Sale) && !sales.is_empty() {
                    self.screen = Screen::Recovery(RecoveryPrompt::new(sales));
                }
                None
            }
            Action::OpenLookup => {
                self.screen = Screen::Lookup(LookupScreen::new());
                None
            }
            Action::SalesFound(_) | Action::Refunded(_) => self.component().update(&action),
            Action::Quit => {
                self.quit = true;
                None
            }
            Action::ToggleHelp => {
                self.show_help = !self.show_help;
                None
            }
            Action::StartSale(order) => {
                self.notices.clear();
                self.screen = Screen::Waiting(WaitingScreen::sending(&order));
                None
            }
            Action::Started(info) => {
                match &mut self.screen {
                    Screen::Waiting(waiting) => {
                        waiting.update(&Action::Started(info));
                    }
                    _ => self.screen = Screen::Waiting(WaitingScreen::started(*info)),
                }
                None
            }
            Action::Progress(_) | Action::CancelSale => self.component().update(&action),
            Action::Finished(result) => {
                let link = self.receipt_link(&result);
                self.screen = Screen::Result(ResultScreen::new(*result).with_receipt_link(link));
                if self.quit_when_done {
                    self.quit = true;
                }
                None
            }
            Action::NewSale => {
                self.sale.clear();
                self.screen = Screen::Sale;
                None
            }
            Action::Notice(text) => {
                self.notices.push(text);
                if self.notices.len() > MAX_NOTICES {
                    self.notices.remove(0);
                }
                None
            }
        }
    }

    /// The customer's digital receipt of an executed payment: the
    /// configured template with the payment id and the reference filled in.
    fn receipt_link(&self, result: &SaleResult) -> Option<String> {
        let (SaleResult::Approved(receipt), Some(template)) = (result, &self.till.receipt_url) else {
            return None;
        };
        let payment = receipt.payment.as_ref()?;
        let encode = |text: &str| url::form_urlencoded::byte_serialize(text.as_bytes()).collect::<String>();
        Some(
            template
                .replace("{payment_id}", &encode(&payment.payment_id))
                .replace("{reference}", &encode(&receipt.reference)),
        )
    }

    fn handle_key(&mut self, key: KeyEvent) -> Option<Action> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        match key.code {
            KeyCode::Char('c' | 'q') if ctrl => {
                if self.waiting() {
                    // Withdraw the sale first; quit when the bank has answered.
                    self.quit_when_done = true;
                    return Some(Action::CancelSale);
                }
                Some(Action::Quit)
            }
            KeyCode::F(2) => Some(Action::ToggleHelp),
            KeyCode::F(3) if matches!(self.screen, Screen::Sale | Screen::Result(_)) && !self.show_help => {
                Some(Action::OpenLookup)
            }
            KeyCode::Esc if self.show_help => Some(Action::ToggleHelp),
            _ if self.show_help => None,
            _ => self.component().handle_key(key),
        }
    }

    /// Draws the frame: header, the screen, the key hints, and the help panel on top.
    pub fn draw(&self, frame: &mut Frame) {
        let area = frame.area();
        let mode = match &self.screen {
            Screen::Sale => self.sale.mode(),
            Screen::Waiting(waiting) => waiting.mode(),
            Screen::Result(result) => result.result().mode().unwrap_or_else(|| self.sale.mode()),
            Screen::Recovery(_) | Screen::Lookup(_) => self.sale.mode(),
        };
        let block = Block::bordered()
            .border_style(Style::new().fg(Color::DarkGray))
            .title(Line::from(vec![
                Span::raw(" Outband POS ").bold(),
                Span::raw("─ "),
                Span::raw(format!("{} ", self.till.sale.merchant)).cyan(),
            ]))
            .title(Line::from(format!(" {mode} · {} ", self.till.server)).right_aligned());
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let [notices, body, footer] = Layout::vertical([
            Constraint::Length(self.notice_rows()),
            Constraint::Min(0),
            Constraint::Length(1),
        ])
        .areas(inner);
        let ctx = Ctx {
            now: self.now,
            frame: self.frame,
        };
        let component: &dyn Component = match &self.screen {
            Screen::Sale => {
                self.draw_notices(frame, notices);
                &self.sale
            }
            Screen::Waiting(waiting) => waiting,
            Screen::Result(result) => result,
            Screen::Recovery(prompt) => prompt,
            Screen::Lookup(lookup) => lookup,
        };
        component.draw(frame, body, &ctx);
        let footer = Rect {
            x: footer.x.saturating_add(1),
            width: footer.width.saturating_sub(1),
            ..footer
        };
        frame.render_widget(Paragraph::new(key_hints(&component.keys())), footer);
        if self.show_help {
            self.help.draw(frame, area);
        }
    }

    fn notice_rows(&self) -> u16 {
        match self.screen {
            Screen::Sale => u16::try_from(self.notices.len()).unwrap_or(0),
            _ => 0,
        }
    }

    fn draw_notices(&self, frame: &mut Frame, area: Rect) {
        let lines: Vec<Line> = self
            .notices
            .iter()
            .map(|n| Line::from(format!(" ● {n}")).yellow())
            .collect();
        frame.render_widget(Paragraph::new(lines), area);
    }
}

#[cfg(test)]
mod tests;
