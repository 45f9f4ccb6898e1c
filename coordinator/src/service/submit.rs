//! Submissions, streamed: lines are checked as they arrive and their
//! domains staged in the store (deduplicated there), so a submission's
//! memory is one chunk, whatever the list's length. On finish the staged
//! list is cut into resolve tasks in one pass (on the blocking pool); the
//! scan becomes visible only when all of them are on disk. A submission
//! that fails or is dropped leaves nothing behind.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use mxscope_common::politeness::exclusions::Exclusions;
use mxscope_common::{parse_list_line, DomainRecord, InvalidLine};
use tracing::{info, warn};

use crate::exclusion;
use crate::model::{ScanMeta, ScanState, Task, TaskState};
use crate::scheduler::{self, TaskClass};
use crate::store::{Staging, Store};

use super::types::{ScanRequest, ServiceError, Submitted, MAX_REPORTED_INVALID};
use super::Coordinator;

/// Tasks written to the store per batch while a submission finishes.
const TASK_WRITE_BATCH: usize = 256;
/// Lines [`Coordinator::submit`] hands to a [`Submission`] at a time.
const CHUNK_LINES: usize = 10_000;

/// A scan submission in progress: [`Coordinator::begin_submit`], then
/// [`Self::push`] every chunk of lines, then [`Self::finish`].
#[derive(Debug)]
pub struct Submission {
    coordinator: Arc<Coordinator>,
    request: ScanRequest,
    staging: Option<Staging>,
    lines: u64,
    bytes: u64,
    /// Lines that held a valid domain (duplicates included).
    accepted: u64,
    skipped: Vec<InvalidLine>,
    skipped_total: u64,
    /// Its place among the submissions received at once.
    _permit: tokio::sync::OwnedSemaphorePermit,
}

/// What finishing stored.
struct Built {
    meta: ScanMeta,
    shards: u64,
    excluded: u64,
}

impl Coordinator {
    /// Start a submission (nothing is visible until [`Submission::finish`]).
    pub fn begin_submit(
        self: &Arc<Self>,
        mut request: ScanRequest,
    ) -> Result<Submission, ServiceError> {
        if request.vantages.is_empty() {
            return Err(ServiceError::Invalid(
                "a scan needs at least one vantage".into(),
            ));
        }
        request.vantages.sort();
        request.vantages.dedup();
        let permit = self.submitting.clone().try_acquire_owned().map_err(|_| {
            ServiceError::Busy(format!(
                "{} submissions are being received (the most at once): retry when one has ended",
                super::MAX_SUBMISSIONS
            ))
        })?;
        let n = self.submissions.fetch_add(1, Ordering::Relaxed);
        let staging = self.store.staging(&format!("u{n}"))?;
        Ok(Submission {
            coordinator: Arc::clone(self),
            request,
            staging: Some(staging),
            lines: 0,
            bytes: 0,
            accepted: 0,
            skipped: Vec::new(),
            skipped_total: 0,
            _permit: permit,
        })
    }

    /// Store a new scan from `lines`: the whole list is checked first;
    /// nothing is stored unless it is accepted (invalid lines fail it
    /// unless `skip_invalid`).
    pub async fn submit(
        self: &Arc<Self>,
        request: ScanRequest,
        lines: impl IntoIterator<Item = String>,
    ) -> Result<Submitted, ServiceError> {
        let mut submission = self.begin_submit(request)?;
        let mut chunk = Vec::with_capacity(CHUNK_LINES);
        for line in lines {
            chunk.push(line);
            if chunk.len() == CHUNK_LINES {
                submission.push(&chunk).await?;
                chunk.clear();
            }
        }
        submission.push(&chunk).await?;
        submission.finish().await
    }
}

impl Submission {
    /// Check and stage more lines (line ends removed). Fails on the first
    /// invalid line (unless the request skips them) and once the list
    /// passes the configured line or byte cap.
    pub async fn push(&mut self, lines: &[String]) -> Result<(), ServiceError> {
        let config = &self.coordinator.config;
        let mut names = Vec::with_capacity(lines.len());
        for line in lines {
            self.lines += 1;
            self.bytes = self.bytes.saturating_add(line.len() as u64 + 1);
            if self.lines > config.max_submit_lines {
                return Err(ServiceError::Invalid(format!(
                    "a scan list holds at most {} lines",
                    config.max_submit_lines
                )));
            }
            if self.bytes > config.max_submit_bytes {
                return Err(ServiceError::Invalid(format!(
                    "a scan list holds at most {} bytes (line {} passes it)",
                    config.max_submit_bytes, self.lines
                )));
            }
            match parse_list_line(line) {
                None => {}
                Some(Ok(name)) => {
                    self.accepted += 1;
                    names.push(name);
                }
                Some(Err(reason)) => {
                    let invalid = InvalidLine {
                        line: usize::try_from(self.lines).unwrap_or(usize::MAX),
                        reason,
                    };
                    if !self.request.skip_invalid {
                        return Err(ServiceError::InvalidLine(invalid));
                    }
                    self.skipped_total += 1;
                    if self.skipped.len() < MAX_REPORTED_INVALID {
                        self.skipped.push(invalid);
                    }
                }
            }
        }
        let Some(mut staging) = self.staging.take() else {
            return Ok(());
        };
        // Staging spills sorted runs to disk: on the blocking pool. The
        // staging comes back; if this call is cancelled meanwhile, it is
        // dropped there, which removes its files.
        let (staging, staged) = self
            .coordinator
            .blocking(move |_| {
                let names: Vec<&str> = names.iter().map(|n| n.as_str()).collect();
                let staged = staging.insert(&names);
                Ok((staging, staged))
            })
            .await?;
        self.staging = Some(staging);
        Ok(staged?)
    }

