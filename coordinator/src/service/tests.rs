//! The coordinator in process, on tokio's paused clock: leasing, lease
//! expiry and retry scheduling without a real sleep; the in-memory window
//! and the claims index bounded; the submission caps.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::wire::task::ItemBudget;
use mxscope_common::{
    Delivered, DnsResult, DnsStatus, DomainRecord, MxEntry, Record, TargetRecord,
};

use super::*;
use crate::model::{ScanOptions, Work};
use crate::scheduler::{self, Fence, TaskClass};

/// A lease call bounded by tasks only (no item budget).
const ANY: ItemBudget = ItemBudget::Shared(0);

fn config() -> CoordinatorConfig {
    CoordinatorConfig {
        lease_ttl: Duration::from_secs(10),
        max_attempts: 2,
        shard_size: 2,
        window: 8,
        ..CoordinatorConfig::default()
    }
}

fn open(dir: &std::path::Path, config: CoordinatorConfig) -> Arc<Coordinator> {
    let store = Store::open_with_cache(dir, 8 * 1024 * 1024).expect("store opens");
    Arc::new(
        Coordinator::open_with_clock(store, config, Arc::new(TokioClock::new()))
            .expect("coordinator opens"),
    )
}

fn request() -> ScanRequest {
    ScanRequest {
        name: "t".into(),
        labels: BTreeMap::new(),
        vantages: vec!["A".into()],
        options: ScanOptions {
            port: 25,
            ..ScanOptions::default()
        },
        skip_invalid: false,
    }
}

fn lines(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}.example")).collect()
}

/// Records as a worker delivers them: stamped with their task's scan and
/// vantage (`<scan>/<vantage>/…`), each with its JSON.
fn delivered(task_id: &str, records: Vec<Record>) -> Vec<Delivered<Record>> {
    let mut parts = task_id.split('/');
    let (scan, vantage) = (
        parts.next().map(String::from),
        parts.next().map(String::from),
    );
    records
        .into_iter()
        .map(|mut record| {
            match &mut record {
                Record::Domain(r) => (r.scan, r.vantage) = (scan.clone(), vantage.clone()),
                Record::Target(r) => (r.scan, r.vantage) = (scan.clone(), vantage.clone()),
            }
            Delivered::encode(record).unwrap()
        })
        .collect()
}

fn nxdomain(task: &Task) -> Vec<Record> {
    let Work::Resolve { domains } = &task.kind else {
        panic!("a resolve task");
    };
    domains
        .iter()
        .map(|d| {
            Record::Domain(DomainRecord::new(
                d.clone(),
                DnsResult::failed(DnsStatus::Nxdomain, "t"),
            ))
        })
        .collect()
}

#[tokio::test(start_paused = true)]
async fn an_expired_lease_is_requeued_then_failed_without_sleeping() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let scan = c.submit(request(), lines(2)).await.unwrap().scan_id;
    let first = c.lease("w1", "A", 1, ANY).await.unwrap().remove(0);
    assert_eq!(first.task.epoch, 1);
    tokio::time::advance(Duration::from_secs(5)).await;
    assert_eq!(c.expire_leases().await.unwrap(), 0, "deadline not reached");
    let lease = mxscope_common::wire::task::Lease {
        task_id: first.task.id.clone(),
        epoch: 1,
    };
    let (extended, lost) = c.heartbeat("w1", std::slice::from_ref(&lease)).unwrap();
    assert_eq!((extended.len(), lost.len()), (1, 0));
    tokio::time::advance(Duration::from_secs(9)).await;
    assert_eq!(
        c.expire_leases().await.unwrap(),
        0,
        "the heartbeat moved the deadline"
    );
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(c.expire_leases().await.unwrap(), 1);
    assert_eq!(c.status(&scan).unwrap().resolve.pending, 1, "requeued");
    // The retry goes to whoever asks next, with a new epoch; the old one is void.
    let second = c.lease("w2", "A", 1, ANY).await.unwrap().remove(0);
    assert_eq!(
        (second.task.id.as_str(), second.task.epoch),
        (first.task.id.as_str(), 2)
    );
    let stale = c
        .report(
            "w1",
            &first.task.id,
            1,
            delivered(&first.task.id, nxdomain(&first.task)),
            true,
        )
        .await;
    assert!(
        matches!(stale, Err(ServiceError::Fenced(Fence::StaleEpoch { .. }))),
        "{stale:?}"
    );
    // Attempts spent: the items are recorded failed and the scan ends.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(c.expire_leases().await.unwrap(), 1);
    let status = c.status(&scan).unwrap();
    assert_eq!(
        (
            status.resolve.failed,
            status.failed_items,
            status.domain_records
        ),
        (1, 2, 2)
    );
    assert_eq!(status.meta.state, ScanState::Done);
    assert!(c.lease("w2", "A", 1, ANY).await.unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_released_lease_is_leased_again_first() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    c.submit(request(), lines(6)).await.unwrap();
    let first = c.lease("w1", "A", 1, ANY).await.unwrap().remove(0);
    c.release("w1", &first.task.id, first.task.epoch)
        .await
        .unwrap();
    let again = c.lease("w2", "A", 1, ANY).await.unwrap().remove(0);
    assert_eq!(again.task.id, first.task.id);
    assert_eq!(again.task.epoch, 2);
}

