//! Leasing: hand out pending tasks (by free session slots), extend, give
//! back and take back expired leases. Decisions are made under the memory
//! lock; their store writes are applied and flushed before anyone learns
//! of them.

use std::sync::Arc;
use std::time::Duration;

use tracing::warn;

use mxscope_common::wire::task::{ItemBudget, ItemsTaken, Lease};

use crate::model::TaskState;
use crate::scheduler::{self, Expiry, TaskClass};

use super::queues::{Inner, Write};
use super::types::{Leased, ServiceError};
use super::{millis, Coordinator};

/// Most pending tasks one lease call passes over because another worker
/// holds their network.
const MAX_HELD_BACK: usize = 256;

/// Longest a lease call may wait for work (the worker's call timeout is
/// far longer; a heartbeat runs beside it).
pub const MAX_LEASE_WAIT: Duration = Duration::from_secs(10);

/// A waiting lease call looks again this often without a wake-up (network
/// hand-overs end with time: [`crate::networks::HANDOVER_MS`]).
const LEASE_RECHECK: Duration = Duration::from_millis(250);

/// Whether a lease reply holds all it may: `max` tasks, or
/// [`scheduler::MAX_LEASE_ITEMS`] items (a task goes whole, so past the
/// mark by less than one): 64 tasks of long names would near the message
/// limit.
fn reply_full(leased: &[Leased], max: usize, items: &ItemsTaken) -> bool {
    leased.len() >= max || items.total() >= scheduler::MAX_LEASE_ITEMS
}

/// What one pass over the queues leased.
struct Round {
    /// The queues ran out before the caller's bounds were reached.
    ran_dry: bool,
}

impl Coordinator {
    /// Lease up to `max` pending tasks of `vantage` to `worker`, stopping
    /// once their items reach `budget` (the worker's free slots, by kind or
    /// in all). At least one task of a kind is leased when one is pending
    /// and the budget has room for that kind.
    pub async fn lease(
        self: &Arc<Self>,
        worker: &str,
        vantage: &str,
        max: usize,
        budget: ItemBudget,
    ) -> Result<Vec<Leased>, ServiceError> {
        let (worker_id, vantage_id) = (worker.to_string(), vantage.to_string());
        let leased = self
            .blocking(move |c| c.lease_now(&worker_id, &vantage_id, max, budget))
            .await?;
        if !leased.is_empty() {
            // An epoch must never be handed out twice, even across a crash.
            self.flush_noted().await?;
        }
        Ok(leased)
    }

    /// [`Self::lease`] up to its flush: refill the window from the store,
    /// lease under `inner`, write the leases. Blocking.
    fn lease_now(
        &self,
        worker: &str,
        vantage: &str,
        max: usize,
        budget: ItemBudget,
    ) -> Result<Vec<Leased>, ServiceError> {
        // No new work while the store cannot be written (tried again now
        // and then: it resumes by itself).
        if self.storage_problem().is_some() && !self.recover_storage() {
            return Ok(Vec::new());
        }
        let now = self.now();
        let mut leased = Vec::new();
        let mut items = ItemsTaken::default();
        // A second pass when the window ran dry: it is refilled in between.
        for _ in 0..2 {
            self.refill(vantage)?;
            let round = {
                let mut inner = self.lock();
                self.lease_round(
                    &mut inner,
                    worker,
                    vantage,
                    now,
                    max,
                    budget,
                    &mut leased,
                    &mut items,
                )
            };
            let full = reply_full(&leased, max, &items) || budget.exhausted(&items);
            if full || !round.ran_dry {
                break;
            }
        }
        if !leased.is_empty() {
            self.apply_writes()?;
        }
        Ok(leased)
    }

