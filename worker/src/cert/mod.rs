//! Certificate facts for the chain a server sent (DESIGN §4, §5).
//!
//! Every byte here comes from a peer: nothing panics, and a certificate that does
//! not parse is still recorded (its SHA-256 and base64 DER), never dropped.
//!
//! Layout:
//! - [`analyse`] / [`analyse_chain`]: one [`CertInfo`] per certificate (x509-parser).
//! - [`name_matches`]: RFC 6125 DNS-ID matching of the leaf against an MX name.
//! - small helpers: [`sha256_hex`], [`base64`], a bounded DER reader, OID names.

use mxscope_common::units::rfc3339;
use std::borrow::Cow;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

use mxscope_common::{CertInfo, KeyInfo};
use rustls_pki_types::SignatureVerificationAlgorithm;
use sha2::{Digest, Sha256};
use x509_parser::asn1_rs::{Oid, Tag};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

/// Analyse one DER certificate. Never panics on malformed input.
///
/// A DER that does not parse, or that carries bytes after the certificate, gives
/// `parsed: false` with the reason, the SHA-256 and the base64 of the bytes.
pub fn analyse(der: &[u8]) -> CertInfo {
    match parse(der) {
        Ok(cert) => analyse_parsed(der, &cert),
        Err(reason) => unparsed(der, reason),
    }
}

/// Analyse a chain as the server sent it (leaf first).
pub fn analyse_chain(chain: &[&[u8]]) -> Vec<CertInfo> {
    chain.iter().map(|der| analyse(der)).collect()
}

/// Whether the leaf certificate is valid for `name` (DNS name, as A-labels).
///
/// RFC 6125 §6.4: the dNSName SANs are checked; only when there is none do the
/// subject CNs count. ASCII case-insensitive, a trailing dot is ignored, and a
/// wildcard matches only as the whole left-most label of a name with at least
/// two further labels (`*.example.com` covers `a.example.com`, not
/// `a.b.example.com` nor `example.com`; `f*.example.com` covers nothing).
/// An unparseable certificate or SAN extension matches nothing.
pub fn name_matches(leaf_der: &[u8], name: &str) -> bool {
    let Some(reference) = normalise_reference(name) else {
        return false;
    };
    let Ok(cert) = parse(leaf_der) else {
        return false;
    };
    let sans = match cert.subject_alternative_name() {
        Ok(Some(ext)) => ext.value.general_names.as_slice(),
        Ok(None) => &[],
        Err(_) => return false,
    };
    let mut has_dns_san = false;
    let mut matched = false;
    for general_name in sans {
        match general_name {
            GeneralName::DNSName(pattern) => {
                has_dns_san = true;
                matched |= dns_pattern_matches(pattern, &reference);
            }
            // A dNSName ([2]) that is not text still counts as a DNS-ID.
            GeneralName::Invalid(tag, _) if *tag == Tag(2) => has_dns_san = true,
            _ => {}
        }
    }
    if has_dns_san {
        return matched;
    }
    let cn_matches = cert
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok())
        .any(|pattern| dns_pattern_matches(pattern, &reference));
    cn_matches
}

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Standard base64 (RFC 4648 §4, with padding).
pub fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let sextet = |v: u32| char::from(ALPHABET[(v & 0x3f) as usize]);
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = |i: usize| u32::from(chunk.get(i).copied().unwrap_or(0));
        let v = (b(0) << 16) | (b(1) << 8) | b(2);
        out.push(sextet(v >> 18));
        out.push(sextet(v >> 12));
        out.push(if chunk.len() > 1 { sextet(v >> 6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(v) } else { '=' });
    }
    out
}

/// Parse a whole DER certificate; trailing bytes are an error.
fn parse(der: &[u8]) -> Result<X509Certificate<'_>, String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok(([], cert)) => Ok(cert),
        Ok((rest, _)) => Err(format!(
            "{} bytes of trailing data after the certificate",
            rest.len()
        )),
        Err(e) => Err(format!("not an x.509 certificate: {e}")),
    }
}

