//! The domain record (`kind: domain`): what DNS said about a domain's MX
//! (status, exchanges, addresses, anomalies) and what the domain publishes
//! about transport security.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::{TargetRecord, SCHEMA_VERSION};
use crate::record::security_dns::{DnssecReason, DnssecStatus, ResolverCheck};
use crate::record::security_policy::{MtaSts, TlsRpt};

/// One record per (scan, vantage, domain).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DomainRecord {
    /// Always `"domain"`.
    pub kind: String,
    pub schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scan: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vantage: Option<String>,
    /// The domain as an A-label (ASCII).
    pub domain: String,
    /// The domain as the user wrote it, when it differs (IDN U-label).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub domain_unicode: Option<String>,
    pub dns: DnsResult,
    /// Embedded only in `mxscope-worker probe` output.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<TargetRecord>,
    /// DNSSEC, MTA-STS and TLS-RPT facts; present when the checks were on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<DomainSecurity>,
}

impl DomainRecord {
    pub fn new(domain: String, dns: DnsResult) -> Self {
        Self {
            kind: "domain".into(),
            schema_version: SCHEMA_VERSION,
            scan: None,
            vantage: None,
            domain,
            domain_unicode: None,
            dns,
            targets: Vec::new(),
            security: None,
        }
    }
}

/// What a domain publishes about transport security (schema 2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DomainSecurity {
    /// DNSSEC status of the domain's MX RRset (or of its denial).
    pub dnssec_mx: DnssecStatus,
    /// DNSSEC status of each exchange's A/AAAA (the weakest of the two).
    #[serde(default)]
    pub dnssec_exchanges: BTreeMap<String, DnssecStatus>,
    /// Why `dnssec_mx` is not `secure`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dnssec_mx_reason: Option<DnssecReason>,
    /// Why an exchange's addresses are not `secure` (only those exchanges).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub dnssec_exchange_reasons: BTreeMap<String, DnssecReason>,
    /// The resolver self-check of the worker that made this record; carried
    /// by a few records of each worker and scan (the first, then one in
    /// [`crate::record::security_dns::RESOLVER_CHECK_EVERY`]), read by the report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver_check: Option<ResolverCheck>,
    /// The MTA-STS verdict. In `mxscope-worker probe` output it is final
    /// (the targets' certificates are evaluated). In a distributed scan the
    /// resolve task has no targets: `per_mx` then says "not probed" and an
    /// `enforce` verdict is provisional — the report's join must re-evaluate
    /// `policy` against the scan's target records.
    pub mta_sts: MtaSts,
    pub tls_rpt: TlsRpt,
}

/// Status of a domain's MX resolution.
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
pub enum DnsStatus {
    /// An answer was obtained (MX, null MX, or an implicit MX from A/AAAA).
    Ok,
    /// The domain does not exist.
    Nxdomain,
    /// The domain exists but has neither MX nor A/AAAA.
    Nodata,
    Servfail,
    Timeout,
    Refused,
    /// Any other resolver failure (see `error`).
    Error,
    /// On an exclusion list: never resolved (`error` names the entry).
    Excluded,
}

/// What DNS said about a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DnsResult {
    pub status: DnsStatus,
    /// RFC 7505 null MX (`0 .`): the domain accepts no mail.
    pub null_mx: bool,
    /// RFC 5321 §5.1: no MX, the domain's own A/AAAA act as its MX.
    pub implicit_mx: bool,
    /// Exchanges ordered by preference, then name.
    pub mx: Vec<MxEntry>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Facts about the DNS data that a correct zone would not show.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anomalies: Vec<DnsAnomaly>,
}

/// The probe targets of some resolutions: every address they name, with
/// every MX name that points at it (one target per IP, DESIGN §2). The one
/// dedup of the coordinator's planning and of `mxscope-worker probe`.
pub fn targets_of<'a>(
    results: impl IntoIterator<Item = &'a DnsResult>,
) -> BTreeMap<IpAddr, BTreeSet<String>> {
    let mut targets: BTreeMap<IpAddr, BTreeSet<String>> = BTreeMap::new();
    for result in results {
        for mx in &result.mx {
            for ip in &mx.addresses {
                targets.entry(*ip).or_default().insert(mx.exchange.clone());
            }
        }
    }
    targets
}

impl DnsResult {
    /// A failed resolution with its status and reason.
    pub fn failed(status: DnsStatus, error: impl Into<String>) -> Self {
        Self {
            status,
            null_mx: false,
            implicit_mx: false,
            mx: Vec::new(),
            error: Some(error.into()),
            anomalies: Vec::new(),
        }
    }
}

/// One exchange of a domain.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MxEntry {
    pub preference: u16,
    /// The exchange name, lowercase, without trailing dot.
    pub exchange: String,
    pub addresses: Vec<IpAddr>,
    /// Status of the exchange's own A/AAAA lookup (`ok` when it has addresses).
    pub status: DnsStatus,
}

/// A DNS fact worth reporting that does not stop the measurement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum DnsAnomaly {
    /// The MX target is an alias (RFC 2181 §10.3 forbids it).
    MxIsCname { exchange: String, target: String },
    /// The MX target has neither A nor AAAA.
    MxWithoutAddress { exchange: String },
    /// A null MX mixed with other MX records (RFC 7505 §3).
    NullMxWithOthers,
    /// The exchange had more addresses than a probe keeps
    /// (`worker::dns::MAX_ADDRESSES_PER_EXCHANGE`); the lowest were kept.
    AddressesTruncated { exchange: String, total: usize },
}
