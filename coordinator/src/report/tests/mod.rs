//! The report engine on hand-built records: every distribution of a small
//! scan, a legacy scan, expiry buckets, per-domain rows, vantages,
//! comparisons and the renderers' key lines.

use std::collections::BTreeMap;
use std::convert::Infallible;

use mxscope_common::{
    CertInfo, DnsResult, DnsStatus, DomainRecord, KeyInfo, MxEntry, Outcome, Phase, Reply,
    TargetRecord, TlsFacts, Verification, VersionSupport,
};

use super::distributions::labels::parse_rfc3339;
use super::model::{Disagreement, DomainRow, ScanInfo, ScanReport};
use super::render::{self, DomainCsv, DomainJson};
use super::{compare, scan_report, vantages};
use compare::comparison_table;

const DAY: i64 = 86_400;

fn created() -> i64 {
    parse_rfc3339("2026-01-01T00:00:00Z").unwrap()
}

fn info(name: &str, vantages: &[&str]) -> ScanInfo {
    ScanInfo {
        id: "s1".into(),
        name: name.into(),
        labels: BTreeMap::new(),
        vantages: vantages.iter().map(|v| v.to_string()).collect(),
        domains: 7,
        created_unix_ms: created() as u64 * 1000,
        finished_unix_ms: Some(created() as u64 * 1000 + 60_000),
        legacy: false,
        tls_depth: false,
    }
}

fn domain(vantage: &str, name: &str, mx: &[(u16, &str, &[&str])]) -> DomainRecord {
    let mut dns = DnsResult::failed(DnsStatus::Ok, "");
    dns.error = None;
    dns.mx = mx
        .iter()
        .map(|(preference, exchange, ips)| MxEntry {
            preference: *preference,
            exchange: exchange.to_string(),
            addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
            status: DnsStatus::Ok,
        })
        .collect();
    let mut d = DomainRecord::new(name.into(), dns);
    d.vantage = Some(vantage.into());
    d
}

fn failed_domain(vantage: &str, name: &str, status: DnsStatus) -> DomainRecord {
    let mut d = DomainRecord::new(name.into(), DnsResult::failed(status, "x"));
    d.vantage = Some(vantage.into());
    d
}

fn null_mx(vantage: &str, name: &str) -> DomainRecord {
    let mut d = domain(vantage, name, &[]);
    d.dns.null_mx = true;
    d
}

fn target(vantage: &str, ip: &str, outcome: Outcome, phase: Phase) -> TargetRecord {
    let mut t = TargetRecord::new(ip.parse().unwrap(), 25, vec![]);
    t.vantage = Some(vantage.into());
    t.outcome = outcome;
    t.phase = phase;
    t
}

fn cert(key: (&str, Option<u32>, Option<&str>), not_after: i64, sha: &str) -> CertInfo {
    CertInfo {
        parsed: true,
        parse_error: None,
        subject: "CN=mx".into(),
        issuer: "CN=ca".into(),
        sans: vec![],
        serial: "01".into(),
        not_before: "2025-01-01T00:00:00Z".into(),
        not_after: rfc3339(not_after),
        key: KeyInfo {
            key_type: key.0.into(),
            bits: key.1,
            curve: key.2.map(str::to_string),
        },
        signature_algorithm: "sha256WithRSAEncryption".into(),
        sha256: sha.into(),
        spki_sha256: "00".into(),
        self_signed: false,
        der_base64: None,
        scts: Vec::new(),
    }
}

