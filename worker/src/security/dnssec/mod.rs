//! A DNSSEC-validating resolver for the mail path's security facts: the
//! status of a domain's MX RRset and of an exchange's A/AAAA, and the TLSA
//! RRset of `_25._tcp.<mx>` (RFC 7672 §2.2).
//!
//! hickory validates itself (feature `dnssec-ring`): it sends queries with
//! the DO bit to the configured servers and builds the DNSKEY/DS chain from
//! the trust anchor down, so the servers only need to answer DNSSEC queries
//! (any recursive resolver, or an authoritative server holding every zone of
//! the chain). The trust anchor is the IANA root by default (built into
//! hickory) or a file of **DNSKEY records in zone-file format**
//! (`. 3600 IN DNSKEY 257 3 13 <base64>`, one per line, the class is
//! required, DS records are not accepted; a record owned by the root anchors
//! the whole tree, others anchor their own name).
//!
//! Statuses come from hickory's proofs: positive answers from the records'
//! [`Proof`], denials (NXDOMAIN/NODATA) from the NSEC/NSEC3 records that
//! prove them. Every non-secure status carries a [`DnssecReason`]. An answer
//! hickory calls bogus, or that a (validating) resolver answers SERVFAIL, is
//! diagnosed by [`crate::security::dnssec::diagnose`]: `bogus` only when a fault is
//! seen on data that arrived, `indeterminate` when part of the chain could
//! not be fetched. Before the first verdict the resolvers are checked once
//! ([`crate::security::dnssec::check`]); when they cannot support validation every
//! verdict is `indeterminate` with the check's reason.
//!
//! Never fails on an answer and never panics on peer data: every outcome is
//! a value.

pub mod check;
pub mod diagnose;
mod verdict;
pub mod wire;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use hickory_resolver::proto::dnssec::TrustAnchors;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use mxscope_common::encoding::hex;
use mxscope_common::record::security_dns::{DnssecReason, DnssecStatus, ResolverCheck, TlsaRecord};
use mxscope_common::snake;
use tokio::sync::OnceCell;

use crate::dns::{hickory_resolver, resolver_parts, DnsConfig, DnsSetupError, ResolverParts};
use crate::security::dnssec::diagnose::{walk, Anchors, Finding};
use crate::security::dnssec::wire::Wire;
pub(crate) use verdict::fqdn;
use verdict::{classify, insecure_reason, proof_status};
pub use verdict::{dane_applies, weakest, weakest_verdict};

/// Cached responses (DNSKEY and DS of shared parents are asked often).
const CACHE_SIZE: u64 = 4096;

/// Errors building the validating resolver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecureDnsError {
    /// The trust anchor file could not be read or parsed; it must hold
    /// DNSKEY records in zone-file format.
    #[error("reading the trust anchor {path}: {reason}")]
    TrustAnchor { path: String, reason: String },
    /// The trust anchor file holds no DNSKEY record; add the root's KSK.
    #[error("the trust anchor {0} holds no DNSKEY record")]
    EmptyTrustAnchor(String),
    /// The system resolver configuration could not be read; pass `--resolver`.
    #[error("reading the system resolver configuration: {0}")]
    SystemConfig(String),
    /// hickory refused the configuration; check the resolver addresses.
    #[error("building the resolver: {0}")]
    Build(String),
}

/// What the TLSA lookup of `_25._tcp.<mx>` gave (RFC 7672 §2.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsaLookup {
    /// A secure TLSA RRset.
    Records(Vec<TlsaRecord>),
    /// Securely proven NXDOMAIN or NODATA: no TLSA.
    NoRecords,
    /// An answer or denial that is not secure: DANE does not apply.
    Insecure,
    /// SERVFAIL, timeout, bogus: the lookup failed (mail must not fall back
    /// to unauthenticated delivery). The detail and the DNSSEC reason.
    Failed(String, DnssecReason),
}

/// A DNSSEC status with the reason when it is not secure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Verdict {
    pub status: DnssecStatus,
    pub reason: Option<DnssecReason>,
}

impl Verdict {
    pub const SECURE: Self = Self {
        status: DnssecStatus::Secure,
        reason: None,
    };