fn unparsed(der: &[u8], reason: String) -> CertInfo {
    CertInfo {
        parsed: false,
        parse_error: Some(reason),
        subject: String::new(),
        issuer: String::new(),
        sans: Vec::new(),
        serial: String::new(),
        not_before: String::new(),
        not_after: String::new(),
        key: KeyInfo {
            key_type: "unknown".into(),
            bits: None,
            curve: None,
        },
        signature_algorithm: String::new(),
        sha256: sha256_hex(der),
        spki_sha256: String::new(),
        self_signed: false,
        der_base64: Some(base64(der)),
    }
}

fn analyse_parsed(der: &[u8], cert: &X509Certificate<'_>) -> CertInfo {
    let spki = cert.public_key();
    CertInfo {
        parsed: true,
        parse_error: None,
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sans: sans(cert),
        serial: serial_hex(cert.raw_serial()),
        not_before: rfc3339(cert.validity().not_before.timestamp()),
        not_after: rfc3339(cert.validity().not_after.timestamp()),
        key: key_info(spki),
        signature_algorithm: signature_name(&cert.signature_algorithm),
        sha256: sha256_hex(der),
        spki_sha256: sha256_hex(spki.raw),
        self_signed: is_self_signed(der, cert),
        der_base64: None,
    }
}

/// SANs as text: dNSName as-is, iPAddress as an address, others prefixed.
fn sans(cert: &X509Certificate<'_>) -> Vec<String> {
    let Ok(Some(ext)) = cert.subject_alternative_name() else {
        return Vec::new();
    };
    ext.value
        .general_names
        .iter()
        .map(|general_name| match general_name {
            GeneralName::DNSName(name) => (*name).to_owned(),
            GeneralName::IPAddress(bytes) => ip_text(bytes),
            GeneralName::RFC822Name(mail) => format!("email:{mail}"),
            GeneralName::URI(uri) => format!("uri:{uri}"),
            GeneralName::DirectoryName(name) => format!("dirname:{name}"),
            GeneralName::OtherName(oid, _) => format!("othername:{}", oid.to_id_string()),
            GeneralName::RegisteredID(oid) => format!("rid:{}", oid.to_id_string()),
            GeneralName::X400Address(_) => "x400address".to_owned(),
            GeneralName::EDIPartyName(_) => "edipartyname".to_owned(),
            GeneralName::Invalid(tag, bytes) => format!("invalid:{}:{}", tag.0, hex(bytes)),
        })
        .collect()
}

fn ip_text(bytes: &[u8]) -> String {
    if let Ok(v4) = <[u8; 4]>::try_from(bytes) {
        Ipv4Addr::from(v4).to_string()
    } else if let Ok(v6) = <[u8; 16]>::try_from(bytes) {
        Ipv6Addr::from(v6).to_string()
    } else {
        format!("ip:{}", hex(bytes))
    }
}

/// The serial's integer value in lowercase hex, without DER sign padding.
fn serial_hex(raw: &[u8]) -> String {
    let digits = hex(strip_leading_zeros(raw));
    if digits.is_empty() {
        "0".to_owned()
    } else {
        digits
    }
}

fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
    let key = |key_type: &str, bits: Option<u32>, curve: Option<String>| KeyInfo {
        key_type: key_type.to_owned(),
        bits,
        curve,
    };
    let params = spki.algorithm.parameters.as_ref();
    match spki.algorithm.algorithm.to_id_string().as_str() {
        // rsaEncryption, RSASSA-PSS: RSAPublicKey ::= SEQUENCE { modulus, exponent }
        "1.2.840.113549.1.1.1" | "1.2.840.113549.1.1.10" => {
            let bits = der_tlv(&spki.subject_public_key.data)
                .filter(|(tag, _, _)| *tag == 0x30)
                .and_then(|(_, seq, _)| der_tlv(seq))
                .filter(|(tag, _, _)| *tag == 0x02)
                .and_then(|(_, modulus, _)| bit_length(modulus));
            key("RSA", bits, None)
        }
        // id-ecPublicKey with a namedCurve parameter.
        "1.2.840.10045.2.1" => {
            let curve_oid = params
                .filter(|any| any.tag() == Tag::Oid)
                .and_then(|any| oid_text(any.data));
            match curve_oid.as_deref().map(curve_name) {
                Some(Some((name, bits))) => key("EC", Some(bits), Some(name.to_owned())),
                Some(None) => key("EC", None, curve_oid),
                None => key("EC", None, None),
            }
        }
        "1.3.101.112" => key("Ed25519", Some(256), None),
        "1.3.101.113" => key("Ed448", Some(456), None),
        // id-dsa: Dss-Parms ::= SEQUENCE { p, q, g }; the size is p's.
        "1.2.840.10040.4.1" => {
            let bits = params
                .filter(|any| any.tag() == Tag::Sequence)
                .and_then(|any| der_tlv(any.data))
                .filter(|(tag, _, _)| *tag == 0x02)
                .and_then(|(_, p, _)| bit_length(p));
            key("DSA", bits, None)
        }
        _ => key("unknown", None, None),
    }
}

/// Curve name and size for a named-curve OID.
fn curve_name(oid: &str) -> Option<(&'static str, u32)> {
    Some(match oid {
        "1.2.840.10045.3.1.7" => ("P-256", 256),
        "1.3.132.0.34" => ("P-384", 384),
        "1.3.132.0.35" => ("P-521", 521),
        "1.2.840.10045.3.1.1" => ("P-192", 192),
        "1.3.132.0.33" => ("P-224", 224),
        "1.3.132.0.10" => ("secp256k1", 256),
        "1.3.36.3.3.2.8.1.1.7" => ("brainpoolP256r1", 256),
        "1.3.36.3.3.2.8.1.1.11" => ("brainpoolP384r1", 384),
        "1.3.36.3.3.2.8.1.1.13" => ("brainpoolP512r1", 512),
        _ => return None,
    })
}

/// A readable signature algorithm name, or the dotted OID.
fn signature_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let oid = alg.algorithm.to_id_string();
    let name = match oid.as_str() {
        "1.2.840.113549.1.1.2" => "md2WithRSAEncryption",
        "1.2.840.113549.1.1.4" => "md5WithRSAEncryption",
        "1.2.840.113549.1.1.5" => "sha1WithRSAEncryption",
        "1.3.14.3.2.29" => "sha1WithRSA",
        "1.2.840.113549.1.1.11" => "sha256WithRSAEncryption",
        "1.2.840.113549.1.1.12" => "sha384WithRSAEncryption",
        "1.2.840.113549.1.1.13" => "sha512WithRSAEncryption",
        "1.2.840.113549.1.1.14" => "sha224WithRSAEncryption",
        "1.2.840.113549.1.1.10" => return pss_name(alg),
        "1.2.840.10045.4.1" => "ecdsa-with-SHA1",
        "1.2.840.10045.4.3.1" => "ecdsa-with-SHA224",
        "1.2.840.10045.4.3.2" => "ecdsa-with-SHA256",
        "1.2.840.10045.4.3.3" => "ecdsa-with-SHA384",
        "1.2.840.10045.4.3.4" => "ecdsa-with-SHA512",
        "1.3.101.112" => "Ed25519",
        "1.3.101.113" => "Ed448",
        "1.2.840.10040.4.3" => "dsa-with-SHA1",
        "2.16.840.1.101.3.4.3.1" => "dsa-with-SHA224",
        "2.16.840.1.101.3.4.3.2" => "dsa-with-SHA256",
        _ => return oid,
    };
    name.to_owned()
}

