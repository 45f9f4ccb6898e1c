//! MX resolution (DESIGN §2): a domain's MX set, RFC 7505 null MX, RFC 5321
//! §5.1 implicit MX, and every exchange's A and AAAA, as one [`DnsResult`].
//!
//! Queries are always for the exact FQDN (no search list, no `ndots`), never
//! answered from `/etc/hosts`, and every lookup is bounded by the configured
//! timeout and attempts plus an overall deadline. Errors are data:
//! [`MxResolver::resolve`] never fails and never panics on an answer.
//!
//! Layout:
//! - this file: [`MxResolver`], the lookups around the pure helpers.
//! - `transport`: the queries on the wire (a few long-lived UDP sockets,
//!   answers matched by ID, server and question; TCP on truncation).
//! - `wire`: the query's bytes and what an answer says (pure).
//! - `rtt`: the retransmission timeout (RFC 6298).
//! - `cache`: the exchange addresses, once per name and TTL.
//! - `setup`: [`DnsConfig`], [`DnsSetupError`] and the name servers and
//!   options every resolver of the worker shares (MX, validating, policy).
//! - `answers`: the pure helpers, unit-tested: [`normalize_name`],
//!   [`plan_mx`], address merging, CNAME following, failure classes.

mod answers;
mod cache;
mod rtt;
mod setup;
mod transport;
mod wire;

use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt};
use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mxscope_common::{DnsAnomaly, DnsResult, DnsStatus, MxEntry};
use tracing::{debug, warn};

use answers::{fqdn, merge_addresses, status_message, Addresses, Failure, NXDOMAIN_MESSAGE};
pub use answers::{normalize_name, plan_mx, MxPlan};
pub use cache::CACHE_ENTRIES;
use cache::{AddressCache, Exchanges, Records};
pub(crate) use setup::{hickory_resolver, resolver_parts, ResolverParts};
pub use setup::{DnsConfig, DnsSetupError};
use transport::Transport;
pub use transport::QUERIES_PER_SOCKET;
use wire::Answer;

/// At most this many exchanges of one domain are resolved (sorted first).
pub const MAX_EXCHANGES: usize = 32;
/// Most addresses kept per exchange (A and AAAA together): a name with
/// thousands of records must not turn into thousands of probe targets.
pub const MAX_ADDRESSES_PER_EXCHANGE: usize = 16;
/// Exchanges of one domain resolved concurrently.
const EXCHANGE_CONCURRENCY: usize = 8;
/// Longest CNAME chain followed when looking for an exchange's target.
const MAX_CNAME_HOPS: usize = 16;
/// Longest a positive answer is cached.
const MAX_POSITIVE_TTL: Duration = Duration::from_secs(300);
/// Longest a negative answer (NXDOMAIN, NODATA) is cached.
const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(60);

/// Answers a resolver dropped because they matched no query it sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DroppedAnswers {
    /// No query waited for that ID (a guess, or an answer after its timeout).
    pub unexpected_id: u64,
    /// From another address or port than the server asked.
    pub wrong_server: u64,
    /// For another name, type or class than the question.
    pub wrong_question: u64,
    /// Not a DNS response.
    pub malformed: u64,
}

/// Resolves a domain's MX set and each exchange's addresses.
#[derive(Debug, Clone)]
pub struct MxResolver {
    transport: Transport,
    addresses: Arc<AddressCache>,
    exchanges: Arc<Exchanges<Addresses>>,
    /// Upper bound of one lookup (attempts, TCP fallback, CNAME hops).
    lookup_deadline: Duration,
}

