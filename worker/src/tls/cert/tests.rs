//! Tests of the certificate facts, the name matching and the helpers.

use super::key::{bit_length, der_tlv};
use super::names::dns_pattern_matches;
use super::self_signed::{own_signature, OwnSignature};
use super::*;

use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

use proptest::prelude::*;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, Issuer, KeyPair, SanType, SignatureAlgorithm,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn self_signed(alg: &'static SignatureAlgorithm, sans: &[&str]) -> Result<Vec<u8>, rcgen::Error> {
    let key = KeyPair::generate_for(alg)?;
    let params = CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
    Ok(params.self_signed(&key)?.der().to_vec())
}

fn with_cn(cn: &str, sans: Vec<SanType>) -> Result<Vec<u8>, rcgen::Error> {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, cn);
    params.subject_alt_names = sans;
    Ok(params.self_signed(&key)?.der().to_vec())
}

#[test]
fn ecdsa_p256_self_signed() -> TestResult {
    let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["mx.example.com"])?;
    let info = analyse(&der);
    assert!(info.parsed, "{:?}", info.parse_error);
    assert_eq!(info.parse_error, None);
    assert_eq!(info.key.key_type, "EC");
    assert_eq!(info.key.bits, Some(256));
    assert_eq!(info.key.curve.as_deref(), Some("P-256"));
    assert_eq!(info.signature_algorithm, "ecdsa-with-SHA256");
    assert_eq!(info.sans, vec!["mx.example.com".to_owned()]);
    assert!(info.self_signed);
    assert_eq!(info.subject, info.issuer);
    assert_eq!(info.sha256, sha256_hex(&der));
    assert_eq!(info.sha256.len(), 64);
    assert_eq!(info.spki_sha256.len(), 64);
    assert_ne!(info.sha256, info.spki_sha256);
    assert_eq!(info.der_base64, None);
    Ok(())
}

#[test]
fn ecdsa_p384_and_ed25519() -> TestResult {
    let p384 = analyse(&self_signed(
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &["a.example"],
    )?);
    assert_eq!(
        (
            p384.key.key_type.as_str(),
            p384.key.bits,
            p384.key.curve.as_deref()
        ),
        ("EC", Some(384), Some("P-384"))
    );
    assert_eq!(p384.signature_algorithm, "ecdsa-with-SHA384");
    assert!(p384.self_signed);

    let ed = analyse(&self_signed(&rcgen::PKCS_ED25519, &["a.example"])?);
    assert_eq!(
        (ed.key.key_type.as_str(), ed.key.bits, ed.key.curve),
        ("Ed25519", Some(256), None)
    );
    assert_eq!(ed.signature_algorithm, "Ed25519");
    assert!(ed.self_signed);
    Ok(())
}

#[test]
fn same_key_same_spki_hash() -> TestResult {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let a = CertificateParams::new(vec!["a.example".to_owned()])?.self_signed(&key)?;
    let b = CertificateParams::new(vec!["b.example".to_owned()])?.self_signed(&key)?;
    let (a, b) = (analyse(a.der()), analyse(b.der()));
    assert_eq!(a.spki_sha256, b.spki_sha256);
    assert_ne!(a.sha256, b.sha256);
    Ok(())
}

#[test]
fn san_kinds_serial_and_validity() -> TestResult {
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.subject_alt_names = vec![
        SanType::DnsName("mx.example.com".try_into()?),
        SanType::DnsName("*.example.net".try_into()?),
        SanType::IpAddress("192.0.2.7".parse()?),
        SanType::IpAddress("2001:db8::1".parse()?),
        SanType::Rfc822Name("postmaster@example.com".try_into()?),
        SanType::URI("https://example.com/".try_into()?),
    ];
    params.serial_number = Some(vec![0x00, 0x8f, 0x01, 0xab].into());
    params.not_before = rcgen::date_time_ymd(2021, 3, 4);
    params.not_after = rcgen::date_time_ymd(2051, 12, 31);
    let info = analyse(params.self_signed(&key)?.der());
    assert_eq!(
        info.sans,
        vec![
            "mx.example.com",
            "*.example.net",
            "192.0.2.7",
            "2001:db8::1",
            "email:postmaster@example.com",
            "uri:https://example.com/",
        ]
    );
    assert_eq!(info.serial, "8f01ab");
    assert_eq!(info.not_before, "2021-03-04T00:00:00Z");
    assert_eq!(info.not_after, "2051-12-31T00:00:00Z");
    Ok(())
}

