//! A worker's two kinds of slots (DESIGN §8: the session is the unit of
//! concurrency): resolving, from which the coordinator plans probe tasks,
//! goes on while every SMTP session is busy. With one pool for both, the
//! resolve tasks leased after the first waited behind the sessions: a scan
//! whose sessions sat in tarpits stopped resolving until they timed out.

use std::net::IpAddr;
use std::time::Duration;

use mxscope_tests::perf::{self, PerfDns, PERF_SMTP_PORT};
use mxscope_tests::runs::cluster::{test_dir, wait_for, CoordinatorProcess, WorkerProcess};

/// Its own DNS port and addresses: other tests run the perf lab's.
const DNS: &str = "127.0.0.1:5396";
/// Three resolve tasks' worth, all MX in tarpits.
const FIRST: usize = 2000;
const DOMAINS: usize = 3 * mxscope_coordinator::scheduler::SHARD_SIZE;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolving_goes_on_while_every_session_is_busy() {
    let dir = test_dir("slots");
    let dns =
        PerfDns::start_on(&dir.join("unbound"), FIRST + DOMAINS, DNS.parse().unwrap()).unwrap();
    let picked: Vec<usize> = (FIRST..FIRST + DOMAINS).collect();
    let addrs: Vec<IpAddr> = picked.iter().map(|i| perf::address(*i)).collect();
    let tarpit = perf::tarpit(&addrs, PERF_SMTP_PORT).await.unwrap();
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "10s").unwrap();
    let list = dir.join("list.txt");
    let text: String = picked.iter().map(|i| perf::domain(*i) + "\n").collect();
    std::fs::write(&list, text).unwrap();
    let submit = coordinator
        .submit_command(&list)
        .arg("--allow-private")
        .args(["--resolver", &dns.addr.to_string()])
        .args(["--port", &PERF_SMTP_PORT.to_string()])
        // Sessions stay in the tarpits far longer than the test waits.
        .args(["--timeout-greeting", "120s", "--timeout-session", "150s"])
        .args(["--network-rate", "0", "--vantage-rate", "0"])
        .output()
        .unwrap();
    assert!(
        submit.status.success(),
        "{}",
        String::from_utf8_lossy(&submit.stderr)
    );
    let _worker = WorkerProcess::start_with(
        &coordinator.url,
        "V",
        "127.0.2.98".parse().unwrap(),
        "slots-1",
        &dir,
        // Batches smaller than a task (the default is a whole task): the
        // first records plan probes while the task still resolves, so the
        // sessions are busy before resolving ends.
        &[
            "--concurrency".into(),
            "2".into(),
            "--batch-size".into(),
            "100".into(),
        ],
    )
    .unwrap();
    let admin = coordinator.admin().await;
    // Every domain is resolved while both sessions sit in tarpits: with one
    // pool the second and third resolve tasks waited for these sessions'
    // 120 s greeting timeout.
    let status = wait_for(Duration::from_secs(60), "every domain resolved", || {
        let mut admin = admin.clone();
        async move {
            let status = admin.status("s1").await.ok()?;
            (status.domain_records == DOMAINS as u64).then_some(status)
        }
    })
    .await;
    assert_eq!(status.target_records, 0, "no session has ended yet");
    assert_eq!(tarpit.open(), 2, "--concurrency 2: both sessions busy");
    assert_eq!(tarpit.peak(), 2, "never more than --concurrency sessions");
}
