//! The fleet loop against a fake coordinator on loopback. Every probe goes
//! to 127.0.0.1; no test resolves names.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::fleet::link::grpc::ChannelSettings;
use mxscope_common::wire::proto;
use mxscope_common::wire::proto::worker_service_server::{WorkerService, WorkerServiceServer};
use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::{Request, Response, Status};

use super::*;

const WAIT: Duration = Duration::from_secs(20);

/// What the fake coordinator saw and does.
#[derive(Debug, Default)]
struct Fake {
    tasks: Mutex<VecDeque<proto::Task>>,
    registrations: Mutex<Vec<proto::RegisterRequest>>,
    authorizations: Mutex<Vec<String>>,
    reports: Mutex<Vec<proto::ResultBatch>>,
    releases: Mutex<Vec<proto::LeaseRef>>,
    /// Fail this many ReportResults with UNAVAILABLE first.
    fail_reports: AtomicUsize,
    /// Answer ReportResults with FAILED_PRECONDITION (stale epoch).
    stale: AtomicUsize,
    /// Answer ReportResults with DATA_LOSS (the coordinator's store is corrupt).
    data_loss: AtomicUsize,
    /// Heartbeats say every lease is lost.
    lose_leases: AtomicUsize,
    heartbeats: AtomicUsize,
    batches: Mutex<Option<mpsc::Sender<proto::ResultBatch>>>,
}

/// The fake as a tonic service.
#[derive(Debug, Clone)]
struct Service(Arc<Fake>);

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap()
}

#[tonic::async_trait]
impl WorkerService for Service {
    async fn register(
        &self,
        request: Request<proto::RegisterRequest>,
    ) -> Result<Response<proto::RegisterResponse>, Status> {
        let auth = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        lock(&self.0.authorizations).push(auth);
        lock(&self.0.registrations).push(request.into_inner());
        Ok(Response::new(proto::RegisterResponse {
            heartbeat_interval_ms: 200,
            lease_ttl_ms: 5_000,
        }))
    }

    async fn lease(
        &self,
        request: Request<proto::LeaseRequest>,
    ) -> Result<Response<proto::LeaseResponse>, Status> {
        let max = request.into_inner().max_tasks as usize;
        let mut queue = lock(&self.0.tasks);
        let take = max.min(queue.len());
        let tasks = queue.drain(..take).collect();
        Ok(Response::new(proto::LeaseResponse { tasks }))
    }

    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        self.0.heartbeats.fetch_add(1, Ordering::SeqCst);
        let leases = request.into_inner().leases;
        Ok(Response::new(
            if self.0.lose_leases.load(Ordering::SeqCst) > 0 {
                proto::HeartbeatResponse {
                    extended: Vec::new(),
                    lost: leases,
                }
            } else {
                proto::HeartbeatResponse {
                    extended: leases,
                    lost: Vec::new(),
                }
            },
        ))
    }

    async fn report_results(
        &self,
        request: Request<proto::ResultBatch>,
    ) -> Result<Response<proto::ResultAck>, Status> {
        let batch = request.into_inner();
        lock(&self.0.reports).push(batch.clone());
        if self
            .0
            .fail_reports
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
        {
            return Err(Status::unavailable("fake outage"));
        }
        if self.0.stale.load(Ordering::SeqCst) > 0 {
            return Err(Status::failed_precondition("stale epoch"));
        }
        if self.0.data_loss.load(Ordering::SeqCst) > 0 {
            return Err(Status::data_loss("corrupt store: task at key x"));
        }
        let sender = lock(&self.0.batches).clone();
        if let Some(sender) = sender {
            let _ = sender.send(batch.clone()).await;
        }
        Ok(Response::new(proto::ResultAck {
            stored: u32::try_from(batch.records_json.len()).unwrap(),
        }))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        if let Some(lease) = request.into_inner().lease {
            lock(&self.0.releases).push(lease);
        }
        Ok(Response::new(proto::ReleaseResponse {}))
    }
}

