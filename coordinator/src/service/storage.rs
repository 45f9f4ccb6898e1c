//! The store's write health (issue: a full disk is a state, not a loop).
//! A store write or flush that fails with an I/O error (a full disk, a
//! failing device) puts the coordinator in a *failing* state: it leases no
//! new work, keeps answering reads, and says what is wrong once, then at
//! most once a minute (a log line with the data directory and its free
//! space, the `mxscope_coordinator_store_writable` gauge, `/readyz` false
//! with the reason, a line in `status`). sled fails every write after such
//! an error until it is reopened, and the coordinator's memory may then be
//! ahead of its disk. So, every [`RETRY_EVERY`] while failing (on a lease
//! call: workers keep asking), it reopens the store, writes a probe key and
//! flushes; when that succeeds it reloads its memory from the store, as a
//! restart would (keeping what it knows of the workers), and leases again:
//! the workers resend what was not acknowledged. `mxscope scan` and
//! `mxscope serve` still stop after `--full-disk-wait` when space never
//! comes back (`mxscope scan --resume`, or the supervisor's restart).

use std::path::Path;
use std::time::{Duration, Instant};

use crate::store::StoreError;

/// How often the failing state is logged again.
const LOG_EVERY: Duration = Duration::from_secs(60);
/// How often a failing store is tried again.
pub(super) const RETRY_EVERY: Duration = Duration::from_secs(5);

/// Since when and why writes fail.
#[derive(Debug, Clone)]
pub(super) struct Failing {
    since: Instant,
    detail: String,
    logged: Instant,
}

/// The store's write health.
#[derive(Debug, Default)]
pub(super) struct StorageHealth {
    failing: Option<Failing>,
    /// When the store was last tried again.
    tried: Option<Instant>,
}

impl StorageHealth {
    /// Note a store error: an I/O failure starts (or continues) the
    /// failing state; the log line comes once, then at most once a minute.
    pub(super) fn note(&mut self, error: &StoreError, dir: &Path) {
        if !matches!(error, StoreError::Storage(_)) {
            return;
        }
        let now = Instant::now();
        let detail = error.to_string();
        match &mut self.failing {
            Some(failing) if now.duration_since(failing.logged) < LOG_EVERY => {
                failing.detail = detail;
            }
            Some(failing) => {
                failing.detail = detail;
                failing.logged = now;
                tracing::error!("{}", describe(failing, dir));
            }
            None => {
                let failing = Failing {
                    since: now,
                    detail,
                    logged: now,
                };
                tracing::error!("{}", describe(&failing, dir));
                self.failing = Some(failing);
            }
        }
        crate::metrics::store_writable(false);
    }

    /// Whether a failing store is due to be tried again (and note the try).
    pub(super) fn retry_due(&mut self) -> bool {
        let now = Instant::now();
        if self.failing.is_none()
            || self
                .tried
                .is_some_and(|t| now.duration_since(t) < RETRY_EVERY)
        {
            return false;
        }
        self.tried = Some(now);
        true
    }

    /// Writes succeed again: the failing state ends, said once.
    pub(super) fn recovered(&mut self, dir: &Path) {
        if let Some(failing) = self.failing.take() {
            tracing::warn!(
                "the data directory {} is writable again after {}s: resumed from the store; \
                 workers resend what was not acknowledged",
                dir.display(),
                failing.since.elapsed().as_secs()
            );
        }
        self.tried = None;
        crate::metrics::store_writable(true);
    }

    /// What is wrong, for `status`, `/readyz` and `mxscope scan`; `None`
    /// while writes succeed.
    pub(super) fn problem(&self, dir: &Path) -> Option<String> {
        self.failing.as_ref().map(|f| describe(f, dir))
    }

    /// How long writes have been failing.
    pub(super) fn failing_for(&self) -> Option<Duration> {
        self.failing.as_ref().map(|f| f.since.elapsed())
    }
}

fn describe(failing: &Failing, dir: &Path) -> String {
    let free = free_bytes(dir).map_or_else(
        || "free space unknown".to_string(),
        |b| format!("{} MiB free", b / (1024 * 1024)),
    );
    format!(
        "cannot write the data directory {} ({free}) for {}s: {}; no new work is leased — \
         free space: the store is tried again every {}s and the scan goes on by itself",
        dir.display(),
        failing.since.elapsed().as_secs(),
        failing.detail,
        RETRY_EVERY.as_secs()
    )
}

/// Whether a file of two of sled's log segments (2 × 512 KiB) can be
/// written and synced in `dir` (it is removed again). Blocking.
pub(super) fn room_for_a_segment(dir: &Path) -> std::io::Result<()> {
    use std::io::Write;
    let path = dir.join("write-probe.tmp");
    let written = (|| {
        let mut file = std::fs::File::create(&path)?;
        file.write_all(&vec![0u8; 1 << 20])?;
        file.sync_all()
    })();
    let _ = std::fs::remove_file(&path);
    written
}

/// Bytes available to this process on `dir`'s filesystem.
pub(super) fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `path` is a valid NUL-terminated string and `stat` a
    // zeroed out-parameter that statvfs fills.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::statvfs(path.as_ptr(), &mut stat) };
    (rc == 0).then(|| stat.f_bavail.saturating_mul(stat.f_frsize))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_failures_start_the_failing_state_other_errors_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let mut health = StorageHealth::default();
        health.note(&StoreError::Corrupt("x".into()), dir.path());
        assert!(health.problem(dir.path()).is_none());
        let io = std::io::Error::new(std::io::ErrorKind::StorageFull, "No space left on device");
        health.note(&StoreError::Storage(Box::new(io)), dir.path());
        let problem = health.problem(dir.path()).unwrap();
        assert!(
            problem.contains("No space left") && problem.contains("MiB free"),
            "{problem}"
        );
        assert!(health.failing_for().is_some());
        assert!(free_bytes(dir.path()).is_some_and(|b| b > 0));
    }
}
