//! The open-file limit against `--concurrency`: every SMTP session is a
//! socket, so a worker checks `RLIMIT_NOFILE` at start, raises its soft
//! limit up to the hard one when needed, and says how many sessions it can
//! really hold open.

/// File descriptors kept for everything but sessions (gRPC, DNS sockets,
/// the store, logs, the runtime).
pub const RESERVED_FDS: u64 = 256;

/// What the open-file limit allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FdBudget {
    /// The soft limit before the check.
    pub soft_before: u64,
    /// The soft limit now (raised when it was too low and the hard limit allowed).
    pub soft: u64,
    pub hard: u64,
    /// Sessions that fit: the requested concurrency, or less when the hard
    /// limit is too low.
    pub reachable: usize,
}

impl FdBudget {
    /// Whether the requested concurrency had to be reduced.
    pub fn limited(&self, requested: usize) -> bool {
        self.reachable < requested
    }
}

/// What `requested` sessions need, given the limits `(soft, hard)`: the
/// soft limit to set and the sessions that then fit.
pub fn plan(requested: usize, soft: u64, hard: u64) -> (u64, usize) {
    let needed = (requested as u64).saturating_add(RESERVED_FDS);
    let soft_after = if soft >= needed {
        soft
    } else {
        needed.min(hard).max(soft)
    };
    let room = soft_after.saturating_sub(RESERVED_FDS);
    let reachable = usize::try_from(room).unwrap_or(usize::MAX).min(requested);
    (soft_after, reachable.max(1))
}

/// Check (and raise when needed) this process's open-file limit for
/// `requested` sessions. `None` when the limit cannot be read.
pub fn ensure_open_files(requested: usize) -> Option<FdBudget> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own; no other memory is touched.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    let (soft, hard) = (limit.rlim_cur, limit.rlim_max);
    let (wanted, _) = plan(requested, soft, hard);
    let mut now = soft;
    if wanted > soft {
        let raised = libc::rlimit {
            rlim_cur: wanted,
            rlim_max: hard,
        };
        // SAFETY: setrlimit reads the struct we own.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            now = wanted;
        }
    }
    let (_, reachable) = plan(requested, now, now);
    Some(FdBudget {
        soft_before: soft,
        soft: now,
        hard,
        reachable,
    })
}

/// `sessions` and `resolutions` wanted, `reachable` descriptors' worth
/// granted: what each kind gets. Resolutions keep at most a quarter of a
/// short budget (at least one), sessions the rest (at least one).
pub fn split_reachable(sessions: usize, resolutions: usize, reachable: usize) -> (usize, usize) {
    if sessions.saturating_add(resolutions) <= reachable {
        return (sessions, resolutions);
    }
    let resolutions = resolutions.min((reachable / 4).max(1));
    (
        reachable
            .saturating_sub(resolutions)
            .clamp(1, sessions.max(1)),
        resolutions,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_budget_is_shared_between_the_kinds() {
        assert_eq!(
            split_reachable(1000, 256, 20_000),
            (1000, 256),
            "enough for both"
        );
        assert_eq!(split_reachable(1000, 256, 1000), (750, 250));
        assert_eq!(
            split_reachable(1000, 100, 1000),
            (900, 100),
            "few resolutions keep theirs"
        );
        assert_eq!(split_reachable(10, 256, 2), (1, 1), "at least one of each");
    }

    #[test]
    fn raise_to_what_is_needed_within_the_hard_limit() {
        // Enough already: nothing changes.
        assert_eq!(plan(1000, 65536, 65536), (65536, 1000));
        // Too low soft limit, generous hard one: raised to what is needed.
        assert_eq!(plan(5000, 1024, 1 << 20), (5256, 5000));
        // The hard limit caps it: fewer sessions fit.
        assert_eq!(plan(5000, 1024, 4096), (4096, 4096 - 256));
        // Never below one session, never lowered.
        assert_eq!(plan(10, 100, 100), (100, 1));
    }

    #[test]
    fn this_process_can_hold_a_few_sessions() {
        let budget = ensure_open_files(16).unwrap();
        assert!(budget.soft >= budget.soft_before);
        assert!(budget.reachable >= 1 && budget.reachable <= 16);
    }
}
