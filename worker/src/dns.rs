//! MX resolution (DESIGN §2): a domain's MX set, RFC 7505 null MX, RFC 5321
//! §5.1 implicit MX, and every exchange's A and AAAA, as one [`DnsResult`].
//!
//! Queries are always for the exact FQDN (no search list, no `ndots`), never
//! answered from `/etc/hosts`, and every lookup is bounded by the configured
//! timeout and attempts plus an overall deadline. Errors are data:
//! [`MxResolver::resolve`] never fails and never panics on an answer.
//!
//! Layout: the pure helpers ([`normalize_name`], [`plan_mx`], address and
//! status merging) come first and are unit-tested; [`MxResolver`] only adds
//! the queries around them.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError, NoRecords};
use hickory_resolver::proto::op::ResponseCode;
use hickory_resolver::proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::TokioResolver;
use mxscope_common::{DnsAnomaly, DnsResult, DnsStatus, MxEntry};
use tokio::task::JoinSet;
use tracing::{debug, warn};

/// At most this many exchanges of one domain are resolved (sorted first).
pub const MAX_EXCHANGES: usize = 32;
/// Most addresses kept per exchange (A and AAAA together): a name with
/// thousands of records must not turn into thousands of probe targets.
pub const MAX_ADDRESSES_PER_EXCHANGE: usize = 16;
/// Exchanges of one domain resolved concurrently.
const EXCHANGE_CONCURRENCY: usize = 8;
/// Cached responses (a small cache: shared exchanges are common).
const CACHE_SIZE: u64 = 2048;
/// Longest a positive answer is cached.
const MAX_POSITIVE_TTL: Duration = Duration::from_secs(300);
/// Longest a negative answer (NXDOMAIN, NODATA) is cached.
const MAX_NEGATIVE_TTL: Duration = Duration::from_secs(60);
/// Longest CNAME chain followed when looking for an exchange's target.
const MAX_CNAME_HOPS: usize = 16;

/// Resolver settings.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Name servers to ask (UDP then TCP); empty = the system configuration.
    pub resolvers: Vec<SocketAddr>,
    /// Timeout of one query attempt.
    pub timeout: Duration,
    /// Total attempts per query (1 = no retry).
    pub attempts: usize,
}

impl Default for DnsConfig {
    fn default() -> Self {
        Self {
            resolvers: Vec::new(),
            timeout: Duration::from_secs(5),
            attempts: 2,
        }
    }
}

/// Errors building the resolver.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DnsSetupError {
    /// The system resolver configuration could not be read; pass `--resolver`.
    #[error("reading the system resolver configuration: {0}")]
    SystemConfig(String),
    /// The system configuration names no server; pass `--resolver`.
    #[error("the system resolver configuration names no name server")]
    NoNameServers,
    /// hickory refused the configuration; check the resolver addresses.
    #[error("building the resolver: {0}")]
    Build(String),
}

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

/// What every mxscope resolver shares (plain, validating, policy lookups).
pub(crate) struct ResolverParts {
    pub(crate) name_servers: Vec<NameServerConfig>,
    /// Exact names (ndots 0), no hosts file, TCP on error, no 0x20; the
    /// caller adds caching and validation.
    pub(crate) opts: ResolverOpts,
    /// One attempt's timeout.
    pub(crate) timeout: Duration,
    /// Total attempts (1 = no retry).
    pub(crate) attempts: u32,
}

