//! The worker's Prometheus metrics (`--metrics-listen`), and its readiness.
//!
//! Counted with one-line calls where things happen: every record a fleet
//! task produces ([`domain_record`], [`target_record`]: DNS lookups by
//! status, probes by outcome and phase, phase durations), sessions in flight
//! ([`session`]), the uplink ([`uplink_depth`], [`uplink_resend`]), the
//! registration and the egress check ([`registered`], [`egress`]).
//!
//! Labels are fixed sets (statuses, outcomes, phases, states): never an IP,
//! a domain or a name.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::LazyLock;

use mxscope_common::process::ops::Ops;
use mxscope_common::{DomainRecord, TargetRecord};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProbeLabels {
    outcome: &'static str,
    phase: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The results of a retried target, as the counter labels them.
const RETRY_RESULTS: [&str; 2] = ["recovered", "still_limited"];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// Why the resolver drops an answer, as the counter labels it.
const DROP_REASONS: [&str; 4] = [
    "unexpected_id",
    "wrong_server",
    "wrong_question",
    "malformed",
];

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PhaseLabel {
    phase: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

fn phase_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

struct Metrics {
    sessions_in_flight: Gauge,
    session_slots: Gauge,
    resolutions_in_flight: Gauge,
    resolution_slots: Gauge,
    probes: Family<ProbeLabels, Counter>,
    retried: Family<ResultLabel, Counter>,
    phase_seconds: Family<PhaseLabel, Histogram, fn() -> Histogram>,
    dns_lookups: Family<StatusLabel, Counter>,
    dns_dropped: Family<ReasonLabel, Counter>,
    uplink_depth: Gauge,
    uplink_resends: Counter,
    egress: Family<StateLabel, Gauge>,
    registered: Gauge,
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    sessions_in_flight: Gauge::default(),
    session_slots: Gauge::default(),
    resolutions_in_flight: Gauge::default(),
    resolution_slots: Gauge::default(),
    probes: Family::default(),
    retried: Family::default(),
    phase_seconds: Family::new_with_constructor(phase_histogram),
    dns_lookups: Family::default(),
    dns_dropped: Family::default(),
    uplink_depth: Gauge::default(),
    uplink_resends: Counter::default(),
    egress: Family::default(),
    registered: Gauge::default(),
});

/// Egress check states, as the gauge labels them.
const EGRESS_STATES: [&str; 4] = ["pending", "ok", "blocked", "unchecked"];
/// Index into [`EGRESS_STATES`]; `pending` until the check ran.
static EGRESS: AtomicU8 = AtomicU8::new(0);

/// The record's name of an enum value (`nxdomain`, `tls_handshake`): a
/// fixed set per enum.
fn wire_name(value: impl serde::Serialize) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "other".into())
}

/// A domain was resolved (one record of a resolve task).
pub fn domain_record(record: &DomainRecord) {
    let status = wire_name(record.dns.status);
    METRICS
        .dns_lookups
        .get_or_create(&StatusLabel { status })
        .inc();
}

/// A target was probed (one record of a probe task).
pub fn target_record(record: &TargetRecord) {
    METRICS
        .probes
        .get_or_create(&ProbeLabels {
            outcome: record.outcome.as_str(),
            phase: wire_name(record.phase),
        })
        .inc();
    if let Some(retries) = &record.retries {
        let result = if retries.still_limited {
            "still_limited"
        } else {
            "recovered"
        };
        METRICS.retried.get_or_create(&ResultLabel { result }).inc();
    }
    let t = &record.timings_ms;
    for (phase, ms) in [
        ("connect", t.connect),
        ("greeting", t.greeting),
        ("ehlo", t.ehlo),
        ("starttls", t.starttls),
        ("handshake", t.handshake),
        ("ehlo_tls", t.ehlo_tls),
        ("session", (t.total > 0).then_some(t.total)),
    ] {
        if let Some(ms) = ms {
            METRICS
                .phase_seconds
                .get_or_create(&PhaseLabel { phase })
                .observe(ms as f64 / 1000.0);
        }
    }
}