#[tokio::test(start_paused = true)]
async fn memory_holds_a_window_of_the_list_not_the_list() {
    let dir = tempfile::tempdir().unwrap();
    // 100 resolve tasks, a window of 8.
    let c = open(dir.path(), config());
    let scan = c.submit(request(), lines(200)).await.unwrap().scan_id;
    assert!(
        c.lock().tasks.len() <= 8,
        "{} tasks in memory",
        c.lock().tasks.len()
    );
    let mut done = 0;
    let mut peak = 0;
    loop {
        let leased = c.lease("w1", "A", 3, ANY).await.unwrap();
        if leased.is_empty() {
            break;
        }
        peak = peak.max(c.lock().tasks.len());
        for l in leased {
            c.report(
                "w1",
                &l.task.id,
                l.task.epoch,
                delivered(&l.task.id, nxdomain(&l.task)),
                true,
            )
            .await
            .unwrap();
            done += 1;
        }
    }
    assert_eq!(done, 100);
    assert!(peak <= 8 + 3, "peak {peak} tasks in memory");
    let status = c.status(&scan).unwrap();
    assert_eq!(
        (status.domain_records, status.meta.state),
        (200, ScanState::Done)
    );
    assert!(c.lock().tasks.is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_reopened_coordinator_feeds_pending_tasks_and_keeps_leases() {
    let dir = tempfile::tempdir().unwrap();
    let (scan, held) = {
        let c = open(dir.path(), config());
        let scan = c.submit(request(), lines(40)).await.unwrap().scan_id;
        let held = c.lease("w1", "A", 3, ANY).await.unwrap();
        (scan, held)
    };
    let c = open(dir.path(), config());
    assert_eq!(c.lock().tasks.len(), 3, "only the leases are loaded");
    let status = c.status(&scan).unwrap();
    assert_eq!(
        (
            status.resolve.total,
            status.resolve.leased,
            status.resolve.pending
        ),
        (20, 3, 17)
    );
    let mut ids = Vec::new();
    loop {
        let leased = c.lease("w2", "A", 64, ANY).await.unwrap();
        if leased.is_empty() {
            break;
        }
        ids.extend(leased.into_iter().map(|l| l.task.id));
    }
    assert_eq!(ids.len(), 17);
    assert!(
        held.iter().all(|h| !ids.contains(&h.task.id)),
        "a held lease was leased again"
    );
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(c.expire_leases().await.unwrap(), 20);
    let again: Vec<String> = c
        .lease("w2", "A", 64, ANY)
        .await
        .unwrap()
        .into_iter()
        .map(|l| l.task.id)
        .collect();
    assert_eq!(again.len(), 20);
    assert!(
        held.iter().all(|h| again.contains(&h.task.id)),
        "the expired leases of before the restart come back"
    );
}

fn resolved(domain: &str, ips: impl Iterator<Item = IpAddr>) -> Record {
    let mut dns = DnsResult::failed(DnsStatus::Ok, "");
    dns.mx = vec![MxEntry {
        preference: 10,
        exchange: "mx.example".into(),
        addresses: ips.collect(),
        status: DnsStatus::Ok,
    }];
    dns.error = None;
    Record::Domain(DomainRecord::new(domain.into(), dns))
}

#[tokio::test(start_paused = true)]
async fn a_record_not_stamped_with_its_task_is_refused_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let scan = c.submit(request(), lines(1)).await.unwrap().scan_id;
    let task = c.lease("w1", "A", 1, ANY).await.unwrap().remove(0);
    let id = &task.task.id;
    let unstamped = Delivered::encode(nxdomain(&task.task).remove(0)).unwrap();
    let elsewhere = delivered(&id.replacen("/A/", "/B/", 1), nxdomain(&task.task));
    let mut embedding = delivered(id, nxdomain(&task.task));
    if let Record::Domain(r) = &mut embedding[0].record {
        r.targets
            .push(TargetRecord::new(Ipv4Addr::LOCALHOST.into(), 25, vec![]));
    }
    for (records, why) in [
        (vec![unstamped], "stamped"),
        (elsewhere, "stamped"),
        (embedding, "embeds no targets"),
    ] {
        let refused = c.report("w1", id, 1, records, true).await.unwrap_err();
        assert!(
            matches!(&refused, ServiceError::Invalid(m) if m.contains(why)),
            "{refused:?}"
        );
    }
    assert_eq!(c.store.count_domain_records(&scan).unwrap(), 0);
    let good = delivered(id, nxdomain(&task.task));
    assert_eq!(c.report("w1", id, 1, good, true).await.unwrap(), 1);
}

#[tokio::test(start_paused = true)]
async fn target_claims_live_in_the_store_and_are_pruned_when_the_scan_ends() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let scan = c.submit(request(), lines(1)).await.unwrap().scan_id;
    let task = c.lease("w1", "A", 1, ANY).await.unwrap().remove(0);
    // 40 addresses: more than one probe batch (32).
    let ips = || (1..=40u8).map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)));
    let record = resolved("d0.example", ips());
    c.report(
        "w1",
        &task.task.id,
        1,
        delivered(&task.task.id, vec![record.clone()]),
        false,
    )
    .await
    .unwrap();
    // A resend plans nothing twice.
    c.report(
        "w1",
        &task.task.id,
        1,
        delivered(&task.task.id, vec![record]),
        true,
    )
    .await
    .unwrap();
    assert_eq!(c.store.count_claims(&scan).unwrap(), 40);
    assert_eq!(c.status(&scan).unwrap().probe.total, 2);
    loop {
        let leased = c.lease("w1", "A", 8, ANY).await.unwrap();
        if leased.is_empty() {
            break;
        }
        for l in leased {
            let Work::Probe { targets } = &l.task.kind else {
                panic!("a probe task");
            };
            let records = targets
                .iter()
                .map(|t| Record::Target(TargetRecord::new(t.ip, 25, t.mx_names.clone())))
                .collect();
            c.report(
                "w1",
                &l.task.id,
                l.task.epoch,
                delivered(&l.task.id, records),
                true,
            )
            .await
            .unwrap();
        }
    }
    let status = c.status(&scan).unwrap();
    assert_eq!(
        (status.target_records, status.meta.state),
        (40, ScanState::Done)
    );
    assert_eq!(
        c.store.count_claims(&scan).unwrap(),
        0,
        "claims pruned at the end"
    );
}

