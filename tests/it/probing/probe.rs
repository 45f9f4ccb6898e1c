//! The probe against every lab MTA host: exact outcome and facts.

use std::net::IpAddr;

use mxscope_common::{Outcome, Phase, TargetRecord, Verification, VersionSupport};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::probing::{probe_host, prober, resolver};

async fn postfix_host(host: Host, legacy: bool) -> TargetRecord {
    lab::postfix();
    probe_host(host, None, legacy).await
}

fn leaf_key(r: &TargetRecord) -> (String, Option<u32>, Option<String>) {
    let tls = r.tls.as_ref().expect("tls facts");
    let key = &tls.chain.first().expect("a leaf").key;
    (key.key_type.clone(), key.bits, key.curve.clone())
}

fn assert_ok(r: &TargetRecord) {
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::StarttlsOk, Phase::Done),
        "{}: {:?}",
        r.ip,
        r.detail
    );
    assert!(r.ehlo.iter().any(|k| k == "STARTTLS"), "{:?}", r.ehlo);
    assert!(!r.ehlo_tls.is_empty(), "post-TLS EHLO recorded");
    assert!(!r.ehlo_tls.iter().any(|k| k == "STARTTLS"));
}

#[tokio::test]
async fn valid_rsa_host() {
    let r = postfix_host(MX_VALID, false).await;
    assert_ok(&r);
    let tls = r.tls.as_ref().unwrap();
    assert_eq!(
        tls.verification,
        Verification::Valid,
        "{:?}",
        tls.verification_detail
    );
    assert_eq!(tls.name_match.get(MX_VALID.name), Some(&true));
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.chain.len(), 2, "leaf and lab CA");
    assert_eq!(leaf_key(&r), ("RSA".into(), Some(2048), None));
    assert_eq!(r.protocols.tls1_3, VersionSupport::Supported);
    assert_eq!(r.greeting.as_ref().unwrap().code, 220);
    let t = &r.timings_ms;
    assert!(t.connect.is_some() && t.greeting.is_some() && t.ehlo.is_some());
    assert!(t.handshake.is_some() && t.ehlo_tls.is_some());
}

#[tokio::test]
async fn ecdsa_host() {
    let r = postfix_host(MX_ECDSA, false).await;
    assert_ok(&r);
    assert_eq!(leaf_key(&r), ("EC".into(), Some(256), Some("P-256".into())));
    assert_eq!(r.tls.unwrap().verification, Verification::Valid);
}

#[tokio::test]
async fn self_signed_host() {
    let r = postfix_host(MX_SELFSIGNED, false).await;
    assert_ok(&r);
    let tls = r.tls.unwrap();
    assert_eq!(tls.verification, Verification::SelfSigned);
    assert!(tls.chain[0].self_signed);
}

#[tokio::test]
async fn expired_host() {
    let r = postfix_host(MX_EXPIRED, false).await;
    assert_ok(&r);
    assert_eq!(r.tls.unwrap().verification, Verification::Expired);
}

#[tokio::test]
async fn name_mismatch_host() {
    let r = postfix_host(MX_MISMATCH, false).await;
    assert_ok(&r);
    let tls = r.tls.unwrap();
    assert_eq!(
        tls.verification,
        Verification::Valid,
        "the chain itself is fine"
    );
    assert_eq!(tls.name_match.get(MX_MISMATCH.name), Some(&false));
}

#[tokio::test]
async fn small_key_host_completes_and_records_the_key() {
    let r = postfix_host(MX_SMALLKEY, false).await;
    assert_ok(&r);
    assert_eq!(leaf_key(&r), ("RSA".into(), Some(1024), None));
}

#[tokio::test]
async fn legacy_host_accepts_tls_1_0_and_1_1() {
    let r = postfix_host(MX_LEGACY, true).await;
    assert_ok(&r);
    let p = &r.protocols;
    assert_eq!(
        p.ssl3,
        VersionSupport::NotSupported,
        "SSLv3 is compiled out of OpenSSL"
    );
    assert_eq!(p.tls1_0, VersionSupport::Supported);
    assert_eq!(p.tls1_1, VersionSupport::Supported);
    assert_eq!(p.tls1_2, VersionSupport::Supported);
    assert_eq!(p.tls1_3, VersionSupport::Supported);
}

#[tokio::test]
async fn modern_host_refuses_legacy_versions() {
    let r = postfix_host(MX_VALID, true).await;
    assert_ok(&r);
    let p = &r.protocols;
    assert_eq!(p.ssl3, VersionSupport::NotSupported);
    assert_eq!(p.tls1_0, VersionSupport::NotSupported);
    assert_eq!(p.tls1_1, VersionSupport::NotSupported);
    assert_eq!(p.tls1_2, VersionSupport::Supported);
    assert_eq!(p.tls1_3, VersionSupport::Supported);
}

