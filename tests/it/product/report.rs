//! `mxscope report`, `compare` and the HTML page, on lab scans whose
//! expected numbers are derived by hand from the lab's definition.

use std::path::{Path, PathBuf};
use std::process::Command;

use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::{bin, test_dir};
use serde_json::Value;

/// The lab list: 17 domains.
fn lab_domains() -> Vec<String> {
    let mut domains: Vec<String> = [
        domains::SINGLE,
        domains::MULTI,
        domains::SHARED_A,
        domains::SHARED_B,
        domains::NULLMX,
        domains::IMPLICIT,
        domains::NXDOMAIN,
        domains::NODATA,
        domains::MX_NOADDR,
        domains::V6,
    ]
    .iter()
    .map(|d| d.to_string())
    .collect();
    for host in [
        MX_EXPIRED,
        MX_SELFSIGNED,
        MX_NOSTARTTLS,
        MX_REFUSE,
        MX_TLS454,
        MX_CLOSED,
        MX_EXIM,
    ] {
        domains.push(domains::for_host(&host));
    }
    domains
}

/// Run `mxscope scan` on `domains` into `data`; returns its stdout.
fn scan(dir: &Path, data: &Path, name: &str, domains: &[String], legacy: bool) -> String {
    lab::postfix();
    lab::exim();
    lab::fakes();
    let list = dir.join(format!("{name}.txt"));
    std::fs::write(&list, domains.join("\n")).unwrap();
    let mut cmd = Command::new(bin("mxscope"));
    cmd.arg("scan")
        .arg(&list)
        .arg("--data-dir")
        .arg(data)
        .args([
            "--allow-private",
            "--ehlo-name",
            "probe.mxscope.lab.test",
            "--timeout-session",
            "10s",
        ])
        .args([
            "--resolver",
            &lab::dns().addr().to_string(),
            "--label",
            &format!("run={name}"),
        ])
        .arg("--ca-file")
        .arg(&lab::certs().ca_pem);
    if legacy {
        cmd.arg("--legacy");
    }
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn mxscope(args: &[&str], data: &Path) -> String {
    let out = Command::new(bin("mxscope"))
        .args(args)
        .arg("--data-dir")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// `{value: count}` of a distribution.
fn rows(vantage: &Value, name: &str) -> Vec<(String, u64)> {
    let dist = vantage["distributions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("no distribution {name}"));
    dist["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["value"].as_str().unwrap().to_string(),
                r["count"].as_u64().unwrap(),
            )
        })
        .filter(|(_, count)| *count > 0)
        .collect()
}

fn pairs(expected: &[(&str, u64)]) -> Vec<(String, u64)> {
    expected.iter().map(|(v, c)| (v.to_string(), *c)).collect()
}

#[test]
fn report_of_the_lab_scan() {
    let dir = test_dir("report");
    let data = dir.join("data");
    scan(&dir, &data, "lab", &lab_domains(), true);

    // Text: the headline sentence first.
    let text = mxscope(&["report", "s1"], &data);
    assert!(text.starts_with(
        "On a total of 17 domain names, 13 unique MX records have been found; 9 of them support \
         STARTTLS, covering 10 unique domains (3 MXes reported a connection error while 1 \
         declared to not support STARTTLS)."
    ), "{text}");

    let json: Value =
        serde_json::from_str(&mxscope(&["report", "s1", "--format", "json"], &data)).unwrap();
    let v = &json["vantages"][0];
    let h = &v["headline"];
    // 17 domains: nxdomain + nodata are DNS errors, nullmx is null MX,
    // implicit has no MX, the other 13 have MX.
    for (field, expected) in [
        ("domains", 17),
        ("domains_with_mx", 13),
        ("domains_implicit_mx", 1),
        ("domains_null_mx", 1),
        ("domains_dns_error", 2),
        // valid, backup, ecdsa, implicit.lab.test, v6, expired, selfsigned,
        // tls454, exim (9 STARTTLS); nostarttls (1); none, refuse, closed (3).
        ("unique_mx", 13),
        ("mx_starttls", 9),
        ("mx_no_starttls", 1),
        ("mx_connection_error", 3),
        ("mx_inconsistent", 0),
        // single, multi, shared-a/b, implicit, v6, expired, selfsigned, tls454, exim.
        ("domains_covered", 10),
        ("domains_all_mx_starttls", 10),
        ("domains_primary_mx_starttls", 10),
    ] {
        assert_eq!(h[field], expected, "{field}");
    }
    let buckets = ["mx_starttls", "mx_no_starttls", "mx_connection_error"];
    let sum: u64 = buckets.iter().map(|b| h[*b].as_u64().unwrap()).sum();
    assert_eq!(
        sum,
        h["unique_mx"].as_u64().unwrap(),
        "the three buckets add up"
    );

    // Over the 9 STARTTLS hosts: tls454 never handshakes; ecdsa is the only EC key.
    assert_eq!(
        rows(v, "key"),
        pairs(&[("RSA 2048", 7), ("EC P-256", 1), ("none", 1)])
    );
    assert_eq!(
        rows(v, "verification"),
        pairs(&[
            ("valid", 6),
            ("expired", 1),
            ("no handshake", 1),
            ("self_signed", 1)
        ])
    );
    // mx-backup is TLS 1.2 only.
    assert_eq!(
        rows(v, "highest_protocol"),
        pairs(&[("TLSv1.3", 7), ("TLSv1.2", 1), ("none", 1)])
    );
    assert_eq!(
        rows(v, "protocol_tls1_0"),
        pairs(&[("not_supported", 8), ("not_tested", 1)])
    );
    assert_eq!(
        rows(v, "protocol_tls1_3"),
        pairs(&[("supported", 7), ("not_supported", 1), ("not_tested", 1)])
    );
    // Lab leaves live 30 days; mx-expired ended yesterday.
    assert_eq!(
        rows(v, "expiry"),
        pairs(&[("expired", 1), ("< 30 days", 7), ("no certificate", 1)])
    );
    assert_eq!(
        rows(v, "outcome_phase"),
        pairs(&[
            ("starttls_ok @ done", 8),
            ("connect_refused @ connect", 1),
            ("greeting_refused @ greeting", 1),
            ("no_address", 1),
            ("no_starttls @ ehlo", 1),
            ("starttls_rejected @ starttls", 1),
        ])
    );

    // The per-domain table.
    let csv = mxscope(&["report", "s1", "--format", "csv"], &data);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "vantage,domain,dns_status,mx_count,covered,primary_covered,best_outcome,worst_outcome"
    );
    assert_eq!(lines.len(), 1 + 17);
    for row in [
        "local,multi.lab.test,ok,3,true,true,starttls_ok,starttls_ok",
        "local,tls454.lab.test,ok,1,true,true,starttls_rejected,starttls_rejected",
        "local,noaddr.lab.test,ok,1,false,false,no_address,no_address",
        "local,refuse.lab.test,ok,1,false,false,greeting_refused,greeting_refused",
        "local,nxdomain.lab.test,nxdomain,0,false,false,,",
        "local,nullmx.lab.test,null_mx,0,false,false,,",
    ] {
        assert!(lines.contains(&row), "missing {row} in\n{csv}");
    }
}

