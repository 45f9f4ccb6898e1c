//! The report as one self-contained HTML page: inline CSS and inline SVG
//! charts drawn with `plotters` (SVG backend, no fonts, no bitmaps), no
//! script, no fetch of anything. The same report renders to the same bytes.
//!
//! Every string that came from a user or the wire (scan names, labels,
//! values, host names) goes through [`escape`]; plotters escapes the text it
//! writes into the SVG itself.

mod chart;
mod diffs;
mod dns;

use std::collections::BTreeSet;

use mxscope_common::units::utc_minute;

use super::model::{
    Comparison, Distribution, Row, ScanInfo, ScanReport, VantageReport, VantagesReport,
};
use super::vantages::class_name;
use super::Headline;
use chart::{BarChart, Series};
use diffs::{diff_table, domain_diff_table};

/// The page of one scan: headline and distributions per vantage.
pub fn render_scan(report: &ScanReport) -> String {
    let title = format!("mxscope report: {}", report.scan.title());
    let mut body = scan_header(&report.scan, "Scan");
    if report.vantages.is_empty() {
        body.push_str("<p class=\"empty\">No vantage has reported for this scan.</p>\n");
    }
    for vantage in &report.vantages {
        body.push_str(&vantage_section(vantage));
    }
    if let Some(a) = &report.agreement {
        body.push_str(&dns::agreement_section(a));
    }
    page(&title, &body, report.schema_version)
}

/// Several scans side by side: one column per scan (its main vantage).
pub fn render_comparison(comparison: &Comparison) -> String {
    let scans = &comparison.scans;
    let titles: Vec<String> = scans.iter().map(|s| s.scan.title()).collect();
    let mut body = format!(
        "<header>\n<h1>Comparison of {} scans</h1>\n<p class=\"meta\">Each column is the main \
         (first) vantage of a scan.</p>\n</header>\n",
        scans.len()
    );
    if scans.is_empty() {
        body.push_str("<p class=\"empty\">No scan to compare.</p>\n");
        return page("mxscope comparison", &body, 0);
    }
    let mains: Vec<Option<&VantageReport>> = scans.iter().map(|s| s.vantages.first()).collect();

    body.push_str("<section>\n<h2>Headlines</h2>\n<ul class=\"headlines\">\n");
    for (title, main) in titles.iter().zip(&mains) {
        let sentence = main.map_or_else(
            || "No vantage reported".to_string(),
            |v| v.headline.to_string(),
        );
        body.push_str(&format!(
            "<li><strong>{}</strong>: {}</li>\n",
            escape(title),
            escape(&sentence)
        ));
    }
    body.push_str("</ul>\n");
    body.push_str("<table class=\"numbers\">\n<thead><tr><th scope=\"col\">Number</th>");
    for title in &titles {
        body.push_str(&format!("<th scope=\"col\">{}</th>", escape(title)));
    }
    body.push_str("</tr></thead>\n<tbody>\n");
    body.push_str("<tr><th scope=\"row\">Vantage</th>");
    for main in &mains {
        let name = main.map_or("—", |v| v.vantage.as_str());
        body.push_str(&format!("<td>{}</td>", escape(name)));
    }
    body.push_str("</tr>\n");
    let numbers: Vec<Vec<Number>> = mains
        .iter()
        .map(|m| m.map(|v| headline_numbers(&v.headline)).unwrap_or_default())
        .collect();
    for (i, label) in NUMBER_LABELS.iter().enumerate() {
        body.push_str(&format!("<th scope=\"row\">{}</th>", escape(label)));
        for column in &numbers {
            match column.get(i) {
                Some(n) => body.push_str(&format!(
                    "<td class=\"num\">{}{}</td>",
                    n.value,
                    share_suffix(n.value, n.of)
                )),
                None => body.push_str("<td>—</td>"),
            }
        }
        body.push_str("</tr>\n");
    }
    body.push_str("</tbody>\n</table>\n</section>\n");

    // Distributions by name, in the order they first appear.
    let mut names: Vec<&str> = Vec::new();
    for main in mains.iter().flatten() {
        for d in main.all_distributions() {
            if !names.contains(&d.name.as_str()) {
                names.push(&d.name);
            }
        }
    }
    for name in names {
        let per_scan: Vec<Option<&Distribution>> = mains
            .iter()
            .map(|m| m.and_then(|v| v.all_distributions().find(|d| d.name == name)))
            .collect();
        body.push_str(&compared_distribution(&titles, &per_scan));
    }
    body.push_str(&dns::agreement_comparison(&titles, comparison));
    page("mxscope comparison", &body, scans[0].schema_version)
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
                super::vantages::CLASSES
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
            escape(super::render::DOMAIN_DIFFS_TITLE)
        ));
        body.push_str(&domain_diff_table(&vantages, &report.domain_diffs));
        body.push_str("</section>\n");
    }
    body.push_str(&dns::dns_sections(&vantages, report));
    page(&title, &body, 0)
}