/// `rsassaPss-<hash>`: RSASSA-PSS-params [0] hashAlgorithm, SHA-1 by default.
fn pss_name(alg: &AlgorithmIdentifier<'_>) -> String {
    let hash_oid = alg
        .parameters
        .as_ref()
        .filter(|any| any.tag() == Tag::Sequence)
        .and_then(|any| der_tlv(any.data))
        .map(|(tag, contents, _)| {
            if tag != 0xa0 {
                return Some("1.3.14.3.2.26".to_owned());
            }
            der_tlv(contents)
                .filter(|(tag, _, _)| *tag == 0x30)
                .and_then(|(_, alg_id, _)| der_tlv(alg_id))
                .filter(|(tag, _, _)| *tag == 0x06)
                .and_then(|(_, oid, _)| oid_text(oid))
        })
        .unwrap_or_else(|| Some("1.3.14.3.2.26".to_owned()));
    let hash = match hash_oid.as_deref() {
        Some("1.3.14.3.2.26") => "sha1",
        Some("2.16.840.1.101.3.4.2.1") => "sha256",
        Some("2.16.840.1.101.3.4.2.2") => "sha384",
        Some("2.16.840.1.101.3.4.2.3") => "sha512",
        Some("2.16.840.1.101.3.4.2.4") => "sha224",
        _ => return "rsassaPss".to_owned(),
    };
    format!("rsassaPss-{hash}")
}

/// What checking a certificate's signature with its own key showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OwnSignature {
    Valid,
    Invalid,
    /// No verifier for this algorithm or key size (SHA-1, MD5, P-521, RSA < 2048).
    Unchecked,
}

/// Subject equals issuer (raw DER) and the certificate's own key signed it.
///
/// When the signature cannot be checked here (see [`OwnSignature::Unchecked`]),
/// the name equality stands unless the key identifiers contradict it.
fn is_self_signed(der: &[u8], cert: &X509Certificate<'_>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    match own_signature(der, cert) {
        OwnSignature::Valid => true,
        OwnSignature::Invalid => false,
        OwnSignature::Unchecked => !key_ids_differ(cert),
    }
}

fn own_signature(der: &[u8], cert: &X509Certificate<'_>) -> OwnSignature {
    let spki = cert.public_key();
    let (Some(key_alg), Some(sig_alg)) = (spki_alg_contents(spki.raw), cert_sig_alg_contents(der))
    else {
        return OwnSignature::Unchecked;
    };
    if let KeyInfo {
        key_type,
        bits: Some(bits),
        ..
    } = key_info(spki)
    {
        // ring refuses RSA keys outside 2048..=8192 bits: say so, not "invalid".
        if key_type == "RSA" && !(2048..=8192).contains(&bits) {
            return OwnSignature::Unchecked;
        }
    }
    let Some(alg) = verification_algorithms().iter().find(|alg| {
        alg.public_key_alg_id().as_ref() == key_alg && alg.signature_alg_id().as_ref() == sig_alg
    }) else {
        return OwnSignature::Unchecked;
    };
    if cert.signature_value.unused_bits != 0 {
        return OwnSignature::Invalid;
    }
    match alg.verify_signature(
        &spki.subject_public_key.data,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    ) {
        Ok(()) => OwnSignature::Valid,
        Err(_) => OwnSignature::Invalid,
    }
}

/// The webpki algorithms of rustls' *ring* provider (the TLS stack's own set).
fn verification_algorithms() -> &'static [&'static dyn SignatureVerificationAlgorithm] {
    static ALGS: OnceLock<&'static [&'static dyn SignatureVerificationAlgorithm]> = OnceLock::new();
    ALGS.get_or_init(|| {
        rustls::crypto::ring::default_provider()
            .signature_verification_algorithms
            .all
    })
}

/// Both key identifiers present and different: another key signed this.
fn key_ids_differ(cert: &X509Certificate<'_>) -> bool {
    let mut ski = None;
    let mut aki = None;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::SubjectKeyIdentifier(id) => ski = Some(id.0),
            ParsedExtension::AuthorityKeyIdentifier(id) => {
                aki = id.key_identifier.as_ref().map(|k| k.0);
            }
            _ => {}
        }
    }
    matches!((ski, aki), (Some(s), Some(a)) if s != a)
}

