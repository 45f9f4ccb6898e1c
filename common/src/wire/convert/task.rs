//! The task, lease and batch messages of the worker service ⇄ the plain
//! types of [`crate::wire::task`], one conversion per message and direction.
//! `TryFrom` refuses what a side cannot use: a task without id or work,
//! with options no side may use, or with bad targets; a batch whose records
//! do not parse.

use crate::options::ScanOptions;
use crate::wire::proto;
use std::time::Duration;

use crate::wire::task::{
    Batch, EgressReport, ItemBudget, Lease, Registration, ReportedBatch, TaskSpec, Work,
    DEFAULT_HEARTBEAT,
};

use super::{
    records_from_json, target_to_proto, targets_from_proto, ConvertError, InvalidOptions,
    InvalidTargets,
};

/// Why a leased task cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task has no id; the coordinator is broken.
    #[error("task without id")]
    NoId,
    /// Neither resolve nor probe work; a newer coordinator may know more kinds.
    #[error("task without work (unknown kind?)")]
    NoWork,
    /// The scan's options are refused (the coordinator's own validator, run
    /// here again whatever the coordinator checked).
    #[error(transparent)]
    Options(#[from] InvalidOptions),
    /// A probe target is not an IP address, or appears twice.
    #[error(transparent)]
    Targets(#[from] InvalidTargets),
}

impl From<&EgressReport> for proto::EgressCheck {
    fn from(egress: &EgressReport) -> Self {
        Self {
            checked: egress.checked,
            ok: egress.ok,
            target: egress.target.clone(),
            detail: egress.detail.clone(),
        }
    }
}

impl From<proto::EgressCheck> for EgressReport {
    fn from(egress: proto::EgressCheck) -> Self {
        Self {
            checked: egress.checked,
            ok: egress.ok,
            target: egress.target,
            detail: egress.detail,
        }
    }
}

impl From<&Registration> for proto::RegisterResponse {
    fn from(registration: &Registration) -> Self {
        let ms = |d: Duration| u32::try_from(d.as_millis()).unwrap_or(u32::MAX);
        Self {
            heartbeat_interval_ms: ms(registration.heartbeat_interval),
            lease_ttl_ms: ms(registration.lease_ttl),
        }
    }
}

impl From<proto::RegisterResponse> for Registration {
    /// A missing interval is [`DEFAULT_HEARTBEAT`]; any other is kept within
    /// 50 ms..10 min, whatever the coordinator says.
    fn from(reply: proto::RegisterResponse) -> Self {
        let heartbeat_interval = match reply.heartbeat_interval_ms {
            0 => DEFAULT_HEARTBEAT,
            ms => Duration::from_millis(u64::from(ms))
                .clamp(Duration::from_millis(50), Duration::from_secs(600)),
        };
        Self {
            heartbeat_interval,
            lease_ttl: Duration::from_millis(u64::from(reply.lease_ttl_ms)),
        }
    }
}

/// A lease call of `worker_id` at `vantage`: up to `max_tasks` tasks within
/// `budget`, held up to `wait` when none is pending. A split budget also
/// fills `max_items` with its sum, the one bound an older coordinator reads.
pub fn lease_request(
    worker_id: &str,
    vantage: &str,
    max_tasks: usize,
    budget: ItemBudget,
    wait: Duration,
) -> proto::LeaseRequest {
    let saturate = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
    let (max_items, slots) = match budget {
        ItemBudget::Shared(max) => (saturate(max), None),
        ItemBudget::Split {
            sessions,
            resolutions,
        } => (
            // Never 0 (= no bound) when a kind has room.
            saturate(sessions.saturating_add(resolutions)),
            Some(proto::SlotBudget {
                sessions: saturate(sessions),
                resolutions: saturate(resolutions),
            }),
        ),
    };
    proto::LeaseRequest {
        worker_id: worker_id.to_string(),
        vantage: vantage.to_string(),
        max_tasks: saturate(max_tasks),
        max_items,
        wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        slots,
    }
}

impl From<&proto::LeaseRequest> for ItemBudget {
    /// The slots by kind when the worker sent them, else its one bound.
    fn from(request: &proto::LeaseRequest) -> Self {
        match &request.slots {
            Some(slots) => Self::Split {
                sessions: slots.sessions as usize,
                resolutions: slots.resolutions as usize,
            },
            None => Self::Shared(request.max_items as usize),
        }
    }
}

impl From<proto::LeaseRef> for Lease {
    fn from(lease: proto::LeaseRef) -> Self {
        Self {
            task_id: lease.task_id,
            epoch: lease.epoch,
        }
    }
}

impl From<&Lease> for proto::LeaseRef {
    fn from(lease: &Lease) -> Self {
        Self {
            task_id: lease.task_id.clone(),
            epoch: lease.epoch,
        }
    }
}

impl From<&proto::Task> for Lease {
    /// The lease a task was handed out with (also of a task that cannot
    /// run, so that it can be released).
    fn from(task: &proto::Task) -> Self {
        Self {
            task_id: task.task_id.clone(),
            epoch: task.epoch,
        }
    }
}

impl TryFrom<proto::Task> for TaskSpec {
    type Error = TaskError;

    fn try_from(task: proto::Task) -> Result<Self, Self::Error> {
        if task.task_id.is_empty() {
            return Err(TaskError::NoId);
        }
        let lease = Lease::from(&task);
        let options = ScanOptions::try_from(task.options.unwrap_or_default())?;
        let work = match task.work {
            None => return Err(TaskError::NoWork),
            Some(proto::task::Work::Resolve(resolve)) => Work::Resolve {
                domains: resolve.domains,
            },
            Some(proto::task::Work::Probe(probe)) => Work::Probe {
                targets: targets_from_proto(probe.targets)?,
            },
        };
        Ok(Self {
            lease,
            scan_id: task.scan_id,
            vantage: task.vantage,
            options,
            work,
        })
    }
}

/// A leased task for the wire, its lease ending at `lease_deadline_unix_ms`.
pub fn task_to_proto(task: TaskSpec, lease_deadline_unix_ms: u64) -> proto::Task {
    let work = match task.work {
        Work::Resolve { domains } => proto::task::Work::Resolve(proto::ResolveWork { domains }),
        Work::Probe { targets } => proto::task::Work::Probe(proto::ProbeWork {
            targets: targets.into_iter().map(target_to_proto).collect(),
        }),
    };
    proto::Task {
        task_id: task.lease.task_id,
        epoch: task.lease.epoch,
        scan_id: task.scan_id,
        vantage: task.vantage,
        lease_deadline_unix_ms,
        options: Some((&task.options).into()),
        work: Some(work),
    }
}

/// A worker's batch for the wire.
pub fn batch_to_proto(worker_id: &str, batch: &Batch) -> proto::ResultBatch {
    proto::ResultBatch {
        worker_id: worker_id.to_string(),
        task_id: batch.lease.task_id.clone(),
        epoch: batch.lease.epoch,
        records_json: batch.records_json.clone(),
        task_complete: batch.task_complete,
    }
}

impl TryFrom<proto::ResultBatch> for ReportedBatch {
    type Error = ConvertError;

    fn try_from(batch: proto::ResultBatch) -> Result<Self, Self::Error> {
        Ok(Self {
            records: records_from_json(batch.records_json)?,
            worker_id: batch.worker_id,
            lease: Lease {
                task_id: batch.task_id,
                epoch: batch.epoch,
            },
            task_complete: batch.task_complete,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn registration_and_egress_round_trip() {
        let reg = Registration::from(proto::RegisterResponse {
            heartbeat_interval_ms: 0,
            lease_ttl_ms: 30_000,
        });
        assert_eq!(reg.heartbeat_interval, DEFAULT_HEARTBEAT);
        assert_eq!(reg.lease_ttl, Duration::from_secs(30));
        let fast = Registration::from(proto::RegisterResponse {
            heartbeat_interval_ms: 1,
            lease_ttl_ms: 0,
        });
        assert_eq!(
            fast.heartbeat_interval,
            Duration::from_millis(50),
            "clamped"
        );
        let sent = proto::RegisterResponse::from(&Registration {
            heartbeat_interval: Duration::from_secs(5),
            lease_ttl: Duration::from_secs(30),
        });
        assert_eq!(
            (sent.heartbeat_interval_ms, sent.lease_ttl_ms),
            (5_000, 30_000)
        );
        let egress = EgressReport {
            checked: true,
            ok: false,
            target: "192.0.2.1:25".into(),
            detail: "refused".into(),
        };
        let back = EgressReport::from(proto::EgressCheck::from(&egress));
        assert_eq!(back, egress);
        assert!(back.blocked());
        assert_eq!(back.verdict(), Some(false));
        assert_eq!(EgressReport::default().verdict(), None);
    }
    use crate::options::Timeouts;
    use crate::EhloName;

    fn probe_task(targets: &[&str]) -> proto::Task {
        proto::Task {
            task_id: "t1".into(),
            epoch: 4,
            scan_id: "s1".into(),
            vantage: "eu".into(),
            lease_deadline_unix_ms: 0,
            options: Some(proto::ProbeOptions {
                port: 2525,
                timeout_connect_ms: 1500,
                resolvers: vec!["127.0.0.1:5353".into()],
                allow_private: true,
                ..Default::default()
            }),
            work: Some(proto::task::Work::Probe(proto::ProbeWork {
                targets: targets
                    .iter()
                    .map(|ip| proto::ProbeTarget {
                        ip: ip.to_string(),
                        mx_names: vec!["mx.example".into()],
                    })
                    .collect(),
            })),
        }
    }

    #[test]
    fn task_from_the_wire() {
        let spec = TaskSpec::try_from(probe_task(&["127.0.0.1", "::1"])).unwrap();
        assert_eq!(
            spec.lease,
            Lease {
                task_id: "t1".into(),
                epoch: 4
            }
        );
        assert_eq!((spec.scan_id.as_str(), spec.vantage.as_str()), ("s1", "eu"));
        let Work::Probe { targets } = &spec.work else {
            panic!("not a probe task");
        };
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].ip, "::1".parse::<std::net::IpAddr>().unwrap());
        let options = &spec.options;
        assert_eq!(options.port, 2525);
        assert_eq!(options.timeouts().connect, Duration::from_millis(1500));
        assert_eq!(options.timeouts().session, Timeouts::default().session);
        assert_eq!(
            options.resolver_addrs().unwrap(),
            ["127.0.0.1:5353".parse().unwrap()]
        );
        assert_eq!(options.ca_pem, None);
        assert!(options.allow_private && !options.legacy);
        let name = options.ehlo_name_or(EhloName::from_hostname());
        assert!(!name.unwrap().as_str().is_empty());

        // And back, as the coordinator sends it.
        let wire = task_to_proto(spec.clone(), 1234);
        assert_eq!(wire.lease_deadline_unix_ms, 1234);
        assert_eq!(TaskSpec::try_from(wire), Ok(spec));
        let resolve = TaskSpec {
            work: Work::Resolve {
                domains: vec!["a.example".into()],
            },
            ..TaskSpec::try_from(probe_task(&[])).unwrap()
        };
        assert_eq!(
            TaskSpec::try_from(task_to_proto(resolve.clone(), 0)),
            Ok(resolve)
        );
    }

    #[test]
    fn malformed_tasks_are_refused() {
        let spec = |task| TaskSpec::try_from(task);
        assert_eq!(
            spec(probe_task(&["mx.example"])),
            Err(TaskError::Targets(InvalidTargets::Target(
                "mx.example".into()
            )))
        );
        assert_eq!(
            spec(probe_task(&["127.0.0.1", "127.0.0.1"])),
            Err(TaskError::Targets(InvalidTargets::DuplicateTarget(
                "127.0.0.1".into()
            )))
        );
        let mut no_work = probe_task(&[]);
        no_work.work = None;
        assert_eq!(spec(no_work), Err(TaskError::NoWork));
        let mut no_id = probe_task(&[]);
        no_id.task_id.clear();
        assert_eq!(spec(no_id), Err(TaskError::NoId));
        // A worker parses the options itself, whatever the coordinator
        // checked (the validator's cases are in `convert`'s tests).
        let mut smuggled = probe_task(&[]);
        smuggled.options = Some(proto::ProbeOptions {
            ehlo_name: "scanner.example\r\nMAIL FROM:<x@example.org>".into(),
            ..Default::default()
        });
        assert!(matches!(
            spec(smuggled),
            Err(TaskError::Options(InvalidOptions::EhloName { .. }))
        ));
        let mut port = probe_task(&[]);
        port.options = Some(proto::ProbeOptions {
            port: 70_000,
            ..Default::default()
        });
        assert_eq!(
            spec(port),
            Err(TaskError::Options(InvalidOptions::Port(70_000)))
        );
    }

    #[test]
    fn lease_budgets_to_and_from_the_wire() {
        let wait = Duration::from_millis(2500);
        let split = ItemBudget::Split {
            sessions: 0,
            resolutions: 300,
        };
        let request = lease_request("w1", "eu", 64, split, wait);
        assert_eq!((request.max_tasks, request.wait_ms), (64, 2500));
        assert_eq!(ItemBudget::from(&request), split, "a kind at 0 stays 0");
        // An older coordinator reads only max_items: the sum, never 0 (= no bound).
        assert_eq!(request.max_items, 300);
        let shared = lease_request("w1", "eu", 8, ItemBudget::Shared(40), wait);
        assert_eq!((shared.max_items, shared.slots), (40, None));
        assert_eq!(ItemBudget::from(&shared), ItemBudget::Shared(40));
        let huge = ItemBudget::Split {
            sessions: usize::MAX,
            resolutions: 1,
        };
        assert_eq!(lease_request("w", "v", 1, huge, wait).max_items, u32::MAX);
    }

    #[test]
    fn leases_and_batches_to_and_from_the_wire() {
        let lease = Lease {
            task_id: "t".into(),
            epoch: 2,
        };
        assert_eq!(Lease::from(proto::LeaseRef::from(&lease)), lease);
        assert_eq!(lease.to_string(), "t@2");

        let batch = Batch {
            lease: lease.clone(),
            records_json: vec![crate::Record::Target(crate::TargetRecord::new(
                "192.0.2.1".parse().unwrap(),
                25,
                vec![],
            ))
            .to_json()],
            task_complete: true,
        };
        let wire = batch_to_proto("w1", &batch);
        assert_eq!(
            (wire.worker_id.as_str(), wire.task_id.as_str(), wire.epoch),
            ("w1", "t", 2)
        );
        assert!(wire.task_complete);
        assert_eq!(wire.records_json, batch.records_json);
        let got = ReportedBatch::try_from(wire.clone()).unwrap();
        assert_eq!((got.worker_id.as_str(), &got.lease), ("w1", &lease));
        assert_eq!(got.records.len(), 1);
        assert!(got.task_complete);

        let mut bad = wire;
        bad.records_json.push("{}".into());
        assert!(matches!(
            ReportedBatch::try_from(bad),
            Err(ConvertError::Record { index: 1, .. })
        ));
    }
}
