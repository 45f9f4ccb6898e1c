//! Domain records in pages: many batches in any order, resends, splits,
//! a stream read while batches are written, and the move from format 2.

use std::collections::BTreeMap;

use mxscope_common::record::{DnsStatus, DomainRecord};
use proptest::prelude::*;

use super::pages::PAGE_RECORDS;
use super::tests::{domain, open};
use super::*;

fn names(store: &Store, scan: &str) -> Vec<String> {
    store
        .domain_records(scan)
        .map(|r| r.unwrap().domain)
        .collect()
}

fn assert_in_order_each_once(seen: &[String]) {
    let mut sorted = seen.to_vec();
    sorted.sort();
    sorted.dedup();
    assert_eq!(seen, sorted, "in order, each once");
}

/// A record told apart from a resend of the same domain by its status.
fn marked(name: &str, status: DnsStatus) -> DomainRecord {
    let mut record = domain(name);
    record.dns.status = status;
    record
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Whatever the batches (sizes, order, duplicates, resends), the pages
    /// hold each (vantage, domain) once with the first record sent for it,
    /// stream them in order, and count them exactly.
    #[test]
    fn pages_hold_each_domain_once_with_its_first_record(
        batches in proptest::collection::vec(
            proptest::collection::vec((0u8..2, 0u16..700), 1..150), 1..25)
    ) {
        let (_dir, store) = open();
        let mut first: BTreeMap<(String, String), usize> = BTreeMap::new();
        for (b, batch) in batches.iter().enumerate() {
            let vantage = ["A", "B"][usize::from(batch[0].0)];
            let records: Vec<DomainRecord> = batch
                .iter()
                .map(|(_, n)| marked(&format!("d{n:04}.it"), if b % 2 == 0 { DnsStatus::Ok } else { DnsStatus::Timeout }))
                .collect();
            let mut expected_new = 0;
            for r in &records {
                if let std::collections::btree_map::Entry::Vacant(slot) =
                    first.entry((vantage.to_string(), r.domain.clone()))
                {
                    slot.insert(b);
                    expected_new += 1;
                }
            }
            prop_assert_eq!(store.put_domain_records("s1", vantage, &records).unwrap(), expected_new);
        }
        prop_assert_eq!(store.count_domain_records("s1").unwrap(), first.len() as u64);
        let streamed: Vec<DomainRecord> = store.domain_records("s1").map(Result::unwrap).collect();
        let order: Vec<&String> = first.keys().map(|(_, d)| d).collect();
        let streamed: Vec<&String> = streamed.iter().map(|r| &r.domain).collect();
        prop_assert_eq!(streamed, order, "by (vantage, domain)");
        for vantage in ["A", "B"] {
            let of: Vec<DomainRecord> = store.domain_records_of("s1", vantage).map(Result::unwrap).collect();
            let want: Vec<(&String, &usize)> = first.iter().filter(|((v, _), _)| v == vantage).map(|((_, d), b)| (d, b)).collect();
            prop_assert_eq!(of.len(), want.len());
            for (record, (name, batch)) in of.iter().zip(want) {
                prop_assert_eq!(&record.domain, name);
                let status = if batch % 2 == 0 { DnsStatus::Ok } else { DnsStatus::Timeout };
                prop_assert_eq!(record.dns.status, status, "the first record of {} stays", name);
            }
            prop_assert_eq!(store.domain_texts("s1", Some(vantage)).count(), of.len());
            // Cut in two runs at the middle: the same records, in order.
            let run = |from: Option<&[u8]>, to: Option<&[u8]>| -> Vec<String> {
                store.domain_records_between("s1", vantage, from, to).map(|r| r.unwrap().domain).collect()
            };
            let median = of.get(of.len() / 2).map_or("d0000.it", |r| r.domain.as_str());
            let runs = match store.domain_records_cut("s1", vantage, median).unwrap() {
                Some(middle) => {
                    let earlier = run(None, Some(&middle));
                    prop_assert!(!earlier.is_empty(), "a cut after the first page");
                    [earlier, run(Some(&middle), None)].concat()
                }
                None => run(None, None),
            };
            let names: Vec<String> = of.iter().map(|r| r.domain.clone()).collect();
            prop_assert_eq!(runs, names);
        }
    }
}

