//! What the coordinator remembers: scans, tasks and their leases, as plain
//! serde types (no tonic, no sled). The store persists them; the scheduler
//! computes over them.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A scan: a domain list measured from a set of vantages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanMeta {
    /// `s<number>`, unique per data directory.
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// Vantage labels the scan must be measured from.
    pub vantages: Vec<String>,
    pub options: ScanOptions,
    pub state: ScanState,
    pub created_ms: u64,
    pub finished_ms: Option<u64>,
    /// Unique domains submitted.
    pub domains: u64,
}

/// Lifecycle of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScanState {
    Running,
    Done,
    Cancelled,
}

impl ScanState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Done => "done",
            Self::Cancelled => "cancelled",
        }
    }
}

/// How a scan's targets are probed: the one options type, in `common`.
pub use mxscope_common::options::ScanOptions;
/// What a task asks a worker to do, and one target of a probe task: the
/// contract's own types (`common::wire::task`), stored as they are.
pub use mxscope_common::wire::task::{Target, Work};

/// One unit of leased work, for one scan and one vantage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// `<scan>/<vantage>/r<n>` (resolve) or `<scan>/<vantage>/p<n>` (probe).
    pub id: String,
    pub scan: String,
    pub vantage: String,
    pub kind: Work,
    pub state: TaskState,
    /// Incremented at every lease; results must carry the current one.
    pub epoch: u64,
    /// Leases handed out so far.
    pub attempts: u32,
}

impl Task {
    pub fn is_resolve(&self) -> bool {
        matches!(self.kind, Work::Resolve { .. })
    }

    /// Number of items (domains or targets) in the task.
    pub fn items(&self) -> usize {
        self.kind.len()
    }
}

/// Where a task is in its life.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    Pending,
    Leased {
        worker: String,
        deadline_ms: u64,
    },
    Done,
    /// Gave up after too many attempts; its items were recorded failed.
    Failed {
        reason: String,
    },
}

impl TaskState {
    pub fn is_finished(&self) -> bool {
        matches!(self, Self::Done | Self::Failed { .. })
    }
}
