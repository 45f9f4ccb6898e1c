//! Tests of the version probes: the hello, the classifier, the driver.

use proptest::prelude::*;
use tls_parser::{
    parse_tls_extensions, parse_tls_plaintext, TlsClientHelloContents, TlsExtension, TlsMessage,
    TlsMessageHandshake,
};

use tls_parser::{TlsCipherSuite, TlsRecordType};

use super::hello::{be16, be24, CIPHER_SUITES, HANDSHAKE_SERVER_HELLO, RENEGOTIATION_SCSV};
use super::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Parse our own hello back with tls-parser: (record version, hello, extensions).
fn parse_hello(
    bytes: &[u8],
    check: impl FnOnce(u16, &TlsClientHelloContents<'_>, Vec<TlsExtension<'_>>),
) {
    let (rest, plaintext) = parse_tls_plaintext(bytes).expect("our hello parses");
    assert!(rest.is_empty(), "one record, nothing after it");
    assert_eq!(plaintext.hdr.record_type, TlsRecordType::Handshake);
    let [TlsMessage::Handshake(TlsMessageHandshake::ClientHello(hello))] = plaintext.msg.as_slice()
    else {
        panic!("expected one ClientHello, got {:?}", plaintext.msg);
    };
    let extensions = match hello.ext {
        Some(ext) => {
            let (rest, extensions) = parse_tls_extensions(ext).expect("extensions parse");
            assert!(rest.is_empty());
            extensions
        }
        None => Vec::new(),
    };
    check(plaintext.hdr.version.0, hello, extensions);
}

