//! Probe options: what the operator sets on the command line (and, later,
//! what a scan carries to its workers).

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use mxscope_common::{DepthLevel, EhloName};

/// Whether an address is globally routable (see [`mxscope_common::politeness`]).
pub use mxscope_common::politeness::is_public;

use crate::smtp::reply::Limits;

/// Per-phase timeouts and the session deadline: the scan options' type
/// (defaults in [`mxscope_common::options::defaults`]).
pub use mxscope_common::options::Timeouts;

/// Everything one probe needs to know besides its target.
#[derive(Debug, Clone)]
pub struct ProbeConfig {
    /// Name sent in EHLO/HELO: identify the scanner (DESIGN §8).
    pub ehlo_name: EhloName,
    /// Source address to connect from (a vantage's address).
    pub bind: Option<IpAddr>,
    /// Destination port (25 in the wild; configurable for labs).
    pub port: u16,
    pub timeouts: Timeouts,
    pub limits: Limits,
    /// Also probe SSLv3, TLS 1.0, TLS 1.1 and TLS 1.2 in extra sessions.
    pub legacy: bool,
    /// How deep to look at the server's TLS (`--tls-depth`); above `free`
    /// the version probes run too.
    pub depth: DepthLevel,
    /// Most extra sessions per IP of the depth probe.
    pub depth_budget: u32,
    /// Probe loopback, private, link-local and other non-public addresses.
    /// Off by default: a domain whose MX points at 127.0.0.1 or 10.0.0.1 must
    /// not make the scanner probe its own network. Labs turn it on.
    pub allow_private: bool,
    /// DNSSEC, DANE, reverse DNS, MTA-STS and TLS-RPT checks; `None` (the
    /// default) leaves them off. See [`crate::security::checks`].
    pub security: Option<SecurityConfig>,
}

/// Options of the security checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecurityConfig {
    /// A file of DNSKEY records in zone-file format (see [`crate::security::dnssec`]);
    /// `None` = the IANA root.
    pub trust_anchor: Option<PathBuf>,
    /// The same as text (a scan's options); wins over `trust_anchor`.
    pub trust_anchor_text: Option<String>,
    /// Name servers of the validating resolver and of the MTA-STS/TLS-RPT
    /// lookups (the run's `--resolver`s); empty = the system configuration.
    pub resolvers: Vec<SocketAddr>,
    /// Timeout of one DNS query attempt.
    pub dns_timeout: Duration,
    /// A known signed name under the trust anchor that the resolver
    /// self-check also asks (`--dnssec-check-name`); `None` = only the anchor.
    pub signed_name: Option<String>,
}

impl Default for SecurityConfig {
    fn default() -> Self {
        Self {
            trust_anchor: None,
            trust_anchor_text: None,
            resolvers: Vec::new(),
            dns_timeout: mxscope_common::options::defaults::TIMEOUT_DNS,
            signed_name: None,
        }
    }
}

impl Default for ProbeConfig {
    fn default() -> Self {
        Self {
            ehlo_name: default_ehlo_name(),
            bind: None,
            port: 25,
            timeouts: Timeouts::default(),
            limits: Limits::default(),
            legacy: false,
            depth: DepthLevel::Free,
            depth_budget: mxscope_common::options::defaults::TLS_DEPTH_BUDGET,
            allow_private: false,
            security: None,
        }
    }
}

/// This machine's host name, or `localhost` when it cannot be read.
pub fn default_ehlo_name() -> EhloName {
    EhloName::from_hostname()
}