    /// `indeterminate` for `reason`.
    pub fn indeterminate(reason: DnssecReason) -> Self {
        Self {
            status: DnssecStatus::Indeterminate,
            reason: Some(reason),
        }
    }
}

/// The classified answer to one query.
#[derive(Debug, Clone)]
pub(crate) enum Answer {
    /// Records of the asked type (CNAMEs followed), with their status.
    Records {
        records: Vec<Record>,
        status: DnssecStatus,
        why: Option<DnssecReason>,
    },
    /// NXDOMAIN (`nxdomain`) or NODATA, with the status of the denial.
    Empty {
        nxdomain: bool,
        status: DnssecStatus,
        why: Option<DnssecReason>,
    },
    /// No answer: `Bogus` or `Indeterminate`, the detail and the reason.
    Failed {
        status: DnssecStatus,
        reason: String,
        why: DnssecReason,
    },
}

impl Answer {
    pub(crate) fn status(&self) -> DnssecStatus {
        match self {
            Self::Records { status, .. }
            | Self::Empty { status, .. }
            | Self::Failed { status, .. } => *status,
        }
    }

    /// The status with its reason.
    pub(crate) fn verdict(&self) -> Verdict {
        let reason = match self {
            Self::Records { why, .. } | Self::Empty { why, .. } => *why,
            Self::Failed { why, .. } => Some(*why),
        };
        Verdict {
            status: self.status(),
            reason,
        }
    }
}

/// A validating resolver (separate from [`crate::dns::MxResolver`], whose
/// answers stay unvalidated).
#[derive(Debug, Clone)]
pub struct SecureResolver {
    resolver: TokioResolver,
    lookup_deadline: Duration,
    /// The same servers, query by query (self-check, diagnosis).
    wire: Wire,
    anchors: Anchors,
    /// A known signed name the self-check asks, when configured.
    signed_name: Option<Name>,
    /// The self-check, run once before the first verdict.
    check: Arc<OnceCell<ResolverCheck>>,
    /// Labels of the servers for the check (`system` when not configured).
    labels: Vec<String>,
    /// The failed check was reported (it is said once).
    warned: Arc<std::sync::atomic::AtomicBool>,
}

impl SecureResolver {
    /// Ask `config.resolvers` (the system's when empty), validating from
    /// `trust_anchor` (a DNSKEY file) or the IANA root.
    pub fn new(config: &DnsConfig, trust_anchor: Option<&Path>) -> Result<Self, SecureDnsError> {
        match trust_anchor {
            Some(path) => {
                let text =
                    std::fs::read_to_string(path).map_err(|e| SecureDnsError::TrustAnchor {
                        path: path.display().to_string(),
                        reason: e.to_string(),
                    })?;
                Self::build(config, Some((&text, &path.display().to_string())))
            }
            None => Self::build(config, None),
        }
    }

    /// Like [`Self::new`], with the trust anchor's DNSKEY lines as text (a
    /// scan's options carry it so; the worker keeps nothing on disk).
    pub fn from_text(
        config: &DnsConfig,
        trust_anchor: Option<&str>,
    ) -> Result<Self, SecureDnsError> {
        Self::build(
            config,
            trust_anchor.map(|text| (text, "(trust anchor text)")),
        )
    }