/// The configured name servers (or only the servers of the system
/// configuration: its search list and options are not ours) and the options
/// every resolver of the worker shares.
pub(crate) fn resolver_parts(config: &DnsConfig) -> Result<ResolverParts, DnsSetupError> {
    let name_servers = if config.resolvers.is_empty() {
        let (system, _) = hickory_resolver::system_conf::read_system_conf()
            .map_err(|e| DnsSetupError::SystemConfig(e.to_string()))?;
        system.name_servers().to_vec()
    } else {
        config.resolvers.iter().copied().map(name_server).collect()
    };
    if name_servers.is_empty() {
        return Err(DnsSetupError::NoNameServers);
    }
    let timeout = config.timeout.max(Duration::from_millis(10));
    let attempts = config.attempts.clamp(1, 10);
    let mut opts = ResolverOpts::default();
    opts.ndots = 0;
    opts.timeout = timeout;
    // hickory counts retries after the first attempt.
    opts.attempts = attempts - 1;
    opts.use_hosts_file = ResolveHosts::Never;
    opts.try_tcp_on_error = true;
    opts.case_randomization = false;
    Ok(ResolverParts {
        name_servers,
        opts,
        timeout,
        attempts: u32::try_from(attempts).unwrap_or(10),
    })
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for connection in &mut ns.connections {
        connection.port = addr.port();
    }
    ns
}

const NXDOMAIN_MESSAGE: &str = "domain does not exist (NXDOMAIN)";

/// The fixed message of a failure status (hickory's own text only for `Error`).
fn status_message(status: DnsStatus) -> &'static str {
    match status {
        DnsStatus::Nxdomain => NXDOMAIN_MESSAGE,
        DnsStatus::Nodata => "no records of the type (NODATA)",
        DnsStatus::Servfail => "server failure (SERVFAIL)",
        DnsStatus::Timeout => "timed out",
        DnsStatus::Refused => "query refused (REFUSED)",
        _ => "resolver error",
    }
}

/// A lookup that did not give records.
#[derive(Debug, Clone, PartialEq)]
struct Failure {
    status: DnsStatus,
    message: String,
}

impl Failure {
    fn new(status: DnsStatus) -> Self {
        Self {
            status,
            message: status_message(status).to_string(),
        }
    }
}

/// Map hickory's error to a status: negative answers by response code,
/// error response codes, timeouts; anything else is `Error` with its text.
fn classify(e: &NetError) -> Failure {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(NoRecords { response_code, .. })) => {
            match *response_code {
                ResponseCode::NXDomain => Failure::new(DnsStatus::Nxdomain),
                ResponseCode::NoError => Failure::new(DnsStatus::Nodata),
                ResponseCode::ServFail => Failure::new(DnsStatus::Servfail),
                ResponseCode::Refused => Failure::new(DnsStatus::Refused),
                code => Failure {
                    status: DnsStatus::Error,
                    message: format!("no records, response code {code}"),
                },
            }
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail)) => {
            Failure::new(DnsStatus::Servfail)
        }
        NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused)) => {
            Failure::new(DnsStatus::Refused)
        }
        NetError::Timeout => Failure::new(DnsStatus::Timeout),
        other => Failure {
            status: DnsStatus::Error,
            message: other.to_string(),
        },
    }
}

/// What the A and AAAA lookups of one name gave.
#[derive(Debug, Clone, PartialEq)]
struct Addresses {
    /// Sorted (IPv4 first), deduplicated, at most [`MAX_ADDRESSES_PER_EXCHANGE`].
    addresses: Vec<IpAddr>,
    /// How many distinct addresses there were, when more than were kept.
    truncated_from: Option<usize>,
    /// The end of the CNAME chain when the name is an alias.
    cname: Option<String>,
    /// `Ok` when there are addresses.
    status: DnsStatus,
    error: Option<String>,
}

impl Addresses {
    fn failed(status: DnsStatus, error: &str) -> Self {
        Self {
            addresses: Vec::new(),
            truncated_from: None,
            cname: None,
            status,
            error: Some(error.to_string()),
        }
    }
}