/// Counts one session or resolution in flight until dropped.
#[derive(Debug)]
pub struct InFlight(&'static Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// The resolver dropped an answer that matched no query it sent.
pub fn dns_answer_dropped(reason: &'static str) {
    METRICS
        .dns_dropped
        .get_or_create(&ReasonLabel { reason })
        .inc();
}

/// A session (one target's probe) starts; it ends when the guard drops.
pub fn session() -> InFlight {
    METRICS.sessions_in_flight.inc();
    InFlight(&METRICS.sessions_in_flight)
}

/// A domain's resolution starts; it ends when the guard drops.
pub fn resolution() -> InFlight {
    METRICS.resolutions_in_flight.inc();
    InFlight(&METRICS.resolutions_in_flight)
}

/// The worker runs at most `sessions` SMTP sessions and `resolutions`
/// domain resolutions at once.
pub fn slots(sessions: usize, resolutions: usize) {
    let count = |n: usize| i64::try_from(n).unwrap_or(i64::MAX);
    METRICS.session_slots.set(count(sessions));
    METRICS.resolution_slots.set(count(resolutions));
}

/// Result batches waiting for an acknowledgement.
pub fn uplink_depth(batches: usize) {
    METRICS
        .uplink_depth
        .set(i64::try_from(batches).unwrap_or(i64::MAX));
}

/// A batch will be sent again after a failed report.
pub fn uplink_resend() {
    METRICS.uplink_resends.inc();
}

/// The egress check ran: `None` when none was configured.
pub fn egress(ok: Option<bool>) {
    let state = match ok {
        Some(true) => 1,
        Some(false) => 2,
        None => 3,
    };
    EGRESS.store(state, Ordering::SeqCst);
}

/// The worker is (or is no longer) registered with its coordinator.
pub fn registered(yes: bool) {
    METRICS.registered.set(i64::from(yes));
}

/// Ready: registered, and the egress check ran and did not fail.
fn readiness() -> Result<(), String> {
    match EGRESS_STATES[usize::from(EGRESS.load(Ordering::SeqCst))] {
        "pending" => return Err("the egress check has not run yet".into()),
        "blocked" => return Err("the port-25 egress check failed".into()),
        _ => {}
    }
    if METRICS.registered.get() == 0 {
        return Err("not registered with the coordinator".into());
    }
    Ok(())
}

/// Register the worker's families and readiness in `ops`.
pub fn register(ops: &mut Ops) {
    let m = &*METRICS;
    let r = ops.registry();
    r.register(
        "mxscope_worker_sessions_in_flight",
        "SMTP sessions (target probes) running now, each holding one of the --concurrency session permits",
        m.sessions_in_flight.clone(),
    );
    r.register(
        "mxscope_worker_session_slots",
        "Most SMTP sessions at once (--concurrency)",
        m.session_slots.clone(),
    );
    r.register(
        "mxscope_worker_resolutions_in_flight",
        "Domain resolutions running now",
        m.resolutions_in_flight.clone(),
    );
    r.register(
        "mxscope_worker_resolution_slots",
        "Most domain resolutions at once (--dns-concurrency)",
        m.resolution_slots.clone(),
    );
    r.register(
        "mxscope_worker_probes",
        "Targets probed, by outcome and the phase the session ended in",
        m.probes.clone(),
    );
    r.register(
        "mxscope_worker_phase_duration_seconds",
        "Time spent per SMTP session phase (session: the whole session)",
        m.phase_seconds.clone(),
    );
    r.register(
        "mxscope_worker_dns_lookups",
        "Domains resolved, by DNS status",
        m.dns_lookups.clone(),
    );
    for reason in DROP_REASONS {
        let _ = m.dns_dropped.get_or_create(&ReasonLabel { reason });
    }
    r.register(
        "mxscope_worker_dns_answers_dropped",
        "DNS answers dropped because they matched no query sent: unexpected_id (no query waits for that ID: a guess, or too late), wrong_server (another address or port than asked), wrong_question, malformed",
        m.dns_dropped.clone(),
    );
    r.register(
        "mxscope_worker_uplink_queue_depth",
        "Result batches waiting for the coordinator's acknowledgement",
        m.uplink_depth.clone(),
    );
    r.register(
        "mxscope_worker_uplink_resends",
        "Result batches sent again after a failed report",
        m.uplink_resends.clone(),
    );
    r.register(
        "mxscope_worker_egress_check",
        "Port-25 egress check: 1 for the current state (pending, ok, blocked, unchecked)",
        m.egress.clone(),
    );
    // Both results exist from the start (0), so a dashboard shows them.
    for result in RETRY_RESULTS {
        let _ = m.retried.get_or_create(&ResultLabel { result });
    }
    r.register(
        "mxscope_worker_retried_targets",
        "Targets probed again after a rate-limit answer (421, 4xx, a reset before the greeting): recovered, or still limited when the attempts ran out",
        m.retried.clone(),
    );
    r.register(
        "mxscope_worker_registered",
        "1 while registered with the coordinator",
        m.registered.clone(),
    );
    ops.ready_when(readiness);
    ops.on_scrape(|| {
        let current = usize::from(EGRESS.load(Ordering::SeqCst));
        for (i, state) in EGRESS_STATES.iter().enumerate() {
            METRICS
                .egress
                .get_or_create(&StateLabel { state })
                .set(i64::from(i == current));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxscope_common::{Outcome, Phase};

    #[test]
    fn probes_are_counted_by_outcome_and_phase_without_addresses() {
        let mut record = TargetRecord::new("192.0.2.7".parse().unwrap(), 25, vec!["mx".into()]);
        record.outcome = Outcome::NoStarttls;
        record.phase = Phase::Ehlo;
        record.timings_ms.connect = Some(12);
        record.timings_ms.total = 40;
        target_record(&record);
        let mut ops = Ops::new();
        register(&mut ops);
        let text = ops.encode();
        assert!(
            text.contains(r#"mxscope_worker_probes_total{outcome="no_starttls",phase="ehlo"}"#),
            "{text}"
        );
        assert!(text.contains(r#"phase="connect""#), "{text}");
        assert!(!text.contains("192.0.2.7"), "{text}");
    }
}
