//! DNS security facts of a domain's mail path: DNSSEC status of the MX and
//! address RRsets, DANE for SMTP (RFC 7672) per (MX, IP), and reverse DNS
//! with forward confirmation per probed IP.
//!
//! Plain serde types; the worker's `dnssec`, `dane` and `rdns` modules fill
//! them. Names and variants are part of the record contract.

use serde::{Deserialize, Serialize};

/// DNSSEC validation state of one RRset (RFC 4033 §5, RFC 4035 §4.3).
/// `bogus` says what the domain did (its signatures or delegation fail);
/// `indeterminate` says the measurement could not be made (the resolver
/// could not provide the chain). Every non-`secure` state carries a
/// [`DnssecReason`] beside it.
#[derive(
    Debug,
    Clone,
    Copy,
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

/// Why an RRset is not `secure`: a short machine-readable reason, recorded
/// beside every non-secure [`DnssecStatus`] and DANE verdict, counted in the
/// report. Names are part of the record contract.
#[derive(
    Debug,
    Clone,
    Copy,
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
#[non_exhaustive]
pub enum DnssecReason {
    // --- insecure -------------------------------------------------------
    /// Provably unsigned: a delegation on the way down has no DS (`insecure`).
    InsecureDelegation,
    // --- indeterminate: the resolver could not provide the chain ----------
    /// The trust anchor's DNSKEY RRset could not be fetched (REFUSED,
    /// SERVFAIL, NODATA: e.g. an authoritative-only server that does not
    /// serve the anchor's zone).
    AnchorDnskeyUnavailable,
    /// The anchor zone's DNSKEY RRset matches none of the configured trust
    /// anchor keys (wrong `--trust-anchor` for these servers).
    AnchorMismatch,
    /// The resolver answers without the RRSIGs (and NSEC records) that
    /// validation needs: it strips DNSSEC records.
    DnssecRecordsStripped,
    /// A query needed for the verdict was answered REFUSED.
    LookupRefused,
    /// A query needed for the verdict was answered SERVFAIL (and, asked
    /// again with checking disabled, still gave no data).
    LookupServfail,
    /// A query needed for the verdict timed out.
    LookupTimeout,
    /// A query needed for the verdict failed otherwise (network error,
    /// truncated answer with TCP failing, malformed answer).
    LookupFailed,
    // --- bogus: a real validation failure -------------------------------
    /// A DS record exists for a zone on the way, and none of the zone's
    /// DNSKEYs matches it.
    DsMismatch,
    /// A signed zone (DS in its parent) serves the RRset without RRSIG.
    RrsigMissing,
    /// Every RRSIG over the RRset has expired.
    SignatureExpired,
    /// Every RRSIG over the RRset is not yet valid.
    SignatureNotYetValid,
    /// The RRSIG does not verify with the zone's key.
    SignatureInvalid,
    /// The RRSIG names a key tag that no DNSKEY of the signer zone has.
    DnskeyMissing,
    /// The NSEC/NSEC3 records of a denial do not prove it.
    NsecProofFailed,
    /// The validator rejected the answer and the chain, fetched again,
    /// showed no more specific fault.
    ValidationFailed,
}

impl DnssecReason {
    /// Whether the reason is a failure of the measurement (the verdict is
    /// `indeterminate`), not of the domain.
    pub fn is_indeterminate(self) -> bool {
        matches!(
            self,
            Self::AnchorDnskeyUnavailable
                | Self::AnchorMismatch
                | Self::DnssecRecordsStripped
                | Self::LookupRefused
                | Self::LookupServfail
                | Self::LookupTimeout
                | Self::LookupFailed
        )
    }