/// Merge the A and AAAA results of `name`: addresses from both, the alias
/// target, and the status (`Ok` with any address; else NXDOMAIN or NODATA
/// when both answers were negative; else the first real failure).
fn merge_addresses(name: &Name, results: [Result<Vec<Record>, Failure>; 2]) -> Addresses {
    let mut addresses = Vec::new();
    let mut cname = None;
    let mut nxdomain = false;
    let mut failure: Option<Failure> = None;
    for result in results {
        match result {
            Ok(records) => {
                addresses.extend(records.iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                }));
                if cname.is_none() {
                    cname = cname_target(name, &records).map(|t| normalize_name(&t.to_ascii()));
                }
            }
            Err(f) if f.status == DnsStatus::Nxdomain => nxdomain = true,
            Err(f) if f.status == DnsStatus::Nodata => {}
            Err(f) => {
                failure.get_or_insert(f);
            }
        }
    }
    addresses.sort();
    addresses.dedup();
    let truncated_from = (addresses.len() > MAX_ADDRESSES_PER_EXCHANGE).then_some(addresses.len());
    addresses.truncate(MAX_ADDRESSES_PER_EXCHANGE);
    let (status, error) = if !addresses.is_empty() {
        (DnsStatus::Ok, None)
    } else if let Some(f) = failure {
        (f.status, Some(f.message))
    } else if nxdomain {
        (DnsStatus::Nxdomain, Some(NXDOMAIN_MESSAGE.to_string()))
    } else {
        (
            DnsStatus::Nodata,
            Some(status_message(DnsStatus::Nodata).to_string()),
        )
    };
    Addresses {
        addresses,
        truncated_from,
        cname,
        status,
        error,
    }
}

/// Follow CNAME records from `name` through `records`; the last name of the
/// chain, when there is at least one hop.
fn cname_target(name: &Name, records: &[Record]) -> Option<Name> {
    let mut current = name.clone();
    let mut hops = 0;
    while hops < MAX_CNAME_HOPS {
        let next = records.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(next) if next != current => {
                current = next;
                hops += 1;
            }
            _ => break,
        }
    }
    (hops > 0).then_some(current)
}

/// `domain` as a fully qualified, lowercase name; `None` when it is not a
/// valid ASCII domain name.
fn fqdn(domain: &str) -> Option<Name> {
    let domain = domain.trim();
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || !domain.is_ascii() {
        return None;
    }
    Name::from_ascii(format!("{domain}."))
        .ok()
        .map(|n| n.to_lowercase())
}

/// A DNS name as records carry it: lowercase, without the trailing dot.
/// The root (`.`) becomes the empty string.
pub fn normalize_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// What an MX RRset means, before any address lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPlan {
    /// RFC 7505 null MX: the only exchange is the root.
    pub null_mx: bool,
    /// Exchanges to resolve, by preference then name, without duplicates
    /// and without the root.
    pub exchanges: Vec<(u16, String)>,
    /// More than [`MAX_EXCHANGES`] were present; the rest were dropped.
    pub truncated: bool,
    pub anomalies: Vec<DnsAnomaly>,
}

