use std::collections::BTreeMap;

use super::*;
use crate::report::model::{
    Comparison, Disagreement, Distribution, DomainDiff, Row, TargetView, VantageDiff,
    VantageReport, VantagesReport,
};
use crate::report::Headline;

fn headline(vantage: &str) -> Headline {
    Headline {
        vantage: vantage.to_string(),
        domains: 1000,
        domains_with_mx: 900,
        domains_implicit_mx: 20,
        domains_null_mx: 30,
        domains_dns_error: 50,
        unique_mx: 400,
        mx_starttls: 300,
        mx_no_starttls: 60,
        mx_connection_error: 40,
        mx_inconsistent: 7,
        domains_covered: 850,
        domains_all_mx_starttls: 800,
        domains_primary_mx_starttls: 840,
    }
}

fn counts(pairs: &[(&str, u64)]) -> Vec<(String, u64)> {
    pairs.iter().map(|(v, c)| (v.to_string(), *c)).collect()
}

fn distributions() -> Vec<Distribution> {
    let population = "MX hosts supporting STARTTLS";
    vec![
        Distribution::new(
            "key",
            "Key type and size",
            population,
            300,
            counts(&[("RSA 2048", 200), ("EC P-256", 80), ("RSA 4096", 20)]),
        ),
        Distribution::new(
            "verification",
            "Verification result",
            population,
            300,
            counts(&[("valid", 250), ("self_signed", 30), ("unknown_issuer", 20)]),
        ),
        Distribution::new(
            "highest_protocol",
            "Highest protocol",
            population,
            300,
            counts(&[("TLSv1.3", 210), ("TLSv1.2", 90)]),
        ),
        Distribution::new("expiry", "Certificate expiry", population, 0, Vec::new()),
    ]
}

fn scan(name: &str) -> ScanReport {
    let mut labels = BTreeMap::new();
    labels.insert("country".to_string(), "it".to_string());
    labels.insert("dataset".to_string(), "gov".to_string());
    ScanReport {
        schema_version: 1,
        scan: ScanInfo {
            id: "scan-0001".to_string(),
            name: name.to_string(),
            labels,
            vantages: vec!["eu-1".to_string()],
            domains: 1000,
            created_unix_ms: 1_700_000_000_000,
            finished_unix_ms: Some(1_700_003_600_000),
            legacy: false,
            tls_depth: false,
        },
        vantages: vec![VantageReport {
            vantage: "eu-1".to_string(),
            headline: headline("eu-1"),
            distributions: distributions(),
            security: None,
            politeness: Default::default(),
            ..VantageReport::default()
        }],
        agreement: None,
    }
}

/// Outside references or active content a self-contained page must not
/// have. Every literal `<` starts a real tag (user text is escaped), so the
/// attribute checks look inside tags only.
fn assert_self_contained(html: &str) {
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "page contains a script");
    assert!(!lower.contains("<img") && !lower.contains("<link") && !lower.contains("<iframe"));
    assert!(!STYLE.contains("url(") && !STYLE.contains("@import"));
    for tag in lower.split('<').skip(1) {
        let tag = tag.split('>').next().unwrap_or_default();
        for bad in ["src=", "href=", "http:", "https:", "url(", "on"] {
            let found = if bad == "on" {
                // Event handler attributes: ` onload=`, ` onclick=`…
                tag.split_whitespace()
                    .any(|a| a.starts_with("on") && a.contains('='))
            } else {
                tag.contains(bad)
            };
            assert!(!found, "tag <{tag}> contains {bad:?}");
        }
    }
}

#[test]
fn scan_page_has_headline_distributions_and_charts() {
    let report = scan("gov-it");
    let html = render_scan(&report);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert!(html.contains(&report.vantages[0].headline.to_string()));
    assert!(html.contains("On a total of 1000 domain names, 400 unique MX records"));
    for d in &report.vantages[0].distributions {
        assert!(html.contains(&d.title), "missing {}", d.title);
        for r in &d.rows {
            assert!(html.contains(&r.value), "missing {}", r.value);
        }
    }
    assert!(html.contains("66.7%"), "percent of RSA 2048");
    assert_eq!(html.matches("<svg").count(), distributions().len());
    assert_eq!(html.matches("</svg>").count(), distributions().len());
    assert_eq!(html.matches("role=\"img\"").count(), distributions().len());
    assert!(html.contains("<title>Key type and size"));
    assert!(html.contains("country=it"));
    assert!(html.contains("2023-11-14 22:13 UTC"));
    assert!(html.contains("No data"));
    assert_self_contained(&html);
    assert_eq!(html, render_scan(&report), "deterministic");
}

