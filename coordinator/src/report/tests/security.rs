//! The security section on hand-built records: every distribution's
//! counts, the MTA-STS join of a policy-only stored verdict, and DANE
//! differences between vantages.

use std::collections::BTreeMap;
use std::convert::Infallible;

use mxscope_common::record::security_dns::{
    DaneResult, DaneVerdict, DnssecReason, DnssecStatus, ReverseDns, ReverseDnsVerdict,
};
use mxscope_common::record::security_policy::{
    MtaSts, MtaStsVerdict, MxPolicyCheck, Policy, PolicyMode, TlsRpt, TlsRptVerdict,
};
use mxscope_common::{DnsStatus, DomainRecord, DomainSecurity, Outcome, Phase, TargetRecord};

use super::super::model::{Disagreement, ScanReport};
use super::super::{render, vantages};
use super::{domain, failed_domain, info, owned, probed, run, small_scan, target, with_tls};
use mxscope_common::Verification;

pub(super) fn sts(verdict: MtaStsVerdict) -> MtaSts {
    MtaSts {
        verdict,
        txt_id: None,
        policy: None,
        per_mx: Vec::new(),
        detail: None,
    }
}

/// What the resolve task of a distributed scan stores: the policy, and
/// every MX "not probed".
pub(super) fn policy_only(mode: PolicyMode, mx: &str) -> MtaSts {
    MtaSts {
        verdict: MtaStsVerdict::EnforceWouldFail,
        txt_id: Some("20260101".into()),
        policy: Some(Policy {
            mode,
            mx: vec![mx.to_string()],
            max_age: 86_400,
        }),
        per_mx: vec![MxPolicyCheck {
            mx: mx.to_string(),
            pattern_match: true,
            certificate_ok: None,
            reason: Some("not probed: no TLS facts".into()),
        }],
        detail: Some("1 of 1 MX would be refused".into()),
    }
}

pub(super) fn secured(
    mut d: DomainRecord,
    dnssec: DnssecStatus,
    mta_sts: MtaSts,
    tls_rpt: TlsRptVerdict,
) -> DomainRecord {
    d.security = Some(DomainSecurity {
        dnssec_mx: dnssec,
        dnssec_exchanges: BTreeMap::new(),
        dnssec_mx_reason: None,
        dnssec_exchange_reasons: BTreeMap::new(),
        resolver_check: None,
        mta_sts,
        tls_rpt: TlsRpt {
            verdict: tls_rpt,
            present: tls_rpt != TlsRptVerdict::Absent,
            rua: Vec::new(),
            detail: None,
        },
    });
    d
}

/// A STARTTLS target of `mx` with the given verification, DANE and PTR.
pub(super) fn tls_target(
    ip: &str,
    mx: &str,
    verification: Verification,
    dane: Option<DaneVerdict>,
    ptr: ReverseDnsVerdict,
) -> TargetRecord {
    let mut t = with_tls(
        target("A", ip, Outcome::StarttlsOk, Phase::Done),
        "TLSv1.3",
        verification,
        None,
    );
    t.mx_names = vec![mx.to_string()];
    if let Some(tls) = &mut t.tls {
        tls.name_match.insert(mx.to_string(), true);
    }
    if let Some(verdict) = dane {
        t.dane.insert(mx.to_string(), dane_result(verdict));
    }
    t.ptr = Some(ReverseDns {
        verdict: ptr,
        names: Vec::new(),
        detail: None,
    });
    t
}

fn dane_result(verdict: DaneVerdict) -> DaneResult {
    DaneResult {
        verdict,
        tlsa: Vec::new(),
        detail: None,
        reason: None,
    }
}

