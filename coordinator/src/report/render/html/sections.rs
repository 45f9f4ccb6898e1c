//! The sections of the scan page: a vantage's headline numbers, its
//! distributions as tables and bar charts, and the protocol matrix. The
//! comparison and vantages pages reuse the numbers and the blocks.

use super::chart::{BarChart, Series};
use super::{escape, fmt_percent, share_suffix};
use crate::report::model::{Distribution, VantageReport};
use crate::report::Headline;

/// One headline number: its value and what its share is of (0: no share).
#[derive(Clone, Copy)]
pub(super) struct Number {
    pub(super) value: u64,
    pub(super) of: u64,
}

pub(super) const NUMBER_LABELS: [&str; 13] = [
    "Domains submitted",
    "… with MX",
    "… with implicit MX (A/AAAA only)",
    "… with null MX",
    "… with a DNS error",
    "Unique MX hosts",
    "… supporting STARTTLS",
    "… declaring no STARTTLS",
    "… with a connection error",
    "… inconsistent between their IPs",
    "Domains covered (≥ 1 STARTTLS MX)",
    "Domains with every MX STARTTLS",
    "Domains with a STARTTLS primary MX",
];

/// The numbers of [`NUMBER_LABELS`], in that order.
pub(super) fn headline_numbers(h: &Headline) -> Vec<Number> {
    let of_domains = |value| Number {
        value,
        of: h.domains,
    };
    let of_mx = |value| Number {
        value,
        of: h.unique_mx,
    };
    vec![
        Number {
            value: h.domains,
            of: 0,
        },
        of_domains(h.domains_with_mx),
        of_domains(h.domains_implicit_mx),
        of_domains(h.domains_null_mx),
        of_domains(h.domains_dns_error),
        Number {
            value: h.unique_mx,
            of: 0,
        },
        of_mx(h.mx_starttls),
        of_mx(h.mx_no_starttls),
        of_mx(h.mx_connection_error),
        of_mx(h.mx_inconsistent),
        of_domains(h.domains_covered),
        of_domains(h.domains_all_mx_starttls),
        of_domains(h.domains_primary_mx_starttls),
    ]
}

