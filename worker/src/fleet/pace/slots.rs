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
    /// Free slots worth a lease call ([`lease_threshold`]).
    threshold: usize,
    outstanding: AtomicUsize,
    freed: Notify,
}

/// Free slots worth a lease call: about a probe task's worth, less for a
/// small pool, so that finishing items one by one does not turn into one
/// lease call each.
fn lease_threshold(slots: usize) -> usize {
    (slots / 16).clamp(1, 32)
}

impl Slots {
    pub fn new(capacity: usize) -> Arc<Self> {
        let capacity = capacity.max(1);
        Arc::new(Self {
            capacity,
            threshold: lease_threshold(capacity),
            outstanding: AtomicUsize::new(0),
            freed: Notify::new(),
        })
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Free slots worth a lease call.
    pub fn threshold(&self) -> usize {
        self.threshold
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

    /// Resolves after the free slots reached one of the marks the lease
    /// loop acts on: the first free slot (a loop that asks with any) or
    /// [`Self::threshold`]. A permit is stored, so a release between two
    /// waits is not missed.
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
        let before = self
            .outstanding
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                Some(n.saturating_sub(items))
            })
            .unwrap_or_else(|n| n);
        let free_before = self.capacity.saturating_sub(before);
        let free_after = self.capacity.saturating_sub(before.saturating_sub(items));
        // Only a mark wakes the lease loop: a wake-up per item ended was a
        // thread switch per resolved domain, for a loop with nothing to do.
        let reached = |mark: usize| free_before < mark && free_after >= mark;
        if reached(1) || reached(self.threshold) {
            self.freed.notify_one();
        }
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
        assert!(!woken(&slots).await, "still nothing free: nothing to ask");
        drop(b);
        assert_eq!(slots.free(), 8);
        // The stored permit wakes a waiter that comes later.
        assert!(woken(&slots).await);
        // A parked item frees its slot until it runs again.
        slots.park();
        assert_eq!(slots.free(), 9);
        slots.unpark();
        assert_eq!(a.held(), 2);
        drop(a);
        assert_eq!(slots.outstanding(), 0);
        assert_eq!(slots.free(), 10);
    }

    /// Whether a waiter of [`Slots::freed`] is woken now (a stored permit).
    async fn woken(slots: &Slots) -> bool {
        tokio::time::timeout(std::time::Duration::from_millis(10), slots.freed())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn only_the_first_free_slot_and_a_lease_worth_wake_the_lease_loop() {
        let slots = Slots::new(160);
        assert_eq!(slots.threshold(), 10);
        let mut claim = slots.claim(160);
        claim.release_one();
        assert!(woken(&slots).await, "the first free slot");
        for _ in 0..8 {
            claim.release_one();
        }
        assert_eq!(slots.free(), 9);
        assert!(!woken(&slots).await, "2 to 9 free: no wake-up each");
        claim.release_one();
        assert!(woken(&slots).await, "a lease's worth");
        claim.release_one();
        assert!(!woken(&slots).await, "past the threshold: nothing new");
        // A task's end frees many at once: crossing the threshold wakes.
        let other = slots.claim(20);
        assert_eq!(slots.free(), 0);
        drop(other);
        assert!(woken(&slots).await);
        assert!(!woken(&slots).await, "one permit, not one per mark");
    }
}
