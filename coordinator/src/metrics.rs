//! The coordinator's Prometheus metrics (`--metrics-listen`); its readiness
//! and the scrape-time reading of the state gauges are [`crate::readiness`].
//!
//! Events are counted where they happen with one-line calls
//! ([`leases_granted`], [`leases_expired`], [`stale_epoch`],
//! [`results_ingested`], [`flush_observed`], [`worker_seen`]); the state
//! gauges (scans by state, tasks by kind and state, store size, connected
//! workers per vantage) are read from the coordinator at scrape time.
//!
//! Labels are bounded: task kinds, states and record kinds are fixed sets;
//! vantages are the operator's labels, capped at [`MAX_VANTAGE_LABELS`]
//! (the rest are summed under `other`). No label ever holds an IP, a domain
//! or a worker id.

use std::collections::{BTreeMap, HashMap};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, Instant};

use mxscope_common::process::ops::Ops;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

use crate::model::{ScanState, Work};

/// Distinct vantage labels of the worker gauge; the rest count as `other`.
pub const MAX_VANTAGE_LABELS: usize = 64;
/// Workers remembered for the connected-workers gauge.
const MAX_WORKERS: usize = 10_000;
/// A worker that made no call for this long is not connected.
pub const WORKER_SEEN_WINDOW: Duration = Duration::from_secs(60);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabel {
    kind: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    kind: &'static str,
    state: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VantageLabel {
    vantage: String,
}

struct Metrics {
    leases_granted: Family<KindLabel, Counter>,
    leases_expired: Counter,
    stale_epoch: Counter,
    results_ingested: Counter,
    records_received: Family<KindLabel, Counter>,
    flush_seconds: Histogram,
    scans: Family<StateLabel, Gauge>,
    tasks: Family<TaskLabels, Gauge>,
    store_bytes: Gauge,
    store_errors: Counter,
    store_writable: Gauge,
    workers: Family<VantageLabel, Gauge>,
    connections: Gauge,
    connections_refused: Counter,
    requests_refused: Family<ReasonLabel, Counter>,
    /// worker id → (vantage, last call).
    seen: Mutex<HashMap<String, (String, Instant)>>,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    leases_granted: Family::default(),
    leases_expired: Counter::default(),
    stale_epoch: Counter::default(),
    results_ingested: Counter::default(),
    records_received: Family::default(),
    flush_seconds: Histogram::new(exponential_buckets(0.0005, 2.0, 16)),
    scans: Family::default(),
    tasks: Family::default(),
    store_bytes: Gauge::default(),
    store_errors: Counter::default(),
    store_writable: Gauge::default(),
    workers: Family::default(),
    connections: Gauge::default(),
    connections_refused: Counter::default(),
    requests_refused: Family::default(),
    seen: Mutex::new(HashMap::new()),
});

fn kind_name(kind: &Work) -> &'static str {
    match kind {
        Work::Resolve { .. } => "resolve",
        Work::Probe { .. } => "probe",
    }
}

/// A task was leased to a worker.
pub fn leases_granted(kind: &Work) {
    METRICS
        .leases_granted
        .get_or_create(&KindLabel {
            kind: kind_name(kind),
        })
        .inc();
}

/// `n` leases ran out without a heartbeat.
pub fn leases_expired(n: usize) {
    METRICS.leases_expired.inc_by(n as u64);
}

/// Whether the store's writes succeed (0 from the first failed write
/// until the coordinator is restarted on the directory).
pub fn store_writable(yes: bool) {
    METRICS.store_writable.set(i64::from(yes));
}

/// A call failed in the store (a write or flush refused: disk full, I/O).
pub fn store_error() {
    METRICS.store_errors.inc();
}

/// A gRPC connection was accepted ([`connection_closed`] when it ends).
pub fn connection_opened() {
    METRICS.connections.inc();
}

pub fn connection_closed() {
    METRICS.connections.dec();
}

/// A connection was closed at once: `--max-connections` were open.
pub fn connection_refused() {
    METRICS.connections_refused.inc();
}

