//! Scheduling as pure functions over plain data (DESIGN §2–§3): sharding,
//! target dedup, probe batching, and the lease life cycle with fencing.
//! No I/O and no clock: callers pass `now_ms`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::wire::task::SlotKind;
use mxscope_common::DomainRecord;

use crate::model::{Target, Task, TaskState, Work};

/// Domains per resolve task. A worker's default result batch
/// (`mxscope_worker::fleet::config::DEFAULT_BATCH_SIZE`) holds a whole
/// task: its domain records' pages are then written once, and the task
/// costs one lease, one report and one flush. Each report costs about 1 ms
/// of CPU whatever its size (the store's transaction, the flush): at 1M
/// domains, shards of 1,000 took 12.0 s and 19.3 s of CPU where shards of
/// 250 took 14.1 s and 23.0 s (docs/benchmarks.md). A lease call stops at
/// [`MAX_LEASE_ITEMS`], so a reply stays far below the message limit where
/// 64 tasks of long names would near it.
pub const SHARD_SIZE: usize = 1000;
/// Items (domains, targets) after which a lease call takes no more tasks:
/// 16 full resolve tasks. A task is leased whole, so a reply may pass it by
/// less than one task: at most about 4.3 MiB of names.
pub const MAX_LEASE_ITEMS: usize = 16 * SHARD_SIZE;
/// Targets per probe task.
pub const PROBE_BATCH: usize = 32;
/// Leases a task may get before its items are recorded failed.
pub const MAX_ATTEMPTS: u32 = 3;

/// Cuts a stream of domains into resolve tasks, as the submit path reads
/// them: every `size` domains (at least 1) make a shard, and a shard one
/// task per vantage, numbered from 0 in order; the last shard may be short.
#[derive(Debug)]
pub struct Sharder<'a> {
    scan: &'a str,
    vantages: &'a [String],
    size: usize,
    shard: Vec<String>,
    shards: u64,
}

impl<'a> Sharder<'a> {
    pub fn new(scan: &'a str, vantages: &'a [String], size: usize) -> Self {
        let size = size.max(1);
        Self {
            scan,
            vantages,
            size,
            shard: Vec::with_capacity(size),
            shards: 0,
        }
    }

    /// Add the next domain; the tasks of the shard it fills, if it does.
    pub fn push(&mut self, domain: String) -> Vec<Task> {
        self.shard.push(domain);
        if self.shard.len() < self.size {
            return Vec::new();
        }
        self.cut()
    }

    /// The tasks of the last, short shard (none if it is empty) and the
    /// number of shards cut.
    pub fn finish(mut self) -> (Vec<Task>, u64) {
        let tasks = if self.shard.is_empty() {
            Vec::new()
        } else {
            self.cut()
        };
        (tasks, self.shards)
    }

    fn cut(&mut self) -> Vec<Task> {
        let domains = std::mem::replace(&mut self.shard, Vec::with_capacity(self.size));
        let index = self.shards;
        self.shards += 1;
        let mut tasks = Vec::with_capacity(self.vantages.len());
        if let Some((last, rest)) = self.vantages.split_last() {
            for vantage in rest {
                tasks.push(resolve_task(self.scan, vantage, index, domains.clone()));
            }
            tasks.push(resolve_task(self.scan, last, index, domains));
        }
        tasks
    }
}

/// Every resolve task of `domains` ([`Sharder`] over the whole list).
pub fn resolve_tasks(
    scan: &str,
    vantages: &[String],
    domains: &[String],
    size: usize,
) -> Vec<Task> {
    let mut sharder = Sharder::new(scan, vantages, size);
    let mut tasks: Vec<Task> = domains
        .iter()
        .flat_map(|d| sharder.push(d.clone()))
        .collect();
    tasks.extend(sharder.finish().0);
    tasks
}

/// The resolve task of shard `index` for `vantage`.
pub fn resolve_task(scan: &str, vantage: &str, index: u64, domains: Vec<String>) -> Task {
    Task {
        id: task_id(scan, vantage, TaskClass::Resolve, index),
        scan: scan.to_string(),
        vantage: vantage.to_string(),
        kind: Work::Resolve { domains },
        state: TaskState::Pending,
        epoch: 0,
        attempts: 0,
    }
}

/// The two kinds of task, without their items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskClass {
    /// Probe tasks (leased first).
    Probe,
    Resolve,
}

impl TaskClass {
    /// The class of `task`.
    pub fn of(task: &Task) -> Self {
        if task.is_resolve() {
            Self::Resolve
        } else {
            Self::Probe
        }
    }

    /// The worker slots its items hold.
    pub fn slot_kind(self) -> SlotKind {
        match self {
            Self::Probe => SlotKind::Session,
            Self::Resolve => SlotKind::Resolution,
        }
    }

    fn letter(self) -> char {
        match self {
            Self::Probe => 'p',
            Self::Resolve => 'r',
        }
    }
}

/// `<scan>/<vantage>/r<n>` or `<scan>/<vantage>/p<n>`: tasks of one
/// (scan, vantage, class) are numbered from 0 without gaps.
pub fn task_id(scan: &str, vantage: &str, class: TaskClass, seq: u64) -> String {
    format!("{scan}/{vantage}/{}{seq:06}", class.letter())
}

/// The number of a task id made by [`task_id`] for `class`.
pub fn task_seq(id: &str, class: TaskClass) -> Option<u64> {
    let (_, tail) = id.rsplit_once('/')?;
    tail.strip_prefix(class.letter())?.parse().ok()
}