fn security_scan() -> (Vec<DomainRecord>, Vec<TargetRecord>) {
    use DnssecStatus::*;
    let domains = vec![
        secured(
            domain("A", "s1.example", &[(10, "mx1", &["192.0.2.1"])]),
            Secure,
            policy_only(PolicyMode::Enforce, "mx1"),
            TlsRptVerdict::Valid,
        ),
        secured(
            domain("A", "s2.example", &[(10, "mx2", &["192.0.2.2"])]),
            Secure,
            policy_only(PolicyMode::Enforce, "mx2"),
            TlsRptVerdict::Absent,
        ),
        secured(
            domain("A", "s3.example", &[(10, "mx3", &["192.0.2.3"])]),
            Insecure,
            policy_only(PolicyMode::Testing, "mx3"),
            TlsRptVerdict::Invalid,
        ),
        secured(
            domain("A", "s4.example", &[(10, "mx4", &["192.0.2.4"])]),
            Bogus,
            sts(MtaStsVerdict::NoMtaSts),
            TlsRptVerdict::DnsError,
        ),
        secured(
            failed_domain("A", "s5.example", DnsStatus::Nxdomain),
            Indeterminate,
            sts(MtaStsVerdict::DnsError),
            TlsRptVerdict::DnsError,
        ),
        domain("A", "s6.example", &[(10, "mx1", &["192.0.2.1"])]),
    ];
    let mut no_starttls = target("A", "192.0.2.4", Outcome::NoStarttls, Phase::Ehlo);
    no_starttls.mx_names = vec!["mx4".into()];
    no_starttls
        .dane
        .insert("mx4".into(), dane_result(DaneVerdict::TlsaLookupFailed));
    no_starttls.ptr = Some(ReverseDns {
        verdict: ReverseDnsVerdict::LookupFailed,
        names: Vec::new(),
        detail: Some("SERVFAIL".into()),
    });
    let targets = vec![
        tls_target(
            "192.0.2.1",
            "mx1",
            Verification::Valid,
            Some(DaneVerdict::DaneValid),
            ReverseDnsVerdict::FcrdnsOk,
        ),
        tls_target(
            "192.0.2.2",
            "mx2",
            Verification::Expired,
            Some(DaneVerdict::DaneMismatch),
            ReverseDnsVerdict::NoPtr,
        ),
        tls_target(
            "192.0.2.3",
            "mx3",
            Verification::Valid,
            Some(DaneVerdict::NotApplicableInsecure),
            ReverseDnsVerdict::PtrMismatch,
        ),
        no_starttls,
    ];
    (domains, targets)
}

fn security_rows(report: &ScanReport, name: &str) -> Vec<(String, u64, u64)> {
    let section = report.vantages[0]
        .security
        .as_ref()
        .expect("a security section");
    let d = section
        .distributions
        .iter()
        .find(|d| d.name == name)
        .unwrap_or_else(|| panic!("no distribution {name}"));
    d.rows
        .iter()
        .map(|r| (r.value.clone(), r.count, d.total))
        .collect()
}

fn counts(report: &ScanReport, name: &str) -> (u64, Vec<(String, u64)>) {
    let rows = security_rows(report, name);
    let total = rows.first().map_or(0, |r| r.2);
    (total, rows.into_iter().map(|(v, n, _)| (v, n)).collect())
}

