//! Running a scan cluster like the rest of the infrastructure: a real
//! Prometheus scrapes the coordinator and two workers during a lab scan,
//! and the health endpoints change state as the processes come up.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Command;
use std::time::Duration;

use mxscope_common::Record;
use mxscope_coordinator::model::ScanState;
use mxscope_tests::lab;
use mxscope_tests::plan::*;
use mxscope_tests::runs::cluster::*;
use mxscope_tests::runs::ops::{http_get, promtool_check, Prometheus};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;

/// Metrics listeners of this file's processes (loopback, this test's own).
fn ops_addr(last: u8) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 5, last)), 9464)
}

fn metrics_args(addr: SocketAddr) -> Vec<OsString> {
    vec!["--metrics-listen".into(), addr.to_string().into()]
}

async fn wait_ready(addr: SocketAddr, what: &str) {
    wait_for(Duration::from_secs(20), what, || async move {
        matches!(http_get(addr, "/readyz"), Ok((200, _))).then_some(())
    })
    .await;
}

/// Done-when: Prometheus scrapes a coordinator and two workers during a
/// lab scan; its counters (through the HTTP API) match the scan's records;
/// `promtool check metrics` is clean on every endpoint; no label holds an
/// address or a domain.
#[tokio::test(flavor = "multi_thread")]
async fn prometheus_counts_what_the_scan_recorded() {
    lab::postfix();
    let dir = test_dir("prometheus");
    let (coord_ops, a_ops, b_ops) = (ops_addr(1), ops_addr(2), ops_addr(3));
    let coordinator = CoordinatorProcess::start_with(
        &dir.join("data"),
        "10s",
        "127.0.0.1:0",
        &metrics_args(coord_ops),
    )
    .unwrap();
    let bind = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 2, last));
    let _a = WorkerProcess::start_with(
        &coordinator.url,
        "A",
        bind(71),
        "obs-a",
        &dir,
        &metrics_args(a_ops),
    )
    .unwrap();
    let _b = WorkerProcess::start_with(
        &coordinator.url,
        "B",
        bind(72),
        "obs-b",
        &dir,
        &metrics_args(b_ops),
    )
    .unwrap();
    let prometheus = Prometheus::start(
        &dir.join("prometheus"),
        SocketAddr::new(ops_addr(4).ip(), 9090),
        &[
            ("coordinator", coord_ops),
            ("worker_a", a_ops),
            ("worker_b", b_ops),
        ],
    )
    .unwrap();
    for addr in [coord_ops, a_ops, b_ops] {
        wait_ready(addr, "the process to be ready").await;
    }

    let mut domains: Vec<String> = vec![
        domains::SINGLE.into(),
        domains::MULTI.into(),
        domains::NXDOMAIN.into(),
    ];
    domains.extend(domains::COUNTED.iter().map(|d| d.to_string()));
    let mut admin = coordinator.admin().await;
    let scan = admin
        .submit(
            "observed".into(),
            BTreeMap::new(),
            vec!["A".into(), "B".into()],
            &lab_options(),
            false,
            domains.clone(),
        )
        .await
        .unwrap()
        .scan_id;
    let status = wait_for(Duration::from_secs(60), "the scan to finish", || {
        let mut admin = admin.clone();
        let scan = scan.clone();
        async move {
            let status = admin.status(&scan).await.ok()?;
            (status.meta.state == ScanState::Done).then_some(status)
        }
    })
    .await;
    let mut records = Vec::new();
    admin
        .stream_results(&scan, |r| {
            records.push(r);
            Ok(())
        })
        .await
        .unwrap();
    let targets = records
        .iter()
        .filter(|r| matches!(r, Record::Target(_)))
        .count() as f64;
    let dns = records.len() as f64 - targets;
    assert_eq!(dns, (domains.len() * 2) as f64);
    assert!(targets >= 8.0, "{targets} target records");
    let nxdomain = records
        .iter()
        .filter(|r| matches!(r, Record::Domain(d) if d.domain == domains::NXDOMAIN))
        .count() as f64;
    assert_eq!(
        (status.domain_records + status.target_records) as f64,
        dns + targets
    );

    // Prometheus has seen the last increments once a scrape after the scan
    // came in: every expected value, or the whole state on timeout.
    let expected: Vec<(String, f64)> = vec![
        ("sum(mxscope_worker_dns_lookups_total)".into(), dns),
        (
            "sum(mxscope_worker_dns_lookups_total{status=\"nxdomain\"})".into(),
            nxdomain,
        ),
        ("sum(mxscope_worker_probes_total)".into(), targets),
        (
            "mxscope_coordinator_results_ingested_total".into(),
            dns + targets,
        ),
        (
            "sum(mxscope_coordinator_records_received_total)".into(),
            dns + targets,
        ),
        (
            "mxscope_coordinator_leases_granted_total{kind=\"resolve\"}".into(),
            2.0,
        ),
        ("sum(mxscope_coordinator_connected_workers)".into(), 2.0),
        ("mxscope_coordinator_scans{state=\"done\"}".into(), 1.0),
        (
            "sum(mxscope_coordinator_tasks{state=\"done\"})".into(),
            (status.resolve.done + status.probe.done) as f64,
        ),
        ("sum(up)".into(), 3.0),
        (
            "mxscope_coordinator_flush_duration_seconds_count > 0".into(),
            f64::NAN,
        ),
        (
            "sum(mxscope_worker_phase_duration_seconds_count{phase=\"handshake\"}) > 0".into(),
            f64::NAN,
        ),
    ];
    let started = std::time::Instant::now();
    loop {
        let all: Vec<(&str, f64, Option<f64>)> = expected
            .iter()
            .map(|(q, want)| (q.as_str(), *want, prometheus.scalar(q)))
            .collect();
        let agree = all.iter().all(|(_, want, got)| match got {
            Some(got) if want.is_nan() => got.is_finite(),
            Some(got) => got == want,
            None => false,
        });
        if agree {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "Prometheus disagrees with the scan (query, expected, got): {all:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Two workers of two vantages: the probes split by job add up.
    let per_job = prometheus
        .query("sum by (job) (mxscope_worker_probes_total)")
        .unwrap();
    assert_eq!(per_job.len(), 2, "{per_job:?}");
    assert_eq!(per_job.iter().map(|(_, v)| v).sum::<f64>(), targets);

    // The Parquet export of this two-vantage scan, over gRPC: DuckDB's
    // outcomes per vantage (docs/sql/outcomes_by_vantage.sql) are the
    // records' own, vantage by vantage.
    let files = dir.join("parquet");
    let out = Command::new(bin("mxscope"))
        .args([
            "export",
            &scan,
            "--format",
            "parquet",
            "--coordinator",
            &coordinator.url,
        ])
        .arg("--out")
        .arg(&files)
        .env("MXSCOPE_TOKEN", ADMIN_TOKEN)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../docs/sql/outcomes_by_vantage.sql");
    let pivot = Command::new("python3")
        .args([
            "-c",
            "import duckdb,json,sys,os; os.chdir(sys.argv[2]); c=duckdb.connect().execute(open(sys.argv[1]).read()); \
             cols=[d[0] for d in c.description]; print(json.dumps([dict(zip(cols,r)) for r in c.fetchall()]))",
        ])
        .arg(&sql)
        .arg(&files)
        .output()
        .expect("python3 with duckdb");
    assert!(
        pivot.status.success(),
        "{}",
        String::from_utf8_lossy(&pivot.stderr)
    );
    let pivot: Vec<serde_json::Value> = serde_json::from_slice(&pivot.stdout).unwrap();
    let mut want: BTreeMap<(String, String), u64> = BTreeMap::new();
    for r in &records {
        if let Record::Target(t) = r {
            let key = (
                t.outcome.as_str().to_string(),
                t.vantage.clone().unwrap_or_default(),
            );
            *want.entry(key).or_default() += 1;
        }
    }
    let mut got: BTreeMap<(String, String), u64> = BTreeMap::new();
    for row in &pivot {
        for vantage in ["A", "B"] {
            let n = row[vantage].as_u64().unwrap_or(0);
            if n > 0 {
                got.insert(
                    (
                        row["outcome"].as_str().unwrap().to_string(),
                        vantage.to_string(),
                    ),
                    n,
                );
            }
        }
    }
    assert_eq!(
        got, want,
        "outcomes per vantage, DuckDB over Parquet against the records"
    );

    // Every query of the Grafana dashboard (deploy/grafana) returns data
    // from this Prometheus: the variables as Grafana fills them for "All".
    let dashboard: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../deploy/grafana/dashboards/mxscope.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let mut queries: Vec<(String, String)> = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            let expr = target["expr"].as_str().unwrap();
            let title = panel["title"].as_str().unwrap_or_default().to_string();
            queries.push((title, expr.to_string()));
        }
    }
    assert!(queries.len() >= 20, "{} queries", queries.len());
    // The vantage variable's values.
    queries.push((
        "vantage variable".into(),
        "group by (vantage) (mxscope_coordinator_connected_workers)".into(),
    ));
    let started = std::time::Instant::now();
    loop {
        let empty: Vec<&(String, String)> = queries
            .iter()
            .filter(|(_, expr)| {
                let promql = expr
                    .replace("$__rate_interval", "1m")
                    .replace("$vantage", ".*");
                prometheus.query(&promql).map_or(true, |r| r.is_empty())
            })
            .collect();
        if empty.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "dashboard queries without data: {empty:#?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for addr in [coord_ops, a_ops, b_ops] {
        assert_eq!(promtool_check(addr).unwrap(), "", "promtool on {addr}");
        let (_, text) = http_get(addr, "/metrics").unwrap();
        for leak in ["127.0.1.", "lab.test", "obs-a", "obs-b"] {
            assert!(!text.contains(leak), "{addr} exposes {leak:?}:\n{text}");
        }
    }
}

