//! Store tests: roundtrips, idempotence, isolation, atomic submit, restart,
//! corruption, and a property test on the counters.

use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use mxscope_common::record::{DnsResult, DnsStatus, DomainRecord, Outcome, TargetRecord};
use std::path::Path;

use proptest::prelude::*;
use tempfile::TempDir;

use super::keys::{self, Counter};
use super::*;
use crate::model::{ScanMeta, ScanOptions, ScanState, Target, Task, TaskState, Work};

pub(super) fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (dir, store)
}

pub(super) fn meta(id: &str) -> ScanMeta {
    ScanMeta {
        id: id.into(),
        name: format!("scan {id}"),
        labels: BTreeMap::from([("country".into(), "IT".into())]),
        vantages: vec!["A".into(), "B".into()],
        options: ScanOptions::default(),
        state: ScanState::Running,
        created_ms: 1,
        finished_ms: None,
        domains: 2,
    }
}

pub(super) fn resolve_task(scan: &str, vantage: &str, n: usize, domains: Vec<String>) -> Task {
    Task {
        id: format!("{scan}/{vantage}/r{n:06}"),
        scan: scan.into(),
        vantage: vantage.into(),
        kind: Work::Resolve { domains },
        state: TaskState::Pending,
        epoch: 0,
        attempts: 0,
    }
}

pub(super) fn domain(name: &str) -> DomainRecord {
    DomainRecord::new(name.into(), DnsResult::failed(DnsStatus::Nxdomain, "nx"))
}

pub(super) fn target(ip: IpAddr) -> TargetRecord {
    let mut record = TargetRecord::new(ip, 25, vec!["mx.example.it".into()]);
    record.outcome = Outcome::NoStarttls;
    record
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

fn collect<T>(iter: impl Iterator<Item = Result<T>>) -> Vec<T> {
    iter.collect::<Result<Vec<_>>>().unwrap()
}

#[test]
fn scan_ids_are_monotonic_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.next_scan_id().unwrap(), "s1");
        assert_eq!(store.next_scan_id().unwrap(), "s2");
        store.create_scan(&meta("s2"), &[]).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.next_scan_id().unwrap(), "s3");
}

/// A snapshot sled began and never finished (a full disk or a kill while it
/// wrote `snap.<lsn>.generating`) made every later open fail as "corrupt"
/// (seen in the soak); it is removed and the store opens whole.
#[test]
fn an_unfinished_sled_snapshot_does_not_lock_the_store_out() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_scan(&meta("s1"), &[]).unwrap();
    }
    // Sorted last among the snapshots, with a checksum that cannot match.
    let unfinished = dir.path().join("snap.FFFFFFFFFFFFFFFF.generating");
    std::fs::write(&unfinished, [0x5a; 4096]).unwrap();
    let store = Store::open_reader(dir.path()).expect("opens past the unfinished snapshot");
    assert!(!unfinished.exists());
    assert!(
        store.scan("s1").unwrap().is_some(),
        "what was stored is there"
    );
}

#[test]
fn scan_counter_stays_ahead_of_stored_scans() {
    let (_dir, store) = open();
    store.create_scan(&meta("s7"), &[]).unwrap();
    drop(store);
    let store = Store::open(_dir.path()).unwrap();
    assert_eq!(store.next_scan_id().unwrap(), "s8");
}

#[test]
fn scans_roundtrip_in_numeric_order() {
    let (_dir, store) = open();
    for id in ["s10", "s2", "s1"] {
        store.create_scan(&meta(id), &[]).unwrap();
    }
    assert!(matches!(
        store.create_scan(&meta("s2"), &[]),
        Err(StoreError::ScanExists(_))
    ));
    let ids: Vec<_> = store.scans().unwrap().into_iter().map(|s| s.id).collect();
    assert_eq!(ids, ["s1", "s2", "s10"]);

    let mut done = meta("s2");
    done.state = ScanState::Done;
    done.finished_ms = Some(9);
    store.put_scan(&done).unwrap();
    assert_eq!(store.scan("s2").unwrap(), Some(done));
    assert_eq!(store.scan("s3").unwrap(), None);
}

