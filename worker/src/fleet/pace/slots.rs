//! Slots: the unit of concurrency of a worker (DESIGN §8), of two kinds
//! ([`SlotKind`]): an SMTP session per target of a probe task, a
//! resolution per domain of a resolve task. Each kind is a [`Pool`]:
//! what runs at once (its permits: `--concurrency` sessions,
//! `--dns-concurrency` resolutions) and what is leased (its slots).
//!
//! Every leased item holds one slot of its kind from the moment its task is
//! leased until the item ends; a task whose slowest target is still running
//! holds one slot, not the task's size. The lease loop asks the coordinator
//! for as many items of each kind as there are free slots of that kind, and
//! wakes when slots are freed. The kinds are apart so that resolving, from
//! which the coordinator plans probe tasks, never waits for a busy session:
//! with one pool the sessions took every slot, resolve tasks were leased
//! only when no probe task was pending, and fast scans ran out of targets.
//! A pool has one slot per permit plus a backlog ([`backlog`]): items
//! leased ahead, so that an item that ends finds its successor already
//! here instead of waiting for a lease round trip. Slots may be
//! overcommitted by at most one task (a task is leased whole); the permits
//! bound what runs at once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use mxscope_common::wire::task::SlotKind;
use tokio::sync::{Notify, Semaphore};

/// Items leased ahead of the permits that will run them: a quarter of
/// `concurrency`, at least one probe task's worth (32).
pub fn backlog(concurrency: usize) -> usize {
    (concurrency / 4).max(32)
}

/// One kind of slot: `concurrency` permits (what runs at once) and
/// `concurrency` + [`backlog`] slots (what is leased).
#[derive(Debug, Clone)]
pub struct Pool {
    pub kind: SlotKind,
    pub permits: Arc<Semaphore>,
    pub slots: Arc<Slots>,
}

impl Pool {
    pub fn new(kind: SlotKind, concurrency: usize) -> Self {
        let concurrency = concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            kind,
            permits: Arc::new(Semaphore::new(concurrency)),
            slots: Slots::new(concurrency + backlog(concurrency)),
        }
    }
}

/// The slots of one kind: `capacity` = its concurrency plus [`backlog`].
#[derive(Debug)]
pub struct Slots {
    capacity: usize,
    outstanding: AtomicUsize,
    freed: Notify,
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            capacity: capacity.max(1),
            outstanding: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Items leased and not yet ended.
    pub fn outstanding(&self) -> usize {
        self.outstanding.load(Ordering::Acquire)
    }

    /// Slots nobody holds.
    pub fn free(&self) -> usize {
        self.capacity.saturating_sub(self.outstanding())
    }

    /// Hold `items` slots for a task just leased.
    pub fn claim(self: &Arc<Self>, items: usize) -> Claim {
        self.outstanding.fetch_add(items, Ordering::AcqRel);
        Claim {
            slots: self.clone(),
            held: items,
        }
    }

    /// Resolves after some slots were freed (a permit is stored, so a
    /// release between two waits is not missed).
    pub async fn freed(&self) {
        self.freed.notified().await;
    }

    /// An item waits (for a retry) without needing a slot: free it.
    pub fn park(&self) {
        self.release(1);
    }

    /// A parked item runs again: hold its slot again.
    pub fn unpark(&self) {
        self.outstanding.fetch_add(1, Ordering::AcqRel);
    }

    fn release(&self, items: usize) {
        if items == 0 {
            return;
        }
        // Never below zero, whatever the callers do.
        let _ = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(items))
            });
        self.freed.notify_one();
    }
}

/// The slots one task holds; whatever is left is freed when it is dropped
/// (task finished, cancelled or failed).
#[derive(Debug)]
pub struct Claim {
    slots: Arc<Slots>,
    held: usize,
}

impl Claim {
    /// One item ended: free its slot.
    pub fn release_one(&mut self) {
        if self.held > 0 {
            self.held -= 1;
            self.slots.release(1);
        }
    }

    pub fn held(&self) -> usize {
        self.held
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        self.slots.release(self.held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_free_slots_one_by_one() {
        let slots = Slots::new(10);
        let mut a = slots.claim(4);
        let b = slots.claim(8);
        assert_eq!(slots.outstanding(), 12);
        assert_eq!(slots.free(), 0, "overcommitted: nothing free");
        a.release_one();
        a.release_one();
        assert_eq!(slots.outstanding(), 10);
        // The stored permit wakes a waiter that comes later.
        tokio::time::timeout(std::time::Duration::from_secs(1), slots.freed())
            .await
            .unwrap();
        drop(b);
        assert_eq!(slots.free(), 8);
        // A parked item frees its slot until it runs again.
        slots.park();
        assert_eq!(slots.free(), 9);
        slots.unpark();
        assert_eq!(a.held(), 2);
        drop(a);
        assert_eq!(slots.outstanding(), 0);
        assert_eq!(slots.free(), 10);
    }
}