#[tokio::test]
async fn a_submission_over_the_byte_cap_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(
        dir.path(),
        CoordinatorConfig {
            max_submit_bytes: 1_000,
            ..config()
        },
    );
    // 100 lines of 12-13 bytes: past 1,000 bytes.
    let err = c.submit(request(), lines(100)).await.unwrap_err();
    assert!(err.to_string().contains("at most 1000 bytes"), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(c.store.scans().unwrap().is_empty());
    // Under the cap it goes through.
    c.submit(request(), lines(50)).await.unwrap();
}

#[tokio::test]
async fn a_submission_over_the_line_cap_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(
        dir.path(),
        CoordinatorConfig {
            max_submit_lines: 10,
            ..config()
        },
    );
    let err = c.submit(request(), lines(11)).await.unwrap_err();
    assert!(err.to_string().contains("at most 10 lines"), "{err}");
    assert!(c.store.scans().unwrap().is_empty());
}

#[tokio::test]
async fn duplicates_merge_in_the_store_and_invalid_lines_fail_the_whole_list() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let mut list = lines(5);
    list.extend(lines(3));
    list.push("# comment".into());
    let submitted = c.submit(request(), list.clone()).await.unwrap();
    assert_eq!((submitted.domains, submitted.duplicates), (5, 3));
    list.push("not a domain!".into());
    let err = c.submit(request(), list).await.unwrap_err();
    assert!(
        matches!(&err, ServiceError::InvalidLine(l) if l.line == 10),
        "{err}"
    );
    assert_eq!(c.store.scans().unwrap().len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_waiting_lease_answers_when_work_arrives_and_not_before() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    c.submit(request(), lines(1)).await.unwrap();
    let resolve = c.lease("w1", "A", 1, ANY).await.unwrap().remove(0);
    // Nothing pending now: a call that may wait gives up empty after its wait.
    let started = tokio::time::Instant::now();
    let none = c
        .lease_waiting("w2", "A", 8, ANY, Duration::from_secs(3))
        .await
        .unwrap();
    assert!(none.is_empty());
    assert_eq!(started.elapsed(), Duration::from_secs(3), "it waited");
    // A waiting call is answered by the probe tasks planned from a result.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move {
            let called = tokio::time::Instant::now();
            let leased = c
                .lease_waiting("w2", "A", 8, ANY, Duration::from_secs(60))
                .await
                .unwrap();
            (leased, called.elapsed())
        })
    };
    // Between two of the call's own re-checks (every 250 ms).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(!waiting.is_finished(), "no work yet: the call waits");
    let ips = (1..=3u8).map(|i| IpAddr::V4(Ipv4Addr::new(192, 0, 2, i)));
    c.report(
        "w1",
        &resolve.task.id,
        1,
        delivered(&resolve.task.id, vec![resolved("d0.example", ips)]),
        true,
    )
    .await
    .unwrap();
    let (leased, waited) = waiting.await.unwrap();
    assert_eq!(leased.len(), 1, "the planned probe task");
    assert!(matches!(leased[0].task.kind, Work::Probe { .. }));
    assert!(
        waited < Duration::from_millis(1250),
        "woken when the work came ({waited:?}), not at its next re-check or the end of its wait"
    );
    // A released lease wakes a waiting call too.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move {
            c.lease_waiting("w3", "A", 8, ANY, Duration::from_secs(60))
                .await
                .unwrap()
        })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!waiting.is_finished());
    c.release("w2", &leased[0].task.id, leased[0].task.epoch)
        .await
        .unwrap();
    let again = waiting.await.unwrap();
    assert_eq!(again[0].task.id, leased[0].task.id);
}