#[test]
fn tasks_roundtrip() {
    let (_dir, store) = open();
    let mut t1 = resolve_task("s1", "A", 1, vec!["a.it".into(), "b.it".into()]);
    let t2 = Task {
        id: "s1/A/p000001".into(),
        kind: Work::Probe {
            targets: vec![Target {
                ip: v4(192, 0, 2, 1),
                mx_names: vec!["mx.a.it".into()],
            }],
        },
        ..resolve_task("s1", "A", 0, vec![])
    };
    store.create_scan(&meta("s1"), &[t1.clone()]).unwrap();
    store.put_task(&t2).unwrap();
    assert_eq!(store.task(&t1.id).unwrap(), Some(t1.clone()));
    assert_eq!(store.task(&t2.id).unwrap(), Some(t2.clone()));
    assert_eq!(store.task("nope").unwrap(), None);

    t1.state = TaskState::Leased {
        worker: "w1".into(),
        deadline_ms: 5,
    };
    t1.epoch = 1;
    t1.attempts = 1;
    store.put_tasks(&[t1.clone()]).unwrap();
    assert_eq!(store.task(&t1.id).unwrap(), Some(t1.clone()));
    // Ordered by task id.
    assert_eq!(collect(store.tasks()), [t2.clone(), t1.clone()]);

    // A task id cannot move to another scan.
    store.create_scan(&meta("s2"), &[]).unwrap();
    let mut moved = t1.clone();
    moved.scan = "s2".into();
    assert!(matches!(
        store.put_task(&moved),
        Err(StoreError::Invalid(_))
    ));
}

#[test]
fn create_scan_rejects_foreign_tasks() {
    let (_dir, store) = open();
    let foreign = resolve_task("s2", "A", 1, vec![]);
    assert!(matches!(
        store.create_scan(&meta("s1"), &[foreign]),
        Err(StoreError::Invalid(_))
    ));
    assert!(store.scans().unwrap().is_empty());
}

#[test]
fn results_roundtrip_ordered_and_idempotent() {
    let (_dir, store) = open();
    let first = domain("b.it");
    assert!(store.put_domain_record("s1", "B", &first).unwrap());
    assert!(store.put_domain_record("s1", "A", &domain("z.it")).unwrap());
    assert!(store.put_domain_record("s1", "A", &domain("a.it")).unwrap());
    let mut resend = first.clone();
    resend.dns.status = DnsStatus::Timeout;
    assert!(!store.put_domain_record("s1", "B", &resend).unwrap());
    assert_eq!(store.count_domain_records("s1").unwrap(), 3);
    let names: Vec<_> = collect(store.domain_records("s1"))
        .into_iter()
        .map(|r| r.domain)
        .collect();
    assert_eq!(names, ["a.it", "z.it", "b.it"], "by (vantage, domain)");
    let stored_b = collect(store.domain_records("s1")).pop().unwrap();
    assert_eq!(stored_b, first, "a resend does not overwrite");

    let ips = [
        IpAddr::V6(Ipv6Addr::LOCALHOST),
        v4(10, 0, 0, 1),
        v4(9, 0, 0, 1),
        IpAddr::V4(Ipv4Addr::new(9, 0, 0, 1)),
    ];
    let new: Vec<_> = ips
        .iter()
        .map(|&ip| store.put_target_record("s1", "A", &target(ip)).unwrap())
        .collect();
    assert_eq!(new, [true, true, true, false]);
    assert_eq!(store.count_target_records("s1").unwrap(), 3);
    let got: Vec<_> = collect(store.target_records("s1"))
        .into_iter()
        .map(|r| r.ip)
        .collect();
    assert_eq!(got, [ips[2], ips[1], ips[0]], "by ip, IPv4 first");
}

