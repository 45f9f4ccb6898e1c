//! Scheduling as pure functions over plain data (DESIGN §2–§3): sharding,
//! target dedup, probe batching, and the lease life cycle with fencing.
//! No I/O and no clock: callers pass `now_ms`.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::wire::task::SlotKind;
use mxscope_common::DomainRecord;

use crate::model::{Target, Task, TaskKind, TaskState};

/// Domains per resolve task.
pub const SHARD_SIZE: usize = 250;
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
        kind: TaskKind::Resolve { domains },
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
            kind: TaskKind::Probe {
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
mod tests {
    use super::*;
    use mxscope_common::wire::task::{ItemBudget, ItemsTaken};
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("d{i}.example")).collect()
    }

    #[test]
    fn a_released_lease_spends_no_attempt() {
        let mut task = resolve_tasks("s1", &["A".into()], &names(1), 1).remove(0);
        for _ in 0..5 {
            let epoch = lease(&mut task, "w1", 0, 10).unwrap();
            release(&mut task, "w1", epoch).unwrap();
        }
        assert_eq!(task.attempts, 0);
        lease(&mut task, "w1", 0, 10).unwrap();
        assert_eq!(
            expire(&mut task, 10, 1),
            Expiry::Failed("lease expired 1 times (last worker w1)".into())
        );
    }

    #[test]
    fn lease_life_cycle_with_fencing() {
        let mut task = resolve_tasks("s1", &["A".into()], &names(3), 10).remove(0);
        assert_eq!(lease(&mut task, "w1", 0, 100), Some(1));
        assert_eq!(lease(&mut task, "w2", 0, 100), None, "already leased");
        assert!(heartbeat(&mut task, "w1", 1, 50, 100).is_ok());
        assert_eq!(
            expire(&mut task, 120, 3),
            Expiry::Kept,
            "heartbeat extended"
        );
        assert_eq!(expire(&mut task, 150, 3), Expiry::Requeued);
        assert_eq!(lease(&mut task, "w2", 150, 100), Some(2));
        // The first worker's late result carries epoch 1: stale.
        assert!(matches!(
            complete(&mut task, "w1", 1),
            Err(Fence::StaleEpoch {
                given: 1,
                current: 2,
                ..
            })
        ));
        assert!(complete(&mut task, "w2", 2).is_ok());
        assert_eq!(task.state, TaskState::Done);
        assert_eq!(
            complete(&mut task, "w2", 2),
            Err(Fence::NotLeased(task.id.clone()))
        );
    }

    #[test]
    fn attempts_are_bounded() {
        let mut task = resolve_tasks("s1", &["A".into()], &names(1), 10).remove(0);
        for attempt in 1..=3 {
            lease(&mut task, "w", 0, 10).unwrap();
            let expiry = expire(&mut task, 10, 3);
            if attempt < 3 {
                assert_eq!(expiry, Expiry::Requeued);
            } else {
                assert!(matches!(expiry, Expiry::Failed(_)));
            }
        }
        assert!(matches!(task.state, TaskState::Failed { .. }));
        assert_eq!(lease(&mut task, "w", 0, 10), None);
    }

    #[test]
    fn targets_merge_names_per_ip() {
        use mxscope_common::{DnsResult, DnsStatus, MxEntry};
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let record = |domain: &str, mx: &str| {
            let mut dns = DnsResult::failed(DnsStatus::Ok, "");
            dns.error = None;
            dns.mx = vec![MxEntry {
                preference: 10,
                exchange: mx.into(),
                addresses: vec![ip],
                status: DnsStatus::Ok,
            }];
            DomainRecord::new(domain.into(), dns)
        };
        let targets = targets_of(&[
            record("a.example", "mx1.example"),
            record("b.example", "mx2.example"),
        ]);
        assert_eq!(targets.len(), 1);
        assert_eq!(targets[&ip].len(), 2);
    }

    proptest! {
        #[test]
        fn every_domain_in_exactly_one_shard_per_vantage(n in 0usize..2000, size in 1usize..300, v in 1usize..4) {
            let domains = names(n);
            let vantages: Vec<String> = (0..v).map(|i| format!("v{i}")).collect();
            let tasks = resolve_tasks("s1", &vantages, &domains, size);
            let mut seen: HashMap<(String, String), usize> = HashMap::new();
            let mut order: HashMap<String, Vec<String>> = HashMap::new();
            for task in &tasks {
                let TaskKind::Resolve { domains } = &task.kind else { unreachable!() };
                prop_assert!(!domains.is_empty() && domains.len() <= size);
                for d in domains {
                    *seen.entry((task.vantage.clone(), d.clone())).or_default() += 1;
                }
                order.entry(task.vantage.clone()).or_default().extend(domains.iter().cloned());
            }
            prop_assert_eq!(seen.len(), n * v);
            prop_assert!(seen.values().all(|c| *c == 1));
            let ids: BTreeSet<_> = tasks.iter().map(|t| &t.id).collect();
            prop_assert_eq!(ids.len(), tasks.len(), "task ids are unique");
            // Each vantage's tasks, by number, give the list back in order;
            // every shard but the last is full.
            for vantage in &vantages {
                let mut own: Vec<&Task> = tasks.iter().filter(|t| &t.vantage == vantage).collect();
                own.sort_by_key(|t| task_seq(&t.id, TaskClass::Resolve));
                let seqs: Vec<u64> = own.iter().filter_map(|t| task_seq(&t.id, TaskClass::Resolve)).collect();
                prop_assert_eq!(seqs, (0..own.len() as u64).collect::<Vec<_>>());
                let back: Vec<String> = own.iter().flat_map(|t| match &t.kind {
                    TaskKind::Resolve { domains } => domains.clone(),
                    TaskKind::Probe { .. } => Vec::new(),
                }).collect();
                prop_assert_eq!(&back, &domains);
                prop_assert!(own.iter().rev().skip(1).all(|t| t.items() == size));
            }
        }

        #[test]
        fn every_target_in_exactly_one_probe_task(n in 0u32..500, batch in 1usize..64) {
            let targets: Vec<Target> = (0..n)
                .map(|i| Target { ip: IpAddr::from(i.to_be_bytes()), mx_names: vec![] })
                .collect();
            let tasks = probe_tasks("s1", "A", 7, targets.clone(), batch);
            let mut seen = BTreeSet::new();
            for task in &tasks {
                let TaskKind::Probe { targets } = &task.kind else { unreachable!() };
                prop_assert!(!targets.is_empty() && targets.len() <= batch);
                for t in targets {
                    prop_assert!(seen.insert(t.ip), "target in two tasks");
                }
            }
            prop_assert_eq!(seen.len(), n as usize);
        }

        /// A queue refilled by [`refill`] while it is drained at random
        /// never holds more than its window, reads every task number of the
        /// feed once and in order, and runs dry only when the feed has.
        #[test]
        fn refill_reads_every_task_once_within_the_window(
            end in 0u64..500,
            window in 0usize..80,
            drains in proptest::collection::vec(0usize..40, 1..200),
        ) {
            let mut next = 0u64;
            let mut queue: std::collections::VecDeque<u64> = Default::default();
            let mut read = Vec::new();
            for drain in drains.into_iter().chain(std::iter::repeat_n(usize::MAX, 600)) {
                for _ in 0..drain.min(queue.len()) {
                    queue.pop_front();
                }
                match refill(queue.len(), window, next, end) {
                    Some(range) => {
                        prop_assert!(range.start == next && range.start < range.end && range.end <= end);
                        prop_assert!(queue.len() + (range.end - range.start) as usize <= window.max(2));
                        read.extend(range.clone());
                        queue.extend(range.clone());
                        next = range.end;
                    }
                    None => prop_assert!(next == end || queue.len() >= window.max(2) / 2),
                }
            }
            prop_assert_eq!(read, (0..end).collect::<Vec<_>>());
        }

        /// A lease call taking tasks of random kinds and sizes while its
        /// budget allows: a kind without room gets nothing, a kind with
        /// room gets at least one task, and no kind passes its bound by
        /// more than its last task; 0 is no bound.
        #[test]
        fn a_lease_stays_within_its_budget(
            tasks in proptest::collection::vec((proptest::bool::ANY, 1usize..40), 0..60),
            shared in proptest::option::of(0usize..200),
            sessions in 0usize..100,
            resolutions in 0usize..100,
        ) {
            let budget = match shared {
                Some(max) => ItemBudget::Shared(max),
                None => ItemBudget::Split { sessions, resolutions },
            };
            let kind = |probe: bool| if probe { SlotKind::Session } else { SlotKind::Resolution };
            let mut taken = ItemsTaken::default();
            let (mut last, mut got) = ([0usize; 2], [0usize; 2]);
            for (probe, items) in &tasks {
                if budget.exhausted(&taken) {
                    break;
                }
                if !budget.allows(kind(*probe), &taken) {
                    continue;
                }
                taken.add(kind(*probe), *items);
                last[usize::from(*probe)] = *items;
                got[usize::from(*probe)] += 1;
            }
            let offered = |probe: bool| tasks.iter().any(|(p, _)| *p == probe);
            match budget {
                ItemBudget::Shared(0) => prop_assert_eq!(got[0] + got[1], tasks.len()),
                ItemBudget::Shared(max) => {
                    let total = taken.sessions + taken.resolutions;
                    prop_assert!(total < max + last[0].max(last[1]));
                    prop_assert!(total >= max || got[0] + got[1] == tasks.len());
                }
                ItemBudget::Split { sessions, resolutions } => {
                    for (probe, bound, took) in [(true, sessions, taken.sessions), (false, resolutions, taken.resolutions)] {
                        let i = usize::from(probe);
                        prop_assert!(bound > 0 || got[i] == 0, "a kind without room gets nothing");
                        prop_assert!(bound == 0 || !offered(probe) || got[i] > 0, "a kind with room gets a task");
                        prop_assert!(took < bound + last[i] || got[i] == 0);
                    }
                }
            }
        }

        /// Random interleavings of lease, heartbeat, expiry, release and
        /// completion by several workers: at any moment at most one epoch
        /// is accepted, and it is the latest one handed out.
        #[test]
        fn no_lease_is_held_under_two_epochs(ops in proptest::collection::vec((0u8..5, 0usize..3, 0u64..40), 1..200)) {
            let mut task = resolve_tasks("s1", &["A".into()], &names(1), 1).remove(0);
            let workers = ["w0", "w1", "w2"];
            let mut now = 0u64;
            let mut granted: Vec<(usize, u64)> = Vec::new();
            for (op, w, dt) in ops {
                now += dt;
                let worker = workers[w];
                let held = granted.iter().rev().find(|(gw, _)| *gw == w).map(|(_, e)| *e);
                match op {
                    0 => if let Some(epoch) = lease(&mut task, worker, now, 20) { granted.push((w, epoch)); },
                    1 => { if let Some(e) = held { let _ = heartbeat(&mut task, worker, e, now, 20); } }
                    2 => { let _ = expire(&mut task, now, 100); }
                    3 => { if let Some(e) = held { let _ = release(&mut task, worker, e); } }
                    _ => { if let Some(e) = held { let _ = complete(&mut task, worker, e); } }
                }
                let accepted: Vec<_> = granted
                    .iter()
                    .filter(|(gw, e)| check(&task, workers[*gw], *e).is_ok())
                    .collect();
                prop_assert!(accepted.len() <= 1, "two epochs accepted: {:?}", accepted);
                if let Some((_, e)) = accepted.first() {
                    prop_assert_eq!(*e, task.epoch);
                    prop_assert_eq!(Some(*e), granted.last().map(|(_, e)| *e));
                }
            }
        }
    }
}