/// Contents of the SPKI's AlgorithmIdentifier SEQUENCE (what webpki compares).
fn spki_alg_contents(spki_raw: &[u8]) -> Option<&[u8]> {
    let (_, spki, _) = der_tlv(spki_raw).filter(|(tag, _, _)| *tag == 0x30)?;
    let (_, alg, _) = der_tlv(spki).filter(|(tag, _, _)| *tag == 0x30)?;
    Some(alg)
}

/// Contents of the Certificate's outer signatureAlgorithm SEQUENCE.
fn cert_sig_alg_contents(der: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = der_tlv(der).filter(|(tag, _, _)| *tag == 0x30)?;
    let (_, _, after_tbs) = der_tlv(cert)?;
    let (_, alg, _) = der_tlv(after_tbs).filter(|(tag, _, _)| *tag == 0x30)?;
    Some(alg)
}

/// One DER TLV: (tag byte, contents, rest). `None` on anything malformed or
/// on high tag numbers, which nothing read here uses.
fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let (len_bytes, rest) = rest.split_at_checked(count)?;
        let len = len_bytes.iter().try_fold(0usize, |acc, &b| {
            acc.checked_mul(256)?.checked_add(usize::from(b))
        })?;
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// Bit length of an unsigned big-endian integer, leading zero bytes ignored.
fn bit_length(int: &[u8]) -> Option<u32> {
    let digits = strip_leading_zeros(int);
    let Some(&first) = digits.first() else {
        return Some(0);
    };
    let whole_bytes = u32::try_from(digits.len() - 1).ok()?;
    whole_bytes
        .checked_mul(8)?
        .checked_add(8 - first.leading_zeros())
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    bytes.get(start..).unwrap_or_default()
}

/// Dotted text of OID content bytes.
fn oid_text(bytes: &[u8]) -> Option<String> {
    if bytes.is_empty() {
        return None;
    }
    Some(Oid::new(Cow::Borrowed(bytes)).to_id_string())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

/// The reference name, lowercase without trailing dot; `None` when it cannot
/// be a DNS name to match (empty, empty label, wildcard, non-ASCII).
fn normalise_reference(name: &str) -> Option<String> {
    let name = name.strip_suffix('.').unwrap_or(name);
    let valid = !name.is_empty()
        && name.is_ascii()
        && !name.contains('*')
        && name.split('.').all(|label| !label.is_empty());
    valid.then(|| name.to_ascii_lowercase())
}

/// One certificate DNS-ID against a normalised reference name.
fn dns_pattern_matches(pattern: &str, reference: &str) -> bool {
    let pattern = pattern.strip_suffix('.').unwrap_or(pattern);
    if pattern.is_empty() || !pattern.is_ascii() {
        return false;
    }
    let pattern = pattern.to_ascii_lowercase();
    match pattern.strip_prefix("*.") {
        Some(parent) => {
            // The wildcard stands for exactly one non-empty label, and the
            // rest must itself be at least two labels (no `*.com`).
            let parent_ok = !parent.contains('*')
                && parent.contains('.')
                && parent.split('.').all(|label| !label.is_empty());
            parent_ok
                && reference
                    .split_once('.')
                    .is_some_and(|(label, rest)| !label.is_empty() && rest == parent)
        }
        None => !pattern.contains('*') && pattern == reference,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::path::PathBuf;
    use std::process::Command;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use proptest::prelude::*;
    use rcgen::{
        CertificateParams, DistinguishedName, DnType, Issuer, KeyPair, SanType, SignatureAlgorithm,
    };

    type TestResult = Result<(), Box<dyn std::error::Error>>;

    fn self_signed(
        alg: &'static SignatureAlgorithm,
        sans: &[&str],
    ) -> Result<Vec<u8>, rcgen::Error> {
        let key = KeyPair::generate_for(alg)?;
        let params =
            CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())?;
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
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
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
}
