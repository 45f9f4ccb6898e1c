//! The scheduler's unit and property tests.

use super::*;
use mxscope_common::wire::task::{ItemBudget, ItemsTaken};
use proptest::prelude::*;
use std::collections::HashMap;

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("d{i}.example")).collect()
}

#[test]
fn a_released_lease_spends_no_attempt() {
    let mut task = resolve_tasks("s1", &["A".into()], &names(1), 1).remove(0);
    for _ in 0..5 {
        let epoch = lease(&mut task, "w1", 0, 10).unwrap();
        release(&mut task, "w1", epoch).unwrap();
    }
    assert_eq!(task.attempts, 0);
    lease(&mut task, "w1", 0, 10).unwrap();
    assert_eq!(
        expire(&mut task, 10, 1),
        Expiry::Failed("lease expired 1 times (last worker w1)".into())
    );
}

#[test]
fn lease_life_cycle_with_fencing() {
    let mut task = resolve_tasks("s1", &["A".into()], &names(3), 10).remove(0);
    assert_eq!(lease(&mut task, "w1", 0, 100), Some(1));
    assert_eq!(lease(&mut task, "w2", 0, 100), None, "already leased");
    assert!(heartbeat(&mut task, "w1", 1, 50, 100).is_ok());
    assert_eq!(
        expire(&mut task, 120, 3),
        Expiry::Kept,
        "heartbeat extended"
    );
    assert_eq!(expire(&mut task, 150, 3), Expiry::Requeued);
    assert_eq!(lease(&mut task, "w2", 150, 100), Some(2));
    // The first worker's late result carries epoch 1: stale.
    assert!(matches!(
        complete(&mut task, "w1", 1),
        Err(Fence::StaleEpoch {
            given: 1,
            current: 2,
            ..
        })
    ));
    assert!(complete(&mut task, "w2", 2).is_ok());
    assert_eq!(task.state, TaskState::Done);
    assert_eq!(
        complete(&mut task, "w2", 2),
        Err(Fence::NotLeased(task.id.clone()))
    );
}

#[test]
fn attempts_are_bounded() {
    let mut task = resolve_tasks("s1", &["A".into()], &names(1), 10).remove(0);
    for attempt in 1..=3 {
        lease(&mut task, "w", 0, 10).unwrap();
        let expiry = expire(&mut task, 10, 3);
        if attempt < 3 {
            assert_eq!(expiry, Expiry::Requeued);
        } else {
            assert!(matches!(expiry, Expiry::Failed(_)));
        }
    }
    assert!(matches!(task.state, TaskState::Failed { .. }));
    assert_eq!(lease(&mut task, "w", 0, 10), None);
}

#[test]
fn targets_merge_names_per_ip() {
    use mxscope_common::{DnsResult, DnsStatus, MxEntry};
    let ip: IpAddr = "192.0.2.1".parse().unwrap();
    let record = |domain: &str, mx: &str| {
        let mut dns = DnsResult::failed(DnsStatus::Ok, "");
        dns.error = None;
        dns.mx = vec![MxEntry {
            preference: 10,
            exchange: mx.into(),
            addresses: vec![ip],
            status: DnsStatus::Ok,
        }];
        DomainRecord::new(domain.into(), dns)
    };
    let targets = targets_of(&[
        record("a.example", "mx1.example"),
        record("b.example", "mx2.example"),
    ]);
    assert_eq!(targets.len(), 1);
    assert_eq!(targets[&ip].len(), 2);
}

