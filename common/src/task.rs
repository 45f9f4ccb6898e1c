//! The plain types of the coordinator ⇄ worker contract (DESIGN §3) that
//! both sides speak: a lease and its fencing epoch ([`Lease`]), a leased
//! task as the worker runs it ([`TaskSpec`], [`Work`]), a batch of its
//! results on the way up ([`Batch`]) and as the coordinator receives it
//! ([`ReportedBatch`]), a worker's egress self-check ([`EgressReport`]) and
//! what registering tells it ([`Registration`]). Their wire conversions are
//! in [`crate::convert::task`], one per message.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::options::ScanOptions;
use crate::record::Record;

/// A task and the epoch it was leased with (the fencing token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub task_id: String,
    pub epoch: u64,
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.task_id, self.epoch)
    }
}

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

    /// `resolve` or `probe` (logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Resolve(_) => "resolve",
            Self::Probe(_) => "probe",
        }
    }
}

/// A batch of one task's records, serialized as DESIGN §5 JSON, as a
/// worker sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub lease: Lease,
    pub records_json: Vec<String>,
    /// The task's last batch: the task is done once this is acknowledged.
    pub task_complete: bool,
}

/// A batch as the coordinator receives it: its records parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedBatch {
    pub worker_id: String,
    pub lease: Lease,
    pub records: Vec<Record>,
    /// The task's last batch.
    pub task_complete: bool,
}

/// A worker's port-25 egress self-check, as it reports it when registering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EgressReport {
    /// False when no check was configured: the vantage is trusted.
    pub checked: bool,
    pub ok: bool,
    /// The HOST:PORT that was tried.
    pub target: String,
    pub detail: String,
}

impl EgressReport {
    /// Whether probe targets must be skipped (checked and failed).
    pub fn blocked(&self) -> bool {
        self.checked && !self.ok
    }

    /// The check's verdict: `None` when there was no check.
    pub fn verdict(&self) -> Option<bool> {
        self.checked.then_some(self.ok)
    }
}

/// What the coordinator tells a worker that registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// How often the worker extends its leases.
    pub heartbeat_interval: Duration,
    /// How long a lease lives without a heartbeat.
    pub lease_ttl: Duration,
}

/// The heartbeat interval of a worker whose coordinator names none.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);
