//! F2: how a customer enrolls an authenticator, over whatever screen is
//! showing. With an `enroll_link` in the config (an `outband://enroll?…` link
//! made by `outband-server users invite <user>`) it shows that link as a QR
//! code and as the `outband-device enroll` command; without one it says where
//! a link comes from. Activation links are one-time: the panel says so.

use ratatui::layout::{Constraint, Flex, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, BorderType, Clear, Padding, Paragraph, Wrap};
use ratatui::Frame;

use super::key_hints;
use super::qr::QrWidget;

/// The enrollment help panel.
#[derive(Debug)]
pub struct HelpPanel {
    link: Option<String>,
    qr: Option<QrWidget>,
}

impl HelpPanel {
    /// The panel for `link` (from the config), if any.
    pub fn new(link: Option<String>) -> Self {
        let qr = link.as_deref().map(QrWidget::new);
        Self { link, qr }
    }

    /// Draws the panel centred over `area`.
    pub fn draw(&self, frame: &mut Frame, area: Rect) {
        let width = area.width.saturating_sub(8).min(90);
        let height = area.height.saturating_sub(2);
        let [panel] = Layout::horizontal([Constraint::Length(width)])
            .flex(Flex::Center)
            .areas(area);
        let [panel] = Layout::vertical([Constraint::Length(height)])
            .flex(Flex::Center)
            .areas(panel);
        frame.render_widget(Clear, panel);
        let block = Block::bordered()
            .border_type(BorderType::Rounded)
            .border_style(Style::new().fg(Color::Cyan))
            .title(Line::from(" Enroll an authenticator ").bold())
            .title_bottom(key_hints(&[("F2/Esc", "close")]).centered())
            .padding(Padding::horizontal(1));
        let inner = block.inner(panel);
        frame.render_widget(block, panel);

        let mut text = Vec::new();
        match &self.link {
            Some(link) => {
                text.push(Line::raw(
                    "Scan the code with the Outband authenticator app, or on the device run:",
                ));
                text.push(Line::raw(""));
                text.push(Line::raw(format!("  outband-device enroll {link}")).bold());
                text.push(Line::raw(""));
                text.push(
                    Line::raw(
                        "The link is one-time and short-lived (outband-server users invite <user>); \
                         put a fresh one in enroll_link once it has been used.",
                    )
                    .dark_gray(),
                );
            }
            None => {
                text.push(Line::raw(
                    "A customer's authenticator is enrolled with a one-time activation link.",
                ));
                text.push(Line::raw(""));
                text.push(Line::raw("1. The bank's operator makes one:"));
                text.push(Line::raw("     outband-server users invite <user>").bold());
                text.push(Line::raw("2. On the customer's device:"));
                text.push(Line::raw("     outband-device enroll <link>").bold());
                text.push(Line::raw(""));
                text.push(
                    Line::raw("Set enroll_link in the outband-pos config file to show a link here as a QR code.")
                        .dark_gray(),
                );
            }
        }
        let text_height = u16::try_from(text.len() + 2).unwrap_or(u16::MAX);
        let (qr_width, qr_height) = self.qr.as_ref().map_or((0, 0), QrWidget::size);
        let qr = match &self.qr {
            Some(qr) if qr_width <= inner.width && qr_height.saturating_add(text_height) <= inner.height => Some(qr),
            Some(_) => {
                text.insert(0, Line::raw("(The window is too small for the QR code.)").yellow());
                None
            }
            None => None,
        };
        let qr_rows = if qr.is_some() { qr_height } else { 0 };
        let [qr_area, text_area] = Layout::vertical([Constraint::Length(qr_rows), Constraint::Min(0)]).areas(inner);
        if let Some(qr) = qr {
            let [centred] = Layout::horizontal([Constraint::Length(qr_width)])
                .flex(Flex::Center)
                .areas(qr_area);
            frame.render_widget(qr, centred);
        }
        frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: false }), text_area);
    }
}
