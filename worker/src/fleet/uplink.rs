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

use super::backoff::Backoff;
use super::leases::{Lease, LeaseTable};
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
}

impl Batcher {
    pub fn new(lease: Lease, max_records: usize, max_bytes: usize) -> Self {
        Self {
            lease,
            max_records: max_records.max(1),
            max_bytes: max_bytes.max(1),
            records: Vec::new(),
            bytes: 0,
        }
    }

    /// Add a record; returns a full batch when one is ready to send.
    pub fn push(&mut self, record_json: String) -> Option<Batch> {
        let full_before = !self.records.is_empty()
            && self.bytes.saturating_add(record_json.len()) > self.max_bytes;
        let flushed = if full_before {
            Some(self.take(false))
        } else {
            None
        };
        self.bytes = self.bytes.saturating_add(record_json.len());
        self.records.push(record_json);
        // A record flushed by size is returned first; the new one may itself
        // fill a batch only when the previous one was not flushed.
        if flushed.is_some() {
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
}

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
                warn!(task = %lease.task_id, epoch = lease.epoch, %reason,
                    attempt = backoff.failures(), retry_in_ms = wait.as_millis() as u64,
                    unacked = self.queue.len() + 1, "reporting results failed; will resend");
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
mod tests {
    use std::sync::Mutex;

    use super::*;

    /// A sink that answers from a script (then `Ok(1)`) and keeps what it saw.
    #[derive(Debug, Default)]
    struct ScriptedSink {
        replies: Mutex<VecDeque<Result<u32, CallError>>>,
        seen: Mutex<Vec<Batch>>,
    }

    impl ResultSink for Arc<ScriptedSink> {
        async fn report(&self, batch: &Batch) -> Result<u32, CallError> {
            self.seen.lock().unwrap().push(batch.clone());
            self.replies.lock().unwrap().pop_front().unwrap_or(Ok(1))
        }
    }

    /// No tonic: a transport error resends the head batch, an acknowledged
    /// last batch finishes its lease, a lost lease drops every batch of its
    /// task (the unsent one too) and cancels its work.
    #[tokio::test(start_paused = true)]
    async fn resend_after_a_transient_failure_drop_after_a_lost_lease() {
        let sink = Arc::new(ScriptedSink::default());
        sink.replies.lock().unwrap().extend([
            Err(CallError::Transient("connection reset".into())),
            Ok(1),
            Err(CallError::LeaseLost("stale epoch".into())),
        ]);
        let leases = Arc::new(LeaseTable::default());
        let kept = lease();
        let lost = Lease {
            task_id: "u".into(),
            epoch: 1,
        };
        let _kept_work = leases.hold(&kept);
        let lost_work = leases.hold(&lost);
        let (uplink, sender) = Uplink::new(sink.clone(), leases.clone(), 4);
        let run = tokio::spawn(uplink.run(CancellationToken::new()));
        let batch = |lease: &Lease, task_complete| Batch {
            lease: lease.clone(),
            records_json: vec!["{}".into()],
            task_complete,
        };
        sender.send(batch(&kept, true)).await.unwrap();
        sender.send(batch(&lost, false)).await.unwrap();
        sender.send(batch(&lost, true)).await.unwrap();
        drop(sender);
        let report = run.await.unwrap();
        assert_eq!(
            report,
            UplinkReport {
                acknowledged: 1,
                dropped: 2,
                abandoned: 0
            }
        );
        let seen = sink.seen.lock().unwrap();
        let leases_seen: Vec<&Lease> = seen.iter().map(|b| &b.lease).collect();
        assert_eq!(
            leases_seen,
            [&kept, &kept, &lost],
            "resent once, never after the loss"
        );
        assert!(!leases.holds(&kept), "finished once acknowledged");
        assert!(lost_work.is_cancelled(), "the lost task's work is stopped");
    }

    /// A sink whose calls wait for a permit each, recording (task,
    /// complete) when a call starts and when it ends.
    #[derive(Debug)]
    struct GatedSink {
        gate: Semaphore,
        started: Mutex<Vec<(String, bool)>>,
        ended: Mutex<Vec<(String, bool)>>,
    }

    impl GatedSink {
        /// No call ends until permits are added to `gate`.
        fn closed() -> Arc<Self> {
            Arc::new(Self {
                gate: Semaphore::new(0),
                started: Mutex::new(Vec::new()),
                ended: Mutex::new(Vec::new()),
            })
        }
    }

    /// The lease of task `id` (epoch 1).
    fn task(id: &str) -> Lease {
        Lease {
            task_id: id.into(),
            epoch: 1,
        }
    }

    /// A one-record batch of task `id`.
    fn batch(id: &str, task_complete: bool) -> Batch {
        Batch {
            lease: task(id),
            records_json: vec!["{}".into()],
            task_complete,
        }
    }

    impl ResultSink for Arc<GatedSink> {
        async fn report(&self, batch: &Batch) -> Result<u32, CallError> {
            let key = (batch.lease.task_id.clone(), batch.task_complete);
            self.started.lock().unwrap().push(key.clone());
            self.gate.acquire().await.unwrap().forget();
            self.ended.lock().unwrap().push(key);
            Ok(1)
        }
    }

    /// Several tasks' batches travel at once; one task's go one at a time,
    /// in order (its last batch only after the earlier one is stored).
    #[tokio::test(start_paused = true)]
    async fn tasks_are_sent_side_by_side_and_each_task_in_order() {
        let sink = GatedSink::closed();
        let leases = Arc::new(LeaseTable::default());
        let held: Vec<_> = ["a", "b", "c"]
            .iter()
            .map(|t| leases.hold(&task(t)))
            .collect();
        let (uplink, sender) = Uplink::new(sink.clone(), leases.clone(), 8);
        let run = tokio::spawn(uplink.with_in_flight(8).run(CancellationToken::new()));
        for (id, complete) in [("a", false), ("a", true), ("b", true), ("c", true)] {
            sender.send(batch(id, complete)).await.unwrap();
        }
        drop(sender);
        tokio::time::sleep(Duration::from_millis(10)).await;
        let key = |id: &str, complete| (id.to_string(), complete);
        assert_eq!(
            *sink.started.lock().unwrap(),
            [key("a", false), key("b", true), key("c", true)],
            "three tasks at once, a's last batch waits"
        );
        // a's first batch stored: a's last one goes.
        sink.gate.add_permits(1);
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert_eq!(sink.ended.lock().unwrap()[0], key("a", false));
        assert_eq!(sink.started.lock().unwrap()[3], key("a", true));
        sink.gate.add_permits(3);
        let report = run.await.unwrap();
        assert_eq!(report.acknowledged, 4);
        assert!(held.iter().all(|work| !work.is_cancelled()));
        assert!(
            ["a", "b", "c"].iter().all(|t| !leases.holds(&task(t))),
            "all finished"
        );
    }

    /// Resolve results (a sender marked ahead) overtake queued probe results.
    #[tokio::test(start_paused = true)]
    async fn batches_sent_ahead_overtake_the_queue() {
        let sink = GatedSink::closed();
        let leases = Arc::new(LeaseTable::default());
        let _held: Vec<_> = ["p1", "p2", "r"]
            .iter()
            .map(|t| leases.hold(&task(t)))
            .collect();
        let (uplink, sender) = Uplink::new(sink.clone(), leases.clone(), 8);
        let run = tokio::spawn(uplink.run(CancellationToken::new()));
        sender.send(batch("p1", true)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(10)).await;
        sender.send(batch("p2", true)).await.unwrap();
        sender.clone().ahead().send(batch("r", true)).await.unwrap();
        drop(sender);
        sink.gate.add_permits(3);
        assert_eq!(run.await.unwrap().acknowledged, 3);
        let order: Vec<String> = sink
            .started
            .lock()
            .unwrap()
            .iter()
            .map(|(t, _)| t.clone())
            .collect();
        assert_eq!(order, ["p1", "r", "p2"], "one at a time; r overtook p2");
    }

    fn lease() -> Lease {
        Lease {
            task_id: "t".into(),
            epoch: 3,
        }
    }

    #[test]
    fn batches_by_count() {
        let mut batcher = Batcher::new(lease(), 2, 1 << 20);
        assert_eq!(batcher.push("a".into()), None);
        let first = batcher.push("b".into()).unwrap();
        assert_eq!(first.records_json, ["a", "b"]);
        assert!(!first.task_complete);
        assert_eq!(batcher.push("c".into()), None);
        assert_eq!(batcher.pending(), 1);
        let last = batcher.finish();
        assert_eq!(last.records_json, ["c"]);
        assert!(last.task_complete);
        assert_eq!(last.lease, lease());
    }

    #[test]
    fn a_task_without_items_sends_one_empty_complete_batch() {
        let last = Batcher::new(lease(), 100, 1 << 20).finish();
        assert!(last.records_json.is_empty());
        assert!(last.task_complete);
    }

    #[test]
    fn batches_by_size() {
        let mut batcher = Batcher::new(lease(), 100, 10);
        assert_eq!(batcher.push("1234".into()), None);
        assert_eq!(batcher.push("5678".into()), None);
        // 4 + 4 + 4 > 10: the first two leave, the third waits.
        let full = batcher.push("9abc".into()).unwrap();
        assert_eq!(full.records_json, ["1234", "5678"]);
        assert_eq!(batcher.pending(), 1);
        // A record larger than the limit goes alone.
        let alone = batcher.push("x".repeat(20)).unwrap();
        assert_eq!(alone.records_json, ["9abc"]);
        assert_eq!(batcher.pending(), 1);
        assert_eq!(batcher.finish().records_json.len(), 1);
    }

    #[test]
    fn every_record_lands_in_exactly_one_batch() {
        for size in 1..7 {
            let mut batcher = Batcher::new(lease(), size, 1 << 20);
            let mut seen = Vec::new();
            for i in 0..20 {
                if let Some(batch) = batcher.push(i.to_string()) {
                    assert!(batch.records_json.len() <= size);
                    seen.extend(batch.records_json);
                }
            }
            seen.extend(batcher.finish().records_json);
            let expected: Vec<String> = (0..20).map(|i: i32| i.to_string()).collect();
            assert_eq!(seen, expected);
        }
    }
}
