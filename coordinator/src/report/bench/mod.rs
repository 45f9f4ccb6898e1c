//! A benchmark, not a test: a 1,000,000-domain synthetic store (200,000 MX
//! names, 300,000 IPs), reported on, with time and peak RSS.
//!
//! `cargo test --release -p mxscope-coordinator --lib report::bench -- --ignored --nocapture`
//!
//! With `MXSCOPE_BENCH_DIR=DIR` the store is built there and kept (with a
//! scan meta `s1`), for `mxscope report s1 --data-dir DIR` under
//! `/usr/bin/time -v` (peak RSS of a fresh process).

mod vantages;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Instant;

use mxscope_common::{
    CertInfo, DnsResult, DnsStatus, DomainRecord, KeyInfo, MxEntry, Outcome, Phase, TargetRecord,
    TlsFacts, Verification, VersionSupport,
};

use super::model::ScanInfo;
use super::scan_report;
use crate::model::{ScanMeta, ScanOptions, ScanState};
use crate::store::Store;

pub(super) const DOMAINS: u64 = 1_000_000;
pub(super) const MX_NAMES: u64 = 200_000;
pub(super) const BATCH: usize = 10_000;

pub(super) fn ip(n: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n as u32))
}

/// MX name `j`'s addresses: every name has one, even names a second.
fn ips_of(j: u64) -> Vec<IpAddr> {
    let mut ips = vec![ip(j)];
    if j % 2 == 0 {
        ips.push(ip(MX_NAMES + j / 2));
    }
    ips
}

pub(super) fn domain(i: u64) -> DomainRecord {
    let mut dns = DnsResult::failed(DnsStatus::Ok, "");
    dns.error = None;
    let j = i.wrapping_mul(2_654_435_761) % MX_NAMES;
    let mut mx = vec![j];
    if i % 3 == 0 {
        mx.push((j + 1) % MX_NAMES);
    }
    dns.mx = mx
        .iter()
        .enumerate()
        .map(|(k, j)| MxEntry {
            preference: 10 * (k as u16 + 1),
            exchange: format!("mx{j}.provider{}.example", j % 997),
            addresses: ips_of(*j),
            status: DnsStatus::Ok,
        })
        .collect();
    let mut d = DomainRecord::new(format!("domain{i}.example"), dns);
    d.vantage = Some("A".into());
    d.scan = Some("s1".into());
    d
}

pub(super) fn target(n: u64) -> TargetRecord {
    let mut t = TargetRecord::new(ip(n), 25, vec![format!("mx{n}.example")]);
    t.vantage = Some("A".into());
    t.scan = Some("s1".into());
    t.ehlo = ["PIPELINING", "SIZE 10240000", "STARTTLS", "8BITMIME"]
        .map(String::from)
        .to_vec();
    match n % 10 {
        0 => {
            t.outcome = Outcome::NoStarttls;
            t.phase = Phase::Ehlo;
            t.ehlo.retain(|k| k != "STARTTLS");
        }
        1 => {
            t.outcome = Outcome::ConnectTimeout;
            t.phase = Phase::Connect;
            t.ehlo.clear();
        }
        _ => {
            t.outcome = Outcome::StarttlsOk;
            t.phase = Phase::Done;
            t.protocols.tls1_2 = VersionSupport::Supported;
            t.protocols.tls1_3 = if n % 4 == 0 {
                VersionSupport::NotSupported
            } else {
                VersionSupport::Supported
            };
            let leaf = CertInfo {
                parsed: true,
                parse_error: None,
                subject: format!("CN=mx{n}.example"),
                issuer: "CN=Some CA, O=Example, C=IT".into(),
                sans: vec![format!("mx{n}.example"), format!("mail{n}.example")],
                serial: format!("{n:032x}"),
                not_before: "2025-01-01T00:00:00Z".into(),
                not_after: format!("2026-{:02}-15T00:00:00Z", 1 + n % 12),
                key: KeyInfo {
                    key_type: if n % 5 == 0 { "EC" } else { "RSA" }.into(),
                    bits: Some(if n % 5 == 0 { 256 } else { 2048 }),
                    curve: (n % 5 == 0).then(|| "P-256".to_string()),
                },
                signature_algorithm: "sha256WithRSAEncryption".into(),
                sha256: format!("{n:064x}"),
                spki_sha256: format!("{:064x}", n + 1),
                self_signed: false,
                der_base64: None,
                scts: Vec::new(),
            };
            let mut intermediate = leaf.clone();
            intermediate.subject = "CN=Some CA, O=Example, C=IT".into();
            t.tls = Some(TlsFacts {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
                group: Some("X25519".into()),
                verification: if n % 7 == 0 {
                    Verification::SelfSigned
                } else {
                    Verification::Valid
                },
                verification_detail: None,
                name_match: BTreeMap::from([(format!("mx{n}.example"), true)]),
                chain: vec![leaf, intermediate],
                source: mxscope_common::TlsSource::Handshake,
                key_exchange: Some(mxscope_common::KeyExchange::Tls13),
                forward_secrecy: Some(true),
                dh_bits: None,
                dh_group: None,
                signature_scheme: None,
                ocsp: None,
            });
        }
    }
    t
}

