//! A QR code as a ratatui widget: the `qrcode` crate's half-block renderer
//! (two modules per character cell, `▀ ▄ █`), drawn black on white whatever
//! the terminal's colours, inside a white margin that serves as quiet zone.

use qrcode::render::unicode::Dense1x2;
use qrcode::QrCode;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::Line;
use ratatui::widgets::{Block, Padding, Paragraph, Widget};

/// White margin around the code: columns on each side (rows are half that).
const MARGIN: u16 = 2;

/// A QR code of some text, or why there is none.
#[derive(Debug)]
pub struct QrWidget {
    lines: Result<Vec<String>, String>,
}

impl QrWidget {
    /// Encodes `data`.
    pub fn new(data: &str) -> Self {
        let lines = QrCode::new(data.as_bytes())
            .map(|code| {
                code.render::<Dense1x2>()
                    .dark_color(Dense1x2::Dark)
                    .light_color(Dense1x2::Light)
                    .quiet_zone(false)
                    .build()
                    .lines()
                    .map(str::to_owned)
                    .collect()
            })
            .map_err(|err| format!("cannot make a QR code: {err}"));
        Self { lines }
    }

    /// Columns and rows the widget needs, margin included.
    pub fn size(&self) -> (u16, u16) {
        match &self.lines {
            Ok(lines) => {
                let width = lines.first().map_or(0, |l| l.chars().count());
                let width = u16::try_from(width).unwrap_or(u16::MAX);
                let height = u16::try_from(lines.len()).unwrap_or(u16::MAX);
                (width.saturating_add(2 * MARGIN), height.saturating_add(MARGIN))
            }
            Err(text) => (u16::try_from(text.len()).unwrap_or(u16::MAX), 1),
        }
    }
}

impl Widget for &QrWidget {
    fn render(self, area: Rect, buf: &mut Buffer) {
        match &self.lines {
            Ok(lines) => {
                let style = Style::new().fg(Color::Black).bg(Color::White);
                let block = Block::new()
                    .style(style)
                    .padding(Padding::new(MARGIN, MARGIN, MARGIN / 2, MARGIN / 2));
                let text: Vec<Line> = lines.iter().map(|l| Line::raw(l.as_str())).collect();
                Paragraph::new(text).style(style).block(block).render(area, buf);
            }
            Err(text) => Paragraph::new(text.as_str()).render(area, buf),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_code_reads_back_as_the_text() {
        // Read the modules back from the cells: each cell holds two, one above the other.
        let widget = QrWidget::new("outband://enroll?code=ABCD-EFGH");
        let (width, height) = widget.size();
        let area = Rect::new(0, 0, width, height);
        let mut buf = Buffer::empty(area);
        (&widget).render(area, &mut buf);
        let modules = usize::from(width - 2 * MARGIN);
        let mut dark = vec![vec![false; modules]; modules];
        for y in 0..modules {
            for (x, row) in dark[y].iter_mut().enumerate() {
                let cell = &buf[(MARGIN + x as u16, MARGIN / 2 + (y / 2) as u16)];
                let (top, bottom) = match cell.symbol() {
                    "█" => (true, true),
                    "▀" => (true, false),
                    "▄" => (false, true),
                    _ => (false, false),
                };
                *row = if y % 2 == 0 { top } else { bottom };
            }
        }
        let drawn: Vec<bool> = dark.into_iter().flatten().collect();
        let expected: Vec<bool> = QrCode::new(b"outband://enroll?code=ABCD-EFGH")
            .unwrap()
            .to_colors()
            .iter()
            .map(|c| *c == qrcode::Color::Dark)
            .collect();
        assert_eq!(drawn, expected);
    }
}
