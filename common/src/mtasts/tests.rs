//! The evaluation over records: MX patterns, the verdict over a fetched
//! policy, the facts a target gives and a stored verdict finished later.
//! (The TXT and policy parsers and the fetch are tested in the worker.)

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use crate::{Outcome, TlsFacts, TlsSource};

fn strings(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

fn policy(mode: PolicyMode, mx: &[&str]) -> Policy {
    Policy {
        mode,
        mx: strings(mx),
        max_age: 86400,
    }
}

fn tls(mx: &str, verification: Verification, name_ok: bool) -> MxTls {
    MxTls {
        mx: mx.into(),
        session: MxSession::Tls {
            verification,
            name_ok,
        },
    }
}

/// The verdict of TXT id `1` and `policy`.
fn verdict(policy: &Policy, mx: &[String], facts: &[MxTls]) -> MtaSts {
    evaluate_policy(Some("1".into()), policy.clone(), mx, facts)
}

#[test]
fn wildcards_cover_one_label() {
    assert!(mx_matches("mail.example.com", "MAIL.example.com."));
    assert!(mx_matches("*.example.net", "mx1.example.net"));
    assert!(!mx_matches("*.example.net", "example.net"));
    assert!(!mx_matches("*.example.net", "a.b.example.net"));
    assert!(!mx_matches("*.example.net", ".example.net"));
    assert!(!mx_matches("mail.example.com", "mail.example.com.evil"));
    assert!(!mx_matches("mail.example.com", ""));
}

#[test]
fn evaluate_enforce() {
    let mx = strings(&["mx1.example.net", "mx2.example.net"]);
    let facts = [
        tls("mx1.example.net", Verification::Valid, true),
        tls("mx2.example.net", Verification::Valid, true),
    ];
    let ok = policy(PolicyMode::Enforce, &["*.example.net"]);
    let sts = verdict(&ok, &mx, &facts);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceOk);
    assert_eq!(sts.txt_id.as_deref(), Some("1"));
    assert_eq!(sts.per_mx.len(), 2);
    assert!(sts.per_mx.iter().all(|c| c.reason.is_none()));

    let nomatch = policy(PolicyMode::Enforce, &["mx1.example.net"]);
    let sts = verdict(&nomatch, &mx, &facts);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
    assert!(!sts.per_mx[1].pattern_match);
    assert_eq!(sts.per_mx[1].certificate_ok, Some(true));
    assert!(sts.per_mx[1]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("pattern")));

    // One bad address of two is enough to fail.
    let mut two_ips = facts.to_vec();
    two_ips.push(tls("mx2.example.net", Verification::Expired, true));
    let sts = verdict(&ok, &mx, &two_ips);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
    assert_eq!(sts.per_mx[1].certificate_ok, Some(false));
    assert!(sts.per_mx[1]
        .reason
        .as_deref()
        .is_some_and(|r| r.contains("expired")));

    // No TLS session, not probed, no MX.
    let no_tls = [
        facts[0].clone(),
        MxTls {
            mx: "mx2.example.net".into(),
            session: MxSession::NoTls {
                outcome: "no_starttls".into(),
            },
        },
    ];
    let sts = verdict(&ok, &mx, &no_tls);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
    assert_eq!(sts.per_mx[1].certificate_ok, None);
    let sts = verdict(&ok, &mx, &facts[..1]);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
    let sts = verdict(&ok, &[], &[]);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
}

#[test]
fn evaluate_testing_and_none() {
    let mx = strings(&["mx1.example.net"]);
    let bad = [tls("mx1.example.net", Verification::SelfSigned, false)];
    let testing = policy(PolicyMode::Testing, &["*.example.net"]);
    let sts = verdict(&testing, &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::Testing);
    assert!(sts.per_mx[0].reason.is_some());

    let none = policy(PolicyMode::None, &[]);
    let sts = verdict(&none, &mx, &bad);
    assert_eq!(sts.verdict, MtaStsVerdict::None);
    assert!(sts.per_mx.is_empty());
}

#[test]
fn a_target_gives_one_fact_per_mx_name() {
    let names = strings(&["mx1.example.net", "mx2.example.net"]);
    let mut target = TargetRecord::new("192.0.2.1".parse().expect("ip"), 25, names);
    target.outcome = Outcome::NoStarttls;
    let no_tls = mx_tls_facts(&target);
    assert_eq!(no_tls.len(), 2);
    assert!(no_tls.iter().all(|f| f.session
        == MxSession::NoTls {
            outcome: "no_starttls".into()
        }));

    target.outcome = Outcome::StarttlsOk;
    target.tls = Some(TlsFacts {
        version: "TLSv1.3".into(),
        cipher: "TLS13_AES_128_GCM_SHA256".into(),
        group: None,
        verification: Verification::Valid,
        verification_detail: None,
        name_match: BTreeMap::from([("mx1.example.net".to_string(), true)]),
        chain: Vec::new(),
        source: TlsSource::default(),
        key_exchange: None,
        forward_secrecy: None,
        dh_bits: None,
        dh_group: None,
        signature_scheme: None,
        ocsp: None,
    });
    let facts = mx_tls_facts(&target);
    assert_eq!(facts[0], tls("mx1.example.net", Verification::Valid, true));
    // A name the certificate does not cover (absent from name_match).
    assert_eq!(facts[1], tls("mx2.example.net", Verification::Valid, false));
}

#[test]
fn reevaluate_finishes_a_policy_only_verdict() {
    let mx = strings(&["mx1.example.net"]);
    let enforce = policy(PolicyMode::Enforce, &["mx1.example.net"]);
    let stored = verdict(&enforce, &mx, &[]);
    assert_eq!(
        stored.verdict,
        MtaStsVerdict::EnforceWouldFail,
        "not probed"
    );
    let expired = [tls("mx1.example.net", Verification::Expired, true)];
    let sts = reevaluate(&stored, &mx, &expired);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceWouldFail);
    assert_eq!(sts.per_mx[0].certificate_ok, Some(false));
    let valid = [tls("mx1.example.net", Verification::Valid, true)];
    let sts = reevaluate(&stored, &mx, &valid);
    assert_eq!(sts.verdict, MtaStsVerdict::EnforceOk);
    assert_eq!(sts.txt_id.as_deref(), Some("1"));
    // Verdicts that do not depend on the MX stay as stored.
    let absent = MtaSts {
        verdict: MtaStsVerdict::NoMtaSts,
        txt_id: None,
        policy: None,
        per_mx: Vec::new(),
        detail: None,
    };
    assert_eq!(reevaluate(&absent, &mx, &valid), absent);
    let none = verdict(&policy(PolicyMode::None, &[]), &mx, &[]);
    assert_eq!(reevaluate(&none, &mx, &expired), none);
}

proptest! {
    #[test]
    fn matching_never_panics(text in "\\PC{0,300}") {
        let _ = mx_matches(&text, "mx.example.net");
        let _ = mx_matches("*.example.net", &text);
    }

    #[test]
    fn a_wildcard_covers_exactly_one_more_label(
        labels in proptest::collection::vec("[a-z0-9]{1,10}", 1..5),
        extra in "[a-z0-9]{1,10}",
    ) {
        let host = labels.join(".");
        let pattern = format!("*.{host}");
        let one_more = format!("{extra}.{host}");
        let two_more = format!("{extra}.{one_more}");
        prop_assert!(mx_matches(&pattern, &one_more));
        prop_assert!(!mx_matches(&pattern, &host));
        prop_assert!(!mx_matches(&pattern, &two_more));
        prop_assert!(mx_matches(&host, &host.to_ascii_uppercase()));
    }
}