fn rfc3339(unix: i64) -> String {
    // Dates in these tests are whole days after 2026-01-01.
    let days = (unix - created()).div_euclid(DAY);
    let mut y = 2026;
    let mut d = days;
    let month_days = |y: i64| {
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        [
            31,
            if leap { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ]
    };
    if d < 0 {
        return format!("2025-12-{:02}T00:00:00Z", 32 + d);
    }
    loop {
        let year: i64 = month_days(y).iter().sum();
        if d < year {
            break;
        }
        d -= year;
        y += 1;
    }
    let mut m = 0;
    while d >= month_days(y)[m] {
        d -= month_days(y)[m];
        m += 1;
    }
    format!("{y:04}-{:02}-{:02}T00:00:00Z", m + 1, d + 1)
}

fn with_tls(
    mut t: TargetRecord,
    version: &str,
    verification: Verification,
    leaf: Option<CertInfo>,
) -> TargetRecord {
    if version == "TLSv1.3" {
        t.protocols.tls1_3 = VersionSupport::Supported;
    } else {
        t.protocols.tls1_2 = VersionSupport::Supported;
        t.protocols.tls1_3 = VersionSupport::NotSupported;
    }
    t.tls = Some(TlsFacts {
        version: version.into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        group: None,
        verification,
        verification_detail: None,
        name_match: BTreeMap::new(),
        chain: leaf.into_iter().collect(),
        source: mxscope_common::TlsSource::Handshake,
        key_exchange: Some(mxscope_common::KeyExchange::Tls13),
        forward_secrecy: Some(true),
        dh_bits: None,
        dh_group: None,
        signature_scheme: None,
        ocsp: None,
    });
    t
}

/// The small scan of the tests (vantage A): a multi-IP host (mx3), a host
/// without address (mx4), one never probed (mx6).
fn small_scan() -> (Vec<DomainRecord>, Vec<TargetRecord>) {
    let now = created();
    let domains = vec![
        domain(
            "A",
            "a.example",
            &[(10, "mx1", &["192.0.2.1"]), (20, "mx2", &["192.0.2.2"])],
        ),
        domain("A", "b.example", &[(10, "mx1", &["192.0.2.1"])]),
        domain("A", "c.example", &[(5, "mx3", &["192.0.2.3", "192.0.2.4"])]),
        domain("A", "d.example", &[(10, "mx4", &[])]),
        failed_domain("A", "e.example", DnsStatus::Nxdomain),
        null_mx("A", "f.example"),
        domain(
            "A",
            "g.example",
            &[(10, "mx5", &["192.0.2.5"]), (20, "mx6", &["192.0.2.6"])],
        ),
    ];
    let targets = vec![
        with_tls(
            target("A", "192.0.2.1", Outcome::StarttlsOk, Phase::Done),
            "TLSv1.3",
            Verification::Valid,
            Some(cert(("RSA", Some(2048), None), now + 100 * DAY, "aa")),
        ),
        target("A", "192.0.2.2", Outcome::NoStarttls, Phase::Ehlo),
        target("A", "192.0.2.3", Outcome::ConnectTimeout, Phase::Connect),
        with_tls(
            target("A", "192.0.2.4", Outcome::StarttlsOk, Phase::Done),
            "TLSv1.2",
            Verification::SelfSigned,
            Some(cert(("EC", Some(256), Some("P-256")), now + 10 * DAY, "bb")),
        ),
        target(
            "A",
            "192.0.2.5",
            Outcome::StarttlsHandshakeFailed,
            Phase::TlsHandshake,
        ),
    ];
    (domains, targets)
}

fn run(
    info: ScanInfo,
    vantages: &[&str],
    domains: &[DomainRecord],
    targets: &[TargetRecord],
) -> (ScanReport, Vec<DomainRow>) {
    let vantages: Vec<String> = vantages.iter().map(|v| v.to_string()).collect();
    let mut rows = Vec::new();
    let report = scan_report(
        info,
        &vantages,
        || domains.iter().cloned().map(Ok::<_, Infallible>),
        targets.iter().cloned().map(Ok),
        |row| {
            rows.push(row);
            Ok(())
        },
    )
    .unwrap();
    (report, rows)
}

fn rows(report: &ScanReport, name: &str) -> Vec<(String, u64)> {
    report.vantages[0]
        .distributions
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no distribution {name}"))
        .rows
        .iter()
        .map(|r| (r.value.clone(), r.count))
        .collect()
}

fn owned(rows: &[(&str, u64)]) -> Vec<(String, u64)> {
    rows.iter().map(|(v, n)| (v.to_string(), *n)).collect()
}

#[test]
fn small_scan_headline_and_distributions() {
    let (domains, targets) = small_scan();
    let (report, _) = run(info("small", &["A"]), &["A"], &domains, &targets);
    let h = &report.vantages[0].headline;
    assert_eq!(h.unique_mx, 6);
    assert_eq!(
        (h.mx_starttls, h.mx_no_starttls, h.mx_connection_error),
        (3, 1, 2)
    );
    assert_eq!(h.mx_inconsistent, 1, "mx3: one IP times out, one is ok");
    assert_eq!(
        (
            h.domains_with_mx,
            h.domains_null_mx,
            h.domains_dns_error,
            h.domains_implicit_mx
        ),
        (5, 1, 1, 0)
    );
    assert_eq!(h.domains_covered, 4, "a, b, c, g");
    assert_eq!(h.domains_all_mx_starttls, 2, "b, c");
    assert_eq!(h.domains_primary_mx_starttls, 4);

    let names: Vec<&str> = report.vantages[0]
        .distributions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "key",
            "verification",
            "name_match",
            "validating_sender",
            "key_exchange",
            "tls_source",
            "highest_protocol",
            "expiry",
            "outcome_phase"
        ],
        "no protocol distributions without legacy"
    );
    assert_eq!(
        rows(&report, "key"),
        owned(&[("EC P-256", 1), ("RSA 2048", 1), ("none", 1)])
    );
    assert_eq!(
        rows(&report, "verification"),
        owned(&[("no handshake", 1), ("self_signed", 1), ("valid", 1)])
    );
    assert_eq!(
        rows(&report, "highest_protocol"),
        owned(&[("TLSv1.3", 1), ("TLSv1.2", 1), ("none", 1)])
    );
    assert_eq!(
        rows(&report, "expiry"),
        owned(&[
            ("expired", 0),
            ("< 7 days", 0),
            ("< 30 days", 1),
            ("< 90 days", 0),
            ("≥ 90 days", 1),
            ("no certificate", 1)
        ])
    );
    assert_eq!(
        rows(&report, "outcome_phase"),
        owned(&[
            ("starttls_ok @ done", 2),
            ("no_address", 1),
            ("no_starttls @ ehlo", 1),
            ("not_probed", 1),
            ("starttls_handshake_failed @ tls_handshake", 1),
        ])
    );
    let key = &report.vantages[0].distributions[0];
    assert_eq!(key.total, 3);
    assert!((key.rows[0].percent - 100.0 / 3.0).abs() < 1e-9);
    let phases = report.vantages[0].distributions.last().unwrap();
    assert_eq!(phases.total, 6, "outcome per phase covers every MX host");
}

