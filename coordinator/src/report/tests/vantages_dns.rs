//! DNS compared between vantages (MX set, addresses with their notes,
//! DNSSEC, status), targets seen from one vantage with the domains behind
//! them, interception told from rotation, TLSA answers, the merge-join and
//! the agreement figures.

use std::convert::Infallible;

use mxscope_common::record::security_dns::{DaneResult, DaneVerdict, DnssecStatus, TlsaRecord};
use mxscope_common::record::security_policy::{MtaStsVerdict, TlsRptVerdict};
use mxscope_common::{
    DepthLevel, DnsStatus, DomainRecord, TargetRecord, TlsDepth, Verification, VersionDepth,
};

use super::super::model::{Disagreement, VantagesReport};
use super::super::vantages::agreement;
use super::super::vantages::dns::merge_by_domain;
use super::super::{render, vantages};
use super::security::{secured, sts};
use super::{domain, failed_domain, info, null_mx, probed};
use Disagreement::*;

fn joined(domains: &[DomainRecord], targets: &[TargetRecord]) -> VantagesReport {
    let mut a: Vec<DomainRecord> = domains
        .iter()
        .filter(|d| d.vantage.as_deref() == Some("A"))
        .cloned()
        .collect();
    let mut b: Vec<DomainRecord> = domains
        .iter()
        .filter(|d| d.vantage.as_deref() == Some("B"))
        .cloned()
        .collect();
    a.sort_by(|x, y| x.domain.cmp(&y.domain));
    b.sort_by(|x, y| x.domain.cmp(&y.domain));
    let joined = vantages::vantages_report_joined(
        info("x", &["A", "B"]),
        vec![
            a.into_iter().map(Ok::<_, Infallible>),
            b.into_iter().map(Ok::<_, Infallible>),
        ],
        targets.iter().cloned().map(Ok),
    )
    .unwrap();
    // The held form (records in any order) gives the same report.
    let held = vantages::vantages_report_with_domains(
        info("x", &["A", "B"]),
        || domains.iter().rev().cloned().map(Ok::<_, Infallible>),
        targets.iter().cloned().map(Ok),
    )
    .unwrap();
    assert_eq!(joined, held);
    joined
}

fn classes_of(report: &VantagesReport) -> Vec<(&str, Vec<Disagreement>)> {
    report
        .dns_diffs
        .iter()
        .map(|d| (d.domain.as_str(), d.classes.clone()))
        .collect()
}

