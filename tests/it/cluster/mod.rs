//! The distributed mode with real processes: `mxscope serve` and
//! `mxscope-worker work` on two vantages (source addresses), against the lab.

mod api;
mod dns;
mod politeness;
mod slots;
mod submit;
mod tls;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use mxscope_common::{Outcome, Record};
use mxscope_coordinator::grpc::client::AdminClient;
use mxscope_coordinator::model::{ScanOptions, ScanState};
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::*;

fn lab_options() -> ScanOptions {
    ScanOptions {
        ehlo_name: "probe.mxscope.lab.test".into(),
        port: SMTP_PORT,
        timeout_session_ms: 10_000,
        timeout_greeting_ms: 5_000,
        timeout_command_ms: 5_000,
        resolvers: vec![lab::dns().addr().to_string()],
        ca_pem: Some(std::fs::read_to_string(&lab::certs().ca_pem).unwrap()),
        allow_private: true,
        ..ScanOptions::default()
    }
}

async fn submit(
    admin: &mut AdminClient,
    name: &str,
    vantages: &[&str],
    domains: &[String],
) -> String {
    admin
        .submit(
            name.into(),
            BTreeMap::from([("test".into(), name.into())]),
            vantages.iter().map(|v| v.to_string()).collect(),
            &lab_options(),
            false,
            domains.to_vec(),
        )
        .await
        .expect("submit")
        .scan_id
}

async fn wait_done(coordinator: &CoordinatorProcess, scan: &str, limit: Duration) {
    wait_for(limit, "the scan to finish", || async {
        let mut admin = AdminClient::connect(&coordinator.url, Some(ADMIN_TOKEN), None)
            .await
            .ok()?;
        let status = admin.status(scan).await.ok()?;
        (status.meta.state == ScanState::Done).then_some(())
    })
    .await;
}

async fn export(coordinator: &CoordinatorProcess, scan: &str) -> Vec<Record> {
    let mut records = Vec::new();
    coordinator
        .admin()
        .await
        .stream_results(scan, |r| {
            records.push(r);
            Ok(())
        })
        .await
        .expect("export");
    records
}

fn v4(ip: std::net::Ipv4Addr) -> IpAddr {
    IpAddr::V4(ip)
}

/// Done-when 1 and 2: two vantages; one DNS record per (vantage, domain),
/// one target result per (vantage, IP); the discard host differs; an IP
/// shared by several domains gets one session per vantage.
#[tokio::test(flavor = "multi_thread")]
async fn two_vantages_scan_the_lab() {
    lab::postfix();
    lab::fakes();
    let dir = test_dir("two-vantages");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "5s").unwrap();
    let _a = WorkerProcess::start(&coordinator.url, "A", v4(VANTAGE_A), "worker-a", &dir).unwrap();
    let _b = WorkerProcess::start(&coordinator.url, "B", v4(VANTAGE_B), "worker-b", &dir).unwrap();
    let mut domains: Vec<String> = vec![
        domains::SINGLE.into(),
        domains::SHARED_A.into(),
        domains::SHARED_B.into(),
        domains::MULTI.into(),
        domains::NXDOMAIN.into(),
        domains::for_host(&MX_DISCARD),
        domains::for_host(&MX_NOSTARTTLS),
    ];
    domains.extend(domains::COUNTED.iter().map(|d| d.to_string()));
    let mut admin = coordinator.admin().await;
    let scan = submit(&mut admin, "two-vantages", &["A", "B"], &domains).await;
    wait_done(&coordinator, &scan, Duration::from_secs(60)).await;

    let records = export(&coordinator, &scan).await;
    let mut dns_keys = BTreeSet::new();
    let mut target_keys = BTreeSet::new();
    let mut discard = BTreeMap::new();
    for record in &records {
        match record {
            Record::Domain(d) => assert!(
                dns_keys.insert((d.vantage.clone().unwrap(), d.domain.clone())),
                "duplicate {d:?}"
            ),
            Record::Target(t) => {
                assert!(
                    target_keys.insert((t.vantage.clone().unwrap(), t.ip)),
                    "duplicate {t:?}"
                );
                if t.ip == MX_DISCARD.ip {
                    discard.insert(t.vantage.clone().unwrap(), t.outcome);
                }
            }
        }
    }
    assert_eq!(
        dns_keys.len(),
        domains.len() * 2,
        "one DNS record per (vantage, domain)"
    );
    // mx-valid, mx-backup, mx-ecdsa, mx-discard, mx-nostarttls, mx-count: 6 IPs per vantage.
    assert_eq!(target_keys.len(), 6 * 2, "{target_keys:?}");
    assert_eq!(discard.get("A"), Some(&Outcome::StarttlsOk));
    assert_eq!(discard.get("B"), Some(&Outcome::NoStarttls));
    // Three domains, two MX names, one IP: one session per vantage.
    assert_eq!(lab::fakes().sessions_from(v4(VANTAGE_A)), 1);
    assert_eq!(lab::fakes().sessions_from(v4(VANTAGE_B)), 1);
    let status = admin.status(&scan).await.unwrap();
    assert_eq!(status.domain_records, dns_keys.len() as u64);
    assert_eq!(status.target_records, target_keys.len() as u64);

    // `mxscope vantages` classifies the discard host as stripped on path.
    let out = std::process::Command::new(bin("mxscope"))
        .args([
            "vantages",
            &scan,
            "--format",
            "json",
            "--coordinator",
            &coordinator.url,
        ])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let diffs = report["diffs"].as_array().unwrap();
    assert_eq!(diffs.len(), 1, "only the discard host differs: {diffs:?}");
    assert_eq!(diffs[0]["ip"], MX_DISCARD.ip.to_string());
    assert_eq!(
        diffs[0]["classes"],
        serde_json::json!(["starttls_stripped_on_path"])
    );
    assert_eq!(report["summary"]["starttls_stripped_on_path"], 1);
    // `report --by vantage` shows each vantage's headline: B sees one STARTTLS host fewer.
    let out = std::process::Command::new(bin("mxscope"))
        .args([
            "report",
            &scan,
            "--by",
            "vantage",
            "--format",
            "json",
            "--coordinator",
            &coordinator.url,
        ])
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let starttls: Vec<(String, u64)> = report["vantages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["vantage"].as_str().unwrap().to_string(),
                v["headline"]["mx_starttls"].as_u64().unwrap(),
            )
        })
        .collect();
    // mx-valid, mx-backup, mx-ecdsa, mx-discard from A; mx-discard is lost from B.
    assert_eq!(starttls, [("A".to_string(), 4), ("B".to_string(), 3)]);
}