#[test]
fn per_domain_rows() {
    let (domains, targets) = small_scan();
    let (_, rows) = run(info("small", &["A"]), &["A"], &domains, &targets);
    assert_eq!(rows.len(), 7);
    let row = |d: &str| rows.iter().find(|r| r.domain == d).unwrap().clone();
    let a = row("a.example");
    assert_eq!(
        (a.vantage.as_str(), a.dns_status.as_str(), a.mx_count),
        ("A", "ok", 2)
    );
    assert!(a.covered && a.primary_covered);
    assert_eq!(
        (a.best_outcome.as_str(), a.worst_outcome.as_str()),
        ("starttls_ok", "no_starttls")
    );
    let c = row("c.example");
    assert_eq!(
        c.best_outcome, "starttls_ok",
        "best IP of the multi-IP host"
    );
    let d = row("d.example");
    assert!(!d.covered && !d.primary_covered);
    assert_eq!(
        (d.best_outcome.as_str(), d.worst_outcome.as_str()),
        ("no_address", "no_address")
    );
    let e = row("e.example");
    assert_eq!(
        (e.dns_status.as_str(), e.mx_count, e.best_outcome.as_str()),
        ("nxdomain", 0, "")
    );
    assert_eq!(row("f.example").dns_status, "null_mx");
    let g = row("g.example");
    assert!(g.covered && g.primary_covered);
    assert_eq!(
        (g.best_outcome.as_str(), g.worst_outcome.as_str()),
        ("starttls_handshake_failed", "not_probed")
    );
}

#[test]
fn domains_are_read_twice_and_never_kept() {
    // The engine asks for the domain stream twice (two passes).
    let (domains, targets) = small_scan();
    let calls = std::cell::Cell::new(0);
    let vantages = ["A".to_string()];
    scan_report(
        info("small", &["A"]),
        &vantages,
        || {
            calls.set(calls.get() + 1);
            domains.iter().cloned().map(Ok::<_, Infallible>)
        },
        targets.iter().cloned().map(Ok),
        |_| Ok(()),
    )
    .unwrap();
    assert_eq!(calls.get(), 2);
}