#[tokio::test(start_paused = true)]
async fn slots_by_kind_lease_each_kind_within_its_own_budget() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    c.submit(request(), lines(6)).await.unwrap();
    let split = |sessions, resolutions| ItemBudget::Split {
        sessions,
        resolutions,
    };
    let kinds = |leased: &[Leased]| -> Vec<(bool, usize)> {
        leased
            .iter()
            .map(|l| (l.task.is_resolve(), l.task.items()))
            .collect()
    };
    // Only resolve tasks are pending: free sessions alone lease nothing.
    assert!(c
        .lease("w1", "A", 8, split(100, 0))
        .await
        .unwrap()
        .is_empty());
    let resolve = c.lease("w1", "A", 8, split(0, 1)).await.unwrap();
    assert_eq!(
        kinds(&resolve),
        [(true, 2)],
        "at least one task of a kind with room"
    );
    let ips = |net: [u8; 3]| {
        (1..=40u8).map(move |i| IpAddr::V4(Ipv4Addr::new(net[0], net[1], net[2], i)))
    };
    let records = vec![
        resolved("d0.example", ips([192, 0, 2])),
        resolved("d1.example", ips([198, 51, 100])),
    ];
    c.report(
        "w1",
        &resolve[0].task.id,
        1,
        delivered(&resolve[0].task.id, records),
        true,
    )
    .await
    .unwrap();
    // 80 targets planned (32 + 32 + 16). Probe tasks go first, but not
    // into resolution slots: resolving goes on while every session is busy.
    let leased = c.lease("w1", "A", 8, split(0, 3)).await.unwrap();
    assert_eq!(
        kinds(&leased),
        [(true, 2), (true, 2)],
        "4 ≥ 3 domains: stop"
    );
    let leased = c.lease("w1", "A", 8, split(40, 0)).await.unwrap();
    assert_eq!(kinds(&leased), [(false, 32), (false, 32)]);
    // One bound for both kinds (a worker that does not count them apart).
    let leased = c.lease("w1", "A", 8, ItemBudget::Shared(1)).await.unwrap();
    assert_eq!(kinds(&leased), [(false, 16)]);
}

