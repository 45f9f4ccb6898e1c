//! What the coordinator's callers pass in and get back: its configuration,
//! requests, answers and the one error enum (with its [`ErrorKind`]).

use std::collections::BTreeMap;
use std::time::Duration;

use mxscope_common::InvalidLine;

use crate::model::{ScanMeta, ScanOptions, Task, TaskState};
use crate::scheduler::{self, Fence};
use crate::store::{self, StoreError};

/// Most lines one submission may hold.
pub const MAX_SUBMIT_LINES: u64 = 50_000_000;
/// Most bytes (line ends included) one submission may hold: a 50M-line
/// list of typical names is about 1 GiB.
pub const MAX_SUBMIT_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Pending tasks in memory per (vantage, class) by default: 512 resolve
/// tasks are 128,000 domains.
pub const WINDOW: usize = 512;
/// Most invalid lines a lenient submission reports one by one (the rest
/// are counted in the message of the last).
pub const MAX_REPORTED_INVALID: usize = 10_000;

/// Timing and sizing of the coordinator.
#[derive(Debug, Clone)]
pub struct CoordinatorConfig {
    /// A lease not heartbeated for this long is taken back.
    pub lease_ttl: Duration,
    /// How often workers are asked to heartbeat.
    pub heartbeat_interval: Duration,
    pub max_attempts: u32,
    pub shard_size: usize,
    pub probe_batch: usize,
    /// Most lines of one submission.
    pub max_submit_lines: u64,
    /// Most bytes of one submission.
    pub max_submit_bytes: u64,
    /// Pending tasks kept in memory per (vantage, class); the rest wait
    /// in the store.
    pub window: usize,
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(10),
            max_attempts: scheduler::MAX_ATTEMPTS,
            shard_size: scheduler::SHARD_SIZE,
            probe_batch: scheduler::PROBE_BATCH,
            max_submit_lines: MAX_SUBMIT_LINES,
            max_submit_bytes: MAX_SUBMIT_BYTES,
            window: WINDOW,
        }
    }
}

/// Errors the coordinator returns to its callers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The domain list has an invalid line; fix it or submit with `--skip-invalid`.
    #[error("{0}")]
    InvalidLine(InvalidLine),
    /// The request is malformed (message says why); nothing was changed.
    #[error("{0}")]
    Invalid(String),
    /// No such scan or task.
    #[error("{0} not found")]
    NotFound(String),
    /// The caller's lease is void: drop the task.
    #[error(transparent)]
    Fenced(#[from] Fence),
    /// The store failed; its [`StoreError::kind`] says whether to retry.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A blocking store job could not finish (the runtime is shutting down).
    #[error("store job: {0}")]
    Join(String),
    /// A bounded resource is in use (the message says which and its
    /// limit): retry later.
    #[error("{0}")]
    Busy(String),
}

/// What a caller can do about a [`ServiceError`]; the gRPC edge maps each
/// kind to one status code, in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is wrong: retrying it unchanged will fail again.
    InvalidRequest,
    /// The scan or task does not exist.
    NotFound,
    /// The caller's lease is void.
    Fenced,
    /// Stored data is damaged: retrying will fail again.
    Corrupt,
    /// The store is failing or busy: retry later.
    Unavailable,
    /// A bug on the coordinator's side.
    Internal,
}

impl ServiceError {
    /// This error's [`ErrorKind`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidLine(_) | Self::Invalid(_) => ErrorKind::InvalidRequest,
            Self::NotFound(_) => ErrorKind::NotFound,
            Self::Fenced(_) => ErrorKind::Fenced,
            Self::Join(_) | Self::Busy(_) => ErrorKind::Unavailable,
            Self::Store(e) => match e.kind() {
                store::ErrorKind::Invalid => ErrorKind::InvalidRequest,
                store::ErrorKind::Corrupt => ErrorKind::Corrupt,
                store::ErrorKind::Unavailable => ErrorKind::Unavailable,
                _ => ErrorKind::Internal,
            },
        }
    }
}

/// What a scan submission asks for.
#[derive(Debug, Clone)]
pub struct ScanRequest {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub vantages: Vec<String>,
    pub options: ScanOptions,
    pub skip_invalid: bool,
}

/// What a submission stored.
#[derive(Debug, Clone)]
pub struct Submitted {
    pub scan_id: String,
    pub domains: u64,
    pub duplicates: u64,
    /// Skipped invalid lines, the first [`MAX_REPORTED_INVALID`].
    pub skipped: Vec<InvalidLine>,
}

/// Task counts of one kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TaskCounts {
    pub total: u64,
    pub pending: u64,
    pub leased: u64,
    pub done: u64,
    pub failed: u64,
    /// Items planned: domains to resolve, or MX targets to probe (with the
    /// excluded ones, recorded at once); what the progress counts records
    /// against. After a restart, rebuilt from the tasks (excluded targets
    /// then not included).
    pub items: u64,
}

impl TaskCounts {
    pub(super) fn add(&mut self, state: &TaskState, delta: i64) {
        let slot = match state {
            TaskState::Pending => &mut self.pending,
            TaskState::Leased { .. } => &mut self.leased,
            TaskState::Done => &mut self.done,
            TaskState::Failed { .. } => &mut self.failed,
        };
        *slot = slot.saturating_add_signed(delta);
    }

    /// Whether every task of this kind is done or failed.
    pub fn finished(&self) -> bool {
        self.done + self.failed == self.total
    }
}

/// A scan and its progress.
#[derive(Debug, Clone)]
pub struct ScanStatus {
    pub meta: ScanMeta,
    pub resolve: TaskCounts,
    pub probe: TaskCounts,
    pub domain_records: u64,
    pub target_records: u64,
    /// Items of failed tasks (recorded with the failure as their result).
    pub failed_items: u64,
    /// Per vantage with records: sessions, exclusions, retries and the
    /// DNSSEC resolver self-check, counted as the records arrived.
    pub tallies: BTreeMap<String, mxscope_common::tally::VantageTally>,
    /// Set while the store cannot be written (a full disk): what is wrong.
    pub storage_problem: Option<String>,
}

/// A worker's announcement.
#[derive(Debug, Clone)]
pub struct WorkerHello {
    pub worker_id: String,
    pub vantage: String,
    pub version: String,
    pub capacity: u32,
    /// `None` when no egress check was configured.
    pub egress_ok: Option<bool>,
}

/// A task handed to a worker.
#[derive(Debug, Clone)]
pub struct Leased {
    pub task: Task,
    pub deadline_ms: u64,
    pub options: ScanOptions,
}