/// The health endpoints: alive at once; a coordinator is ready only once
/// its store is open (here: after its predecessor let go of the lock); a
/// worker only once registered and past its egress check.
#[tokio::test(flavor = "multi_thread")]
async fn health_endpoints_follow_the_processes() {
    lab::postfix();
    let dir = test_dir("health");
    let data = dir.join("data");
    let mut first = CoordinatorProcess::start_with(&data, "10s", "127.0.0.1:0", &[]).unwrap();

    // A second coordinator on the same data directory waits for the lock.
    let second_ops = ops_addr(11);
    let mut extra = metrics_args(second_ops);
    extra.extend(["--wait-for-store".into(), "60s".into()]);
    let second = {
        let data = data.clone();
        std::thread::spawn(move || {
            CoordinatorProcess::start_with(&data, "10s", "127.0.0.1:0", &extra)
        })
    };
    wait_for(
        Duration::from_secs(20),
        "the second coordinator's /healthz",
        || async { matches!(http_get(second_ops, "/healthz"), Ok((200, _))).then_some(()) },
    )
    .await;
    let (status, body) = http_get(second_ops, "/readyz").unwrap();
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("store is not open"), "{body}");
    // Still waiting a moment later: the lock is held.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(http_get(second_ops, "/readyz").unwrap().0, 503);
    first.kill9();
    let second = second
        .join()
        .unwrap()
        .expect("the second coordinator starts once the lock is free");
    wait_ready(second_ops, "the second coordinator to be ready").await;

    // The gRPC port answers the standard health service without a token.
    let channel = mxscope_coordinator::grpc::client::channel(&second.url, None)
        .await
        .unwrap();
    let mut health = HealthClient::new(channel);
    for service in ["", "mxscope.v1.WorkerService", "mxscope.v1.AdminService"] {
        let status = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap_or_else(|e| panic!("health of {service:?}: {e}"))
            .into_inner()
            .status;
        assert_eq!(status, ServingStatus::Serving as i32, "{service:?}");
    }

    // Workers: not ready while not registered, nor with a failed egress check.
    let bind = |last| IpAddr::V4(Ipv4Addr::new(127, 0, 2, last));
    let (lost_ops, blocked_ops, good_ops) = (ops_addr(12), ops_addr(13), ops_addr(14));
    let _lost = WorkerProcess::start_with(
        "http://127.0.5.15:1",
        "H",
        bind(81),
        "health-lost",
        &dir,
        &metrics_args(lost_ops),
    )
    .unwrap();
    let mut blocked_args = metrics_args(blocked_ops);
    blocked_args.extend([
        "--egress-check".into(),
        format!("{}:{SMTP_PORT}", MX_CLOSED.ip).into(),
    ]);
    let _blocked = WorkerProcess::start_with(
        &second.url,
        "H",
        bind(82),
        "health-blocked",
        &dir,
        &blocked_args,
    )
    .unwrap();
    let mut good_args = metrics_args(good_ops);
    good_args.extend([
        "--egress-check".into(),
        format!("{}:{SMTP_PORT}", MX_VALID.ip).into(),
    ]);
    let _good =
        WorkerProcess::start_with(&second.url, "H", bind(83), "health-good", &dir, &good_args)
            .unwrap();
    wait_ready(good_ops, "the worker with egress to be ready").await;
    for (addr, reason) in [
        (lost_ops, "not registered"),
        (blocked_ops, "egress check failed"),
    ] {
        let (status, body) = wait_for(
            Duration::from_secs(20),
            "a worker's health endpoints",
            || async move {
                matches!(http_get(addr, "/healthz"), Ok((200, _)))
                    .then(|| http_get(addr, "/readyz").ok())
                    .flatten()
            },
        )
        .await;
        assert_eq!(status, 503, "{addr}: {body}");
        assert!(body.contains(reason), "{addr}: {body}");
    }
    let (_, text) = http_get(blocked_ops, "/metrics").unwrap();
    assert!(
        text.contains("mxscope_worker_egress_check{state=\"blocked\"} 1"),
        "{text}"
    );
}