#[test]
fn batch_puts_count_new_keys_once() {
    let (_dir, store) = open();
    let batch = [domain("a.it"), domain("b.it"), domain("a.it")];
    assert_eq!(store.put_domain_records("s1", "A", &batch).unwrap(), 2);
    assert_eq!(store.put_domain_records("s1", "A", &batch).unwrap(), 0);
    let targets = [target(v4(1, 1, 1, 1)), target(v4(1, 1, 1, 2))];
    assert_eq!(store.put_target_records("s1", "A", &targets).unwrap(), 2);
    assert_eq!(store.count_domain_records("s1").unwrap(), 2);
    assert_eq!(store.count_target_records("s1").unwrap(), 2);
}

#[test]
fn claims_are_first_come_per_scan_and_vantage() {
    let (_dir, store) = open();
    let ip = v4(192, 0, 2, 1);
    assert!(store.claim_target("s1", "A", ip).unwrap());
    assert!(!store.claim_target("s1", "A", ip).unwrap());
    assert!(store.claim_target("s1", "B", ip).unwrap());
    assert!(store.claim_target("s10", "A", ip).unwrap());
    let mapped = IpAddr::V6(Ipv4Addr::new(192, 0, 2, 1).to_ipv6_mapped());
    assert!(store.claim_target("s1", "A", mapped).unwrap());
}

/// Planning asks sled through claims known in memory: they answer as sled
/// does, a pruned scan's are forgotten (not another scan's), and a reopened
/// store (after an I/O error) forgets them all: a claim that never reached
/// the disk is not taken for one.
#[test]
fn known_claims_answer_as_sled_and_are_forgotten_with_their_scan_or_a_reopen() {
    let (_dir, store) = open();
    let (a, b) = (v4(192, 0, 2, 1), v4(192, 0, 2, 2));
    store.put_claims("s1", "A", &[a, b]).unwrap();
    store.put_claims("s10", "A", &[a]).unwrap();
    assert!(store.is_claimed("s1", "A", a).unwrap());
    assert!(store.is_claimed("s1", "A", b).unwrap());
    assert!(!store.is_claimed("s1", "A", v4(192, 0, 2, 3)).unwrap());
    assert!(!store.is_claimed("s1", "B", a).unwrap());
    store.prune_claims("s1").unwrap();
    assert!(!store.is_claimed("s1", "A", a).unwrap());
    assert!(store.is_claimed("s10", "A", a).unwrap());
    // The claim leaves sled behind the memory's back, as an unflushed
    // write lost with a failed disk would.
    let key = keys::scan_vantage_key("s10", "A", &keys::ip_tail(a)).unwrap();
    store.h().unwrap().claims.remove(key).unwrap();
    store.reopen().unwrap();
    assert!(!store.is_claimed("s10", "A", a).unwrap());
}

#[test]
fn scans_with_prefix_ids_are_isolated() {
    let (_dir, store) = open();
    store
        .create_scan(&meta("s1"), &[resolve_task("s1", "A", 1, vec![])])
        .unwrap();
    store
        .create_scan(&meta("s10"), &[resolve_task("s10", "A", 1, vec![])])
        .unwrap();
    store.put_domain_record("s1", "A", &domain("a.it")).unwrap();
    store
        .put_domain_record("s10", "A", &domain("a.it"))
        .unwrap();
    store
        .put_domain_record("s10", "A", &domain("b.it"))
        .unwrap();
    store
        .put_target_record("s10", "A", &target(v4(1, 2, 3, 4)))
        .unwrap();

    let ids = |scan| -> Vec<String> {
        collect(store.tasks_of_scan(scan))
            .into_iter()
            .map(|t| t.id)
            .collect()
    };
    assert_eq!(ids("s1"), ["s1/A/r000001"]);
    assert_eq!(ids("s10"), ["s10/A/r000001"]);
    assert_eq!(collect(store.domain_records("s1")).len(), 1);
    assert_eq!(collect(store.domain_records("s10")).len(), 2);
    assert_eq!(collect(store.target_records("s1")).len(), 0);
    assert_eq!(store.count_domain_records("s1").unwrap(), 1);
    assert_eq!(store.count_domain_records("s10").unwrap(), 2);
    assert_eq!(store.count_target_records("s1").unwrap(), 0);
}