/// Every IP named by `records`, with every MX name that points at it
/// ([`mxscope_common::targets_of`] over their DNS results).
pub fn targets_of<'a>(
    records: impl IntoIterator<Item = &'a DomainRecord>,
) -> BTreeMap<IpAddr, BTreeSet<String>> {
    mxscope_common::targets_of(records.into_iter().map(|r| &r.dns))
}

/// Probe tasks for `targets`, at most `batch` each, numbered from `first_seq`.
pub fn probe_tasks(
    scan: &str,
    vantage: &str,
    first_seq: u64,
    targets: Vec<Target>,
    batch: usize,
) -> Vec<Task> {
    targets
        .chunks(batch.max(1))
        .zip(first_seq..)
        .map(|(chunk, seq)| Task {
            id: task_id(scan, vantage, TaskClass::Probe, seq),
            scan: scan.to_string(),
            vantage: vantage.to_string(),
            kind: Work::Probe {
                targets: chunk.to_vec(),
            },
            state: TaskState::Pending,
            epoch: 0,
            attempts: 0,
        })
        .collect()
}

/// The task numbers to read to bring a queue holding `queued` tasks back
/// to `window` (at least 2) from a feed whose unread numbers are
/// `next..end`: none while the queue holds half the window or more, or
/// when the feed is dry.
pub fn refill(queued: usize, window: usize, next: u64, end: u64) -> Option<std::ops::Range<u64>> {
    let window = window.max(2);
    if queued >= window / 2 || next >= end {
        return None;
    }
    let want = (window - queued) as u64;
    Some(next..end.min(next.saturating_add(want)))
}

/// How many probe tasks [`probe_tasks`] makes of `targets` targets.
pub fn probe_task_count(targets: usize, batch: usize) -> u64 {
    targets.div_ceil(batch.max(1)) as u64
}

/// Why a lease operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Fence {
    /// The caller's epoch is not the task's current lease: its work is
    /// void (another worker may hold the task). Drop the task.
    #[error("stale epoch {given} for task {task} (current {current})")]
    StaleEpoch {
        task: String,
        given: u64,
        current: u64,
    },
    /// The task is not leased (finished, pending or failed). Drop it.
    #[error("task {0} is not leased")]
    NotLeased(String),
    /// The task is leased by another worker.
    #[error("task {0} is leased by another worker")]
    OtherWorker(String),
}

/// Lease a pending task to `worker`: a new epoch and a deadline.
pub fn lease(task: &mut Task, worker: &str, now_ms: u64, ttl_ms: u64) -> Option<u64> {
    if task.state != TaskState::Pending {
        return None;
    }
    task.epoch += 1;
    task.attempts += 1;
    task.state = TaskState::Leased {
        worker: worker.to_string(),
        deadline_ms: now_ms.saturating_add(ttl_ms),
    };
    Some(task.epoch)
}

/// Check that `worker` holds the lease `epoch` of `task`.
pub fn check(task: &Task, worker: &str, epoch: u64) -> Result<(), Fence> {
    let TaskState::Leased { worker: holder, .. } = &task.state else {
        return Err(Fence::NotLeased(task.id.clone()));
    };
    if epoch != task.epoch {
        return Err(Fence::StaleEpoch {
            task: task.id.clone(),
            given: epoch,
            current: task.epoch,
        });
    }
    if holder != worker {
        return Err(Fence::OtherWorker(task.id.clone()));
    }
    Ok(())
}

/// Extend a held lease.
pub fn heartbeat(
    task: &mut Task,
    worker: &str,
    epoch: u64,
    now_ms: u64,
    ttl_ms: u64,
) -> Result<(), Fence> {
    check(task, worker, epoch)?;
    task.state = TaskState::Leased {
        worker: worker.to_string(),
        deadline_ms: now_ms.saturating_add(ttl_ms),
    };
    Ok(())
}

/// Give a held lease back: the task is pending again. A lease given back
/// is not a spent attempt: the worker ran nothing to the end (shutdown, or
/// work beyond its capacity), so only expiries count towards
/// [`MAX_ATTEMPTS`].
pub fn release(task: &mut Task, worker: &str, epoch: u64) -> Result<(), Fence> {
    check(task, worker, epoch)?;
    task.state = TaskState::Pending;
    task.attempts = task.attempts.saturating_sub(1);
    Ok(())
}

/// Finish a held lease.
pub fn complete(task: &mut Task, worker: &str, epoch: u64) -> Result<(), Fence> {
    check(task, worker, epoch)?;
    task.state = TaskState::Done;
    Ok(())
}

/// What [`expire`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expiry {
    /// The lease is still valid, or the task is not leased.
    Kept,
    /// The lease ran out: the task is pending again.
    Requeued,
    /// The lease ran out and attempts are spent: the task failed.
    Failed(String),
}

/// Expire the lease of `task` if its deadline passed.
pub fn expire(task: &mut Task, now_ms: u64, max_attempts: u32) -> Expiry {
    let TaskState::Leased {
        worker,
        deadline_ms,
    } = &task.state
    else {
        return Expiry::Kept;
    };
    if now_ms < *deadline_ms {
        return Expiry::Kept;
    }
    if task.attempts >= max_attempts {
        let reason = format!(
            "lease expired {} times (last worker {worker})",
            task.attempts
        );
        task.state = TaskState::Failed {
            reason: reason.clone(),
        };
        Expiry::Failed(reason)
    } else {
        task.state = TaskState::Pending;
        Expiry::Requeued
    }
}

#[cfg(test)]
mod tests;