    /// Cut the staged list into resolve tasks, store the scan and queue it.
    pub async fn finish(mut self) -> Result<Submitted, ServiceError> {
        let coordinator = Arc::clone(&self.coordinator);
        let Some(mut staging) = self.staging.take() else {
            return Err(ServiceError::Invalid("submission already finished".into()));
        };
        let store = coordinator.store.clone();
        let request = self.request.clone();
        let excluding = coordinator.exclusions.for_scan(&request.options);
        let shard_size = coordinator.config.shard_size.max(1);
        let created_ms = coordinator.now();
        let built = tokio::task::spawn_blocking(move || {
            let built = build_scan(
                &store,
                &mut staging,
                request,
                shard_size,
                &excluding,
                created_ms,
            );
            // Stored or not, the staged list is no longer needed.
            if let Err(e) = staging.discard() {
                warn!(error = %e, "dropping a staged list failed (it goes at the next start)");
            }
            built
        })
        .await
        .map_err(|e| ServiceError::Join(e.to_string()))??;
        let Built {
            meta,
            shards,
            excluded,
        } = built;
        let scan_id = meta.id.clone();
        let unique = meta.domains;
        {
            let mut inner = coordinator.lock();
            inner.progress.entry(scan_id.clone()).or_default();
            let tasks = shards * meta.vantages.len() as u64;
            let vantages = meta.vantages.len() as u64;
            let items = unique.saturating_sub(excluded) * vantages;
            inner.count_new(
                &scan_id,
                TaskClass::Resolve,
                &TaskState::Pending,
                tasks,
                items,
            );
            for vantage in &meta.vantages {
                inner.feed(&scan_id, vantage, TaskClass::Resolve).end = shards;
                inner.feed(&scan_id, vantage, TaskClass::Probe);
            }
            inner.scans.insert(scan_id.clone(), meta);
            // Everything excluded: nothing to wait for.
            coordinator.finish_scan_if_done(&mut inner, &scan_id);
        }
        coordinator.blocking(Coordinator::apply_writes).await?;
        coordinator.store.flush().await?;
        coordinator.wake_leasers();
        if self.skipped_total > self.skipped.len() as u64 {
            warn!(scan = %scan_id, skipped = self.skipped_total, reported = self.skipped.len(),
                "more invalid lines skipped than reported");
        }
        info!(scan = %scan_id, domains = unique, excluded, shards, "scan submitted");
        Ok(Submitted {
            scan_id,
            domains: unique,
            duplicates: self.accepted.saturating_sub(unique),
            skipped: std::mem::take(&mut self.skipped),
        })
    }
}

impl Drop for Submission {
    fn drop(&mut self) {
        // Failed or abandoned: nothing of it may remain. Dropping the
        // staging removes its files, on the blocking pool when there is one.
        if let Some(staging) = self.staging.take() {
            match tokio::runtime::Handle::try_current() {
                Ok(runtime) => drop(runtime.spawn_blocking(move || drop(staging))),
                Err(_) => drop(staging),
            }
        }
    }
}

/// One pass over the staged list: resolve tasks in bounded batches, the
/// excluded domains' records, then the meta that makes the scan visible.
fn build_scan(
    store: &Store,
    staging: &mut Staging,
    request: ScanRequest,
    shard_size: usize,
    excluding: &Exclusions,
    created_ms: u64,
) -> Result<Built, ServiceError> {
    if staging.is_empty() {
        return Err(ServiceError::Invalid(
            "the domain list holds no domain".into(),
        ));
    }
    let scan_id = store.next_scan_id()?;
    let mut sharder = scheduler::Sharder::new(&scan_id, &request.vantages, shard_size);
    let mut tasks: Vec<Task> = Vec::with_capacity(TASK_WRITE_BATCH + request.vantages.len());
    let write = |tasks: &mut Vec<Task>| -> Result<(), ServiceError> {
        store.put_new_scan_tasks(&scan_id, tasks)?;
        tasks.clear();
        Ok(())
    };
    let mut unique = 0u64;
    let mut excluded = 0u64;
    let mut domains = staging.domains()?;
    loop {
        let read = domains
            .by_ref()
            .take(READ_BATCH)
            .collect::<Result<Vec<String>, _>>()?;
        if read.is_empty() {
            break;
        }
        unique += read.len() as u64;
        let (keep, records) = exclusion::split_domains(excluding, read);
        if !records.is_empty() {
            excluded += records.len() as u64;
            for vantage in &request.vantages {
                let records: Vec<DomainRecord> = records
                    .iter()
                    .map(|r| {
                        let mut r = r.clone();
                        r.scan = Some(scan_id.clone());
                        r.vantage = Some(vantage.clone());
                        r
                    })
                    .collect();
                store.put_domain_records(&scan_id, vantage, &records)?;
            }
        }
        // Shards are cut after exclusion: every task is full but the last.
        for domain in keep {
            tasks.extend(sharder.push(domain));
            if tasks.len() >= TASK_WRITE_BATCH {
                write(&mut tasks)?;
            }
        }
    }
    let (last, shards) = sharder.finish();
    tasks.extend(last);
    write(&mut tasks)?;
    let meta = ScanMeta {
        id: scan_id.clone(),
        name: request.name,
        labels: request.labels,
        vantages: request.vantages,
        options: request.options,
        state: ScanState::Running,
        created_ms,
        finished_ms: None,
        domains: unique,
    };
    store.commit_scan(&meta)?;
    Ok(Built {
        meta,
        shards,
        excluded,
    })
}

/// Staged domains read per step of [`build_scan`].
const READ_BATCH: usize = 4_096;
