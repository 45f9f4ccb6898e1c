//! Horizontal bar charts as inline SVG, drawn with `plotters`' SVG backend.
//!
//! One row per category (top to bottom in the given order), one bar per
//! series in each row, a text label at the end of every bar. Category
//! labels are drawn by hand beside the plotting area so they line up with
//! the rows whatever the number of series. No fonts are needed: the SVG
//! carries `<text>` elements and the browser lays them out.

use std::error::Error;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::escape;

/// Okabe–Ito colours: distinguishable with the common colour blindnesses.
const COLORS: [(u8, u8, u8); 7] = [
    (0x00, 0x72, 0xB2),
    (0xE6, 0x9F, 0x00),
    (0x00, 0x9E, 0x73),
    (0xCC, 0x79, 0xA7),
    (0x56, 0xB4, 0xE9),
    (0xD5, 0x5E, 0x00),
    (0x59, 0x59, 0x59),
];

const WIDTH: u32 = 900;
/// Longest category label drawn in full; longer ones end in `…` (the table
/// beside the chart has them whole).
const MAX_LABEL_CHARS: usize = 44;
/// Rough width of one character of the 12px sans-serif labels.
const CHAR_PX: u32 = 7;
/// plotters writes `font-size` as the given size / 1.24.
const FONT: (&str, f64) = ("sans-serif", 12.0 * 1.24);

fn color(i: usize) -> RGBColor {
    let (r, g, b) = COLORS[i % COLORS.len()];
    RGBColor(r, g, b)
}

/// The CSS colour of series `i`, for legends outside the SVG.
pub(super) fn color_hex(i: usize) -> String {
    let (r, g, b) = COLORS[i % COLORS.len()];
    format!("#{r:02x}{g:02x}{b:02x}")
}

/// One series: per category, a bar length and its label (`None`: no bar).
pub(super) struct Series {
    pub(super) name: String,
    pub(super) bars: Vec<Option<(f64, String)>>,
}

pub(super) struct BarChart {
    /// For `<title>` and `aria-label`.
    pub(super) title: String,
    pub(super) categories: Vec<String>,
    pub(super) series: Vec<Series>,
    /// The axis is 0–100 %, not counts.
    pub(super) percent_axis: bool,
}

impl BarChart {
    /// The chart as an `<svg>` element with a `<title>`; never fails (a
    /// chart that cannot be drawn becomes a box saying so).
    pub(super) fn render(&self) -> String {
        let height = self.height();
        let mut svg = String::new();
        let drawn = if self.categories.is_empty() {
            draw_empty(&mut svg, height)
        } else {
            self.draw(&mut svg, height)
        };
        if drawn.is_err() {
            svg.clear();
            // Drawing into a String only fails on a plotters bug; say so.
            let _ = draw_message(&mut svg, height, "chart could not be drawn");
        }
        self.accessible(&svg, height)
    }

    fn row_px(&self) -> u32 {
        let bars = self.series.len().max(1) as u32;
        (bars * 16 + 10).max(26)
    }

    fn height(&self) -> u32 {
        if self.categories.is_empty() {
            return 60;
        }
        let rows = u32::try_from(self.categories.len()).unwrap_or(u32::MAX / 64);
        (rows.saturating_mul(self.row_px()) + 50).min(60_000)
    }

    /// Replace plotters' `<svg …>` opening tag by ours: a class, an ARIA
    /// role and label, a `<title>`, and no namespace URL (inline SVG in
    /// HTML needs none).
    fn accessible(&self, svg: &str, height: u32) -> String {
        let body = svg
            .find("<svg")
            .and_then(|start| svg[start..].find('>').map(|end| &svg[start + end + 1..]))
            .unwrap_or("</svg>\n");
        let title = escape(&self.title);
        let names: Vec<String> = self.series.iter().map(|s| escape(&s.name)).collect();
        let desc = if names.len() > 1 {
            format!(
                "<desc>One bar per value for each of: {}</desc>",
                names.join("; ")
            )
        } else {
            String::new()
        };
        format!(
            "<svg class=\"chart\" width=\"{WIDTH}\" height=\"{height}\" \
             viewBox=\"0 0 {WIDTH} {height}\" role=\"img\" aria-label=\"{title}\">\n\
             <title>{title}</title>{desc}{body}"
        )
    }

