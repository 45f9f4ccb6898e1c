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

pub mod config;
pub mod egress;
pub mod link;
pub mod pace;
pub mod runner;
mod runtimes;
pub mod task;
pub mod uplink;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::process::runtime::OwnRuntime;
use mxscope_common::wire::task::SlotKind;
use tokio::task::{Id, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

pub use self::config::{FleetConfig, FleetError};
pub use self::link::grpc::LocalService;

use self::egress::EgressReport;
use self::link::asker::{Answer, Asker, IDLE_POLL, LEASE_WAIT};
use self::link::backoff::Backoff;
use self::link::grpc::{Coordinator, Registration};
use self::link::heartbeat::heartbeat;
use self::link::leases::{Lease, LeaseTable};
use self::runner::{Engine, RunEnd};
use self::runtimes::{check_open_files, dns_threads, TaskRuntimes};
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
    leased: Result<Vec<link::grpc::LeasedTask>, CallError>,
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
    run_with(config, None, shutdown).await
}

/// [`run`] against the coordinator of this process (`mxscope scan`'s
/// embedded one), called without a connection: `config`'s coordinator URL,
/// token and TLS settings are unused.
pub async fn run_in_process(
    config: FleetConfig,
    local: LocalService,
    shutdown: CancellationToken,
) -> Result<(), FleetError> {
    run_with(config, Some(local), shutdown).await
}

async fn run_with(
    config: FleetConfig,
    local: Option<LocalService>,
    shutdown: CancellationToken,
) -> Result<(), FleetError> {
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
        .spawn(run_fleet(config, local, shutdown, runtimes));
    match fleet.await {
        Ok(outcome) => outcome,
        Err(error) => Err(FleetError::Runtime(error.to_string())),
    }
}

async fn run_fleet(
    mut config: FleetConfig,
    local: Option<LocalService>,
    shutdown: CancellationToken,
    runtimes: TaskRuntimes,
) -> Result<(), FleetError> {
    config.validate()?;
    (config.probe_concurrency, config.dns_concurrency) =
        check_open_files(config.probe_concurrency, config.dns_concurrency);
    let coordinator = Coordinator::of_fleet(&config, local)?;
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
        let mut lease_warned: Option<std::time::Instant> = None;
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
                            if uplink::warn_again(&mut lease_warned) {
                                warn!(%error, attempt = failures, ?kind,
                                    "leasing failed; retrying (repeats are logged at most once a minute)");
                            } else {
                                tracing::debug!(%error, attempt = failures, ?kind, "leasing failed again");
                            }
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

    fn start(&mut self, task: link::grpc::LeasedTask) {
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
    fn take(&mut self, tasks: Vec<link::grpc::LeasedTask>) {
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
    fn give_back(&self, task: link::grpc::LeasedTask) {
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