/// A fake coordinator on 127.0.0.1, stopped on drop.
struct Harness {
    fake: Arc<Fake>,
    url: String,
    acked: mpsc::Receiver<proto::ResultBatch>,
    stop: CancellationToken,
}

impl Harness {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener)
    }

    fn serve(listener: TcpListener) -> Self {
        let url = format!("http://{}", listener.local_addr().unwrap());
        let fake = Arc::new(Fake::default());
        let (tx, acked) = mpsc::channel(64);
        *lock(&fake.batches) = Some(tx);
        let stop = CancellationToken::new();
        let server = tonic::transport::Server::builder()
            .add_service(WorkerServiceServer::new(Service(fake.clone())))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(listener),
                stop.clone().cancelled_owned(),
            );
        tokio::spawn(server);
        Self {
            fake,
            url,
            acked,
            stop,
        }
    }

    fn give(&self, task: proto::Task) {
        lock(&self.fake.tasks).push_back(task);
    }

    async fn next_ack(&mut self) -> proto::ResultBatch {
        tokio::time::timeout(WAIT, self.acked.recv())
            .await
            .expect("no batch acknowledged in time")
            .expect("fake coordinator gone")
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

/// A loopback port where nothing listens.
async fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

fn probe_task(task_id: &str, port: u16, ips: &[&str]) -> proto::Task {
    proto::Task {
        task_id: task_id.into(),
        epoch: 1,
        scan_id: "scan-1".into(),
        vantage: "lab".into(),
        lease_deadline_unix_ms: 0,
        options: Some(proto::ProbeOptions {
            ehlo_name: "scanner.test".parse().expect("a valid EHLO name"),
            port: u32::from(port),
            timeout_connect_ms: 2_000,
            timeout_greeting_ms: 30_000,
            timeout_session_ms: 60_000,
            allow_private: true,
            ..Default::default()
        }),
        work: Some(proto::task::Work::Probe(proto::ProbeWork {
            targets: ips
                .iter()
                .map(|ip| proto::ProbeTarget {
                    ip: ip.to_string(),
                    mx_names: vec!["mx.test".into()],
                })
                .collect(),
        })),
    }
}

fn config(url: &str) -> FleetConfig {
    let mut config = FleetConfig::new(url, "w-test", "lab");
    config.token = Some("s3cret".into());
    config.capacity = 2;
    config.probe_concurrency = 4;
    config.bind = Some("127.0.0.1".parse().unwrap());
    config.shutdown_grace = Duration::from_millis(300);
    config.flush_timeout = Duration::from_secs(2);
    config
}

async fn stop(run: tokio::task::JoinHandle<Result<(), FleetError>>, shutdown: CancellationToken) {
    shutdown.cancel();
    tokio::time::timeout(WAIT, run)
        .await
        .expect("the worker did not stop in time")
        .unwrap()
        .unwrap();
}

fn records(batch: &proto::ResultBatch) -> Vec<Value> {
    batch
        .records_json
        .iter()
        .map(|json| serde_json::from_str(json).unwrap())
        .collect()
}

#[tokio::test]
async fn a_probe_task_reports_connect_refused_and_completes() {
    let mut harness = Harness::start().await;
    let port = closed_port().await;
    harness.give(probe_task("t1", port, &["127.0.0.1"]));
    let egress = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = config(&harness.url);
    config.egress_check = Some(egress.local_addr().unwrap().to_string());

    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config, shutdown.clone()));
    let batch = harness.next_ack().await;
    assert_eq!((batch.task_id.as_str(), batch.epoch), ("t1", 1));
    assert_eq!(batch.worker_id, "w-test");
    assert!(batch.task_complete);
    let records = records(&batch);
    assert_eq!(records.len(), 1);
    let record = &records[0];
    assert_eq!(record["kind"], "target");
    assert_eq!(record["outcome"], "connect_refused");
    assert_eq!(record["ip"], "127.0.0.1");
    assert_eq!(record["port"], u64::from(port));
    assert_eq!(record["scan"], "scan-1");
    assert_eq!(record["vantage"], "lab");
    stop(run, shutdown).await;

    let registration = lock(&harness.fake.registrations)[0].clone();
    assert_eq!(
        (
            registration.worker_id.as_str(),
            registration.vantage.as_str()
        ),
        ("w-test", "lab")
    );
    assert_eq!(registration.capacity, 2);
    let egress = registration.egress.unwrap();
    assert!(egress.checked && egress.ok, "{egress:?}");
    assert_eq!(lock(&harness.fake.authorizations)[0], "Bearer s3cret");
    assert!(lock(&harness.fake.releases).is_empty());
}

