//! The building blocks of the text and Markdown renderings: aligned
//! tables, the scan line and the partial-scan note.

use crate::report::distributions::labels::format_unix_ms;
use crate::report::model::ScanInfo;

/// The note a report of an unfinished scan carries.
pub(super) const PARTIAL_NOTE: &str = "scan is still running: partial results";

/// Whether a report covers an unfinished scan.
pub(super) fn is_partial(scan: &ScanInfo) -> bool {
    scan.finished_unix_ms.is_none()
}

/// A table of strings; numeric columns are right-aligned.
pub(super) struct Table {
    header: Vec<String>,
    right: Vec<bool>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(super) fn new(header: &[&str], right: &[bool]) -> Self {
        Self {
            header: header.iter().map(|h| (*h).to_string()).collect(),
            right: right.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(super) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let mut widths: Vec<usize> = self.header.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                if let Some(w) = widths.get_mut(i) {
                    *w = (*w).max(cell.chars().count());
                }
            }
        }
        widths
    }

    pub(super) fn text(&self, indent: &str) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            let mut text = String::from(indent);
            for (i, cell) in cells.iter().enumerate() {
                let width = widths.get(i).copied().unwrap_or(0);
                let pad = width.saturating_sub(cell.chars().count());
                if i > 0 {
                    text.push_str("  ");
                }
                if self.right.get(i).copied().unwrap_or(false) {
                    text.push_str(&" ".repeat(pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.push_str(&" ".repeat(pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        };
        line(&self.header, &mut out);
        for row in &self.rows {
            line(row, &mut out);
        }
        out
    }

    pub(super) fn markdown(&self) -> String {
        let widths = self.widths();
        let mut out = String::new();
        let cells = |cells: &[String]| -> String {
            let parts: Vec<String> = cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let c = c.replace('|', "\\|");
                    let width = widths.get(i).copied().unwrap_or(0);
                    if self.right.get(i).copied().unwrap_or(false) {
                        format!("{c:>width$}")
                    } else {
                        format!("{c:<width$}")
                    }
                })
                .collect();
            format!("| {} |\n", parts.join(" | "))
        };
        out.push_str(&cells(&self.header));
        let rule: Vec<String> = widths
            .iter()
            .enumerate()
            .map(|(i, w)| {
                let dashes = "-".repeat((*w).max(3));
                if self.right.get(i).copied().unwrap_or(false) {
                    format!("{}:", &dashes[1..])
                } else {
                    dashes
                }
            })
            .collect();
        out.push_str(&format!("| {} |\n", rule.join(" | ")));
        for row in &self.rows {
            out.push_str(&cells(row));
        }
        out
    }
}

pub(super) fn scan_line(scan: &ScanInfo) -> String {
    let mut line = format!(
        "scan {} \"{}\", {} domains, vantages {}, created {}",
        scan.id,
        scan.title(),
        scan.domains,
        scan.vantages.join(", "),
        format_unix_ms(scan.created_unix_ms)
    );
    match scan.finished_unix_ms {
        Some(ms) => line.push_str(&format!(", finished {}", format_unix_ms(ms))),
        None => line.push_str(", still running"),
    }
    if scan.legacy {
        line.push_str(", legacy protocol probes");
    }
    line
}

pub(super) fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}
