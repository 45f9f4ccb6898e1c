//! A stapled OCSP response (RFC 6960), read and checked offline: the
//! leaf's status, its dates, whether it is about the leaf, and whether its
//! signature verifies with the issuer's key (or with a responder
//! certificate it carries that the issuer signed). Never fetched, never
//! panics on peer bytes.

use mxscope_common::OcspStaple;
use x509_parser::certificate::X509Certificate;

use super::key::der_tlv;
use super::self_signed::{verify_signed, OwnSignature};

const SEQUENCE: u8 = 0x30;
const ENUMERATED: u8 = 0x0a;
const OCTET_STRING: u8 = 0x04;
const BIT_STRING: u8 = 0x03;
const INTEGER: u8 = 0x02;
const GENERALIZED_TIME: u8 = 0x18;
/// id-pkix-ocsp-basic, 1.3.6.1.5.5.7.48.1.1, as DER contents.
const OCSP_BASIC: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01];

/// Read `response`, stapled with the chain `leaf` then `issuer` (DER).
pub fn read(response: &[u8], leaf: Option<&[u8]>, issuer: Option<&[u8]>) -> OcspStaple {
    match parse(response) {
        Ok(parsed) => judge(&parsed, leaf, issuer),
        Err(Unreadable::Unsuccessful(code)) => OcspStaple {
            detail: Some(format!("responseStatus {code}")),
            ..staple("unsuccessful")
        },
        Err(Unreadable::Malformed(what)) => OcspStaple {
            detail: Some(what.into()),
            ..staple("unparsed")
        },
    }
}

fn staple(status: &str) -> OcspStaple {
    OcspStaple {
        status: status.into(),
        produced_at: None,
        this_update: None,
        next_update: None,
        for_leaf: false,
        verifies: None,
        detail: None,
    }
}

enum Unreadable {
    Unsuccessful(u8),
    Malformed(&'static str),
}

/// The parts of a BasicOCSPResponse that matter here.
struct Basic<'a> {
    /// The whole tbsResponseData TLV (what is signed).
    tbs: &'a [u8],
    sig_alg: &'a [u8],
    signature: &'a [u8],
    certs: Vec<&'a [u8]>,
    produced_at: Option<String>,
    status: &'static str,
    serial: &'a [u8],
    this_update: Option<String>,
    next_update: Option<String>,
}

fn tlv<'a>(
    input: &'a [u8],
    tag: u8,
    what: &'static str,
) -> Result<(&'a [u8], &'a [u8]), Unreadable> {
    match der_tlv(input) {
        Some((t, contents, rest)) if t == tag => Ok((contents, rest)),
        _ => Err(Unreadable::Malformed(what)),
    }
}

fn parse(response: &[u8]) -> Result<Basic<'_>, Unreadable> {
    let (outer, _) = tlv(response, SEQUENCE, "not an OCSPResponse")?;
    let (status, rest) = tlv(outer, ENUMERATED, "no responseStatus")?;
    match status {
        [0] => {}
        [code] => return Err(Unreadable::Unsuccessful(*code)),
        _ => return Err(Unreadable::Malformed("bad responseStatus")),
    }
    let (bytes, _) = tlv(rest, 0xa0, "no responseBytes")?;
    let (bytes, _) = tlv(bytes, SEQUENCE, "bad responseBytes")?;
    let (kind, rest) = tlv(bytes, 0x06, "no responseType")?;
    if kind != OCSP_BASIC {
        return Err(Unreadable::Malformed("not a basic OCSP response"));
    }
    let (basic, _) = tlv(rest, OCTET_STRING, "no response")?;
    let (basic, _) = tlv(basic, SEQUENCE, "bad BasicOCSPResponse")?;
    let (tbs_contents, after_tbs) = tlv(basic, SEQUENCE, "no tbsResponseData")?;
    let tbs = basic
        .get(..basic.len() - after_tbs.len())
        .ok_or(Unreadable::Malformed("bad tbsResponseData"))?;
    let (sig_alg, rest) = tlv(after_tbs, SEQUENCE, "no signatureAlgorithm")?;
    let (signature, rest) = tlv(rest, BIT_STRING, "no signature")?;
    let Some((0, signature)) = signature.split_first() else {
        return Err(Unreadable::Malformed("bad signature bits"));
    };
    let mut certs = Vec::new();
    if let Ok((list, _)) = tlv(rest, 0xa0, "certs") {
        let (mut list, _) = tlv(list, SEQUENCE, "bad certs")?;
        while !list.is_empty() {
            let (_, tail) = tlv(list, SEQUENCE, "bad certificate")?;
            certs.push(list.get(..list.len() - tail.len()).unwrap_or_default());
            list = tail;
        }
    }

    // ResponseData: [0] version?, responderID, producedAt, responses, ...
    let mut data = tbs_contents;
    if let Some((0xa0, _, rest)) = der_tlv(data) {
        data = rest;
    }
    let (_, _, rest) = der_tlv(data).ok_or(Unreadable::Malformed("no responderID"))?;
    let (produced, rest) = tlv(rest, GENERALIZED_TIME, "no producedAt")?;
    let (responses, _) = tlv(rest, SEQUENCE, "no responses")?;
    let (single, _) = tlv(responses, SEQUENCE, "no SingleResponse")?;
    let (cert_id, rest) = tlv(single, SEQUENCE, "no certID")?;
    let serial = cert_id_serial(cert_id)?;
    let (tag, _, rest) = der_tlv(rest).ok_or(Unreadable::Malformed("no certStatus"))?;
    let status = match tag {
        0x80 => "good",
        0xa1 => "revoked",
        0x82 => "unknown",
        _ => return Err(Unreadable::Malformed("bad certStatus")),
    };
    let (this_update, rest) = tlv(rest, GENERALIZED_TIME, "no thisUpdate")?;
    let next_update = tlv(rest, 0xa0, "nextUpdate")
        .ok()
        .and_then(|(inner, _)| tlv(inner, GENERALIZED_TIME, "nextUpdate").ok())
        .and_then(|(time, _)| generalized(time));
    Ok(Basic {
        tbs,
        sig_alg,
        signature,
        certs,
        produced_at: generalized(produced),
        status,
        serial,
        this_update: generalized(this_update),
        next_update,
    })
}

