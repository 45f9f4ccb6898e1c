//! The coordinator: the store, the scheduler and the clock put together.
//!
//! Unfinished tasks live in memory (and in the store); every state change is
//! written to the store before anyone learns of it, and result batches are
//! acknowledged only after a flush. A coordinator opened on the same store
//! resumes every scan: pending tasks are queued again, leases keep their
//! epoch and deadline.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mxscope_common::tally::VantageTally;
use mxscope_common::{
    DnsResult, DnsStatus, DomainListBuilder, DomainRecord, InvalidLine, Outcome, Record,
    TargetRecord,
};
use tracing::{info, warn};

use crate::exclusion::{self, ExclusionSet};
use crate::model::{ScanMeta, ScanOptions, ScanState, Target, Task, TaskKind, TaskState};
use crate::networks::NetworkClaims;
use crate::scheduler::{self, Expiry, Fence};
use crate::store::{Store, StoreError};

/// Most pending tasks one lease call passes over because another worker
/// holds their network.
const MAX_HELD_BACK: usize = 256;

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
}

impl Default for CoordinatorConfig {
    fn default() -> Self {
        Self {
            lease_ttl: Duration::from_secs(60),
            heartbeat_interval: Duration::from_secs(10),
            max_attempts: scheduler::MAX_ATTEMPTS,
            shard_size: scheduler::SHARD_SIZE,
            probe_batch: scheduler::PROBE_BATCH,
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
    /// The store failed; the request may be retried.
    #[error(transparent)]
    Store(#[from] StoreError),
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
}

impl TaskCounts {
    fn add(&mut self, state: &TaskState, delta: i64) {
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
    pub tallies: BTreeMap<String, VantageTally>,
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

/// A lease as workers name it: (task id, epoch).
pub type LeaseRef = (String, u64);

/// A task handed to a worker.
#[derive(Debug, Clone)]
pub struct Leased {
    pub task: Task,
    pub deadline_ms: u64,
    pub options: ScanOptions,
}

#[derive(Debug, Default)]
struct Progress {
    resolve: TaskCounts,
    probe: TaskCounts,
    failed_items: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Unfinished tasks (pending or leased).
    tasks: HashMap<String, Task>,
    /// Pending task ids per vantage: probe tasks first, then resolve.
    probe_queue: HashMap<String, VecDeque<String>>,
    resolve_queue: HashMap<String, VecDeque<String>>,
    /// IPs that already have a probe task, per (scan, vantage).
    claimed: HashSet<(String, String, IpAddr)>,
    next_probe_seq: HashMap<(String, String), u64>,
    progress: HashMap<String, Progress>,
    scans: HashMap<String, ScanMeta>,
    workers: HashMap<String, WorkerHello>,
    /// Worker → (vantage, last lease or heartbeat), for the vantage cap's shares.
    seen: HashMap<String, (String, u64)>,
    /// Networks held by leased probe tasks (one worker per network).
    networks: NetworkClaims,
}

/// The coordinator.
#[derive(Debug)]
pub struct Coordinator {
    store: Store,
    config: CoordinatorConfig,
    inner: Mutex<Inner>,
    exclusions: ExclusionSet,
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

impl Coordinator {
    /// Load every scan and task from `store` and resume.
    pub fn open(store: Store, config: CoordinatorConfig) -> Result<Self, ServiceError> {
        let mut inner = Inner::default();
        for scan in store.scans()? {
            inner.progress.entry(scan.id.clone()).or_default();
            inner.scans.insert(scan.id.clone(), scan);
        }
        let mut tasks: Vec<Task> = Vec::new();
        for task in store.tasks() {
            tasks.push(task?);
        }
        tasks.sort_by(|a, b| a.id.cmp(&b.id));
        for task in tasks {
            inner.admit(task);
        }
        // Scans cancelled before a restart keep no queued work.
        let cancelled: Vec<String> = inner
            .scans
            .values()
            .filter(|s| s.state == ScanState::Cancelled)
            .map(|s| s.id.clone())
            .collect();
        for scan in cancelled {
            inner.drop_scan_work(&scan);
        }
        info!(
            scans = inner.scans.len(),
            unfinished_tasks = inner.tasks.len(),
            "coordinator opened"
        );
        Ok(Self {
            store,
            config,
            inner: Mutex::new(inner),
            exclusions: ExclusionSet::default(),
        })
    }

    /// The coordinator's exclusion list (every scan's), replaceable at run
    /// time: what is planned or leased from then on follows the new list.
    pub fn exclusions(&self) -> &ExclusionSet {
        &self.exclusions
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock leaves consistent data (every
        // change is written to the store first): keep going.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn config(&self) -> &CoordinatorConfig {
        &self.config
    }

    /// Store a new scan: the whole list is checked first; nothing is stored
    /// unless it is accepted (invalid lines fail it unless `skip_invalid`).
    pub async fn submit(
        &self,
        request: ScanRequest,
        lines: impl IntoIterator<Item = String>,
    ) -> Result<Submitted, ServiceError> {
        if request.vantages.is_empty() {
            return Err(ServiceError::Invalid(
                "a scan needs at least one vantage".into(),
            ));
        }
        let mut builder = DomainListBuilder::new(request.skip_invalid);
        for line in lines {
            builder
                .push_line(&line)
                .map_err(ServiceError::InvalidLine)?;
        }
        let list = builder.finish();
        if list.domains.is_empty() {
            return Err(ServiceError::Invalid(
                "the domain list holds no domain".into(),
            ));
        }
        let mut vantages = request.vantages.clone();
        vantages.sort();
        vantages.dedup();
        let domains: Vec<String> = list
            .domains
            .iter()
            .map(|d| d.as_str().to_string())
            .collect();
        let submitted = domains.len();
        let excluding = self.exclusions.for_scan(&request.options);
        let (domains, excluded) = exclusion::split_domains(&excluding, domains);
        let scan_id = self.store.next_scan_id()?;
        let meta = ScanMeta {
            id: scan_id.clone(),
            name: request.name,
            labels: request.labels,
            vantages: vantages.clone(),
            options: request.options,
            state: ScanState::Running,
            created_ms: now_ms(),
            finished_ms: None,
            domains: submitted as u64,
        };
        let shards = scheduler::shard(&domains, self.config.shard_size);
        let tasks = scheduler::resolve_tasks(&scan_id, &vantages, &shards);
        self.store.create_scan(&meta, &tasks)?;
        for vantage in &vantages {
            let records: Vec<DomainRecord> = excluded
                .iter()
                .map(|r| {
                    let mut r = r.clone();
                    r.scan = Some(scan_id.clone());
                    r.vantage = Some(vantage.clone());
                    r
                })
                .collect();
            self.store.put_domain_records(&scan_id, vantage, &records)?;
        }
        self.store.flush().await?;
        let nothing_to_do = tasks.is_empty();
        {
            let mut inner = self.lock();
            inner.progress.entry(scan_id.clone()).or_default();
            inner.scans.insert(scan_id.clone(), meta);
            for task in tasks {
                inner.admit(task);
            }
            // Everything excluded: nothing to wait for.
            self.finish_scan_if_done(&mut inner, &scan_id)?;
        }
        if nothing_to_do {
            self.store.flush().await?;
        }
        info!(scan = %scan_id, domains = submitted, excluded = excluded.len(), "scan submitted");
        Ok(Submitted {
            scan_id,
            domains: submitted as u64,
            duplicates: list.duplicates as u64,
            skipped: list.invalid,
        })
    }

    /// Remember a worker; workers whose egress check failed get no probe tasks.
    pub fn register(&self, hello: WorkerHello) {
        if hello.egress_ok == Some(false) {
            warn!(worker = %hello.worker_id, vantage = %hello.vantage, "worker has no port-25 egress: it gets resolve tasks only");
        }
        info!(worker = %hello.worker_id, vantage = %hello.vantage, capacity = hello.capacity, "worker registered");
        self.lock().workers.insert(hello.worker_id.clone(), hello);
    }

    /// Lease up to `max` pending tasks of `vantage` to `worker`, stopping
    /// once their items reach `max_items` (the worker's free session slots;
    /// 0 = no such bound). At least one task is leased when one is pending.
    pub async fn lease(
        &self,
        worker: &str,
        vantage: &str,
        max: usize,
        max_items: usize,
    ) -> Result<Vec<Leased>, ServiceError> {
        let now = now_ms();
        let ttl = millis(self.config.lease_ttl);
        let leased = {
            let mut inner = self.lock();
            let egress = inner.workers.get(worker).and_then(|w| w.egress_ok);
            inner
                .seen
                .insert(worker.to_string(), (vantage.to_string(), now));
            let live = inner.live_workers(vantage, now, ttl);
            let mut leased = Vec::new();
            let mut items = 0usize;
            // Probe tasks on a network another worker holds wait (in order).
            let mut held_back: Vec<String> = Vec::new();
            while leased.len() < max && (max_items == 0 || items < max_items) {
                let Some(id) = inner.next_pending(vantage, egress != Some(false)) else {
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
                items += task.items();
                self.store.put_task(&task)?;
                inner.count(&task, &before, &task.state);
                inner.networks.claim(&task, worker);
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
                if let Some(task) = inner.tasks.get(&id).cloned() {
                    inner.enqueue_front(&task);
                }
            }
            leased
        };
        if !leased.is_empty() {
            // An epoch must never be handed out twice, even across a crash.
            self.store.flush().await?;
        }
        Ok(leased)
    }

    /// Extend the leases `worker` holds; returns (extended, lost).
    pub fn heartbeat(
        &self,
        worker: &str,
        leases: &[LeaseRef],
    ) -> Result<(Vec<LeaseRef>, Vec<LeaseRef>), ServiceError> {
        let now = now_ms();
        let ttl = millis(self.config.lease_ttl);
        let mut inner = self.lock();
        if let Some(seen) = inner.seen.get_mut(worker) {
            seen.1 = now;
        }
        let (mut extended, mut lost) = (Vec::new(), Vec::new());
        for (id, epoch) in leases {
            let held = match inner.tasks.get_mut(id) {
                Some(task) => scheduler::heartbeat(task, worker, *epoch, now, ttl).is_ok(),
                None => false,
            };
            if held {
                extended.push((id.clone(), *epoch));
            } else {
                lost.push((id.clone(), *epoch));
            }
        }
        Ok((extended, lost))
    }

    /// Store a batch of results of a leased task; returns how many records
    /// were new. Durable when this returns.
    pub async fn report(
        &self,
        worker: &str,
        task_id: &str,
        epoch: u64,
        records: Vec<Record>,
        complete: bool,
    ) -> Result<u32, ServiceError> {
        let stored = {
            let mut inner = self.lock();
            let task = inner
                .tasks
                .get(task_id)
                .ok_or_else(|| ServiceError::Fenced(Fence::NotLeased(task_id.to_string())))?;
            scheduler::check(task, worker, epoch)?;
            let task = task.clone();
            check_belongs(&task, &records)?;
            let mut resolved = Vec::new();
            let mut probed = Vec::new();
            for record in records {
                match record {
                    Record::Domain(mut r) => {
                        r.scan = Some(task.scan.clone());
                        r.vantage = Some(task.vantage.clone());
                        r.targets.clear();
                        resolved.push(r);
                    }
                    Record::Target(mut r) => {
                        r.scan = Some(task.scan.clone());
                        r.vantage = Some(task.vantage.clone());
                        probed.push(r);
                    }
                }
            }
            let stored = self
                .store
                .put_domain_records(&task.scan, &task.vantage, &resolved)?
                + self
                    .store
                    .put_target_records(&task.scan, &task.vantage, &probed)?;
            let stored = u32::try_from(stored).unwrap_or(u32::MAX);
            if !resolved.is_empty() {
                self.plan_probes(&mut inner, &task, &resolved)?;
            }
            if complete {
                let Some(live) = inner.tasks.get_mut(task_id) else {
                    return Err(ServiceError::NotFound(task_id.to_string()));
                };
                let before = live.state.clone();
                scheduler::complete(live, worker, epoch)?;
                let done = live.clone();
                self.store.put_task(&done)?;
                inner.count(&done, &before, &done.state);
                inner.tasks.remove(task_id);
                inner.networks.release(task_id, now_ms());
                self.finish_scan_if_done(&mut inner, &done.scan)?;
            }
            stored
        };
        self.store.flush().await?;
        Ok(stored)
    }

    /// Give a lease back unfinished.
    pub async fn release(
        &self,
        worker: &str,
        task_id: &str,
        epoch: u64,
    ) -> Result<(), ServiceError> {
        {
            let mut inner = self.lock();
            let Some(task) = inner.tasks.get_mut(task_id) else {
                return Err(ServiceError::NotFound(task_id.to_string()));
            };
            let before = task.state.clone();
            scheduler::release(task, worker, epoch)?;
            let task = task.clone();
            self.store.put_task(&task)?;
            inner.count(&task, &before, &task.state);
            inner.networks.release(task_id, now_ms());
            inner.enqueue_front(&task);
        }
        self.store.flush().await?;
        Ok(())
    }

    /// Take back expired leases: requeue, or record the items failed after
    /// too many attempts. Returns how many leases expired.
    pub async fn expire_leases(&self) -> Result<usize, ServiceError> {
        let now = now_ms();
        let expired = {
            let mut inner = self.lock();
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
                    let items = self.record_failed_items(&task, reason)?;
                    if let Some(progress) = inner.progress.get_mut(&task.scan) {
                        progress.failed_items += items;
                    }
                }
                self.store.put_task(&task)?;
                inner.count(&task, &before, &task.state);
                inner.networks.release(&task.id, now);
                if task.state == TaskState::Pending {
                    inner.enqueue_front(&task);
                } else {
                    inner.tasks.remove(&task.id);
                    self.finish_scan_if_done(&mut inner, &task.scan)?;
                }
            }
            expired
        };
        if expired > 0 {
            self.store.flush().await?;
        }
        Ok(expired)
    }

    /// Stop a scan: no more leases; workers learn it at their next heartbeat.
    pub async fn cancel(&self, scan_id: &str) -> Result<ScanStatus, ServiceError> {
        {
            let mut inner = self.lock();
            let Some(meta) = inner.scans.get_mut(scan_id) else {
                return Err(ServiceError::NotFound(format!("scan {scan_id}")));
            };
            if meta.state == ScanState::Running {
                meta.state = ScanState::Cancelled;
                meta.finished_ms = Some(now_ms());
                let meta = meta.clone();
                self.store.put_scan(&meta)?;
                inner.drop_scan_work(scan_id);
            }
        }
        self.store.flush().await?;
        self.status(scan_id)
    }

    /// A scan's progress.
    pub fn status(&self, scan_id: &str) -> Result<ScanStatus, ServiceError> {
        let inner = self.lock();
        let meta = inner
            .scans
            .get(scan_id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("scan {scan_id}")))?;
        let progress = inner.progress.get(scan_id);
        Ok(ScanStatus {
            resolve: progress.map(|p| p.resolve).unwrap_or_default(),
            probe: progress.map(|p| p.probe).unwrap_or_default(),
            failed_items: progress.map_or(0, |p| p.failed_items),
            domain_records: self.store.count_domain_records(scan_id)?,
            target_records: self.store.count_target_records(scan_id)?,
            tallies: self.store.tallies(scan_id)?.into_iter().collect(),
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

    /// Turn new IPs from resolve results into probe tasks (pipelined).
    fn plan_probes(
        &self,
        inner: &mut Inner,
        task: &Task,
        resolved: &[DomainRecord],
    ) -> Result<(), ServiceError> {
        let mut fresh = Vec::new();
        for (ip, names) in scheduler::targets_of(resolved) {
            let key = (task.scan.clone(), task.vantage.clone(), ip);
            if inner.claimed.insert(key) {
                fresh.push(Target {
                    ip,
                    mx_names: names.into_iter().collect(),
                });
            }
        }
        let (options, port) = match inner.scans.get(&task.scan) {
            Some(meta) => (meta.options.clone(), meta.options.port),
            None => (ScanOptions::default(), 25),
        };
        let (fresh, excluded) =
            exclusion::split_targets(&self.exclusions.for_scan(&options), port, fresh);
        if !excluded.is_empty() {
            let records: Vec<TargetRecord> = excluded
                .into_iter()
                .map(|mut r| {
                    r.scan = Some(task.scan.clone());
                    r.vantage = Some(task.vantage.clone());
                    r
                })
                .collect();
            self.store
                .put_target_records(&task.scan, &task.vantage, &records)?;
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let seq_key = (task.scan.clone(), task.vantage.clone());
        let first = inner.next_probe_seq.get(&seq_key).copied().unwrap_or(0);
        let tasks = scheduler::probe_tasks(
            &task.scan,
            &task.vantage,
            first,
            fresh,
            self.config.probe_batch,
        );
        inner
            .next_probe_seq
            .insert(seq_key, first + tasks.len() as u64);
        self.store.put_tasks(&tasks)?;
        for task in tasks {
            inner.admit(task);
        }
        Ok(())
    }

    /// Record every item of a failed task that has no result yet as failed.
    fn record_failed_items(&self, task: &Task, reason: &str) -> Result<u64, ServiceError> {
        let mut recorded = 0;
        match &task.kind {
            TaskKind::Resolve { domains } => {
                for domain in domains {
                    let mut record = DomainRecord::new(
                        domain.clone(),
                        DnsResult::failed(DnsStatus::Error, format!("not resolved: {reason}")),
                    );
                    record.scan = Some(task.scan.clone());
                    record.vantage = Some(task.vantage.clone());
                    if self
                        .store
                        .put_domain_record(&task.scan, &task.vantage, &record)?
                    {
                        recorded += 1;
                    }
                }
            }
            TaskKind::Probe { targets } => {
                for target in targets {
                    let mut record = TargetRecord::new(target.ip, 0, target.mx_names.clone());
                    record.outcome = Outcome::Skipped;
                    record.detail = Some(format!("not probed: {reason}"));
                    record.scan = Some(task.scan.clone());
                    record.vantage = Some(task.vantage.clone());
                    if self
                        .store
                        .put_target_record(&task.scan, &task.vantage, &record)?
                    {
                        recorded += 1;
                    }
                }
            }
        }
        Ok(recorded)
    }

    fn finish_scan_if_done(&self, inner: &mut Inner, scan_id: &str) -> Result<(), ServiceError> {
        let finished = inner
            .progress
            .get(scan_id)
            .is_some_and(|p| p.resolve.finished() && p.probe.finished());
        let Some(meta) = inner.scans.get_mut(scan_id) else {
            return Ok(());
        };
        if finished && meta.state == ScanState::Running {
            meta.state = ScanState::Done;
            meta.finished_ms = Some(now_ms());
            self.store.put_scan(meta)?;
            info!(scan = %scan_id, "scan done");
        }
        Ok(())
    }
}

/// Records must be the task's own items.
fn check_belongs(task: &Task, records: &[Record]) -> Result<(), ServiceError> {
    match &task.kind {
        TaskKind::Resolve { domains } => {
            let items: HashSet<&str> = domains.iter().map(String::as_str).collect();
            for record in records {
                match record {
                    Record::Domain(r) if items.contains(r.domain.as_str()) => {}
                    Record::Domain(r) => {
                        return Err(ServiceError::Invalid(format!(
                            "domain {} is not part of task {}",
                            r.domain, task.id
                        )))
                    }
                    Record::Target(_) => {
                        return Err(ServiceError::Invalid(format!(
                            "task {} is a resolve task: target records do not belong to it",
                            task.id
                        )))
                    }
                }
            }
        }
        TaskKind::Probe { targets } => {
            let items: HashSet<IpAddr> = targets.iter().map(|t| t.ip).collect();
            for record in records {
                match record {
                    Record::Target(r) if items.contains(&r.ip) => {}
                    Record::Target(r) => {
                        return Err(ServiceError::Invalid(format!(
                            "ip {} is not part of task {}",
                            r.ip, task.id
                        )))
                    }
                    Record::Domain(_) => {
                        return Err(ServiceError::Invalid(format!(
                            "task {} is a probe task: domain records do not belong to it",
                            task.id
                        )))
                    }
                }
            }
        }
    }
    Ok(())
}

impl Inner {
    /// Take a task (new or loaded) into the bookkeeping.
    fn admit(&mut self, task: Task) {
        let progress = self.progress.entry(task.scan.clone()).or_default();
        let counts = if task.is_resolve() {
            &mut progress.resolve
        } else {
            &mut progress.probe
        };
        counts.total += 1;
        counts.add(&task.state, 1);
        if let TaskKind::Probe { targets } = &task.kind {
            for target in targets {
                self.claimed
                    .insert((task.scan.clone(), task.vantage.clone(), target.ip));
            }
            if let Some(seq) = task
                .id
                .rsplit_once("/p")
                .and_then(|(_, n)| n.parse::<u64>().ok())
            {
                let next = self
                    .next_probe_seq
                    .entry((task.scan.clone(), task.vantage.clone()))
                    .or_default();
                *next = (*next).max(seq + 1);
            }
        }
        if let TaskState::Failed { .. } = task.state {
            progress.failed_items += task.items() as u64;
        }
        if task.state.is_finished() {
            return;
        }
        if task.state == TaskState::Pending {
            self.enqueue_back(&task);
        }
        if let TaskState::Leased { worker, .. } = &task.state {
            // Resumed after a restart: the lease still holds its networks.
            self.networks.claim(&task, worker);
        }
        self.tasks.insert(task.id.clone(), task);
    }

    fn count(&mut self, task: &Task, before: &TaskState, after: &TaskState) {
        let progress = self.progress.entry(task.scan.clone()).or_default();
        let counts = if task.is_resolve() {
            &mut progress.resolve
        } else {
            &mut progress.probe
        };
        counts.add(before, -1);
        counts.add(after, 1);
    }

    fn queue(&mut self, task: &Task) -> &mut VecDeque<String> {
        let queues = if task.is_resolve() {
            &mut self.resolve_queue
        } else {
            &mut self.probe_queue
        };
        queues.entry(task.vantage.clone()).or_default()
    }

    fn enqueue_back(&mut self, task: &Task) {
        let id = task.id.clone();
        self.queue(task).push_back(id);
    }

    fn enqueue_front(&mut self, task: &Task) {
        let id = task.id.clone();
        self.queue(task).push_front(id);
    }

    /// Workers of `vantage` seen within `ttl` (at least 1).
    fn live_workers(&self, vantage: &str, now: u64, ttl: u64) -> u32 {
        let live = self
            .seen
            .values()
            .filter(|(v, at)| v == vantage && now.saturating_sub(*at) <= ttl)
            .count();
        u32::try_from(live).unwrap_or(u32::MAX).max(1)
    }

    /// The next pending task of `vantage`: probe tasks first (when the
    /// worker may probe), then resolve tasks.
    fn next_pending(&mut self, vantage: &str, may_probe: bool) -> Option<String> {
        let mut queues: Vec<&mut HashMap<String, VecDeque<String>>> = Vec::new();
        if may_probe {
            queues.push(&mut self.probe_queue);
        }
        queues.push(&mut self.resolve_queue);
        for queue in queues {
            let Some(queue) = queue.get_mut(vantage) else {
                continue;
            };
            while let Some(id) = queue.pop_front() {
                if self
                    .tasks
                    .get(&id)
                    .is_some_and(|t| t.state == TaskState::Pending)
                {
                    return Some(id);
                }
            }
        }
        None
    }

    /// Forget the queued and leased work of a cancelled scan (its tasks stay
    /// in the store as they are).
    fn drop_scan_work(&mut self, scan: &str) {
        let dropped: Vec<String> = self
            .tasks
            .values()
            .filter(|t| t.scan == scan)
            .map(|t| t.id.clone())
            .collect();
        for id in dropped {
            self.networks.release(&id, now_ms());
        }
        self.tasks.retain(|_, t| t.scan != scan);
    }
}