impl MxResolver {
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let parts = resolver_parts(config)?;
        let servers = parts.addresses();
        // Each attempt may go UDP then TCP; CNAME hops are further lookups.
        let lookup_deadline = parts.timeout * parts.attempts * 2 + Duration::from_millis(500);
        Ok(Self {
            transport: Transport::new(servers, parts.timeout, parts.attempts),
            addresses: Arc::default(),
            exchanges: Arc::default(),
            lookup_deadline,
        })
    }

    /// The answers this resolver (and its clones) dropped so far.
    pub fn dropped_answers(&self) -> DroppedAnswers {
        let d = self.transport.dropped();
        DroppedAnswers {
            unexpected_id: d.unexpected_id.load(Ordering::Relaxed),
            wrong_server: d.wrong_server.load(Ordering::Relaxed),
            wrong_question: d.wrong_question.load(Ordering::Relaxed),
            malformed: d.malformed.load(Ordering::Relaxed),
        }
    }

    /// Resolve `domain` (an A-label, no trailing dot). Never fails: errors are
    /// in the returned [`DnsResult`].
    pub async fn resolve(&self, domain: &str) -> DnsResult {
        let Some(name) = fqdn(domain) else {
            return DnsResult::failed(DnsStatus::Error, format!("invalid domain name {domain:?}"));
        };
        // MX, then the exchanges (or the implicit MX) in parallel: two stages.
        let deadline = self.lookup_deadline * 3;
        let result = match tokio::time::timeout(deadline, Box::pin(self.resolve_name(&name))).await
        {
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

    /// The addresses of every exchange, in the order given: all at once
    /// when every one is known (most domains of a national list).
    async fn exchanges_addresses(&self, exchanges: &[(u16, String)]) -> Vec<Addresses> {
        let now = tokio::time::Instant::now();
        let known: Option<Vec<Addresses>> = exchanges
            .iter()
            .map(|(_, e)| self.exchanges.get(e, now))
            .collect();
        if let Some(known) = known {
            return known;
        }
        let names: Vec<String> = exchanges.iter().map(|(_, e)| e.clone()).collect();
        stream::iter(names)
            .map(|exchange| self.exchange_addresses(exchange))
            .buffered(EXCHANGE_CONCURRENCY)
            .collect()
            .await
    }

    async fn exchange_addresses(&self, exchange: String) -> Addresses {
        if let Some(known) = self.exchanges.get(&exchange, tokio::time::Instant::now()) {
            return known;
        }
        let Some(name) = fqdn(&exchange) else {
            return Addresses::failed(DnsStatus::Error, "invalid exchange name");
        };
        let (addresses, expires) = self.addresses_until(name).await;
        self.exchanges.put(
            &exchange,
            addresses.clone(),
            expires,
            tokio::time::Instant::now(),
        );
        addresses
    }

    /// The addresses of a host that is not an exchange (the MTA-STS policy
    /// host): the exchanges' own lookup — transport, cache, CNAME following,
    /// cap — sorted (IPv4 first) and deduplicated. Without an address, the
    /// status (`Nxdomain`, `Nodata` when both answers were negative) and
    /// what went wrong.
    pub async fn host_addresses(&self, host: &str) -> Result<Vec<IpAddr>, (DnsStatus, String)> {
        let Some(name) = fqdn(host) else {
            return Err((DnsStatus::Error, format!("invalid name {host:?}")));
        };
        let found = self.addresses(name).await;
        if !found.addresses.is_empty() {
            return Ok(found.addresses);
        }
        let message = found
            .error
            .unwrap_or_else(|| status_message(found.status).to_string());
        Err((found.status, message))
    }

    /// A and AAAA of `name`, concurrently, from the cache when it has them.
    async fn addresses(&self, name: Name) -> Addresses {
        self.addresses_until(name).await.0
    }

    /// [`Self::addresses`], and until when both answers hold.
    async fn addresses_until(&self, name: Name) -> (Addresses, tokio::time::Instant) {
        let ((a, a_until), (aaaa, aaaa_until)) = tokio::join!(
            self.cached_lookup(&name, RecordType::A),
            self.cached_lookup(&name, RecordType::AAAA)
        );
        (merge_addresses(&name, [a, aaaa]), a_until.min(aaaa_until))
    }

    async fn cached_lookup(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> (Result<Records, Failure>, tokio::time::Instant) {
        self.addresses
            .get_or_fetch(name, rtype, || Box::pin(self.fetch(name, rtype)))
            .await
    }

    /// One bounded lookup; the answer records or the classified failure.
    async fn lookup(&self, name: &Name, rtype: RecordType) -> Result<Records, Failure> {
        self.fetch(name, rtype).await.0
    }

    /// One bounded lookup, following an alias whose target the answer does
    /// not hold; with how long its answer may be cached.
    async fn fetch(
        &self,
        name: &Name,
        rtype: RecordType,
    ) -> (Result<Records, Failure>, Option<Duration>) {
        let lookup = async {
            let mut chain = Vec::new();
            let mut current = name.clone();
            for _ in 0..=MAX_CNAME_HOPS {
                let message = match self.transport.query(&current, rtype).await {
                    Ok(message) => message,
                    Err(failure) => return (Err(failure), None),
                };
                match wire::read_answer(&message, &current, rtype) {
                    Answer::Records(records, ttl) => {
                        chain.extend(records);
                        return (Ok(Records::from(chain)), Some(ttl));
                    }
                    Answer::Alias(records, next) => {
                        chain.extend(records);
                        current = next;
                    }
                    Answer::Failed(failure, ttl) => return (Err(failure), ttl),
                }
            }
            let failure = Failure {
                status: DnsStatus::Error,
                message: format!("CNAME chain longer than {MAX_CNAME_HOPS} names"),
            };
            (Err(failure), None)
        };
        let (result, ttl) = tokio::time::timeout(self.lookup_deadline, lookup)
            .await
            .unwrap_or_else(|_| (Err(Failure::new(DnsStatus::Timeout)), None));
        if let Err(failure) = &result {
            debug!(name = %name, rtype = %rtype, status = ?failure.status, error = %failure.message, "lookup failed");
        }
        (result, ttl)
    }
}

#[cfg(test)]
mod tests;
