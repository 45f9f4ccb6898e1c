//! Certificate facts for the chain a server sent (DESIGN §4, §5).
//!
//! Every byte here comes from a peer: nothing panics, and a certificate that does
//! not parse is still recorded (its SHA-256 and base64 DER), never dropped.
//!
//! Layout:
//! - this file: [`analyse`] / [`analyse_chain`], one [`CertInfo`] per
//!   certificate (x509-parser): names, SANs, serial, validity, digests.
//! - `key`: the key's type, size and curve, the signature algorithm's name.
//! - `self_signed`: whether the certificate's own key signed it (webpki
//!   algorithms of rustls' ring provider).
//! - `names`: [`name_matches`], RFC 6125 DNS-ID matching of the leaf against
//!   an MX name.
//!
//! Hex and base64 come from [`mxscope_common::encoding`]; DER elements are
//! read with x509-parser's `asn1-rs`.

mod key;
mod names;
pub mod ocsp;
mod self_signed;

use std::net::{Ipv4Addr, Ipv6Addr};

use mxscope_common::encoding::{base64, hex};
use mxscope_common::units::rfc3339;
use mxscope_common::{CertInfo, KeyInfo};
use sha2::{Digest, Sha256};
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::{GeneralName, ParsedExtension};

use key::{key_info, signature_name, strip_leading_zeros};
pub use names::name_matches;
use self_signed::is_self_signed;

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

/// SHA-256 of `bytes`, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
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
        scts: Vec::new(),
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
        scts: scts(cert),
    }
}

/// Log ids of the embedded SCTs (RFC 6962 §3.3), lowercase hex.
fn scts(cert: &X509Certificate<'_>) -> Vec<String> {
    cert.extensions()
        .iter()
        .filter_map(|ext| match ext.parsed_extension() {
            ParsedExtension::SCT(list) => Some(list),
            _ => None,
        })
        .flatten()
        .map(|sct| hex(sct.id.key_id))
        .collect()
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

#[cfg(test)]
mod tests;
