//! DNS security facts of a domain's mail path: DNSSEC status of the MX and
//! address RRsets, DANE for SMTP (RFC 7672) per (MX, IP), and reverse DNS
//! with forward confirmation per probed IP.
//!
//! Plain serde types; the worker's `dnssec`, `dane` and `rdns` modules fill
//! them. Names and variants are part of the record contract.

use serde::{Deserialize, Serialize};

/// DNSSEC validation state of one RRset (RFC 4033 §5, RFC 4035 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DnssecStatus {
    /// A chain of signed DNSKEY and DS records from the trust anchor covers
    /// the RRset (or its proven absence).
    Secure,
    /// Provably unsigned: a delegation without DS on the way down.
    Insecure,
    /// Should be signed but fails validation (bad signature, DS mismatch,
    /// missing RRSIG, expired signature).
    Bogus,
    /// Could not be decided: the lookup failed (SERVFAIL, timeout, refused)
    /// or the validation data could not be obtained.
    Indeterminate,
}

/// The verdict of DANE for SMTP on one (MX, IP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DaneVerdict {
    /// A usable TLSA record (usage 2 or 3) matches the chain the server presented.
    DaneValid,
    /// Usable TLSA records exist and none matches (or the usage-2 chain or
    /// name check failed).
    DaneMismatch,
    /// The TLSA lookup was secure and found nothing usable (NXDOMAIN, NODATA,
    /// or only usages 0/1 and unknown parameters).
    NoTlsa,
    /// The TLSA lookup failed (SERVFAIL, timeout, bogus): RFC 7672 §2.2 says
    /// mail must not be sent in the clear nor be treated as DANE-less.
    TlsaLookupFailed,
    /// The MX name or its addresses are not DNSSEC-secure: DANE does not
    /// apply (RFC 7672 §2.2.1), TLSA is not looked up.
    NotApplicableInsecure,
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TlsaRecord {
    /// 0 PKIX-TA, 1 PKIX-EE, 2 DANE-TA, 3 DANE-EE.
    pub usage: u8,
    /// 0 full certificate, 1 SubjectPublicKeyInfo.
    pub selector: u8,
    /// 0 exact, 1 SHA-256, 2 SHA-512.
    pub matching_type: u8,
    /// The association data, lowercase hex.
    pub data_hex: String,
}

/// DANE result of one (MX, IP).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DaneResult {
    pub verdict: DaneVerdict,
    /// The TLSA RRset of `_25._tcp.<mx>` (every record, usable or not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlsa: Vec<TlsaRecord>,
    /// Human-readable reason (which record matched, why none did, the lookup error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The verdict of reverse DNS on one IP.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ReverseDnsVerdict {
    /// A PTR name resolves back to the IP (forward-confirmed reverse DNS).
    FcrdnsOk,
    /// PTR names exist, none resolves back to the IP.
    PtrMismatch,
    /// No PTR record (NXDOMAIN or NODATA).
    NoPtr,
    /// The PTR lookup failed (SERVFAIL, timeout, refused, bogus).
    LookupFailed,
}

/// Reverse DNS of one IP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReverseDns {
    pub verdict: ReverseDnsVerdict,
    /// The PTR names (lowercase, no trailing dot), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