/// A finished target's record goes within about a second, while another
/// target of the same task still holds (a silent server, greeting timeout
/// 30 s): progress moves per target, not per task.
#[tokio::test]
async fn finished_targets_are_sent_before_the_task_ends() {
    let mut harness = Harness::start().await;
    // Silent on 127.0.0.2:P; nothing on 127.0.0.1:P (refused at once).
    let silent = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let hold = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = silent.accept().await {
            held.push(stream);
        }
    });
    harness.give(probe_task("t1", port, &["127.0.0.1", "127.0.0.2"]));
    let mut config = config(&harness.url);
    config.batch_size = 64;
    let shutdown = CancellationToken::new();
    let started = Instant::now();
    let run = tokio::spawn(run(config, shutdown.clone()));
    let first = harness.next_ack().await;
    let waited = started.elapsed();
    stop(run, shutdown).await;
    hold.abort();
    assert!(
        !first.task_complete,
        "the silent target still holds the task"
    );
    let records = records(&first);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["ip"], "127.0.0.1");
    assert_eq!(records[0]["outcome"], "connect_refused");
    assert!(
        waited < Duration::from_secs(10),
        "sent after {waited:?}, not at the task's end"
    );
}

#[tokio::test]
async fn an_unacknowledged_batch_is_resent_in_order() {
    let mut harness = Harness::start().await;
    harness.fake.fail_reports.store(1, Ordering::SeqCst);
    let port = closed_port().await;
    harness.give(probe_task(
        "t1",
        port,
        &["127.0.0.1", "127.0.0.2", "127.0.0.3"],
    ));
    let mut config = config(&harness.url);
    config.batch_size = 2;

    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config, shutdown.clone()));
    let first = harness.next_ack().await;
    let second = harness.next_ack().await;
    stop(run, shutdown).await;

    assert_eq!(first.records_json.len(), 2);
    assert!(!first.task_complete);
    assert_eq!(second.records_json.len(), 1);
    assert!(second.task_complete);
    let reports = lock(&harness.fake.reports).clone();
    // The refused first attempt, its resend, then the last batch.
    assert_eq!(reports.len(), 3, "{reports:?}");
    assert_eq!(reports[0], reports[1]);
    assert_eq!(reports[1], first);
    assert_eq!(reports[2], second);
    let mut ips: Vec<String> = [first, second]
        .iter()
        .flat_map(records)
        .map(|r| r["ip"].as_str().unwrap().to_string())
        .collect();
    ips.sort();
    assert_eq!(ips, ["127.0.0.1", "127.0.0.2", "127.0.0.3"]);
}

#[tokio::test]
async fn a_task_without_items_sends_one_empty_complete_batch() {
    let mut harness = Harness::start().await;
    harness.give(probe_task("empty", 25, &[]));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config(&harness.url), shutdown.clone()));
    let batch = harness.next_ack().await;
    stop(run, shutdown).await;
    assert_eq!(batch.task_id, "empty");
    assert!(batch.records_json.is_empty() && batch.task_complete);
}

