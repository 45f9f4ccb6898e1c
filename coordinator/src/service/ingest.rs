//! Result ingest: a leased task's result batches are checked against its
//! lease and items, stored (idempotently, outside every lock), turned into
//! probe tasks for new target IPs, and acknowledged after a flush.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Arc, MutexGuard};

use mxscope_common::{
    Delivered, DeliveredKind, DnsResult, DnsStatus, DomainRecord, Outcome, Record, TargetRecord,
};

use crate::exclusion;
use crate::model::{ScanOptions, Target, Task, TaskState, Work};
use crate::scheduler::{self, Fence, TaskClass};
use crate::store::{Store, StoreError};

use super::queues::Write;
use super::types::ServiceError;
use super::Coordinator;

impl Coordinator {
    /// Store a batch of results of a leased task; returns how many records
    /// were new. Durable when this returns.
    pub async fn report(
        self: &Arc<Self>,
        worker: &str,
        task_id: &str,
        epoch: u64,
        records: Vec<Delivered<Record>>,
        complete: bool,
    ) -> Result<u32, ServiceError> {
        let task = {
            let inner = self.lock();
            let task = inner
                .tasks
                .get(task_id)
                .ok_or_else(|| ServiceError::Fenced(Fence::NotLeased(task_id.to_string())))?;
            scheduler::check(task, worker, epoch)?;
            task.clone()
        };
        let mut resolved = Vec::new();
        let mut probed = Vec::new();
        let items = Items::of(&task);
        for delivered in records {
            check_record(&task, &items, &delivered.record)?;
            match delivered.split() {
                DeliveredKind::Domain(r) => resolved.push(r),
                DeliveredKind::Target(r) => probed.push(r),
            }
        }
        drop(items);
        let planning = !resolved.is_empty() || complete;
        let worker = worker.to_string();
        let stored = self
            .blocking(move |c| c.store_batch(&worker, task, epoch, &resolved, &probed, complete))
            .await?;
        self.flush_noted().await?;
        if planning {
            // New probe tasks, or a task's networks freed for the held-back ones.
            self.wake_leasers();
        }
        Ok(stored)
    }

    /// [`Self::report`]'s writes: the records (keyed and counted once: no
    /// lock needed), then, under `writer`, the probe tasks they plan and
    /// the task's end when `complete`. Blocking.
    fn store_batch(
        &self,
        worker: &str,
        task: Task,
        epoch: u64,
        resolved: &[Delivered<DomainRecord>],
        probed: &[Delivered<TargetRecord>],
        complete: bool,
    ) -> Result<u32, ServiceError> {
        let stored =
            self.noted(
                self.store
                    .put_domain_records(&task.scan, &task.vantage, resolved),
            )? + self.noted(
                self.store
                    .put_target_records(&task.scan, &task.vantage, probed),
            )?;
        let stored = u32::try_from(stored).unwrap_or(u32::MAX);
        if resolved.is_empty() && !complete {
            return Ok(stored);
        }
        let writer = super::lock(&self.writer);
        self.apply_writes_locked(&writer)?;
        if !resolved.is_empty() {
            // Probe tasks are on disk before the resolve task is done.
            self.plan_probes(&writer, &task, resolved.iter().map(|r| &r.record))?;
        }
        if complete {
            let now = self.now();
            {
                let mut inner = self.lock();
                let Some(live) = inner.tasks.get_mut(&task.id) else {
                    return Err(ServiceError::Fenced(Fence::NotLeased(task.id.clone())));
                };
                let before = live.state.clone();
                scheduler::complete(live, worker, epoch)?;
                let done = live.clone();
                inner.count(&done, &before);
                inner.tasks.remove(&task.id);
                inner.networks.release(&task.id, now);
                inner.write(Write::Task(done));
                self.finish_scan_if_done(&mut inner, &task.scan);
            }
            self.apply_writes_locked(&writer)?;
        }
        Ok(stored)
    }