#[test]
fn legacy_scan_has_a_distribution_per_version() {
    let mut domains = vec![domain("A", "a.example", &[(10, "mx1", &["192.0.2.1"])])];
    domains.push(domain("A", "b.example", &[(10, "mx2", &["192.0.2.2"])]));
    domains.push(domain("A", "c.example", &[(10, "mx3", &["192.0.2.3"])]));
    let now = created();
    let leaf = || Some(cert(("RSA", Some(1024), None), now + 200 * DAY, "aa"));
    let mut t1 = with_tls(
        target("A", "192.0.2.1", Outcome::StarttlsOk, Phase::Done),
        "TLSv1.2",
        Verification::Valid,
        leaf(),
    );
    t1.protocols.ssl3 = VersionSupport::NotSupported;
    t1.protocols.tls1_0 = VersionSupport::Supported;
    t1.protocols.tls1_1 = VersionSupport::Supported;
    let mut t2 = with_tls(
        target("A", "192.0.2.2", Outcome::StarttlsOk, Phase::Done),
        "TLSv1.3",
        Verification::Valid,
        leaf(),
    );
    t2.protocols.ssl3 = VersionSupport::Error;
    t2.protocols.tls1_0 = VersionSupport::NotSupported;
    t2.protocols.tls1_1 = VersionSupport::NotSupported;
    t2.protocols.tls1_2 = VersionSupport::Supported;
    // Only a legacy probe found SSLv3: it is the highest supported version.
    let mut t3 = target("A", "192.0.2.3", Outcome::StarttlsOk, Phase::Done);
    t3.protocols.ssl3 = VersionSupport::Supported;
    let mut scan = info("legacy", &["A"]);
    scan.legacy = true;
    let (report, _) = run(scan, &["A"], &domains, &[t1, t2, t3]);
    let names: Vec<&str> = report.vantages[0]
        .distributions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "key",
            "verification",
            "name_match",
            "validating_sender",
            "key_exchange",
            "tls_source",
            "highest_protocol",
            "protocol_ssl3",
            "protocol_tls1_0",
            "protocol_tls1_1",
            "protocol_tls1_2",
            "protocol_tls1_3",
            "expiry",
            "outcome_phase"
        ]
    );
    let support = |ok, no, err, untested| {
        owned(&[
            ("supported", ok),
            ("not_supported", no),
            ("error", err),
            ("not_tested", untested),
        ])
    };
    assert_eq!(rows(&report, "protocol_ssl3"), support(1, 1, 1, 0));
    assert_eq!(rows(&report, "protocol_tls1_0"), support(1, 1, 0, 1));
    assert_eq!(rows(&report, "protocol_tls1_1"), support(1, 1, 0, 1));
    assert_eq!(rows(&report, "protocol_tls1_2"), support(2, 0, 0, 1));
    assert_eq!(rows(&report, "protocol_tls1_3"), support(1, 1, 0, 1));
    assert_eq!(
        rows(&report, "highest_protocol"),
        owned(&[("TLSv1.3", 1), ("TLSv1.2", 1), ("SSLv3", 1)])
    );
    assert_eq!(rows(&report, "key"), owned(&[("RSA 1024", 2), ("none", 1)]));
    let dist = report.vantages[0]
        .distributions
        .iter()
        .find(|d| d.name == "protocol_ssl3")
        .expect("an SSLv3 distribution");
    assert_eq!((dist.title.as_str(), dist.total), ("SSLv3 support", 3));

    // Legacy results seen although the scan info did not say so (a remote
    // status carries no options): the distributions appear anyway.
    let (_, targets) = small_scan();
    let mut legacy_target = targets[0].clone();
    legacy_target.protocols.tls1_0 = VersionSupport::NotSupported;
    let (report, _) = run(
        info("x", &["A"]),
        &["A"],
        &[domain("A", "a.example", &[(10, "mx1", &["192.0.2.1"])])],
        &[legacy_target],
    );
    assert!(report.scan.legacy);
    assert_eq!(rows(&report, "protocol_tls1_0"), support(0, 1, 0, 0));
}

