use std::collections::BTreeMap;

use super::*;
use crate::record::{CertInfo, KeyInfo, TlsDepth, TlsFacts, VersionDepth};
use crate::{SuiteChoice, TlsSource, Verification};

fn cert(sig: &str, key_type: &str, bits: u32, self_signed: bool) -> CertInfo {
    CertInfo {
        parsed: true,
        parse_error: None,
        subject: "CN=x".into(),
        issuer: "CN=ca".into(),
        sans: vec![],
        serial: "01".into(),
        not_before: String::new(),
        not_after: String::new(),
        key: KeyInfo {
            key_type: key_type.into(),
            bits: Some(bits),
            curve: None,
        },
        signature_algorithm: sig.into(),
        sha256: String::new(),
        spki_sha256: String::new(),
        self_signed,
        der_base64: None,
        scts: Vec::new(),
    }
}

fn record(cipher: &str, chain: Vec<CertInfo>) -> TargetRecord {
    let mut r = TargetRecord::new("192.0.2.1".parse().unwrap(), 25, vec!["mx".into()]);
    r.tls = Some(TlsFacts {
        version: "TLSv1.2".into(),
        cipher: cipher.into(),
        group: None,
        verification: Verification::Valid,
        verification_detail: None,
        name_match: BTreeMap::new(),
        chain,
        source: TlsSource::Handshake,
        key_exchange: None,
        forward_secrecy: None,
        dh_bits: None,
        dh_group: None,
        signature_scheme: None,
        ocsp: None,
    });
    r
}

fn ids(r: &TargetRecord) -> Vec<FindingId> {
    derive(r).into_iter().map(|f| f.id).collect()
}

#[test]
fn a_modern_server_has_no_finding() {
    let r = record(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        vec![cert("sha256WithRSAEncryption", "RSA", 2048, false)],
    );
    assert_eq!(ids(&r), vec![]);
}

#[test]
fn every_definition_is_reachable_and_unique() {
    let mut seen = BTreeSet::new();
    for d in DEFINITIONS {
        assert!(seen.insert(d.id), "{:?} defined twice", d.id);
        assert_eq!(d.id.definition().id, d.id);
    }
    assert_eq!(seen.len(), 18);
}

#[test]
fn certificate_findings_skip_the_anchor() {
    let r = record(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        vec![
            cert("sha256WithRSAEncryption", "RSA", 1024, false),
            cert("sha1WithRSAEncryption", "RSA", 4096, true),
        ],
    );
    assert_eq!(ids(&r), vec![FindingId::RsaUnder2048]);
    let r = record(
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
        vec![cert("sha1WithRSAEncryption", "RSA", 2048, false)],
    );
    let found = derive(&r);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, FindingId::Sha1Signature);
    assert_eq!(found[0].cwe.as_deref(), Some("CWE-328"));
}

#[test]
fn depth_facts_give_their_findings_with_evidence() {
    let mut r = record(
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        vec![cert("sha256WithRSAEncryption", "RSA", 2048, false)],
    );
    r.protocols.ssl3 = VersionSupport::Supported;
    r.protocols.tls1_0 = VersionSupport::Supported;
    r.protocol_suites.insert(
        "tls1_0".into(),
        SuiteChoice::new("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"),
    );
    let mut depth = TlsDepth {
        sslv2: Tested::Yes,
        compression: Tested::Yes,
        secure_renegotiation: Tested::No,
        fallback_scsv: Tested::No,
        ..TlsDepth::default()
    };
    depth.versions.insert(
        "tls1_2".into(),
        VersionDepth {
            classes: vec![SuiteClass::Null, SuiteClass::Anonymous, SuiteClass::Block64],
            accepted: vec![
                "TLS_RSA_EXPORT_WITH_RC4_40_MD5".into(),
                "TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA".into(),
            ],
            ..VersionDepth::default()
        },
    );
    r.tls_depth = Some(depth);
    let found = derive(&r);
    let ids: Vec<FindingId> = found.iter().map(|f| f.id).collect();
    assert_eq!(
        ids,
        vec![
            FindingId::Sslv2,
            FindingId::Sslv3,
            FindingId::NullCipher,
            FindingId::AnonymousSuite,
            FindingId::Export,
            FindingId::Logjam,
            FindingId::Rc4,
            FindingId::Sweet32,
            FindingId::Tls10Cbc,
            FindingId::Compression,
            FindingId::NoSecureRenegotiation,
            FindingId::NoFallbackScsv,
            FindingId::NoForwardSecrecy,
        ]
    );
    let evidence = |id| &found.iter().find(|f| f.id == id).unwrap().evidence;
    assert_eq!(
        evidence(FindingId::Rc4),
        "tls1_2: TLS_RSA_EXPORT_WITH_RC4_40_MD5"
    );
    assert_eq!(
        evidence(FindingId::Logjam),
        "tls1_2: TLS_DHE_RSA_EXPORT_WITH_DES40_CBC_SHA"
    );
    assert_eq!(
        evidence(FindingId::NullCipher),
        "tls1_2: a suite of the class"
    );
    assert_eq!(
        evidence(FindingId::Tls10Cbc),
        "tls1_0: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
    );
    assert_eq!(
        evidence(FindingId::NoForwardSecrecy),
        "tls1_2: TLS_RSA_WITH_AES_128_GCM_SHA256"
    );
}

#[test]
fn a_small_dh_prime_is_logjam() {
    let mut r = record(
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        vec![cert("sha256WithRSAEncryption", "RSA", 2048, false)],
    );
    r.tls.as_mut().unwrap().dh_bits = Some(1024);
    assert_eq!(ids(&r), vec![FindingId::Logjam]);
    r.tls.as_mut().unwrap().dh_bits = Some(2048);
    assert_eq!(ids(&r), vec![]);
}

#[test]
fn robot_is_a_finding_only_when_the_oracle_repeated_itself() {
    let mut r = record(
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        vec![cert("sha256WithRSAEncryption", "RSA", 2048, false)],
    );
    let detail = "strong oracle: valid padding → alert bad_record_mac";
    r.tls_depth = Some(TlsDepth {
        robot: Tested::Yes,
        robot_detail: Some(detail.into()),
        ..TlsDepth::default()
    });
    let robot = derive(&r).into_iter().find(|f| f.id == FindingId::Robot);
    let robot = robot.expect("a ROBOT finding");
    assert_eq!(robot.evidence, detail);
    assert_eq!(robot.cwe.as_deref(), Some("CWE-203"));
    for verdict in [Tested::No, Tested::Error, Tested::NotTested] {
        r.tls_depth = Some(TlsDepth {
            robot: verdict,
            robot_detail: Some("inconsistent answers".into()),
            ..TlsDepth::default()
        });
        assert!(!ids(&r).contains(&FindingId::Robot), "{verdict:?}");
    }
}