#[tokio::test(start_paused = true)]
async fn a_lease_call_hands_out_a_bounded_number_of_items() {
    let dir = tempfile::tempdir().unwrap();
    let shard = scheduler::SHARD_SIZE;
    let c = open(
        dir.path(),
        CoordinatorConfig {
            shard_size: shard,
            window: 64,
            ..config()
        },
    );
    let tasks = scheduler::MAX_LEASE_ITEMS / shard + 4;
    c.submit(request(), lines(tasks * shard)).await.unwrap();
    // No item budget, 64 tasks asked: the items cap stops the call.
    let first = c.lease("w1", "A", 64, ANY).await.unwrap();
    let items: usize = first.iter().map(|l| l.task.items()).sum();
    assert_eq!(items, scheduler::MAX_LEASE_ITEMS);
    assert_eq!(first.len(), tasks - 4);
    let rest = c.lease("w1", "A", 64, ANY).await.unwrap();
    assert_eq!(rest.len(), 4, "the next call takes the rest");
}

fn hello(id: &str) -> WorkerHello {
    WorkerHello {
        worker_id: id.into(),
        vantage: "A".into(),
        version: "t".into(),
        capacity: 1,
        egress_ok: Some(false),
    }
}

/// The worker maps hold the workers of the last window, not every id ever
/// seen: a worker that keeps calling stays (with its egress verdict), the
/// silent ones go.
#[tokio::test(start_paused = true)]
async fn the_worker_maps_forget_silent_workers() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    for i in 0..1000 {
        c.register(hello(&format!("gone-{i}")));
    }
    c.register(hello("live"));
    assert_eq!(c.workers_remembered(), 1001);
    let window = Duration::from_millis(c.worker_window());
    for _ in 0..3 {
        tokio::time::advance(window / 2).await;
        c.heartbeat("live", &[]).unwrap();
    }
    c.register(hello("new"));
    assert_eq!(c.workers_remembered(), 2, "live and new");
    c.expire_leases().await.unwrap();
    assert_eq!(c.workers_remembered(), 2);
    // The live worker's failed egress check still holds: no probe tasks.
    assert_eq!(c.lock().workers["live"].egress_ok, Some(false));
}