#[test]
fn expiry_buckets_are_relative_to_the_scan_start() {
    let now = created();
    let days = [-1, 0, 6, 7, 29, 30, 89, 90, 400];
    let mut domains = Vec::new();
    let mut targets = Vec::new();
    for (i, d) in days.iter().enumerate() {
        let ip = format!("192.0.2.{}", i + 1);
        let name = format!("mx{i}");
        domains.push(domain(
            "A",
            &format!("d{i}.example"),
            &[(10, &name, &[&ip])],
        ));
        targets.push(with_tls(
            target("A", &ip, Outcome::StarttlsOk, Phase::Done),
            "TLSv1.3",
            Verification::Valid,
            Some(cert(("EC", Some(256), Some("P-256")), now + d * DAY, "aa")),
        ));
    }
    // An unreadable date gets its own row.
    domains.push(domain("A", "z.example", &[(10, "mxz", &["192.0.2.99"])]));
    let mut bad = cert(("EC", Some(256), Some("P-256")), now, "aa");
    bad.not_after = "garbage".into();
    targets.push(with_tls(
        target("A", "192.0.2.99", Outcome::StarttlsOk, Phase::Done),
        "TLSv1.3",
        Verification::Valid,
        Some(bad),
    ));
    let (report, _) = run(info("x", &["A"]), &["A"], &domains, &targets);
    assert_eq!(
        rows(&report, "expiry"),
        owned(&[
            ("expired", 1),
            ("< 7 days", 2),
            ("< 30 days", 2),
            ("< 90 days", 2),
            ("≥ 90 days", 2),
            ("no certificate", 0),
            ("unreadable date", 1),
        ])
    );
}

#[test]
fn by_vantage_reports_each_vantage() {
    let (mut domains, mut targets) = small_scan();
    domains.push(domain("B", "a.example", &[(10, "mx1", &["192.0.2.1"])]));
    targets.push(target("B", "192.0.2.1", Outcome::NoStarttls, Phase::Ehlo));
    let (report, rows) = run(info("x", &["A", "B"]), &["A", "B"], &domains, &targets);
    assert_eq!(report.vantages.len(), 2);
    assert_eq!(report.vantages[0].vantage, "A");
    assert_eq!(report.vantages[0].headline.unique_mx, 6);
    let b = &report.vantages[1].headline;
    assert_eq!(
        (
            b.vantage.as_str(),
            b.unique_mx,
            b.mx_no_starttls,
            b.domains_covered
        ),
        ("B", 1, 1, 0)
    );
    assert_eq!(rows.iter().filter(|r| r.vantage == "B").count(), 1);

    // Only vantage B asked: A's records are skipped.
    let (report, rows) = run(info("x", &["A", "B"]), &["B"], &domains, &targets);
    assert_eq!(report.vantages.len(), 1);
    assert_eq!(report.vantages[0].headline.unique_mx, 1);
    assert_eq!(rows.len(), 1);
}

// ---- vantages ----

fn ehlo(t: &mut TargetRecord, keywords: &[&str]) {
    t.ehlo = keywords.iter().map(|k| k.to_string()).collect();
}

fn probed(vantage: &str, ip: &str, starttls: bool, sha: &str, version: &str) -> TargetRecord {
    let mut t = target(vantage, ip, Outcome::StarttlsOk, Phase::Done);
    t.greeting = Some(Reply {
        code: 220,
        text: "mx ESMTP".into(),
    });
    if starttls {
        ehlo(&mut t, &["PIPELINING", "SIZE 10240000", "STARTTLS"]);
        with_tls(
            t,
            version,
            Verification::Valid,
            Some(cert(("RSA", Some(2048), None), created() + 100 * DAY, sha)),
        )
    } else {
        t.outcome = Outcome::NoStarttls;
        t.phase = Phase::Ehlo;
        ehlo(&mut t, &["PIPELINING", "SIZE 10240000"]);
        t
    }
}