/// A cut at the median domain gives two runs of about half each (a page
/// apart at most), only the vantage's; before the first page, no cut.
#[test]
fn a_cut_at_the_median_gives_two_halves() {
    let (_dir, store) = open();
    let mut names: Vec<String> = (0..5_000).map(|i| format!("d{i}.nat.it")).collect();
    names.sort();
    let records: Vec<DomainRecord> = names.iter().map(|n| domain(n)).collect();
    for batch in records.chunks(250) {
        store.put_domain_records("s1", "A", batch).unwrap();
    }
    store.put_domain_records("s1", "B", &records[..10]).unwrap();
    let cut = store
        .domain_records_cut("s1", "A", &names[2_500])
        .unwrap()
        .expect("a cut");
    let earlier = store
        .domain_records_between("s1", "A", None, Some(&cut))
        .count();
    let later = store
        .domain_records_between("s1", "A", Some(&cut), None)
        .count();
    assert_eq!(earlier + later, 5_000, "B's records are not A's");
    assert!(
        earlier.abs_diff(2_500) <= PAGE_RECORDS,
        "{earlier} / {later}"
    );
    assert_eq!(
        store.domain_records_cut("s1", "A", &names[0]).unwrap(),
        None
    );
    assert_eq!(store.domain_records_cut("s1", "C", "x.it").unwrap(), None);
}

#[test]
fn a_stream_read_while_batches_split_its_pages_gives_each_record_once() {
    let (_dir, store) = open();
    // Every other domain first: later batches fall between them and split
    // the pages the reader has already passed, or is about to read.
    let even: Vec<DomainRecord> = (0..2000)
        .step_by(2)
        .map(|i| domain(&format!("d{i:05}.it")))
        .collect();
    assert_eq!(store.put_domain_records("s1", "A", &even).unwrap(), 1000);
    let mut reader = store.domain_records_of("s1", "A");
    let mut seen: Vec<String> = (0..300)
        .map(|_| reader.next().unwrap().unwrap().domain)
        .collect();
    for chunk in (1..2000).step_by(2).collect::<Vec<_>>().chunks(50) {
        let odd: Vec<DomainRecord> = chunk
            .iter()
            .map(|i| domain(&format!("d{i:05}.it")))
            .collect();
        store.put_domain_records("s1", "A", &odd).unwrap();
        if let Some(next) = reader.next() {
            seen.push(next.unwrap().domain);
        }
    }
    seen.extend(reader.map(|r| r.unwrap().domain));
    assert_in_order_each_once(&seen);
    for i in (0..2000).step_by(2) {
        assert!(
            seen.contains(&format!("d{i:05}.it")),
            "a record stored before the read is read"
        );
    }
    assert_eq!(names(&store, "s1").len(), 2000);
    assert!(
        store.h().unwrap().domain_pages.len() > 2000 / PAGE_RECORDS,
        "the pages were split"
    );
}

