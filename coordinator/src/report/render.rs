//! Text, Markdown, JSON and CSV renderings of the report model (HTML is
//! [`super::html`]). Text and Markdown print aligned tables with counts and
//! percentages (one decimal); JSON is the model itself (pretty); CSV is the
//! per-domain table.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use super::compare::{comparison_table, Cell, ComparisonTable};
use super::labels::format_unix_ms;
use super::model::{
    Comparison, Distribution, DomainRow, ScanInfo, ScanReport, SecuritySection, VantageReport,
    VantagesReport,
};
use super::vantages::{class_name, summary_line};

/// What can go wrong writing a report.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// Writing the output failed (disk full, closed pipe): check the
    /// destination and run again.
    #[error("writing the report: {0}")]
    Io(#[from] std::io::Error),
    /// JSON serialization failed: a bug; report it.
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// CSV writing failed (usually an I/O error underneath).
    #[error("CSV: {0}")]
    Csv(#[from] csv::Error),
}

/// The note a report of an unfinished scan carries.
pub const PARTIAL_NOTE: &str = "scan is still running: partial results";

/// Whether a report covers an unfinished scan.
pub fn is_partial(scan: &ScanInfo) -> bool {
    scan.finished_unix_ms.is_none()
}

/// `12.5%`.
pub fn percent(p: f64) -> String {
    format!("{p:.1}%")
}

// ---- tables ----

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

fn headline_table(v: &VantageReport) -> Table {
    let mut t = Table::new(&["", "count", "%"], &[false, true, true]);
    for n in v.headline.numbers() {
        t.row(vec![
            n.label.to_string(),
            n.count.to_string(),
            n.percent.map(percent).unwrap_or_default(),
        ]);
    }
    t
}

fn distribution_table(d: &Distribution) -> Table {
    let mut t = Table::new(&["value", "count", "%"], &[false, true, true]);
    for row in &d.rows {
        t.row(vec![
            row.value.clone(),
            row.count.to_string(),
            percent(row.percent),
        ]);
    }
    t
}

fn scan_line(scan: &ScanInfo) -> String {
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

// ---- scan report ----

/// The report as text: each vantage opens with the headline sentence.
pub fn scan_text(report: &ScanReport) -> String {
    let mut out = String::new();
    for (i, v) in report.vantages.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "{}.", v.headline);
        if i == 0 && is_partial(&report.scan) {
            let _ = writeln!(out, "Note: {PARTIAL_NOTE}.");
        }
        let _ = writeln!(out, "Vantage {}; {}.", v.vantage, scan_line(&report.scan));
        if let Some(line) = v.security.as_ref().and_then(resolver_line) {
            let _ = writeln!(out, "{line}");
        }
        out.push('\n');
        out.push_str("Headline numbers\n");
        out.push_str(&headline_table(v).text("  "));
        for d in &v.distributions {
            let _ = writeln!(out, "\n{} ({} {})", d.title, d.total, d.population);
            out.push_str(&distribution_table(d).text("  "));
        }
        let _ = writeln!(out, "\nPoliteness\n  {}.", v.politeness.summary());
        if let Some(s) = &v.security {
            let _ = writeln!(out, "\nSecurity\n  {}", security_summary(s));
            for d in &s.distributions {
                let _ = writeln!(out, "\n{} ({} {})", d.title, d.total, d.population);
                out.push_str(&distribution_table(d).text("  "));
            }
        }
    }
    if report.vantages.is_empty() {
        let _ = writeln!(out, "No vantage to report; {}.", scan_line(&report.scan));
    }
    if let Some(a) = &report.agreement {
        out.push_str(&super::agreement::text(a));
    }
    out
}

/// The report as Markdown.
pub fn scan_markdown(report: &ScanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# mxscope report: {} ({})\n",
        report.scan.title(),
        report.scan.id
    );
    if is_partial(&report.scan) {
        let _ = writeln!(out, "> **Note:** {PARTIAL_NOTE}.\n");
    }
    let _ = writeln!(out, "{}.\n", capitalize(&scan_line(&report.scan)));
    for v in &report.vantages {
        let _ = writeln!(out, "## Vantage {}\n", v.vantage);
        let _ = writeln!(out, "{}.\n", v.headline);
        if let Some(line) = v.security.as_ref().and_then(resolver_line) {
            let _ = writeln!(out, "> **{line}**\n");
        }
        out.push_str(&headline_table(v).markdown());
        for d in &v.distributions {
            let _ = writeln!(out, "\n### {}\n\n{} {}\n", d.title, d.total, d.population);
            out.push_str(&distribution_table(d).markdown());
        }
        let _ = writeln!(out, "\n### Politeness\n\n{}.", v.politeness.summary());
        if let Some(s) = &v.security {
            let _ = writeln!(out, "\n### Security\n\n{}", security_summary(s));
            for d in &s.distributions {
                let _ = writeln!(out, "\n#### {}\n\n{} {}\n", d.title, d.total, d.population);
                out.push_str(&distribution_table(d).markdown());
            }
        }
        out.push('\n');
    }
    if let Some(a) = &report.agreement {
        out.push_str(&super::agreement::markdown(a));
    }
    out
}