fn vantage_targets() -> Vec<TargetRecord> {
    let mut masked = probed("B", "192.0.2.2", false, "", "");
    ehlo(&mut masked, &["PIPELINING", "SIZE 10240000", "XXXXXXXA"]);
    let mut refused = target("B", "192.0.2.5", Outcome::GreetingRefused, Phase::Greeting);
    refused.greeting = Some(Reply {
        code: 421,
        text: "too many connections".into(),
    });
    let mut stripped_a = probed("A", "192.0.2.1", true, "aa", "TLSv1.3");
    stripped_a.mx_names = vec!["mx1.example".into()];
    vec![
        stripped_a,
        probed("B", "192.0.2.1", false, "", ""),
        probed("A", "192.0.2.2", true, "aa", "TLSv1.3"),
        masked,
        probed("A", "192.0.2.3", true, "aa", "TLSv1.3"),
        probed("B", "192.0.2.3", true, "ff", "TLSv1.3"),
        probed("A", "192.0.2.4", true, "aa", "TLSv1.3"),
        target("B", "192.0.2.4", Outcome::ConnectTimeout, Phase::Connect),
        probed("A", "192.0.2.5", true, "aa", "TLSv1.3"),
        refused,
        probed("A", "192.0.2.6", true, "aa", "TLSv1.3"),
        probed("B", "192.0.2.6", true, "aa", "TLSv1.3"),
        probed("A", "192.0.2.7", true, "aa", "TLSv1.3"),
        probed("A", "192.0.2.8", true, "aa", "TLSv1.3"),
        probed("B", "192.0.2.8", true, "aa", "TLSv1.2"),
    ]
}

#[test]
fn vantage_differences_are_classified() {
    let report = vantages::vantages_report(
        info("x", &["A", "B"]),
        vantage_targets().into_iter().map(Ok::<_, Infallible>),
    )
    .unwrap();
    assert_eq!(report.targets_compared, 7, ".7 was probed from A only");
    let classes: Vec<(&str, Vec<Disagreement>)> = report
        .diffs
        .iter()
        .map(|d| (d.ip.as_str(), d.classes.clone()))
        .collect();
    use Disagreement::*;
    assert_eq!(
        classes,
        [
            ("192.0.2.1", vec![StarttlsStrippedOnPath]),
            ("192.0.2.2", vec![StarttlsStrippedOnPath]),
            ("192.0.2.3", vec![CertificateDiffers]),
            ("192.0.2.4", vec![ReachabilityDiffers]),
            ("192.0.2.5", vec![RateLimited]),
            ("192.0.2.8", vec![OtherDifference]),
        ]
    );
    let first = &report.diffs[0];
    assert_eq!(first.mx_names, ["mx1.example"]);
    assert!(first.views["A"].starttls_advertised);
    assert!(!first.views["B"].starttls_advertised);
    assert_eq!(first.views["A"].certificate_sha256.as_deref(), Some("aa"));
    assert_eq!(report.summary["starttls_stripped_on_path"], 2);
    assert_eq!(
        vantages::summary_line(&report),
        "6 targets differ: 2 starttls_stripped_on_path, 1 certificate_differs, \
         1 reachability_differs, 1 rate_limited, 1 other_difference \
         (of 7 targets probed from 2 or more vantages); 1 target probed from one vantage only"
    );
    assert_eq!(report.one_vantage_targets.len(), 1);
    assert_eq!(report.one_vantage_targets[0].ip, "192.0.2.7");
    let text = render::vantages_text(&report);
    assert!(text.starts_with("6 targets differ: 2 starttls_stripped_on_path"));
    assert!(text.contains("192.0.2.1 (mx1.example): starttls_stripped_on_path"));
    assert!(text.contains("XXXXXXXA"));
    let md = render::vantages_markdown(&report);
    assert!(md.contains("## 192.0.2.3: certificate_differs"));
}

#[test]
fn a_421_detail_is_rate_limiting() {
    let mut a = target("A", "192.0.2.9", Outcome::Timeout, Phase::Ehlo);
    a.detail = Some("421 4.7.0 try again later".into());
    let b = probed("B", "192.0.2.9", true, "aa", "TLSv1.3");
    let report = vantages::vantages_report(
        info("x", &["A", "B"]),
        [a, b].into_iter().map(Ok::<_, Infallible>),
    )
    .unwrap();
    assert_eq!(report.diffs[0].classes, [Disagreement::RateLimited]);
}

// ---- compare ----

