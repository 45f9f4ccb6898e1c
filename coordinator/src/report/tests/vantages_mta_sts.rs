//! MTA-STS verdicts compared between vantages: a differing verdict is a
//! `DomainDiff`, an agreeing one or `no_mta_sts` everywhere is not, and a
//! policy-only stored verdict is finished against each vantage's targets.

use std::convert::Infallible;

use mxscope_common::record::security_dns::{DnssecStatus, ReverseDnsVerdict};
use mxscope_common::record::security_policy::{MtaSts, MtaStsVerdict, PolicyMode, TlsRptVerdict};
use mxscope_common::{DomainRecord, TargetRecord, Verification};

use super::super::model::{Disagreement, VantagesReport};
use super::super::{render, vantages};
use super::security::{policy_only, secured, sts, tls_target};
use super::{domain, info};

fn sts_domain(vantage: &str, name: &str, mta_sts: MtaSts) -> DomainRecord {
    secured(
        domain(vantage, name, &[(10, "mx1.example", &["192.0.2.1"])]),
        DnssecStatus::Insecure,
        mta_sts,
        TlsRptVerdict::Absent,
    )
}

fn report(domains: &[DomainRecord], targets: &[TargetRecord]) -> VantagesReport {
    vantages::vantages_report_with_domains(
        info("x", &["A", "B"]),
        || domains.iter().cloned().map(Ok::<_, Infallible>),
        targets.iter().cloned().map(Ok),
    )
    .unwrap()
}

#[test]
fn differing_mta_sts_verdict_is_flagged() {
    let report = report(
        &[
            sts_domain("A", "a.example", sts(MtaStsVerdict::EnforceOk)),
            sts_domain("B", "a.example", sts(MtaStsVerdict::PolicyFetchFailed)),
            sts_domain("A", "same.example", sts(MtaStsVerdict::Testing)),
            sts_domain("B", "same.example", sts(MtaStsVerdict::Testing)),
        ],
        &[],
    );
    assert_eq!(report.domains_compared, 2);
    assert_eq!(report.domain_diffs.len(), 1);
    let diff = &report.domain_diffs[0];
    assert_eq!(diff.domain, "a.example");
    assert_eq!(diff.classes, [Disagreement::MtaStsDiffers]);
    assert_eq!(diff.mta_sts["A"], "enforce_ok");
    assert_eq!(diff.mta_sts["B"], "policy_fetch_failed");
    assert_eq!(report.summary["mta_sts_differs"], 1);
    assert!(report.diffs.is_empty());

    let text = render::vantages_text(&report);
    assert!(
        text.starts_with(
            "0 targets differ (of 0 targets probed from 2 or more vantages); \
             1 domain whose MTA-STS verdict differs (of 2 domains with MTA-STS \
             seen from 2 or more vantages); 0 domains whose DNS differs (of 2 domains \
             resolved from 2 or more vantages)."
        ),
        "{text}"
    );
    assert!(text.contains("Domains whose MTA-STS verdict differs"));
    assert!(text.contains("policy_fetch_failed"));
    let md = render::vantages_markdown(&report);
    assert!(md.contains("## Domains whose MTA-STS verdict differs"));
    assert!(
        md.contains("| a.example | enforce_ok | policy_fetch_failed |"),
        "{md}"
    );
    let json = render::json(&report).unwrap();
    assert!(json.contains("\"domain_diffs\""));
    assert!(json.contains("\"mta_sts_differs\""));
}

#[test]
fn identical_verdicts_are_not_flagged() {
    let report = report(
        &[
            sts_domain("A", "a.example", sts(MtaStsVerdict::EnforceOk)),
            sts_domain("B", "a.example", sts(MtaStsVerdict::EnforceOk)),
        ],
        &[],
    );
    assert_eq!(report.domains_compared, 1);
    assert!(report.domain_diffs.is_empty());
    assert!(!report.summary.contains_key("mta_sts_differs"));
}

#[test]
fn no_mta_sts_against_a_missing_record_is_not_flagged() {
    // B has no record of the domain: nothing to compare.
    let report = report(
        &[sts_domain("A", "a.example", sts(MtaStsVerdict::NoMtaSts))],
        &[],
    );
    assert_eq!(report.domains_compared, 0);
    assert!(report.domain_diffs.is_empty());
    // No record from B, a policy from A: still nothing to compare.
    let report = vantages::vantages_report_with_domains(
        info("x", &["A", "B"]),
        || {
            [sts_domain("A", "a.example", sts(MtaStsVerdict::EnforceOk))]
                .into_iter()
                .map(Ok::<_, Infallible>)
        },
        std::iter::empty(),
    )
    .unwrap();
    assert_eq!(report.domains_compared, 0);
    assert!(report.domain_diffs.is_empty());
    // Without security checks on B, B's record says nothing about MTA-STS.
    let report = vantages::vantages_report_with_domains(
        info("x", &["A", "B"]),
        || {
            [
                sts_domain("A", "a.example", sts(MtaStsVerdict::EnforceOk)),
                domain("B", "a.example", &[(10, "mx1.example", &["192.0.2.1"])]),
            ]
            .into_iter()
            .map(Ok::<_, Infallible>)
        },
        std::iter::empty(),
    )
    .unwrap();
    assert!(report.domain_diffs.is_empty());
}

#[test]
fn no_mta_sts_before_a_policy_is_found_on_the_second_pass() {
    // B's `no_mta_sts` comes first in the stream: kept on the second pass.
    let report = report(
        &[
            sts_domain("B", "a.example", sts(MtaStsVerdict::NoMtaSts)),
            sts_domain("A", "a.example", sts(MtaStsVerdict::EnforceOk)),
        ],
        &[],
    );
    assert_eq!(report.domain_diffs.len(), 1);
    assert_eq!(report.domain_diffs[0].mta_sts["B"], "no_mta_sts");
}

#[test]
fn policy_only_verdicts_are_finished_per_vantage() {
    // Both vantages stored the same policy-only verdict; A's MX shows a
    // valid certificate, B's a self-signed one.
    let target = |vantage: &str, verification| {
        let mut t = tls_target(
            "192.0.2.1",
            "mx1.example",
            verification,
            None,
            ReverseDnsVerdict::FcrdnsOk,
        );
        t.vantage = Some(vantage.into());
        t
    };
    let good = target("A", Verification::Valid);
    let bad = target("B", Verification::SelfSigned);
    let domains = [
        sts_domain(
            "A",
            "a.example",
            policy_only(PolicyMode::Enforce, "mx1.example"),
        ),
        sts_domain(
            "B",
            "a.example",
            policy_only(PolicyMode::Enforce, "mx1.example"),
        ),
    ];
    let targets = [good.clone(), bad];
    assert_ne!(targets[0].vantage, targets[1].vantage);
    let report = report(&domains, &targets);
    assert_eq!(report.domain_diffs.len(), 1, "{report:?}");
    assert_eq!(report.domain_diffs[0].mta_sts["B"], "enforce_would_fail");
    let good_b = target("B", Verification::Valid);
    let report = self::report(&domains, &[good, good_b]);
    assert!(report.domain_diffs.is_empty(), "{report:?}");
}
