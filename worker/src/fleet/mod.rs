//! The worker as a member of a fleet (DESIGN §3): dial the coordinator,
//! register (with the port-25 egress self-check), lease tasks of this
//! vantage, run them with the probe engine, stream results back in batches
//! and keep every unacknowledged batch until it is acknowledged.
//!
//! Layout:
//! - [`task`]: the plain task types (task, work, batch, call error) and the
//!   [`task::ResultSink`] the uplink delivers to; imported by the others,
//!   importing none of them (no cycle between grpc, runner and uplink).
//! - [`grpc`]: the coordinator client; the only place that touches tonic/prost.
//! - [`runner`]: one task with the probe engine, items bounded by a shared semaphore.
//! - [`uplink`]: result batches, acknowledgements, resend after a reconnect.
//! - [`leases`]: the leases held, shared by leasing, heartbeat, uplink and shutdown.
//! - [`pacing`]: per-IP gap, per-network rate, this worker's share of the vantage cap.
//! - [`retry`]: targets that said `421`/`4xx` or reset, retried later with growing delays.
//! - [`slots`]: session and resolution slots, the unit of concurrency.
//! - [`asker`]: each kind of slot's lease calls (long polls for its free slots).
//! - [`backoff`]: capped exponential backoff with jitter.
//! - [`egress`]: the port-25 egress self-check.
//!
//! The worker keeps nothing on disk: a crash loses only unacknowledged
//! results, whose leases expire and are leased again elsewhere.
//!
//! Shutdown (the token): leasing stops, running tasks get a grace period,
//! the unfinished ones are released, and the unacknowledged batches get a
//! bounded time to be delivered.

pub mod asker;
pub mod backoff;
pub mod egress;
pub mod grpc;
pub mod leases;
pub mod pacing;
pub mod retry;
pub mod runner;
pub mod slots;
pub mod task;
pub mod uplink;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::cli_args::{default_dns_concurrency, DEFAULT_CONCURRENCY};
use mxscope_common::client::ClientConfigError;
use mxscope_common::runtime::OwnRuntime;
use mxscope_common::task::SlotKind;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use self::asker::{Answer, Asker, IDLE_POLL, LEASE_WAIT};
use self::backoff::Backoff;
use self::egress::EgressReport;
use self::grpc::{ChannelSettings, Coordinator, Registration};
use self::leases::{Lease, LeaseTable};
use self::runner::{Engine, RunEnd};
use self::task::CallError;
use self::uplink::{Uplink, UplinkSender};

/// A cancelled task must stop within this long, or it is aborted.
const STOP_WAIT: Duration = Duration::from_secs(5);
/// Releasing one task at shutdown.
const RELEASE_WAIT: Duration = Duration::from_secs(5);
/// Most tasks asked for in one lease call (the coordinator caps it too).
const MAX_LEASE_TASKS: usize = 64;

/// One lease call's end, for the fleet loop.
struct LeaseCall {
    waited: Duration,
    leased: Result<Vec<grpc::LeasedTask>, CallError>,
}

/// How a worker joins the fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The coordinator's URL, `http://` or `https://`.
    pub coordinator: String,
    /// Bearer token sent with every call.
    pub token: Option<String>,
    /// Trust anchors (PEM) for an `https://` coordinator; Mozilla's roots when `None`.
    pub coordinator_ca_pem: Option<Vec<u8>>,
    /// Client certificate and key (PEM) for mutual TLS.
    pub client_identity: Option<(Vec<u8>, Vec<u8>)>,
    pub worker_id: String,
    /// The vantage label this worker measures from.
    pub vantage: String,
    /// Most tasks at once (leasing is bounded by free slots first).
    pub capacity: usize,
    /// Most SMTP sessions at once, across tasks: the session slots.
    /// Reduced at start when the open-file limit is too low.
    pub probe_concurrency: usize,
    /// Most domain resolutions at once, across tasks: the resolution slots,
    /// apart from the sessions (see [`slots`]).
    pub dns_concurrency: usize,
    /// Source address of probes (and of the egress check).
    pub bind: Option<IpAddr>,
    /// Name servers used instead of the scans' when non-empty.
    pub resolvers_override: Vec<SocketAddr>,
    /// HOST:PORT to test port-25 egress against at start.
    pub egress_check: Option<String>,
    /// Records per result batch.
    pub batch_size: usize,
    /// Most unacknowledged batches held; when full, tasks wait for acks.
    pub max_unacked: usize,
    /// Batches (of different tasks) sent at once: with one, results are
    /// acknowledged no faster than one coordinator round trip per batch,
    /// which starves fast scans of new work.
    pub batches_in_flight: usize,
    /// At shutdown, how long running tasks may go on before they are released.
    pub shutdown_grace: Duration,
    /// At shutdown, how long unacknowledged batches may take to be delivered.
    pub flush_timeout: Duration,
}