proptest! {
    #[test]
    fn every_domain_in_exactly_one_shard_per_vantage(n in 0usize..2000, size in 1usize..300, v in 1usize..4) {
        let domains = names(n);
        let vantages: Vec<String> = (0..v).map(|i| format!("v{i}")).collect();
        let tasks = resolve_tasks("s1", &vantages, &domains, size);
        let mut seen: HashMap<(String, String), usize> = HashMap::new();
        let mut order: HashMap<String, Vec<String>> = HashMap::new();
        for task in &tasks {
            let Work::Resolve { domains } = &task.kind else { unreachable!() };
            prop_assert!(!domains.is_empty() && domains.len() <= size);
            for d in domains {
                *seen.entry((task.vantage.clone(), d.clone())).or_default() += 1;
            }
            order.entry(task.vantage.clone()).or_default().extend(domains.iter().cloned());
        }
        prop_assert_eq!(seen.len(), n * v);
        prop_assert!(seen.values().all(|c| *c == 1));
        let ids: BTreeSet<_> = tasks.iter().map(|t| &t.id).collect();
        prop_assert_eq!(ids.len(), tasks.len(), "task ids are unique");
        // Each vantage's tasks, by number, give the list back in order;
        // every shard but the last is full.
        for vantage in &vantages {
            let mut own: Vec<&Task> = tasks.iter().filter(|t| &t.vantage == vantage).collect();
            own.sort_by_key(|t| task_seq(&t.id, TaskClass::Resolve));
            let seqs: Vec<u64> = own.iter().filter_map(|t| task_seq(&t.id, TaskClass::Resolve)).collect();
            prop_assert_eq!(seqs, (0..own.len() as u64).collect::<Vec<_>>());
            let back: Vec<String> = own.iter().flat_map(|t| match &t.kind {
                Work::Resolve { domains } => domains.clone(),
                Work::Probe { .. } => Vec::new(),
            }).collect();
            prop_assert_eq!(&back, &domains);
            prop_assert!(own.iter().rev().skip(1).all(|t| t.items() == size));
        }
    }

    #[test]
    fn every_target_in_exactly_one_probe_task(n in 0u32..500, batch in 1usize..64) {
        let targets: Vec<Target> = (0..n)
            .map(|i| Target { ip: IpAddr::from(i.to_be_bytes()), mx_names: vec![] })
            .collect();
        let tasks = probe_tasks("s1", "A", 7, targets.clone(), batch);
        let mut seen = BTreeSet::new();
        for task in &tasks {
            let Work::Probe { targets } = &task.kind else { unreachable!() };
            prop_assert!(!targets.is_empty() && targets.len() <= batch);
            for t in targets {
                prop_assert!(seen.insert(t.ip), "target in two tasks");
            }
        }
        prop_assert_eq!(seen.len(), n as usize);
    }

    /// A queue refilled by [`refill`] while it is drained at random
    /// never holds more than its window, reads every task number of the
    /// feed once and in order, and runs dry only when the feed has.
    #[test]
    fn refill_reads_every_task_once_within_the_window(
        end in 0u64..500,
        window in 0usize..80,
        drains in proptest::collection::vec(0usize..40, 1..200),
    ) {
        let mut next = 0u64;
        let mut queue: std::collections::VecDeque<u64> = Default::default();
        let mut read = Vec::new();
        for drain in drains.into_iter().chain(std::iter::repeat_n(usize::MAX, 600)) {
            for _ in 0..drain.min(queue.len()) {
                queue.pop_front();
            }
            match refill(queue.len(), window, next, end) {
                Some(range) => {
                    prop_assert!(range.start == next && range.start < range.end && range.end <= end);
                    prop_assert!(queue.len() + (range.end - range.start) as usize <= window.max(2));
                    read.extend(range.clone());
                    queue.extend(range.clone());
                    next = range.end;
                }
                None => prop_assert!(next == end || queue.len() >= window.max(2) / 2),
            }
        }
        prop_assert_eq!(read, (0..end).collect::<Vec<_>>());
    }

    /// A lease call taking tasks of random kinds and sizes while its
    /// budget allows: a kind without room gets nothing, a kind with
    /// room gets at least one task, and no kind passes its bound by
    /// more than its last task; 0 is no bound.
    #[test]
    fn a_lease_stays_within_its_budget(
        tasks in proptest::collection::vec((proptest::bool::ANY, 1usize..40), 0..60),
        shared in proptest::option::of(0usize..200),
        sessions in 0usize..100,
        resolutions in 0usize..100,
    ) {
        let budget = match shared {
            Some(max) => ItemBudget::Shared(max),
            None => ItemBudget::Split { sessions, resolutions },
        };
        let kind = |probe: bool| if probe { SlotKind::Session } else { SlotKind::Resolution };
        let mut taken = ItemsTaken::default();
        let (mut last, mut got) = ([0usize; 2], [0usize; 2]);
        for (probe, items) in &tasks {
            if budget.exhausted(&taken) {
                break;
            }
            if !budget.allows(kind(*probe), &taken) {
                continue;
            }
            taken.add(kind(*probe), *items);
            last[usize::from(*probe)] = *items;
            got[usize::from(*probe)] += 1;
        }
        let offered = |probe: bool| tasks.iter().any(|(p, _)| *p == probe);
        match budget {
            ItemBudget::Shared(0) => prop_assert_eq!(got[0] + got[1], tasks.len()),
            ItemBudget::Shared(max) => {
                let total = taken.sessions + taken.resolutions;
                prop_assert!(total < max + last[0].max(last[1]));
                prop_assert!(total >= max || got[0] + got[1] == tasks.len());
            }
            ItemBudget::Split { sessions, resolutions } => {
                for (probe, bound, took) in [(true, sessions, taken.sessions), (false, resolutions, taken.resolutions)] {
                    let i = usize::from(probe);
                    prop_assert!(bound > 0 || got[i] == 0, "a kind without room gets nothing");
                    prop_assert!(bound == 0 || !offered(probe) || got[i] > 0, "a kind with room gets a task");
                    prop_assert!(took < bound + last[i] || got[i] == 0);
                }
            }
        }
    }

    /// Random interleavings of lease, heartbeat, expiry, release and
    /// completion by several workers: at any moment at most one epoch
    /// is accepted, and it is the latest one handed out.
    #[test]
    fn no_lease_is_held_under_two_epochs(ops in proptest::collection::vec((0u8..5, 0usize..3, 0u64..40), 1..200)) {
        let mut task = resolve_tasks("s1", &["A".into()], &names(1), 1).remove(0);
        let workers = ["w0", "w1", "w2"];
        let mut now = 0u64;
        let mut granted: Vec<(usize, u64)> = Vec::new();
        for (op, w, dt) in ops {
            now += dt;
            let worker = workers[w];
            let held = granted.iter().rev().find(|(gw, _)| *gw == w).map(|(_, e)| *e);
            match op {
                0 => if let Some(epoch) = lease(&mut task, worker, now, 20) { granted.push((w, epoch)); },
                1 => { if let Some(e) = held { let _ = heartbeat(&mut task, worker, e, now, 20); } }
                2 => { let _ = expire(&mut task, now, 100); }
                3 => { if let Some(e) = held { let _ = release(&mut task, worker, e); } }
                _ => { if let Some(e) = held { let _ = complete(&mut task, worker, e); } }
            }
            let accepted: Vec<_> = granted
                .iter()
                .filter(|(gw, e)| check(&task, workers[*gw], *e).is_ok())
                .collect();
            prop_assert!(accepted.len() <= 1, "two epochs accepted: {:?}", accepted);
            if let Some((_, e)) = accepted.first() {
                prop_assert_eq!(*e, task.epoch);
                prop_assert_eq!(Some(*e), granted.last().map(|(_, e)| *e));
            }
        }
    }
}
