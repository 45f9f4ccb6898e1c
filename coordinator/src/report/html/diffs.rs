//! The vantages page's tables: one row per target seen differently (or
//! domain whose MTA-STS verdict differs), one column per vantage.

use super::escape;
use crate::report::model::{DomainDiff, TargetView, VantageDiff};

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
