//! More real MTAs, each its own SMTP dialect and TLS stack, through
//! `mxscope scan` with exact facts: OpenSMTPD (Debian 12, OpenSSL 3, whose
//! TLS fails on the server's side), Haraka (Node's TLS) and Sendmail
//! (OpenSSL 3).

use mxscope_common::{
    Anomaly, HandshakeFailure, KeyExchange, Outcome, Phase, TargetRecord, TlsSource, Verification,
    VersionSupport,
};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::scanning::{scan, Scanned};

use crate::probing::postfix::s_client;

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// One scan of the three hosts with `--legacy`, shared by the tests below.
fn scanned() -> &'static Scanned {
    static SCANNED: std::sync::OnceLock<Scanned> = std::sync::OnceLock::new();
    SCANNED.get_or_init(|| {
        lab::opensmtpd();
        lab::haraka();
        lab::sendmail();
        let domains = [
            domains::for_host(&MX_OPENSMTPD),
            domains::for_host(&MX_HARAKA),
            domains::for_host(&MX_SENDMAIL),
        ];
        let domains: Vec<&str> = domains.iter().map(String::as_str).collect();
        scan("mtas-scan", &domains, &["--legacy"])
    })
}

/// SSLv3, TLS 1.0, 1.1, 1.2, 1.3 support.
fn support(r: &TargetRecord) -> [VersionSupport; 5] {
    let p = &r.protocols;
    [p.ssl3, p.tls1_0, p.tls1_1, p.tls1_2, p.tls1_3]
}

/// TLS 1.2 and 1.3 only (OpenSSL 3's and Node's defaults).
const MODERN_ONLY: [VersionSupport; 5] = [
    VersionSupport::NotSupported,
    VersionSupport::NotSupported,
    VersionSupport::NotSupported,
    VersionSupport::Supported,
    VersionSupport::Supported,
];

fn leaf_key(r: &TargetRecord) -> (String, Option<u32>) {
    let tls = r.tls.as_ref().expect("tls facts");
    let key = &tls.chain.first().expect("a leaf").key;
    (key.key_type.clone(), key.bits)
}

#[test]
fn scan_counts_every_mta_as_starttls() {
    let s = scanned();
    assert!(
        s.headline.contains(
            "On a total of 3 domain names, 3 unique MX records have been found; 3 of them \
             support STARTTLS, covering 3 unique domains (0 MXes reported a connection error \
             while 0 declared to not support STARTTLS)."
        ),
        "{}",
        s.headline
    );
}

#[test]
fn haraka_gives_exact_facts() {
    let r = scanned().target(MX_HARAKA.ip);
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::StarttlsOk, Phase::Done),
        "{r:#?}"
    );
    assert_eq!(r.mx_names, [MX_HARAKA.name]);
    let greeting = r.greeting.as_ref().expect("greeting");
    assert_eq!(greeting.code, 220);
    assert!(
        greeting
            .text
            .starts_with("mx-haraka.lab.test ESMTP Haraka/3.3.4 ready ("),
        "{greeting:?}"
    );
    let before = [
        "PIPELINING",
        "8BITMIME",
        "SMTPUTF8",
        "SIZE 26214400",
        "STARTTLS",
    ];
    assert_eq!(strs(&r.ehlo), before);
    assert!(!r.helo_fallback);
    let reply = r.starttls_reply.as_ref().expect("STARTTLS reply");
    assert_eq!((reply.code, reply.text.as_str()), (220, "Go ahead."));
    assert_eq!(strs(&r.ehlo_tls), before[..4]);
    // Node's defaults: TLS 1.2 and 1.3 only.
    assert_tls13_lab_leaf(r, MX_HARAKA.name, "X25519");
}

#[test]
fn sendmail_gives_exact_facts() {
    let r = scanned().target(MX_SENDMAIL.ip);
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::StarttlsOk, Phase::Done),
        "{r:#?}"
    );
    let greeting = r.greeting.as_ref().expect("greeting");
    assert_eq!(greeting.code, 220);
    assert!(
        greeting
            .text
            .starts_with("mx-sendmail.lab.test ESMTP Sendmail 8.17.1.9/8.17.1.9; "),
        "{greeting:?}"
    );
    let before = [
        "ENHANCEDSTATUSCODES",
        "PIPELINING",
        "8BITMIME",
        "SIZE",
        "DSN",
        "ETRN",
        "AUTH DIGEST-MD5 CRAM-MD5",
        "STARTTLS",
        "DELIVERBY",
        "HELP",
    ];
    assert_eq!(strs(&r.ehlo), before);
    let reply = r.starttls_reply.as_ref().expect("STARTTLS reply");
    assert_eq!(
        (reply.code, reply.text.as_str()),
        (220, "2.0.0 Ready to start TLS")
    );
    let after: Vec<&str> = before.into_iter().filter(|k| *k != "STARTTLS").collect();
    assert_eq!(strs(&r.ehlo_tls), after);
    // Sendmail's own default: ECDH on P-256, not X25519.
    assert_tls13_lab_leaf(r, MX_SENDMAIL.name, "secp256r1");
}

