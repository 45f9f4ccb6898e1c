//! MX resolution. OWNED BY THE DNS HELPER — stub.

use std::net::SocketAddr;
use std::time::Duration;

use mxscope_common::DnsResult;

/// Resolver settings.
#[derive(Debug, Clone)]
pub struct DnsConfig {
    /// Name servers to ask (UDP then TCP); empty = the system configuration.
    pub resolvers: Vec<SocketAddr>,
    /// Timeout of one query attempt.
    pub timeout: Duration,
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
}

/// Resolves a domain's MX set and each exchange's addresses.
#[derive(Debug, Clone)]
pub struct MxResolver {}

impl MxResolver {
    pub fn new(config: &DnsConfig) -> Result<Self, DnsSetupError> {
        let _ = config;
        todo!("dns helper")
    }

    /// Resolve `domain` (an A-label, no trailing dot). Never fails: errors are
    /// in the returned [`DnsResult`].
    pub async fn resolve(&self, domain: &str) -> DnsResult {
        let _ = domain;
        todo!("dns helper")
    }
}
