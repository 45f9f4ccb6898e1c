//! The plain types a leased task is made of, shared by the coordinator
//! client ([`super::grpc`]), the runner and the uplink, so that none of
//! those imports another for them: the task ([`TaskSpec`], [`Work`]), a
//! batch of its results ([`Batch`]), what a failed call means
//! ([`CallError`]), and where batches go ([`ResultSink`], the coordinator
//! in production, a script in the uplink's tests).

use std::future::Future;
use std::net::IpAddr;

use mxscope_common::options::ScanOptions;

use super::leases::Lease;

/// A leased task, converted from the wire and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub lease: Lease,
    pub scan_id: String,
    pub vantage: String,
    pub options: ScanOptions,
    pub work: Work,
}

/// What a task asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Work {
    /// Resolve these domains (A-labels).
    Resolve(Vec<String>),
    /// Probe these distinct IPs, each with the MX names pointing at it.
    Probe(Vec<(IpAddr, Vec<String>)>),
}

impl Work {
    pub fn len(&self) -> usize {
        match self {
            Self::Resolve(domains) => domains.len(),
            Self::Probe(targets) => targets.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Resolve(_) => "resolve",
            Self::Probe(_) => "probe",
        }
    }
}

/// A batch of one task's records, serialized as DESIGN §5 JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub lease: Lease,
    pub records_json: Vec<String>,
    /// The task's last batch: the task is done once this is acknowledged.
    pub task_complete: bool,
}

/// What a failed call means for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Network trouble or a coordinator restart: retry with backoff.
    #[error("coordinator unreachable: {0}")]
    Transient(String),
    /// The lease is no longer ours (stale epoch, unknown task): stop the
    /// task and drop its results; another worker owns it now.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// The coordinator refused the call itself (credentials, invalid
    /// request): retrying the same call will not help.
    #[error("refused by the coordinator: {0}")]
    Refused(String),
}

/// Where the uplink delivers result batches.
pub trait ResultSink: Send + Sync + 'static {
    /// Deliver `batch`; `Ok` only once it is stored durably, with how many
    /// records were newly stored.
    fn report(&self, batch: &Batch) -> impl Future<Output = Result<u32, CallError>> + Send;
}