#[test]
fn compare_shows_what_changed_between_scans() {
    let dir = test_dir("compare");
    let data = dir.join("data");
    let domains = vec![domains::SINGLE.to_string(), domains::for_host(&MX_TOGGLE)];
    lab::fakes().set_toggle_starttls(true);
    scan(&dir, &data, "before", &domains, false);
    lab::fakes().set_toggle_starttls(false);
    scan(&dir, &data, "after", &domains, false);
    lab::fakes().set_toggle_starttls(true);
    let json: Value = serde_json::from_str(&mxscope(
        &["compare", "s1", "s2", "--format", "json"],
        &data,
    ))
    .unwrap();
    let scans = json["scans"].as_array().unwrap();
    assert_eq!(scans.len(), 2);
    let headline =
        |i: usize, field: &str| scans[i]["vantages"][0]["headline"][field].as_u64().unwrap();
    assert_eq!(
        (headline(0, "mx_starttls"), headline(1, "mx_starttls")),
        (2, 1)
    );
    assert_eq!(
        (headline(0, "mx_no_starttls"), headline(1, "mx_no_starttls")),
        (0, 1)
    );
    assert_eq!(
        (
            headline(0, "domains_covered"),
            headline(1, "domains_covered")
        ),
        (2, 1)
    );
    assert_eq!(scans[0]["scan"]["labels"]["run"], "before");
    assert_eq!(scans[1]["scan"]["labels"]["run"], "after");
    // The text table titles each column by name and labels.
    let text = mxscope(&["compare", "s1", "s2"], &data);
    assert!(
        text.contains("run=before") && text.contains("run=after"),
        "{text}"
    );
}

