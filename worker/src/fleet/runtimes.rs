//! Where the fleet's tasks run: a runtime of their own for resolutions
//! beside the sessions', and the open-file limit both kinds of slot need.

use mxscope_common::wire::task::SlotKind;
use tracing::{info, warn};

/// Threads that resolve: a quarter of the cores, at least two (one on a
/// one-core machine). Resolving costs about a third of the CPU of probing a
/// domain's MX (hickory's lookups against a TLS handshake), so this keeps it
/// ahead of the sessions. At least two: a national list is mostly
/// resolution, and one thread was its critical path on two cores (runnable
/// all the scan, a quarter of it waiting for a core behind the
/// coordinator); two took a million domains from 19.1–19.9 s to 17.4–17.5 s
/// (docs/benchmarks.md, `national`).
pub(super) fn dns_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| threads_for(n.get()))
}

fn threads_for(cores: usize) -> usize {
    (cores / 4).max(2).min(cores)
}

/// Where each kind of task runs.
#[derive(Debug, Clone)]
pub(super) struct TaskRuntimes {
    pub(super) sessions: tokio::runtime::Handle,
    pub(super) resolutions: tokio::runtime::Handle,
}

impl TaskRuntimes {
    pub(super) fn of(&self, kind: SlotKind) -> &tokio::runtime::Handle {
        match kind {
            SlotKind::Session => &self.sessions,
            SlotKind::Resolution => &self.resolutions,
        }
    }
}

/// `RLIMIT_NOFILE` against `sessions` and `resolutions` (each holds a
/// socket): raise the soft limit when needed and say what is reachable;
/// returns what each kind gets.
pub(super) fn check_open_files(sessions: usize, resolutions: usize) -> (usize, usize) {
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

#[cfg(test)]
mod tests {
    #[test]
    fn two_resolving_threads_unless_one_core_or_a_quarter_is_more() {
        let threads: Vec<usize> = [1, 2, 3, 4, 8, 12, 64].map(super::threads_for).to_vec();
        assert_eq!(threads, [1, 2, 2, 2, 2, 3, 16]);
    }
}
