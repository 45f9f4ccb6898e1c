//! The coordinator's contract, spoken directly over gRPC to a real
//! `mxscope serve` process: fencing, durability of acknowledged results
//! across SIGKILL, authentication, atomic submission.

use std::collections::BTreeMap;
use std::time::Duration;

use mxscope_common::wire::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::wire::proto::{self, task::Work};
use mxscope_common::{DnsResult, DnsStatus, DomainRecord, Record};
use mxscope_coordinator::grpc::client::{bearer, channel, AdminClient, Bearer};
use mxscope_coordinator::model::ScanOptions;
use mxscope_tests::runs::cluster::*;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Code;

type Worker = WorkerServiceClient<InterceptedService<Channel, Bearer>>;

async fn worker_client(url: &str, token: Option<&str>) -> Worker {
    WorkerServiceClient::with_interceptor(channel(url, None).await.unwrap(), bearer(token).unwrap())
}

async fn submit_simple(admin: &mut AdminClient, domains: &[&str]) -> String {
    admin
        .submit(
            "api".into(),
            BTreeMap::new(),
            vec!["V".into()],
            &ScanOptions::default(),
            false,
            domains.iter().map(|d| d.to_string()).collect(),
        )
        .await
        .unwrap()
        .scan_id
}

async fn lease_one(worker: &mut Worker, id: &str) -> proto::Task {
    let tasks = worker
        .lease(proto::LeaseRequest {
            worker_id: id.into(),
            vantage: "V".into(),
            max_tasks: 1,
            max_items: 0,
            wait_ms: 0,
            slots: None,
        })
        .await
        .unwrap()
        .into_inner()
        .tasks;
    tasks.into_iter().next().expect("a task to lease")
}

fn records_for(task: &proto::Task) -> Vec<String> {
    let Some(Work::Resolve(work)) = &task.work else {
        panic!("expected a resolve task");
    };
    work.domains
        .iter()
        .map(|d| {
            let mut record =
                DomainRecord::new(d.clone(), DnsResult::failed(DnsStatus::Nxdomain, "test"));
            record.scan = Some(task.scan_id.clone());
            record.vantage = Some(task.vantage.clone());
            Record::Domain(record).to_json()
        })
        .collect()
}

/// Done-when 5: a result carrying a stale epoch is rejected.
#[tokio::test]
async fn stale_epoch_is_rejected() {
    let dir = test_dir("stale-epoch");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "1s").unwrap();
    let scan = submit_simple(&mut coordinator.admin().await, &["a.example", "b.example"]).await;
    let mut worker = worker_client(&coordinator.url, Some(WORKER_TOKEN)).await;
    let first = lease_one(&mut worker, "slow").await;
    assert_eq!(first.epoch, 1);
    // No heartbeat: the lease expires and another worker gets epoch 2.
    let second = wait_for(Duration::from_secs(10), "the lease to expire", || {
        let mut worker = worker.clone();
        async move {
            let tasks = worker
                .lease(proto::LeaseRequest {
                    worker_id: "fast".into(),
                    vantage: "V".into(),
                    max_tasks: 1,
                    max_items: 0,
                    wait_ms: 0,
                    slots: None,
                })
                .await
                .ok()?
                .into_inner()
                .tasks;
            tasks.into_iter().next()
        }
    })
    .await;
    assert_eq!(
        (second.task_id.as_str(), second.epoch),
        (first.task_id.as_str(), 2)
    );
    let stale = worker
        .report_results(proto::ResultBatch {
            worker_id: "slow".into(),
            task_id: first.task_id.clone(),
            epoch: 1,
            records_json: records_for(&first),
            task_complete: true,
        })
        .await
        .unwrap_err();
    assert_eq!(stale.code(), Code::FailedPrecondition, "{stale:?}");
    // The stale results were not stored.
    let status = coordinator.admin().await.status(&scan).await.unwrap();
    assert_eq!(status.domain_records, 0);
    // The current holder's results are.
    let ack = worker
        .report_results(proto::ResultBatch {
            worker_id: "fast".into(),
            task_id: second.task_id.clone(),
            epoch: 2,
            records_json: records_for(&second),
            task_complete: true,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ack.stored, 2);
}

