//! One unit of a task's work — a domain to resolve or an address to probe —
//! and what every unit of the task shares: each ends as one record.

use std::net::IpAddr;
use std::sync::Arc;

use mxscope_common::politeness::exclusions::Exclusions;
use mxscope_common::politeness::{self, SkipReason};
use mxscope_common::{DnsResult, DnsStatus, DomainRecord, Outcome, TargetRecord};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tracing::warn;

use crate::dns::MxResolver;
use crate::fleet::pace::retry::{self, Gate, RetryPolicy};
use crate::probe::Prober;

/// What every item of a task shares, and every record carries.
#[derive(Debug)]
pub(super) struct Stamp {
    pub(super) scan: String,
    pub(super) vantage: String,
    pub(super) egress_blocked: bool,
    pub(super) prober: Prober,
    /// Present for resolve tasks.
    pub(super) resolver: Option<MxResolver>,
    pub(super) exclusions: Exclusions,
    pub(super) retry: RetryPolicy,
    /// What runs at once: the permits of the task's kind of slot.
    pub(super) permits: Arc<Semaphore>,
    /// Given back while a target waits for its retry.
    pub(super) gate: Gate,
}

/// One unit of a task's work.
#[derive(Debug)]
pub(super) enum Item {
    Resolve(String),
    Probe(IpAddr, Vec<String>),
}

impl Item {
    /// Run the item holding `permit` (a session); its record as JSON
    /// (`None` only if serializing failed).
    pub(super) async fn run(self, stamp: &Stamp, permit: OwnedSemaphorePermit) -> Option<String> {
        let json = match self {
            Self::Resolve(domain) if stamp.exclusions.domain(&domain).is_some() => {
                drop(permit);
                let why = stamp.exclusions.domain(&domain);
                let mut record = politeness::excluded_domain(domain, why.as_ref());
                record.scan = Some(stamp.scan.clone());
                record.vantage = Some(stamp.vantage.clone());
                serde_json::to_string(&record)
            }
            Self::Resolve(domain) => {
                let resolution = crate::metrics::resolution();
                let dns = match &stamp.resolver {
                    Some(resolver) => resolver.resolve(&domain).await,
                    None => DnsResult::failed(DnsStatus::Error, "no resolver for this task"),
                };
                let security = match &stamp.prober.security {
                    // No targets here: the MTA-STS verdict is policy-only
                    // (see `DomainSecurity::mta_sts`); the report's join
                    // evaluates the certificates.
                    Some(checks) => {
                        let mx_names: Vec<String> =
                            dns.mx.iter().map(|mx| mx.exchange.clone()).collect();
                        let facts = Box::pin(checks.domain(&domain, &dns)).await;
                        Some(facts.finish(&mx_names, &[]))
                    }
                    None => None,
                };
                drop(permit);
                drop(resolution);
                let mut record = DomainRecord::new(domain, dns);
                crate::metrics::domain_record(&record);
                record.security = security;
                record.scan = Some(stamp.scan.clone());
                record.vantage = Some(stamp.vantage.clone());
                serde_json::to_string(&record)
            }
            Self::Probe(ip, names) => {
                let port = stamp.prober.config.port;
                let mut record = if let Some(why) = stamp.exclusions.target(ip, &names) {
                    // Defence in depth: the coordinator should not have sent it.
                    drop(permit);
                    politeness::excluded_target(ip, port, names, &why)
                } else if stamp.egress_blocked {
                    drop(permit);
                    skipped_without_egress(ip, port, names)
                } else {
                    // Each session waits for its own pacing turn and permit.
                    drop(permit);
                    // Boxed: a probe's state is large, and a resolve item
                    // (most items) should not carry its size when spawned.
                    Box::pin(retry::run(stamp.retry, &stamp.gate, ip, || {
                        stamp.prober.probe_target(ip, names.clone())
                    }))
                    .await
                };
                crate::metrics::target_record(&record);
                record.scan = Some(stamp.scan.clone());
                record.vantage = Some(stamp.vantage.clone());
                serde_json::to_string(&record)
            }
        };
        json.map_err(|error| warn!(%error, "serializing a record failed"))
            .ok()
    }
}

/// DESIGN §4: a vantage without port-25 egress says so instead of
/// reporting every MX as unreachable.
pub(super) fn skipped_without_egress(ip: IpAddr, port: u16, names: Vec<String>) -> TargetRecord {
    let mut record = TargetRecord::new(ip, port, names);
    record.outcome = Outcome::Skipped;
    record.skip_reason = Some(SkipReason::NoEgress);
    record.detail = Some("vantage without port-25 egress (egress check failed)".into());
    record
}