#[test]
fn each_dns_class_and_nothing_else() {
    let domains = vec![
        domain("A", "same.example", &[(10, "mx.same", &["192.0.2.1"])]),
        domain("B", "same.example", &[(10, "mx.same", &["192.0.2.1"])]),
        domain("A", "swap.example", &[(10, "mx.swap", &["192.0.2.2"])]),
        domain("B", "swap.example", &[(10, "mx.evil", &["192.0.2.3"])]),
        domain("A", "pref.example", &[(10, "mx.pref", &["192.0.2.4"])]),
        domain("B", "pref.example", &[(20, "mx.pref", &["192.0.2.4"])]),
        null_mx("A", "null.example"),
        domain("B", "null.example", &[(10, "mx.null", &["192.0.2.5"])]),
        domain("A", "moved.example", &[(10, "mx.moved", &["192.0.2.6"])]),
        domain("B", "moved.example", &[(10, "mx.moved", &["198.51.100.6"])]),
        domain("A", "near.example", &[(10, "mx.near", &["192.0.2.7"])]),
        domain("B", "near.example", &[(10, "mx.near", &["192.0.2.8"])]),
        domain("A", "private.example", &[(10, "mx.private", &["8.8.4.9"])]),
        domain("B", "private.example", &[(10, "mx.private", &["10.0.0.9"])]),
        domain("A", "gone.example", &[(10, "mx.gone", &["192.0.2.10"])]),
        failed_domain("B", "gone.example", DnsStatus::Nxdomain),
        failed_domain("A", "bothfail.example", DnsStatus::Servfail),
        failed_domain("B", "bothfail.example", DnsStatus::Servfail),
        domain("A", "alone.example", &[(10, "mx.alone", &["192.0.2.11"])]),
    ];
    let report = joined(&domains, &[]);
    assert_eq!(
        report.dns_domains_compared, 9,
        "alone.example is seen from A only"
    );
    assert_eq!(
        classes_of(&report),
        [
            ("gone.example", vec![DnsStatusDiffers]),
            ("moved.example", vec![AddressDiffers]),
            ("near.example", vec![AddressDiffers]),
            ("null.example", vec![MxDiffers]),
            ("pref.example", vec![MxDiffers]),
            ("private.example", vec![AddressDiffers]),
            ("swap.example", vec![MxDiffers]),
        ]
    );
    assert_eq!(report.domains_agreeing, 2, "same and bothfail");
    let notes = |domain: &str| {
        report
            .dns_diffs
            .iter()
            .find(|d| d.domain == domain)
            .map(|d| d.notes.clone())
            .unwrap()
    };
    // Another /24: both sides are outside the other's networks.
    let moved = notes("moved.example");
    assert_eq!(moved.len(), 2);
    assert!(moved.iter().all(|n| n.outside_networks && !n.not_public));
    assert!(moved
        .iter()
        .any(|n| n.vantage == "B" && n.address == "198.51.100.6"));
    // The same /24, both public: no note.
    assert!(notes("near.example").is_empty());
    // A private address where the other side saw a public one.
    let private = notes("private.example");
    let b = private.iter().find(|n| n.vantage == "B").unwrap();
    assert!(b.not_public && b.outside_networks);
    let a = private.iter().find(|n| n.vantage == "A").unwrap();
    assert!(
        !a.not_public,
        "A's public address is not flagged as not public"
    );

    let views = &report.dns_diffs[0].views;
    assert_eq!(views["B"].status, "nxdomain");
    assert_eq!(views["A"].mx, ["10 mx.gone"]);
    assert_eq!(report.summary["mx_differs"], 3);
    assert_eq!(report.summary["address_differs"], 3);
    assert_eq!(report.summary["dns_status_differs"], 1);

    let text = render::vantages_text(&report);
    assert!(
        text.contains("7 domains whose DNS differs: 1 dns_status_differs, 3 mx_differs, 3 address_differs (of 9 domains resolved from 2 or more vantages)"),
        "{text}"
    );
    assert!(text.contains("swap.example: mx_differs"), "{text}");
    assert!(
        text.contains("note: B saw 198.51.100.6 for mx.moved: outside every network"),
        "{text}"
    );
    let md = render::vantages_markdown(&report);
    assert!(md.contains("## gone.example: dns_status_differs"), "{md}");
}

#[test]
fn dnssec_status_differs() {
    let secure = |v: &str, name: &str, mx: DnssecStatus, addr: DnssecStatus| {
        let mut d = secured(
            domain(v, name, &[(10, "mx.s", &["192.0.2.1"])]),
            mx,
            sts(MtaStsVerdict::NoMtaSts),
            TlsRptVerdict::Absent,
        );
        if let Some(s) = &mut d.security {
            s.dnssec_exchanges.insert("mx.s".into(), addr);
        }
        d
    };
    use DnssecStatus::*;
    let report = joined(
        &[
            secure("A", "a.example", Secure, Secure),
            secure("B", "a.example", Bogus, Bogus),
            secure("A", "b.example", Secure, Secure),
            secure("B", "b.example", Secure, Insecure),
            secure("A", "c.example", Secure, Secure),
            secure("B", "c.example", Secure, Secure),
        ],
        &[],
    );
    assert_eq!(
        classes_of(&report),
        [
            ("a.example", vec![DnssecDiffers]),
            ("b.example", vec![DnssecDiffers]),
        ]
    );
    assert_eq!(
        report.dns_diffs[0].views["B"].dnssec_mx.as_deref(),
        Some("bogus")
    );
    assert_eq!(report.domain_diffs, [], "no MTA-STS anywhere");
}

#[test]
fn one_vantage_targets_list_their_domains() {
    let domains = vec![
        domain("A", "swap.example", &[(10, "mx.swap", &["192.0.2.2"])]),
        domain("B", "swap.example", &[(10, "mx.evil", &["192.0.2.3"])]),
        domain("B", "other.example", &[(10, "mx.evil", &["192.0.2.3"])]),
        domain("A", "other.example", &[(10, "mx.evil", &["192.0.2.3"])]),
    ];
    let targets = vec![
        probed("A", "192.0.2.2", true, "aa", "TLSv1.3"),
        probed("B", "192.0.2.3", true, "bb", "TLSv1.3"),
    ];
    let report = joined(&domains, &targets);
    let one: Vec<(&str, &str, &[String])> = report
        .one_vantage_targets
        .iter()
        .map(|t| (t.ip.as_str(), t.vantage.as_str(), t.domains.as_slice()))
        .collect();
    assert_eq!(
        one,
        [
            ("192.0.2.2", "A", &["swap.example".to_string()][..]),
            (
                "192.0.2.3",
                "B",
                &["other.example".to_string(), "swap.example".to_string()][..]
            ),
        ],
        "A's other.example record names 192.0.2.3 too, but A never probed it"
    );
    let text = render::vantages_text(&report);
    assert!(
        text.contains("Targets probed from one vantage only"),
        "{text}"
    );
}

