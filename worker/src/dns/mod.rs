//! MX resolution (DESIGN §2): a domain's MX set, RFC 7505 null MX, RFC 5321
//! §5.1 implicit MX, and every exchange's A and AAAA, as one [`DnsResult`].
//!
//! Queries are always for the exact FQDN (no search list, no `ndots`), never
//! answered from `/etc/hosts`, and every lookup is bounded by the configured
//! timeout and attempts plus an overall deadline. Errors are data:
//! [`MxResolver::resolve`] never fails and never panics on an answer.
//!
//! Layout:
//! - this file: [`MxResolver`], the queries around the pure helpers.
//! - `setup`: [`DnsConfig`], [`DnsSetupError`] and the name servers and
//!   options every resolver of the worker shares (MX, validating, policy).
//! - `answers`: the pure helpers, unit-tested: [`normalize_name`],
//!   [`plan_mx`], address merging, CNAME following, failure classes.

mod answers;
mod setup;

use std::time::Duration;

use hickory_resolver::config::ResolverConfig;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use mxscope_common::{DnsAnomaly, DnsResult, DnsStatus, MxEntry};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use answers::{
    classify, fqdn, merge_addresses, status_message, Addresses, Failure, NXDOMAIN_MESSAGE,
};
pub use answers::{normalize_name, plan_mx, MxPlan};
pub(crate) use setup::{resolver_parts, ResolverParts};
pub use setup::{DnsConfig, DnsSetupError};

/// At most this many exchanges of one domain are resolved (sorted first).
pub const MAX_EXCHANGES: usize = 32;
/// Most addresses kept per exchange (A and AAAA together): a name with
/// thousands of records must not turn into thousands of probe targets.
pub const MAX_ADDRESSES_PER_EXCHANGE: usize = 16;
/// Exchanges of one domain resolved concurrently.
const EXCHANGE_CONCURRENCY: usize = 8;
/// Longest CNAME chain followed when looking for an exchange's target.
const MAX_CNAME_HOPS: usize = 16;
/// Cached responses (a small cache: shared exchanges are common).
const CACHE_SIZE: u64 = 2048;
/// Longest a positive answer is cached.
const MAX_POSITIVE_TTL: Duration = Duration::from_secs(300);
/// Longest a negative answer (NXDOMAIN, NODATA) is cached.
const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// Resolves a domain's MX set and each exchange's addresses.
#[derive(Debug, Clone)]
pub struct MxResolver {
    resolver: TokioResolver,
    /// Upper bound of one lookup (attempts, TCP fallback, CNAME hops).
    lookup_deadline: Duration,
}

impl MxResolver {
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let ResolverParts {
            name_servers,
            mut opts,
            timeout,
            attempts,
        } = resolver_parts(config)?;
        opts.cache_size = CACHE_SIZE;
        opts.positive_max_ttl = Some(MAX_POSITIVE_TTL);
        opts.negative_max_ttl = Some(MAX_NEGATIVE_TTL);
        opts.preserve_intermediates = true;

        let resolver = TokioResolver::builder_with_config(
            ResolverConfig::from_name_servers(name_servers),
            TokioRuntimeProvider::default(),
        )
        .with_options(opts)
        .build()
        .map_err(|e| DnsSetupError::Build(e.to_string()))?;