    /// `anchor` is (DNSKEY text, where it came from).
    fn build(config: &DnsConfig, anchor: Option<(&str, &str)>) -> Result<Self, SecureDnsError> {
        let anchors = match anchor {
            Some((text, source)) => {
                let anchors: TrustAnchors = text.parse().map_err(
                    |e: hickory_resolver::proto::serialize::txt::ParseError| {
                        SecureDnsError::TrustAnchor {
                            path: source.to_string(),
                            reason: e.to_string(),
                        }
                    },
                )?;
                if anchors.is_empty() && !text.to_ascii_uppercase().contains("DNSKEY") {
                    return Err(SecureDnsError::EmptyTrustAnchor(source.to_string()));
                }
                anchors
            }
            None => TrustAnchors::default(),
        };
        let anchors = Arc::new(anchors);
        let anchor_set = Anchors::new(anchors.clone(), anchor.map(|(text, _)| text));
        let ResolverParts {
            name_servers,
            mut opts,
            timeout,
            attempts,
        } = resolver_parts(config).map_err(|e| match e {
            DnsSetupError::Build(reason) => SecureDnsError::Build(reason),
            other => SecureDnsError::SystemConfig(other.to_string()),
        })?;
        opts.cache_size = CACHE_SIZE;
        opts.preserve_intermediates = true;
        opts.validate = true;
        let servers: Vec<SocketAddr> = name_servers
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map(|c| c.port).unwrap_or(53);
                SocketAddr::new(ns.ip, port)
            })
            .collect();
        let labels = if config.resolvers.is_empty() {
            vec!["system".to_string()]
        } else {
            servers.iter().map(ToString::to_string).collect()
        };
        let resolver =
            hickory_resolver(name_servers, opts, Some(anchors)).map_err(SecureDnsError::Build)?;
        // Validation walks up to the root: several lookups per answer.
        let lookup_deadline = timeout * attempts * 4 + Duration::from_secs(1);
        Ok(Self {
            resolver,
            lookup_deadline,
            wire: Wire::new(servers, timeout),
            anchors: anchor_set,
            signed_name: None,
            check: Arc::new(OnceCell::new()),
            labels,
            warned: Arc::new(std::sync::atomic::AtomicBool::new(false)),
        })
    }

    /// Have the self-check also ask for `name`, a known signed name under
    /// the trust anchor (`--dnssec-check-name`).
    pub fn with_signed_name(mut self, name: Option<&str>) -> Self {
        self.signed_name = name.and_then(fqdn);
        self
    }

    /// The resolver self-check, run on first use and then remembered.
    pub async fn resolver_check(&self) -> &ResolverCheck {
        self.check
            .get_or_init(|| {
                check::self_check(
                    &self.wire,
                    &self.anchors,
                    self.signed_name.as_ref(),
                    self.labels.clone(),
                )
            })
            .await
    }

    /// True exactly once: whoever gets it reports a failed check.
    pub fn claim_warning(&self) -> bool {
        !self.warned.swap(true, std::sync::atomic::Ordering::Relaxed)
    }

    /// `Some(verdict)` when the self-check failed: every verdict is then
    /// `indeterminate` with its reason, nothing is asked.
    async fn unusable(&self) -> Option<Verdict> {
        let check = self.resolver_check().await;
        (!check.usable)
            .then(|| Verdict::indeterminate(check.reason.unwrap_or(DnssecReason::LookupFailed)))
    }

    /// DNSSEC status of `domain`'s MX RRset (or of its denial).
    pub async fn mx_status(&self, domain: &str) -> Verdict {
        if let Some(verdict) = self.unusable().await {
            return verdict;
        }
        match fqdn(domain) {
            Some(name) => self.query(&name, RecordType::MX).await.verdict(),
            None => Verdict::indeterminate(DnssecReason::LookupFailed),
        }
    }

    /// DNSSEC status of `name`'s addresses: A and AAAA both (each answer or
    /// denial), the weakest of the two.
    pub async fn address_status(&self, name: &str) -> Verdict {
        if let Some(verdict) = self.unusable().await {
            return verdict;
        }
        let Some(name) = fqdn(name) else {
            return Verdict::indeterminate(DnssecReason::LookupFailed);
        };
        let (a, aaaa) = tokio::join!(
            self.query(&name, RecordType::A),
            self.query(&name, RecordType::AAAA)
        );
        weakest_verdict([a.verdict(), aaaa.verdict()])
    }

    /// The TLSA RRset of `_25._tcp.<mx>`. Call it only when the MX RRset
    /// and the exchange's addresses are secure (RFC 7672 §2.2).
    pub async fn tlsa(&self, mx: &str) -> TlsaLookup {
        if let Some(verdict) = self.unusable().await {
            return TlsaLookup::Failed(
                "the resolver self-check failed".into(),
                verdict.reason.unwrap_or(DnssecReason::LookupFailed),
            );
        }
        let Some(name) = fqdn(&format!("_25._tcp.{}", mx.trim_end_matches('.'))) else {
            return TlsaLookup::Failed(
                format!("invalid MX name {mx:?}"),
                DnssecReason::LookupFailed,
            );
        };
        match self.query(&name, RecordType::TLSA).await {
            Answer::Records {
                records,
                status,
                why,
            } => match status {
                DnssecStatus::Secure => TlsaLookup::Records(
                    records
                        .iter()
                        .filter_map(|r| match &r.data {
                            RData::TLSA(t) => Some(TlsaRecord {
                                usage: u8::from(t.cert_usage),
                                selector: u8::from(t.selector),
                                matching_type: u8::from(t.matching),
                                data_hex: hex(&t.cert_data),
                            }),
                            _ => None,
                        })
                        .collect(),
                ),
                DnssecStatus::Insecure => TlsaLookup::Insecure,
                other => TlsaLookup::Failed(
                    format!("TLSA answer is {}", snake(&other)),
                    why.unwrap_or(DnssecReason::ValidationFailed),
                ),
            },
            Answer::Empty { status, why, .. } => match status {
                DnssecStatus::Secure => TlsaLookup::NoRecords,
                DnssecStatus::Insecure => TlsaLookup::Insecure,
                other => TlsaLookup::Failed(
                    format!("TLSA denial is {}", snake(&other)),
                    why.unwrap_or(DnssecReason::NsecProofFailed),
                ),
            },
            Answer::Failed { reason, why, .. } => TlsaLookup::Failed(reason, why),
        }
    }

    /// One bounded, validated lookup, classified, with the reason of a
    /// non-secure status (a bogus or SERVFAIL answer diagnosed).
    pub(crate) async fn query(&self, name: &Name, rtype: RecordType) -> Answer {
        let answer = self.lookup(name, rtype).await;
        let status = answer.status();
        let servfail = matches!(
            &answer,
            Answer::Failed {
                why: DnssecReason::LookupServfail,
                ..
            }
        );
        if status != DnssecStatus::Bogus && !servfail {
            return answer;
        }
        let finding = walk(&self.wire, &self.anchors, name, rtype).await;
        let denial = matches!(answer, Answer::Empty { .. });
        let (status, why) = match (status, finding) {
            (_, Finding::Unavailable(reason)) => (DnssecStatus::Indeterminate, reason),
            (_, Finding::Fault(reason)) => (DnssecStatus::Bogus, reason),
            (DnssecStatus::Bogus, _) if denial => {
                (DnssecStatus::Bogus, DnssecReason::NsecProofFailed)
            }
            (DnssecStatus::Bogus, _) => (DnssecStatus::Bogus, DnssecReason::ValidationFailed),
            (_, _) => (DnssecStatus::Indeterminate, DnssecReason::LookupServfail),
        };
        match answer {
            Answer::Records { records, .. } => Answer::Records {
                records,
                status,
                why: Some(why),
            },
            Answer::Empty { nxdomain, .. } => Answer::Empty {
                nxdomain,
                status,
                why: Some(why),
            },
            Answer::Failed { reason, .. } => Answer::Failed {
                status,
                reason: format!("{reason} ({})", why.as_str()),
                why,
            },
        }
    }

    /// One bounded, validated lookup, classified from hickory's proofs.
    async fn lookup(&self, name: &Name, rtype: RecordType) -> Answer {
        let lookup = tokio::time::timeout(
            self.lookup_deadline,
            self.resolver.lookup(name.clone(), rtype),
        )
        .await;
        match lookup {
            Ok(Ok(lookup)) => {
                let records: Vec<Record> = lookup
                    .answers()
                    .iter()
                    .filter(|r| r.record_type() != RecordType::RRSIG)
                    .cloned()
                    .collect();
                let status = weakest(records.iter().map(|r| proof_status(r.proof)));
                let wanted: Vec<Record> = records
                    .into_iter()
                    .filter(|r| r.record_type() == rtype)
                    .collect();
                let why = insecure_reason(status);
                if wanted.is_empty() {
                    Answer::Empty {
                        nxdomain: false,
                        status,
                        why,
                    }
                } else {
                    Answer::Records {
                        records: wanted,
                        status,
                        why,
                    }
                }
            }
            Ok(Err(e)) => classify(&e),
            Err(_) => Answer::Failed {
                status: DnssecStatus::Indeterminate,
                reason: "timed out".into(),
                why: DnssecReason::LookupTimeout,
            },
        }
    }
}

#[cfg(test)]
mod tests;
