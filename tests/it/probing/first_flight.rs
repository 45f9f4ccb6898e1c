//! Servers configured like old mail servers (real Postfix at `@SECLEVEL=0`)
//! that rustls cannot finish a handshake with: every fact an OpenSSL MTA
//! would see comes from the server's first flight (DESIGN §4), and with
//! `--legacy` every version is answered from the server's view.

use mxscope_common::{
    Anomaly, HandshakeFailure, KeyExchange, NameCheck, Outcome, TlsSource, Verification,
    VersionSupport,
};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::probing::{probe_host, prober};

/// (host, version, cipher, key exchange, group or DH size)
const EXPECTED: [(Host, &str, &str, KeyExchange); 4] = [
    (
        MX_TLS10_RSA,
        "TLSv1.0",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        KeyExchange::Rsa,
    ),
    (
        MX_TLS12_RSA,
        "TLSv1.2",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        KeyExchange::Rsa,
    ),
    (
        MX_TLS12_CBC,
        "TLSv1.2",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
        KeyExchange::Ecdhe,
    ),
    (
        MX_DHE,
        "TLSv1.2",
        "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256",
        KeyExchange::Dhe,
    ),
];

#[tokio::test]
async fn legacy_only_servers_are_measured_from_the_first_flight() {
    lab::postfix();
    for (host, version, cipher, kx) in EXPECTED {
        let record = probe_host(host, None, false).await;
        let name = host.name;
        // The modern stack failed, with a typed reason ...
        assert_eq!(record.outcome, Outcome::StarttlsHandshakeFailed, "{name}");
        assert!(
            matches!(
                record.handshake_failure,
                Some(HandshakeFailure::AlertReceived | HandshakeFailure::NoCommonParameters)
            ),
            "{name}: {:?} {:?}",
            record.handshake_failure,
            record.detail
        );
        assert!(
            record.anomalies.contains(&Anomaly::ModernTlsFailed),
            "{name}"
        );
        // ... and the facts are there all the same.
        let tls = record
            .tls
            .as_ref()
            .unwrap_or_else(|| panic!("{name}: no facts"));
        assert_eq!(tls.source, TlsSource::FirstFlight, "{name}");
        assert_eq!(tls.version, version, "{name}");
        assert_eq!(tls.cipher, cipher, "{name}");
        assert_eq!(tls.key_exchange, Some(kx), "{name}");
        assert_eq!(tls.forward_secrecy, Some(kx != KeyExchange::Rsa), "{name}");
        assert_eq!(tls.verification, Verification::Valid, "{name}: {tls:?}");
        assert_eq!(tls.name_match.get(name), Some(&true), "{name}");
        let leaf = &tls.chain[0];
        assert_eq!(leaf.key.key_type, "RSA", "{name}");
        assert_eq!(leaf.key.bits, Some(2048), "{name}");
        assert_eq!(tls.chain.len(), 2, "{name}: leaf and lab CA");
        match kx {
            KeyExchange::Ecdhe => assert!(tls.group.is_some(), "{name}: group"),
            KeyExchange::Dhe => assert!(tls.dh_bits.is_some_and(|b| b >= 2048), "{name}"),
            _ => assert_eq!((tls.group.as_deref(), tls.dh_bits), (None, None), "{name}"),
        }
        // rustls offered TLS 1.3 and was refused.
        assert_eq!(
            record.protocols.tls1_3,
            VersionSupport::NotSupported,
            "{name}"
        );
        let tls12 = if version == "TLSv1.2" {
            VersionSupport::Supported
        } else {
            VersionSupport::NotSupported
        };
        assert_eq!(record.protocols.tls1_2, tls12, "{name}");
    }
}

#[tokio::test]
async fn every_version_from_the_servers_view() {
    lab::postfix();
    use VersionSupport::{NotSupported as No, Supported as Yes};
    // (host, ssl3, tls1_0, tls1_1, tls1_2, tls1_3)
    let cases = [
        (MX_TLS10_RSA, [No, Yes, No, No, No]),
        (MX_TLS12_RSA, [No, No, No, Yes, No]),
        (MX_TLS12_CBC, [No, No, No, Yes, No]),
        (MX_DHE, [No, No, No, Yes, No]),
        (MX_LEGACY, [No, Yes, Yes, Yes, Yes]),
        (MX_VALID, [No, No, No, Yes, Yes]),
        (MX_BACKUP, [No, No, No, Yes, No]),
    ];
    for (host, expected) in cases {
        let record = probe_host(host, None, true).await;
        let p = &record.protocols;
        assert_eq!(
            [p.ssl3, p.tls1_0, p.tls1_1, p.tls1_2, p.tls1_3],
            expected,
            "{}: {:?}",
            host.name,
            record.protocol_suites
        );
        // Every supported version records the suite it chose.
        for (key, support) in ["ssl3", "tls1_0", "tls1_1", "tls1_2", "tls1_3"]
            .iter()
            .zip(expected)
        {
            assert_eq!(
                record.protocol_suites.contains_key(*key),
                support == Yes,
                "{} {key}: {:?}",
                host.name,
                record.protocol_suites
            );
        }
    }
    let rsa = probe_host(MX_TLS12_RSA, None, true).await;
    assert!(!rsa.protocol_suites["tls1_2"].forward_secrecy);
    let modern = probe_host(MX_VALID, None, true).await;
    assert!(modern.protocol_suites["tls1_3"].forward_secrecy);
}

/// Two MX names on one IP, and a server that picks its certificate by SNI:
/// one more session asks with the second name, and each name is judged by
/// its own certificate.
#[tokio::test]
async fn a_certificate_per_mx_name() {
    lab::postfix();
    let names = vec![MX_SNI.name.to_string(), MX_SNI_ALIAS.name.to_string()];
    let record = prober(None, false).probe_target(MX_SNI.ip, names).await;
    assert_eq!(record.outcome, Outcome::StarttlsOk);
    let tls = record.tls.as_ref().expect("tls facts");
    // The main session's certificate covers only the first name ...
    assert_eq!(tls.name_match.get(MX_SNI_ALIAS.name), Some(&false));
    let first = &record.names[MX_SNI.name];
    assert_eq!(
        (first.check, first.name_match),
        (NameCheck::MainSession, Some(true))
    );
    // ... the second name's own session got the second certificate.
    let second = &record.names[MX_SNI_ALIAS.name];
    assert_eq!(second.check, NameCheck::OwnSession);
    assert_eq!(second.name_match, Some(true));
    assert_eq!(second.verification, Some(Verification::Valid));
    assert_ne!(second.leaf_sha256, first.leaf_sha256);

    // A mismatching name on a server with one certificate: checked, still no match.
    let names = vec![MX_MISMATCH.name.to_string(), MX_VALID.name.to_string()];
    let record = prober(None, false)
        .probe_target(MX_MISMATCH.ip, names)
        .await;
    let other = &record.names[MX_VALID.name];
    assert_eq!(
        (other.check, other.name_match),
        (NameCheck::OwnSession, Some(false))
    );
}