pub(super) fn vantage_section(vantage: &VantageReport) -> String {
    let mut out = format!(
        "<section class=\"vantage\">\n<h2>Vantage {}</h2>\n<p class=\"headline\">{}</p>\n\
         <table class=\"numbers\">\n<thead><tr><th scope=\"col\">Number</th>\
         <th scope=\"col\">Count</th></tr></thead>\n<tbody>\n",
        escape(&vantage.vantage),
        escape(&vantage.headline.to_string())
    );
    for (label, n) in NUMBER_LABELS
        .iter()
        .zip(headline_numbers(&vantage.headline))
    {
        out.push_str(&format!(
            "<tr><th scope=\"row\">{}</th><td class=\"num\">{}{}</td></tr>\n",
            escape(label),
            n.value,
            share_suffix(n.value, n.of)
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    let (protocols, others): (Vec<&Distribution>, Vec<&Distribution>) = vantage
        .distributions
        .iter()
        .partition(|d| d.name.starts_with("protocol_"));
    for d in others {
        out.push_str(&distribution_block(d, "h3"));
    }
    if !protocols.is_empty() {
        out.push_str(&protocol_matrix(&protocols));
    }
    if !vantage.findings.is_empty() {
        out.push_str(&findings_table(vantage));
    }
    if let Some(s) = &vantage.security {
        out.push_str(&format!(
            "<section class=\"security\">\n<h3>Security</h3>\n<p class=\"headline\">{}</p>\n",
            escape(&crate::report::render::security_summary(s))
        ));
        if let Some(line) = crate::report::render::resolver_line(s) {
            out.push_str(&format!(
                "<p class=\"resolver-check\">{}</p>\n",
                escape(&line)
            ));
        }
        for d in &s.distributions {
            out.push_str(&distribution_block(d, "h4"));
        }
        out.push_str("</section>\n");
    }
    out.push_str("</section>\n");
    out
}

/// Hosts with findings: host, address, finding, severity, evidence.
fn findings_table(vantage: &VantageReport) -> String {
    let mut out = String::from(
        "<section class=\"findings\">\n<h3>Hosts with findings</h3>\n<table>\n<thead><tr>\
         <th scope=\"col\">Host</th><th scope=\"col\">Address</th>\
         <th scope=\"col\">Finding</th><th scope=\"col\">Severity</th>\
         <th scope=\"col\">Evidence</th></tr></thead>\n<tbody>\n",
    );
    for row in &vantage.findings {
        out.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape(&row.host),
            escape(&row.ip),
            escape(&row.finding),
            escape(&row.severity),
            escape(&row.evidence)
        ));
    }
    out.push_str("</tbody>\n</table>\n");
    let shown = vantage.findings.len() as u64;
    if vantage.findings_total > shown {
        out.push_str(&format!(
            "<p>The first {shown} of {} rows; <code>mxscope export --format findings</code> lists them all.</p>\n",
            vantage.findings_total
        ));
    }
    out.push_str("</section>\n");
    out
}

/// A distribution's heading, bar chart and table.
pub(super) fn distribution_block(d: &Distribution, heading: &str) -> String {
    let chart = BarChart {
        title: format!("{}: counts of {} {}", d.title, d.total, d.population),
        categories: d.rows.iter().map(|r| r.value.clone()).collect(),
        series: vec![Series {
            name: d.population.clone(),
            bars: d
                .rows
                .iter()
                .map(|r| {
                    Some((
                        r.count as f64,
                        format!("{} ({})", r.count, fmt_percent(r.percent)),
                    ))
                })
                .collect(),
        }],
        percent_axis: false,
    };
    let mut out = format!(
        "<section class=\"distribution\">\n<{heading}>{}</{heading}>\n\
         <p class=\"population\">Over {} {}.</p>\n<figure>\n{}</figure>\n\
         <table>\n<thead><tr><th scope=\"col\">Value</th><th scope=\"col\">Count</th>\
         <th scope=\"col\">Percent</th></tr></thead>\n<tbody>\n",
        escape(&d.title),
        d.total,
        escape(&d.population),
        chart.render()
    );
    for r in &d.rows {
        out.push_str(&format!(
            "<tr><td class=\"value\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>\n",
            escape(&r.value),
            r.count,
            fmt_percent(r.percent)
        ));
    }
    if d.rows.is_empty() {
        out.push_str("<tr><td colspan=\"3\" class=\"empty\">No data.</td></tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// Protocol support as one table and one chart: versions × support rows,
/// counts of MX hosts supporting STARTTLS.
pub(super) fn protocol_matrix(per_version: &[&Distribution]) -> String {
    let mut rows: Vec<String> = Vec::new();
    for d in per_version {
        for r in &d.rows {
            if !rows.contains(&r.value) {
                rows.push(r.value.clone());
            }
        }
    }
    let version_of = |d: &Distribution| d.title.trim_end_matches(" support").to_string();
    let chart = BarChart {
        title: "Protocol support: MX hosts per version".to_string(),
        categories: per_version.iter().map(|d| version_of(d)).collect(),
        series: rows
            .iter()
            .map(|row| Series {
                name: row.clone(),
                bars: per_version
                    .iter()
                    .map(|d| {
                        d.rows.iter().find(|r| &r.value == row).map(|r| {
                            (
                                r.count as f64,
                                format!("{} ({})", r.count, fmt_percent(r.percent)),
                            )
                        })
                    })
                    .collect(),
            })
            .collect(),
        percent_axis: false,
    };
    let population = per_version.first().map_or_else(String::new, |d| {
        format!("{} {}", d.total, escape(&d.population))
    });
    let mut out = format!(
        "<section class=\"distribution protocols\">\n<h3>Protocol support</h3>\n\
         <p class=\"population\">Over {population}.</p>\n<figure>\n{}</figure>\n\
         <table>\n<thead><tr><th scope=\"col\">Version</th>",
        chart.render()
    );
    for row in &rows {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(row)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for d in per_version {
        out.push_str(&format!(
            "<tr><th scope=\"row\">{}</th>",
            escape(&version_of(d))
        ));
        for row in &rows {
            let n = d
                .rows
                .iter()
                .find(|r| &r.value == row)
                .map_or(0, |r| r.count);
            out.push_str(&format!("<td class=\"num\">{n}</td>"));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}
