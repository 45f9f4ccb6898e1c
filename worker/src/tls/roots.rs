//! Trust stores, built in one place for every TLS client of the worker
//! (the handshake's verifier, MTA-STS policy fetches): Mozilla's roots, or
//! exactly the certificates of a PEM file or bundle.

use std::path::Path;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::RootCertStore;

/// Mozilla's roots (`webpki-roots`).
pub(crate) fn mozilla() -> RootCertStore {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// Exactly the certificates of the PEM file at `path`; the error says why
/// (unreadable, not PEM, none, unusable).
pub(crate) fn from_file(path: &Path) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| e.to_string())?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    roots_from(certs)
}

/// Exactly the certificates of a PEM bundle (a scan's `ca_pem`).
pub(crate) fn from_pem(pem: &[u8]) -> Result<RootCertStore, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| e.to_string())?;
    roots_from(certs)
}

/// A root store of exactly `certs`; at least one is required.
fn roots_from(certs: Vec<CertificateDer<'static>>) -> Result<RootCertStore, String> {
    if certs.is_empty() {
        return Err("no certificate in PEM".into());
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| e.to_string())?;
    }
    Ok(roots)
}
