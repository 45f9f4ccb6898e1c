//! The coordinator: the store, the scheduler and the clock put together.
//!
//! Memory holds the work in flight, not the list: a bounded window of
//! pending tasks per (vantage, class), every leased task, counters. The
//! rest of every scan (its tasks, target claims, results) is in the store
//! and streamed from it. Every state change is written to the store before
//! anyone learns of it, and result batches are acknowledged only after a
//! flush. A coordinator opened on the same store resumes every scan:
//! pending tasks are fed again, leases keep their epoch and deadline.
//!
//! Locking: `inner` (memory only) is never held across store I/O. State
//! changes decided under it queue their store writes ([`queues::Write`]);
//! `writer` applies them in decision order, outside `inner`.
//!
//! Layout:
//! - [`types`]: configuration, requests, answers, [`ServiceError`] and its kinds.
//! - [`clock`]: the injected clock (system, or tokio's for tests).
//! - `queues`: the in-memory window, feeds over the store, progress.
//! - `lease`: lease, heartbeat, release, expiry.
//! - `ingest`: result batches, probe planning from resolve results.
//! - `submit`: streamed submissions staged in the store.

pub mod clock;
mod headline;
mod ingest;
mod lease;
mod queues;
mod storage;
mod submit;
#[cfg(test)]
mod tests;
pub mod types;

use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tracing::{info, warn};

use crate::exclusion::ExclusionSet;
use crate::model::{ScanMeta, ScanState, Task, TaskState};
use crate::scheduler::{self, TaskClass};
use crate::store::Store;

pub use clock::{now_ms, Clock, SystemClock, TokioClock};
pub use lease::MAX_LEASE_WAIT;
pub use submit::Submission;
pub use types::{
    CoordinatorConfig, ErrorKind, Leased, ScanRequest, ScanStatus, ServiceError, Submitted,
    TaskCounts, WorkerHello, MAX_REPORTED_INVALID, MAX_SUBMIT_BYTES, MAX_SUBMIT_LINES, WINDOW,
};

use queues::{Inner, Write};

/// The coordinator.
#[derive(Debug)]
pub struct Coordinator {
    store: Store,
    config: CoordinatorConfig,
    inner: Mutex<Inner>,
    /// Held while queued writes are applied (keeps them in decision order)
    /// and while probes are planned (claims are read, then written).
    writer: Mutex<()>,
    /// Held while a window is read from the store (one refill at a time).
    refill: Mutex<()>,
    exclusions: ExclusionSet,
    clock: Arc<dyn Clock>,
    /// Numbers the staging trees of submissions in progress.
    submissions: AtomicU64,
    /// One permit per submission being received ([`MAX_SUBMISSIONS`]).
    submitting: Arc<tokio::sync::Semaphore>,
    /// Whether store writes succeed ([`storage`]).
    storage: Mutex<storage::StorageHealth>,
    /// Woken when tasks may have become leasable (planned, submitted,
    /// released, expired, a network freed): lease calls waiting for work.
    work_ready: tokio::sync::Notify,
}

/// The coordinator's memory as the store holds it: every scan, the progress
/// of each (every stored task counted once), the leased tasks of running
/// scans with their networks, and where each pending queue's feed ends
/// (pending tasks are fed from the store when needed). Blocking.
fn load(store: &Store) -> Result<Inner, ServiceError> {
    let mut inner = Inner::default();
    for scan in store.scans()? {
        inner.progress.entry(scan.id.clone()).or_default();
        inner.scans.insert(scan.id.clone(), scan);
    }
    // (scan, vantage, class) → one past the highest task number.
    let mut ends: HashMap<(String, String, TaskClass), u64> = HashMap::new();
    let mut leased = 0usize;
    for task in store.tasks() {
        let task = task?;
        // A reader's store keeps the tasks of an interrupted
        // submission: without their scan's meta they do not exist.
        if !inner.scans.contains_key(&task.scan) {
            continue;
        }
        let class = TaskClass::of(&task);
        inner.count_new(&task.scan, class, &task.state, 1, task.items() as u64);
        if let TaskState::Failed { .. } = task.state {
            if let Some(p) = inner.progress.get_mut(&task.scan) {
                p.failed_items += task.items() as u64;
            }
        }
        if let Some(seq) = scheduler::task_seq(&task.id, class) {
            let end = ends
                .entry((task.scan.clone(), task.vantage.clone(), class))
                .or_default();
            *end = (*end).max(seq + 1);
        }
        let running = inner
            .scans
            .get(&task.scan)
            .is_some_and(|s| s.state == ScanState::Running);
        if let (true, TaskState::Leased { worker, .. }) = (running, &task.state) {
            // Resumed after a restart: the lease still holds its networks.
            inner.networks.claim(&task, &worker.clone());
            inner.loaded.insert(task.id.clone());
            inner.tasks.insert(task.id.clone(), task);
            leased += 1;
        }
    }
    for ((scan, vantage, class), end) in ends {
        let running = inner
            .scans
            .get(&scan)
            .is_some_and(|s| s.state == ScanState::Running);
        if running {
            inner.feed(&scan, &vantage, class).end = end;
        }
    }
    info!(
        scans = inner.scans.len(),
        leased_tasks = leased,
        "coordinator opened"
    );
    Ok(inner)
}