fn sni_of(extensions: &[TlsExtension<'_>]) -> Option<String> {
    extensions.iter().find_map(|e| match e {
        TlsExtension::SNI(names) => names
            .first()
            .map(|(_, name)| String::from_utf8_lossy(name).into_owned()),
        _ => None,
    })
}

#[test]
fn hello_offers_exactly_one_version() {
    for version in LegacyVersion::ALL {
        for sni in [Some("mx1.example.it"), None] {
            let bytes = client_hello(version, sni);
            parse_hello(&bytes, |record_version, hello, extensions| {
                assert_eq!(
                    record_version,
                    version.record_wire(),
                    "{version:?} record version"
                );
                assert_eq!(
                    hello.version.0,
                    version.wire(),
                    "{version:?} client_version"
                );
                assert_eq!(hello.random.len(), 32);
                assert_eq!(hello.session_id, None);
                // DEFLATE is offered from TLS 1.0 on (CRIME is a free fact).
                let compression: Vec<u8> = hello.comp.iter().map(|c| c.0).collect();
                if version == LegacyVersion::Ssl3 {
                    assert_eq!(compression, [0]);
                } else {
                    assert_eq!(compression, [1, 0]);
                }
                let ciphers: Vec<u16> = hello.ciphers.iter().map(|c| c.0).collect();
                assert!(ciphers.contains(&0x002f) && ciphers.contains(&0x0005));
                assert!(!ciphers.contains(&0x5600), "never TLS_FALLBACK_SCSV");
                assert!(!extensions
                    .iter()
                    .any(|e| matches!(e, TlsExtension::SupportedVersions(_))));
                if version == LegacyVersion::Ssl3 {
                    assert_eq!(hello.ext, None, "SSLv3 has no extensions");
                    assert!(ciphers.contains(&RENEGOTIATION_SCSV));
                } else {
                    assert_eq!(sni_of(&extensions).as_deref(), sni);
                    assert!(extensions.iter().any(|e| matches!(
                        e,
                        TlsExtension::EllipticCurves(groups) if groups.len() == 4
                    )));
                    assert!(extensions.contains(&TlsExtension::EcPointFormats(&[0])));
                    assert!(extensions.contains(&TlsExtension::RenegotiationInfo(&[])));
                    assert!(extensions.contains(&TlsExtension::ExtendedMasterSecret));
                }
            });
        }
    }
}

#[test]
fn sni_only_for_host_names() {
    for sni in [
        "192.0.2.1",
        "::1",
        "",
        ".",
        "bad name",
        "ünïcode.example",
        "x\0y",
    ] {
        let bytes = client_hello(LegacyVersion::Tls1_0, Some(sni));
        parse_hello(&bytes, |_, _, extensions| {
            assert_eq!(sni_of(&extensions), None, "{sni:?}");
        });
    }
    let bytes = client_hello(LegacyVersion::Tls1_1, Some("mx.example.it."));
    parse_hello(&bytes, |_, _, extensions| {
        assert_eq!(sni_of(&extensions).as_deref(), Some("mx.example.it"));
    });
}

#[test]
fn every_offered_suite_is_known() {
    for &suite in CIPHER_SUITES {
        assert!(TlsCipherSuite::from_id(suite).is_some(), "0x{suite:04x}");
    }
}

#[test]
fn hello_avoids_the_f5_length_range() {
    // Every SNI length a label allows, to hit both edges of the range.
    let names: Vec<String> = (1..=60)
        .flat_map(|n| (0..4).map(move |labels| (n, labels)))
        .map(|(n, labels)| {
            let mut name = "a".repeat(n);
            for _ in 0..labels {
                name.push('.');
                name.push_str(&"b".repeat(60));
            }
            name
        })
        .collect();
    for version in LegacyVersion::ALL {
        let snis = std::iter::once(None).chain(names.iter().map(|n| Some(n.as_str())));
        for sni in snis {
            let bytes = client_hello(version, sni);
            parse_hello(&bytes, |_, _, extensions| {
                let expected = sni.filter(|s| s.len() <= 253 && version.has_extensions());
                assert_eq!(sni_of(&extensions).as_deref(), expected);
            });
            let handshake_len = bytes.len() - 5;
            assert!(
                !(256..512).contains(&handshake_len),
                "{version:?} {sni:?}: {handshake_len}"
            );
        }
    }
}

#[test]
fn random_differs_between_hellos() {
    let a = client_hello(LegacyVersion::Tls1_0, None);
    let b = client_hello(LegacyVersion::Tls1_0, None);
    assert_ne!(a.get(11..43), b.get(11..43));
}

/// A ServerHello handshake message (header included).
fn server_hello_msg(version: u16, cipher: u16, extensions: bool) -> Vec<u8> {
    let mut body = version.to_be_bytes().to_vec();
    body.extend_from_slice(&[0x42; 32]);
    body.push(32);
    body.extend_from_slice(&[0x17; 32]);
    body.extend_from_slice(&cipher.to_be_bytes());
    body.push(0);
    if extensions {
        body.extend_from_slice(&[0x00, 0x05, 0xff, 0x01, 0x00, 0x01, 0x00]);
    }
    let mut msg = vec![HANDSHAKE_SERVER_HELLO];
    msg.extend_from_slice(&be24(body.len()));
    msg.extend_from_slice(&body);
    msg
}

fn record(kind: u8, version: u16, payload: &[u8]) -> Vec<u8> {
    let mut r = vec![kind];
    r.extend_from_slice(&version.to_be_bytes());
    r.extend_from_slice(&be16(payload.len()));
    r.extend_from_slice(payload);
    r
}

fn handshake(version: u16, payload: &[u8]) -> Vec<u8> {
    record(0x16, version, payload)
}

fn alert(level: u8, code: u8) -> Vec<u8> {
    record(0x15, 0x0301, &[level, code])
}

fn supported(detail: &str) -> Answer {
    Answer::Verdict(VersionSupport::Supported, Some(detail.into()))
}

fn not_supported(detail: &str) -> Answer {
    Answer::Verdict(VersionSupport::NotSupported, Some(detail.into()))
}

fn is_error(answer: &Answer) -> bool {
    matches!(answer, Answer::Verdict(VersionSupport::Error, Some(_)))
}

#[test]
fn matching_server_hello_is_supported() {
    let ssl3 = handshake(0x0300, &server_hello_msg(0x0300, 0x002f, false));
    assert_eq!(
        classify(LegacyVersion::Ssl3, &ssl3),
        supported("TLS_RSA_WITH_AES_128_CBC_SHA")
    );
    let tls10 = handshake(0x0301, &server_hello_msg(0x0301, 0xc013, true));
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &tls10),
        supported("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA")
    );
    let tls11 = handshake(0x0301, &server_hello_msg(0x0302, 0x0005, false));
    assert_eq!(
        classify(LegacyVersion::Tls1_1, &tls11),
        supported("TLS_RSA_WITH_RC4_128_SHA")
    );
}

