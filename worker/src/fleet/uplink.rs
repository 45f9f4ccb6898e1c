//! Results on their way to the coordinator (DESIGN §3, "durable before
//! acknowledged"): tasks cut their records into batches ([`Batcher`]), the
//! [`Uplink`] sends them (several tasks' at once, each task's in order) and
//! keeps every batch until the coordinator acknowledges it. A transport
//! error puts the batch back at the head of the queue and retries it with
//! backoff; a stale epoch drops every batch of that task and cancels its work.
//!
//! At most `max_unacked` batches exist outside the tasks: a task that wants
//! to queue one more waits for an acknowledgement, and so stops running new
//! items ([`UplinkSender::send`]).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{debug, error, info, warn};

use super::link::backoff::Backoff;
use super::link::leases::{Lease, LeaseTable};
pub use super::task::Batch;
use super::task::{CallError, ResultSink};

/// Cuts one task's records into batches of at most `max_records` records
/// and about `max_bytes` bytes (a single larger record goes alone).
#[derive(Debug)]
pub struct Batcher {
    lease: Lease,
    max_records: usize,
    max_bytes: usize,
    records: Vec<String>,
    bytes: usize,
    /// When the oldest record waiting was added.
    since: Option<Instant>,
}

impl Batcher {
    pub fn new(lease: Lease, max_records: usize, max_bytes: usize) -> Self {
        Self {
            lease,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            records: Vec::new(),
            bytes: 0,
            since: None,
        }
    }

    /// When the records waiting should go even if the batch is not full:
    /// `after` past the oldest one (so that progress moves per record, not
    /// per task); `None` when nothing waits.
    pub fn due(&self, after: Duration) -> Option<Instant> {
        self.since.map(|since| since + after)
    }

    /// The records waiting, as a batch that does not finish the task.
    pub fn flush(&mut self) -> Option<Batch> {
        (!self.records.is_empty()).then(|| self.take(false))
    }

    /// Add a record; returns a full batch when one is ready to send.
    pub fn push(&mut self, record_json: String) -> Option<Batch> {
        self.add(record_json, false)
    }

    /// Add the task's last record: it waits for [`Self::finish`] even when
    /// it fills the batch, so a task whose records fill a batch exactly is
    /// one report, not a full one and an empty complete one. Returns only
    /// the records it does not fit beside (by size).
    pub fn push_last(&mut self, record_json: String) -> Option<Batch> {
        self.add(record_json, true)
    }

    fn add(&mut self, record_json: String, last: bool) -> Option<Batch> {
        let full_before = !self.records.is_empty()
            && self.bytes.saturating_add(record_json.len()) > self.max_bytes;
        let flushed = if full_before {
            Some(self.take(false))
        } else {
            None
        };
        self.bytes = self.bytes.saturating_add(record_json.len());
        if self.records.is_empty() {
            self.since = Some(Instant::now());
        }
        self.records.push(record_json);
        // A record flushed by size is returned first; the new one may itself
        // fill a batch only when the previous one was not flushed.
        if flushed.is_some() || last {
            return flushed;
        }
        (self.records.len() >= self.max_records || self.bytes >= self.max_bytes)
            .then(|| self.take(false))
    }

    /// The last batch (possibly empty), marked `task_complete`.
    pub fn finish(mut self) -> Batch {
        self.take(true)
    }

    /// Records waiting for the next batch.
    pub fn pending(&self) -> usize {
        self.records.len()
    }

    fn take(&mut self, task_complete: bool) -> Batch {
        self.bytes = 0;
        self.since = None;
        Batch {
            lease: self.lease.clone(),
            records_json: std::mem::take(&mut self.records),
            task_complete,
        }
    }
}

/// The uplink stopped (only at the very end of shutdown).
#[derive(Debug, thiserror::Error)]
#[error("the result uplink has stopped")]
pub struct UplinkClosed;

/// The tasks' handle on the uplink: clone one per task.
#[derive(Debug, Clone)]
pub struct UplinkSender {
    tx: mpsc::Sender<Queued>,
    slots: Arc<Semaphore>,
    ahead: bool,
}

impl UplinkSender {
    /// This sender's batches go before the others' (resolve results: the
    /// coordinator plans new probe tasks from them, so they feed the
    /// worker's free slots).
    #[must_use]
    pub fn ahead(mut self) -> Self {
        self.ahead = true;
        self
    }