impl FleetConfig {
    /// A configuration with the defaults for everything but the identity.
    pub fn new(
        coordinator: impl Into<String>,
        worker_id: impl Into<String>,
        vantage: impl Into<String>,
    ) -> Self {
        Self {
            coordinator: coordinator.into(),
            token: None,
            coordinator_ca_pem: None,
            client_identity: None,
            worker_id: worker_id.into(),
            vantage: vantage.into(),
            capacity: 64,
            probe_concurrency: DEFAULT_CONCURRENCY as usize,
            dns_concurrency: default_dns_concurrency(DEFAULT_CONCURRENCY) as usize,
            bind: None,
            resolvers_override: Vec::new(),
            egress_check: None,
            batch_size: 100,
            max_unacked: 64,
            batches_in_flight: 8,
            shutdown_grace: Duration::from_secs(30),
            flush_timeout: Duration::from_secs(30),
        }
    }

    fn validate(&self) -> Result<(), FleetError> {
        let invalid = |reason: &str| Err(FleetError::Invalid(reason.to_string()));
        if self.worker_id.trim().is_empty() {
            return invalid("the worker id is empty");
        }
        if self.vantage.trim().is_empty() {
            return invalid("the vantage label is empty");
        }
        if self.capacity == 0 || self.probe_concurrency == 0 || self.dns_concurrency == 0 {
            return invalid("capacity, probe and DNS concurrency must be at least 1");
        }
        if self.batch_size == 0 || self.max_unacked == 0 {
            return invalid("batch size and the unacknowledged-batch bound must be at least 1");
        }
        Ok(())
    }
}

/// Why the fleet loop could not run. Network trouble is never one of these:
/// it is retried until shutdown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FleetError {
    /// The configuration is inconsistent; fix the named option.
    #[error("invalid fleet configuration: {0}")]
    Invalid(String),
    /// The coordinator URL does not parse or has the wrong scheme; pass `http(s)://HOST:PORT`.
    #[error("coordinator URL {url:?}: {reason}")]
    CoordinatorUrl { url: String, reason: String },
    /// The coordinator CA or client certificate cannot be used; check the PEM files.
    #[error("coordinator TLS: {0}")]
    Tls(String),
    /// The token holds characters a header cannot carry; check the token file.
    #[error("the token is not a valid header value (printable ASCII only)")]
    Token,
    /// The fleet's own runtimes (control plane, resolutions) could not start
    /// (threads, memory).
    #[error("cannot start the fleet's runtimes: {0}")]
    Runtime(String),
    /// The coordinator refused this worker (credentials, unknown vantage…);
    /// retrying will not help: fix the token or the options.
    #[error("the coordinator refused to register this worker: {0}")]
    Refused(String),
}

impl From<ClientConfigError> for FleetError {
    fn from(error: ClientConfigError) -> Self {
        match error {
            ClientConfigError::Url { url, reason } => Self::CoordinatorUrl { url, reason },
            ClientConfigError::Tls(reason) => Self::Tls(reason),
            ClientConfigError::Token => Self::Token,
            other => Self::Invalid(other.to_string()),
        }
    }
}

