//! The main report's section on a scan measured from two or more
//! vantages: the share of targets and domains on which every vantage
//! agrees, the count per class of disagreement and who is behind each
//! class ([`Agreement`], built from the [`VantagesReport`]). Text and
//! Markdown list at most [`LISTED`] members per class; JSON has them all.

use std::fmt::Write as _;

use crate::report::distributions::labels::percent;
use crate::report::model::{Agreement, VantagesReport};
use crate::report::vantages::dns::DNS_CLASSES;
use crate::report::vantages::{class_name, CLASSES};
use crate::report::Disagreement;

/// Members listed per class in text, Markdown and HTML.
pub const LISTED: usize = 10;

/// Every class in report order: targets, then domains.
pub fn all_classes() -> impl Iterator<Item = Disagreement> {
    CLASSES
        .into_iter()
        .chain(DNS_CLASSES)
        .chain([Disagreement::MtaStsDiffers])
}

fn share(n: u64, of: u64) -> f64 {
    if of == 0 {
        100.0
    } else {
        n as f64 * 100.0 / of as f64
    }
}

/// The agreement figures of a vantages report.
pub fn agreement(report: &VantagesReport) -> Agreement {
    let mut a = Agreement {
        vantages: report.scan.vantages.clone(),
        targets_compared: report.targets_compared,
        targets_agreeing: report
            .targets_compared
            .saturating_sub(report.diffs.len() as u64),
        domains_compared: report.dns_domains_compared,
        domains_agreeing: report.domains_agreeing,
        one_vantage_targets: report.one_vantage_targets.len() as u64,
        ..Agreement::default()
    };
    a.targets_agreeing_percent = share(a.targets_agreeing, a.targets_compared);
    a.domains_agreeing_percent = share(a.domains_agreeing, a.domains_compared);
    for diff in &report.diffs {
        for class in &diff.classes {
            a.members
                .entry(class_name(*class).to_string())
                .or_default()
                .push(diff.ip.clone());
        }
    }
    for diff in &report.dns_diffs {
        for class in &diff.classes {
            a.members
                .entry(class_name(*class).to_string())
                .or_default()
                .push(diff.domain.clone());
        }
    }
    for diff in &report.domain_diffs {
        a.members
            .entry(class_name(Disagreement::MtaStsDiffers).to_string())
            .or_default()
            .push(diff.domain.clone());
    }
    a.classes = a
        .members
        .iter()
        .map(|(class, members)| (class.clone(), members.len() as u64))
        .collect();
    a
}

/// "Vantages a, b agree on 98.1% of 106 targets and 97.3% of 73 domains".
pub fn headline(a: &Agreement) -> String {
    format!(
        "Vantages {} agree on {} of {} target{} probed from two or more and {} of {} domain{} resolved from two or more",
        a.vantages.join(", "),
        percent(a.targets_agreeing_percent),
        a.targets_compared,
        if a.targets_compared == 1 { "" } else { "s" },
        percent(a.domains_agreeing_percent),
        a.domains_compared,
        if a.domains_compared == 1 { "" } else { "s" },
    )
}

/// `ip, ip, … (+3 more)`.
pub fn listed(members: &[String]) -> String {
    let mut text = members
        .iter()
        .take(LISTED)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if members.len() > LISTED {
        let _ = write!(text, " (+{} more)", members.len() - LISTED);
    }
    text
}

/// The classes present, in report order, with their count and members.
pub fn rows(a: &Agreement) -> Vec<(&'static str, u64, &[String])> {
    all_classes()
        .filter_map(|class| {
            let name = class_name(class);
            let members = a.members.get(name)?;
            Some((name, members.len() as u64, members.as_slice()))
        })
        .collect()
}

/// The section as text (indented rows under a title).
pub fn text(a: &Agreement) -> String {
    let mut out = format!("\nVantage agreement\n  {}.\n", headline(a));
    for (name, count, members) in rows(a) {
        let _ = writeln!(out, "  {name}: {count} ({})", listed(members));
    }
    if a.one_vantage_targets > 0 {
        let _ = writeln!(
            out,
            "  {} target{} probed from one vantage only (see `mxscope vantages`)",
            a.one_vantage_targets,
            if a.one_vantage_targets == 1 { "" } else { "s" }
        );
    }
    out
}

/// The section as Markdown.
pub fn markdown(a: &Agreement) -> String {
    let mut out = format!("## Vantage agreement\n\n{}.\n\n", headline(a));
    let rows = rows(a);
    if !rows.is_empty() {
        out.push_str("| class | count | targets or domains |\n|---|---:|---|\n");
        for (name, count, members) in rows {
            let _ = writeln!(out, "| {name} | {count} | {} |", listed(members));
        }
        out.push('\n');
    }
    if a.one_vantage_targets > 0 {
        let _ = writeln!(
            out,
            "{} targets probed from one vantage only (see `mxscope vantages`).\n",
            a.one_vantage_targets
        );
    }
    out
}