/// HTML-escape `text` for element content and quoted attribute values.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `12.3%`, or `–` for a share that is not a number.
fn fmt_percent(percent: f64) -> String {
    if percent.is_finite() {
        format!("{percent:.1}%")
    } else {
        "–".to_string()
    }
}

/// ` (12.3%)` of `of`, or nothing when `of` is zero.
fn share_suffix(n: u64, of: u64) -> String {
    if of == 0 {
        return String::new();
    }
    format!(
        " <span class=\"share\">({})</span>",
        fmt_percent(n as f64 * 100.0 / of as f64)
    )
}

const STYLE: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'Helvetica Neue',Arial,sans-serif;\
color:#1d232b;background:#fff;margin:0 auto;max-width:1000px;padding:1.5rem;line-height:1.45}\
h1{font-size:1.7rem;margin:0 0 .4rem}h2{font-size:1.35rem;margin-top:2.2rem;\
border-bottom:2px solid #dfe3e8;padding-bottom:.2rem}h3{font-size:1.1rem;margin:1.8rem 0 .2rem}\
.labels span{display:inline-block;background:#eef2f7;border:1px solid #d5dce5;border-radius:3px;\
padding:0 .4rem;margin:0 .3rem .3rem 0;font-size:.9rem}\
.meta,.population,footer{color:#56606c;font-size:.9rem}\
.headline{font-size:1.15rem;background:#f4f8fc;border-left:4px solid #0072b2;padding:.7rem 1rem}\
table{border-collapse:collapse;margin:.6rem 0 1rem;font-size:.92rem}\
th,td{border:1px solid #dfe3e8;padding:.25rem .6rem;text-align:left;vertical-align:top}\
thead th{background:#f2f4f7}td.num{text-align:right;font-variant-numeric:tabular-nums;\
white-space:nowrap}.share{color:#56606c}td.value{overflow-wrap:break-word}\
figure{margin:.4rem 0}svg.chart{max-width:100%;height:auto;display:block}\
.legend span{display:inline-block;margin-right:1rem;font-size:.9rem}\
.legend i{display:inline-block;width:.9rem;height:.9rem;margin-right:.3rem;vertical-align:-.1rem}\
code{font-size:.85rem;word-break:break-all}.empty{color:#56606c;font-style:italic}\
table.diffs td{font-size:.85rem}\n";

fn page(title: &str, body: &str, schema_version: u32) -> String {
    let schema = if schema_version == 0 {
        String::new()
    } else {
        format!(", report schema version {schema_version}")
    };
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>\n{STYLE}</style>\n</head>\n<body>\n{body}\
         <footer><p>Generated by mxscope{schema}.</p></footer>\n</body>\n</html>\n",
        escape(title)
    )
}

/// Title, labels and facts of a scan.
fn scan_header(scan: &ScanInfo, what: &str) -> String {
    let mut out = format!("<header>\n<h1>{what} {}</h1>\n", escape(&scan.name));
    if !scan.labels.is_empty() {
        out.push_str("<p class=\"labels\">");
        for (k, v) in &scan.labels {
            out.push_str(&format!("<span>{}={}</span>", escape(k), escape(v)));
        }
        out.push_str("</p>\n");
    }
    let finished = scan
        .finished_unix_ms
        .map_or_else(|| "not finished".to_string(), utc_minute);
    out.push_str(&format!(
        "<p class=\"meta\">Scan <code>{}</code> · {} domains submitted · vantages: {} · created \
         {} · finished {} · legacy protocol versions {}</p>\n</header>\n",
        escape(&scan.id),
        scan.domains,
        escape(&scan.vantages.join(", ")),
        utc_minute(scan.created_unix_ms),
        finished,
        if scan.legacy { "probed" } else { "not probed" }
    ));
    out
}

/// One headline number: its value and what its share is of (0: no share).
#[derive(Clone, Copy)]
struct Number {
    value: u64,
    of: u64,
}

const NUMBER_LABELS: [&str; 13] = [
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
fn headline_numbers(h: &Headline) -> Vec<Number> {
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

fn vantage_section(vantage: &VantageReport) -> String {
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
    if let Some(s) = &vantage.security {
        out.push_str(&format!(
            "<section class=\"security\">\n<h3>Security</h3>\n<p class=\"headline\">{}</p>\n",
            escape(&super::render::security_summary(s))
        ));
        if let Some(line) = super::render::resolver_line(s) {
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

/// A distribution's heading, bar chart and table.
fn distribution_block(d: &Distribution, heading: &str) -> String {
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
fn protocol_matrix(per_version: &[&Distribution]) -> String {
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

/// One distribution over several scans: grouped bars of percentages.
fn compared_distribution(titles: &[String], per_scan: &[Option<&Distribution>]) -> String {
    let Some(first) = per_scan.iter().flatten().next() else {
        return String::new();
    };
    let mut values: Vec<&str> = Vec::new();
    for d in per_scan.iter().flatten() {
        for r in &d.rows {
            if !values.contains(&r.value.as_str()) {
                values.push(&r.value);
            }
        }
    }
    let series = titles
        .iter()
        .zip(per_scan)
        .map(|(title, d)| Series {
            name: title.clone(),
            bars: values
                .iter()
                .map(|v| {
                    cell(d, v).map(|r| {
                        let len = if r.percent.is_finite() {
                            r.percent
                        } else {
                            0.0
                        };
                        (len, format!("{} ({})", fmt_percent(r.percent), r.count))
                    })
                })
                .collect(),
        })
        .collect();
    let chart = BarChart {
        title: format!("{}: percent of {} per scan", first.title, first.population),
        categories: values.iter().map(|v| v.to_string()).collect(),
        series,
        percent_axis: true,
    };
    let mut out = format!(
        "<section class=\"distribution\">\n<h3>{}</h3>\n<p class=\"population\">Percent of {} \
         in each scan.</p>\n<p class=\"legend\">",
        escape(&first.title),
        escape(&first.population)
    );
    for (i, title) in titles.iter().enumerate() {
        out.push_str(&format!(
            "<span><i style=\"background:{}\"></i>{}</span>",
            chart::color_hex(i),
            escape(title)
        ));
    }
    out.push_str(&format!(
        "</p>\n<figure>\n{}</figure>\n<table>\n<thead><tr><th scope=\"col\">Value</th>",
        chart.render()
    ));
    for title in titles {
        out.push_str(&format!("<th scope=\"col\">{}</th>", escape(title)));
    }
    out.push_str("</tr></thead>\n<tbody>\n<tr><th scope=\"row\">Total</th>");
    for d in per_scan {
        match d {
            Some(d) => out.push_str(&format!("<td class=\"num\">{}</td>", d.total)),
            None => out.push_str("<td>—</td>"),
        }
    }
    out.push_str("</tr>\n");
    for value in &values {
        out.push_str(&format!("<tr><td class=\"value\">{}</td>", escape(value)));
        for d in per_scan {
            match cell(d, value) {
                Some(r) => out.push_str(&format!(
                    "<td class=\"num\">{} <span class=\"share\">({})</span></td>",
                    r.count,
                    fmt_percent(r.percent)
                )),
                None => out.push_str("<td class=\"num\">—</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</section>\n");
    out
}

/// The row of `value` in `d`, if any.
fn cell<'a>(d: &Option<&'a Distribution>, value: &str) -> Option<&'a Row> {
    d.and_then(|d| d.rows.iter().find(|r| r.value == value))
}

#[cfg(test)]
mod tests;