/// Join the fleet and work until `shutdown` is cancelled; then stop
/// leasing, finish or release the running tasks and flush the results.
///
/// The fleet's control plane (lease calls, the uplink, heartbeats and the
/// coordinator connection) runs on a runtime thread of its own, resolve
/// tasks on a runtime of their own, probe tasks on the caller's runtime.
/// On one runtime, whatever has the fewest tasks gets the least CPU when
/// the cores are busy: the lease and report calls waited behind thousands
/// of TLS handshakes, and so did resolving, from which the next probe tasks
/// are planned, so a fast scan's sessions ran out of targets. Threads of
/// their own give both a fair share from the kernel whatever the task counts.
pub async fn run(config: FleetConfig, shutdown: CancellationToken) -> Result<(), FleetError> {
    let sessions = tokio::runtime::Handle::current();
    let runtime_error = |e: std::io::Error| FleetError::Runtime(e.to_string());
    let control = OwnRuntime::start("mxscope-fleet", 1).map_err(runtime_error)?;
    let resolutions = OwnRuntime::start("mxscope-dns", dns_threads()).map_err(runtime_error)?;
    let runtimes = TaskRuntimes {
        sessions,
        resolutions: resolutions.handle().clone(),
    };
    let fleet = control
        .handle()
        .spawn(run_fleet(config, shutdown, runtimes));
    match fleet.await {
        Ok(outcome) => outcome,
        Err(error) => Err(FleetError::Runtime(error.to_string())),
    }
}

/// Threads that resolve: a quarter of the cores, at least one. Resolving
/// costs about a third of the CPU of probing a domain's MX (hickory's
/// lookups against a TLS handshake), so this keeps it ahead of the sessions.
fn dns_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 4).max(1))
}

/// Where each kind of task runs.
#[derive(Debug, Clone)]
struct TaskRuntimes {
    sessions: tokio::runtime::Handle,
    resolutions: tokio::runtime::Handle,
}

impl TaskRuntimes {
    fn of(&self, kind: SlotKind) -> &tokio::runtime::Handle {
        match kind {
            SlotKind::Session => &self.sessions,
            SlotKind::Resolution => &self.resolutions,
        }
    }
}

async fn run_fleet(
    mut config: FleetConfig,
    shutdown: CancellationToken,
    runtimes: TaskRuntimes,
) -> Result<(), FleetError> {
    config.validate()?;
    (config.probe_concurrency, config.dns_concurrency) =
        check_open_files(config.probe_concurrency, config.dns_concurrency);
    let coordinator = Coordinator::new(
        ChannelSettings {
            url: &config.coordinator,
            token: config.token.as_deref(),
            ca_pem: config.coordinator_ca_pem.as_deref(),
            identity: config
                .client_identity
                .as_ref()
                .map(|(cert, key)| (cert.as_slice(), key.as_slice())),
        },
        &config.worker_id,
        &config.vantage,
    )?;
    let egress = egress::check(
        config.egress_check.as_deref(),
        config.bind,
        egress::EGRESS_TIMEOUT,
    )
    .await;
    crate::metrics::egress(egress.checked.then_some(egress.ok));
    if egress.blocked() {
        warn!(egress_target = %egress.target, detail = %egress.detail,
            "no port-25 egress: this vantage will get no probe tasks");
    } else if egress.checked {
        info!(egress_target = %egress.target, "port-25 egress ok");
    }
    let leases = Arc::new(LeaseTable::default());
    let (uplink, sender) = Uplink::new(coordinator.clone(), leases.clone(), config.max_unacked);
    let uplink = uplink.with_in_flight(config.batches_in_flight);
    let abort_uplink = CancellationToken::new();
    let mut uplink = tokio::spawn(uplink.run(abort_uplink.clone()));

    let mut fleet = Fleet {
        engine: Arc::new(Engine::new(
            config.probe_concurrency,
            config.dns_concurrency,
            config.bind,
            config.resolvers_override.clone(),
            egress.blocked(),
            config.batch_size,
        )),
        config,
        coordinator,
        egress,
        leases,
        sender: Some(sender),
        running: JoinSet::new(),
        runtimes,
        running_leases: HashMap::new(),
    };
    let stop_heartbeat = CancellationToken::new();
    let outcome = fleet.work(&shutdown, &stop_heartbeat).await;
    crate::metrics::registered(false);
    fleet.wind_down().await;
    // Every sender is gone now: the uplink ends once its queue is empty.
    let report = match tokio::time::timeout(fleet.config.flush_timeout, &mut uplink).await {
        Ok(report) => report.unwrap_or_default(),
        Err(_) => {
            abort_uplink.cancel();
            uplink.await.unwrap_or_default()
        }
    };
    stop_heartbeat.cancel();
    if report.abandoned > 0 {
        warn!(
            batches = report.abandoned,
            "unacknowledged batches abandoned at shutdown"
        );
    }
    info!(
        acknowledged = report.acknowledged,
        dropped = report.dropped,
        "worker stopped"
    );
    outcome
}