    /// The record name (`ds_mismatch`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::InsecureDelegation => "insecure_delegation",
            Self::AnchorDnskeyUnavailable => "anchor_dnskey_unavailable",
            Self::AnchorMismatch => "anchor_mismatch",
            Self::DnssecRecordsStripped => "dnssec_records_stripped",
            Self::LookupRefused => "lookup_refused",
            Self::LookupServfail => "lookup_servfail",
            Self::LookupTimeout => "lookup_timeout",
            Self::LookupFailed => "lookup_failed",
            Self::DsMismatch => "ds_mismatch",
            Self::RrsigMissing => "rrsig_missing",
            Self::SignatureExpired => "signature_expired",
            Self::SignatureNotYetValid => "signature_not_yet_valid",
            Self::SignatureInvalid => "signature_invalid",
            Self::DnskeyMissing => "dnskey_missing",
            Self::NsecProofFailed => "nsec_proof_failed",
            Self::ValidationFailed => "validation_failed",
        }
    }
}

/// Every reason, in report order.
pub const DNSSEC_REASONS: [DnssecReason; 16] = [
    DnssecReason::InsecureDelegation,
    DnssecReason::AnchorDnskeyUnavailable,
    DnssecReason::AnchorMismatch,
    DnssecReason::DnssecRecordsStripped,
    DnssecReason::LookupRefused,
    DnssecReason::LookupServfail,
    DnssecReason::LookupTimeout,
    DnssecReason::LookupFailed,
    DnssecReason::DsMismatch,
    DnssecReason::RrsigMissing,
    DnssecReason::SignatureExpired,
    DnssecReason::SignatureNotYetValid,
    DnssecReason::SignatureInvalid,
    DnssecReason::DnskeyMissing,
    DnssecReason::NsecProofFailed,
    DnssecReason::ValidationFailed,
];

/// A worker puts its [`ResolverCheck`] on its first domain record of a scan
/// and then on one in this many, so that the check reaches the coordinator
/// even when some tasks are lost and re-run elsewhere.
pub const RESOLVER_CHECK_EVERY: u64 = 256;

/// What the resolver self-check found (run once per scan and worker before
/// any DNSSEC verdict): can the configured resolvers support validation?
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolverCheck {
    /// The resolvers can support validation. When false, every DNSSEC and
    /// DANE verdict of this vantage is `indeterminate` with [`Self::reason`].
    pub usable: bool,
    /// Why not (when not usable).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DnssecReason>,
    /// The resolvers asked (`system` for the system configuration).
    pub resolvers: Vec<String>,
    /// The trust anchor's zone (`.` for the IANA root).
    pub anchor_zone: String,
    /// The response code of the anchor DNSKEY query (`NOERROR`, `REFUSED`,
    /// ...); `None` when nothing answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnskey_rcode: Option<String>,
    /// DNSKEY records came back.
    pub dnskey: bool,
    /// One of them is a configured trust anchor key.
    pub anchor_matches: bool,
    /// RRSIGs came back with the DNSKEY RRset (DO set).
    pub rrsig: bool,
    /// The resolver set the AD bit (it validates itself; informational:
    /// mxscope validates on its own either way).
    pub ad: bool,
    /// The same query over TCP worked (large DNSSEC answers need it).
    pub tcp: bool,
    /// The known signed name asked, when one was configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_name: Option<String>,
    /// Its answer carried RRSIGs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed_name_rrsig: Option<bool>,
    /// One readable sentence.
    pub detail: String,
}

/// The verdict of DANE for SMTP on one (MX, IP).
#[derive(
    Debug,
    Clone,
    Copy,
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
    /// The MX host's A/AAAA answers validate as bogus: RFC 7672 §2.1.1
    /// treats the host as unusable (a lookup failure), not as unsigned.
    AddressBogus,
}

/// One TLSA record (RFC 6698 §2.1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DaneResult {
    pub verdict: DaneVerdict,
    /// The TLSA RRset of `_25._tcp.<mx>` (every record, usable or not).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tlsa: Vec<TlsaRecord>,
    /// Human-readable reason (which record matched, why none did, the lookup error).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The DNSSEC reason behind a `tlsa_lookup_failed`, `address_bogus` or
    /// `not_applicable_insecure` verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<DnssecReason>,
}

/// The verdict of reverse DNS on one IP.
#[derive(
    Debug,
    Clone,
    Copy,
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
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReverseDns {
    pub verdict: ReverseDnsVerdict,
    /// The PTR names (lowercase, no trailing dot), sorted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub names: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}
