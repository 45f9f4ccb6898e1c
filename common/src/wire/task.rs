//! The plain types of the coordinator ⇄ worker contract (DESIGN §3) that
//! both sides speak: a lease and its fencing epoch ([`Lease`]), a leased
//! task as the worker runs it ([`TaskSpec`], [`Work`]), a batch of its
//! results on the way up ([`Batch`]) and as the coordinator receives it
//! ([`ReportedBatch`]), a worker's egress self-check ([`EgressReport`]),
//! what registering tells it ([`Registration`]) and what a lease call may
//! hand out ([`ItemBudget`]). Their wire conversions are
//! in [`crate::wire::convert::task`], one per message.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use crate::options::ScanOptions;
use crate::record::{Delivered, Record};

/// A task and the epoch it was leased with (the fencing token).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    pub task_id: String,
    pub epoch: u64,
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.task_id, self.epoch)
    }
}

/// A leased task, converted from the wire and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSpec {
    pub lease: Lease,
    pub scan_id: String,
    pub vantage: String,
    pub options: ScanOptions,
    pub work: Work,
}

/// What a task asks for: one vocabulary for the coordinator (which stores
/// it as its task's `kind`, in this serde form) and the worker.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Work {
    /// Resolve these domains (A-labels): one domain record each.
    Resolve { domains: Vec<String> },
    /// Probe these distinct IPs: one target record each.
    Probe { targets: Vec<Target> },
}

/// One IP to probe, with every MX name known to point at it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Target {
    pub ip: IpAddr,
    pub mx_names: Vec<String>,
}

impl Work {
    pub fn len(&self) -> usize {
        match self {
            Self::Resolve { domains } => domains.len(),
            Self::Probe { targets } => targets.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `resolve` or `probe` (logs and metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Resolve { .. } => "resolve",
            Self::Probe { .. } => "probe",
        }
    }

    /// The slots its items hold on a worker.
    pub fn slot_kind(&self) -> SlotKind {
        match self {
            Self::Resolve { .. } => SlotKind::Resolution,
            Self::Probe { .. } => SlotKind::Session,
        }
    }
}

/// A worker's two kinds of slots: an SMTP session per target of a probe
/// task, a resolution per domain of a resolve task. They are counted apart,
/// so that resolving (which plans the next probe tasks) never waits behind
/// busy sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SlotKind {
    Session,
    Resolution,
}

/// How many items a lease call may hand out: the worker's free slots.
/// Tasks are leased whole, so a kind's bound may be passed by its last task.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemBudget {
    /// One bound for the items of every kind (a worker that does not count
    /// its slots apart); 0 = no bound.
    Shared(usize),
    /// Free slots by kind; a kind at 0 gets no task.
    Split { sessions: usize, resolutions: usize },
}

impl ItemBudget {
    /// Whether another task of `kind` may be leased after `taken` (items
    /// leased so far in this call, by kind).
    pub fn allows(&self, kind: SlotKind, taken: &ItemsTaken) -> bool {
        match *self {
            Self::Shared(0) => true,
            Self::Shared(max) => taken.sessions + taken.resolutions < max,
            Self::Split {
                sessions,
                resolutions,
            } => match kind {
                SlotKind::Session => taken.sessions < sessions,
                SlotKind::Resolution => taken.resolutions < resolutions,
            },
        }
    }

    /// Whether no task of any kind may be leased after `taken`.
    pub fn exhausted(&self, taken: &ItemsTaken) -> bool {
        !self.allows(SlotKind::Session, taken) && !self.allows(SlotKind::Resolution, taken)
    }
}

/// Items leased so far in one lease call, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ItemsTaken {
    pub sessions: usize,
    pub resolutions: usize,
}

impl ItemsTaken {
    pub fn add(&mut self, kind: SlotKind, items: usize) {
        match kind {
            SlotKind::Session => self.sessions += items,
            SlotKind::Resolution => self.resolutions += items,
        }
    }

    /// Items of both kinds.
    pub fn total(&self) -> usize {
        self.sessions + self.resolutions
    }
}

/// A batch of one task's records, serialized as DESIGN §5 JSON, as a
/// worker sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    pub lease: Lease,
    pub records_json: Vec<String>,
    /// The task's last batch: the task is done once this is acknowledged.
    pub task_complete: bool,
}

/// A batch as the coordinator receives it: its records parsed, each with
/// the text it came as (stored as it is).
#[derive(Debug, Clone, PartialEq)]
pub struct ReportedBatch {
    pub worker_id: String,
    pub lease: Lease,
    pub records: Vec<Delivered<Record>>,
    /// The task's last batch.
    pub task_complete: bool,
}

/// A worker's port-25 egress self-check, as it reports it when registering.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EgressReport {
    /// False when no check was configured: the vantage is trusted.
    pub checked: bool,
    pub ok: bool,
    /// The HOST:PORT that was tried.
    pub target: String,
    pub detail: String,
}

impl EgressReport {
    /// Whether probe targets must be skipped (checked and failed).
    pub fn blocked(&self) -> bool {
        self.checked && !self.ok
    }

    /// The check's verdict: `None` when there was no check.
    pub fn verdict(&self) -> Option<bool> {
        self.checked.then_some(self.ok)
    }
}

/// What the coordinator tells a worker that registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    /// How often the worker extends its leases.
    pub heartbeat_interval: Duration,
    /// How long a lease lives without a heartbeat.
    pub lease_ttl: Duration,
}

/// The heartbeat interval of a worker whose coordinator names none.
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_bound_each_kind_or_both() {
        let mut taken = ItemsTaken::default();
        let split = ItemBudget::Split {
            sessions: 0,
            resolutions: 300,
        };
        assert!(!split.allows(SlotKind::Session, &taken), "no free session");
        assert!(split.allows(SlotKind::Resolution, &taken));
        taken.add(SlotKind::Resolution, 250);
        assert!(split.allows(SlotKind::Resolution, &taken), "50 left");
        taken.add(SlotKind::Resolution, 250);
        assert!(
            split.exhausted(&taken),
            "passed by its last task, then full"
        );

        let shared = ItemBudget::Shared(40);
        let mut taken = ItemsTaken::default();
        taken.add(SlotKind::Session, 32);
        assert!(shared.allows(SlotKind::Resolution, &taken));
        taken.add(SlotKind::Resolution, 8);
        assert!(shared.exhausted(&taken), "one bound for both kinds");
        assert!(!ItemBudget::Shared(0).exhausted(&taken), "0 = no bound");
    }

    /// A coordinator stores its tasks' work in this form; stores written
    /// before `Work` replaced the coordinator's own `TaskKind` hold these
    /// exact bytes.
    #[test]
    fn work_is_stored_in_the_form_the_coordinator_always_wrote() {
        let resolve = Work::Resolve {
            domains: vec!["a.example".into()],
        };
        let probe = Work::Probe {
            targets: vec![Target {
                ip: "192.0.2.1".parse().expect("an address"),
                mx_names: vec!["mx.example".into()],
            }],
        };
        for (work, stored) in [
            (resolve, r#"{"resolve":{"domains":["a.example"]}}"#),
            (
                probe,
                r#"{"probe":{"targets":[{"ip":"192.0.2.1","mx_names":["mx.example"]}]}}"#,
            ),
        ] {
            assert_eq!(serde_json::to_string(&work).expect("encodes"), stored);
            assert_eq!(serde_json::from_str::<Work>(stored).expect("decodes"), work);
        }
    }
}
