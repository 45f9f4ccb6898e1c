//! The lease calls of one kind of slot (sessions, resolutions): when to
//! ask, for how much, and what an answer means for the next call.
//!
//! Each kind has at most one call on its way, for its own free slots only,
//! and that call may wait at the coordinator until work of its kind appears
//! (long poll). So a kind with nothing to do never holds back the other: a
//! resolution call waiting at the end of the DNS phase does not stop freed
//! sessions from being refilled, and busy sessions never stop resolving.

use std::time::Duration;

use mxscope_common::wire::task::{ItemBudget, SlotKind};
use tokio::time::Instant;

use crate::fleet::link::backoff::{self, Backoff};
use crate::fleet::pace::slots::Pool;

/// How long the coordinator may hold a lease call that finds no task
/// (long poll): it answers as soon as tasks are planned or freed, so free
/// slots learn of new work at once, not at the next poll.
pub const LEASE_WAIT: Duration = Duration::from_secs(2);
/// Poll when a coordinator answered empty at once (one that does not hold calls).
pub const IDLE_POLL: (Duration, Duration) = (Duration::from_millis(500), Duration::from_secs(1));

/// How a lease call of a kind ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// Tasks came.
    Leased,
    /// Nothing, after the coordinator held the call: ask again at once (it
    /// answers when work does).
    EmptyAfterWait,
    /// Nothing, at once: a coordinator that does not hold calls; poll.
    EmptyAtOnce,
    /// The call failed: back off.
    Failed,
}

impl Answer {
    /// An empty answer after `waited`: held by the coordinator, or not.
    pub fn empty(waited: Duration) -> Self {
        if waited >= LEASE_WAIT / 2 {
            Self::EmptyAfterWait
        } else {
            Self::EmptyAtOnce
        }
    }
}

/// One kind's lease-call state.
#[derive(Debug)]
pub struct Asker {
    pool: Pool,
    threshold: usize,
    /// A call of this kind is on its way.
    calling: bool,
    /// Ask with any free slot, not only a threshold's worth (the idle timer
    /// fired, or the last call came back empty).
    eager: bool,
    /// Ask no earlier than this (a poll, or a backoff after a failure).
    not_before: Option<Instant>,
    backoff: Backoff,
}

impl Asker {
    pub fn new(pool: Pool) -> Self {
        Self {
            threshold: pool.slots.threshold(),
            pool,
            calling: false,
            eager: true,
            not_before: None,
            backoff: Backoff::default(),
        }
    }

    pub fn kind(&self) -> SlotKind {
        self.pool.kind
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// The budget of a call due at `now` (this kind's free slots, none of
    /// the other kind's), or `None` when no call is due.
    pub fn due(&self, now: Instant) -> Option<ItemBudget> {
        if self.calling || self.not_before.is_some_and(|at| now < at) {
            return None;
        }
        let free = self.pool.slots.free();
        if free == 0 || (free < self.threshold && !self.eager) {
            return None;
        }
        Some(match self.pool.kind {
            SlotKind::Session => ItemBudget::Split {
                sessions: free,
                resolutions: 0,
            },
            SlotKind::Resolution => ItemBudget::Split {
                sessions: 0,
                resolutions: free,
            },
        })
    }

    /// A call was made.
    pub fn calling(&mut self) {
        self.calling = true;
    }

    /// Whether freed slots should wake the loop: no call on its way and no
    /// poll or backoff to wait for (there is work to be had).
    pub fn wakes_on_free(&self) -> bool {
        !self.calling && self.not_before.is_none()
    }

    /// When the loop must look again for this kind without a wake-up.
    pub fn not_before(&self) -> Option<Instant> {
        self.not_before.filter(|_| !self.calling)
    }

    /// The idle timer fired at `now`: ask with any free slot, and end a
    /// poll or backoff that is over.
    pub fn timer(&mut self, now: Instant) {
        if self.not_before.is_some_and(|at| now >= at) {
            self.not_before = None;
        }
        self.eager = true;
    }

    /// The call ended with `answer` at `now`; the failures so far.
    pub fn answered(&mut self, answer: Answer, now: Instant) -> u32 {
        self.calling = false;
        match answer {
            Answer::Leased => {
                self.backoff.reset();
                // More may be pending: a threshold's worth of free slots asks again.
                self.eager = false;
                self.not_before = None;
            }
            Answer::EmptyAfterWait => {
                self.backoff.reset();
                self.eager = true;
                self.not_before = None;
            }
            Answer::EmptyAtOnce => {
                self.backoff.reset();
                self.eager = true;
                self.not_before = Some(now + backoff::between(IDLE_POLL.0, IDLE_POLL.1));
            }
            Answer::Failed => {
                self.eager = true;
                self.not_before = Some(now + self.backoff.next_delay());
            }
        }
        self.backoff.failures()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(sessions: usize, resolutions: usize) -> Option<ItemBudget> {
        Some(ItemBudget::Split {
            sessions,
            resolutions,
        })
    }

    #[tokio::test(start_paused = true)]
    async fn each_kind_asks_for_its_own_free_slots_one_call_at_a_time() {
        // 64 sessions: 64 + 32 backlog = 96 slots, threshold 6.
        let mut sessions = Asker::new(Pool::new(SlotKind::Session, 64));
        let resolutions = Asker::new(Pool::new(SlotKind::Resolution, 256));
        let now = Instant::now();
        assert_eq!(sessions.due(now), split(96, 0));
        assert_eq!(resolutions.due(now), split(0, 320));
        sessions.calling();
        assert_eq!(sessions.due(now), None, "one call of a kind at a time");
        assert!(!sessions.wakes_on_free());
        assert_eq!(
            resolutions.due(now),
            split(0, 320),
            "the other kind asks anyway"
        );

        // Leased nearly full: below the threshold, no call until slots free up.
        let claim = sessions.pool().slots.claim(92);
        sessions.answered(Answer::Leased, now);
        assert_eq!(sessions.due(now), None, "4 free < threshold 6");
        assert!(sessions.wakes_on_free());
        sessions.timer(now);
        assert_eq!(
            sessions.due(now),
            split(4, 0),
            "the idle timer asks for what is free"
        );
        drop(claim);
    }

    #[tokio::test(start_paused = true)]
    async fn empty_answers_ask_again_or_poll_and_failures_back_off() {
        let mut asker = Asker::new(Pool::new(SlotKind::Resolution, 16));
        let now = Instant::now();
        asker.calling();
        asker.answered(Answer::empty(LEASE_WAIT), now);
        assert!(
            asker.due(now).is_some(),
            "held and empty: ask again at once"
        );

        asker.calling();
        asker.answered(Answer::empty(Duration::from_millis(3)), now);
        assert_eq!(asker.due(now), None, "empty at once: poll");
        assert!(!asker.wakes_on_free());
        let poll = asker.not_before().unwrap();
        assert!(poll >= now + IDLE_POLL.0 && poll <= now + IDLE_POLL.1);
        asker.timer(poll);
        assert!(asker.due(poll).is_some());

        asker.calling();
        assert_eq!(asker.answered(Answer::Failed, poll), 1);
        assert_eq!(asker.due(poll), None, "backing off");
        let retry = asker.not_before().unwrap();
        asker.calling();
        assert_eq!(asker.answered(Answer::Failed, retry), 2);
        assert!(
            asker.not_before().unwrap() - retry >= backoff::BASE,
            "the second delay is at least the base"
        );
        asker.calling();
        assert_eq!(asker.answered(Answer::Leased, retry), 0, "a success resets");
    }
}
