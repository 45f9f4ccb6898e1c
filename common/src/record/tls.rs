//! The TLS part of a target record: handshake facts, certificate
//! verification, the chain's certificates and keys, version support.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use crate::record::tls_facts::Verification;
use crate::record::tls_facts::{KeyExchange, TlsSource};

/// What the TLS handshake showed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsFacts {
    /// `TLSv1.2`, `TLSv1.3`.
    pub version: String,
    /// IANA cipher suite name.
    pub cipher: String,
    /// Key-exchange group (`X25519`, `secp256r1`, ...), when known.
    pub group: Option<String>,
    pub verification: Verification,
    /// The verifier's own words, when not `valid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verification_detail: Option<String>,
    /// Whether the leaf certificate covers each MX name that points at the IP.
    pub name_match: BTreeMap<String, bool>,
    /// Leaf first, as the server sent it.
    pub chain: Vec<CertInfo>,
    /// A complete handshake, or the server's first flight only.
    #[serde(default, skip_serializing_if = "TlsSource::is_handshake")]
    pub source: TlsSource,
    /// How the key was agreed (from the suite, or TLS 1.3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_exchange: Option<KeyExchange>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_secrecy: Option<bool>,
    /// Size of the server's finite-field DH prime (DHE suites), in bits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dh_bits: Option<u32>,
    /// The finite-field DH group, when its prime is a known one
    /// (`ffdhe2048 (RFC 7919)`, `modp_1024 (RFC 2409 group 2)`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dh_group: Option<String>,
    /// The OCSP response the server stapled (RFC 6066 `status_request`);
    /// absent when it stapled none (or from first flights).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocsp: Option<OcspStaple>,
    /// The scheme of the server's handshake signature (`ECDSA_NISTP256_SHA256`,
    /// `RSA_PSS_SHA256`, ...), as rustls names it; absent from first flights.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_scheme: Option<String>,
}

/// A stapled OCSP response, as read (never fetched).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OcspStaple {
    /// `good`, `revoked`, `unknown` (the responder's word for the leaf), or
    /// `unsuccessful` (a responseStatus other than successful) and
    /// `unparsed` (not an OCSP response).
    pub status: String,
    /// RFC 3339.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub produced_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub this_update: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_update: Option<String>,
    /// The response names the leaf's serial number.
    pub for_leaf: bool,
    /// Its signature verifies with the issuer's key, or with a responder
    /// certificate it carries that the issuer signed; `None` when it could
    /// not be checked (no issuer in the chain, an algorithm ring lacks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verifies: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// One certificate of a chain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CertInfo {
    /// False when the DER did not parse; only `sha256` and `der_base64` are then set.
    pub parsed: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parse_error: Option<String>,
    pub subject: String,
    pub issuer: String,
    pub sans: Vec<String>,
    pub serial: String,
    /// RFC 3339.
    pub not_before: String,
    pub not_after: String,
    pub key: KeyInfo,
    pub signature_algorithm: String,
    /// SHA-256 of the DER, lowercase hex.
    pub sha256: String,
    /// SHA-256 of the SubjectPublicKeyInfo DER, lowercase hex.
    pub spki_sha256: String,
    pub self_signed: bool,
    /// The raw DER (base64), kept only for certificates that did not parse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub der_base64: Option<String>,
    /// Log ids (SHA-256 of the log's key, lowercase hex) of the signed
    /// certificate timestamps embedded in the certificate (RFC 6962 §3.3).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scts: Vec<String>,
}

/// Public key facts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct KeyInfo {
    /// `RSA`, `EC`, `Ed25519`, `Ed448`, `DSA`, or `unknown`.
    #[serde(rename = "type")]
    pub key_type: String,
    pub bits: Option<u32>,
    pub curve: Option<String>,
}

/// Support for one protocol version.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum VersionSupport {
    Supported,
    NotSupported,
    Error,
    #[default]
    NotTested,
}

/// Protocol version support, SSLv3 to TLS 1.3.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Protocols {
    pub ssl3: VersionSupport,
    pub tls1_0: VersionSupport,
    pub tls1_1: VersionSupport,
    pub tls1_2: VersionSupport,
    pub tls1_3: VersionSupport,
}
