//! The certificate's key (type, size, curve) and its signature algorithm's
//! name, read from the DER elements x509-parser leaves unparsed.

use std::borrow::Cow;

use mxscope_common::KeyInfo;
use x509_parser::asn1_rs::{Any, FromDer, Oid, Tag};
use x509_parser::x509::{AlgorithmIdentifier, SubjectPublicKeyInfo};

pub(super) fn key_info(spki: &SubjectPublicKeyInfo<'_>) -> KeyInfo {
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
pub(super) fn signature_name(alg: &AlgorithmIdentifier<'_>) -> String {
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

/// Bit length of an unsigned big-endian integer, leading zero bytes ignored.
pub(super) fn bit_length(int: &[u8]) -> Option<u32> {
    let digits = strip_leading_zeros(int);
    let Some(&first) = digits.first() else {
        return Some(0);
    };
    let whole_bytes = u32::try_from(digits.len() - 1).ok()?;
    whole_bytes
        .checked_mul(8)?
        .checked_add(8 - first.leading_zeros())
}

pub(super) fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
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

/// One DER element: (identifier octet, contents, rest), read by asn1-rs.
/// `None` on anything malformed or on high tag numbers, which nothing read
/// here uses.
pub(super) fn der_tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (rest, any) = Any::from_der(input).ok()?;
    let number = u8::try_from(any.tag().0).ok().filter(|n| *n < 0x1f)?;
    let class = (any.class() as u8) << 6;
    let constructed = u8::from(any.header.is_constructed()) << 5;
    Some((class | constructed | number, any.data, rest))
}