/// Peak resident set (kB), and reset it (`clear_refs` 5) when asked.
pub(super) fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

pub(super) fn reset_hwm() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

#[test]
#[ignore = "benchmark: builds a 1M-domain store (minutes); run in release with --nocapture"]
fn report_on_a_million_domains() {
    let temp = tempfile::tempdir().unwrap();
    let kept = std::env::var_os("MXSCOPE_BENCH_DIR").map(std::path::PathBuf::from);
    let dir = kept.as_deref().unwrap_or(temp.path());
    let store = Store::open(dir).unwrap();
    store
        .create_scan(
            &ScanMeta {
                id: "s1".into(),
                name: "bench".into(),
                labels: BTreeMap::new(),
                vantages: vec!["A".into()],
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
    let mut batch = Vec::with_capacity(BATCH);
    for i in 0..DOMAINS {
        batch.push(domain(i));
        if batch.len() == BATCH {
            store.put_domain_records("s1", "A", &batch).unwrap();
            batch.clear();
        }
    }
    store.put_domain_records("s1", "A", &batch).unwrap();
    let ips = MX_NAMES + MX_NAMES / 2;
    let mut batch = Vec::with_capacity(BATCH);
    for n in 0..ips {
        batch.push(target(n));
        if batch.len() == BATCH {
            store.put_target_records("s1", "A", &batch).unwrap();
            batch.clear();
        }
    }
    store.put_target_records("s1", "A", &batch).unwrap();
    eprintln!(
        "built {DOMAINS} domains, {MX_NAMES} MX names, {ips} targets in {:.1?} ({} MB on disk)",
        started.elapsed(),
        store.size_on_disk().unwrap_or(0) / 1_000_000
    );
    drop(store);
    let store = Store::open(dir).unwrap();
    reset_hwm();
    let before = vm_hwm_kb();

    let info = ScanInfo {
        id: "s1".into(),
        name: "bench".into(),
        vantages: vec!["A".into()],
        domains: DOMAINS,
        created_unix_ms: 1_767_225_600_000,
        finished_unix_ms: Some(1_767_225_600_000),
        ..ScanInfo::default()
    };
    let started = Instant::now();
    let mut rows = 0u64;
    let report = scan_report(
        info,
        &["A".to_string()],
        || store.domain_records("s1"),
        store.target_records("s1"),
        |_| {
            rows += 1;
            Ok(())
        },
    )
    .unwrap();
    let elapsed = started.elapsed();
    let after = vm_hwm_kb();
    let h = &report.vantages[0].headline;
    eprintln!("{h}.");
    eprintln!(
        "report: {elapsed:.1?} for two domain passes and one target pass ({rows} rows); \
         peak RSS {} MB (at start {} MB)",
        after / 1024,
        before / 1024
    );
    assert_eq!(rows, DOMAINS);
    assert_eq!(h.unique_mx, MX_NAMES);
}