/// CertID: hashAlgorithm, issuerNameHash, issuerKeyHash, serialNumber.
fn cert_id_serial(cert_id: &[u8]) -> Result<&[u8], Unreadable> {
    let (_, rest) = tlv(cert_id, SEQUENCE, "no hashAlgorithm")?;
    let (_, rest) = tlv(rest, OCTET_STRING, "no issuerNameHash")?;
    let (_, rest) = tlv(rest, OCTET_STRING, "no issuerKeyHash")?;
    let (serial, _) = tlv(rest, INTEGER, "no serialNumber")?;
    Ok(serial)
}

/// `YYYYMMDDHHMMSS[.f]Z` → RFC 3339 (`YYYY-MM-DDTHH:MM:SSZ`).
fn generalized(time: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(time).ok()?;
    let digits = text.get(..14)?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) || !text.ends_with('Z') {
        return None;
    }
    Some(format!(
        "{}-{}-{}T{}:{}:{}Z",
        digits.get(..4)?,
        digits.get(4..6)?,
        digits.get(6..8)?,
        digits.get(8..10)?,
        digits.get(10..12)?,
        digits.get(12..14)?
    ))
}

fn judge(basic: &Basic<'_>, leaf: Option<&[u8]>, issuer: Option<&[u8]>) -> OcspStaple {
    let leaf = leaf.and_then(parse_cert);
    let for_leaf = leaf
        .as_ref()
        .is_some_and(|leaf| strip(leaf.raw_serial()) == strip(basic.serial));
    let detail = match (&leaf, for_leaf) {
        (Some(_), false) => Some("the response is about another certificate".into()),
        (None, _) => Some("no leaf to compare the response with".into()),
        (Some(_), true) => None,
    };
    let issuer = issuer.and_then(parse_cert);
    let verifies = issuer
        .as_ref()
        .and_then(|issuer| signed_by_issuer(basic, issuer));
    OcspStaple {
        status: basic.status.into(),
        produced_at: basic.produced_at.clone(),
        this_update: basic.this_update.clone(),
        next_update: basic.next_update.clone(),
        for_leaf,
        verifies,
        detail,
    }
}

fn parse_cert(der: &[u8]) -> Option<X509Certificate<'_>> {
    x509_parser::parse_x509_certificate(der)
        .ok()
        .map(|(_, cert)| cert)
}

fn strip(serial: &[u8]) -> &[u8] {
    let start = serial.iter().position(|b| *b != 0).unwrap_or(serial.len());
    serial.get(start..).unwrap_or_default()
}

/// The issuer signed the response, or signed a responder certificate the
/// response carries that signed it. `None`: could not be checked.
fn signed_by_issuer(basic: &Basic<'_>, issuer: &X509Certificate<'_>) -> Option<bool> {
    let check = |cert: &X509Certificate<'_>| {
        verify_signed(cert.public_key(), basic.sig_alg, basic.tbs, basic.signature)
    };
    match check(issuer) {
        OwnSignature::Valid => return Some(true),
        OwnSignature::Invalid | OwnSignature::Unchecked => {}
    }
    let mut unchecked = matches!(check(issuer), OwnSignature::Unchecked);
    for der in &basic.certs {
        let Ok((_, responder)) = x509_parser::parse_x509_certificate(der) else {
            continue;
        };
        // A delegated responder must be one (RFC 6960 §4.2.2.2): any other
        // certificate of the same CA could sign a forged response.
        let ocsp_signing = matches!(
            responder.extended_key_usage(),
            Ok(Some(eku)) if eku.value.ocsp_signing
        );
        if !ocsp_signing {
            continue;
        }
        let Some(alg) = super::self_signed::cert_sig_alg(der) else {
            continue;
        };
        let issued = verify_signed(
            issuer.public_key(),
            alg,
            responder.tbs_certificate.as_ref(),
            &responder.signature_value.data,
        );
        match (issued, check(&responder)) {
            (OwnSignature::Valid, OwnSignature::Valid) => return Some(true),
            (OwnSignature::Unchecked, _) | (_, OwnSignature::Unchecked) => unchecked = true,
            _ => {}
        }
    }
    (!unchecked).then_some(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_unparsed_and_never_panics() {
        for bytes in [&b""[..], b"\x30\x03\x0a\x01\x01", b"\x30\x80", &[0x30; 40]] {
            let staple = read(bytes, None, None);
            assert!(
                matches!(staple.status.as_str(), "unparsed" | "unsuccessful"),
                "{staple:?}"
            );
        }
        // tryLater (3): unsuccessful, with its code.
        let staple = read(b"\x30\x03\x0a\x01\x03", None, None);
        assert_eq!(staple.status, "unsuccessful");
        assert_eq!(staple.detail.as_deref(), Some("responseStatus 3"));
    }

    #[test]
    fn generalized_times() {
        assert_eq!(
            generalized(b"20261204233300Z").as_deref(),
            Some("2026-12-04T23:33:00Z")
        );
        assert_eq!(generalized(b"2026120423330Z"), None);
    }
}