/// Runs one probe task whose report the fake refuses (as `harness` was
/// told), waits `settle` for a wrong resend, and returns the reports seen.
async fn reports_of_a_refused_batch(harness: &Harness, settle: Duration) -> usize {
    let port = closed_port().await;
    harness.give(probe_task("t1", port, &["127.0.0.1"]));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config(&harness.url), shutdown.clone()));
    let deadline = Instant::now() + WAIT;
    while lock(&harness.fake.reports).is_empty() {
        assert!(Instant::now() < deadline, "no report arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(settle).await;
    stop(run, shutdown).await;
    let n = lock(&harness.fake.reports).len();
    n
}

#[tokio::test]
async fn a_stale_epoch_drops_the_results() {
    let harness = Harness::start().await;
    harness.fake.stale.store(1, Ordering::SeqCst);
    let reports = reports_of_a_refused_batch(&harness, Duration::from_millis(500)).await;
    assert_eq!(reports, 1);
}

#[tokio::test]
async fn a_data_loss_answer_is_not_retried() {
    let harness = Harness::start().await;
    harness.fake.data_loss.store(1, Ordering::SeqCst);
    // A transient error would be resent within the backoff's first steps.
    let reports = reports_of_a_refused_batch(&harness, Duration::from_millis(1_500)).await;
    assert_eq!(reports, 1, "a DATA_LOSS batch was resent");
}

#[tokio::test]
async fn shutdown_releases_a_task_that_outlives_the_grace() {
    let harness = Harness::start().await;
    // Accepts, never greets: the session waits for its greeting timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    harness.give(probe_task("slow", port, &["127.0.0.1"]));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config(&harness.url), shutdown.clone()));
    let (_held, _) = tokio::time::timeout(WAIT, silent.accept())
        .await
        .unwrap()
        .unwrap();
    stop(run, shutdown).await;
    let releases = lock(&harness.fake.releases).clone();
    assert_eq!(releases.len(), 1);
    assert_eq!(
        (releases[0].task_id.as_str(), releases[0].epoch),
        ("slow", 1)
    );
    assert!(lock(&harness.fake.reports).is_empty());
}

#[tokio::test]
async fn the_worker_waits_for_a_late_coordinator() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config(&format!("http://{addr}")), shutdown.clone()));
    tokio::time::sleep(Duration::from_millis(700)).await;
    let Ok(listener) = TcpListener::bind(addr).await else {
        // The port was taken meanwhile: nothing to prove here.
        shutdown.cancel();
        return;
    };
    let mut harness = Harness::serve(listener);
    harness.give(probe_task("late", 25, &[]));
    let batch = harness.next_ack().await;
    assert_eq!(batch.task_id, "late");
    stop(run, shutdown).await;
}

#[tokio::test]
async fn no_egress_skips_probe_targets() {
    let mut harness = Harness::start().await;
    let port = closed_port().await;
    harness.give(probe_task("t1", port, &["127.0.0.1"]));
    let mut config = config(&harness.url);
    config.egress_check = Some(format!("127.0.0.1:{}", closed_port().await));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config, shutdown.clone()));
    let batch = harness.next_ack().await;
    stop(run, shutdown).await;
    let egress = lock(&harness.fake.registrations)[0].egress.clone().unwrap();
    assert!(egress.checked && !egress.ok, "{egress:?}");
    assert_eq!(records(&batch)[0]["outcome"], "skipped");
}

#[tokio::test]
async fn invalid_configurations_fail_at_once() {
    let shutdown = CancellationToken::new();
    let mut zero = config("http://127.0.0.1:1");
    zero.capacity = 0;
    assert!(matches!(
        run(zero, shutdown.clone()).await,
        Err(FleetError::Invalid(_))
    ));
    assert!(matches!(
        run(config("127.0.0.1:1"), shutdown).await,
        Err(FleetError::CoordinatorUrl { .. })
    ));
}

