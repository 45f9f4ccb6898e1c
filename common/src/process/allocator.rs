//! How soon the binaries' allocator (mimalloc) gives freed memory back.
//!
//! mimalloc v3 keeps freed pages committed for a second (`purge_delay`,
//! 1000 ms) before it returns them to the system. A report that streams a
//! million records frees faster than that: its peak RSS held about 150 MB
//! it no longer used (853 against 707 MB), and ten milliseconds returns it
//! in time at no measured cost. A scan pays for it (about 5 % more CPU for
//! 25 MiB less at 1M domains), so only the commands that read a store ask
//! for it (docs/benchmarks.md).

use std::os::raw::{c_int, c_long};

/// `mi_option_purge_delay` in mimalloc v3's `mimalloc.h` (the sixteenth
/// option; libmimalloc-sys does not name it). The test below fails if an
/// upgrade moves it.
const PURGE_DELAY: c_int = 15;

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

#[cfg(test)]
mod tests {
    use super::*;

    fn get() -> c_long {
        // SAFETY: reading an option has no precondition.
        unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) }
    }

    #[test]
    fn the_purge_delay_option_is_the_one_set() {
        let from_environment = std::env::vars_os().any(|(name, _)| {
            let name = name.to_string_lossy().to_ascii_lowercase();
            name == "mimalloc_purge_delay" || name == "mimalloc_reset_delay"
        });
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
    }
}