#[test]
fn nul_in_ids_is_invalid_not_a_leak() {
    let (_dir, store) = open();
    assert!(matches!(
        store.put_domain_record("s1\u{0}A", "x", &domain("a.it")),
        Err(StoreError::Invalid(_))
    ));
    let mut iter = store.domain_records("s\u{0}");
    assert!(matches!(iter.next(), Some(Err(StoreError::Invalid(_)))));
    assert!(iter.next().is_none());
}

#[test]
fn interrupted_create_leaves_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .create_scan(&meta("s1"), &[resolve_task("s1", "A", 1, vec![])])
            .unwrap();
        // Crash after the tasks, before the meta.
        let tasks: Vec<_> = (0..600)
            .map(|n| resolve_task("s2", "A", n, vec![format!("d{n}.it")]))
            .collect();
        store.write_tasks(&tasks).unwrap();
        store.h().unwrap().db.flush().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(collect(store.tasks_of_scan("s2")).len(), 0);
    assert_eq!(store.task("s2/A/r000001").unwrap(), None);
    assert_eq!(
        store.h().unwrap().task_scan.len(),
        1,
        "index entries removed too"
    );
    let all: Vec<_> = collect(store.tasks()).into_iter().map(|t| t.id).collect();
    assert_eq!(all, ["s1/A/r000001"]);
    // The id can be submitted again, whole.
    store
        .create_scan(&meta("s2"), &[resolve_task("s2", "A", 1, vec![])])
        .unwrap();
    assert_eq!(collect(store.tasks_of_scan("s2")).len(), 1);
}

#[tokio::test]
async fn everything_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let task = resolve_task("s1", "A", 1, vec!["a.it".into()]);
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .create_scan(&meta("s1"), std::slice::from_ref(&task))
            .unwrap();
        store.put_domain_record("s1", "A", &domain("a.it")).unwrap();
        store
            .put_target_record("s1", "A", &target(v4(1, 2, 3, 4)))
            .unwrap();
        store.claim_target("s1", "A", v4(1, 2, 3, 4)).unwrap();
        store.flush().await.unwrap();
        assert!(store.size_on_disk().unwrap() > 0);
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.scan("s1").unwrap(), Some(meta("s1")));
    assert_eq!(store.task(&task.id).unwrap(), Some(task));
    assert_eq!(store.count_domain_records("s1").unwrap(), 1);
    assert_eq!(store.count_target_records("s1").unwrap(), 1);
    assert_eq!(collect(store.domain_records("s1")), [domain("a.it")]);
    assert!(!store.claim_target("s1", "A", v4(1, 2, 3, 4)).unwrap());
    assert!(!store.put_domain_record("s1", "A", &domain("a.it")).unwrap());
    assert_eq!(store.count_domain_records("s1").unwrap(), 1);
}