#[test]
fn every_security_distribution_counts() {
    let (domains, targets) = security_scan();
    let (report, _) = run(info("sec", &["A"]), &["A"], &domains, &targets);
    let section = report.vantages[0].security.as_ref().expect("section");
    assert_eq!(
        (
            section.domains_with_mx,
            section.mx_dnssec_signed,
            section.dane_adopted,
            section.dane_valid
        ),
        (4, 2, 2, 1)
    );
    let names: Vec<&str> = section
        .distributions
        .iter()
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "dnssec_mx",
            "dnssec_reason",
            "dane",
            "dane_reason",
            "dane_adoption",
            "mta_sts",
            "tls_rpt",
            "ptr"
        ]
    );
    assert_eq!(
        counts(&report, "dnssec_mx"),
        (
            4,
            owned(&[
                ("secure", 2),
                ("insecure", 1),
                ("bogus", 1),
                ("indeterminate", 0)
            ])
        )
    );
    assert_eq!(
        counts(&report, "dane"),
        (
            3,
            owned(&[
                ("dane_valid", 1),
                ("dane_mismatch", 1),
                ("no_tlsa", 0),
                ("tlsa_lookup_failed", 0),
                ("not_applicable_insecure", 1),
                ("address_bogus", 0),
            ])
        ),
        "the no_starttls host's pair is not counted"
    );
    assert_eq!(
        counts(&report, "dane_adoption"),
        (
            4,
            owned(&[
                ("dane_valid", 1),
                ("dane_broken", 1),
                ("address_bogus", 0),
                ("no_dane", 2)
            ])
        )
    );
    assert_eq!(
        counts(&report, "mta_sts"),
        (
            5,
            owned(&[
                ("enforce_ok", 1),
                ("enforce_would_fail", 1),
                ("testing", 1),
                ("none", 0),
                ("txt_without_policy", 0),
                ("policy_fetch_failed", 0),
                ("txt_invalid", 0),
                ("no_mta_sts", 1),
                ("dns_error", 1),
            ])
        )
    );
    assert_eq!(
        counts(&report, "tls_rpt"),
        (
            5,
            owned(&[
                ("valid", 1),
                ("absent", 1),
                ("invalid", 1),
                ("dns_error", 2)
            ])
        )
    );
    assert_eq!(
        counts(&report, "ptr"),
        (
            4,
            owned(&[
                ("fcrdns_ok", 1),
                ("ptr_mismatch", 1),
                ("no_ptr", 1),
                ("lookup_failed", 1)
            ])
        )
    );
    let text = render::scan_text(&report);
    assert!(
        text.contains("Security\n  DNSSEC-signed MX: 2 of 4 domains with MX (50.0%); DANE adoption: 2 (50.0%) (1 valid)."),
        "{text}"
    );
    assert!(text.contains("MTA-STS (5 domains)"), "{text}");
    let md = render::scan_markdown(&report);
    assert!(
        md.contains("### Security") && md.contains("#### TLS-RPT"),
        "{md}"
    );
    let json = render::json(&report).unwrap();
    assert!(json.contains("\"security\"") && json.contains("\"enforce_would_fail\""));
    let html = render::html::render_scan(&report);
    assert!(html.contains("<h3>Security</h3>") && html.contains("Reverse DNS (FCrDNS)"));
}

#[test]
fn a_policy_only_verdict_is_finished_with_the_targets() {
    for (verification, verdict) in [
        (Verification::Expired, "enforce_would_fail"),
        (Verification::Valid, "enforce_ok"),
    ] {
        let domains = vec![secured(
            domain("A", "p.example", &[(10, "mx1", &["192.0.2.1"])]),
            DnssecStatus::Insecure,
            policy_only(PolicyMode::Enforce, "mx1"),
            TlsRptVerdict::Absent,
        )];
        let targets = vec![tls_target(
            "192.0.2.1",
            "mx1",
            verification,
            None,
            ReverseDnsVerdict::FcrdnsOk,
        )];
        let (report, _) = run(info("sec", &["A"]), &["A"], &domains, &targets);
        let (total, rows) = counts(&report, "mta_sts");
        assert_eq!(total, 1);
        let hit: Vec<&str> = rows
            .iter()
            .filter(|(_, n)| *n == 1)
            .map(|(v, _)| v.as_str())
            .collect();
        assert_eq!(hit, [verdict], "{verification:?}");
    }
}

#[test]
fn no_security_facts_no_section() {
    let (domains, targets) = small_scan();
    let (report, _) = run(info("x", &["A"]), &["A"], &domains, &targets);
    assert_eq!(report.vantages[0].security, None);
    assert!(!render::json(&report).unwrap().contains("\"security\""));
}

#[test]
fn security_distributions_are_compared() {
    let (domains, targets) = security_scan();
    let (first, _) = run(info("one", &["A"]), &["A"], &domains, &targets);
    let mut two = info("two", &["A"]);
    two.id = "s2".into();
    let (second, _) = run(two, &["A"], &domains[..1], &targets[..1]);
    let table = super::super::comparison_table(&super::super::compare(vec![first, second]));
    let section = table
        .sections
        .iter()
        .find(|s| s.title.starts_with("MTA-STS"))
        .expect("an MTA-STS section");
    let ok = section
        .rows
        .iter()
        .find(|r| r.label == "enforce_ok")
        .expect("an enforce_ok row");
    let counts: Vec<Option<u64>> = ok
        .cells
        .iter()
        .map(|c| c.as_ref().map(|c| c.count))
        .collect();
    assert_eq!(counts, [Some(1), Some(1)]);
}

