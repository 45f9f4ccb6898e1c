//! How a worker joins the fleet ([`FleetConfig`]) and why it stops
//! ([`FleetError`]).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use mxscope_common::cli::args::{default_dns_concurrency, DEFAULT_CONCURRENCY};
use mxscope_common::wire::client::ClientConfigError;

/// Records per result batch, unless set: a whole resolve task (the
/// coordinator's shards are 1,000 domains) goes in one report, the one that
/// completes it, so the coordinator writes the pages of a task's domain
/// records once instead of again for each part, and flushes once. At 1M
/// domains: 10 % less CPU than batches of 100 with shards of 250, and 16 %
/// less again with shards and batches of 1,000 (docs/benchmarks.md). A
/// batch is also cut at `MAX_BATCH_BYTES`.
pub const DEFAULT_BATCH_SIZE: u16 = 1000;

/// How a worker joins the fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The coordinator's URL, `http://` or `https://`.
    pub coordinator: String,
    /// Bearer token sent with every call.
    pub token: Option<String>,
    /// Trust anchors (PEM) for an `https://` coordinator; Mozilla's roots when `None`.
    pub coordinator_ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    pub worker_id: String,
    /// The vantage label this worker measures from.
    pub vantage: String,
    /// Most tasks at once (leasing is bounded by free slots first).
    pub capacity: usize,
    /// Most SMTP sessions at once, across tasks: the session slots.
    /// Reduced at start when the open-file limit is too low.
    pub probe_concurrency: usize,
    /// Most domain resolutions at once, across tasks: the resolution slots,
    /// apart from the sessions (see [`slots`]).
    pub dns_concurrency: usize,
    /// Source address of probes (and of the egress check).
    pub bind: Option<IpAddr>,
    /// Name servers used instead of the scans' when non-empty.
    pub resolvers_override: Vec<SocketAddr>,
    /// HOST:PORT to test port-25 egress against at start.
    pub egress_check: Option<String>,
    /// Records per result batch.
    pub batch_size: usize,
    /// Most unacknowledged batches held; when full, tasks wait for acks.
    pub max_unacked: usize,
    /// Batches (of different tasks) sent at once: with one, results are
    /// acknowledged no faster than one coordinator round trip per batch,
    /// which starves fast scans of new work.
    pub batches_in_flight: usize,
    /// At shutdown, how long running tasks may go on before they are released.
    pub shutdown_grace: Duration,
    /// At shutdown, how long unacknowledged batches may take to be delivered.
    pub flush_timeout: Duration,
}

impl FleetConfig {
    /// A configuration with the defaults for everything but the identity.
    pub fn new(
        coordinator: impl Into<String>,
        worker_id: impl Into<String>,
        vantage: impl Into<String>,
    ) -> Self {
        Self {
            coordinator: coordinator.into(),
            token: None,
            coordinator_ca_pem: None,
            client_identity: None,
            worker_id: worker_id.into(),
            vantage: vantage.into(),
            capacity: 64,
            probe_concurrency: DEFAULT_CONCURRENCY as usize,
            dns_concurrency: default_dns_concurrency(DEFAULT_CONCURRENCY) as usize,
            bind: None,
            resolvers_override: Vec::new(),
            egress_check: None,
            batch_size: usize::from(DEFAULT_BATCH_SIZE),
            max_unacked: 64,
            batches_in_flight: 8,
            shutdown_grace: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(30),
        }
    }

    pub(super) fn validate(&self) -> Result<(), FleetError> {
        let invalid = |reason: &str| Err(FleetError::Invalid(reason.to_string()));
        if self.worker_id.trim().is_empty() {
            return invalid("the worker id is empty");
        }
        if self.vantage.trim().is_empty() {
            return invalid("the vantage label is empty");
        }
        if self.capacity == 0 || self.probe_concurrency == 0 || self.dns_concurrency == 0 {
            return invalid("capacity, probe and DNS concurrency must be at least 1");
        }
        if self.batch_size == 0 || self.max_unacked == 0 {
            return invalid("batch size and the unacknowledged-batch bound must be at least 1");
        }
        Ok(())
    }
}

/// Why the fleet loop could not run. Network trouble is never one of these:
/// it is retried until shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The configuration is inconsistent; fix the named option.
    #[error("invalid fleet configuration: {0}")]
    Invalid(String),
    /// The coordinator URL does not parse or has the wrong scheme; pass `http(s)://HOST:PORT`.
    #[error("coordinator URL {url:?}: {reason}")]
    CoordinatorUrl { url: String, reason: String },
    /// The coordinator CA or client certificate cannot be used; check the PEM files.
    #[error("coordinator TLS: {0}")]
    Tls(String),
    /// The token holds characters a header cannot carry; check the token file.
    #[error("the token is not a valid header value (printable ASCII only)")]
    Token,
    /// The fleet's own runtimes (control plane, resolutions) could not start
    /// (threads, memory).
    #[error("cannot start the fleet's runtimes: {0}")]
    Runtime(String),
    /// The coordinator refused this worker (credentials, unknown vantage…);
    /// retrying will not help: fix the token or the options.
    #[error("the coordinator refused to register this worker: {0}")]
    Refused(String),
}

impl From<ClientConfigError> for FleetError {
    fn from(error: ClientConfigError) -> Self {
        match error {
            ClientConfigError::Url { url, reason } => Self::CoordinatorUrl { url, reason },
            ClientConfigError::Tls(reason) => Self::Tls(reason),
            ClientConfigError::Token => Self::Token,
            other => Self::Invalid(other.to_string()),
        }
    }
}
