//! DANE for SMTP (RFC 7672, RFC 6698, RFC 7671): match the TLSA RRset of
//! `_25._tcp.<mx>` against the certificate chain a server presented.
//!
//! Only DANE-TA(2) and DANE-EE(3) are usable for SMTP (RFC 7672 §3.1);
//! PKIX-TA(0), PKIX-EE(1), unknown selectors or matching types and data of
//! the wrong length are unusable and skipped.
//!
//! - DANE-EE(3): the leaf (full certificate or SPKI) must match; no name,
//!   validity or chain checks (RFC 7672 §3.1.1).
//! - DANE-TA(2): a certificate of the presented chain must match; the leaf
//!   must chain to it with valid signatures and dates (webpki, that
//!   certificate as the only trust anchor, whose own dates are not checked),
//!   and the leaf must carry the MX name, which is the TLSA base domain here
//!   (RFC 7672 §3.2.2; CNAME-expanded base domains are not followed).
//!
//! Layout: [`dane_verdict`] is pure (bytes in, verdict out); [`dane_outcome`]
//! adds the lookup states of [`crate::security::dnssec::TlsaLookup`].

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mxscope_common::record::security_dns::{
    DaneResult, DaneVerdict, DnssecReason, DnssecStatus, TlsaRecord,
};
use rustls::client::danger::ServerCertVerifier;
use rustls::client::WebPkiServerVerifier;
use rustls::{CertificateError, RootCertStore};
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use sha2::{Digest, Sha256, Sha512};
use x509_parser::prelude::{FromDer, X509Certificate};

use mxscope_common::encoding::unhex;
use mxscope_common::snake;

use crate::security::dnssec::{TlsaLookup, Verdict};

/// Lowercase hex of `bytes` (TLSA association data as records carry it).
pub use mxscope_common::encoding::hex as encode_hex;

/// DANE-TA(2).
const USAGE_DANE_TA: u8 = 2;
/// DANE-EE(3).
const USAGE_DANE_EE: u8 = 3;

/// The DANE result of one (MX, IP) from its TLSA lookup and the chain the
/// server presented (leaf first, DER). `chain_der` may be empty when no
/// handshake happened.
pub fn dane_outcome(
    lookup: &TlsaLookup,
    chain_der: &[Vec<u8>],
    mx_name: &str,
    now: SystemTime,
) -> DaneResult {
    match lookup {
        TlsaLookup::Records(records) => dane_verdict(records, chain_der, mx_name, now),
        TlsaLookup::NoRecords => result(DaneVerdict::NoTlsa, Vec::new(), "no TLSA records"),
        TlsaLookup::Insecure => not_applicable("the TLSA RRset is not DNSSEC-secure"),
        TlsaLookup::Failed(detail, why) => DaneResult {
            reason: Some(*why),
            ..result(
                DaneVerdict::TlsaLookupFailed,
                Vec::new(),
                &format!("TLSA lookup failed: {detail}"),
            )
        },
    }
}

/// DANE does not apply (the MX name or its addresses are not secure, or the
/// TLSA answer itself is insecure).
pub fn not_applicable(reason: &str) -> DaneResult {
    DaneResult {
        reason: Some(DnssecReason::InsecureDelegation),
        ..result(DaneVerdict::NotApplicableInsecure, Vec::new(), reason)
    }
}

/// The DANE result of an MX host whose A/AAAA are not secure (the TLSA
/// RRset is not looked up): `not_applicable_insecure` for provably unsigned
/// addresses; `address_bogus` for bogus ones, which RFC 7672 §2.1.1 treats
/// as a lookup failure (the host is unusable); `tlsa_lookup_failed` when the
/// addresses could not be validated (the chain could not be fetched).
pub fn address_not_secure(addresses: Verdict) -> DaneResult {
    let detail = format!(
        "the MX host's addresses are {}{}",
        snake(&addresses.status),
        addresses
            .reason
            .map(|r| format!(" ({})", r.as_str()))
            .unwrap_or_default()
    );
    let verdict = match addresses.status {
        DnssecStatus::Insecure => DaneVerdict::NotApplicableInsecure,
        DnssecStatus::Bogus => DaneVerdict::AddressBogus,
        _ => DaneVerdict::TlsaLookupFailed,
    };
    DaneResult {
        reason: addresses.reason,
        ..result(verdict, Vec::new(), &detail)
    }
}