#[test]
fn user_text_is_escaped() {
    let mut report = scan("<script>alert(1)</script>");
    report
        .scan
        .labels
        .insert("x\"><img src=x>".to_string(), "'&".to_string());
    report.vantages[0].vantage = "<b>v</b>".to_string();
    report.vantages[0].distributions[0].rows.push(Row {
        value: "<script>alert(2)</script>".to_string(),
        count: 1,
        percent: f64::NAN,
    });
    for html in [
        render_scan(&report),
        render_comparison(&Comparison {
            scans: vec![report.clone()],
        }),
    ] {
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
        assert!(html.contains("x&quot;&gt;&lt;img src=x&gt;=&#39;&amp;"));
        assert!(!html.contains("<b>v</b>"));
        assert!(!html.contains("<img"));
        assert_self_contained(&html);
    }
    assert_eq!(
        escape("<a href=\"x\">'&'</a>"),
        "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
    );
}

#[test]
fn odd_distributions_render() {
    let long = "connection_refused_after_a_very_long_phase_name@starttls_handshake";
    let many: Vec<(String, u64)> = (0..30).map(|i| (format!("value-{i}"), i)).collect();
    let mut report = scan("odd");
    report.vantages[0].distributions = vec![
        Distribution::new(
            "zero",
            "Zero total",
            "nothing",
            0,
            counts(&[("a", 0), ("b", 0)]),
        ),
        Distribution::new("empty", "Empty", "nothing", 0, Vec::new()),
        Distribution::new("long", "Long labels", "targets", 3, counts(&[(long, 3)])),
        Distribution::new("many", "Many rows", "targets", 435, many),
        Distribution {
            name: "nan".to_string(),
            title: "Odd percentages".to_string(),
            population: "targets".to_string(),
            total: 1,
            rows: vec![Row {
                value: "x".to_string(),
                count: u64::MAX,
                percent: f64::INFINITY,
            }],
        },
    ];
    report.vantages[0].headline = Headline::default();
    let html = render_scan(&report);
    assert_eq!(html.matches("</svg>").count(), 5);
    assert!(html.contains(long), "the table keeps the whole label");
    assert!(html.contains("value-29"));
    assert!(!html.contains("NaN") && !html.contains("inf%"));
    assert!(!html.contains("could not be drawn"));
    assert_self_contained(&html);
    // No vantage at all.
    let mut bare = scan("bare");
    bare.vantages.clear();
    assert!(render_scan(&bare).contains("No vantage"));
}

#[test]
fn comparison_puts_scans_side_by_side() {
    let a = scan("gov-it");
    let mut b = scan("edu-fr");
    b.scan
        .labels
        .insert("country".to_string(), "fr".to_string());
    b.vantages[0].headline.domains = 2000;
    b.vantages[0].distributions[1] = Distribution::new(
        "verification",
        "Verification result",
        "MX hosts supporting STARTTLS",
        100,
        counts(&[("valid", 60), ("expired", 40)]),
    );
    let comparison = Comparison {
        scans: vec![a.clone(), b.clone()],
    };
    let html = render_comparison(&comparison);
    for report in [&a, &b] {
        assert!(html.contains(&escape(&report.scan.title())));
        assert!(html.contains(&report.vantages[0].headline.to_string()));
    }
    assert!(html.contains("gov-it (country=it, dataset=gov)"));
    assert!(html.contains("<td class=\"num\">2000</td>"));
    assert!(html.contains("expired"));
    assert_eq!(
        html.matches("<svg").count(),
        4,
        "one chart per distribution name"
    );
    assert_self_contained(&html);
    assert_eq!(html, render_comparison(&comparison));
    assert!(render_comparison(&Comparison::default()).contains("No scan"));
}

#[test]
fn vantages_page_lists_diffs() {
    let mut views = BTreeMap::new();
    views.insert(
        "eu-1".to_string(),
        TargetView {
            outcome: "starttls_ok".to_string(),
            starttls_advertised: true,
            certificate_sha256: Some("ab".repeat(32)),
            tls_version: Some("TLSv1.3".to_string()),
            greeting_code: Some(220),
            ..TargetView::default()
        },
    );
    views.insert(
        "us-1".to_string(),
        TargetView {
            outcome: "no_starttls".to_string(),
            ..TargetView::default()
        },
    );
    let mut summary = BTreeMap::new();
    summary.insert("starttls_stripped_on_path".to_string(), 1);
    let mut info = scan("<i>x</i>").scan;
    info.vantages.push("ap-1".to_string());
    let report = VantagesReport {
        scan: info,
        targets_compared: 12,
        diffs: vec![VantageDiff {
            ip: "192.0.2.1".to_string(),
            mx_names: vec!["mx1.example.it".to_string()],
            classes: vec![Disagreement::StarttlsStrippedOnPath],
            views,
        }],
        summary,
        domains_compared: 3,
        domain_diffs: vec![DomainDiff {
            domain: "example.it".to_string(),
            classes: vec![Disagreement::MtaStsDiffers],
            mta_sts: [
                ("eu-1".to_string(), "enforce_ok".to_string()),
                ("us-1".to_string(), "policy_fetch_failed".to_string()),
            ]
            .into_iter()
            .collect(),
        }],
        ..VantagesReport::default()
    };
    let html = render_vantages(&report);
    assert!(html.contains("192.0.2.1"));
    assert!(html.contains("mx1.example.it"));
    assert!(html.contains("starttls_stripped_on_path"));
    assert!(html.contains("abababababababab…"));
    assert!(html.contains("TLSv1.3"));
    assert!(html.contains("<th scope=\"col\">us-1</th>"));
    assert!(html.contains("not seen"), "ap-1 saw nothing of it");
    assert!(!html.contains("<i>x</i>"));
    assert_eq!(html.matches("<svg").count(), 1);
    assert_self_contained(&html);
    assert!(html.contains("Domains whose MTA-STS verdict differs"));
    assert!(html.contains("<td>policy_fetch_failed</td>"));
    assert!(html.contains("3 domains with MTA-STS compared"));
    let empty = render_vantages(&VantagesReport::default());
    assert!(empty.contains("alike"));
    assert!(!empty.contains("MTA-STS"));
}