#[test]
fn compare_two_scans_side_by_side() {
    let (domains, targets) = small_scan();
    let mut it = info("it-2026", &["A"]);
    it.labels.insert("country".into(), "IT".into());
    let (first, _) = run(it, &["A"], &domains, &targets);
    let mut fr = info("fr-2026", &["A"]);
    fr.id = "s2".into();
    let (second, _) = run(fr, &["A"], &domains[..2], &targets[..2]);
    let comparison = compare(vec![first, second]);
    let table = comparison_table(&comparison);
    assert_eq!(
        table.columns,
        ["it-2026 (country=IT) [s1 @ A]", "fr-2026 [s2 @ A]"]
    );
    let headline = &table.sections[0];
    let starttls = headline
        .rows
        .iter()
        .find(|r| r.label == "MX supporting STARTTLS")
        .unwrap();
    let counts: Vec<u64> = starttls.cells.iter().map(|c| c.unwrap().count).collect();
    assert_eq!(counts, [3, 1]);
    let key = table
        .sections
        .iter()
        .find(|s| s.title == "Key type and size")
        .unwrap();
    let labels: Vec<&str> = key.rows.iter().map(|r| r.label.as_str()).collect();
    assert_eq!(
        labels,
        [
            "total (MX hosts supporting STARTTLS)",
            "EC P-256",
            "RSA 2048",
            "none"
        ]
    );
    let ec = &key.rows[1];
    assert_eq!(ec.cells[1].unwrap().count, 0, "absent row counts zero");

    let text = render::comparison_text(&comparison);
    assert!(text.contains("it-2026 (country=IT) [s1 @ A]"));
    let line = text
        .lines()
        .find(|l| l.trim_start().starts_with("MX supporting STARTTLS"))
        .unwrap();
    assert!(
        line.contains("3 (50.0%)") && line.contains("1 (50.0%)"),
        "{line}"
    );
    let md = render::comparison_markdown(&comparison);
    assert!(md.contains("## Headline"));
    assert!(md.contains("| MX supporting STARTTLS "));
}

// ---- renderers ----

#[test]
fn text_and_markdown_key_lines() {
    let (domains, targets) = small_scan();
    let (report, _) = run(info("small", &["A"]), &["A"], &domains, &targets);
    let text = render::scan_text(&report);
    let first = text.lines().next().unwrap();
    assert_eq!(
        first,
        "On a total of 7 domain names, 6 unique MX records have been found; 3 of them support \
         STARTTLS, covering 4 unique domains (2 MXes reported a connection error while 1 \
         declared to not support STARTTLS)."
    );
    assert!(!text.contains("partial results"));
    assert!(text.contains("\nKey type and size (3 MX hosts supporting STARTTLS)\n"));
    let squeeze = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = text.lines().map(squeeze).collect();
    assert!(lines.contains(&"RSA 2048 1 33.3%".to_string()), "{text}");
    assert!(lines.contains(&"MX supporting STARTTLS 3 50.0%".to_string()));
    assert!(lines.contains(&"≥ 90 days 1 33.3%".to_string()));
    // Aligned: every row of a table puts its count in the same column.
    let key_rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("Key type"))
        .skip(1)
        .take(4)
        .collect();
    let ends: Vec<usize> = key_rows.iter().map(|l| l.chars().count()).collect();
    assert!(ends.windows(2).all(|w| w[0] == w[1]), "{key_rows:?}");

    let md = render::scan_markdown(&report);
    assert!(md.starts_with("# mxscope report: small (s1)"));
    assert!(md.contains("### Key type and size"));
    assert!(md.contains("| RSA 2048 "));
    assert!(md.contains("| value "));

    let mut running = report.clone();
    running.scan.finished_unix_ms = None;
    assert!(render::scan_text(&running)
        .lines()
        .nth(1)
        .unwrap()
        .contains("scan is still running: partial results"));
    assert!(render::scan_markdown(&running).contains("partial results"));
}

#[test]
fn json_and_csv() {
    let (domains, targets) = small_scan();
    let (report, rows) = run(info("small", &["A"]), &["A"], &domains, &targets);
    let json: serde_json::Value = serde_json::from_str(&render::json(&report).unwrap()).unwrap();
    assert_eq!(json["vantages"][0]["headline"]["unique_mx"], 6);
    assert_eq!(json["vantages"][0]["distributions"][0]["name"], "key");

    let mut out = Vec::new();
    let mut csv = DomainCsv::new(&mut out).unwrap();
    for row in &rows {
        csv.write(row).unwrap();
    }
    csv.finish().unwrap();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some(
            "vantage,domain,dns_status,mx_count,covered,primary_covered,best_outcome,worst_outcome"
        )
    );
    assert_eq!(
        lines.next(),
        Some("A,a.example,ok,2,true,true,starttls_ok,no_starttls")
    );
    assert_eq!(text.lines().count(), 8);

    let mut out = Vec::new();
    let mut json = DomainJson::new(&mut out).unwrap();
    for row in &rows {
        json.write(row).unwrap();
    }
    json.finish(&report).unwrap();
    let doc: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(doc["domains"].as_array().unwrap().len(), 7);
    assert_eq!(doc["domains"][0]["domain"], "a.example");
    assert_eq!(doc["report"]["scan"]["name"], "small");
}