#[test]
fn a_format_2_directory_is_read_as_it_is_and_moved_into_pages_by_a_writer() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_scan(&tests::meta("s1"), &[]).unwrap();
        // Format 2's layout: one key per record in `domains`.
        let h = store.h().unwrap();
        for (vantage, n) in [("A", 300), ("B", 5)] {
            for i in 0..n {
                let record = domain(&format!("d{i:04}.it"));
                h.domains
                    .insert(
                        keys::scan_vantage_key("s1", vantage, record.domain.as_bytes()).unwrap(),
                        serde_json::to_vec(&record).unwrap(),
                    )
                    .unwrap();
            }
        }
        h.db.flush().unwrap();
    }
    std::fs::write(dir.path().join("FORMAT"), "2\n").unwrap();
    let want: Vec<String> = ["A", "B"]
        .iter()
        .flat_map(|v| (0..if *v == "A" { 300 } else { 5 }).map(|i| format!("d{i:04}.it")))
        .collect();
    {
        let reader = Store::open_reader(dir.path()).unwrap();
        assert_eq!(
            names(&reader, "s1"),
            want,
            "a reader reads format 2 as it is"
        );
    }
    assert_eq!(format::read(dir.path()).unwrap(), Some(2), "and leaves it");
    let writer = Store::open(dir.path()).unwrap();
    assert_eq!(format::read(dir.path()).unwrap(), Some(format::CURRENT));
    assert_eq!(names(&writer, "s1"), want, "moved into pages, in order");
    assert!(writer.h().unwrap().domains.is_empty());
    // A resend of a moved record is known; a new one is stored.
    assert_eq!(
        writer
            .put_domain_records("s1", "A", &[domain("d0007.it"), domain("d9999.it")])
            .unwrap(),
        1
    );
    drop(writer);
    let reader = Store::open_reader(dir.path()).unwrap();
    assert_eq!(names(&reader, "s1").len(), want.len() + 1);
}

/// A format 2 directory as the old binary left it: `n` records of scan
/// s1 at vantage A, one key each, no pages tree, settled.
fn format_2_directory(n: usize) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        store.create_scan(&tests::meta("s1"), &[]).unwrap();
        let h = store.h().unwrap();
        for i in 0..n {
            let record = domain(&format!("d{i:04}.it"));
            h.domains
                .insert(
                    keys::scan_vantage_key("s1", "A", record.domain.as_bytes()).unwrap(),
                    serde_json::to_vec(&record).unwrap(),
                )
                .unwrap();
        }
        h.db.flush().unwrap();
    }
    let db = sled::open(dir.path()).unwrap();
    assert!(db.drop_tree("domain_pages").unwrap());
    db.flush().unwrap();
    drop(db);
    std::fs::write(dir.path().join("FORMAT"), "2\n").unwrap();
    Store::settle(dir.path()).unwrap();
    dir
}

