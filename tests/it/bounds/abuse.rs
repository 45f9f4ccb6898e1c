//! The coordinator's memory budget against an abusive client (issue 20,
//! item 5): a real `mxscope serve` and worker scan the lab while thousands
//! of idle and garbage connections, a flood of never-ending submissions,
//! oversized messages and large half-sent messages come at it.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::Record;
use mxscope_coordinator::model::ScanState;
use mxscope_tests::lab;
use mxscope_tests::perf::client::rss_of;
use mxscope_tests::plan::domains;
use mxscope_tests::runs::abuse::{self, Abuse, Tally};
use mxscope_tests::runs::cluster::*;

const MAX_CONNECTIONS: usize = 1_500;
const REQUEST_MIB: usize = 32;

fn generated(n: usize, tag: &str) -> Vec<String> {
    (0..n)
        .map(|i| format!("{tag}{i}.{}", domains::GENERATED_ZONE))
        .collect()
}

async fn scan_of(coordinator: &CoordinatorProcess, name: &str, domains: &[String]) -> String {
    let mut admin = coordinator.admin().await;
    admin
        .submit(
            name.into(),
            Default::default(),
            vec!["A".into()],
            &lab_options(),
            false,
            domains.to_vec(),
        )
        .await
        .expect("the honest submission")
        .scan_id
}

/// Wait for `scan` to end while sampling the coordinator's RSS; the peak.
async fn finish(coordinator: &CoordinatorProcess, scan: &str, limit: Duration) -> u64 {
    let mut peak = 0;
    wait_for(limit, "the honest scan to finish", || {
        peak = peak.max(rss_of(coordinator.pid()).unwrap_or(0));
        let url = coordinator.url.clone();
        async move {
            let mut admin = mxscope_coordinator::grpc::client::AdminClient::connect(
                &url,
                Some(ADMIN_TOKEN),
                None,
            )
            .await
            .ok()?;
            let status = admin.status(scan).await.ok()?;
            (status.meta.state == ScanState::Done).then_some(())
        }
    })
    .await;
    peak
}

/// Every domain of `domains` has exactly one domain record in `scan`.
async fn assert_exact(coordinator: &CoordinatorProcess, scan: &str, domains: &[String]) {
    let mut names = Vec::new();
    coordinator
        .admin()
        .await
        .stream_results(scan, |r| {
            if let Record::Domain(d) = r {
                names.push(d.domain);
            }
            Ok(())
        })
        .await
        .expect("export");
    let unique: BTreeSet<&String> = names.iter().collect();
    assert_eq!(names.len(), domains.len(), "every domain once");
    assert_eq!(unique, domains.iter().collect::<BTreeSet<_>>());
    let status = coordinator.admin().await.status(scan).await.unwrap();
    assert_eq!(status.failed_items, 0);
}

/// Sample the RSS for `span`; the peak.
async fn peak_over(pid: u32, span: Duration) -> u64 {
    let mut peak = 0;
    let until = tokio::time::Instant::now() + span;
    while tokio::time::Instant::now() < until {
        peak = peak.max(rss_of(pid).unwrap_or(0));
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    peak
}

#[tokio::test(flavor = "multi_thread")]
async fn an_abusive_client_neither_stops_a_scan_nor_breaks_the_memory_budget() {
    lab::postfix();
    // This process holds the abusive connections.
    mxscope_worker::limits::ensure_open_files(8_000).expect("RLIMIT_NOFILE");
    let dir = test_dir("abuse");
    let extra: Vec<std::ffi::OsString> = vec![
        "--max-connections".into(),
        MAX_CONNECTIONS.to_string().into(),
        "--request-memory-mib".into(),
        REQUEST_MIB.to_string().into(),
    ];
    let coordinator =
        CoordinatorProcess::start_with(&dir.join("data"), "5s", "127.0.0.1:0", &extra).unwrap();
    let source = std::net::IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 2, 41));
    let _worker = WorkerProcess::start(&coordinator.url, "A", source, "honest", &dir).unwrap();
    let domains = generated(3_000, "abuse");
    let scan = scan_of(&coordinator, "honest", &domains).await;
    let base = rss_of(coordinator.pid()).unwrap();
    let addr = coordinator
        .url
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let tally = Arc::new(Tally::default());
    // What the coordinator may hold for clients on top of what it held
    // before: docs/guide.md "Memory budget" with this test's flags. Idle
    // connections are counted at 64 KiB each (their flow-control windows
    // stay empty: nothing is read from them until a request comes).
    let allowance = ((REQUEST_MIB as u64) << 20)
        + MAX_CONNECTIONS as u64 * (64 << 10)
        + 4 * (32 << 20)
        + (64 << 20);

    // Phase 1: everything at once, the half-sent messages under a wrong
    // token (never read), while the honest scan runs.
    let mut running = abuse::start(
        Abuse {
            addr,
            worker_token: WORKER_TOKEN.into(),
            admin_token: ADMIN_TOKEN.into(),
            idle: 2_000,
            garbage: 100,
            submissions: 12,
            names: 200_000,
            held_token: "not-a-token".into(),
            held_connections: 8,
            held_streams: 16,
            message_bytes: 15 << 20,
            oversized: 1_000,
        },
        tally.clone(),
    );
    let peak = finish(&coordinator, &scan, Duration::from_secs(240)).await;
    assert_exact(&coordinator, &scan, &domains).await;
    println!(
        "phase 1: RSS {} MiB before, peak {} MiB; {}",
        base >> 20,
        peak >> 20,
        tally.line()
    );
    assert!(
        peak <= base + allowance,
        "phase 1: the coordinator's RSS peaked at {} MiB, over {} MiB before plus {} MiB of budget",
        peak >> 20,
        base >> 20,
        allowance >> 20
    );
    assert!(
        tally.closed.load(Ordering::Relaxed) > 0,
        "idle connections are closed: {}",
        tally.line()
    );
    assert!(
        tally.refused.load(Ordering::Relaxed) > 0,
        "the flood of submissions is refused: {}",
        tally.line()
    );
    running.abort_all();
    while running.join_next().await.is_some() {}

    // Phase 2: a client with the worker token sends 1.9 GiB of half-sent
    // messages: the request-memory budget holds them to 32 MiB.
    let before = tally.refused.load(Ordering::Relaxed);
    let mut running = abuse::start(
        Abuse {
            addr,
            worker_token: WORKER_TOKEN.into(),
            admin_token: ADMIN_TOKEN.into(),
            idle: 0,
            garbage: 0,
            submissions: 0,
            names: 0,
            held_token: WORKER_TOKEN.into(),
            held_connections: 8,
            held_streams: 16,
            message_bytes: 15 << 20,
            oversized: 0,
        },
        tally.clone(),
    );
    let peak = peak_over(coordinator.pid(), Duration::from_secs(8)).await;
    println!("phase 2: peak {} MiB; {}", peak >> 20, tally.line());
    assert!(
        peak <= base + allowance,
        "phase 2: the coordinator's RSS peaked at {} MiB, over {} MiB before plus {} MiB of budget",
        peak >> 20,
        base >> 20,
        allowance >> 20
    );
    assert!(
        tally.refused.load(Ordering::Relaxed) > before,
        "calls beyond the budget are refused: {}",
        tally.line()
    );
    running.abort_all();
    while running.join_next().await.is_some() {}

    // Once the abuse has stopped, a scan runs as ever.
    let domains = generated(500, "after");
    let scan = scan_of(&coordinator, "after", &domains).await;
    finish(&coordinator, &scan, Duration::from_secs(120)).await;
    assert_exact(&coordinator, &scan, &domains).await;
}