/// A TLS 1.3 session (AES-256-GCM, `group`) with the host's lab-CA RSA-2048
/// leaf, valid and matching `name`; only TLS 1.2 and 1.3 supported; no anomaly.
fn assert_tls13_lab_leaf(r: &TargetRecord, name: &str, group: &str) {
    let tls = r.tls.as_ref().expect("tls facts");
    assert_eq!(tls.version, "TLSv1.3");
    assert_eq!(tls.cipher, "TLS13_AES_256_GCM_SHA384");
    assert_eq!(tls.group.as_deref(), Some(group));
    assert_eq!(tls.key_exchange, Some(KeyExchange::Tls13));
    assert_eq!(tls.forward_secrecy, Some(true));
    assert_eq!(tls.source, TlsSource::Handshake);
    assert_eq!(
        tls.verification,
        Verification::Valid,
        "{:?}",
        tls.verification_detail
    );
    assert_eq!(tls.name_match.get(name), Some(&true));
    assert_eq!(tls.chain.len(), 2, "leaf and lab CA");
    assert_eq!(leaf_key(r), ("RSA".into(), Some(2048)));
    assert_eq!(support(r), MODERN_ONLY);
    assert!(r.anomalies.is_empty(), "{:?}", r.anomalies);
}

#[test]
fn opensmtpd_dialogue_is_exact_and_its_tls_fails_on_the_server() {
    let r = scanned().target(MX_OPENSMTPD.ip);
    assert_eq!(
        (r.outcome, r.phase),
        (Outcome::StarttlsHandshakeFailed, Phase::TlsHandshake),
        "{r:#?}"
    );
    let greeting = r.greeting.as_ref().expect("greeting");
    assert_eq!(
        (greeting.code, greeting.text.as_str()),
        (220, "mx-opensmtpd.lab.test ESMTP OpenSMTPD")
    );
    assert_eq!(
        strs(&r.ehlo),
        [
            "8BITMIME",
            "ENHANCEDSTATUSCODES",
            "SIZE 36700160",
            "DSN",
            "STARTTLS",
            "HELP"
        ]
    );
    let reply = r.starttls_reply.as_ref().expect("STARTTLS reply");
    assert_eq!(
        (reply.code, reply.text.as_str()),
        (220, "2.0.0 Ready to start TLS")
    );
    assert!(
        r.ehlo_tls.is_empty(),
        "no session after the failed handshake"
    );
    // The server's own fatal alert, to rustls and to the permissive first
    // flight alike: it sends ServerHello and Certificate, then fails to sign.
    // No one can finish a handshake with it, so no TLS facts are recorded.
    assert_eq!(r.handshake_failure, Some(HandshakeFailure::AlertReceived));
    assert_eq!(r.handshake_alert.as_deref(), Some("internal_error"));
    assert!(r.tls.is_none(), "{:?}", r.tls);
    assert!(!r.anomalies.contains(&Anomaly::ModernTlsFailed));
    let detail = r.detail.as_deref().unwrap_or_default();
    assert!(
        detail.contains("first flight: alert internal_error"),
        "{detail}"
    );
    // Debian's OpenSSL 3 defaults: nothing below TLS 1.2. A raw TLS 1.2
    // hello gets a ServerHello (ECDHE, forward secret) before the alert.
    let p = &r.protocols;
    assert_eq!(
        [p.ssl3, p.tls1_0, p.tls1_1, p.tls1_2],
        [
            VersionSupport::NotSupported,
            VersionSupport::NotSupported,
            VersionSupport::NotSupported,
            VersionSupport::Supported
        ]
    );
    let suite = &r.protocol_suites["tls1_2"];
    assert_eq!(suite.cipher, "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384");
    assert!(suite.forward_secrecy);
}

/// The failure is the server's, not the probe's: OpenSSL's own client gets
/// the same alert, after the server's certificate.
#[tokio::test]
async fn opensmtpd_fails_openssl_clients_too() {
    lab::opensmtpd();
    for version in ["-tls1_2", "-tls1_3"] {
        let (ok, out) = s_client(&MX_OPENSMTPD, &[version]).await;
        assert!(!ok, "{out}");
        assert!(out.contains("alert internal error"), "{version}: {out}");
        let leaf_seen = out
            .lines()
            .any(|l| l.starts_with("depth=0") && l.contains(MX_OPENSMTPD.name));
        assert!(leaf_seen, "{version}: {out}");
    }
}