/// The fleet loop's state.
struct Fleet {
    config: FleetConfig,
    coordinator: Coordinator,
    egress: EgressReport,
    engine: Arc<Engine>,
    leases: Arc<LeaseTable>,
    /// Dropped at the end so that the uplink can finish.
    sender: Option<UplinkSender>,
    running: JoinSet<RunEnd>,
    running_leases: HashMap<Id, Lease>,
    /// Where tasks run (not on the control plane's runtime).
    runtimes: TaskRuntimes,
}

impl Fleet {
    /// Register, then lease and run tasks until shutdown (or a fatal refusal).
    async fn work(
        &mut self,
        shutdown: &CancellationToken,
        stop_heartbeat: &CancellationToken,
    ) -> Result<(), FleetError> {
        let Some(registration) = self.register(shutdown).await? else {
            return Ok(());
        };
        tokio::spawn(heartbeat(
            self.coordinator.clone(),
            self.leases.clone(),
            registration.heartbeat_interval,
            stop_heartbeat.clone(),
        ));
        // One asker per kind of slot, each with at most one call on its way.
        let mut askers = [
            Asker::new(self.engine.sessions.clone()),
            Asker::new(self.engine.resolutions.clone()),
        ];
        let mut calls: JoinSet<LeaseCall> = JoinSet::new();
        // Which kind each call on its way asks for (a call that panicked says nothing).
        let mut call_kinds: HashMap<Id, SlotKind> = HashMap::new();
        loop {
            // Finished tasks leave room for new ones before we ask.
            while let Some(joined) = self.running.try_join_next_with_id() {
                self.finished(joined);
            }
            let now = Instant::now();
            // Each kind asks for the whole room: a call of one kind may wait
            // at the coordinator for long, and must not keep the other kind
            // from asking. Tasks beyond --capacity are given back on arrival.
            let room = self.config.capacity.saturating_sub(self.running.len());
            for asker in &mut askers {
                let Some(budget) = asker.due(now).filter(|_| room > 0) else {
                    continue;
                };
                let asked = room.min(MAX_LEASE_TASKS);
                asker.calling();
                let coordinator = self.coordinator.clone();
                let kind = asker.kind();
                let call = calls.spawn(async move {
                    let called = Instant::now();
                    let leased = coordinator.lease(asked, budget, LEASE_WAIT).await;
                    LeaseCall {
                        waited: called.elapsed(),
                        leased,
                    }
                });
                call_kinds.insert(call.id(), kind);
            }
            let idle = now + IDLE_POLL.1;
            let look_again = askers
                .iter()
                .filter_map(Asker::not_before)
                .fold(idle, Instant::min);
            let [sessions, resolutions] = &askers;
            let (wake_sessions, wake_resolutions) =
                (sessions.wakes_on_free(), resolutions.wakes_on_free());
            let (session_slots, resolution_slots) = (
                sessions.pool().slots.clone(),
                resolutions.pool().slots.clone(),
            );
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(joined) = calls.join_next_with_id(), if !calls.is_empty() => {
                    let id = joined.as_ref().map_or_else(|e| e.id(), |(id, _)| *id);
                    let Some(kind) = call_kinds.remove(&id) else { continue };
                    let Some(asker) = askers.iter_mut().find(|a| a.kind() == kind) else {
                        continue;
                    };
                    let call = match joined {
                        Ok((_, call)) => call,
                        Err(error) => {
                            // Never expected; the kind asks again after a backoff.
                            asker.answered(Answer::Failed, Instant::now());
                            warn!(%error, ?kind, "a lease call stopped abnormally");
                            continue;
                        }
                    };
                    let answer = match call.leased {
                        Ok(tasks) if !tasks.is_empty() => {
                            self.take(tasks);
                            Answer::Leased
                        }
                        Ok(_) => Answer::empty(call.waited),
                        Err(error) => {
                            let transient = matches!(error, CallError::Transient(_));
                            let failures = asker.answered(Answer::Failed, Instant::now());
                            warn!(%error, attempt = failures, ?kind,
                                "leasing failed; retrying");
                            if transient && failures > 1 {
                                // The coordinator may have restarted: announce ourselves again.
                                if self.register(shutdown).await?.is_none() {
                                    break;
                                }
                            }
                            continue;
                        }
                    };
                    asker.answered(answer, Instant::now());
                }
                Some(joined) = self.running.join_next_with_id(), if !self.running.is_empty() => {
                    self.finished(joined);
                }
                () = session_slots.freed(), if wake_sessions => {}
                () = resolution_slots.freed(), if wake_resolutions => {}
                () = tokio::time::sleep_until(look_again) => {
                    let now = Instant::now();
                    askers.iter_mut().for_each(|a| a.timer(now));
                }
            }
        }
        // Calls still on their way are dropped (aborted) here.
        Ok(())
    }

    /// Register, retrying transient failures with backoff; `None` on shutdown.
    async fn register(
        &self,
        shutdown: &CancellationToken,
    ) -> Result<Option<Registration>, FleetError> {
        let mut backoff = Backoff::default();
        loop {
            let registered = tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                registered = self.coordinator.register(self.config.capacity, &self.egress) => registered,
            };
            let error = match registered {
                Ok(registration) => {
                    crate::metrics::registered(true);
                    info!(coordinator = %self.config.coordinator, worker = %self.config.worker_id,
                        vantage = %self.config.vantage,
                        heartbeat_ms = registration.heartbeat_interval.as_millis() as u64,
                        "registered with the coordinator");
                    return Ok(Some(registration));
                }
                Err(CallError::Refused(reason)) => return Err(FleetError::Refused(reason)),
                Err(error) => error,
            };
            let wait = backoff.next_delay();
            warn!(coordinator = %self.config.coordinator, %error, attempt = backoff.failures(),
                retry_in_ms = wait.as_millis() as u64, "cannot register; retrying");
            tokio::select! {
                () = shutdown.cancelled() => return Ok(None),
                () = tokio::time::sleep(wait) => {}
            }
        }
    }

    fn start(&mut self, task: grpc::LeasedTask) {
        let task = match task {
            Ok(task) => task,
            Err((lease, error)) => {
                // Not held, not heartbeated: the lease expires, and the
                // coordinator's bounded attempts end in a recorded failure.
                error!(task = %lease.task_id, epoch = lease.epoch, %error, "malformed task ignored");
                return;
            }
        };
        let Some(sender) = self.sender.clone() else {
            return;
        };
        let lease = task.lease.clone();
        let cancel = self.leases.hold(&lease);
        let engine = self.engine.clone();
        let kind = task.work.slot_kind();
        let claim = engine.pool(kind).slots.claim(task.work.len());
        let handle = self.running.spawn_on(
            async move { engine.run(task, sender, cancel, claim).await },
            self.runtimes.of(kind),
        );
        self.running_leases.insert(handle.id(), lease);
    }

    /// Start the leased `tasks` within --capacity; give back the rest.
    fn take(&mut self, tasks: Vec<grpc::LeasedTask>) {
        for task in tasks {
            if self.running.len() < self.config.capacity {
                self.start(task);
            } else {
                self.give_back(task);
            }
        }
    }

    /// Release a task leased beyond --capacity (both kinds' calls came
    /// back with work at once): it goes back to the queue at once.
    fn give_back(&self, task: grpc::LeasedTask) {
        let lease = match task {
            Ok(task) => task.lease,
            Err((lease, _)) => lease,
        };
        let coordinator = self.coordinator.clone();
        tokio::spawn(async move {
            match tokio::time::timeout(RELEASE_WAIT, coordinator.release(&lease)).await {
                Ok(Ok(())) => {
                    info!(task = %lease.task_id, epoch = lease.epoch, "beyond --capacity: given back")
                }
                _ => warn!(task = %lease.task_id, epoch = lease.epoch,
                    "giving back a task beyond --capacity failed; its lease will expire"),
            }
        });
    }

    fn finished(&mut self, joined: Result<(Id, RunEnd), tokio::task::JoinError>) {
        let (id, end) = match joined {
            Ok((id, end)) => (id, Ok(end)),
            Err(error) => (error.id(), Err(error)),
        };
        let Some(lease) = self.running_leases.remove(&id) else {
            return;
        };
        match end {
            // The lease stays held until the uplink has the last batch acknowledged.
            Ok(RunEnd::Finished { .. } | RunEnd::Cancelled) => {}
            Ok(RunEnd::Failed(error)) => {
                error!(task = %lease.task_id, epoch = lease.epoch, %error, "task cannot run here");
                self.leases.lose(&lease);
            }
            Err(error) => {
                error!(task = %lease.task_id, epoch = lease.epoch, %error, "task stopped abnormally");
                self.leases.lose(&lease);
            }
        }
    }

    /// Shutdown: wait up to the grace period for running tasks, then stop
    /// and release the rest.
    async fn wind_down(&mut self) {
        if !self.running.is_empty() {
            info!(
                tasks = self.running.len(),
                grace_s = self.config.shutdown_grace.as_secs_f32(),
                "shutting down: no new leases; letting running tasks finish"
            );
        }
        let deadline = Instant::now() + self.config.shutdown_grace;
        while !self.running.is_empty() {
            tokio::select! {
                Some(joined) = self.running.join_next_with_id() => self.finished(joined),
                () = tokio::time::sleep_until(deadline) => break,
            }
        }
        let unfinished: Vec<Lease> = self.running_leases.values().cloned().collect();
        for lease in &unfinished {
            // Cancels the task's work and drops its queued batches.
            self.leases.lose(lease);
        }
        let stop = Instant::now() + STOP_WAIT;
        while !self.running.is_empty() {
            tokio::select! {
                Some(joined) = self.running.join_next_with_id() => { let _ = joined; }
                () = tokio::time::sleep_until(stop) => {
                    self.running.abort_all();
                    while self.running.join_next().await.is_some() {}
                }
            }
        }
        self.running_leases.clear();
        for lease in unfinished {
            match tokio::time::timeout(RELEASE_WAIT, self.coordinator.release(&lease)).await {
                Ok(Ok(())) => info!(task = %lease.task_id, epoch = lease.epoch, "task released"),
                Ok(Err(error)) => warn!(task = %lease.task_id, epoch = lease.epoch, %error,
                    "release failed; the lease will expire"),
                Err(_) => warn!(task = %lease.task_id, epoch = lease.epoch,
                    "release timed out; the lease will expire"),
            }
        }
        self.sender = None;
    }
}

