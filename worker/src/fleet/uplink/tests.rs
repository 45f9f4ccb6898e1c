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
fn a_task_that_fills_a_batch_exactly_is_one_complete_batch() {
    let mut batcher = Batcher::new(lease(), 2, 1 << 20);
    assert_eq!(batcher.push("a".into()), None);
    assert_eq!(batcher.push_last("b".into()), None);
    let last = batcher.finish();
    assert_eq!(last.records_json, ["a", "b"]);
    assert!(last.task_complete);
    // A last record that does not fit beside the others by size sends them
    // first, and still waits itself.
    let mut batcher = Batcher::new(lease(), 100, 10);
    assert_eq!(batcher.push("12345678".into()), None);
    let full = batcher.push_last("9abc".into()).unwrap();
    assert_eq!(full.records_json, ["12345678"]);
    assert!(!full.task_complete);
    assert_eq!(batcher.finish().records_json, ["9abc"]);
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