    /// [`Self::lease`], but when nothing is leasable, wait up to `wait`
    /// (at most [`MAX_LEASE_WAIT`]) for tasks to be planned, submitted,
    /// released or expired, and answer as soon as some are (a long poll):
    /// a worker with free slots learns of new work at once instead of at
    /// its next poll. Empty after `wait` when nothing came.
    pub async fn lease_waiting(
        self: &Arc<Self>,
        worker: &str,
        vantage: &str,
        max: usize,
        budget: ItemBudget,
        wait: Duration,
    ) -> Result<Vec<Leased>, ServiceError> {
        let deadline = tokio::time::Instant::now() + wait.min(MAX_LEASE_WAIT);
        loop {
            // Registered before looking, so a wake-up in between is not missed.
            let ready = self.work_ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            let leased = self.lease(worker, vantage, max, budget).await?;
            if !leased.is_empty() {
                return Ok(leased);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(leased);
            }
            // A task held back by another worker's network becomes
            // leasable with time alone: look again now and then.
            let recheck = deadline.min(now + LEASE_RECHECK);
            tokio::select! {
                () = ready => {}
                () = tokio::time::sleep_until(recheck) => {}
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn lease_round(
        &self,
        inner: &mut Inner,
        worker: &str,
        vantage: &str,
        now: u64,
        max: usize,
        budget: ItemBudget,
        leased: &mut Vec<Leased>,
        items: &mut ItemsTaken,
    ) -> Round {
        let ttl = millis(self.config.lease_ttl);
        let egress = inner.workers.get(worker).and_then(|w| w.egress_ok);
        inner
            .seen
            .insert(worker.to_string(), (vantage.to_string(), now));
        inner.last_call.insert(worker.to_string(), now);
        let live = inner.live_workers(vantage, now, ttl);
        // Probe tasks on a network another worker holds wait (in order).
        let mut held_back: Vec<String> = Vec::new();
        let mut ran_dry = false;
        while !reply_full(leased, max, items) {
            // Probe tasks first (they finish what is resolved), each kind
            // while the worker has slots of its kind.
            let classes: Vec<TaskClass> = [TaskClass::Probe, TaskClass::Resolve]
                .into_iter()
                .filter(|class| *class == TaskClass::Resolve || egress != Some(false))
                .filter(|class| budget.allows(class.slot_kind(), items))
                .collect();
            if classes.is_empty() {
                break;
            }
            let Some(id) = inner.next_pending(vantage, &classes) else {
                ran_dry = true;
                break;
            };
            let allowed = inner
                .tasks
                .get(&id)
                .is_some_and(|t| inner.networks.allows(t, worker, now));
            if !allowed {
                held_back.push(id);
                if held_back.len() >= MAX_HELD_BACK {
                    break;
                }
                continue;
            }
            let Some(task) = inner.tasks.get_mut(&id) else {
                continue;
            };
            let before = task.state.clone();
            if scheduler::lease(task, worker, now, ttl).is_none() {
                continue;
            }
            let task = task.clone();
            items.add(TaskClass::of(&task).slot_kind(), task.items());
            inner.count(&task, &before);
            inner.networks.claim(&task, worker);
            inner.write(Write::Task(task.clone()));
            let mut options = inner
                .scans
                .get(&task.scan)
                .map(|s| s.options.clone())
                .unwrap_or_default();
            // The joined list as of now: a reload reaches running scans.
            options.exclusions = self.exclusions.for_scan(&options).to_lines();
            // This worker's share of the vantage's sessions/s cap.
            if options.vantage_rate_milli > 0 {
                options.vantage_rate_milli = (options.vantage_rate_milli / live).max(1);
            }
            leased.push(Leased {
                deadline_ms: now.saturating_add(ttl),
                task,
                options,
            });
        }
        for id in held_back.into_iter().rev() {
            inner.enqueue_front(&id);
        }
        Round { ran_dry }
    }

    /// Extend the leases `worker` holds; returns (extended, lost).
    pub fn heartbeat(
        &self,
        worker: &str,
        leases: &[Lease],
    ) -> Result<(Vec<Lease>, Vec<Lease>), ServiceError> {
        let now = self.now();
        let ttl = millis(self.config.lease_ttl);
        let mut inner = self.lock();
        if let Some(seen) = inner.seen.get_mut(worker) {
            seen.1 = now;
        }
        inner.last_call.insert(worker.to_string(), now);
        let (mut extended, mut lost) = (Vec::new(), Vec::new());
        for lease in leases {
            let held = match inner.tasks.get_mut(&lease.task_id) {
                Some(task) => scheduler::heartbeat(task, worker, lease.epoch, now, ttl).is_ok(),
                None => false,
            };
            if held {
                extended.push(lease.clone());
            } else {
                lost.push(lease.clone());
            }
        }
        Ok((extended, lost))
    }

    /// Give a lease back unfinished.
    pub async fn release(
        self: &Arc<Self>,
        worker: &str,
        task_id: &str,
        epoch: u64,
    ) -> Result<(), ServiceError> {
        let now = self.now();
        {
            let mut inner = self.lock();
            let Some(task) = inner.tasks.get_mut(task_id) else {
                return Err(ServiceError::NotFound(task_id.to_string()));
            };
            let before = task.state.clone();
            scheduler::release(task, worker, epoch)?;
            let task = task.clone();
            inner.count(&task, &before);
            inner.networks.release(task_id, now);
            inner.enqueue_front(task_id);
            inner.write(Write::Task(task));
        }
        self.blocking(Self::apply_writes).await?;
        self.flush_noted().await?;
        self.wake_leasers();
        Ok(())
    }

    /// Give back every lease at once, as if each holder had released it (no
    /// attempt spent): for `mxscope scan --resume`, whose directory lock
    /// proves that the worker that held them is gone. Returns how many.
    pub async fn take_back_leases(self: &Arc<Self>) -> Result<usize, ServiceError> {
        let now = self.now();
        let taken = {
            let mut inner = self.lock();
            let held: Vec<(String, String, u64)> = inner
                .tasks
                .values()
                .filter_map(|t| match &t.state {
                    TaskState::Leased { worker, .. } => {
                        Some((t.id.clone(), worker.clone(), t.epoch))
                    }
                    _ => None,
                })
                .collect();
            for (id, worker, epoch) in &held {
                let Some(task) = inner.tasks.get_mut(id) else {
                    continue;
                };
                let before = task.state.clone();
                if scheduler::release(task, worker, *epoch).is_err() {
                    continue;
                }
                let task = task.clone();
                inner.count(&task, &before);
                inner.networks.release(id, now);
                inner.enqueue_front(id);
                inner.write(Write::Task(task));
            }
            held.len()
        };
        if taken > 0 {
            self.blocking(Self::apply_writes).await?;
            self.flush_noted().await?;
            self.wake_leasers();
        }
        Ok(taken)
    }

    /// Take back expired leases: requeue, or record the items failed after
    /// too many attempts. Returns how many leases expired.
    pub async fn expire_leases(self: &Arc<Self>) -> Result<usize, ServiceError> {
        let now = self.now();
        let window = self.worker_window();
        let expired = {
            let mut inner = self.lock();
            inner.prune_workers(now, window);
            let leased: Vec<String> = inner
                .tasks
                .values()
                .filter(|t| matches!(t.state, TaskState::Leased { .. }))
                .map(|t| t.id.clone())
                .collect();
            let mut expired = 0;
            for id in leased {
                let Some(task) = inner.tasks.get_mut(&id) else {
                    continue;
                };
                let before = task.state.clone();
                let expiry = scheduler::expire(task, now, self.config.max_attempts);
                if expiry == Expiry::Kept {
                    continue;
                }
                expired += 1;
                let task = task.clone();
                if let Expiry::Failed(reason) = &expiry {
                    warn!(task = %task.id, %reason, "task failed");
                    inner.write(Write::FailItems(task.clone(), reason.clone()));
                }
                inner.count(&task, &before);
                inner.networks.release(&task.id, now);
                inner.write(Write::Task(task.clone()));
                if task.state == TaskState::Pending {
                    inner.enqueue_front(&task.id);
                } else {
                    inner.tasks.remove(&task.id);
                    self.finish_scan_if_done(&mut inner, &task.scan);
                }
            }
            expired
        };
        if expired > 0 {
            self.blocking(Self::apply_writes).await?;
            self.flush_noted().await?;
            self.wake_leasers();
        }
        Ok(expired)
    }
}