/// `RLIMIT_NOFILE` against `sessions` and `resolutions` (each holds a
/// socket): raise the soft limit when needed and say what is reachable;
/// returns what each kind gets.
fn check_open_files(sessions: usize, resolutions: usize) -> (usize, usize) {
    let requested = sessions.saturating_add(resolutions);
    let Some(budget) = crate::limits::ensure_open_files(requested) else {
        warn!(
            concurrency = sessions,
            dns_concurrency = resolutions,
            "cannot read the open-file limit; sessions may fail with EMFILE"
        );
        return (sessions, resolutions);
    };
    let (reached_sessions, reached_resolutions) =
        crate::limits::split_reachable(sessions, resolutions, budget.reachable);
    if budget.limited(requested) {
        warn!(
            requested,
            reachable = budget.reachable,
            soft = budget.soft,
            hard = budget.hard,
            "the open-file limit (RLIMIT_NOFILE) is too low for --concurrency {sessions} and \
             --dns-concurrency {resolutions}: running {reached_sessions} sessions and \
             {reached_resolutions} resolutions at once; raise the hard limit (ulimit -Hn, \
             LimitNOFILE=) to reach them"
        );
    } else if budget.soft > budget.soft_before {
        info!(
            concurrency = sessions,
            dns_concurrency = resolutions,
            from = budget.soft_before,
            to = budget.soft,
            "raised the open-file soft limit for the session and resolution slots"
        );
    }
    (reached_sessions, reached_resolutions)
}

/// Extend the held leases every `interval`; cancel the tasks of lost ones.
async fn heartbeat(
    coordinator: Coordinator,
    leases: Arc<LeaseTable>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let held = leases.snapshot();
        if held.is_empty() {
            continue;
        }
        let beat = tokio::select! {
            () = stop.cancelled() => return,
            beat = tokio::time::timeout(interval.max(Duration::from_secs(1)) * 2, coordinator.heartbeat(&held)) => beat,
        };
        match beat {
            Ok(Ok(lost)) => {
                for lease in lost {
                    if leases.lose(&lease) {
                        warn!(task = %lease.task_id, epoch = lease.epoch, "lease lost: task cancelled");
                    }
                }
            }
            Ok(Err(error)) => warn!(%error, leases = held.len(), "heartbeat failed"),
            Err(_) => warn!(leases = held.len(), "heartbeat timed out"),
        }
    }
}