        // Each attempt may go UDP then TCP; CNAME hops are further lookups.
        let lookup_deadline = timeout * attempts * 2 + Duration::from_millis(500);
        Ok(Self {
            resolver,
            lookup_deadline,
        })
    }

    /// Resolve `domain` (an A-label, no trailing dot). Never fails: errors are
    /// in the returned [`DnsResult`].
    pub async fn resolve(&self, domain: &str) -> DnsResult {
        let Some(name) = fqdn(domain) else {
            return DnsResult::failed(DnsStatus::Error, format!("invalid domain name {domain:?}"));
        };
        // MX, then the exchanges (or the implicit MX) in parallel: two stages.
        let deadline = self.lookup_deadline * 3;
        let result = match tokio::time::timeout(deadline, self.resolve_name(&name)).await {
            Ok(result) => result,
            Err(_) => DnsResult::failed(DnsStatus::Timeout, "resolution exceeded its deadline"),
        };
        debug!(
            domain = %name,
            status = ?result.status,
            mx = result.mx.len(),
            null_mx = result.null_mx,
            implicit_mx = result.implicit_mx,
            "domain resolved"
        );
        result
    }

    async fn resolve_name(&self, name: &Name) -> DnsResult {
        let records = match self.lookup(name, RecordType::MX).await {
            Ok(records) => records,
            Err(failure) if failure.status == DnsStatus::Nodata => {
                return self.implicit_mx(name).await;
            }
            Err(failure) => return DnsResult::failed(failure.status, failure.message),
        };
        let pairs: Vec<(u16, String)> = records
            .iter()
            .filter_map(|r| match &r.data {
                RData::MX(mx) => Some((mx.preference, normalize_name(&mx.exchange.to_ascii()))),
                _ => None,
            })
            .collect();
        if pairs.is_empty() {
            // An answer without MX records (only aliases): no MX.
            return self.implicit_mx(name).await;
        }

        let plan = plan_mx(pairs);
        if plan.truncated {
            warn!(domain = %name, max = MAX_EXCHANGES, "too many exchanges, keeping the first");
        }
        let mut anomalies = plan.anomalies;
        if plan.null_mx {
            return DnsResult {
                status: DnsStatus::Ok,
                null_mx: true,
                implicit_mx: false,
                mx: Vec::new(),
                error: None,
                anomalies,
            };
        }

        let resolved = self.exchanges_addresses(&plan.exchanges).await;
        let mut mx = Vec::with_capacity(plan.exchanges.len());
        for ((preference, exchange), addresses) in plan.exchanges.into_iter().zip(resolved) {
            if let Some(target) = addresses.cname {
                anomalies.push(DnsAnomaly::MxIsCname {
                    exchange: exchange.clone(),
                    target,
                });
            }
            if addresses.addresses.is_empty()
                && matches!(addresses.status, DnsStatus::Nodata | DnsStatus::Nxdomain)
            {
                anomalies.push(DnsAnomaly::MxWithoutAddress {
                    exchange: exchange.clone(),
                });
            }
            if let Some(total) = addresses.truncated_from {
                anomalies.push(DnsAnomaly::AddressesTruncated {
                    exchange: exchange.clone(),
                    total,
                });
            }
            if let Some(error) = &addresses.error {
                debug!(exchange = %exchange, status = ?addresses.status, error = %error, "exchange lookup failed");
            }
            mx.push(MxEntry {
                preference,
                exchange,
                addresses: addresses.addresses,
                status: addresses.status,
            });
        }
        DnsResult {
            status: DnsStatus::Ok,
            null_mx: false,
            implicit_mx: false,
            mx,
            error: None,
            anomalies,
        }
    }

    /// RFC 5321 §5.1: no MX, the domain's own A/AAAA act as its MX.
    async fn implicit_mx(&self, name: &Name) -> DnsResult {
        let addresses = self.addresses(name.clone()).await;
        if !addresses.addresses.is_empty() {
            return DnsResult {
                status: DnsStatus::Ok,
                null_mx: false,
                implicit_mx: true,
                mx: vec![MxEntry {
                    preference: 0,
                    exchange: normalize_name(&name.to_ascii()),
                    addresses: addresses.addresses,
                    status: DnsStatus::Ok,
                }],
                error: None,
                anomalies: Vec::new(),
            };
        }
        match addresses.status {
            DnsStatus::Nxdomain => DnsResult::failed(DnsStatus::Nxdomain, NXDOMAIN_MESSAGE),
            DnsStatus::Nodata | DnsStatus::Ok => {
                DnsResult::failed(DnsStatus::Nodata, "no MX, A or AAAA records")
            }
            status => DnsResult::failed(
                status,
                addresses
                    .error
                    .unwrap_or_else(|| status_message(status).to_string()),
            ),
        }
    }

    /// The addresses of every exchange, in the order given.
    async fn exchanges_addresses(&self, exchanges: &[(u16, String)]) -> Vec<Addresses> {
        let mut out: Vec<Option<Addresses>> = vec![None; exchanges.len()];
        let mut pending = exchanges.iter().enumerate();
        let mut set = JoinSet::new();
        loop {
            while set.len() < EXCHANGE_CONCURRENCY {
                let Some((index, (_, exchange))) = pending.next() else {
                    break;
                };
                let this = self.clone();
                let name = fqdn(exchange);
                set.spawn(async move {
                    let addresses = match name {
                        Some(name) => this.addresses(name).await,
                        None => Addresses::failed(DnsStatus::Error, "invalid exchange name"),
                    };
                    (index, addresses)
                });
            }
            match set.join_next().await {
                Some(Ok((index, addresses))) => {
                    if let Some(slot) = out.get_mut(index) {
                        *slot = Some(addresses);
                    }
                }
                Some(Err(e)) => warn!(error = %e, "exchange lookup task failed"),
                None => break,
            }
        }
        out.into_iter()
            .map(|a| a.unwrap_or_else(|| Addresses::failed(DnsStatus::Error, "lookup task failed")))
            .collect()
    }

    /// A and AAAA of `name`, concurrently.
    async fn addresses(&self, name: Name) -> Addresses {
        let (a, aaaa) = tokio::join!(
            self.lookup(&name, RecordType::A),
            self.lookup(&name, RecordType::AAAA)
        );
        merge_addresses(&name, [a, aaaa])
    }

    /// One bounded lookup; the answer records or the classified failure.
    async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Vec<Record>, Failure> {
        match tokio::time::timeout(
            self.lookup_deadline,
            self.resolver.lookup(name.clone(), rtype),
        )
        .await
        {
            Ok(Ok(lookup)) => Ok(lookup.answers().to_vec()),
            Ok(Err(e)) => {
                let failure = classify(&e);
                debug!(name = %name, rtype = %rtype, status = ?failure.status, error = %e, "lookup failed");
                Err(failure)
            }
            Err(_) => Err(Failure::new(DnsStatus::Timeout)),
        }
    }
}

#[cfg(test)]
mod tests;
