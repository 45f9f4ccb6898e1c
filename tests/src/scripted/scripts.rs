//! What the scripted fake ([`crate::scripted`]) does after STARTTLS, ready
//! made: real TLS servers (a lab leaf, a leaf that does not parse, a 1 MiB
//! chain) and canned answers to the client's first TLS record (an alert,
//! plaintext, garbage, a ServerHello cut short by an alert).

use std::sync::Arc;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use tokio_rustls::TlsAcceptor;

use crate::scripted::sslv3::{alert, parse_client_hello};

/// TLS alert `handshake_failure`.
pub const ALERT_HANDSHAKE_FAILURE: u8 = 40;

/// A lab-CA chain and its key, as PEM (see [`crate::certs::LabCerts::issue`]).
#[derive(Debug, Clone)]
pub struct Leaf {
    pub chain_pem: String,
    pub key_pem: String,
}

impl Leaf {
    pub fn chain(&self) -> anyhow::Result<Vec<CertificateDer<'static>>> {
        CertificateDer::pem_slice_iter(self.chain_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .context("parsing the fake's certificate chain")
    }

    pub fn key(&self) -> anyhow::Result<PrivateKeyDer<'static>> {
        PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).context("parsing the fake's key")
    }
}

fn builder() -> anyhow::Result<rustls::ConfigBuilder<rustls::ServerConfig, rustls::WantsVerifier>> {
    Ok(rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?)
}

/// A rustls server (TLS 1.2 and 1.3) presenting `leaf`.
pub fn real(leaf: &Leaf) -> anyhow::Result<TlsAcceptor> {
    let config = builder()?
        .with_no_client_auth()
        .with_single_cert(leaf.chain()?, leaf.key()?)?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A rustls server that signs with `leaf`'s key but presents `chain`
/// (unchecked: it need not parse, nor match the key).
pub fn presenting(leaf: &Leaf, chain: Vec<CertificateDer<'static>>) -> anyhow::Result<TlsAcceptor> {
    let key = rustls::crypto::ring::sign::any_supported_type(&leaf.key()?)
        .context("loading the fake's signing key")?;
    let certified = Arc::new(CertifiedKey::new(chain, key));
    let config = builder()?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Fixed(certified)));
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// A leaf that is not DER at all (a TLS session that gets through the
/// handshake messages but whose certificate does not parse).
pub fn unparsable_leaf() -> Vec<CertificateDer<'static>> {
    let mut junk = b"this is not a certificate ".repeat(20);
    junk.insert(0, 0x30); // looks like a SEQUENCE for one byte
    vec![CertificateDer::from(junk)]
}

/// `leaf`'s chain, its CA repeated until the chain is at least `bytes` long.
pub fn huge_chain(leaf: &Leaf, bytes: usize) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let mut chain = leaf.chain()?;
    let ca = chain.last().cloned().context("the chain has a CA")?;
    let mut total: usize = chain.iter().map(|c| c.len()).sum();
    while total < bytes {
        total += ca.len();
        chain.push(ca.clone());
    }
    Ok(chain)
}

/// Always the same certificate, whatever the client asks.
#[derive(Debug)]
struct Fixed(Arc<CertifiedKey>);

impl ResolvesServerCert for Fixed {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.clone())
    }
}

/// A fatal `handshake_failure` alert, whatever the client sent.
pub fn alert_handshake_failure(_record: &[u8]) -> Vec<u8> {
    alert(0x0303, ALERT_HANDSHAKE_FAILURE)
}

/// An SMTP reply where the ServerHello should be.
pub fn plaintext(_record: &[u8]) -> Vec<u8> {
    b"554 5.7.0 TLS is not available here\r\n".to_vec()
}

/// Bytes that are neither TLS nor SMTP.
pub fn garbage(_record: &[u8]) -> Vec<u8> {
    (0..512u16)
        .map(|i| (i.wrapping_mul(151) % 251) as u8)
        .collect()
}

/// A TLS 1.2 ServerHello choosing one of the client's TLS 1.2 suites, then
/// a fatal `handshake_failure` alert: the handshake dies in its middle.
/// A hello that does not parse gets the alert alone.
pub fn server_hello_then_alert(record: &[u8]) -> Vec<u8> {
    let mut out = match parse_client_hello(record).and_then(|h| tls12_suite(&h.suites)) {
        Some(suite) => tls12_server_hello(suite),
        None => Vec::new(),
    };
    out.extend(alert(0x0303, ALERT_HANDSHAKE_FAILURE));
    out
}

/// A TLS 1.2 suite the client offered, ECDHE-RSA-AES128-GCM first.
fn tls12_suite(offered: &[u16]) -> Option<u16> {
    const PREFERRED: [u16; 4] = [0xc02f, 0xc030, 0xc02b, 0xcca8];
    PREFERRED
        .iter()
        .copied()
        .find(|s| offered.contains(s))
        .or_else(|| {
            offered
                .iter()
                .copied()
                .find(|s| s >> 8 != 0x13 && !matches!(s, 0x00ff | 0x5600))
        })
}

/// A TLS 1.2 ServerHello record: no session id, null compression, the
/// renegotiation_info extension (empty).
fn tls12_server_hello(suite: u16) -> Vec<u8> {
    let mut body = vec![3, 3];
    body.extend((0..32u8).map(|i| i.wrapping_mul(29) ^ 0x3c)); // random
    body.push(0); // session id
    body.extend_from_slice(&suite.to_be_bytes());
    body.push(0); // compression
    body.extend_from_slice(&[0, 5, 0xff, 0x01, 0, 1, 0]); // renegotiation_info
    let mut record = vec![0x16, 3, 3];
    record.extend_from_slice(&len16(body.len() + 4));
    record.extend_from_slice(&[2, 0]);
    record.extend_from_slice(&len16(body.len()));
    record.extend_from_slice(&body);
    record
}

/// Lengths here are of fixed, small messages.
fn len16(len: usize) -> [u8; 2] {
    u16::try_from(len).unwrap_or(u16::MAX).to_be_bytes()
}
