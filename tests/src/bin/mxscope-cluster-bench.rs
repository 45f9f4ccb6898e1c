//! `mxscope-cluster-bench`: the coordinator's numbers (a benchmark, not a test).
//!
//! 1. Submit N generated domains (default 1,000,000) with `mxscope submit` to
//!    a real `mxscope serve`: time, coordinator peak RSS, sled size on disk.
//! 2. Result ingest: W simulated workers lease resolve tasks and report every
//!    domain's record in batches; acknowledged results per second (each ack
//!    follows a flush).
//!
//! Run from a release build: `cargo build --release --workspace --bins &&
//! target/release/mxscope-cluster-bench [DOMAINS] [WORKERS]`. Loopback only.

use std::time::Instant;

use anyhow::Context;
use mxscope_common::wire::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::wire::proto::{self, task::Work};
use mxscope_common::{DnsResult, DnsStatus, DomainRecord, Record};
use mxscope_coordinator::grpc::client::{bearer, channel};
use mxscope_tests::runs::cluster::{CoordinatorProcess, WORKER_TOKEN};

fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn dir_size_mib(dir: &std::path::Path) -> f64 {
    fn walk(dir: &std::path::Path) -> u64 {
        std::fs::read_dir(dir)
            .map(|entries| {
                entries
                    .flatten()
                    .map(|e| match e.metadata() {
                        Ok(m) if m.is_dir() => walk(&e.path()),
                        Ok(m) => m.len(),
                        Err(_) => 0,
                    })
                    .sum()
            })
            .unwrap_or(0)
    }
    walk(dir) as f64 / (1024.0 * 1024.0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let domains: usize = args.first().map_or(Ok(1_000_000), |a| a.parse())?;
    let workers: usize = args.get(1).map_or(Ok(32), |a| a.parse())?;
    let dir = std::env::temp_dir().join("mxscope-cluster-bench");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let list = dir.join("domains.txt");
    let text: String = (0..domains)
        .map(|i| format!("d{i}.bench.example\n"))
        .collect();
    std::fs::write(&list, text)?;

    let coordinator = CoordinatorProcess::start(&dir.join("data"), "60s")?;
    let started = Instant::now();
    let out = coordinator
        .submit_command(&list)
        .output()
        .context("running mxscope submit")?;
    let submit_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "submit failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    println!("submit: {domains} domains in {submit_secs:.2} s");
    println!(
        "coordinator peak RSS after submit: {:.0} MiB; sled on disk: {:.0} MiB",
        peak_rss_mib(coordinator.pid()),
        dir_size_mib(&dir.join("data"))
    );

    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..workers {
        let url = coordinator.url.clone();
        tasks.spawn(async move {
            let channel = channel(&url, None).await?;
            let mut client =
                WorkerServiceClient::with_interceptor(channel, bearer(Some(WORKER_TOKEN))?)
                    .max_decoding_message_size(64 * 1024 * 1024);
            let worker_id = format!("load-{w}");
            let mut acked = 0u64;
            loop {
                let leased = client
                    .lease(proto::LeaseRequest {
                        worker_id: worker_id.clone(),
                        vantage: "V".into(),
                        max_tasks: 1,
                        max_items: 0,
                        wait_ms: 0,
                        slots: None,
                    })
                    .await?
                    .into_inner()
                    .tasks;
                let Some(task) = leased.into_iter().next() else {
                    break;
                };
                let Some(Work::Resolve(work)) = task.work else {
                    continue;
                };
                let records: Vec<String> = work
                    .domains
                    .iter()
                    .map(|d| {
                        let mut record = DomainRecord::new(
                            d.clone(),
                            DnsResult::failed(DnsStatus::Nxdomain, "bench"),
                        );
                        record.scan = Some(task.scan_id.clone());
                        record.vantage = Some(task.vantage.clone());
                        Record::Domain(record).to_json()
                    })
                    .collect();
                let ack = client
                    .report_results(proto::ResultBatch {
                        worker_id: worker_id.clone(),
                        task_id: task.task_id,
                        epoch: task.epoch,
                        records_json: records,
                        task_complete: true,
                    })
                    .await?
                    .into_inner();
                acked += u64::from(ack.stored);
            }
            anyhow::Ok(acked)
        });
    }
    let mut acked = 0;
    while let Some(result) = tasks.join_next().await {
        acked += result??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "ingest: {acked} results acknowledged by {workers} workers in {secs:.2} s = {:.0} results/s (a batch per resolve task of {} domains, flush before each ack)",
        acked as f64 / secs,
        mxscope_coordinator::scheduler::SHARD_SIZE
    );
    println!(
        "coordinator peak RSS: {:.0} MiB; sled on disk: {:.0} MiB",
        peak_rss_mib(coordinator.pid()),
        dir_size_mib(&dir.join("data"))
    );
    Ok(())
}
