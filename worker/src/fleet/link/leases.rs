//! The leases this worker holds: shared by the lease loop (adds), the
//! heartbeat (extends, learns of losses), the uplink (completes on the last
//! acknowledgement, loses on a stale epoch) and shutdown (releases).
//!
//! A lease is held from the moment it is leased until its task's last batch
//! is acknowledged, it is lost, or it is released. Losing a lease cancels the
//! task's work: another worker owns it now.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use tokio_util::sync::CancellationToken;

/// A task and the epoch this worker leased it with (the fencing token).
pub use mxscope_common::wire::task::Lease;

/// The held leases, by task id, each with the token that cancels its work.
#[derive(Debug, Default)]
pub struct LeaseTable {
    held: Mutex<HashMap<String, Held>>,
}

#[derive(Debug)]
struct Held {
    epoch: u64,
    cancel: CancellationToken,
    /// Its last batch (`task_complete`) is on its way: the coordinator may
    /// already have ended the task, so a heartbeat calling it lost is news
    /// of the completion, not of a loss.
    completing: bool,
}

impl LeaseTable {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Held>> {
        // A panic while holding this lock leaves a plain map behind: keep going.
        self.held
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Hold `lease`; the returned token is cancelled when the lease is lost.
    /// A newer epoch of the same task replaces (and cancels) an older one.
    pub fn hold(&self, lease: &Lease) -> CancellationToken {
        let cancel = CancellationToken::new();
        let previous = self.lock().insert(
            lease.task_id.clone(),
            Held {
                epoch: lease.epoch,
                cancel: cancel.clone(),
                completing: false,
            },
        );
        if let Some(previous) = previous {
            previous.cancel.cancel();
        }
        cancel
    }

    /// Whether `lease` (this task at this epoch) is still held.
    pub fn holds(&self, lease: &Lease) -> bool {
        self.lock()
            .get(&lease.task_id)
            .is_some_and(|held| held.epoch == lease.epoch)
    }

    /// The last batch of `lease` is being sent.
    pub fn completing(&self, lease: &Lease) {
        if let Some(held) = self.lock().get_mut(&lease.task_id) {
            if held.epoch == lease.epoch {
                held.completing = true;
            }
        }
    }

    /// Whether the last batch of `lease` is on its way.
    pub fn is_completing(&self, lease: &Lease) -> bool {
        self.lock()
            .get(&lease.task_id)
            .is_some_and(|held| held.epoch == lease.epoch && held.completing)
    }

    /// Stop holding `lease` without cancelling anything (its last batch was
    /// acknowledged, or it was released). False when it was not held.
    pub fn finish(&self, lease: &Lease) -> bool {
        self.take(lease).is_some()
    }

    /// The lease is lost: stop holding it and cancel its work. False when
    /// it was not held (already finished or lost).
    pub fn lose(&self, lease: &Lease) -> bool {
        match self.take(lease) {
            Some(held) => {
                held.cancel.cancel();
                true
            }
            None => false,
        }
    }

    fn take(&self, lease: &Lease) -> Option<Held> {
        let mut held = self.lock();
        if held.get(&lease.task_id)?.epoch != lease.epoch {
            return None;
        }
        held.remove(&lease.task_id)
    }

    /// Every held lease (for a heartbeat), sorted by task id.
    pub fn snapshot(&self) -> Vec<Lease> {
        let mut leases: Vec<Lease> = self
            .lock()
            .iter()
            .map(|(task_id, held)| Lease {
                task_id: task_id.clone(),
                epoch: held.epoch,
            })
            .collect();
        leases.sort_by(|a, b| a.task_id.cmp(&b.task_id));
        leases
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(task: &str, epoch: u64) -> Lease {
        Lease {
            task_id: task.into(),
            epoch,
        }
    }

    #[test]
    fn hold_finish_lose() {
        let table = LeaseTable::default();
        let a = table.hold(&lease("a", 1));
        let b = table.hold(&lease("b", 7));
        assert!(table.holds(&lease("a", 1)));
        assert!(!table.holds(&lease("a", 2)));
        assert_eq!(table.snapshot(), [lease("a", 1), lease("b", 7)]);

        // A stale epoch neither finishes nor loses the current lease.
        assert!(!table.lose(&lease("b", 6)));
        assert!(!b.is_cancelled());

        assert!(table.finish(&lease("a", 1)));
        assert!(!a.is_cancelled());
        assert!(!table.finish(&lease("a", 1)));

        assert!(table.lose(&lease("b", 7)));
        assert!(b.is_cancelled());
        assert!(table.is_empty());
    }

    #[test]
    fn a_lease_whose_last_batch_is_on_its_way_is_completing() {
        let table = LeaseTable::default();
        let a = lease("t1", 1);
        table.hold(&a);
        assert!(!table.is_completing(&a));
        table.completing(&lease("t1", 2));
        assert!(!table.is_completing(&a), "another epoch's");
        table.completing(&a);
        assert!(table.is_completing(&a));
        assert!(table.finish(&a));
        assert!(!table.is_completing(&a), "no longer held");
    }

    #[test]
    fn a_newer_epoch_cancels_the_older_work() {
        let table = LeaseTable::default();
        let old = table.hold(&lease("a", 1));
        let new = table.hold(&lease("a", 2));
        assert!(old.is_cancelled());
        assert!(!new.is_cancelled());
        assert_eq!(table.snapshot(), [lease("a", 2)]);
    }
}