    /// Queue a batch; waits while `max_unacked` batches are unacknowledged.
    pub async fn send(&self, batch: Batch) -> Result<(), UplinkClosed> {
        let slot = self
            .slots
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| UplinkClosed)?;
        self.tx
            .send(Queued {
                batch,
                ahead: self.ahead,
                _slot: slot,
            })
            .await
            .map_err(|_| UplinkClosed)
    }
}

#[derive(Debug)]
struct Queued {
    batch: Batch,
    /// Sent before the batches that are not.
    ahead: bool,
    /// Returned to the pool when the batch is acknowledged or dropped.
    _slot: OwnedSemaphorePermit,
}

/// What the uplink did before it stopped.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct UplinkReport {
    pub acknowledged: usize,
    /// Batches dropped because their lease was lost or refused.
    pub dropped: usize,
    /// Batches still unacknowledged when the uplink was aborted.
    pub abandoned: usize,
}

/// Sends queued batches to `S` (the coordinator) until every sender is gone
/// and the queue is empty, or until `abort` is cancelled. Up to
/// `in_flight` batches of different tasks are on their way at once (the
/// coordinator stores them concurrently and shares one flush among them),
/// those of senders marked [`UplinkSender::ahead`] first; the batches of one
/// task go one at a time, in order, so a task's last batch
/// (`task_complete`) is never stored before its earlier ones.
#[derive(Debug)]
pub struct Uplink<S> {
    sink: S,
    leases: Arc<LeaseTable>,
    rx: mpsc::Receiver<Queued>,
    queue: VecDeque<Queued>,
    in_flight: usize,
    report: UplinkReport,
    /// When a failed report was last logged as a warning (then at most once
    /// a minute: a coordinator with a full disk is not a log flood).
    warned: Option<std::time::Instant>,
}

pub(crate) use mxscope_common::process::telemetry::warn_again;

/// One batch on its way, and how its call ended.
type Sent = (Queued, Result<u32, CallError>);

impl<S: ResultSink + Clone> Uplink<S> {
    /// An uplink holding at most `max_unacked` batches, sending one at a
    /// time ([`Self::with_in_flight`] for more), and its sender.
    pub fn new(sink: S, leases: Arc<LeaseTable>, max_unacked: usize) -> (Self, UplinkSender) {
        let max_unacked = max_unacked.clamp(1, Semaphore::MAX_PERMITS);
        let (tx, rx) = mpsc::channel(max_unacked);
        let sender = UplinkSender {
            tx,
            slots: Arc::new(Semaphore::new(max_unacked)),
            ahead: false,
        };
        let uplink = Self {
            sink,
            leases,
            rx,
            queue: VecDeque::new(),
            warned: None,
            in_flight: 1,
            report: UplinkReport::default(),
        };
        (uplink, sender)
    }

    /// Send up to `in_flight` batches (of different tasks) at once.
    #[must_use]
    pub fn with_in_flight(mut self, in_flight: usize) -> Self {
        self.in_flight = in_flight.max(1);
        self
    }