#[test]
#[ignore = "writes sample pages to the temp dir, to look at in a browser"]
fn write_sample_pages() {
    let dir = std::env::temp_dir();
    let mut report = scan("gov-it");
    let long = "connection_refused_after_a_very_long_phase_name@starttls_handshake";
    let many: Vec<(String, u64)> = (0..30).map(|i| (format!("value-{i}"), i * 13)).collect();
    report.vantages[0].distributions.push(Distribution::new(
        "long",
        "Outcome at phase",
        "targets",
        10,
        counts(&[(long, 7), ("starttls_ok@done", 3)]),
    ));
    report.vantages[0].distributions.push(Distribution::new(
        "many",
        "Many rows",
        "targets",
        5655,
        many,
    ));
    report.vantages[0].distributions.push(Distribution::new(
        "zero",
        "Zero total",
        "nothing",
        0,
        counts(&[("a", 0), ("b", 0)]),
    ));
    std::fs::write(dir.join("report.html"), render_scan(&report)).unwrap();
    let mut odd = report.clone();
    odd.vantages[0].distributions.drain(..3);
    std::fs::write(dir.join("odd.html"), render_scan(&odd)).unwrap();
    let mut b = scan("edu-fr");
    b.scan
        .labels
        .insert("country".to_string(), "fr".to_string());
    b.vantages[0].distributions[1] = Distribution::new(
        "verification",
        "Verification result",
        "MX hosts supporting STARTTLS",
        100,
        counts(&[("valid", 60), ("expired", 40)]),
    );
    let mut c = scan("com-de");
    c.scan
        .labels
        .insert("country".to_string(), "de".to_string());
    std::fs::write(
        "/tmp/compare.html",
        render_comparison(&Comparison {
            scans: vec![report.clone(), b, c],
        }),
    )
    .unwrap();
    let mut views = BTreeMap::new();
    views.insert(
        "eu-1".to_string(),
        TargetView {
            outcome: "starttls_ok".to_string(),
            starttls_advertised: true,
            certificate_sha256: Some("ab".repeat(32)),
            tls_version: Some("TLSv1.3".to_string()),
            greeting_code: Some(220),
            ..TargetView::default()
        },
    );
    views.insert(
        "us-1".to_string(),
        TargetView {
            outcome: "no_starttls".to_string(),
            greeting_code: Some(220),
            ..TargetView::default()
        },
    );
    let mut summary = BTreeMap::new();
    summary.insert("starttls_stripped_on_path".to_string(), 1);
    summary.insert("certificate_differs".to_string(), 0);
    let mut info = report.scan.clone();
    info.vantages.push("us-1".to_string());
    let v = VantagesReport {
        scan: info,
        targets_compared: 12,
        diffs: vec![VantageDiff {
            ip: "192.0.2.1".to_string(),
            mx_names: vec!["mx1.example.it".to_string(), "mx2.example.it".to_string()],
            classes: vec![
                Disagreement::StarttlsStrippedOnPath,
                Disagreement::CertificateDiffers,
            ],
            views,
        }],
        summary,
        ..VantagesReport::default()
    };
    std::fs::write(dir.join("vantages.html"), render_vantages(&v)).unwrap();
}

#[test]
fn protocol_support_is_one_matrix() {
    let mut report = scan("legacy");
    let population = "MX hosts supporting STARTTLS";
    for (field, name, yes) in [("tls1_0", "TLSv1.0", 12), ("tls1_2", "TLSv1.2", 290)] {
        report.vantages[0].distributions.push(Distribution::new(
            &format!("protocol_{field}"),
            &format!("{name} support"),
            population,
            300,
            counts(&[("supported", yes), ("not_supported", 300 - yes)]),
        ));
    }
    let html = render_scan(&report);
    assert_eq!(html.matches("<h3>Protocol support</h3>").count(), 1);
    assert!(
        !html.contains("TLSv1.0 support</h3>"),
        "no block per version"
    );
    assert!(html.contains("<tr><th scope=\"row\">TLSv1.0</th><td class=\"num\">12</td><td class=\"num\">288</td></tr>"));
    assert!(html.contains("<th scope=\"col\">not_supported</th>"));
    assert_eq!(html.matches("<svg").count(), distributions().len() + 1);
    assert_self_contained(&html);
}
