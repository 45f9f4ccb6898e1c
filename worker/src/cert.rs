//! Certificate analysis (x509-parser). OWNED BY THE CERT HELPER — stub.

use mxscope_common::CertInfo;

/// Analyse one DER certificate. Never panics on malformed input.
pub fn analyse(der: &[u8]) -> CertInfo {
    let _ = der;
    todo!("cert helper")
}

/// Analyse a chain as the server sent it (leaf first).
pub fn analyse_chain(chain: &[&[u8]]) -> Vec<CertInfo> {
    chain.iter().map(|der| analyse(der)).collect()
}

/// Whether the leaf certificate is valid for `name` (DNS name).
pub fn name_matches(leaf_der: &[u8], name: &str) -> bool {
    let _ = (leaf_der, name);
    todo!("cert helper")
}