mod security;
mod vantages_dns;
mod vantages_mta_sts;

/// Name match per (MX name, IP), what a validating sender would accept, the
/// key exchange and first-flight hosts, over STARTTLS hosts.
#[test]
fn name_match_validating_sender_and_key_exchange() {
    let tls = |ip: &str, name: &str, version: &str, verification, matched: bool| {
        let mut t = target("A", ip, Outcome::StarttlsOk, Phase::Done);
        t.mx_names = vec![name.to_string()];
        let mut t = with_tls(t, version, verification, None);
        if let Some(facts) = t.tls.as_mut() {
            facts.name_match = BTreeMap::from([(name.to_string(), matched)]);
        }
        t
    };
    let accepted = tls(
        "192.0.2.1",
        "mx1.example",
        "TLSv1.3",
        Verification::Valid,
        true,
    );
    let mismatch = tls(
        "192.0.2.2",
        "mx2.example",
        "TLSv1.3",
        Verification::Valid,
        false,
    );
    let expired = tls(
        "192.0.2.3",
        "mx3.example",
        "TLSv1.3",
        Verification::Expired,
        true,
    );
    // A TLS 1.0 RSA host measured from its first flight.
    let mut old = tls(
        "192.0.2.4",
        "mx4.example",
        "TLSv1.2",
        Verification::Valid,
        true,
    );
    old.outcome = Outcome::StarttlsHandshakeFailed;
    old.phase = Phase::TlsHandshake;
    if let Some(facts) = old.tls.as_mut() {
        facts.version = "TLSv1.0".into();
        facts.cipher = "TLS_RSA_WITH_AES_128_CBC_SHA".into();
        facts.key_exchange = Some(mxscope_common::KeyExchange::Rsa);
        facts.source = mxscope_common::TlsSource::FirstFlight;
    }
    // Per-name certificate: the main certificate misses mx5b, its own session matched.
    let mut sni = tls(
        "192.0.2.5",
        "mx5a.example",
        "TLSv1.3",
        Verification::Valid,
        true,
    );
    sni.mx_names.push("mx5b.example".into());
    sni.names.insert(
        "mx5b.example".into(),
        mxscope_common::NameCertificate {
            name_match: Some(true),
            check: mxscope_common::NameCheck::OwnSession,
            leaf_sha256: None,
            leaf_subject: None,
            verification: Some(Verification::Valid),
        },
    );
    let domains = vec![domain(
        "A",
        "a.example",
        &[
            (10, "mx1.example", &["192.0.2.1"]),
            (20, "mx2.example", &["192.0.2.2"]),
            (30, "mx3.example", &["192.0.2.3"]),
            (40, "mx4.example", &["192.0.2.4"]),
            (50, "mx5a.example", &["192.0.2.5"]),
            (60, "mx5b.example", &["192.0.2.5"]),
        ],
    )];
    let targets = [accepted, mismatch, expired, old, sni];
    let (report, _) = run(info("names", &["A"]), &["A"], &domains, &targets);
    assert_eq!(
        rows(&report, "name_match"),
        owned(&[("matches", 5), ("does not match", 1)])
    );
    assert_eq!(
        rows(&report, "validating_sender"),
        owned(&[
            ("accepted", 3),
            ("no: below TLS 1.2", 1),
            ("no: chain not valid", 1),
            ("no: name mismatch", 1)
        ])
    );
    assert_eq!(
        rows(&report, "key_exchange"),
        owned(&[("TLS 1.3 (ephemeral)", 5), ("RSA (no forward secrecy)", 1)])
    );
    assert_eq!(
        rows(&report, "tls_source"),
        owned(&[("handshake", 5), ("first flight (modern TLS failed)", 1)])
    );
}