#[test]
fn subject_and_issuer_strings() -> TestResult {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::OrganizationName, "Test Org");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "Test CA");
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_der = ca_params.self_signed(&ca_key)?.der().to_vec();
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let mut leaf_params = CertificateParams::new(vec!["mx.example.com".to_owned()])?;
    leaf_params.distinguished_name = DistinguishedName::new();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "mx.example.com");
    let leaf_der = leaf_params.signed_by(&leaf_key, &issuer)?.der().to_vec();

    let chain = analyse_chain(&[&leaf_der, &ca_der]);
    assert_eq!(chain.len(), 2);
    let (leaf, ca) = (&chain[0], &chain[1]);
    assert_eq!(leaf.subject, "CN=mx.example.com");
    assert_eq!(leaf.issuer, "O=Test Org, CN=Test CA");
    assert_eq!(leaf.key.key_type, "Ed25519");
    // The issuer's key signs the leaf: its signature algorithm is the CA's.
    assert_eq!(leaf.signature_algorithm, "ecdsa-with-SHA256");
    assert!(!leaf.self_signed);
    assert_eq!(ca.subject, ca.issuer);
    assert!(ca.self_signed);
    Ok(())
}

#[test]
fn issuer_name_equal_but_other_key_is_not_self_signed() -> TestResult {
    let ca_key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut ca_params = CertificateParams::default();
    ca_params.distinguished_name = DistinguishedName::new();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "same");
    let issuer = Issuer::new(ca_params, ca_key);

    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params = CertificateParams::default();
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::CommonName, "same");
    let info = analyse(params.signed_by(&key, &issuer)?.der());
    assert_eq!(info.subject, info.issuer);
    assert!(!info.self_signed);
    Ok(())
}

#[test]
fn tampered_signature_is_not_self_signed() -> TestResult {
    let mut der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["a.example"])?;
    // Flip a bit inside the subject public key: the DER still parses but the
    // signature no longer verifies with the (changed) key.
    let info = analyse(&der);
    let cert = parse(&der)?;
    let key_bytes = cert.public_key().subject_public_key.data.to_vec();
    drop(cert);
    let at = der
        .windows(key_bytes.len())
        .position(|w| w == key_bytes.as_slice())
        .ok_or("key not found")?;
    der[at + 10] ^= 0x01;
    let tampered = analyse(&der);
    assert!(info.self_signed);
    assert!(tampered.parsed, "{:?}", tampered.parse_error);
    assert_eq!(tampered.subject, tampered.issuer);
    assert!(!tampered.self_signed);
    Ok(())
}