    fn draw(&self, svg: &mut String, height: u32) -> Result<(), Box<dyn Error>> {
        let n = self.categories.len();
        let labels: Vec<String> = self.categories.iter().map(|c| shorten(c)).collect();
        let label_chars = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let left = (label_chars as u32 * CHAR_PX + 16).clamp(60, WIDTH / 2);
        let bar_label_chars = self
            .series
            .iter()
            .flat_map(|s| s.bars.iter().flatten())
            .map(|(_, l)| l.chars().count())
            .max()
            .unwrap_or(0);
        let margin = 10;
        let plot_px = f64::from(WIDTH - left - 2 * margin);
        let reserve = (bar_label_chars as f64 * f64::from(CHAR_PX) + 12.0).min(plot_px / 2.0);
        let longest = self
            .series
            .iter()
            .flat_map(|s| s.bars.iter().flatten())
            .map(|(len, _)| *len)
            .filter(|len| len.is_finite())
            .fold(0.0_f64, f64::max);
        let longest = if self.percent_axis {
            longest.max(10.0)
        } else {
            longest.max(1.0)
        };
        let x_max = longest * plot_px / (plot_px - reserve);

        let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(margin)
            .margin_left(0)
            .set_label_area_size(LabelAreaPosition::Left, left)
            .set_label_area_size(LabelAreaPosition::Bottom, 24)
            .build_cartesian_2d(0.0..x_max, 0.0..n as f64)?;
        let percent = self.percent_axis;
        // Few ticks on a short count axis, so that they fall on whole numbers.
        let ticks = if percent {
            8
        } else {
            (x_max.floor() as usize).saturating_add(1).clamp(2, 8)
        };
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(ticks)
            .x_label_formatter(&|v| axis_label(*v, percent))
            .label_style(FONT)
            .axis_style(RGBColor(0x8a, 0x94, 0xa0))
            .bold_line_style(RGBColor(0xe4, 0xe8, 0xed))
            .light_line_style(TRANSPARENT)
            .draw()?;

        let series_count = self.series.len().max(1) as f64;
        let band = 0.8 / series_count;
        let label_style = TextStyle::from(FONT.into_font())
            .color(&RGBColor(0x1d, 0x23, 0x2b))
            .pos(Pos::new(HPos::Left, VPos::Center));
        for (s, series) in self.series.iter().enumerate() {
            let bars = series.bars.iter().enumerate().filter_map(|(row, bar)| {
                let (len, label) = bar.as_ref()?;
                // Row 0 at the top: its band is [n-1, n).
                let top = (n - row) as f64 - 0.1 - s as f64 * band;
                let len = if len.is_finite() { len.max(0.0) } else { 0.0 };
                Some((top, len, label))
            });
            let fill = color(s).filled();
            for (top, len, label) in bars {
                let bottom = top - band;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(0.0, top - band * 0.08), (len, bottom + band * 0.08)],
                    fill,
                )))?;
                let at = chart.backend_coord(&(len, top - band / 2.0));
                root.draw(&Text::new(label.clone(), (at.0 + 5, at.1), &label_style))?;
            }
        }
        let category_style = TextStyle::from(FONT.into_font())
            .color(&RGBColor(0x1d, 0x23, 0x2b))
            .pos(Pos::new(HPos::Right, VPos::Center));
        for (row, label) in labels.into_iter().enumerate() {
            let at = chart.backend_coord(&(0.0, (n - row) as f64 - 0.5));
            root.draw(&Text::new(label, (at.0 - 6, at.1), &category_style))?;
        }
        root.present()?;
        Ok(())
    }
}

fn draw_empty(svg: &mut String, height: u32) -> Result<(), Box<dyn Error>> {
    draw_message(svg, height, "No data")
}

fn draw_message(svg: &mut String, height: u32, message: &str) -> Result<(), Box<dyn Error>> {
    let root = SVGBackend::with_string(svg, (WIDTH, height)).into_drawing_area();
    root.fill(&RGBColor(0xf6, 0xf7, 0xf9))?;
    let style = TextStyle::from(FONT.into_font())
        .color(&RGBColor(0x56, 0x60, 0x6c))
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        message.to_string(),
        ((WIDTH / 2) as i32, (height / 2) as i32),
        &style,
    ))?;
    root.present()?;
    Ok(())
}

/// Axis tick text: whole numbers only (fractional ticks stay unlabelled).
fn axis_label(v: f64, percent: bool) -> String {
    if !v.is_finite() || (v - v.round()).abs() > 1e-9 {
        return String::new();
    }
    if percent {
        format!("{}%", v.round())
    } else {
        format!("{}", v.round())
    }
}

/// `label`, cut to [`MAX_LABEL_CHARS`] characters with a final `…`.
fn shorten(label: &str) -> String {
    if label.chars().count() <= MAX_LABEL_CHARS {
        return label.to_string();
    }
    let mut out: String = label.chars().take(MAX_LABEL_CHARS - 1).collect();
    out.push('…');
    out
}