/// An acknowledged batch survives a SIGKILL right after the acknowledgement,
/// and a resend of it counts once.
#[tokio::test]
async fn acknowledged_results_survive_sigkill() {
    let dir = test_dir("ack-durable");
    let data = dir.join("data");
    for round in 0..3 {
        let mut coordinator = CoordinatorProcess::start(&data, "30s").unwrap();
        let domains: Vec<String> = (0..300).map(|i| format!("r{round}-{i}.example")).collect();
        let names: Vec<&str> = domains.iter().map(String::as_str).collect();
        submit_simple(&mut coordinator.admin().await, &names).await;
        let mut worker = worker_client(&coordinator.url, Some(WORKER_TOKEN)).await;
        // Earlier rounds' scans may still have tasks: whichever is leased, check its scan.
        let task = lease_one(&mut worker, "w").await;
        let scan = task.scan_id.clone();
        let before = coordinator
            .admin()
            .await
            .status(&scan)
            .await
            .unwrap()
            .domain_records;
        let batch = proto::ResultBatch {
            worker_id: "w".into(),
            task_id: task.task_id.clone(),
            epoch: task.epoch,
            records_json: records_for(&task),
            task_complete: false,
        };
        let ack = worker
            .report_results(batch.clone())
            .await
            .unwrap()
            .into_inner();
        let acked = u64::from(ack.stored);
        assert!(acked > 0);
        coordinator.kill9();
        let coordinator = CoordinatorProcess::start(&data, "30s").unwrap();
        let status = coordinator.admin().await.status(&scan).await.unwrap();
        assert_eq!(
            status.domain_records,
            before + acked,
            "round {round}: acknowledged records lost"
        );
        // The lease survived the restart too: a resend is accepted and counts 0.
        let mut worker = worker_client(&coordinator.url, Some(WORKER_TOKEN)).await;
        let again = worker.report_results(batch).await.unwrap().into_inner();
        assert_eq!(again.stored, 0);
        drop(coordinator);
    }
}

/// Done-when 6: no token, a wrong token, or a worker token on the admin
/// service is refused.
#[tokio::test]
async fn tokens_are_enforced() {
    let dir = test_dir("auth");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let lease = proto::LeaseRequest {
        worker_id: "w".into(),
        vantage: "V".into(),
        max_tasks: 1,
        max_items: 0,
        wait_ms: 0,
        slots: None,
    };
    for token in [None, Some("wrong")] {
        let err = worker_client(&coordinator.url, token)
            .await
            .lease(lease.clone())
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated, "{token:?}");
    }
    assert!(worker_client(&coordinator.url, Some(WORKER_TOKEN))
        .await
        .lease(lease)
        .await
        .is_ok());
    let mut as_worker = AdminClient::connect(&coordinator.url, Some(WORKER_TOKEN), None)
        .await
        .unwrap();
    let err = as_worker
        .submit(
            "x".into(),
            BTreeMap::new(),
            vec!["V".into()],
            &ScanOptions::default(),
            false,
            vec!["a.example".into()],
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("worker token cannot use the admin service"),
        "{err}"
    );
    let err = as_worker.cancel("s1").await.unwrap_err();
    assert!(err.to_string().contains("worker token"), "{err}");
    assert!(
        coordinator.admin().await.list().await.unwrap().is_empty(),
        "nothing was submitted"
    );
}

/// Done-when 7: an invalid domain file gives an error naming the line, and
/// nothing is stored; `--skip-invalid` reports what it skipped.
#[tokio::test]
async fn invalid_domain_file_is_refused_whole() {
    let dir = test_dir("invalid-file");
    let coordinator = CoordinatorProcess::start(&dir.join("data"), "30s").unwrap();
    let list = dir.join("list.txt");
    std::fs::write(
        &list,
        "good.example\n# comment\nbad domain.example\nalso-good.example\n",
    )
    .unwrap();
    let submit = |extra: &[&str]| {
        coordinator
            .submit_command(&list)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = submit(&[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 3: contains whitespace"), "{err}");
    assert!(
        coordinator.admin().await.list().await.unwrap().is_empty(),
        "nothing stored"
    );
    let out = submit(&["--skip-invalid"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("2 domains"), "{text}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("skipped line 3"));
}
