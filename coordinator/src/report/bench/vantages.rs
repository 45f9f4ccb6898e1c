//! A benchmark, not a test: the 1,000,000-domain synthetic store of
//! [`crate::report::bench`] measured from two vantages (A, and B with 1 domain in
//! 1,000 given another MX, 1 in 997 a moved address and 1 target in 500 another
//! certificate), then the vantages comparison and the report with its
//! agreement section, with time and peak RSS.
//!
//! `cargo test --release -p mxscope-coordinator --lib report::bench::vantages -- --ignored --nocapture`
//!
//! With `MXSCOPE_BENCH_DIR=DIR` the store is kept (scan `s1`, vantages A
//! and B) for `mxscope vantages s1 --data-dir DIR` and `mxscope report s1
//! --data-dir DIR` under `/usr/bin/time -v`.

use std::collections::BTreeMap;
use std::time::Instant;

use mxscope_common::{DomainRecord, TargetRecord};

use crate::model::{ScanMeta, ScanOptions, ScanState};
use crate::report::bench::{domain, ip, reset_hwm, target, vm_hwm_kb, BATCH, DOMAINS, MX_NAMES};
use crate::report::model::ScanInfo;
use crate::report::vantages::agreement;
use crate::report::{scan_report, vantages_report_joined};
use crate::store::Store;

/// Vantage B's record of domain `i`: A's, tampered for a few.
fn domain_b(i: u64) -> DomainRecord {
    let mut d = domain(i);
    d.vantage = Some("B".into());
    if i % 1000 == 0 {
        if let Some(mx) = d.dns.mx.first_mut() {
            mx.exchange = format!("evil{i}.example");
        }
    } else if i % 997 == 0 {
        if let Some(mx) = d.dns.mx.first_mut() {
            mx.addresses = vec![ip(10_000_000 + i)];
        }
    }
    d
}

fn target_b(n: u64) -> TargetRecord {
    let mut t = target(n);
    t.vantage = Some("B".into());
    if n % 500 == 2 {
        if let Some(leaf) = t.tls.as_mut().and_then(|tls| tls.chain.first_mut()) {
            leaf.sha256 = format!("{:064x}", n + 7);
            leaf.spki_sha256 = format!("{:064x}", n + 8);
        }
    }
    t
}

fn put<T>(mut each: impl FnMut(&[T]), n: u64, make: impl Fn(u64) -> T) {
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..n {
        batch.push(make(i));
        if batch.len() == BATCH {
            each(&batch);
            batch.clear();
        }
    }
    each(&batch);
}

#[test]
#[ignore = "benchmark: builds a 1M-domain 2-vantage store (minutes); run in release with --nocapture"]
fn vantages_on_a_million_domains() {
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("MXSCOPE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    let store = Store::open(dir).unwrap();
    let vantages = vec!["A".to_string(), "B".to_string()];
    store
        .create_scan(
            &ScanMeta {
                id: "s1".into(),
                name: "bench".into(),
                labels: BTreeMap::new(),
                vantages: vantages.clone(),
                options: ScanOptions::default(),
                state: ScanState::Done,
                created_ms: 1_767_225_600_000,
                finished_ms: Some(1_767_225_600_000),
                domains: DOMAINS,
            },
            &[],
        )
        .unwrap();
    let started = Instant::now();
    let ips = MX_NAMES + MX_NAMES / 2;
    put(
        |b| {
            store.put_domain_records("s1", "A", b).unwrap();
        },
        DOMAINS,
        domain,
    );
    put(
        |b| {
            store.put_domain_records("s1", "B", b).unwrap();
        },
        DOMAINS,
        domain_b,
    );
    put(
        |b| {
            store.put_target_records("s1", "A", b).unwrap();
        },
        ips,
        target,
    );
    put(
        |b| {
            store.put_target_records("s1", "B", b).unwrap();
        },
        ips,
        target_b,
    );
    eprintln!(
        "built 2 x {DOMAINS} domains, 2 x {ips} targets in {:.1?} ({} MB on disk)",
        started.elapsed(),
        store.size_on_disk().unwrap_or(0) / 1_000_000
    );
    drop(store);
    let store = Store::open(dir).unwrap();
    let info = ScanInfo {
        id: "s1".into(),
        name: "bench".into(),
        vantages: vantages.clone(),
        domains: DOMAINS,
        created_unix_ms: 1_767_225_600_000,
        finished_unix_ms: Some(1_767_225_600_000),
        ..ScanInfo::default()
    };

    // Baseline: the report of vantage A alone (two domain passes, one target pass).
    reset_hwm();
    let started = Instant::now();
    let report = scan_report(
        info.clone(),
        &vantages[..1],
        || store.domain_records("s1"),
        store.target_records("s1"),
        |_| Ok(()),
    )
    .unwrap();
    let base = started.elapsed();
    let base_rss = vm_hwm_kb();
    assert_eq!(report.vantages[0].headline.unique_mx, MX_NAMES);

    reset_hwm();
    let started = Instant::now();
    let streams = vantages
        .iter()
        .map(|v| store.domain_records_of("s1", v))
        .collect();
    let compared = vantages_report_joined(info, streams, store.target_records("s1")).unwrap();
    let elapsed = started.elapsed();
    let rss = vm_hwm_kb();
    let a = agreement::agreement(&compared);
    eprintln!(
        "vantages: {elapsed:.1?} (report of one vantage: {base:.1?}, ratio {:.2}); \
         peak RSS {} MB (report of one vantage: {} MB)",
        elapsed.as_secs_f64() / base.as_secs_f64(),
        rss / 1024,
        base_rss / 1024
    );
    eprintln!("{}", agreement::headline(&a));
    eprintln!("classes: {:?}", a.classes);
    assert_eq!(compared.dns_domains_compared, DOMAINS);
    assert_eq!(a.classes["mx_differs"], DOMAINS / 1000);
    assert!(a.classes["address_differs"] > 0);
    assert!(a.classes["certificate_differs"] > 0);
}