/// Turn an MX RRset (`(preference, normalized exchange)`, the root as `""`)
/// into what to resolve: ordered, deduplicated, null MX detected (a root
/// exchange alone is a null MX; mixed with others it is dropped and reported).
pub fn plan_mx(mut records: Vec<(u16, String)>) -> MxPlan {
    records.sort();
    records.dedup();
    let roots = records.iter().filter(|(_, name)| name.is_empty()).count();
    if roots > 0 && roots == records.len() {
        return MxPlan {
            null_mx: true,
            exchanges: Vec::new(),
            truncated: false,
            anomalies: Vec::new(),
        };
    }
    let mut anomalies = Vec::new();
    if roots > 0 {
        anomalies.push(DnsAnomaly::NullMxWithOthers);
        records.retain(|(_, name)| !name.is_empty());
    }
    let truncated = records.len() > MAX_EXCHANGES;
    records.truncate(MAX_EXCHANGES);
    MxPlan {
        null_mx: false,
        exchanges: records,
        truncated,
        anomalies,
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use hickory_resolver::proto::rr::rdata::{A, AAAA, CNAME};

    use super::*;

    fn pairs(list: &[(u16, &str)]) -> Vec<(u16, String)> {
        list.iter().map(|(p, n)| (*p, (*n).to_string())).collect()
    }

    fn name(s: &str) -> Name {
        Name::from_ascii(s).expect("test name")
    }

    #[test]
    fn normalize_lowercases_and_strips_the_dot() {
        assert_eq!(normalize_name("MX1.Example.IT."), "mx1.example.it");
        assert_eq!(normalize_name("mx1.example.it"), "mx1.example.it");
        assert_eq!(normalize_name("."), "");
    }

    #[test]
    fn fqdn_is_absolute_and_lowercase() {
        let n = fqdn("Example.IT").expect("valid");
        assert!(n.is_fqdn());
        assert_eq!(n.to_ascii(), "example.it.");
        assert_eq!(
            fqdn("example.it.").map(|n| n.to_ascii()),
            Some("example.it.".into())
        );
        assert_eq!(fqdn(""), None);
        assert_eq!(fqdn("."), None);
        assert_eq!(fqdn("bücher.example"), None);
        assert_eq!(fqdn("a..b"), None);
    }

    #[test]
    fn exchanges_sort_by_preference_then_name() {
        let plan = plan_mx(pairs(&[
            (20, "mx-b.example"),
            (10, "mx-z.example"),
            (10, "mx-a.example"),
            (20, "mx-b.example"),
            (5, "mx-y.example"),
        ]));
        assert_eq!(
            plan.exchanges,
            pairs(&[
                (5, "mx-y.example"),
                (10, "mx-a.example"),
                (10, "mx-z.example"),
                (20, "mx-b.example"),
            ])
        );
        assert!(!plan.null_mx);
        assert!(plan.anomalies.is_empty());
    }

    #[test]
    fn a_lone_root_is_a_null_mx() {
        let plan = plan_mx(pairs(&[(0, "")]));
        assert!(plan.null_mx);
        assert!(plan.exchanges.is_empty());
        assert!(plan.anomalies.is_empty());
        // Repeated, it is still one null MX.
        assert!(plan_mx(pairs(&[(0, ""), (0, "")])).null_mx);
    }

    #[test]
    fn a_root_among_others_is_an_anomaly() {
        let plan = plan_mx(pairs(&[(0, ""), (10, "mx.example")]));
        assert!(!plan.null_mx);
        assert_eq!(plan.exchanges, pairs(&[(10, "mx.example")]));
        assert_eq!(plan.anomalies, vec![DnsAnomaly::NullMxWithOthers]);
    }

    #[test]
    fn too_many_exchanges_are_truncated() {
        let many = (0..100u16)
            .map(|i| (i, format!("mx{i:03}.example")))
            .collect();
        let plan = plan_mx(many);
        assert!(plan.truncated);
        assert_eq!(plan.exchanges.len(), MAX_EXCHANGES);
        assert_eq!(plan.exchanges[0], (0, "mx000.example".to_string()));
    }

    fn a(n: &str, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(n), 60, RData::A(A(Ipv4Addr::from(ip))))
    }

    fn aaaa(n: &str, ip: Ipv6Addr) -> Record {
        Record::from_rdata(name(n), 60, RData::AAAA(AAAA(ip)))
    }

    fn cname(n: &str, target: &str) -> Record {
        Record::from_rdata(name(n), 60, RData::CNAME(CNAME(name(target))))
    }

    #[test]
    fn addresses_are_merged_sorted_and_deduplicated() {
        let n = name("mx.example.");
        let merged = merge_addresses(
            &n,
            [
                Ok(vec![
                    a("mx.example.", [192, 0, 2, 9]),
                    a("mx.example.", [192, 0, 2, 1]),
                    a("mx.example.", [192, 0, 2, 9]),
                ]),
                Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)]),
            ],
        );
        assert_eq!(
            merged.addresses,
            vec![
                IpAddr::from([192, 0, 2, 1]),
                IpAddr::from([192, 0, 2, 9]),
                IpAddr::V6(Ipv6Addr::LOCALHOST)
            ]
        );
        assert_eq!(merged.status, DnsStatus::Ok);
        assert_eq!(merged.cname, None);
        assert_eq!(merged.error, None);
    }

    #[test]
    fn addresses_per_exchange_are_capped() {
        let n = name("mx.example.");
        let many: Vec<Record> = (0..=255u8)
            .map(|i| a("mx.example.", [192, 0, 2, i]))
            .collect();
        let merged = merge_addresses(
            &n,
            [Ok(many), Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)])],
        );
        assert_eq!(merged.addresses.len(), MAX_ADDRESSES_PER_EXCHANGE);
        assert_eq!(merged.addresses[0], IpAddr::from([192, 0, 2, 0]));
        assert_eq!(merged.truncated_from, Some(257));
        assert_eq!(merged.status, DnsStatus::Ok);
    }

    #[test]
    fn one_family_is_enough() {
        let n = name("mx.example.");
        let merged = merge_addresses(
            &n,
            [
                Err(Failure::new(DnsStatus::Nodata)),
                Ok(vec![aaaa("mx.example.", Ipv6Addr::LOCALHOST)]),
            ],
        );
        assert_eq!(merged.status, DnsStatus::Ok);
        let merged = merge_addresses(
            &n,
            [
                Ok(vec![a("mx.example.", [192, 0, 2, 1])]),
                Err(Failure::new(DnsStatus::Servfail)),
            ],
        );
        assert_eq!(merged.status, DnsStatus::Ok);
    }

    #[test]
    fn negative_answers_and_failures() {
        let n = name("mx.example.");
        let nodata = || Err(Failure::new(DnsStatus::Nodata));
        let nx = || Err(Failure::new(DnsStatus::Nxdomain));
        let servfail = || Err(Failure::new(DnsStatus::Servfail));
        assert_eq!(
            merge_addresses(&n, [nodata(), nodata()]).status,
            DnsStatus::Nodata
        );
        assert_eq!(
            merge_addresses(&n, [nx(), nx()]).status,
            DnsStatus::Nxdomain
        );
        assert_eq!(
            merge_addresses(&n, [nx(), nodata()]).status,
            DnsStatus::Nxdomain
        );
        assert_eq!(
            merge_addresses(&n, [nodata(), servfail()]).status,
            DnsStatus::Servfail
        );
        assert_eq!(
            merge_addresses(&n, [Ok(vec![]), Ok(vec![])]).status,
            DnsStatus::Nodata
        );
    }

    #[test]
    fn cname_chains_are_followed_to_their_end() {
        let records = vec![
            cname("alias.example.", "alias2.example."),
            cname("Alias2.example.", "real.example."),
            a("real.example.", [192, 0, 2, 1]),
        ];
        assert_eq!(
            cname_target(&name("alias.example."), &records),
            Some(name("real.example."))
        );
        assert_eq!(cname_target(&name("real.example."), &records), None);
        // A loop stops.
        let looped = vec![
            cname("a.example.", "b.example."),
            cname("b.example.", "a.example."),
        ];
        assert!(cname_target(&name("a.example."), &looped).is_some());
    }

    #[test]
    fn error_classes() {
        let nx = NetError::from(NoRecords::new(
            hickory_resolver::proto::op::Query::query(name("x.example."), RecordType::MX),
            ResponseCode::NXDomain,
        ));
        assert_eq!(classify(&nx).status, DnsStatus::Nxdomain);
        let nodata = NetError::from(NoRecords::new(
            hickory_resolver::proto::op::Query::query(name("x.example."), RecordType::MX),
            ResponseCode::NoError,
        ));
        assert_eq!(classify(&nodata).status, DnsStatus::Nodata);
        let servfail = NetError::Dns(DnsError::ResponseCode(ResponseCode::ServFail));
        assert_eq!(classify(&servfail).status, DnsStatus::Servfail);
        let refused = NetError::Dns(DnsError::ResponseCode(ResponseCode::Refused));
        assert_eq!(classify(&refused).status, DnsStatus::Refused);
        assert_eq!(classify(&NetError::Timeout).status, DnsStatus::Timeout);
        let other = classify(&NetError::NoConnections);
        assert_eq!(other.status, DnsStatus::Error);
        assert_eq!(other.message, "no connections available");
    }
}
