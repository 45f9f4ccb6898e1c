//! Does the server's handshake signature verify with its certificate's key?
//!
//! The recording verifier tolerates what an opportunistic MTA tolerates
//! (an expired, self-signed or RSA-1024 certificate, SHA-1 signatures), but
//! not a signature that does not verify at all: that is a server without
//! the certificate's private key, which is what an interceptor presenting a
//! copied certificate looks like, and OpenSSL fails that handshake too.
//!
//! rustls/webpki refuse RSA keys under 2048 bits, so when their check fails
//! the signature is checked again with ring's legacy-tolerant algorithms;
//! only a signature that fails both is bad. Schemes ring cannot check
//! (ECDSA with SHA-1, exotic ones) are given the benefit of the doubt.

use ring::signature::{self, UnparsedPublicKey, VerificationAlgorithm};
use rustls::SignatureScheme;
use x509_parser::prelude::{FromDer, X509Certificate};

/// What a second, legacy-tolerant check of a signature said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legacy {
    /// It verifies (e.g. an RSA-1024 key): tolerate it, as an MTA does.
    Valid,
    /// It does not verify with the certificate's key.
    Invalid,
    /// The certificate or the scheme cannot be checked here.
    Unchecked,
}

/// Check `signature` over `message` with the key of the DER certificate
/// `cert`, allowing RSA keys from 1024 bits.
pub fn legacy_check(message: &[u8], cert: &[u8], scheme: SignatureScheme, sig: &[u8]) -> Legacy {
    let Some(algorithm) = algorithm(scheme) else {
        return Legacy::Unchecked;
    };
    let Ok((_, parsed)) = X509Certificate::from_der(cert) else {
        return Legacy::Unchecked;
    };
    let spki = parsed.public_key();
    // ring checks RSA-PSS and PKCS#1-SHA384 only from 2048 bits: a smaller
    // key (RSA-1024 signing TLS 1.3) cannot be checked here, not refused.
    let rsa_bits = match spki.parsed() {
        Ok(x509_parser::public_key::PublicKey::RSA(rsa)) => Some(rsa.key_size()),
        _ => None,
    };
    if rsa_bits.is_some_and(|bits| bits < 2048) && !LEGACY_RSA.contains(&scheme) {
        return Legacy::Unchecked;
    }
    let key = &spki.subject_public_key.data;
    match UnparsedPublicKey::new(algorithm, key.as_ref()).verify(message, sig) {
        Ok(()) => Legacy::Valid,
        Err(_) => Legacy::Invalid,
    }
}

/// The RSA schemes ring checks from 1024 bits.
const LEGACY_RSA: [SignatureScheme; 3] = [
    SignatureScheme::RSA_PKCS1_SHA1,
    SignatureScheme::RSA_PKCS1_SHA256,
    SignatureScheme::RSA_PKCS1_SHA512,
];

fn algorithm(scheme: SignatureScheme) -> Option<&'static dyn VerificationAlgorithm> {
    Some(match scheme {
        SignatureScheme::RSA_PKCS1_SHA1 => &signature::RSA_PKCS1_1024_8192_SHA1_FOR_LEGACY_USE_ONLY,
        SignatureScheme::RSA_PKCS1_SHA256 => {
            &signature::RSA_PKCS1_1024_8192_SHA256_FOR_LEGACY_USE_ONLY
        }
        SignatureScheme::RSA_PKCS1_SHA384 => &signature::RSA_PKCS1_2048_8192_SHA384,
        SignatureScheme::RSA_PKCS1_SHA512 => {
            &signature::RSA_PKCS1_1024_8192_SHA512_FOR_LEGACY_USE_ONLY
        }
        SignatureScheme::RSA_PSS_SHA256 => &signature::RSA_PSS_2048_8192_SHA256,
        SignatureScheme::RSA_PSS_SHA384 => &signature::RSA_PSS_2048_8192_SHA384,
        SignatureScheme::RSA_PSS_SHA512 => &signature::RSA_PSS_2048_8192_SHA512,
        SignatureScheme::ECDSA_NISTP256_SHA256 => &signature::ECDSA_P256_SHA256_ASN1,
        SignatureScheme::ECDSA_NISTP384_SHA384 => &signature::ECDSA_P384_SHA384_ASN1,
        SignatureScheme::ED25519 => &signature::ED25519,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signature_by_another_key_is_invalid() {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec!["mx.example".to_string()])
            .unwrap()
            .self_signed(&key)
            .unwrap();
        let other = rcgen::KeyPair::generate().unwrap();
        let rng = ring::rand::SystemRandom::new();
        let sign = |pkcs8: &[u8]| {
            let pair = signature::EcdsaKeyPair::from_pkcs8(
                &signature::ECDSA_P256_SHA256_ASN1_SIGNING,
                pkcs8,
                &rng,
            )
            .unwrap();
            pair.sign(&rng, b"handshake").unwrap().as_ref().to_vec()
        };
        let scheme = SignatureScheme::ECDSA_NISTP256_SHA256;
        let good = sign(&key.serialize_der());
        let bad = sign(&other.serialize_der());
        assert_eq!(
            legacy_check(b"handshake", cert.der(), scheme, &good),
            Legacy::Valid
        );
        assert_eq!(
            legacy_check(b"handshake", cert.der(), scheme, &bad),
            Legacy::Invalid
        );
        assert_eq!(
            legacy_check(b"handshake", b"not a certificate", scheme, &good),
            Legacy::Unchecked
        );
        assert_eq!(
            legacy_check(
                b"handshake",
                cert.der(),
                SignatureScheme::ECDSA_SHA1_Legacy,
                &good
            ),
            Legacy::Unchecked
        );
    }
}
