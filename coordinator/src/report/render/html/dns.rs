//! The DNS part of the vantages page (one row per domain whose DNS
//! differs, one column per vantage; the one-vantage targets) and the
//! agreement section of the scan page.

use super::escape;
use crate::report::compare::{comparison_table, AGREEMENT_TITLE};
use crate::report::model::{Agreement, Comparison, DnsView, VantagesReport};
use crate::report::vantages::agreement::{self, LISTED};
use crate::report::vantages::class_name;

fn view_cell(view: &DnsView) -> String {
    let mut lines = vec![format!("status {}", view.status)];
    if view.null_mx {
        lines.push("null MX".into());
    }
    if view.implicit_mx {
        lines.push("implicit MX".into());
    }
    lines.extend(view.mx.iter().map(|mx| format!("MX {mx}")));
    lines.extend(
        view.addresses
            .iter()
            .map(|(name, ips)| format!("{name}: {}", ips.join(" "))),
    );
    if let Some(s) = &view.dnssec_mx {
        lines.push(format!("DNSSEC MX {s}"));
    }
    lines.extend(
        view.dnssec_exchanges
            .iter()
            .map(|(name, s)| format!("DNSSEC {name} {s}")),
    );
    lines
        .iter()
        .map(|l| escape(l))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// The DNS sections of the vantages page (empty when nothing differs).
pub(super) fn dns_sections(vantages: &[&str], report: &VantagesReport) -> String {
    let mut out = String::new();
    if !report.dns_diffs.is_empty() {
        out.push_str(
            "<section>\n<h2>Domains whose DNS differs</h2>\n<table class=\"diffs\">\n\
             <thead><tr><th scope=\"col\">Domain</th><th scope=\"col\">Classes</th>",
        );
        for v in vantages {
            out.push_str(&format!("<th scope=\"col\">{}</th>", escape(v)));
        }
        out.push_str("</tr></thead>\n<tbody>\n");
        for diff in &report.dns_diffs {
            let classes: Vec<&str> = diff.classes.iter().map(|c| class_name(*c)).collect();
            let notes: Vec<String> = diff
                .notes
                .iter()
                .map(|n| escape(&crate::report::render::vantages::note_line(n)))
                .collect();
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}{}</td>",
                escape(&diff.domain),
                escape(&classes.join(", ")),
                if notes.is_empty() {
                    String::new()
                } else {
                    format!("<br>{}", notes.join("<br>"))
                }
            ));
            for v in vantages {
                match diff.views.get(*v) {
                    Some(view) => out.push_str(&format!("<td>{}</td>", view_cell(view))),
                    None => out.push_str("<td class=\"empty\">not seen</td>"),
                }
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
    if !report.one_vantage_targets.is_empty() {
        out.push_str(
            "<section>\n<h2>Targets probed from one vantage only</h2>\n<table class=\"diffs\">\n\
             <thead><tr><th scope=\"col\">IP</th><th scope=\"col\">Vantage</th>\
             <th scope=\"col\">MX names</th><th scope=\"col\">Domains</th></tr></thead>\n<tbody>\n",
        );
        for t in &report.one_vantage_targets {
            let mut domains = t.domains.join(", ");
            if t.more_domains > 0 {
                domains.push_str(&format!(" (+{} more)", t.more_domains));
            }
            out.push_str(&format!(
                "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                escape(&t.ip),
                escape(&t.vantage),
                escape(&t.mx_names.join(", ")),
                escape(&domains)
            ));
        }
        out.push_str("</tbody>\n</table>\n</section>\n");
    }
    out
}

/// The agreement section of the scan page.
pub(super) fn agreement_section(a: &Agreement) -> String {
    let mut out = format!(
        "<section>\n<h2>Vantage agreement</h2>\n<p class=\"headline\">{}.</p>\n",
        escape(&agreement::headline(a))
    );
    let rows = agreement::rows(a);
    if !rows.is_empty() {
        out.push_str(&format!(
            "<table class=\"diffs\">\n<thead><tr><th scope=\"col\">Class</th>\
             <th scope=\"col\">Count</th><th scope=\"col\">Targets or domains (first {LISTED})</th>\
             </tr></thead>\n<tbody>\n"
        ));
        for (name, count, members) in rows {
            out.push_str(&format!(
                "<tr><td>{}</td><td>{count}</td><td>{}</td></tr>\n",
                escape(name),
                escape(&agreement::listed(members))
            ));
        }
        out.push_str("</tbody>\n</table>\n");
    }
    if a.one_vantage_targets > 0 {
        out.push_str(&format!(
            "<p>{} targets probed from one vantage only.</p>\n",
            a.one_vantage_targets
        ));
    }
    out.push_str("</section>\n");
    out
}

/// The agreement rows of a comparison (empty when no scan has two or more
/// vantages): one column per scan.
pub(super) fn agreement_comparison(titles: &[String], comparison: &Comparison) -> String {
    let table = comparison_table(comparison);
    let Some(section) = table.sections.iter().find(|s| s.title == AGREEMENT_TITLE) else {
        return String::new();
    };
    let mut out = format!(
        "<section>\n<h2>{}</h2>\n<table class=\"numbers\">\n<thead><tr><th scope=\"col\">Figure</th>",
        escape(AGREEMENT_TITLE)
    );
    for title in titles {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(title)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &section.rows {
        out.push_str(&format!(
            "<tr><th scope=\"row\">{}</th>",
            escape(&row.label)
        ));
        for cell in &row.cells {
            match cell {
                Some(c) => out.push_str(&format!(
                    "<td class=\"num\">{}{}</td>",
                    c.count,
                    c.percent
                        .map(|p| format!(" ({})", crate::report::distributions::labels::percent(p)))
                        .unwrap_or_default()
                )),
                None => out.push_str("<td>—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}