/// An RSA certificate made by the openssl CLI (rcgen cannot make RSA keys).
fn openssl_rsa(bits: u32, extra: &[&str]) -> Option<Vec<u8>> {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let dir: PathBuf = std::env::temp_dir().join(format!(
        "mxscope-cert-test-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).ok()?;
    let (key, cert) = (dir.join("k.pem"), dir.join("c.der"));
    let status = Command::new("openssl")
        .args(["req", "-x509", "-newkey", &format!("rsa:{bits}"), "-nodes"])
        .args([
            "-subj",
            "/CN=mx.example.org",
            "-days",
            "1",
            "-outform",
            "DER",
        ])
        .args(extra)
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status();
    let der = match status {
        Ok(s) if s.success() => std::fs::read(&cert).ok(),
        _ => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    if der.is_none() {
        eprintln!("openssl unavailable or failed: skipping RSA {bits}");
    }
    der
}

#[test]
fn rsa_from_openssl() {
    if let Some(der) = openssl_rsa(1024, &[]) {
        let info = analyse(&der);
        assert!(info.parsed, "{:?}", info.parse_error);
        assert_eq!(
            (info.key.key_type.as_str(), info.key.bits),
            ("RSA", Some(1024))
        );
        assert_eq!(info.key.curve, None);
        assert_eq!(info.signature_algorithm, "sha256WithRSAEncryption");
        assert_eq!(info.subject, "CN=mx.example.org");
        // Too small for ring to verify: falls back to names and key ids.
        assert!(info.self_signed);
        assert!(name_matches(&der, "MX.example.org."));
    }
    if let Some(der) = openssl_rsa(2048, &["-sha384"]) {
        let info = analyse(&der);
        assert_eq!(
            (info.key.key_type.as_str(), info.key.bits),
            ("RSA", Some(2048))
        );
        assert_eq!(info.signature_algorithm, "sha384WithRSAEncryption");
        assert_eq!(
            own_signature(&der, &parse(&der).unwrap_or_else(|e| panic!("{e}"))),
            OwnSignature::Valid
        );
        assert!(info.self_signed);
    }
    // SHA-1 cannot be checked with the TLS stack's verifiers: names and key ids decide.
    if let Some(der) = openssl_rsa(2048, &["-sha1"]) {
        let info = analyse(&der);
        assert_eq!(info.signature_algorithm, "sha1WithRSAEncryption");
        assert_eq!(
            own_signature(&der, &parse(&der).unwrap_or_else(|e| panic!("{e}"))),
            OwnSignature::Unchecked
        );
        assert!(info.self_signed);
    }
}

#[test]
fn garbage_and_truncated_are_recorded_unparsed() -> TestResult {
    let der = self_signed(&rcgen::PKCS_ECDSA_P256_SHA256, &["a.example"])?;
    let cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        b"not a certificate".to_vec(),
        der[..der.len() / 2].to_vec(),
        der[..der.len() - 1].to_vec(),
        [der.as_slice(), b"\0"].concat(),
    ];
    for bytes in cases {
        let info = analyse(&bytes);
        assert!(!info.parsed);
        assert!(info.parse_error.is_some());
        assert_eq!(info.sha256, sha256_hex(&bytes));
        assert_eq!(info.der_base64, Some(base64(&bytes)));
        assert_eq!(info.key.key_type, "unknown");
        assert!(info.sans.is_empty() && info.subject.is_empty() && !info.self_signed);
        assert!(!name_matches(&bytes, "a.example"));
    }
    let trailing = analyse(&[der.as_slice(), b"xy"].concat());
    assert_eq!(
        trailing.parse_error.as_deref(),
        Some("2 bytes of trailing data after the certificate")
    );
    Ok(())
}

#[test]
fn name_matching_table() -> TestResult {
    let cert = self_signed(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &[
            "mx.example.com",
            "*.example.net",
            "f*.example.org",
            "*.com",
            "xn--bcher-kva.example",
        ],
    )?;
    let table = [
        ("mx.example.com", true),
        ("MX.Example.COM", true),
        ("mx.example.com.", true),
        ("example.com", false),
        ("a.mx.example.com", false),
        ("a.example.net", true),
        ("A.EXAMPLE.NET.", true),
        ("a.b.example.net", false),
        ("example.net", false),
        (".example.net", false),
        ("foo.example.org", false),
        ("f.example.org", false),
        ("example.com.", false),
        ("anything.com", false),
        ("xn--bcher-kva.example", true),
        ("bücher.example", false),
        ("*.example.net", false),
        ("", false),
        (".", false),
    ];
    for (name, want) in table {
        assert_eq!(name_matches(&cert, name), want, "{name}");
    }
    Ok(())
}

#[test]
fn cn_only_when_no_dns_san() -> TestResult {
    let cn_only = with_cn("mail.example.com", Vec::new())?;
    assert!(name_matches(&cn_only, "mail.example.com"));
    assert!(!name_matches(&cn_only, "other.example.com"));

    let cn_wild = with_cn("*.example.com", Vec::new())?;
    assert!(name_matches(&cn_wild, "mail.example.com"));

    let cn_and_san = with_cn(
        "mail.example.com",
        vec![SanType::DnsName("mx.example.com".try_into()?)],
    )?;
    assert!(!name_matches(&cn_and_san, "mail.example.com"));
    assert!(name_matches(&cn_and_san, "mx.example.com"));

    // An IP SAN alone does not hide the CN.
    let cn_and_ip = with_cn(
        "mail.example.com",
        vec![SanType::IpAddress("192.0.2.1".parse()?)],
    )?;
    assert!(name_matches(&cn_and_ip, "mail.example.com"));
    Ok(())
}

#[test]
fn pattern_rules() {
    let cases = [
        ("*.a.b", "x.a.b", true),
        ("*.a.b", "a.b", false),
        ("*.b", "a.b", false),
        ("*", "a", false),
        ("*.", "a", false),
        ("a.*.b", "a.x.b", false),
        ("*.*.b", "x.y.b", false),
        ("x*.a.b", "xy.a.b", false),
        ("*x.a.b", "yx.a.b", false),
        ("*.a.b.", "x.a.b", true),
        ("", "a", false),
    ];
    for (pattern, reference, want) in cases {
        assert_eq!(
            dns_pattern_matches(pattern, reference),
            want,
            "{pattern} vs {reference}"
        );
    }
}

#[test]
fn helpers() {
    assert_eq!(
        sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    assert_eq!(bit_length(&[0x00, 0x80, 0x00]), Some(16));
    assert_eq!(bit_length(&[0x00, 0x00, 0x7f, 0xff]), Some(15));
    assert_eq!(bit_length(&[0x01]), Some(1));
    assert_eq!(bit_length(&[]), Some(0));
    assert_eq!(serial_hex(&[0x00]), "0");
    assert_eq!(serial_hex(&[0x00, 0x9a, 0x0b]), "9a0b");
    assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
    assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    assert_eq!(ip_text(&[1, 2, 3]), "ip:010203");
    assert_eq!(der_tlv(&[0x30, 0x81]), None);
    assert_eq!(der_tlv(&[0x30, 0x85, 1, 1, 1, 1, 1]), None);
    assert_eq!(
        der_tlv(&[0x02, 0x01, 0x05, 0xaa]),
        Some((0x02, &[0x05][..], &[0xaa][..]))
    );
}

fn valid_der() -> &'static [u8] {
    static DER: OnceLock<Vec<u8>> = OnceLock::new();
    DER.get_or_init(|| {
        self_signed(
            &rcgen::PKCS_ECDSA_P256_SHA256,
            &["mx.example.com", "*.example.net"],
        )
        .unwrap_or_default()
    })
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..1500)) {
        let info = analyse(&bytes);
        prop_assert_eq!(info.sha256, sha256_hex(&bytes));
        let _ = name_matches(&bytes, "mx.example.com");
    }

    #[test]
    fn never_panics_on_mutated_der(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let mut der = valid_der().to_vec();
        prop_assume!(!der.is_empty());
        for (at, byte) in edits {
            let i = at.index(der.len());
            if let Some(slot) = der.get_mut(i) {
                *slot = byte;
            }
        }
        if truncate {
            der.truncate(cut.index(der.len()));
        }
        let info = analyse(&der);
        prop_assert!(info.parsed || info.der_base64.is_some());
        let _ = name_matches(&der, "a.example.net");
    }
}