fn trusted(vantage: &str, ip: &str, sha: &str, key: &str, pkix: bool) -> TargetRecord {
    let mut t = probed(vantage, ip, true, sha, "TLSv1.3");
    t.mx_names = vec!["mx.example".into()];
    if let Some(tls) = &mut t.tls {
        tls.verification = if pkix {
            Verification::Valid
        } else {
            Verification::SelfSigned
        };
        tls.name_match.insert("mx.example".into(), pkix);
        if let Some(leaf) = tls.chain.first_mut() {
            leaf.spki_sha256 = key.into();
        }
    }
    t
}

fn with_dane(mut t: TargetRecord, verdict: DaneVerdict, data: &str) -> TargetRecord {
    t.dane.insert(
        "mx.example".into(),
        DaneResult {
            verdict,
            tlsa: vec![TlsaRecord {
                usage: 3,
                selector: 1,
                matching_type: 1,
                data_hex: data.into(),
            }],
            detail: None,
            reason: None,
        },
    );
    t
}

#[test]
fn interception_is_told_from_rotation() {
    let targets = vec![
        // PKIX: valid for the name from A, self-signed from B, another key.
        trusted("A", "192.0.2.1", "aa", "k1", true),
        trusted("B", "192.0.2.1", "bb", "k2", false),
        // Rotation or a pool: both verify.
        trusted("A", "192.0.2.2", "aa", "k1", true),
        trusted("B", "192.0.2.2", "cc", "k3", true),
        // DANE: a match from A, a mismatch from B with another key (B's
        // chain is even PKIX-valid: a misissued certificate).
        with_dane(
            trusted("A", "192.0.2.3", "aa", "k1", false),
            DaneVerdict::DaneValid,
            "k1",
        ),
        with_dane(
            trusted("B", "192.0.2.3", "dd", "k4", true),
            DaneVerdict::DaneMismatch,
            "k1",
        ),
        // Another TLSA answer, same certificate: not interception.
        with_dane(
            trusted("A", "192.0.2.4", "aa", "k1", false),
            DaneVerdict::DaneValid,
            "k1",
        ),
        with_dane(
            trusted("B", "192.0.2.4", "aa", "k1", false),
            DaneVerdict::DaneMismatch,
            "ff",
        ),
        // Same key, new certificate, neither verifies: a plain difference.
        trusted("A", "192.0.2.5", "aa", "k1", false),
        trusted("B", "192.0.2.5", "ee", "k1", false),
    ];
    let report = joined(&[], &targets);
    let classes: Vec<(&str, Vec<Disagreement>)> = report
        .diffs
        .iter()
        .map(|d| (d.ip.as_str(), d.classes.clone()))
        .collect();
    assert_eq!(
        classes,
        [
            ("192.0.2.1", vec![TlsIntercepted]),
            ("192.0.2.2", vec![CertificateDiffers]),
            ("192.0.2.3", vec![TlsIntercepted, DaneDiffers]),
            ("192.0.2.4", vec![DaneDiffers, TlsaDiffers]),
            ("192.0.2.5", vec![CertificateDiffers]),
        ]
    );
    assert!(vantages::summary_line(&report).contains("2 tls_intercepted, 2 certificate_differs"));
}

fn with_suites(mut t: TargetRecord, tls12: &[&str]) -> TargetRecord {
    let mut depth = TlsDepth {
        level: DepthLevel::Suites,
        ..TlsDepth::default()
    };
    depth.versions.insert(
        "tls1_2".into(),
        VersionDepth {
            accepted: tls12.iter().map(|s| (*s).to_string()).collect(),
            complete: true,
            ..VersionDepth::default()
        },
    );
    t.tls_depth = Some(depth);
    t
}