fn generated(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("{tag}{i}.{}", domains::GENERATED_ZONE))
        .collect()
}

/// Done-when 3: a worker killed with SIGKILL mid-scan; the other worker of
/// the vantage completes the scan; nothing missing, nothing twice.
#[tokio::test(flavor = "multi_thread")]
async fn worker_killed_mid_scan() {
    lab::postfix();
    let dir = test_dir("worker-kill");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "2s").unwrap();
    let source = v4(std::net::Ipv4Addr::new(127, 0, 2, 21));
    let mut doomed = WorkerProcess::start(&coordinator.url, "K", source, "doomed", &dir).unwrap();
    let domains = generated(6000, "k");
    let mut admin = coordinator.admin().await;
    let scan = submit(&mut admin, "worker-kill", &["K"], &domains).await;
    // Kill the first worker once it has delivered some, not all, results.
    wait_for(Duration::from_secs(30), "first results", || {
        let mut admin = admin.clone();
        let scan = scan.clone();
        async move {
            let status = admin.status(&scan).await.ok()?;
            (status.domain_records > 0).then_some(())
        }
    })
    .await;
    doomed.kill9();
    let before = admin.status(&scan).await.unwrap();
    assert!(
        before.domain_records < domains.len() as u64,
        "killed too late to prove anything"
    );
    let _survivor = WorkerProcess::start(&coordinator.url, "K", source, "survivor", &dir).unwrap();
    wait_done(&coordinator, &scan, Duration::from_secs(90)).await;
    let records = export(&coordinator, &scan).await;
    let names: Vec<&str> = records
        .iter()
        .filter_map(|r| match r {
            Record::Domain(d) => Some(d.domain.as_str()),
            Record::Target(_) => None,
        })
        .collect();
    let unique: BTreeSet<&str> = names.iter().copied().collect();
    assert_eq!(names.len(), domains.len(), "every domain exactly once");
    assert_eq!(unique.len(), domains.len());
    let status = admin.status(&scan).await.unwrap();
    assert_eq!(status.failed_items, 0);
}

/// Done-when 4: the coordinator killed with SIGKILL mid-ingest, several
/// times, and restarted on the same directory: the scan completes, and
/// every record is there once.
#[tokio::test(flavor = "multi_thread")]
async fn coordinator_killed_and_restarted() {
    lab::postfix();
    let dir = test_dir("coordinator-kill");
    let data = dir.join("data");
    let mut coordinator = CoordinatorProcess::start(&data, "3s").unwrap();
    let domains = generated(6000, "c");
    let scan = submit(
        &mut coordinator.admin().await,
        "coordinator-kill",
        &["C"],
        &domains,
    )
    .await;
    let source = v4(std::net::Ipv4Addr::new(127, 0, 2, 31));
    let url = coordinator.url.clone();
    let _worker = WorkerProcess::start(&url, "C", source, "steady", &dir).unwrap();
    let mut last = 0;
    for round in 0..3 {
        // Let some results in, then crash.
        let seen = wait_for(Duration::from_secs(60), "progress", || {
            let url = coordinator.url.clone();
            let scan = scan.clone();
            async move {
                let mut admin = AdminClient::connect(&url, Some(ADMIN_TOKEN), None)
                    .await
                    .ok()?;
                let status = admin.status(&scan).await.ok()?;
                (status.domain_records > last || status.meta.state == ScanState::Done)
                    .then_some(status.domain_records)
            }
        })
        .await;
        coordinator.kill9();
        let port = url.rsplit(':').next().unwrap().to_string();
        // Restart on the same directory and the same port (workers keep their URL).
        coordinator = restart_on(&data, &port).await;
        let status = coordinator.admin().await.status(&scan).await.unwrap();
        assert!(
            status.domain_records + 500 >= seen,
            "round {round}: {} records after restart, {seen} before",
            status.domain_records
        );
        last = status.domain_records;
    }
    wait_done(&coordinator, &scan, Duration::from_secs(120)).await;
    let records = export(&coordinator, &scan).await;
    let domain_records = records
        .iter()
        .filter(|r| matches!(r, Record::Domain(_)))
        .count();
    assert_eq!(domain_records, domains.len());
}

async fn restart_on(data: &std::path::Path, port: &str) -> CoordinatorProcess {
    // The port is free again once the killed process is reaped; sled's lock too.
    for _ in 0..50 {
        if let Ok(c) = CoordinatorProcess::start_on(data, "3s", &format!("127.0.0.1:{port}")) {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the coordinator did not restart on port {port}");
}