/// Match a secure TLSA RRset against the presented chain (leaf first, DER).
/// Never panics on the records or the certificates.
pub fn dane_verdict(
    tlsa: &[TlsaRecord],
    chain_der: &[Vec<u8>],
    mx_name: &str,
    now: SystemTime,
) -> DaneResult {
    let usable: Vec<(&TlsaRecord, Vec<u8>)> = tlsa
        .iter()
        .filter_map(|r| usable_data(r).map(|data| (r, data)))
        .collect();
    if usable.is_empty() {
        let detail = if tlsa.is_empty() {
            "no TLSA records".to_string()
        } else {
            format!("none of the {} TLSA records is usable for SMTP", tlsa.len())
        };
        return result(DaneVerdict::NoTlsa, tlsa.to_vec(), &detail);
    }
    let Some(leaf) = chain_der.first() else {
        return result(
            DaneVerdict::DaneMismatch,
            tlsa.to_vec(),
            "the server presented no certificate",
        );
    };

    let mut reasons = Vec::new();
    // DANE-EE first: it needs no chain work.
    for (record, data) in usable.iter().filter(|(r, _)| r.usage == USAGE_DANE_EE) {
        match matches(record, data, leaf) {
            Ok(true) => {
                return result(
                    DaneVerdict::DaneValid,
                    tlsa.to_vec(),
                    &format!("{} matches the leaf", describe(record)),
                )
            }
            Ok(false) => reasons.push(format!("{} does not match the leaf", describe(record))),
            Err(e) => reasons.push(format!("{}: {e}", describe(record))),
        }
    }
    for (record, data) in usable.iter().filter(|(r, _)| r.usage == USAGE_DANE_TA) {
        let anchor = chain_der
            .iter()
            .enumerate()
            .skip(1)
            .find(|(_, cert)| matches!(matches(record, data, cert), Ok(true)));
        let Some((index, anchor)) = anchor else {
            reasons.push(format!(
                "{} matches no issuer certificate of the chain",
                describe(record)
            ));
            continue;
        };
        match chains_to(leaf, &chain_der[1..index], anchor, mx_name, now) {
            Ok(()) => {
                return result(
                    DaneVerdict::DaneValid,
                    tlsa.to_vec(),
                    &format!(
                        "{} matches chain certificate {index}, the leaf chains to it and carries {mx_name}",
                        describe(record)
                    ),
                )
            }
            Err(e) => reasons.push(format!(
                "{} matches chain certificate {index}, but {e}",
                describe(record)
            )),
        }
    }
    result(
        DaneVerdict::DaneMismatch,
        tlsa.to_vec(),
        &reasons.join("; "),
    )
}

fn result(verdict: DaneVerdict, tlsa: Vec<TlsaRecord>, detail: &str) -> DaneResult {
    DaneResult {
        verdict,
        tlsa,
        detail: Some(detail.to_string()),
        reason: None,
    }
}

fn describe(record: &TlsaRecord) -> String {
    format!(
        "TLSA {} {} {}",
        record.usage, record.selector, record.matching_type
    )
}

/// The association data of a record usable for SMTP, decoded; `None` when
/// the usage, selector or matching type is not usable or the data is malformed.
fn usable_data(record: &TlsaRecord) -> Option<Vec<u8>> {
    if !matches!(record.usage, USAGE_DANE_TA | USAGE_DANE_EE) || record.selector > 1 {
        return None;
    }
    let data = unhex(&record.data_hex)?;
    let ok = match record.matching_type {
        0 => !data.is_empty(),
        1 => data.len() == 32,
        2 => data.len() == 64,
        _ => false,
    };
    ok.then_some(data)
}

/// Whether `cert` (DER) matches the record's selector and matching type.
fn matches(record: &TlsaRecord, data: &[u8], cert: &[u8]) -> Result<bool, String> {
    let selected = match record.selector {
        0 => cert.to_vec(),
        1 => spki(cert)?,
        other => return Err(format!("selector {other} is not usable")),
    };
    Ok(match record.matching_type {
        0 => selected == data,
        1 => Sha256::digest(&selected).as_slice() == data,
        2 => Sha512::digest(&selected).as_slice() == data,
        _ => false,
    })
}

/// The DER SubjectPublicKeyInfo of a certificate.
fn spki(cert: &[u8]) -> Result<Vec<u8>, String> {
    X509Certificate::from_der(cert)
        .map(|(_, c)| c.tbs_certificate.subject_pki.raw.to_vec())
        .map_err(|e| format!("unparsable certificate: {e}"))
}

/// Verify that `leaf` chains through `intermediates` to `anchor` (trusted
/// as is) and is valid for `name` at `now`.
fn chains_to(
    leaf: &[u8],
    intermediates: &[Vec<u8>],
    anchor: &[u8],
    name: &str,
    now: SystemTime,
) -> Result<(), String> {
    let mut roots = RootCertStore::empty();
    roots
        .add(CertificateDer::from(anchor.to_vec()))
        .map_err(|e| format!("it is no usable trust anchor ({e})"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| format!("building the verifier failed ({e})"))?;
    let server_name = ServerName::try_from(name.trim_end_matches('.').to_string())
        .map_err(|_| format!("{name:?} is not a valid DNS name"))?;
    let intermediates: Vec<CertificateDer<'_>> = intermediates
        .iter()
        .map(|c| CertificateDer::from(c.as_slice()))
        .collect();
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match verifier.verify_server_cert(
        &CertificateDer::from(leaf),
        &intermediates,
        &server_name,
        &[],
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs)),
    ) {
        Ok(_) => Ok(()),
        Err(rustls::Error::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        )) => Err(format!("the leaf is not valid for {name}")),
        Err(e) => Err(format!("the leaf does not chain to it ({e})")),
    }
}

#[cfg(test)]
mod tests;