#[test]
fn dane_verdicts_differing_between_vantages() {
    let mut a = probed("A", "192.0.2.1", true, "aa", "TLSv1.3");
    a.mx_names = vec!["mx1.example".into()];
    let mut b = probed("B", "192.0.2.1", true, "aa", "TLSv1.3");
    b.mx_names = vec!["mx1.example".into()];
    a.dane
        .insert("mx1.example".into(), dane_result(DaneVerdict::DaneValid));
    b.dane
        .insert("mx1.example".into(), dane_result(DaneVerdict::DaneMismatch));
    let same_a = a.clone();
    let mut same_b = same_a.clone();
    same_b.vantage = Some("B".into());
    let report = vantages::vantages_report(
        info("x", &["A", "B"]),
        [a, b].into_iter().map(Ok::<_, Infallible>),
    )
    .unwrap();
    assert_eq!(report.diffs.len(), 1);
    assert_eq!(report.diffs[0].classes, [Disagreement::DaneDiffers]);
    assert_eq!(report.summary["dane_differs"], 1);
    let agree = vantages::vantages_report(
        info("x", &["A", "B"]),
        [same_a, same_b].into_iter().map(Ok::<_, Infallible>),
    )
    .unwrap();
    assert!(agree.diffs.is_empty());
}

fn failed_check() -> mxscope_common::record::security_dns::ResolverCheck {
    mxscope_common::record::security_dns::ResolverCheck {
        usable: false,
        reason: Some(DnssecReason::AnchorDnskeyUnavailable),
        resolvers: vec!["192.0.2.53:53".into()],
        anchor_zone: ".".into(),
        dnskey_rcode: Some("REFUSED".into()),
        dnskey: false,
        anchor_matches: false,
        rrsig: false,
        ad: false,
        tcp: true,
        signed_name: None,
        signed_name_rrsig: None,
        detail: "resolvers 192.0.2.53:53 cannot support DNSSEC validation".into(),
    }
}

#[test]
fn reasons_are_counted_and_a_failed_resolver_check_excludes_adoption() {
    let (mut domains, targets) = security_scan();
    let set = |d: &mut DomainRecord, reason: DnssecReason| {
        if let Some(sec) = d.security.as_mut() {
            sec.dnssec_mx_reason = Some(reason);
        }
    };
    set(&mut domains[2], DnssecReason::InsecureDelegation);
    set(&mut domains[3], DnssecReason::DsMismatch);
    let (report, _) = run(info("sec", &["A"]), &["A"], &domains, &targets);
    let section = report.vantages[0].security.as_ref().expect("section");
    assert!(!section.dane_adoption_excluded);
    let reasons: Vec<(String, u64)> = counts(&report, "dnssec_reason")
        .1
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    assert_eq!(
        reasons,
        owned(&[("insecure_delegation", 1), ("ds_mismatch", 1)])
    );
    assert_eq!(counts(&report, "dnssec_reason").0, 2);
    assert!(!render::scan_text(&report).contains("Warning: "));

    // One record of the vantage carries a failed self-check.
    if let Some(sec) = domains[1].security.as_mut() {
        sec.resolver_check = Some(failed_check());
    }
    let (report, _) = run(info("sec", &["A"]), &["A"], &domains, &targets);
    let section = report.vantages[0].security.as_ref().expect("section");
    assert!(section.dane_adoption_excluded);
    assert_eq!((section.dane_adopted, section.dane_valid), (0, 0));
    assert_eq!(counts(&report, "dane_adoption").0, 0);
    let text = render::scan_text(&report);
    assert_eq!(text.matches("Warning: ").count(), 1, "{text}");
    assert!(render::scan_markdown(&report).contains("cannot support DNSSEC validation"));
}