#[test]
fn suites_filtered_on_path_are_told_from_rotation() {
    const GCM: &str = "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256";
    const CBC: &str = "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA";
    let targets = vec![
        // Same key, fewer suites from B: a filtering middlebox.
        with_suites(trusted("A", "192.0.2.1", "aa", "k1", true), &[GCM, CBC]),
        with_suites(trusted("B", "192.0.2.1", "aa", "k1", true), &[GCM]),
        // Another key and other suites: rotation or a pool.
        with_suites(trusted("A", "192.0.2.2", "aa", "k1", true), &[GCM, CBC]),
        with_suites(trusted("B", "192.0.2.2", "bb", "k2", true), &[GCM]),
        // The same suites, in another order: no difference.
        with_suites(trusted("A", "192.0.2.3", "aa", "k1", true), &[GCM, CBC]),
        with_suites(trusted("B", "192.0.2.3", "aa", "k1", true), &[CBC, GCM]),
    ];
    let report = joined(&[], &targets);
    let classes: Vec<(&str, Vec<Disagreement>)> = report
        .diffs
        .iter()
        .map(|d| (d.ip.as_str(), d.classes.clone()))
        .collect();
    assert_eq!(
        classes,
        [
            ("192.0.2.1", vec![SuitesDiffer]),
            ("192.0.2.2", vec![CertificateDiffers]),
        ]
    );
    assert!(vantages::summary_line(&report).contains("1 suites_differ"));
}

#[test]
fn merge_join_groups_each_domain_once() {
    let a = vec![
        domain("A", "a.example", &[]),
        domain("A", "c.example", &[]),
        domain("A", "d.example", &[]),
    ];
    let b = vec![domain("B", "b.example", &[]), domain("B", "c.example", &[])];
    let c: Vec<DomainRecord> = vec![domain("C", "d.example", &[])];
    let mut groups = Vec::new();
    merge_by_domain(
        vec![
            a.into_iter().map(Ok::<_, Infallible>),
            b.into_iter().map(Ok),
            c.into_iter().map(Ok),
        ],
        |group| {
            groups.push((
                group[0].domain.clone(),
                group
                    .iter()
                    .map(|r| r.vantage.clone().unwrap())
                    .collect::<Vec<_>>(),
            ));
            Ok(())
        },
    )
    .unwrap();
    let want = |d: &str, v: &[&str]| (d.to_string(), v.iter().map(|s| s.to_string()).collect());
    assert_eq!(
        groups,
        [
            want("a.example", &["A"]),
            want("b.example", &["B"]),
            want("c.example", &["A", "B"]),
            want("d.example", &["A", "C"]),
        ]
    );
}

#[test]
fn agreement_counts_targets_and_domains() {
    let domains = vec![
        domain("A", "same.example", &[(10, "mx.same", &["192.0.2.1"])]),
        domain("B", "same.example", &[(10, "mx.same", &["192.0.2.1"])]),
        domain("A", "tls.example", &[(10, "mx.example", &["192.0.2.9"])]),
        domain("B", "tls.example", &[(10, "mx.example", &["192.0.2.9"])]),
        domain("A", "swap.example", &[(10, "mx.swap", &["192.0.2.2"])]),
        domain("B", "swap.example", &[(10, "mx.evil", &["192.0.2.3"])]),
    ];
    let targets = vec![
        probed("A", "192.0.2.1", true, "aa", "TLSv1.3"),
        probed("B", "192.0.2.1", true, "aa", "TLSv1.3"),
        trusted("A", "192.0.2.9", "aa", "k1", true),
        trusted("B", "192.0.2.9", "bb", "k2", false),
    ];
    let report = joined(&domains, &targets);
    let a = agreement::agreement(&report);
    assert_eq!((a.targets_compared, a.targets_agreeing), (2, 1));
    assert_eq!(
        (a.domains_compared, a.domains_agreeing),
        (3, 1),
        "tls.example agrees in DNS but its target was intercepted"
    );
    assert_eq!(a.classes["tls_intercepted"], 1);
    assert_eq!(a.members["tls_intercepted"], ["192.0.2.9"]);
    assert_eq!(a.members["mx_differs"], ["swap.example"]);
    assert_eq!(a.one_vantage_targets, 0, "no target record for .2 and .3");
    let text = agreement::text(&a);
    assert!(
        text.contains("Vantages A, B agree on 50.0% of 2 targets probed from two or more and 33.3% of 3 domains"),
        "{text}"
    );
    assert!(text.contains("tls_intercepted: 1 (192.0.2.9)"), "{text}");
}