/// At most MAX_SUBMISSIONS lists are received at once; one more is refused
/// as "retry later" until one ends.
#[tokio::test(start_paused = true)]
async fn concurrent_submissions_are_capped() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let mut held: Vec<_> = (0..MAX_SUBMISSIONS)
        .map(|_| c.begin_submit(request()).expect("within the cap"))
        .collect();
    let refused = c.begin_submit(request()).expect_err("over the cap");
    assert_eq!(refused.kind(), ErrorKind::Unavailable);
    assert!(refused.to_string().contains("retry"), "{refused}");
    drop(held.pop());
    let mut one = c.begin_submit(request()).expect("a place is free");
    one.push(&lines(3)).await.unwrap();
    let submitted = one.finish().await.unwrap();
    assert_eq!(submitted.domains, 3);
}

/// A store write failing with an I/O error (a full disk): every status
/// carries the problem (the line `mxscope status` prints, the field of the
/// wire status); the next lease call tries the store again, and as this
/// disk is in fact writable, reloads from it and leases: it resumes by
/// itself. (No new work while the disk stays full: `tests/it/product/scan.rs`,
/// on a real full filesystem.)
#[tokio::test(start_paused = true)]
async fn a_failed_store_write_shows_in_status_until_the_store_takes_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(dir.path(), config());
    let scan = c.submit(request(), lines(4)).await.unwrap().scan_id;
    assert!(c.status(&scan).unwrap().storage_problem.is_none());
    let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
    let failed: Result<(), ServiceError> =
        c.noted(Err(crate::store::StoreError::Storage(Box::new(io))));
    assert!(failed.is_err());
    let problem = c.status(&scan).unwrap().storage_problem.expect("a problem");
    assert!(problem.contains("No space left on device"), "{problem}");
    assert!(
        problem.contains(&dir.path().display().to_string()),
        "{problem}"
    );
    assert!(c.storage_failing_for().is_some());
    let leased = c.lease("w1", "A", 8, ANY).await.unwrap();
    assert!(!leased.is_empty(), "resumed by itself");
    assert!(c.status(&scan).unwrap().storage_problem.is_none());
    assert!(c.storage_failing_for().is_none());
}

/// The headline of a finished scan, read in two halves side by side (the
/// cut at the middle resolve task falls after the first page here), is the
/// headline read in one pass.
#[tokio::test(start_paused = true)]
async fn the_headline_read_in_two_halves_is_the_headline_read_once() {
    let dir = tempfile::tempdir().unwrap();
    let c = open(
        dir.path(),
        CoordinatorConfig {
            shard_size: 50,
            ..config()
        },
    );
    let scan = c.submit(request(), lines(600)).await.unwrap().scan_id;
    let resolutions = ItemBudget::Split {
        sessions: 0,
        resolutions: 1_000,
    };
    let mut i = 0u8;
    loop {
        let leased = c.lease("w1", "A", 8, resolutions).await.unwrap();
        if leased.is_empty() {
            break;
        }
        for task in leased {
            let Work::Resolve { domains } = &task.task.kind else {
                panic!("resolve tasks only");
            };
            let records = domains
                .iter()
                .map(|d| {
                    i = i.wrapping_add(1);
                    let ips = [IpAddr::from([192, 0, 2, i % 3])];
                    match i % 4 {
                        0 => Record::Domain(DomainRecord::new(
                            d.clone(),
                            DnsResult::failed(DnsStatus::Nxdomain, "t"),
                        )),
                        _ => resolved(d, ips.into_iter()),
                    }
                })
                .collect();
            let id = &task.task.id;
            c.report("w1", id, task.task.epoch, delivered(id, records), true)
                .await
                .unwrap();
        }
    }
    let middle = scheduler::task_id(&scan, "A", TaskClass::Resolve, 6);
    let middle = c.store.task(&middle).unwrap().unwrap();
    let Work::Resolve { domains } = middle.kind else {
        panic!("a resolve task");
    };
    let cut = c.store.domain_records_cut(&scan, "A", &domains[0]).unwrap();
    assert!(cut.is_some(), "the two halves are read");
    let once = crate::report::headline(
        "A",
        600,
        || c.store.domain_records(&scan),
        c.store.target_records(&scan),
    )
    .unwrap();
    assert_eq!((once.domains_with_mx, once.domains_dns_error), (450, 150));
    assert_eq!(c.headline(&scan, "A").unwrap(), once);
}
