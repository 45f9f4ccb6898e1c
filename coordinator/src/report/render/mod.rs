//! Text, Markdown, JSON and CSV renderings of the report model (HTML is
//! [`self::html`]). Text and Markdown print aligned tables with counts and
//! percentages (one decimal); JSON is the model itself (pretty); CSV is the
//! per-domain table. `vantages`: the text and Markdown of the vantages
//! report; `text`: aligned tables and the lines every rendering shares.

pub mod html;
mod text;
mod vantages;

use std::fmt::Write as _;
use std::io::Write;

use serde::Serialize;

use self::text::{capitalize, is_partial, scan_line, Table, PARTIAL_NOTE};
pub use self::vantages::{vantages_markdown, vantages_text, DOMAIN_DIFFS_TITLE};
use super::compare::{comparison_table, Cell, ComparisonTable};
use super::model::{
    Comparison, Distribution, DomainRow, ScanReport, SecuritySection, VantageReport,
};
use crate::report::distributions::labels::percent;

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

/// Rows of the hosts-with-findings list in text and Markdown (JSON and
/// HTML have up to [`super::model::FINDING_ROWS`]).
const LISTED_FINDINGS: usize = 20;

/// The first [`LISTED_FINDINGS`] rows of a vantage's findings, and the line
/// that says how many there are in all; `None` without findings.
fn findings_list(v: &VantageReport) -> Option<(Table, String)> {
    if v.findings.is_empty() {
        return None;
    }
    let mut t = Table::new(
        &["host", "address", "finding", "severity", "evidence"],
        &[false, false, false, false, false],
    );
    for row in v.findings.iter().take(LISTED_FINDINGS) {
        t.row(vec![
            row.host.clone(),
            row.ip.clone(),
            row.finding.clone(),
            row.severity.clone(),
            row.evidence.clone(),
        ]);
    }
    let shown = v.findings.len().min(LISTED_FINDINGS) as u64;
    let line = if shown == v.findings_total {
        format!("{shown} rows, worst first")
    } else {
        format!(
            "{shown} of {} rows, worst first; `mxscope export --format findings` lists them all",
            v.findings_total
        )
    };
    Some((t, line))
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
        if let Some((table, line)) = findings_list(v) {
            let _ = writeln!(out, "\nHosts with findings ({line})");
            out.push_str(&table.text("  "));
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
        out.push_str(&super::vantages::agreement::text(a));
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
        if let Some((table, line)) = findings_list(v) {
            let _ = writeln!(out, "\n### Hosts with findings\n\n{line}.\n");
            out.push_str(&table.markdown());
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
        out.push_str(&super::vantages::agreement::markdown(a));
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

#[cfg(test)]
mod tests {
    use super::super::model::{FindingRow, VantageReport};
    use super::*;

    #[test]
    fn the_findings_list_is_cut_and_says_so() {
        let row = |i: usize| FindingRow {
            host: format!("mx{i}.example"),
            ip: "192.0.2.1".into(),
            finding: "rc4".into(),
            severity: "medium".into(),
            evidence: "tls1_2: TLS_RSA_WITH_RC4_128_SHA".into(),
        };
        let mut v = VantageReport {
            findings: (0..25).map(row).collect(),
            findings_total: 1500,
            ..VantageReport::default()
        };
        let (table, line) = findings_list(&v).expect("rows");
        assert_eq!(table.text("").lines().count(), 1 + LISTED_FINDINGS);
        assert_eq!(
            line,
            "20 of 1500 rows, worst first; `mxscope export --format findings` lists them all"
        );
        v.findings.truncate(3);
        v.findings_total = 3;
        assert_eq!(findings_list(&v).unwrap().1, "3 rows, worst first");
        v.findings.clear();
        assert!(findings_list(&v).is_none());
    }
}
