//! Whether a certificate's own key signed it: subject equals issuer and the
//! signature verifies with the webpki algorithms of rustls' ring provider.

use std::sync::OnceLock;

use mxscope_common::KeyInfo;
use rustls_pki_types::SignatureVerificationAlgorithm;
use x509_parser::certificate::X509Certificate;
use x509_parser::extensions::ParsedExtension;

use super::key::{der_tlv, key_info};

/// What checking a certificate's signature with its own key showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum OwnSignature {
    Valid,
    Invalid,
    /// No verifier for this algorithm or key size (SHA-1, MD5, P-521, RSA < 2048).
    Unchecked,
}

/// Subject equals issuer (raw DER) and the certificate's own key signed it.
///
/// When the signature cannot be checked here (see [`OwnSignature::Unchecked`]),
/// the name equality stands unless the key identifiers contradict it.
pub(super) fn is_self_signed(der: &[u8], cert: &X509Certificate<'_>) -> bool {
    if cert.subject().as_raw() != cert.issuer().as_raw() {
        return false;
    }
    match own_signature(der, cert) {
        OwnSignature::Valid => true,
        OwnSignature::Invalid => false,
        OwnSignature::Unchecked => !key_ids_differ(cert),
    }
}

pub(super) fn own_signature(der: &[u8], cert: &X509Certificate<'_>) -> OwnSignature {
    let Some(sig_alg) = cert_sig_alg_contents(der) else {
        return OwnSignature::Unchecked;
    };
    if cert.signature_value.unused_bits != 0 {
        return OwnSignature::Invalid;
    }
    verify_signed(
        cert.public_key(),
        sig_alg,
        cert.tbs_certificate.as_ref(),
        &cert.signature_value.data,
    )
}

/// Whether `signature` over `message` verifies with `spki` under the
/// algorithm whose AlgorithmIdentifier contents are `sig_alg` (the webpki
/// algorithms of rustls' ring provider): a certificate's own signature, an
/// OCSP response's.
pub(super) fn verify_signed(
    spki: &x509_parser::x509::SubjectPublicKeyInfo<'_>,
    sig_alg: &[u8],
    message: &[u8],
    signature: &[u8],
) -> OwnSignature {
    let Some(key_alg) = spki_alg_contents(spki.raw) else {
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
    match alg.verify_signature(&spki.subject_public_key.data, message, signature) {
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
pub(super) fn cert_sig_alg(der: &[u8]) -> Option<&[u8]> {
    cert_sig_alg_contents(der)
}

fn cert_sig_alg_contents(der: &[u8]) -> Option<&[u8]> {
    let (_, cert, _) = der_tlv(der).filter(|(tag, _, _)| *tag == 0x30)?;
    let (_, _, after_tbs) = der_tlv(cert)?;
    let (_, alg, _) = der_tlv(after_tbs).filter(|(tag, _, _)| *tag == 0x30)?;
    Some(alg)
}
