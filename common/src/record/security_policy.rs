//! What a domain publishes about transport security beside its MX: MTA-STS
//! (RFC 8461) and SMTP TLS Reporting (RFC 8460).
//!
//! Field names are part of the record contract (see [`crate::record`]):
//! add fields freely, rename none.

use serde::{Deserialize, Serialize};

/// The MTA-STS verdict of one domain.
///
/// The split between [`TxtWithoutPolicy`](MtaStsVerdict::TxtWithoutPolicy)
/// and [`PolicyFetchFailed`](MtaStsVerdict::PolicyFetchFailed): *without
/// policy* means nobody serves one at all — `mta-sts.<domain>` has no address
/// (NXDOMAIN or NODATA), or none of its addresses accepts a TCP connection on
/// port 443 (refused, unreachable, connect timeout). Everything after a TCP
/// connection was made (TLS, certificate, HTTP status, redirect, size,
/// content type, syntax), and a DNS failure (SERVFAIL, timeout) for the
/// policy host, is *fetch failed*: something answers but no usable policy
/// comes out, or the absence is not proven.
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
pub enum MtaStsVerdict {
    /// `mode: enforce`, and every MX matches a pattern and shows a
    /// certificate an enforcing sender accepts.
    EnforceOk,
    /// `mode: enforce`, but at least one MX would be refused by an enforcing
    /// sender (see `per_mx[].reason`).
    EnforceWouldFail,
    /// `mode: testing`: senders report failures but deliver anyway.
    Testing,
    /// `mode: none`: the domain withdrew its policy.
    None,
    /// A valid `_mta-sts` TXT record, but no policy host: no address, or
    /// nothing accepts connections on port 443.
    TxtWithoutPolicy,
    /// A valid TXT record, and the policy host answered, but no valid policy
    /// came out (see `detail`).
    PolicyFetchFailed,
    /// `_mta-sts` TXT records starting with `v=STSv1` exist, but not exactly
    /// one valid one: senders treat the domain as having no policy.
    TxtInvalid,
    /// The `_mta-sts` TXT lookup failed (SERVFAIL, timeout): unknown.
    DnsError,
    /// No `_mta-sts` TXT record starting with `v=STSv1`.
    NoMtaSts,
}

/// MTA-STS policy mode (RFC 8461 §5).
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
pub enum PolicyMode {
    Enforce,
    Testing,
    None,
}

/// A parsed MTA-STS policy (`/.well-known/mta-sts.txt`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Policy {
    pub mode: PolicyMode,
    /// The `mx` patterns in order, lowercase, without trailing dot
    /// (`*.example.net` matches exactly one leftmost label).
    pub mx: Vec<String>,
    /// Seconds a sender may cache the policy (as published, not capped).
    pub max_age: u64,
}

/// How one MX fares against the policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MxPolicyCheck {
    /// The MX host name.
    pub mx: String,
    /// Whether the MX matches one of the policy's `mx` patterns.
    pub pattern_match: bool,
    /// Whether the certificate seen on every address of the MX has a valid
    /// chain and covers the MX name; `None` when no TLS session was seen
    /// (not probed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate_ok: Option<bool>,
    /// Why an enforcing sender would refuse this MX (absent when it would not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A domain's MTA-STS state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MtaSts {
    pub verdict: MtaStsVerdict,
    /// The `id` of the `_mta-sts` TXT record, when it was valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub txt_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
    /// One entry per MX (empty without a policy in `enforce` or `testing`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub per_mx: Vec<MxPolicyCheck>,
    /// The reason behind a verdict other than `enforce_ok`, `testing`,
    /// `none` and `no_mta_sts`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// The TLS-RPT verdict of one domain.
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
pub enum TlsRptVerdict {
    /// Exactly one valid `v=TLSRPTv1` record.
    Valid,
    /// No `_smtp._tls` TXT record starting with `v=TLSRPTv1`.
    Absent,
    /// `v=TLSRPTv1` records exist, but not exactly one valid one (see `detail`).
    Invalid,
    /// The TXT lookup failed (SERVFAIL, timeout): unknown.
    DnsError,
}

/// A domain's SMTP TLS Reporting record (`_smtp._tls.<domain>` TXT).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TlsRpt {
    pub verdict: TlsRptVerdict,
    /// A `v=TLSRPTv1` record exists (valid or not).
    pub present: bool,
    /// The report URIs (`mailto:` / `https:`) of a valid record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rua: Vec<String>,
    /// Why the record is invalid, or the DNS failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_snake_case() {
        let json = serde_json::to_string(&MtaStsVerdict::EnforceWouldFail).unwrap_or_default();
        assert_eq!(json, "\"enforce_would_fail\"");
        let json = serde_json::to_string(&MtaStsVerdict::TxtWithoutPolicy).unwrap_or_default();
        assert_eq!(json, "\"txt_without_policy\"");
        let json = serde_json::to_string(&TlsRptVerdict::DnsError).unwrap_or_default();
        assert_eq!(json, "\"dns_error\"");
    }

    #[test]
    fn a_record_round_trips() {
        let sts = MtaSts {
            verdict: MtaStsVerdict::EnforceOk,
            txt_id: Some("20240101".into()),
            policy: Some(Policy {
                mode: PolicyMode::Enforce,
                mx: vec!["mx.example.net".into(), "*.example.org".into()],
                max_age: 86400,
            }),
            per_mx: vec![MxPolicyCheck {
                mx: "mx.example.net".into(),
                pattern_match: true,
                certificate_ok: Some(true),
                reason: None,
            }],
            detail: None,
        };
        let json = serde_json::to_string(&sts).unwrap_or_default();
        assert!(json.contains("\"mode\":\"enforce\""), "{json}");
        let back: MtaSts = serde_json::from_str(&json).expect("round trip");
        assert_eq!(back, sts);
    }
}
