//! How soon the binaries' allocator (mimalloc) gives freed memory back.
//!
//! mimalloc v3 keeps freed pages committed for a second (`purge_delay`
//! 1000 ms, ten times that for whole arenas) before it returns them to the
//! system. A report that streams a million records frees faster than that:
//! its peak RSS held about 150 MB it no longer used (853 against 707 MB),
//! and ten milliseconds returns it in time at no measured cost. A scan pays
//! for it (about 5 % more CPU for 25 MiB less at 1M domains), so only the
//! commands that read a store ask for it (docs/benchmarks.md).

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the sixteenth
/// option); libmimalloc-sys names it only for v2. The test below fails if
/// an upgrade moves it.
const PURGE_DELAY: c_int = 15;

/// Milliseconds freed memory stays committed before it is returned.
const PURGE_DELAY_MS: c_long = 10;

/// Returns freed memory within milliseconds from now on. A
/// `MIMALLOC_PURGE_DELAY` in the environment is left to mimalloc.
pub fn return_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: mi_option_set takes any option index and value and only
    // stores them; mimalloc reads options atomically.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        // The documented default of purge_delay (options.c: 1000 ms) is
        // what the index reads before it is set.
        // SAFETY: reading an option has no precondition.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        assert_eq!(default, 1000, "option {PURGE_DELAY} is not purge_delay");
        return_freed_memory_promptly();
        assert_eq!(
            unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) },
            PURGE_DELAY_MS
        );
    }
}