#[test]
fn server_hello_followed_by_more_messages() {
    let mut payload = server_hello_msg(0x0301, 0x0035, true);
    payload.extend_from_slice(&[11, 0, 0, 3, 0, 0, 0]); // empty Certificate
    payload.extend_from_slice(&[14, 0, 0, 0]); // ServerHelloDone
    let bytes = handshake(0x0301, &payload);
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &bytes),
        supported("TLS_RSA_WITH_AES_256_CBC_SHA")
    );
}

#[test]
fn fragmented_server_hello_waits_then_decides() {
    let msg = server_hello_msg(0x0302, 0x002f, true);
    let (a, b) = msg.split_at(10);
    let first = handshake(0x0302, a);
    assert_eq!(classify(LegacyVersion::Tls1_1, &first), Answer::Incomplete);
    let mut both = first.clone();
    both.extend_from_slice(&handshake(0x0302, b));
    assert_eq!(
        classify(LegacyVersion::Tls1_1, &both),
        supported("TLS_RSA_WITH_AES_128_CBC_SHA")
    );
}

#[test]
fn every_truncation_is_incomplete() {
    let full = handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true));
    for end in 0..full.len() {
        let prefix = full.get(..end).unwrap_or_default();
        assert_eq!(
            classify(LegacyVersion::Tls1_0, prefix),
            Answer::Incomplete,
            "prefix of {end} bytes"
        );
    }
}

#[test]
fn other_version_is_not_supported() {
    let tls12 = handshake(0x0303, &server_hello_msg(0x0303, 0xc02f, true));
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &tls12),
        not_supported("server chose TLSv1.2 for a TLSv1.0 hello")
    );
    let ssl3 = handshake(0x0300, &server_hello_msg(0x0300, 0x002f, false));
    assert_eq!(
        classify(LegacyVersion::Tls1_1, &ssl3),
        not_supported("server chose SSLv3 for a TLSv1.1 hello")
    );
    let odd = handshake(0x0301, &server_hello_msg(0x7f12, 0x1301, false));
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &odd),
        not_supported("server chose version 0x7f12 for a TLSv1.0 hello")
    );
}

#[test]
fn unoffered_cipher_is_an_error() {
    for cipher in [0x1301, RENEGOTIATION_SCSV, 0x0000, 0xffff] {
        let bytes = handshake(0x0301, &server_hello_msg(0x0301, cipher, false));
        let answer = classify(LegacyVersion::Tls1_0, &bytes);
        assert!(is_error(&answer), "0x{cipher:04x}: {answer:?}");
    }
}

#[test]
fn deflate_is_taken_where_offered_and_its_facts_read() {
    let mut msg = server_hello_msg(0x0303, 0x002f, true);
    // The compression byte follows the session id and the suite.
    let at = 4 + 2 + 32 + 1 + 32 + 2;
    msg[at] = 1;
    let bytes = handshake(0x0303, &msg);
    assert!(matches!(
        classify(LegacyVersion::Tls1_2, &bytes),
        Answer::Verdict(VersionSupport::Supported, _)
    ));
    let pick = read_server_hello(&msg[4..]).expect("parsed");
    assert_eq!((pick.compression, pick.renegotiation_info), (1, true));
    assert!(!pick.extended_master_secret);
    let mut ssl3 = server_hello_msg(0x0300, 0x002f, false);
    ssl3[at] = 1;
    let answer = classify(LegacyVersion::Ssl3, &handshake(0x0300, &ssl3));
    assert!(is_error(&answer), "SSLv3 offers no DEFLATE: {answer:?}");
}

#[test]
fn fatal_alerts_are_not_supported() {
    for (code, name) in [
        (70, "protocol_version"),
        (40, "handshake_failure"),
        (71, "insufficient_security"),
        (80, "internal_error"),
        (200, "alert_200"),
    ] {
        for version in LegacyVersion::ALL {
            assert_eq!(
                classify(version, &alert(2, code)),
                not_supported(&format!("alert {name}"))
            );
        }
    }
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &alert(1, 0)),
        not_supported("alert close_notify")
    );
}