/// The resolver self-check line shown at the top of a vantage: a warning
/// when its resolvers cannot support validation.
pub fn resolver_line(s: &SecuritySection) -> Option<String> {
    let check = s.resolver_check.as_ref()?;
    Some(if check.usable {
        format!("DNSSEC resolver check: {}.", check.detail)
    } else {
        format!("Warning: {}.", check.detail)
    })
}

/// The security section's lead sentence: DNSSEC-signed MX share and DANE
/// adoption.
pub fn security_summary(s: &SecuritySection) -> String {
    let share = |n: u64| {
        if s.domains_with_mx == 0 {
            String::new()
        } else {
            format!(
                " ({})",
                percent(n as f64 * 100.0 / s.domains_with_mx as f64)
            )
        }
    };
    format!(
        "DNSSEC-signed MX: {} of {} domains with MX{}; DANE adoption: {}{} ({} valid).",
        s.mx_dnssec_signed,
        s.domains_with_mx,
        share(s.mx_dnssec_signed),
        s.dane_adopted,
        share(s.dane_adopted),
        s.dane_valid
    )
}

fn capitalize(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Any model value as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> Result<String, RenderError> {
    Ok(serde_json::to_string_pretty(value)?)
}

// ---- per-domain table ----

/// Columns of the per-domain CSV, in order.
pub const DOMAIN_CSV_HEADER: [&str; 8] = [
    "vantage",
    "domain",
    "dns_status",
    "mx_count",
    "covered",
    "primary_covered",
    "best_outcome",
    "worst_outcome",
];

/// Streams per-domain rows as CSV (header first, even without rows).
pub struct DomainCsv<W: Write> {
    out: csv::Writer<W>,
}

impl<W: Write> DomainCsv<W> {
    pub fn new(out: W) -> Result<Self, RenderError> {
        let mut out = csv::WriterBuilder::new()
            .has_headers(false)
            .from_writer(out);
        out.write_record(DOMAIN_CSV_HEADER)?;
        Ok(Self { out })
    }

    pub fn write(&mut self, row: &DomainRow) -> Result<(), RenderError> {
        Ok(self.out.serialize(row)?)
    }

    pub fn finish(mut self) -> Result<(), RenderError> {
        Ok(self.out.flush()?)
    }
}

/// Streams `{"domains":[row,…],"report":{…}}`: the rows as they come (one
/// per line), the report at the end (it is known only after the rows).
pub struct DomainJson<W: Write> {
    out: W,
    rows: u64,
}

impl<W: Write> DomainJson<W> {
    pub fn new(mut out: W) -> Result<Self, RenderError> {
        out.write_all(b"{\"domains\":[")?;
        Ok(Self { out, rows: 0 })
    }

    pub fn write(&mut self, row: &DomainRow) -> Result<(), RenderError> {
        self.out
            .write_all(if self.rows == 0 { b"\n" } else { b",\n" })?;
        serde_json::to_writer(&mut self.out, row)?;
        self.rows += 1;
        Ok(())
    }

    pub fn finish<T: Serialize>(mut self, report: &T) -> Result<(), RenderError> {
        self.out.write_all(b"\n],\n\"report\":")?;
        serde_json::to_writer_pretty(&mut self.out, report)?;
        self.out.write_all(b"}\n")?;
        Ok(self.out.flush()?)
    }
}

// ---- comparison ----

fn cell_text(cell: Option<&Cell>) -> String {
    match cell {
        None => "—".to_string(),
        Some(Cell {
            count,
            percent: Some(p),
        }) => format!("{count} ({})", percent(*p)),
        Some(Cell {
            count,
            percent: None,
        }) => count.to_string(),
    }
}

fn comparison_header(table: &ComparisonTable) -> (Vec<&str>, Vec<bool>) {
    let mut header = vec![""];
    header.extend(table.columns.iter().map(String::as_str));
    let mut right = vec![false];
    right.extend(table.columns.iter().map(|_| true));
    (header, right)
}

/// Scans side by side as text: one aligned table, a heading row per section.
pub fn comparison_text(comparison: &Comparison) -> String {
    let table = comparison_table(comparison);
    let (header, right) = comparison_header(&table);
    let mut t = Table::new(&header, &right);
    for (i, section) in table.sections.iter().enumerate() {
        if i > 0 {
            t.row(Vec::new());
        }
        t.row(vec![section.title.clone()]);
        for row in &section.rows {
            let mut cells = vec![format!("  {}", row.label)];
            cells.extend(row.cells.iter().map(|c| cell_text(c.as_ref())));
            t.row(cells);
        }
    }
    let mut out = format!("Comparison of {} scans\n", comparison.scans.len());
    for s in &comparison.scans {
        if is_partial(&s.scan) {
            let _ = writeln!(out, "Note: {}: {PARTIAL_NOTE}.", s.scan.id);
        }
    }
    out.push('\n');
    out.push_str(&t.text(""));
    out
}

/// Scans side by side as Markdown: one table per section.
pub fn comparison_markdown(comparison: &Comparison) -> String {
    let table = comparison_table(comparison);
    let (header, right) = comparison_header(&table);
    let titles: Vec<String> = comparison.scans.iter().map(|s| s.scan.title()).collect();
    let mut out = format!("# mxscope comparison: {}\n\n", titles.join(" vs "));
    for s in &comparison.scans {
        if is_partial(&s.scan) {
            let _ = writeln!(out, "> **Note:** {}: {PARTIAL_NOTE}.\n", s.scan.id);
        }
    }
    for section in &table.sections {
        let _ = writeln!(out, "## {}\n", section.title);
        let mut t = Table::new(&header, &right);
        for row in &section.rows {
            let mut cells = vec![row.label.clone()];
            cells.extend(row.cells.iter().map(|c| cell_text(c.as_ref())));
            t.row(cells);
        }
        out.push_str(&t.markdown());
        out.push('\n');
    }
    out
}

// ---- vantages ----

fn views_table(diff: &super::model::VantageDiff) -> Table {
    let mut t = Table::new(
        &[
            "vantage",
            "outcome",
            "STARTTLS",
            "certificate",
            "TLS",
            "greeting",
            "EHLO",
        ],
        &[false; 7],
    );
    for (vantage, view) in &diff.views {
        t.row(vec![
            vantage.clone(),
            view.outcome.clone(),
            if view.starttls_advertised {
                "yes"
            } else {
                "no"
            }
            .to_string(),
            view.certificate_sha256
                .as_deref()
                .map_or_else(|| "-".to_string(), |s| s.chars().take(16).collect()),
            view.tls_version.clone().unwrap_or_else(|| "-".to_string()),
            view.greeting_code
                .map_or_else(|| "-".to_string(), |c| c.to_string()),
            view.ehlo.join(" "),
        ]);
    }
    t
}

fn diff_title(diff: &super::model::VantageDiff) -> String {
    let classes: Vec<&str> = diff.classes.iter().map(|c| class_name(*c)).collect();
    let names = if diff.mx_names.is_empty() {
        String::new()
    } else {
        format!(" ({})", diff.mx_names.join(", "))
    };
    format!("{}{names}: {}", diff.ip, classes.join(", "))
}

/// Domains whose MTA-STS verdict differs: one row per domain, one column
/// per vantage (`-` where a vantage has no record of it).
fn domain_diffs_table(report: &VantagesReport) -> Table {
    let vantages: BTreeSet<&String> = report
        .domain_diffs
        .iter()
        .flat_map(|d| d.mta_sts.keys())
        .collect();
    let mut header = vec!["domain"];
    header.extend(vantages.iter().map(|v| v.as_str()));
    let mut t = Table::new(&header, &vec![false; header.len()]);
    for diff in &report.domain_diffs {
        let mut row = vec![diff.domain.clone()];
        row.extend(vantages.iter().map(|v| {
            diff.mta_sts
                .get(*v)
                .cloned()
                .unwrap_or_else(|| "-".to_string())
        }));
        t.row(row);
    }
    t
}

/// The title of the MTA-STS table.
pub const DOMAIN_DIFFS_TITLE: &str = "Domains whose MTA-STS verdict differs";

/// The vantages report as text: the summary line, then each differing target.
pub fn vantages_text(report: &VantagesReport) -> String {
    let mut out = format!("{}.\n", summary_line(report));
    if is_partial(&report.scan) {
        let _ = writeln!(out, "Note: {PARTIAL_NOTE}.");
    }
    let _ = writeln!(out, "{}.", capitalize(&scan_line(&report.scan)));
    for diff in &report.diffs {
        let _ = writeln!(out, "\n{}", diff_title(diff));
        out.push_str(&views_table(diff).text("  "));
    }
    if !report.domain_diffs.is_empty() {
        let _ = writeln!(out, "\n{DOMAIN_DIFFS_TITLE}");
        out.push_str(&domain_diffs_table(report).text("  "));
    }
    out.push_str(&super::vantages_render::dns_text(report));
    out
}

/// The vantages report as Markdown.
pub fn vantages_markdown(report: &VantagesReport) -> String {
    let mut out = format!(
        "# mxscope vantages: {} ({})\n\n",
        report.scan.title(),
        report.scan.id
    );
    if is_partial(&report.scan) {
        let _ = writeln!(out, "> **Note:** {PARTIAL_NOTE}.\n");
    }
    let _ = writeln!(out, "{}.\n", summary_line(report));
    for diff in &report.diffs {
        let _ = writeln!(out, "## {}\n", diff_title(diff));
        out.push_str(&views_table(diff).markdown());
        out.push('\n');
    }
    if !report.domain_diffs.is_empty() {
        let _ = writeln!(out, "## {DOMAIN_DIFFS_TITLE}\n");
        out.push_str(&domain_diffs_table(report).markdown());
        out.push('\n');
    }
    out.push_str(&super::vantages_render::dns_markdown(report));
    out
}
