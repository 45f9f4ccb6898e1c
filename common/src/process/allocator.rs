//! How the binaries' allocator (mimalloc) takes memory from the system and
//! gives it back.
//!
//! Transparent huge pages are off for the whole process (unless
//! `MIMALLOC_ALLOW_THP` says otherwise): a fault on a 2 MiB page zeroes all
//! of it, most of which a scan's churn of small allocations never uses. A
//! national scan of a million domains without them: 12.9–13.8 s against
//! 13.9–14.5 s, peak RSS 376–395 against 429–447 MiB (docs/benchmarks.md).
//!
//! mimalloc v3 keeps freed pages committed for a second (`purge_delay`,
//! 1000 ms) before it returns them to the system. A report that streams a
//! million records frees faster than that: its peak RSS held about 150 MB
//! it no longer used (853 against 707 MB), and ten milliseconds returns it
//! in time at no measured cost. A scan pays for it (about 5 % more CPU for
//! 25 MiB less at 1M domains), so only the commands that read a store ask
//! for it (docs/benchmarks.md), and `mxscope scan` once its worker has
//! stopped, before it reads its store for the headline: its peak came
//! there, on top of what the worker had freed within the second (1M
//! domains: 403–437 MiB, then 370–373 MiB, time unchanged).

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the sixteenth
/// option; libmimalloc-sys does not name it). The test below fails if an
/// upgrade moves it.
const PURGE_DELAY: c_int = 15;

/// `mi_option_allow_thp` in v3's `mimalloc.h` (the forty-fourth option).
/// The test below fails if an upgrade moves it.
const ALLOW_THP: c_int = 43;

/// Milliseconds freed memory stays committed before it is returned.
const PURGE_DELAY_MS: c_long = 10;

/// Returns freed memory within milliseconds from now on, unless the
/// environment set the delay (`MIMALLOC_PURGE_DELAY`, any case, or its old
/// name `MIMALLOC_RESET_DELAY`): mimalloc's own value then stands.
pub fn return_freed_memory_promptly() {
    // SAFETY: mi_option_set_default only stores the value of a valid
    // option index, and only when the environment did not set it; it is
    // called in `main` before the runtime's threads start.
    unsafe { libmimalloc_sys::mi_option_set_default(PURGE_DELAY, PURGE_DELAY_MS) };
}

/// From now on as [`return_freed_memory_promptly`], and what was freed so
/// far goes back at once: for a scan whose hot phase is over (its worker
/// stopped) before it reads its store for the report, which otherwise
/// peaked on top of the second's worth of memory the worker had just freed.
pub fn return_freed_memory_from_now() {
    // SAFETY: mi_option_set stores the value of a valid option index (the
    // test below checks it); mi_collect only returns what is unused.
    unsafe {
        if !purge_delay_from_environment() {
            libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS);
        }
        libmimalloc_sys::mi_collect(true);
    }
}

/// Whether the environment set the purge delay (any case, or its old name).
fn purge_delay_from_environment() -> bool {
    std::env::vars_os().any(|(name, _)| {
        let name = name.to_string_lossy().to_ascii_lowercase();
        name == "mimalloc_purge_delay" || name == "mimalloc_reset_delay"
    })
}

/// Turns transparent huge pages off for this process, unless the
/// environment allowed them (`MIMALLOC_ALLOW_THP`). Call it first in `main`.
pub fn without_transparent_huge_pages() {
    // SAFETY: as above; reading an option has no precondition.
    let allowed = unsafe {
        libmimalloc_sys::mi_option_set_default(ALLOW_THP, 0);
        libmimalloc_sys::mi_option_get(ALLOW_THP)
    };
    if allowed == 0 {
        // mimalloc read the option when it started, before `main`: the
        // switch it would then have turned, for every mapping of the
        // process. Refused only by kernels older than 3.15: nothing to do.
        // SAFETY: PR_SET_THP_DISABLE takes plain integers and changes
        // nothing but this process's huge page policy.
        let _ = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> c_long {
        // SAFETY: reading an option has no precondition.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    /// One test for both: the option is the process's.
    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        let from_environment = purge_delay_from_environment();
        let before = get();
        return_freed_memory_promptly();
        if from_environment {
            assert_eq!(get(), before, "the environment's delay stands");
        } else {
            // The documented default of purge_delay (options.c: 1000 ms) is
            // what the index reads before it is set.
            assert_eq!(before, 1000, "option {PURGE_DELAY} is not purge_delay");
            assert_eq!(get(), PURGE_DELAY_MS);
        }
        // At run time (the option was read above): set, unless the
        // environment chose.
        // SAFETY: as in `get`.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 1000) };
        return_freed_memory_from_now();
        let expected = if from_environment {
            1000
        } else {
            PURGE_DELAY_MS
        };
        assert_eq!(get(), expected);
    }

    #[test]
    fn transparent_huge_pages_are_off_unless_the_environment_allows_them() {
        let from_environment = std::env::vars_os().any(|(name, _)| {
            name.to_string_lossy()
                .eq_ignore_ascii_case("mimalloc_allow_thp")
        });
        // SAFETY: reading an option or the THP switch has no precondition.
        let before = unsafe { libmimalloc_sys::mi_option_get(ALLOW_THP) };
        without_transparent_huge_pages();
        let (after, disabled) = unsafe {
            (
                libmimalloc_sys::mi_option_get(ALLOW_THP),
                libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0),
            )
        };
        if from_environment {
            assert_eq!(after, before, "the environment's choice stands");
        } else {
            // options.c: allow_thp is 1 by default on Linux.
            assert_eq!(before, 1, "option {ALLOW_THP} is not allow_thp");
            assert_eq!(after, 0);
            assert_eq!(disabled, 1, "the process has transparent huge pages off");
        }
    }
}