#[test]
fn warning_alerts_are_skipped() {
    let warning = alert(1, 112); // unrecognized_name
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &warning),
        Answer::Incomplete
    );
    let mut bytes = warning;
    bytes.extend_from_slice(&handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true)));
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &bytes),
        supported("TLS_RSA_WITH_AES_128_CBC_SHA")
    );
    let mut hello_request = handshake(0x0301, &[0, 0, 0, 0]);
    hello_request.extend_from_slice(&alert(2, 40));
    assert_eq!(
        classify(LegacyVersion::Tls1_0, &hello_request),
        not_supported("alert handshake_failure")
    );
}

#[test]
fn non_tls_answers_are_errors() {
    let smtp = b"454 4.7.0 TLS not available due to local problem\r\n";
    assert_eq!(
        classify(LegacyVersion::Tls1_0, smtp),
        Answer::error("not TLS: \"454 4.7.0 TLS not available due to local problem\"")
    );
    // Decided on the first byte, without waiting for more.
    assert!(is_error(&classify(LegacyVersion::Tls1_0, b"4")));
    for garbage in [
        &[0xff, 0x00, 0x01][..],
        &[0x80, 0x2e, 0x04, 0x00, 0x01, 0x00, 0x02][..], // SSLv2 framing
        &[0x16, 0x02, 0x00, 0x00, 0x10][..],
        &[0x16, 0x03, 0x01, 0xff, 0xff][..],
        &record(0x17, 0x0301, b"early application data")[..],
        &record(0x15, 0x0301, &[2])[..],
        &record(0x15, 0x0301, &[])[..],
        &record(0x15, 0x0301, &[7, 40])[..],
        &handshake(0x0301, &[11, 0, 0, 3, 0, 0, 0])[..], // Certificate first
        &handshake(0x0301, &[2, 0, 0, 1, 3])[..],        // 1-byte ServerHello
        &handshake(0x0301, &[2, 0, 0, 4, 3, 1, 0, 0])[..], // cut-short ServerHello
    ] {
        let answer = classify(LegacyVersion::Tls1_0, garbage);
        assert!(is_error(&answer), "{garbage:02x?}: {answer:?}");
    }
    assert_eq!(classify(LegacyVersion::Tls1_0, b""), Answer::Incomplete);
}

#[test]
fn answer_is_bounded() {
    let warning = alert(1, 112);
    let mut bytes = Vec::new();
    while bytes.len() + warning.len() < MAX_ANSWER_BYTES {
        bytes.extend_from_slice(&warning);
    }
    assert_eq!(classify(LegacyVersion::Tls1_0, &bytes), Answer::Incomplete);
    bytes.extend_from_slice(&warning);
    assert!(is_error(&classify(LegacyVersion::Tls1_0, &bytes)));
    // A ServerHello announcing more than the cap is refused at once.
    let huge = handshake(0x0301, &[2, 0x01, 0x00, 0x00]);
    assert!(is_error(&classify(LegacyVersion::Tls1_0, &huge)));
}

proptest! {
    #[test]
    fn classify_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        for version in LegacyVersion::ALL {
            let _ = classify(version, &bytes);
        }
    }

    #[test]
    fn support_never_changes_with_more_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..1024),
        split in any::<proptest::sample::Index>(),
    ) {
        let (before, _) = bytes.split_at(split.index(bytes.len() + 1));
        for version in LegacyVersion::ALL {
            // The support stays; a "not TLS" detail may show more bytes.
            if let Answer::Verdict(early, _) = classify(version, before) {
                let Answer::Verdict(later, _) = classify(version, &bytes) else {
                    return Err(TestCaseError::fail("verdict lost"));
                };
                prop_assert_eq!(early, later);
            }
        }
    }

    #[test]
    fn classify_never_panics_inside_records(
        kind in 0x14u8..=0x18,
        minor in 0u8..=4,
        payload in proptest::collection::vec(any::<u8>(), 0..600),
        extra in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut bytes = record(kind, 0x0300 | u16::from(minor), &payload);
        bytes.extend_from_slice(&extra);
        for version in LegacyVersion::ALL {
            let _ = classify(version, &bytes);
        }
    }

    #[test]
    fn any_server_hello_gets_a_verdict(
        version in prop_oneof![Just(0x0300u16), Just(0x0301), Just(0x0302), Just(0x0303), any::<u16>()],
        cipher in any::<u16>(),
        extensions in any::<bool>(),
    ) {
        let bytes = handshake(0x0301, &server_hello_msg(version, cipher, extensions));
        for offered in LegacyVersion::ALL {
            prop_assert!(matches!(classify(offered, &bytes), Answer::Verdict(..)));
        }
    }
}

