//! Text and Markdown of the vantages report: each differing target (a row
//! per vantage), the domains whose MTA-STS verdict differs, and the DNS
//! part: one table per
//! domain whose DNS differs (a row per vantage), its address notes, and
//! the targets that only one vantage probed with the domains behind them.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use super::text::{capitalize, is_partial, scan_line, Table, PARTIAL_NOTE};
use crate::report::model::{AddressNote, DnsDiff, VantageDiff, VantagesReport};
use crate::report::vantages::{class_name, summary_line};

/// Title of the one-vantage target table.
pub(super) const ONE_VANTAGE_TITLE: &str = "Targets probed from one vantage only";

fn dns_title(diff: &DnsDiff) -> String {
    let classes: Vec<&str> = diff.classes.iter().map(|c| class_name(*c)).collect();
    format!("{}: {}", diff.domain, classes.join(", "))
}

fn dns_table(diff: &DnsDiff) -> Table {
    let mut t = Table::new(
        &[
            "vantage",
            "status",
            "MX",
            "addresses",
            "DNSSEC MX",
            "DNSSEC addresses",
        ],
        &[false; 6],
    );
    for (vantage, view) in &diff.views {
        let mut mx = view.mx.join(", ");
        if view.null_mx {
            mx = "null MX".to_string();
        } else if view.implicit_mx {
            mx = format!("implicit {mx}");
        }
        let addresses: Vec<String> = view
            .addresses
            .iter()
            .map(|(name, ips)| format!("{name} {}", ips.join(" ")))
            .collect();
        let dnssec: Vec<String> = view
            .dnssec_exchanges
            .iter()
            .map(|(name, s)| format!("{name} {s}"))
            .collect();
        t.row(vec![
            vantage.clone(),
            view.status.clone(),
            if mx.is_empty() { "-".into() } else { mx },
            dash(addresses.join("; ")),
            view.dnssec_mx.clone().unwrap_or_else(|| "-".into()),
            dash(dnssec.join("; ")),
        ]);
    }
    t
}

fn dash(s: String) -> String {
    if s.is_empty() {
        "-".into()
    } else {
        s
    }
}

/// "b saw 127.0.3.15 for mx.example: outside every network the other
/// vantages saw, not public".
pub(crate) fn note_line(note: &AddressNote) -> String {
    let mut why = Vec::new();
    if note.outside_networks {
        why.push("outside every network (/24, /48) the other vantages saw for it");
    }
    if note.not_public {
        why.push("not a public address, where the other vantages saw one");
    }
    format!(
        "{} saw {} for {}: {}",
        note.vantage,
        note.address,
        note.exchange,
        why.join("; ")
    )
}

fn one_vantage_table(report: &VantagesReport) -> Table {
    let mut t = Table::new(&["IP", "vantage", "MX names", "domains"], &[false; 4]);
    for target in &report.one_vantage_targets {
        let mut domains = target.domains.join(", ");
        if target.more_domains > 0 {
            let _ = write!(domains, " (+{} more)", target.more_domains);
        }
        t.row(vec![
            target.ip.clone(),
            target.vantage.clone(),
            dash(target.mx_names.join(", ")),
            dash(domains),
        ]);
    }
    t
}

/// The DNS differences and one-vantage targets as text.
pub(super) fn dns_text(report: &VantagesReport) -> String {
    let mut out = String::new();
    for diff in &report.dns_diffs {
        let _ = writeln!(out, "\n{}", dns_title(diff));
        out.push_str(&dns_table(diff).text("  "));
        for note in &diff.notes {
            let _ = writeln!(out, "  note: {}", note_line(note));
        }
    }
    if !report.one_vantage_targets.is_empty() {
        let _ = writeln!(out, "\n{ONE_VANTAGE_TITLE}");
        out.push_str(&one_vantage_table(report).text("  "));
    }
    out
}

/// The DNS differences and one-vantage targets as Markdown.
pub(super) fn dns_markdown(report: &VantagesReport) -> String {
    let mut out = String::new();
    for diff in &report.dns_diffs {
        let _ = writeln!(out, "## {}\n", dns_title(diff));
        out.push_str(&dns_table(diff).markdown());
        for note in &diff.notes {
            let _ = writeln!(out, "\n- note: {}", note_line(note));
        }
        out.push('\n');
    }
    if !report.one_vantage_targets.is_empty() {
        let _ = writeln!(out, "## {ONE_VANTAGE_TITLE}\n");
        out.push_str(&one_vantage_table(report).markdown());
        out.push('\n');
    }
    out
}

fn views_table(diff: &VantageDiff) -> Table {
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

fn diff_title(diff: &VantageDiff) -> String {
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
    out.push_str(&dns_text(report));
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
    out.push_str(&dns_markdown(report));
    out
}