/// Most submissions received at once: each stages up to
/// [`crate::store::RUN_NAMES`] names in memory before it spills them to
/// disk, so this bounds that memory (docs/guide.md states the budget). One
/// more is refused (`UNAVAILABLE`, "retry later") until one ends.
pub const MAX_SUBMISSIONS: usize = 4;

/// How long a worker that neither registered, leased nor heartbeated is
/// remembered (its egress verdict, its share of a vantage's cap), at least.
const WORKER_MEMORY: Duration = Duration::from_secs(600);

/// Most windows one refill reads (past tasks finished before a restart).
const MAX_REFILL_ROUNDS: usize = 64;

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a lock leaves consistent data (memory is
    // changed only after its checks; writes are queued): keep going.
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

impl Coordinator {
    /// Load every scan from `store` and resume, on the system clock.
    pub fn open(store: Store, config: CoordinatorConfig) -> Result<Self, ServiceError> {
        Self::open_with_clock(store, config, Arc::new(SystemClock))
    }

    /// [`Self::open`] with another clock (tests: [`TokioClock`]).
    /// Streams every stored task once: counts progress, keeps only the
    /// leased ones; pending ones are fed from the store when needed.
    pub fn open_with_clock(
        store: Store,
        config: CoordinatorConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, ServiceError> {
        let inner = load(&store)?;
        Ok(Self {
            store,
            config,
            inner: Mutex::new(inner),
            writer: Mutex::new(()),
            refill: Mutex::new(()),
            exclusions: ExclusionSet::default(),
            clock,
            submissions: AtomicU64::new(0),
            submitting: Arc::new(tokio::sync::Semaphore::new(MAX_SUBMISSIONS)),
            storage: Mutex::default(),
            work_ready: tokio::sync::Notify::new(),
        })
    }

    /// The coordinator's exclusion list (every scan's), replaceable at run
    /// time: what is planned or leased from then on follows the new list.
    pub fn exclusions(&self) -> &ExclusionSet {
        &self.exclusions
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        lock(&self.inner)
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// Remember a worker; workers whose egress check failed get no probe tasks.
    pub fn register(&self, hello: WorkerHello) {
        if hello.egress_ok == Some(false) {
            warn!(worker = %hello.worker_id, vantage = %hello.vantage, "worker has no port-25 egress: it gets resolve tasks only");
        }
        info!(worker = %hello.worker_id, vantage = %hello.vantage, capacity = hello.capacity, "worker registered");
        let now = self.now();
        let window = self.worker_window();
        let mut inner = self.lock();
        inner.prune_workers(now, window);
        inner.last_call.insert(hello.worker_id.clone(), now);
        inner.workers.insert(hello.worker_id.clone(), hello);
    }

    /// How long an idle worker is remembered: [`WORKER_MEMORY`], or ten
    /// lease lifetimes when that is longer.
    pub(super) fn worker_window(&self) -> u64 {
        millis((self.config.lease_ttl * 10).max(WORKER_MEMORY))
    }

    /// Workers remembered (registered, leasing or heartbeating within the
    /// window): what the worker maps hold.
    pub fn workers_remembered(&self) -> usize {
        self.lock().workers.len()
    }

    /// The one boundary between async code and blocking work (sled, files,
    /// the store's reopening): `work` runs on tokio's blocking pool with
    /// this coordinator, so no async thread waits on the disk. The async
    /// methods decide under `inner` and write in here.
    pub async fn blocking<T: Send + 'static>(
        self: &Arc<Self>,
        work: impl FnOnce(&Self) -> Result<T, ServiceError> + Send + 'static,
    ) -> Result<T, ServiceError> {
        let this = Arc::clone(self);
        tokio::task::spawn_blocking(move || work(&this))
            .await
            .map_err(|e| ServiceError::Join(e.to_string()))?
    }

    /// Stop a scan: no more leases; workers learn it at their next heartbeat.
    pub async fn cancel(self: &Arc<Self>, scan_id: &str) -> Result<ScanStatus, ServiceError> {
        let now = self.now();
        {
            let mut inner = self.lock();
            let Some(meta) = inner.scans.get_mut(scan_id) else {
                return Err(ServiceError::NotFound(format!("scan {scan_id}")));
            };
            if meta.state == ScanState::Running {
                meta.state = ScanState::Cancelled;
                meta.finished_ms = Some(now);
                let meta = meta.clone();
                inner.write(Write::Scan(meta));
                inner.write(Write::PruneClaims(scan_id.to_string()));
                inner.drop_scan_work(scan_id, now);
            }
        }
        self.blocking(Self::apply_writes).await?;
        self.flush_noted().await?;
        let scan_id = scan_id.to_string();
        self.blocking(move |c| c.status(&scan_id)).await
    }

    /// A scan's progress.
    pub fn status(&self, scan_id: &str) -> Result<ScanStatus, ServiceError> {
        let (meta, resolve, probe, failed_items) = {
            let inner = self.lock();
            let meta = inner
                .scans
                .get(scan_id)
                .cloned()
                .ok_or_else(|| ServiceError::NotFound(format!("scan {scan_id}")))?;
            let progress = inner.progress.get(scan_id);
            (
                meta,
                progress.map(|p| p.resolve).unwrap_or_default(),
                progress.map(|p| p.probe).unwrap_or_default(),
                progress.map_or(0, |p| p.failed_items),
            )
        };
        Ok(ScanStatus {
            resolve,
            probe,
            failed_items,
            domain_records: self.store.count_domain_records(scan_id)?,
            target_records: self.store.count_target_records(scan_id)?,
            tallies: self.store.tallies(scan_id)?.into_iter().collect(),
            storage_problem: self.storage_problem(),
            meta,
        })
    }

    /// Every scan, oldest first.
    pub fn list(&self) -> Result<Vec<ScanStatus>, ServiceError> {
        let mut ids: Vec<ScanMeta> = self.lock().scans.values().cloned().collect();
        ids.sort_by_key(|m| (m.created_ms, m.id.clone()));
        ids.iter().map(|m| self.status(&m.id)).collect()
    }

    /// The store, for streaming results out.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Apply the queued store writes, in the order they were decided.
    fn apply_writes(&self) -> Result<(), ServiceError> {
        let writer = lock(&self.writer);
        self.apply_writes_locked(&writer)
    }

    /// A store result, noted in the write health (an I/O failure stops
    /// new work, see [`storage`]).
    pub(crate) fn noted<T>(
        &self,
        result: Result<T, crate::store::StoreError>,
    ) -> Result<T, ServiceError> {
        if let Err(error) = &result {
            lock(&self.storage).note(error, self.store.dir());
        }
        Ok(result?)
    }

    /// Flush the store, noting a failure.
    async fn flush_noted(&self) -> Result<(), ServiceError> {
        let flushed = self.store.flush().await;
        self.noted(flushed)
    }

    /// While the store fails (and at most every [`storage::RETRY_EVERY`]):
    /// reopen it, try a write, and when it takes one, reload the memory
    /// from it as a restart would — keeping what is known of the workers —
    /// and end the failing state. Whether the store is writable now.
    /// Blocking (sled), like the service's other store calls.
    pub(crate) fn recover_storage(&self) -> bool {
        if !lock(&self.storage).retry_due() {
            return self.storage_problem().is_none();
        }
        // Reopening sled on a still-full disk fails and leaves it closed:
        // first a file of a log segment's size must fit beside it.
        if let Err(error) = storage::room_for_a_segment(self.store.dir()) {
            let error = crate::store::StoreError::Storage(Box::new(error));
            lock(&self.storage).note(&error, self.store.dir());
            return false;
        }
        // No task state is decided or written while the memory is swapped.
        let _writer = lock(&self.writer);
        let reopened = self.store.reopen().and_then(|()| self.store.probe_write());
        if let Err(error) = reopened {
            lock(&self.storage).note(&error, self.store.dir());
            return false;
        }
        let fresh = match load(&self.store) {
            Ok(fresh) => fresh,
            Err(error) => {
                warn!(%error, "reloading from the store after it became writable again");
                return false;
            }
        };
        {
            let mut inner = self.lock();
            let old = std::mem::replace(&mut *inner, fresh);
            inner.workers = old.workers;
            inner.seen = old.seen;
            inner.last_call = old.last_call;
        }
        lock(&self.storage).recovered(self.store.dir());
        self.wake_leasers();
        true
    }

    /// What is wrong with the store's writes, `None` while they succeed.
    pub fn storage_problem(&self) -> Option<String> {
        lock(&self.storage).problem(self.store.dir())
    }

    /// How long the store's writes have been failing.
    pub fn storage_failing_for(&self) -> Option<Duration> {
        lock(&self.storage).failing_for()
    }

    /// [`Self::apply_writes`] for a caller that holds `writer`.
    fn apply_writes_locked(&self, _writer: &MutexGuard<'_, ()>) -> Result<(), ServiceError> {
        let writes = std::mem::take(&mut self.lock().outbox);
        let mut failed: HashMap<String, u64> = HashMap::new();
        for write in writes {
            match write {
                Write::Task(task) => self.noted(self.store.put_task(&task))?,
                Write::Scan(meta) => self.noted(self.store.put_scan(&meta))?,
                Write::FailItems(task, reason) => {
                    let n = ingest::record_failed_items(&self.store, &task, &reason)?;
                    *failed.entry(task.scan.clone()).or_default() += n;
                }
                Write::PruneClaims(scan) => {
                    let removed = self.store.prune_claims(&scan)?;
                    tracing::debug!(scan = %scan, removed, "target claims pruned");
                }
            }
        }
        if !failed.is_empty() {
            let mut inner = self.lock();
            for (scan, n) in failed {
                if let Some(progress) = inner.progress.get_mut(&scan) {
                    progress.failed_items += n;
                }
            }
        }
        Ok(())
    }

    /// Bring the queues of `vantage` back to their window from the store.
    fn refill(&self, vantage: &str) -> Result<(), ServiceError> {
        let _refill = lock(&self.refill);
        for class in [TaskClass::Probe, TaskClass::Resolve] {
            // A few rounds: a feed that runs dry passes on to the next scan's.
            for _ in 0..MAX_REFILL_ROUNDS {
                let Some(read) = self.lock().plan_refill(vantage, class, self.config.window) else {
                    break;
                };
                let mut tasks: Vec<Task> = Vec::with_capacity(read.ids.len());
                for id in &read.ids {
                    // A task made but not yet written ends this read.
                    let Some(task) = self.store.task(id)? else {
                        break;
                    };
                    tasks.push(task);
                }
                let complete = tasks.len() == read.ids.len();
                self.lock().admit_read(&read, tasks);
                if !complete {
                    break;
                }
            }
        }
        Ok(())
    }

    /// Wake the lease calls waiting for work: tasks may have become leasable.
    fn wake_leasers(&self) {
        self.work_ready.notify_waiters();
    }

    /// Mark a scan done when every task is: a queued write.
    fn finish_scan_if_done(&self, inner: &mut Inner, scan_id: &str) {
        let finished = inner
            .progress
            .get(scan_id)
            .is_some_and(|p| p.resolve.finished() && p.probe.finished());
        let now = self.now();
        let Some(meta) = inner.scans.get_mut(scan_id) else {
            return;
        };
        if finished && meta.state == ScanState::Running {
            meta.state = ScanState::Done;
            meta.finished_ms = Some(now);
            let meta = meta.clone();
            inner.write(Write::Scan(meta));
            inner.write(Write::PruneClaims(scan_id.to_string()));
            inner.feeds.retain(|f| f.scan != scan_id);
            info!(scan = %scan_id, "scan done");
        }
    }
}
