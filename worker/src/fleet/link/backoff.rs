//! Capped exponential backoff with jitter, for every retry towards the
//! coordinator (DESIGN §3: "workers reconnect with capped exponential backoff").
//!
//! The schedule is a pure function of the attempt number and a jitter
//! fraction ([`delay`]); [`Backoff`] only counts attempts and takes its
//! jitter from the clock, so a fleet restarted at once does not retry in step.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// First retry delay.
pub const BASE: Duration = Duration::from_millis(200);
/// Longest delay between two attempts.
pub const CAP: Duration = Duration::from_secs(10);

/// The delay before retry number `attempt` (0-based): `BASE · 2^attempt`
/// capped at `CAP`, of which the upper half is scaled by `jitter` (clamped to
/// `0.0..=1.0`). The result is always within `[exp / 2, exp]`.
pub fn delay(attempt: u32, jitter: f64) -> Duration {
    let exponential = BASE
        .checked_mul(1u32.checked_shl(attempt.min(31)).unwrap_or(u32::MAX))
        .unwrap_or(CAP)
        .min(CAP);
    let jitter = if jitter.is_finite() {
        jitter.clamp(0.0, 1.0)
    } else {
        0.0
    };
    let half = exponential / 2;
    half + half.mul_f64(jitter)
}

/// Counts consecutive failures of one kind of call.
#[derive(Debug, Default, Clone)]
pub struct Backoff {
    attempt: u32,
}

impl Backoff {
    /// The delay before the next attempt; each call lengthens the next one.
    pub fn next_delay(&mut self) -> Duration {
        let wait = delay(self.attempt, clock_jitter());
        self.attempt = self.attempt.saturating_add(1);
        wait
    }

    /// Consecutive failures so far.
    pub fn failures(&self) -> u32 {
        self.attempt
    }

    /// A call succeeded: start again from [`BASE`].
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A fraction in `0.0..1.0` from the clock's sub-second nanoseconds, mixed
/// so that neighbouring instants give unrelated values.
pub fn clock_jitter() -> f64 {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::from(d.subsec_nanos()) ^ d.as_secs());
    // splitmix64 finaliser.
    let mut z = nanos.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// A jittered wait in `[low, high]`, e.g. the idle lease poll.
pub fn between(low: Duration, high: Duration) -> Duration {
    low + high.saturating_sub(low).mul_f64(clock_jitter())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_base_to_cap() {
        let full: Vec<Duration> = (0..8).map(|attempt| delay(attempt, 1.0)).collect();
        assert_eq!(
            full,
            [200, 400, 800, 1600, 3200, 6400, 10_000, 10_000].map(Duration::from_millis)
        );
        assert_eq!(delay(0, 0.0), Duration::from_millis(100));
        assert_eq!(delay(1000, 0.0), Duration::from_secs(5));
        assert_eq!(delay(u32::MAX, 1.0), CAP);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        for attempt in 0..40 {
            let cap = delay(attempt, 1.0);
            for jitter in [-1.0, 0.0, 0.3, 0.999, 2.0, f64::NAN] {
                let wait = delay(attempt, jitter);
                assert!(
                    wait >= cap / 2 && wait <= cap,
                    "{attempt} {jitter} {wait:?}"
                );
            }
        }
        for _ in 0..100 {
            let j = clock_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn counts_and_resets() {
        let mut backoff = Backoff::default();
        for _ in 0..20 {
            assert!(backoff.next_delay() <= CAP);
        }
        assert_eq!(backoff.failures(), 20);
        backoff.reset();
        assert!(backoff.next_delay() <= BASE);
        let wait = between(Duration::from_millis(500), Duration::from_secs(1));
        assert!(wait >= Duration::from_millis(500) && wait <= Duration::from_secs(1));
    }
}