    pub async fn run(mut self, abort: CancellationToken) -> UplinkReport {
        let mut backoff = Backoff::default();
        let mut sending: JoinSet<Sent> = JoinSet::new();
        let mut sending_leases: HashMap<Id, Lease> = HashMap::new();
        // Tasks with a batch on its way: their next batch waits.
        let mut busy: HashSet<Lease> = HashSet::new();
        // After a transport error nothing new is sent before this.
        let mut resume_at: Option<Instant> = None;
        let mut closed = false;
        loop {
            while let Ok(queued) = self.rx.try_recv() {
                self.queue.push_back(queued);
            }
            if resume_at.is_some_and(|at| Instant::now() >= at) {
                resume_at = None;
            }
            while resume_at.is_none() && sending.len() < self.in_flight {
                // The oldest batch of a task with nothing on its way, those
                // sent ahead first.
                let ready = |q: &&Queued| !busy.contains(&q.batch.lease);
                let Some(index) = self
                    .queue
                    .iter()
                    .position(|q| q.ahead && ready(&q))
                    .or_else(|| self.queue.iter().position(|q| ready(&q)))
                else {
                    break;
                };
                let Some(queued) = self.queue.remove(index) else {
                    break;
                };
                let lease = queued.batch.lease.clone();
                if !self.leases.holds(&lease) {
                    // Lost or released meanwhile: another worker owns the task.
                    self.report.dropped += 1;
                    self.drop_task(&lease);
                    continue;
                }
                if queued.batch.task_complete {
                    self.leases.completing(&lease);
                }
                busy.insert(lease.clone());
                let sink = self.sink.clone();
                let handle = sending.spawn(async move {
                    let sent = sink.report(&queued.batch).await;
                    (queued, sent)
                });
                sending_leases.insert(handle.id(), lease);
            }
            crate::metrics::uplink_depth(self.queue.len() + sending.len());
            if closed && self.queue.is_empty() && sending.is_empty() {
                break;
            }
            let resume = resume_at.unwrap_or_else(Instant::now);
            tokio::select! {
                _ = abort.cancelled() => break,
                received = self.rx.recv(), if !closed => match received {
                    Some(queued) => self.queue.push_back(queued),
                    None => closed = true,
                },
                Some(joined) = sending.join_next_with_id(), if !sending.is_empty() => {
                    let (id, sent) = match joined {
                        Ok((id, sent)) => (id, Ok(sent)),
                        Err(error) => (error.id(), Err(error)),
                    };
                    let Some(lease) = sending_leases.remove(&id) else {
                        continue;
                    };
                    busy.remove(&lease);
                    match sent {
                        Ok((queued, sent)) => {
                            if let Some(wait) = self.delivered(&lease, queued, sent, &mut backoff) {
                                resume_at = Some(Instant::now() + wait);
                            }
                        }
                        Err(error) => {
                            // The call itself failed abnormally: its batch is
                            // gone, so the task is given up here (its lease
                            // expires and it is done again elsewhere).
                            error!(task = %lease.task_id, epoch = lease.epoch, %error,
                                "sending a result batch failed abnormally: dropping the task's results");
                            self.report.dropped += 1;
                            self.leases.lose(&lease);
                            self.drop_task(&lease);
                        }
                    }
                }
                () = tokio::time::sleep_until(resume), if resume_at.is_some() => {}
            }
        }
        while let Ok(queued) = self.rx.try_recv() {
            self.queue.push_back(queued);
        }
        self.report.abandoned = self.queue.len() + sending.len();
        self.report
    }

    /// Act on how sending `queued` (of `lease`) ended; `Some(wait)` after a
    /// transport error: the batch is back at the head of the queue and
    /// nothing new is sent for `wait`.
    fn delivered(
        &mut self,
        lease: &Lease,
        queued: Queued,
        sent: Result<u32, CallError>,
        backoff: &mut Backoff,
    ) -> Option<Duration> {
        match sent {
            Ok(stored) => {
                backoff.reset();
                self.report.acknowledged += 1;
                debug!(task = %lease.task_id, epoch = lease.epoch,
                    records = queued.batch.records_json.len(), stored, "batch acknowledged");
                if queued.batch.task_complete && self.leases.finish(lease) {
                    info!(task = %lease.task_id, epoch = lease.epoch, "task results acknowledged");
                }
                None
            }
            Err(CallError::LeaseLost(reason)) => {
                warn!(task = %lease.task_id, epoch = lease.epoch, %reason,
                    "lease lost while reporting: dropping the task's results");
                self.report.dropped += 1;
                self.leases.lose(lease);
                self.drop_task(lease);
                None
            }
            Err(CallError::Refused(reason)) => {
                error!(task = %lease.task_id, epoch = lease.epoch, %reason,
                    "coordinator refused a result batch: dropping the task's results");
                self.report.dropped += 1;
                self.leases.lose(lease);
                self.drop_task(lease);
                None
            }
            Err(CallError::Transient(reason)) => {
                crate::metrics::uplink_resend();
                let wait = backoff.next_delay();
                if warn_again(&mut self.warned) {
                    warn!(task = %lease.task_id, epoch = lease.epoch, %reason,
                        attempt = backoff.failures(), retry_in_ms = wait.as_millis() as u64,
                        unacked = self.queue.len() + 1,
                        "reporting results failed; will resend (repeats are logged at most once a minute)");
                } else {
                    debug!(task = %lease.task_id, %reason, "reporting results failed again; will resend");
                }
                // First again: it stays ahead of its task's later batches.
                self.queue.push_front(queued);
                Some(wait)
            }
        }
    }

    /// Drop every queued batch of `lease`'s task.
    fn drop_task(&mut self, lease: &Lease) {
        let before = self.queue.len();
        self.queue.retain(|queued| queued.batch.lease != *lease);
        self.report.dropped += before - self.queue.len();
    }
}

#[cfg(test)]
mod tests;