/// Run the driver against a peer on an in-memory pipe.
async fn drive<F, Fut>(
    version: LegacyVersion,
    timeout: Duration,
    peer: F,
) -> (VersionSupport, Option<String>)
where
    F: FnOnce(tokio::io::DuplexStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (mut ours, theirs) = tokio::io::duplex(64 * 1024);
    let peer = tokio::spawn(peer(theirs));
    let result = test_version(&mut ours, version, Some("mx.example.it"), timeout).await;
    drop(ours);
    peer.await.expect("peer task");
    result
}

/// Read one record (the ClientHello) from the pipe.
async fn read_hello(stream: &mut tokio::io::DuplexStream) -> Vec<u8> {
    let mut header = [0u8; 5];
    stream.read_exact(&mut header).await.expect("hello header");
    let len = usize::from(u16::from_be_bytes([header[3], header[4]]));
    let mut body = vec![0; len];
    stream.read_exact(&mut body).await.expect("hello body");
    let mut hello = header.to_vec();
    hello.extend_from_slice(&body);
    hello
}

#[tokio::test]
async fn driver_reports_supported() {
    let result = drive(
        LegacyVersion::Tls1_0,
        Duration::from_secs(5),
        |mut s| async move {
            let hello = read_hello(&mut s).await;
            assert_eq!(hello.get(..3), Some(&[0x16, 0x03, 0x01][..]));
            let answer = handshake(0x0301, &server_hello_msg(0x0301, 0x002f, true));
            // Trickled byte by byte: the driver must keep reading.
            for byte in answer {
                s.write_all(&[byte]).await.expect("write");
            }
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        },
    )
    .await;
    assert_eq!(
        result,
        (
            VersionSupport::Supported,
            Some("TLS_RSA_WITH_AES_128_CBC_SHA".into())
        )
    );
}

#[tokio::test]
async fn driver_treats_close_as_not_supported() {
    let result = drive(
        LegacyVersion::Ssl3,
        Duration::from_secs(5),
        |mut s| async move {
            let _ = read_hello(&mut s).await;
        },
    )
    .await;
    assert_eq!(
        result,
        (
            VersionSupport::NotSupported,
            Some("connection closed".into())
        )
    );
}

#[tokio::test]
async fn driver_times_out() {
    let result = drive(
        LegacyVersion::Tls1_1,
        Duration::from_millis(200),
        |mut s| async move {
            let _ = read_hello(&mut s).await;
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        },
    )
    .await;
    assert_eq!(result, (VersionSupport::Error, Some("timeout".into())));
}

#[tokio::test]
async fn driver_reports_smtp_text_as_error() {
    let result = drive(
        LegacyVersion::Tls1_0,
        Duration::from_secs(5),
        |mut s| async move {
            let _ = read_hello(&mut s).await;
            s.write_all(b"500 5.5.1 what is this\r\n")
                .await
                .expect("write");
            let mut rest = Vec::new();
            let _ = s.read_to_end(&mut rest).await;
        },
    )
    .await;
    assert_eq!(
        result,
        (
            VersionSupport::Error,
            Some("not TLS: \"500 5.5.1 what is this\"".into())
        )
    );
}

#[tokio::test]
async fn driver_caps_the_answer() {
    let result = drive(
        LegacyVersion::Tls1_0,
        Duration::from_secs(5),
        |mut s| async move {
            let _ = read_hello(&mut s).await;
            let warning = alert(1, 112);
            for _ in 0..(2 * MAX_ANSWER_BYTES / warning.len()) {
                if s.write_all(&warning).await.is_err() {
                    break;
                }
            }
        },
    )
    .await;
    assert_eq!(result.0, VersionSupport::Error, "{result:?}");
}