/// A call failed for the request-memory limits: `memory` (the budget was
/// spent) or `stalled` (a message not whole in time).
pub fn request_refused(reason: &'static str) {
    METRICS
        .requests_refused
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

/// A call carried an epoch that no longer holds the lease (or no lease).
pub fn stale_epoch() {
    METRICS.stale_epoch.inc();
}

/// A result batch was stored: `received` domain and target records in it,
/// `stored` of them new.
pub fn results_ingested(domains: u64, targets: u64, stored: u64) {
    let received = &METRICS.records_received;
    received
        .get_or_create(&KindLabel { kind: "domain" })
        .inc_by(domains);
    received
        .get_or_create(&KindLabel { kind: "target" })
        .inc_by(targets);
    METRICS.results_ingested.inc_by(stored);
}

/// A store flush took `elapsed`.
pub fn flush_observed(elapsed: Duration) {
    METRICS.flush_seconds.observe(elapsed.as_secs_f64());
}

/// A worker made a call (register, lease, heartbeat).
pub fn worker_seen(worker: &str, vantage: &str) {
    let mut seen = METRICS.seen.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if seen.len() >= MAX_WORKERS && !seen.contains_key(worker) {
        seen.retain(|_, (_, at)| now.duration_since(*at) < WORKER_SEEN_WINDOW);
        if seen.len() >= MAX_WORKERS {
            return;
        }
    }
    seen.insert(worker.to_string(), (vantage.to_string(), now));
}

/// Connected workers per vantage label (bounded, see [`MAX_VANTAGE_LABELS`]).
fn workers_per_vantage() -> BTreeMap<String, i64> {
    let seen = METRICS.seen.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    let mut per: BTreeMap<String, i64> = BTreeMap::new();
    for (vantage, at) in seen.values() {
        if now.duration_since(*at) < WORKER_SEEN_WINDOW {
            *per.entry(vantage.clone()).or_default() += 1;
        }
    }
    if per.len() > MAX_VANTAGE_LABELS {
        let rest: Vec<String> = per.keys().skip(MAX_VANTAGE_LABELS - 1).cloned().collect();
        let mut other = 0;
        for vantage in rest {
            other += per.remove(&vantage).unwrap_or(0);
        }
        per.insert("other".into(), other);
    }
    per
}

/// Register the coordinator's families in `ops`.
pub fn register(ops: &mut Ops) {
    let m = &*METRICS;
    let r = ops.registry();
    r.register(
        "mxscope_coordinator_leases_granted",
        "Tasks leased to workers, by task kind",
        m.leases_granted.clone(),
    );
    r.register(
        "mxscope_coordinator_leases_expired",
        "Leases taken back because no heartbeat came in time",
        m.leases_expired.clone(),
    );
    r.register(
        "mxscope_coordinator_stale_epoch_rejections",
        "Calls refused because their lease epoch was stale or the task not leased",
        m.stale_epoch.clone(),
    );
    r.register(
        "mxscope_coordinator_results_ingested",
        "Result records stored (new keys; a resend counts once)",
        m.results_ingested.clone(),
    );
    r.register(
        "mxscope_coordinator_records_received",
        "Result records received in batches, by record kind (resends included)",
        m.records_received.clone(),
    );
    r.register(
        "mxscope_coordinator_flush_duration_seconds",
        "Time to flush the store to disk before acknowledging",
        m.flush_seconds.clone(),
    );
    r.register(
        "mxscope_coordinator_scans",
        "Scans by state",
        m.scans.clone(),
    );
    r.register(
        "mxscope_coordinator_tasks",
        "Tasks by kind and state",
        m.tasks.clone(),
    );
    r.register(
        "mxscope_coordinator_store_size_bytes",
        "Size of the store on disk",
        m.store_bytes.clone(),
    );
    r.register(
        "mxscope_coordinator_store_writable",
        "1 while the store's writes succeed; 0 once one failed (a full disk): no new work is leased",
        m.store_writable.clone(),
    );
    r.register(
        "mxscope_coordinator_store_errors",
        "Calls that failed in the store (I/O error, disk full, corrupt data)",
        m.store_errors.clone(),
    );
    r.register(
        "mxscope_coordinator_grpc_connections",
        "gRPC connections open (at most --max-connections)",
        m.connections.clone(),
    );
    r.register(
        "mxscope_coordinator_grpc_connections_refused",
        "Connections closed at once because --max-connections were open",
        m.connections_refused.clone(),
    );
    r.register(
        "mxscope_coordinator_requests_refused",
        "Calls failed by the request-memory limits: memory (--request-memory spent), stalled (a message not whole in time)",
        m.requests_refused.clone(),
    );
    r.register(
        "mxscope_coordinator_connected_workers",
        "Workers that called in the last minute, by vantage",
        m.workers.clone(),
    );
}

/// One scan's state and its task counts by (kind, state), for the gauges.
#[derive(Debug, Clone)]
pub(crate) struct ScanGauge {
    pub(crate) state: ScanState,
    pub(crate) tasks: Vec<(&'static str, &'static str, u64)>,
}

/// The connected-workers gauge, recomputed (at scrape time).
pub(crate) fn set_workers_gauge() {
    let m = &*METRICS;
    m.workers.clear();
    for (vantage, n) in workers_per_vantage() {
        m.workers.get_or_create(&VantageLabel { vantage }).set(n);
    }
}

/// The store-size gauge.
pub(crate) fn set_store_bytes(bytes: u64) {
    METRICS
        .store_bytes
        .set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// The scans-by-state and tasks-by-kind-and-state gauges, from scratch.
pub(crate) fn set_scan_gauges(scans: &[ScanGauge]) {
    let m = &*METRICS;
    m.scans.clear();
    m.tasks.clear();
    for state in [ScanState::Running, ScanState::Done, ScanState::Cancelled] {
        m.scans
            .get_or_create(&StateLabel {
                state: state.as_str(),
            })
            .set(0);
    }
    for scan in scans {
        m.scans
            .get_or_create(&StateLabel {
                state: scan.state.as_str(),
            })
            .inc();
        for &(kind, state, n) in &scan.tasks {
            m.tasks
                .get_or_create(&TaskLabels { kind, state })
                .inc_by(i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