#[tokio::test]
async fn tls12_only_host() {
    let r = postfix_host(MX_BACKUP, false).await;
    assert_ok(&r);
    assert_eq!(r.tls.as_ref().unwrap().version, "TLSv1.2");
    assert_eq!(r.protocols.tls1_2, VersionSupport::Supported);
    assert_eq!(r.protocols.tls1_3, VersionSupport::NotSupported);
}

#[tokio::test]
async fn host_without_starttls() {
    let r = postfix_host(MX_NOSTARTTLS, false).await;
    assert_eq!((r.outcome, r.phase), (Outcome::NoStarttls, Phase::Ehlo));
    assert!(r.tls.is_none());
    assert!(!r.ehlo.is_empty());
}

#[tokio::test]
async fn refusing_greeting() {
    let r = postfix_host(MX_REFUSE, false).await;
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::GreetingRefused, Phase::Greeting),
        "{:?}",
        r.detail
    );
    let code = r.greeting.unwrap().code;
    assert!(code == 421 || code == 554, "greeting {code}");
}

#[tokio::test]
async fn starttls_answered_454() {
    let r = postfix_host(MX_TLS454, false).await;
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::StarttlsRejected, Phase::Starttls)
    );
    assert_eq!(r.starttls_reply.unwrap().code, 454);
}

#[tokio::test]
async fn discard_host_depends_on_the_vantage() {
    lab::postfix();
    let a = probe_host(MX_DISCARD, Some(IpAddr::V4(VANTAGE_A)), false).await;
    let b = probe_host(MX_DISCARD, Some(IpAddr::V4(VANTAGE_B)), false).await;
    assert_ok(&a);
    assert_eq!(
        (b.outcome, b.phase),
        (Outcome::NoStarttls, Phase::Ehlo),
        "{:?}",
        b.detail
    );
}

#[tokio::test]
async fn ipv6_only_host() {
    let r = postfix_host(MX_V6, false).await;
    assert_ok(&r);
    assert_eq!(r.ip, MX_V6.ip);
}

#[tokio::test]
async fn exim_host() {
    lab::exim();
    let r = probe_host(MX_EXIM, None, true).await;
    assert_ok(&r);
    let tls = r.tls.as_ref().unwrap();
    assert_eq!(
        tls.verification,
        Verification::Valid,
        "{:?}",
        tls.verification_detail
    );
    assert_eq!(tls.name_match.get(MX_EXIM.name), Some(&true));
    assert_eq!(r.protocols.tls1_0, VersionSupport::NotSupported);
}

/// Domains through DNS: the MX set is joined with the targets, and an IP
/// shared by several domains is probed once.
#[tokio::test]
async fn domains_through_dns_share_targets() {
    lab::postfix();
    let names = [
        domains::SINGLE,
        domains::SHARED_A,
        domains::SHARED_B,
        domains::MULTI,
        domains::NULLMX,
        domains::IMPLICIT,
        domains::V6,
    ];
    let list: Vec<_> = names
        .iter()
        .map(|n| mxscope_common::DomainName::parse(n).unwrap())
        .collect();
    let records = prober(None, false)
        .probe_domains(&resolver(), &list, 8, |_| {})
        .await;
    assert_eq!(records.len(), names.len());
    let by_name = |n: &str| records.iter().find(|r| r.domain == n).unwrap();
    let single = by_name(domains::SINGLE);
    assert_eq!(single.targets.len(), 1);
    assert_eq!(single.targets[0].outcome, Outcome::StarttlsOk);
    // One session for 127.0.1.10: the three domains embed the very same record.
    let shared = &by_name(domains::SHARED_A).targets[0];
    assert_eq!(shared, &single.targets[0]);
    assert_eq!(shared, &by_name(domains::SHARED_B).targets[0]);
    assert_eq!(shared, &by_name(domains::IMPLICIT).targets[0]);
    assert!(shared.mx_names.contains(&MX_VALID.name.to_string()));
    let multi = by_name(domains::MULTI);
    let exchanges: Vec<_> = multi.dns.mx.iter().map(|m| m.exchange.as_str()).collect();
    assert_eq!(exchanges, [MX_VALID.name, MX_BACKUP.name, MX_ECDSA.name]);
    assert_eq!(multi.targets.len(), 3);
    assert!(multi
        .targets
        .iter()
        .all(|t| t.outcome == Outcome::StarttlsOk));
    let null = by_name(domains::NULLMX);
    assert!(null.dns.null_mx && null.targets.is_empty());
    let v6 = by_name(domains::V6);
    assert_eq!(v6.targets[0].ip, MX_V6.ip);
    assert_eq!(v6.targets[0].outcome, Outcome::StarttlsOk);
}