#[test]
fn a_reader_of_format_2_makes_no_pages_tree() {
    // Few records: sled itself rewrites a node that many single inserts
    // left in fragments on its next read, whoever reads it.
    let dir = format_2_directory(3);
    let before = tests::snapshot(dir.path());
    for _ in 0..2 {
        let reader = Store::open_reader(dir.path()).unwrap();
        assert_eq!(names(&reader, "s1"), ["d0000.it", "d0001.it", "d0002.it"]);
        drop(reader);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    tests::assert_unchanged(&before, &tests::snapshot(dir.path()));
    let db = sled::open(dir.path()).unwrap();
    assert!(!db
        .tree_names()
        .iter()
        .any(|n| n.as_ref() == b"domain_pages"));
}

#[test]
fn a_reader_of_format_2_takes_no_records() {
    let dir = format_2_directory(1);
    let reader = Store::open_reader(dir.path()).unwrap();
    let refused = reader.put_domain_records("s1", "A", &[domain("new.it")]);
    assert!(
        matches!(refused, Err(StoreError::Invalid(_))),
        "{refused:?}"
    );
    assert_eq!(names(&reader, "s1"), ["d0000.it"]);
}

#[test]
fn a_page_stored_under_another_domain_is_an_error_not_a_silent_end() {
    let (_dir, store) = open();
    store
        .put_domain_records("s1", "A", &[domain("a.it"), domain("c.it")])
        .unwrap();
    let mut bad = pages::Page::default();
    bad.insert(b"bb.it", b"{}");
    store
        .h()
        .unwrap()
        .domain_pages
        .insert(b"s1\0A\0b.it", bad.encode().unwrap())
        .unwrap();
    let read: Vec<Result<DomainRecord>> = store.domain_records("s1").collect();
    assert!(
        read.iter()
            .any(|r| matches!(r, Err(StoreError::Corrupt(_)))),
        "{read:?}"
    );
    let refused = store.put_domain_record("s1", "A", &domain("b.xx"));
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
}

#[test]
fn a_batch_is_tallied_in_the_order_its_records_came() {
    use mxscope_common::record::security_dns::{DnssecStatus, ResolverCheck};
    use mxscope_common::record::security_policy::{MtaSts, MtaStsVerdict, TlsRpt, TlsRptVerdict};
    use mxscope_common::record::DomainSecurity;
    let checked = |name: &str, resolver: &str| {
        let mut record = domain(name);
        record.security = Some(DomainSecurity {
            dnssec_mx: DnssecStatus::Insecure,
            dnssec_exchanges: BTreeMap::new(),
            dnssec_mx_reason: None,
            dnssec_exchange_reasons: BTreeMap::new(),
            resolver_check: Some(ResolverCheck {
                usable: true,
                reason: None,
                resolvers: vec![resolver.to_string()],
                anchor_zone: ".".into(),
                dnskey_rcode: None,
                dnskey: true,
                anchor_matches: true,
                rrsig: true,
                ad: false,
                tcp: true,
                signed_name: None,
                signed_name_rrsig: None,
                detail: String::new(),
            }),
            mta_sts: MtaSts {
                verdict: MtaStsVerdict::NoMtaSts,
                txt_id: None,
                policy: None,
                per_mx: Vec::new(),
                detail: None,
            },
            tls_rpt: TlsRpt {
                verdict: TlsRptVerdict::Absent,
                present: false,
                rua: Vec::new(),
                detail: None,
            },
        });
        record
    };
    let (_dir, store) = open();
    // The last usable check of a batch is the one a tally keeps: the last
    // to arrive (z.it came first, a.it last), not the last by name.
    let batch = [checked("z.it", "first"), checked("a.it", "last")];
    store.put_domain_records("s1", "A", &batch).unwrap();
    let tallies = store.tallies("s1").unwrap();
    let check = tallies[0].1.resolver_check.as_ref().unwrap();
    assert_eq!(check.resolvers, ["last"]);
}

/// Records that arrive task by task, each task's domains after the last,
/// make pages of their own: the page before them is not written again, and
/// a reader streaming meanwhile gets each record at most once, in order,
/// and every one stored before it began.
#[test]
fn tasks_in_list_order_append_pages_and_leave_the_stored_ones_as_they_are() {
    let (_dir, store) = open();
    let task = |t: usize| -> Vec<DomainRecord> {
        (t * 250..(t + 1) * 250)
            .map(|i| domain(&format!("d{i:05}.it")))
            .collect()
    };
    assert_eq!(store.put_domain_records("s1", "A", &task(0)).unwrap(), 250);
    let pages = |store: &Store| -> BTreeMap<Vec<u8>, Vec<u8>> {
        let h = store.h().unwrap();
        h.domain_pages
            .iter()
            .map(|kv| {
                let (k, v) = kv.unwrap();
                (k.to_vec(), v.to_vec())
            })
            .collect()
    };
    let mut reader = store.domain_records_of("s1", "A");
    let mut seen: Vec<String> = (0..240)
        .map(|_| reader.next().unwrap().unwrap().domain)
        .collect();
    for t in 1..8 {
        let before = pages(&store);
        assert_eq!(store.put_domain_records("s1", "A", &task(t)).unwrap(), 250);
        let after = pages(&store);
        for (key, value) in &before {
            assert_eq!(after.get(key), Some(value), "a stored page stays as it was");
        }
        assert!(after.len() > before.len(), "the task made pages of its own");
        if let Some(next) = reader.next() {
            seen.push(next.unwrap().domain);
        }
    }
    seen.extend(reader.map(|r| r.unwrap().domain));
    assert_in_order_each_once(&seen);
    let first_task: Vec<String> = (0..250).map(|i| format!("d{i:05}.it")).collect();
    assert_eq!(
        seen[..250],
        first_task,
        "every record stored before the read"
    );
    let all: Vec<String> = (0..2000).map(|i| format!("d{i:05}.it")).collect();
    assert_eq!(names(&store, "s1"), all);
    assert_eq!(store.count_domain_records("s1").unwrap(), 2000);
}