#[test]
fn corrupt_values_are_errors_not_panics() {
    let (_dir, store) = open();
    store.create_scan(&meta("s1"), &[]).unwrap();
    store
        .h()
        .unwrap()
        .scans
        .insert("s2", &b"{not json"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .task_scan
        .insert("t1", &b"s1"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .tasks
        .insert(b"s1\0t1", &b"\xff\xfe"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .task_scan
        .insert("t2", &b"\xff"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .domain_pages
        .insert(b"s1\0A\0a.it", &b"[]"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .counters
        .insert(keys::counter_key(Counter::Domains, "s1"), &b"xyz"[..])
        .unwrap();
    store
        .h()
        .unwrap()
        .meta
        .insert(NEXT_SCAN, &b"1"[..])
        .unwrap();

    let corrupt = |r: Result<()>| assert!(matches!(r, Err(StoreError::Corrupt(_))), "{r:?}");
    corrupt(store.scan("s2").map(drop));
    corrupt(store.scans().map(drop));
    corrupt(store.task("t1").map(drop));
    corrupt(store.task("t2").map(drop));
    corrupt(store.tasks().try_for_each(|t| t.map(drop)));
    corrupt(store.domain_records("s1").try_for_each(|t| t.map(drop)));
    corrupt(store.count_domain_records("s1").map(drop));
    corrupt(
        store
            .put_domain_record("s1", "A", &domain("b.it"))
            .map(drop),
    );
    corrupt(store.next_scan_id().map(drop));
    // Nothing half-written by the refused batch.
    assert_eq!(store.h().unwrap().domain_pages.len(), 1);
}

#[derive(Debug, Clone)]
enum Put {
    Domain { scan: u8, vantage: u8, name: u8 },
    Target { scan: u8, vantage: u8, ip: u8 },
}

fn put_strategy() -> impl Strategy<Value = Put> {
    prop_oneof![
        (0..2u8, 0..2u8, 0..8u8).prop_map(|(scan, vantage, name)| Put::Domain {
            scan,
            vantage,
            name
        }),
        (0..2u8, 0..2u8, 0..8u8).prop_map(|(scan, vantage, ip)| Put::Target { scan, vantage, ip }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn counts_equal_distinct_keys(puts in proptest::collection::vec(put_strategy(), 0..60)) {
        let (_dir, store) = open();
        let scans = ["s1", "s10"];
        let vantages = ["A", "AB"];
        let mut domains = HashSet::new();
        let mut targets = HashSet::new();
        for put in &puts {
            match *put {
                Put::Domain { scan, vantage, name } => {
                    let key = (scan, vantage, name);
                    let new = store
                        .put_domain_record(
                            scans[usize::from(scan)],
                            vantages[usize::from(vantage)],
                            &domain(&format!("d{name}.it")),
                        )
                        .unwrap();
                    prop_assert_eq!(new, domains.insert(key));
                }
                Put::Target { scan, vantage, ip } => {
                    let key = (scan, vantage, ip);
                    let new = store
                        .put_target_record(
                            scans[usize::from(scan)],
                            vantages[usize::from(vantage)],
                            &target(v4(10, 0, 0, ip)),
                        )
                        .unwrap();
                    prop_assert_eq!(new, targets.insert(key));
                }
            }
        }
        for (i, scan) in scans.iter().enumerate() {
            let i = u8::try_from(i).unwrap();
            let want_d = domains.iter().filter(|k| k.0 == i).count() as u64;
            let want_t = targets.iter().filter(|k| k.0 == i).count() as u64;
            prop_assert_eq!(store.count_domain_records(scan).unwrap(), want_d);
            prop_assert_eq!(store.count_target_records(scan).unwrap(), want_t);
            prop_assert_eq!(store.domain_records(scan).count() as u64, want_d);
            prop_assert_eq!(store.target_records(scan).count() as u64, want_t);
        }
    }
}

/// Stress: 32 reporters writing tasks and records and flushing at once all
/// finish, and count exactly. (The sled 0.34 deadlock between racing
/// `flush_async` calls and batch writes that made flushes group-committed
/// only showed with a million-domain scan: `mxscope-cluster-bench` is its
/// reproducer; this test did not trigger it with the old code.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_and_flushes_do_not_deadlock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..32 {
        let store = store.clone();
        tasks.spawn(async move {
            for round in 0..20 {
                let task = Task {
                    id: format!("s1/A/r{w:03}{round:03}"),
                    scan: "s1".into(),
                    vantage: "A".into(),
                    kind: Work::Resolve {
                        domains: (0..250).map(|i| format!("d{i}.example")).collect(),
                    },
                    state: TaskState::Pending,
                    epoch: round,
                    attempts: 0,
                };
                store.put_task(&task).unwrap();
                let records: Vec<DomainRecord> = (0..250)
                    .map(|i| {
                        DomainRecord::new(
                            format!("w{w}-r{round}-{i}.example"),
                            DnsResult::failed(DnsStatus::Nxdomain, "x"),
                        )
                    })
                    .collect();
                store.put_domain_records("s1", "A", &records).unwrap();
                store.flush().await.unwrap();
            }
        });
    }
    let all = async {
        while let Some(joined) = tasks.join_next().await {
            joined.unwrap();
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(120), all)
        .await
        .expect("writers and flushes deadlocked");
    assert_eq!(store.count_domain_records("s1").unwrap(), 32 * 20 * 250);
}

#[test]
fn a_vantage_tally_counts_each_record_once() {
    let (_dir, store) = open();
    let targets = [target(v4(192, 0, 2, 1)), target(v4(192, 0, 2, 2))];
    store.put_target_records("s1", "A", &targets).unwrap();
    // A resend (at-least-once delivery) adds nothing.
    store.put_target_records("s1", "A", &targets).unwrap();
    store.put_target_record("s1", "B", &targets[0]).unwrap();
    let mut excluded = domain("x.example");
    excluded.dns.status = DnsStatus::Excluded;
    store.put_domain_record("s1", "A", &excluded).unwrap();
    store.put_domain_record("s1", "A", &excluded).unwrap();
    let tallies: BTreeMap<String, _> = store.tallies("s1").unwrap().into_iter().collect();
    assert_eq!(tallies.len(), 2);
    assert_eq!(tallies["A"].politeness.sessions, 2);
    assert_eq!(tallies["A"].politeness.targets_contacted, 2);
    assert_eq!(tallies["A"].politeness.excluded_domains, 1);
    assert_eq!(tallies["B"].politeness.sessions, 1);
    assert!(
        store.tallies("s10").unwrap().is_empty(),
        "no prefix collision"
    );
    assert!(
        store.tallies("s").unwrap().is_empty(),
        "no prefix collision"
    );
}

/// Every file under `dir` with its bytes (sorted): equal before and after
/// means nothing was written.
pub(super) fn snapshot(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push((path.clone(), std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Fails, naming the files, unless two snapshots are byte-identical.
pub(super) fn assert_unchanged(
    before: &[(std::path::PathBuf, Vec<u8>)],
    after: &[(std::path::PathBuf, Vec<u8>)],
) {
    let changed: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("{} {}→{} bytes", a.0.display(), a.1.len(), b.1.len()))
        .collect();
    assert!(
        before.len() == after.len() && changed.is_empty(),
        "a reader changed the directory: {} files then {}: {changed:?}",
        before.len(),
        after.len()
    );
}

#[test]
fn a_reader_leaves_the_directory_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        let tasks = [resolve_task("s1", "A", 0, vec!["a.it".into()])];
        store.create_scan(&meta("s1"), &tasks).unwrap();
        store.put_domain_record("s1", "A", &domain("a.it")).unwrap();
        store
            .put_target_record("s1", "A", &target(v4(9, 0, 0, 1)))
            .unwrap();
        // An interrupted submission: tasks without meta, a staged list.
        store
            .put_new_scan_tasks("s2", &[resolve_task("s2", "A", 0, vec!["b.it".into()])])
            .unwrap();
        let mut staging = store.staging_with_runs("u1", 1).unwrap();
        staging.insert(&["b.it", "c.it"]).unwrap();
        drop(staging); // as a crash leaves it
        store.h().unwrap().db.flush().unwrap();
    }
    // A clean stop settles the directory (sled's first-reopen writes).
    Store::settle(dir.path()).unwrap();
    let before = snapshot(dir.path());
    for _ in 0..2 {
        let reader = Store::open_reader(dir.path()).unwrap();
        assert_eq!(reader.scans().unwrap().len(), 1);
        assert_eq!(reader.count_target_records("s1").unwrap(), 1);
        assert_eq!(collect(reader.domain_records("s1")).len(), 1);
        drop(reader);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_unchanged(&before, &snapshot(dir.path()));
    // The next writer cleans up.
    let writer = Store::open(dir.path()).unwrap();
    assert_eq!(collect(writer.tasks()).len(), 1, "the orphan task is gone");
    assert!(!dir.path().join("staging").exists());
}

#[test]
fn formats_old_new_and_none() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_scan(&meta("s1"), &[]).unwrap();
    }
    assert_eq!(format::read(dir.path()).unwrap(), Some(format::CURRENT));
    // The previous format: the same trees, no FORMAT file.
    std::fs::remove_file(dir.path().join("FORMAT")).unwrap();
    let reader = Store::open_reader(dir.path()).unwrap();
    assert_eq!(reader.scans().unwrap().len(), 1, "format 1 is readable");
    drop(reader);
    assert_eq!(
        format::read(dir.path()).unwrap(),
        Some(1),
        "a reader does not upgrade"
    );
    let writer = Store::open(dir.path()).unwrap();
    assert_eq!(writer.scans().unwrap().len(), 1);
    drop(writer);
    assert_eq!(format::read(dir.path()).unwrap(), Some(format::CURRENT));
    // A newer format is refused by readers and writers alike, untouched.
    std::fs::write(
        dir.path().join("FORMAT"),
        format!("{}\n", format::CURRENT + 1),
    )
    .unwrap();
    let before = snapshot(dir.path());
    for err in [
        Store::open_reader(dir.path()).unwrap_err(),
        Store::open(dir.path()).unwrap_err(),
    ] {
        assert!(matches!(err, StoreError::Format(_)), "{err}");
        assert!(err.to_string().contains("newer mxscope"), "{err}");
    }
    assert!(before == snapshot(dir.path()));
    // Not a store at all.
    let empty = tempfile::tempdir().unwrap();
    assert!(matches!(
        Store::open_reader(empty.path()),
        Err(StoreError::Format(_))
    ));
}

/// A delivered record is stored as the text it came in, and streamed out
/// as that text; a record made here is stored as its encoding.
#[test]
fn delivered_records_are_stored_and_streamed_as_their_text() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut record = DomainRecord::new(
        "a.example".into(),
        DnsResult::failed(DnsStatus::Nxdomain, "x"),
    );
    record.scan = Some("s1".into());
    record.vantage = Some("A".into());
    // Not the coordinator's own encoding: an extra space after the tag.
    let text = serde_json::to_string(&record).unwrap().replacen(
        r#""kind":"domain","#,
        r#""kind": "domain","#,
        1,
    );
    let delivered = mxscope_common::Delivered {
        record: record.clone(),
        json: text.clone(),
    };
    assert_eq!(
        store.put_domain_records("s1", "A", &[delivered]).unwrap(),
        1
    );
    let made = TargetRecord::new(Ipv4Addr::LOCALHOST.into(), 25, vec![]);
    assert_eq!(
        store
            .put_target_records("s1", "A", std::slice::from_ref(&made))
            .unwrap(),
        1
    );
    let texts: Vec<String> = store
        .domain_texts("s1", Some("A"))
        .map(Result::unwrap)
        .collect();
    assert_eq!(texts, [text]);
    assert_eq!(store.domain_texts("s1", Some("B")).count(), 0);
    let targets: Vec<String> = store.target_texts("s1").map(Result::unwrap).collect();
    assert_eq!(targets, [serde_json::to_string(&made).unwrap()]);
    let decoded: Vec<DomainRecord> = store.domain_records("s1").map(Result::unwrap).collect();
    assert_eq!(decoded, [record], "the text reads back as the record");
}
