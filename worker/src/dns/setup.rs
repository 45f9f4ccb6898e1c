//! What every resolver of the worker shares (the MX resolver, the
//! validating resolver of [`crate::security::dnssec`], the MTA-STS/TLS-RPT lookups):
//! its settings, its setup errors, the name servers and the options.

use std::net::SocketAddr;
use std::time::Duration;

use hickory_resolver::config::{NameServerConfig, ResolveHosts, ResolverOpts};

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

/// A hickory resolver asking `name_servers` with `opts`, validating
/// against `anchors` when given: the one place the worker builds one (the
/// MTA-STS/TLS-RPT lookups; with anchors, the validating resolver of
/// `--security`). The MX path has its own transport ([`crate::dns`]).
pub(crate) fn hickory_resolver(
    name_servers: Vec<NameServerConfig>,
    opts: ResolverOpts,
    anchors: Option<std::sync::Arc<hickory_resolver::proto::dnssec::TrustAnchors>>,
) -> Result<hickory_resolver::TokioResolver, String> {
    let builder = hickory_resolver::TokioResolver::builder_with_config(
        hickory_resolver::config::ResolverConfig::from_name_servers(name_servers),
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    )
    .with_options(opts);
    let builder = match anchors {
        Some(anchors) => builder.with_trust_anchor(anchors),
        None => builder,
    };
    builder.build().map_err(|e| e.to_string())
}

impl ResolverParts {
    /// Each name server's address and port (its first connection's port).
    pub(crate) fn addresses(&self) -> Vec<SocketAddr> {
        self.name_servers
            .iter()
            .map(|ns| {
                let port = ns.connections.first().map_or(53, |c| c.port);
                SocketAddr::new(ns.ip, port)
            })
            .collect()
    }
}

fn name_server(addr: SocketAddr) -> NameServerConfig {
    let mut ns = NameServerConfig::udp_and_tcp(addr.ip());
    for connection in &mut ns.connections {
        connection.port = addr.port();
    }
    ns
}