fn chromium() -> PathBuf {
    let path = PathBuf::from("/usr/bin/chromium");
    assert!(
        path.exists(),
        "chromium is missing: tests/lab/install.sh installs it"
    );
    path
}

/// Headless Chromium, offline flags, bounded in time.
fn headless(args: &[&str], page: &Path, profile: &Path) -> std::process::Output {
    Command::new("timeout")
        .arg("120")
        .arg(chromium())
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(args)
        .arg(format!("file://{}", page.display()))
        .output()
        .unwrap()
}

#[test]
fn html_report_opens_in_headless_chromium() {
    let dir = test_dir("html");
    let data = dir.join("data");
    scan(&dir, &data, "html", &lab_domains(), false);
    let page = dir.join("report.html");
    mxscope(
        &[
            "report",
            "s1",
            "--format",
            "html",
            "--out",
            page.to_str().unwrap(),
        ],
        &data,
    );
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(
        !html.contains("<script") && !html.contains("src=\"http"),
        "self-contained"
    );

    let dom = headless(&["--dump-dom"], &page, &dir.join("profile-dom"));
    assert!(
        dom.status.success(),
        "{}",
        String::from_utf8_lossy(&dom.stderr)
    );
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(
        dom.contains("On a total of 17 domain names, 13 unique MX records have been found"),
        "{dom}"
    );
    // One chart per distribution (key, verification, highest protocol, expiry, outcome per phase).
    let charts = dom.matches("<svg").count();
    assert!(charts >= 5, "{charts} charts");
    for number in ["RSA 2048", "starttls_ok @ done", "66.7%"] {
        assert!(dom.contains(number), "{number} missing");
    }
    let shot = dir.join("report.png");
    let out = headless(
        &[
            "--screenshot=".to_string() + shot.to_str().unwrap(),
            "--window-size=1200,2400".into(),
        ]
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>(),
        &page,
        &dir.join("profile-shot"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        std::fs::metadata(&shot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot {shot:?}"
    );
}

/// Legacy-only hosts (real Postfix) support STARTTLS and count in every
/// distribution with their first-flight facts; name match is per (MX name,
/// IP), and a validating sender's view is its own distribution.
#[test]
fn legacy_only_hosts_count_with_their_facts() {
    let dir = test_dir("report-legacy-only");
    let data = dir.join("data");
    let mut domains: Vec<String> = LEGACY_ONLY_HOSTS.iter().map(domains::for_host).collect();
    // mx-valid (TLS 1.3, valid), mx-mismatch (valid chain, other name),
    // mx-sni + mx-sni-2 (one IP, a certificate each).
    domains.push(domains::SINGLE.to_string());
    domains.push(domains::for_host(&MX_MISMATCH));
    domains.push(domains::SNI_BOTH.to_string());
    let out = scan(&dir, &data, "legacy-only", &domains, true);
    assert!(
        out.contains(
            "7 domain names, 8 unique MX records have been found; 8 of them support STARTTLS"
        ),
        "{out}"
    );
    let json: Value =
        serde_json::from_str(&mxscope(&["report", "s1", "--format", "json"], &data)).unwrap();
    let v = &json["vantages"][0];
    assert_eq!(
        rows(v, "tls_source"),
        pairs(&[("first flight (modern TLS failed)", 4), ("handshake", 4)])
    );
    assert_eq!(rows(v, "key"), pairs(&[("RSA 2048", 8)]), "no 'none' row");
    assert_eq!(rows(v, "verification"), pairs(&[("valid", 8)]));
    assert_eq!(
        rows(v, "name_match"),
        pairs(&[("matches", 7), ("does not match", 1)])
    );
    assert_eq!(
        rows(v, "validating_sender"),
        pairs(&[
            ("accepted", 6),
            ("no: below TLS 1.2", 1),
            ("no: name mismatch", 1)
        ])
    );
    assert_eq!(
        rows(v, "key_exchange"),
        pairs(&[
            ("TLS 1.3 (ephemeral)", 4),
            ("ECDHE", 1),
            ("DHE", 1),
            ("RSA (no forward secrecy)", 2)
        ])
    );
    assert_eq!(
        rows(v, "highest_protocol"),
        pairs(&[("TLSv1.3", 4), ("TLSv1.2", 3), ("TLSv1.0", 1)])
    );
    assert_eq!(
        rows(v, "protocol_tls1_2"),
        pairs(&[("supported", 7), ("not_supported", 1)])
    );
}