    /// Turn new IPs from resolve results into probe tasks (pipelined). The
    /// caller holds `writer`, so claims are read and written by one planner
    /// at a time; tasks are written before their claims and before their
    /// feed shows them.
    fn plan_probes<'a>(
        &self,
        _writer: &MutexGuard<'_, ()>,
        task: &Task,
        resolved: impl IntoIterator<Item = &'a DomainRecord>,
    ) -> Result<(), ServiceError> {
        let mut fresh = Vec::new();
        for (ip, names) in scheduler::targets_of(resolved) {
            if !self.store.is_claimed(&task.scan, &task.vantage, ip)? {
                fresh.push(Target {
                    ip,
                    mx_names: names.into_iter().collect(),
                });
            }
        }
        if fresh.is_empty() {
            return Ok(());
        }
        let claimed: Vec<IpAddr> = fresh.iter().map(|t| t.ip).collect();
        let (options, first) = {
            let mut inner = self.lock();
            let options = inner
                .scans
                .get(&task.scan)
                .map(|meta| meta.options.clone())
                .unwrap_or_else(|| ScanOptions {
                    port: 25,
                    ..ScanOptions::default()
                });
            let first = inner.feed(&task.scan, &task.vantage, TaskClass::Probe).end;
            (options, first)
        };
        let planned = fresh.len() as u64;
        let (fresh, excluded) =
            exclusion::split_targets(&self.exclusions.for_scan(&options), options.port, fresh);
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
        let tasks = scheduler::probe_tasks(
            &task.scan,
            &task.vantage,
            first,
            fresh,
            self.config.probe_batch,
        );
        self.store.put_tasks(&tasks)?;
        self.store.put_claims(&task.scan, &task.vantage, &claimed)?;
        let mut inner = self.lock();
        let made = tasks.len() as u64;
        inner.count_new(
            &task.scan,
            TaskClass::Probe,
            &TaskState::Pending,
            made,
            planned,
        );
        let feed = inner.feed(&task.scan, &task.vantage, TaskClass::Probe);
        feed.end = first + made;
        Ok(())
    }
}

/// Record every item of a failed task that has no result yet as failed;
/// returns how many were recorded.
pub(super) fn record_failed_items(
    store: &Store,
    task: &Task,
    reason: &str,
) -> Result<u64, StoreError> {
    match &task.kind {
        Work::Resolve { domains } => {
            let records: Vec<DomainRecord> = domains
                .iter()
                .map(|domain| {
                    let mut record = DomainRecord::new(
                        domain.clone(),
                        DnsResult::failed(DnsStatus::Error, format!("not resolved: {reason}")),
                    );
                    record.scan = Some(task.scan.clone());
                    record.vantage = Some(task.vantage.clone());
                    record
                })
                .collect();
            store.put_domain_records(&task.scan, &task.vantage, &records)
        }
        Work::Probe { targets } => {
            let records: Vec<TargetRecord> = targets
                .iter()
                .map(|target| {
                    let mut record = TargetRecord::new(target.ip, 0, target.mx_names.clone());
                    record.outcome = Outcome::Skipped;
                    record.detail = Some(format!("not probed: {reason}"));
                    record.scan = Some(task.scan.clone());
                    record.vantage = Some(task.vantage.clone());
                    record
                })
                .collect();
            store.put_target_records(&task.scan, &task.vantage, &records)
        }
    }
}

/// A task's items, to look records up in.
enum Items<'a> {
    Domains(HashSet<&'a str>),
    Targets(HashSet<IpAddr>),
}

impl<'a> Items<'a> {
    fn of(task: &'a Task) -> Self {
        match &task.kind {
            Work::Resolve { domains } => {
                Self::Domains(domains.iter().map(String::as_str).collect())
            }
            Work::Probe { targets } => Self::Targets(targets.iter().map(|t| t.ip).collect()),
        }
    }
}

/// The one check of a delivered record: one of the task's own items,
/// stamped with the task's scan and vantage, a domain record without
/// embedded targets — the form in which it is stored as received.
fn check_record(task: &Task, items: &Items<'_>, record: &Record) -> Result<(), ServiceError> {
    let invalid = |why: String| Err(ServiceError::Invalid(why));
    let (scan, vantage) = match (items, record) {
        (Items::Domains(domains), Record::Domain(r)) => {
            if !domains.contains(r.domain.as_str()) {
                return invalid(format!(
                    "domain {} is not part of task {}",
                    r.domain, task.id
                ));
            }
            if !r.targets.is_empty() {
                return invalid(format!(
                    "domain {}: a resolve task's record embeds no targets",
                    r.domain
                ));
            }
            (&r.scan, &r.vantage)
        }
        (Items::Targets(targets), Record::Target(r)) => {
            if !targets.contains(&r.ip) {
                return invalid(format!("ip {} is not part of task {}", r.ip, task.id));
            }
            (&r.scan, &r.vantage)
        }
        (Items::Domains(_), Record::Target(_)) => {
            return invalid(format!(
                "task {} is a resolve task: target records do not belong to it",
                task.id
            ))
        }
        (Items::Targets(_), Record::Domain(_)) => {
            return invalid(format!(
                "task {} is a probe task: domain records do not belong to it",
                task.id
            ))
        }
    };
    if scan.as_deref() != Some(task.scan.as_str())
        || vantage.as_deref() != Some(task.vantage.as_str())
    {
        return invalid(format!(
            "a record of task {} is stamped scan {scan:?}, vantage {vantage:?}: it must be {}, {}",
            task.id, task.scan, task.vantage
        ));
    }
    Ok(())
}