/// A loopback name server that answers REFUSED to every query.
async fn refusing_dns() -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let addr = socket.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut buf = [0u8; 512];
        while let Ok((len, peer)) = socket.recv_from(&mut buf).await {
            let query = &buf[..len];
            // Header, then the question: QNAME labels up to the root, QTYPE, QCLASS.
            let mut end = 12;
            while end < len && query[end] != 0 {
                end += 1 + usize::from(query[end]);
            }
            end += 5;
            if end > len {
                continue;
            }
            let mut reply = query[..end].to_vec();
            reply[2] = 0x81; // QR, RD
            reply[3] = 0x85; // RA, REFUSED
            reply[6..12].fill(0); // no answer, authority, additional
            let _ = socket.send_to(&reply, peer).await;
        }
    });
    (addr, server)
}

#[tokio::test]
async fn a_resolve_task_uses_the_resolver_override() {
    let mut harness = Harness::start().await;
    let mut task = probe_task("r1", 25, &[]);
    task.work = Some(proto::task::Work::Resolve(proto::ResolveWork {
        domains: vec!["example.test".into()],
    }));
    // The scan names a dead server; the worker's override wins.
    if let Some(options) = task.options.as_mut() {
        options.resolvers = vec![format!("127.0.0.1:{}", closed_port().await)];
    }
    harness.give(task);
    let (dns, server) = refusing_dns().await;
    let mut config = config(&harness.url);
    config.resolvers_override = vec![dns];
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config, shutdown.clone()));
    let batch = harness.next_ack().await;
    stop(run, shutdown).await;
    server.abort();
    assert!(batch.task_complete);
    let records = records(&batch);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["kind"], "domain");
    assert_eq!(records[0]["domain"], "example.test");
    assert_eq!(
        (records[0]["scan"].as_str(), records[0]["vantage"].as_str()),
        (Some("scan-1"), Some("lab"))
    );
    assert_eq!(records[0]["dns"]["status"], "refused", "{}", records[0]);
}

#[tokio::test]
async fn a_lease_lost_in_a_heartbeat_cancels_the_task() {
    let harness = Harness::start().await;
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    harness.give(probe_task("lost", port, &["127.0.0.1"]));
    let shutdown = CancellationToken::new();
    let run = tokio::spawn(run(config(&harness.url), shutdown.clone()));
    let (mut held, _) = tokio::time::timeout(WAIT, silent.accept())
        .await
        .unwrap()
        .unwrap();
    // Lost only once the session is open: a heartbeat (every 200 ms) that
    // came before the connect would cancel the task before any session, and
    // the accept above would wait in vain (seen on a loaded machine).
    harness.fake.lose_leases.store(1, Ordering::SeqCst);
    // The cancelled session closes its connection.
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(WAIT, tokio::io::AsyncReadExt::read(&mut held, &mut buf))
        .await
        .expect("the session was not cancelled");
    assert!(matches!(closed, Ok(0) | Err(_)));
    assert!(harness.fake.heartbeats.load(Ordering::SeqCst) > 0);
    stop(run, shutdown).await;
    // Nothing to report and nothing to release: the task is someone else's.
    assert!(lock(&harness.fake.reports).is_empty());
    assert!(lock(&harness.fake.releases).is_empty());
}

#[tokio::test]
async fn unacknowledged_batches_are_bounded() {
    let coordinator = Coordinator::new(
        ChannelSettings {
            url: "http://127.0.0.1:1",
            token: None,
            ca_pem: None,
            identity: None,
        },
        "w",
        "v",
    )
    .unwrap();
    let (_uplink, sender) = Uplink::new(coordinator, Arc::new(LeaseTable::default()), 2);
    let batch = |n: u64| uplink::Batch {
        lease: Lease {
            task_id: "t".into(),
            epoch: n,
        },
        records_json: Vec::new(),
        task_complete: false,
    };
    sender.send(batch(1)).await.unwrap();
    sender.send(batch(2)).await.unwrap();
    // Nothing is acknowledged (the uplink does not even run): the third waits.
    let third = tokio::time::timeout(Duration::from_millis(200), sender.send(batch(3))).await;
    assert!(third.is_err());
}
