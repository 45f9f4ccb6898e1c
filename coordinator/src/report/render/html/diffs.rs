//! The vantages page: counts per disagreement class, then its tables: one
//! row per target seen differently (or domain whose MTA-STS verdict
//! differs), one column per vantage.

use std::collections::BTreeSet;

use super::sections::distribution_block;
use super::{dns, escape, page, scan_header};
use crate::report::model::{Distribution, DomainDiff, TargetView, VantageDiff, VantagesReport};
use crate::report::vantages::{self, class_name};

/// The per-domain MTA-STS table of the vantages page.
pub(super) fn domain_diff_table(vantages: &[&str], diffs: &[DomainDiff]) -> String {
    let mut out = String::from("<table class=\"diffs\">\n<thead><tr><th scope=\"col\">Domain</th>");
    for v in vantages {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(v)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for diff in diffs {
        out.push_str(&format!(
            "<tr><td><code>{}</code></td>",
            escape(&diff.domain)
        ));
        for v in vantages {
            match diff.mta_sts.get(*v) {
                Some(verdict) => out.push_str(&format!("<td>{}</td>", escape(verdict))),
                None => out.push_str("<td class=\"empty\">not seen</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// The per-target table of the vantages page.
pub(super) fn diff_table(vantages: &[&str], diffs: &[VantageDiff]) -> String {
    let mut out = String::from(
        "<table class=\"diffs\">\n<thead><tr><th scope=\"col\">IP</th>\
         <th scope=\"col\">MX names</th><th scope=\"col\">Classes</th>",
    );
    for v in vantages {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(v)));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for diff in diffs {
        let classes: Vec<String> = diff
            .classes
            .iter()
            .map(|c| match serde_json::to_value(c) {
                Ok(serde_json::Value::String(s)) => s,
                _ => format!("{c:?}"),
            })
            .collect();
        out.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td>",
            escape(&diff.ip),
            escape(&diff.mx_names.join(", ")),
            escape(&classes.join(", "))
        ));
        for v in vantages {
            match diff.views.get(*v) {
                Some(view) => out.push_str(&format!("<td>{}</td>", target_view(view))),
                None => out.push_str("<td class=\"empty\">not seen</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n");
    out
}

/// What one vantage saw, as a table cell's content.
fn target_view(view: &TargetView) -> String {
    let mut parts = vec![format!("<strong>{}</strong>", escape(&view.outcome))];
    if let Some(code) = view.greeting_code {
        parts.push(format!("greeting {code}"));
    }
    parts.push(
        if view.starttls_advertised {
            "STARTTLS advertised"
        } else {
            "no STARTTLS"
        }
        .to_string(),
    );
    if let Some(sha) = &view.certificate_sha256 {
        let short: String = sha.chars().take(16).collect();
        let ellipsis = if sha.chars().count() > 16 { "…" } else { "" };
        parts.push(format!(
            "cert <code title=\"{}\">{}{ellipsis}</code>",
            escape(sha),
            escape(&short)
        ));
    }
    if let Some(version) = &view.tls_version {
        parts.push(escape(version));
    }
    parts.join("<br>")
}

/// Where the vantages of a scan disagree: counts per class, then every target.
pub fn render_vantages(report: &VantagesReport) -> String {
    let title = format!("mxscope vantages: {}", report.scan.title());
    let mut body = scan_header(&report.scan, "Vantages of scan");
    body.push_str(&format!(
        "<section>\n<h2>Summary</h2>\n<p class=\"headline\">{} targets compared between vantages; \
         {} seen differently.</p>\n",
        report.targets_compared,
        report.diffs.len()
    ));
    if report.domains_compared > 0 {
        body.push_str(&format!(
            "<p>{} domains with MTA-STS compared between vantages; {} with a \
             different verdict.</p>\n",
            report.domains_compared,
            report.domain_diffs.len()
        ));
    }
    let summary = Distribution::new(
        "disagreement",
        "Targets per disagreement class",
        "targets compared (a target may be in several classes)",
        report.targets_compared,
        report
            .summary
            .iter()
            .filter(|(k, _)| {
                vantages::CLASSES
                    .iter()
                    .any(|c| class_name(*c) == k.as_str())
            })
            .map(|(k, v)| (k.clone(), *v)),
    );
    body.push_str(&distribution_block(&summary, "h3"));
    body.push_str("</section>\n");

    let mut vantages: Vec<&str> = report.scan.vantages.iter().map(String::as_str).collect();
    let seen: BTreeSet<&str> = report
        .diffs
        .iter()
        .flat_map(|d| d.views.keys().map(String::as_str))
        .chain(
            report
                .domain_diffs
                .iter()
                .flat_map(|d| d.mta_sts.keys().map(String::as_str)),
        )
        .collect();
    for v in seen {
        if !vantages.contains(&v) {
            vantages.push(v);
        }
    }
    body.push_str("<section>\n<h2>Targets seen differently</h2>\n");
    if report.diffs.is_empty() {
        body.push_str("<p class=\"empty\">Every vantage saw every target alike.</p>\n");
    } else {
        body.push_str(&diff_table(&vantages, &report.diffs));
    }
    body.push_str("</section>\n");
    if !report.domain_diffs.is_empty() {
        body.push_str(&format!(
            "<section>\n<h2>{}</h2>\n",
            escape(crate::report::render::DOMAIN_DIFFS_TITLE)
        ));
        body.push_str(&domain_diff_table(&vantages, &report.domain_diffs));
        body.push_str("</section>\n");
    }
    body.push_str(&dns::dns_sections(&vantages, report));
    page(&title, &body, 0)
}
