//! The comparison page: several scans side by side, one column per scan
//! (its main vantage): headlines, numbers, every distribution.

use super::chart::{self, BarChart, Series};
use super::sections::{headline_numbers, Number, NUMBER_LABELS};
use super::{dns, escape, fmt_percent, page, share_suffix};
use crate::report::model::{Comparison, Distribution, Row, VantageReport};

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

/// One distribution over several scans: grouped bars of percentages.
pub(super) fn compared_distribution(
    titles: &[String],
    per_scan: &[Option<&Distribution>],
) -> String {
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
pub(super) fn cell<'a>(d: &Option<&'a Distribution>, value: &str) -> Option<&'a Row> {
    d.and_then(|d| d.rows.iter().find(|r| r.value == value))
}
