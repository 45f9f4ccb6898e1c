//! Text and Markdown of the DNS part of the vantages report: one table per
//! domain whose DNS differs (a row per vantage), its address notes, and
//! the targets that only one vantage probed with the domains behind them.

use std::fmt::Write as _;

use super::model::{AddressNote, DnsDiff, VantagesReport};
use super::render::Table;
use super::vantages::class_name;

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
