//! The retransmission timeout of the resolver's UDP queries: RFC 6298's
//! estimator of the servers' round trip (smoothed round trip plus four
//! times its variation), fed only by answers to queries sent once (Karn).

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// RFC 6298's estimator of the servers' round trip, shared by a
/// resolver's queries: the retransmission timeout follows the answers.
#[derive(Debug)]
pub(super) struct RoundTrip {
    /// (smoothed round trip, its variation) in seconds; `None` before the
    /// first answer.
    estimate: Mutex<Option<(f64, f64)>>,
}

/// The retransmission timeout before any answer (RFC 6298 §2.1).
const INITIAL_RTO: Duration = Duration::from_secs(1);
/// The shortest retransmission timeout: answers a little slower than the
/// usual ones are not asked for twice.
pub(super) const MIN_RTO: Duration = Duration::from_millis(50);
/// The longest (the attempt's timeout bounds it anyway).
pub(super) const MAX_RTO: Duration = Duration::from_secs(60);

impl RoundTrip {
    pub(super) fn new() -> Self {
        Self {
            estimate: Mutex::new(None),
        }
    }

    pub(super) fn timeout(&self) -> Duration {
        match *self.estimate.lock().unwrap_or_else(PoisonError::into_inner) {
            None => INITIAL_RTO,
            Some((srtt, rttvar)) => {
                Duration::from_secs_f64(srtt + 4.0 * rttvar).clamp(MIN_RTO, MAX_RTO)
            }
        }
    }

    pub(super) fn observe(&self, sample: Duration) {
        let r = sample.as_secs_f64();
        let mut estimate = self.estimate.lock().unwrap_or_else(PoisonError::into_inner);
        *estimate = Some(match *estimate {
            None => (r, r / 2.0),
            Some((srtt, rttvar)) => (
                0.875 * srtt + 0.125 * r,
                0.75 * rttvar + 0.25 * (srtt - r).abs(),
            ),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeout_follows_the_answers_within_its_bounds() {
        let rtt = RoundTrip::new();
        assert_eq!(rtt.timeout(), INITIAL_RTO, "before any answer");
        for _ in 0..50 {
            rtt.observe(Duration::from_millis(2));
        }
        assert_eq!(rtt.timeout(), MIN_RTO, "fast answers: the floor");
        for _ in 0..50 {
            rtt.observe(Duration::from_millis(400));
        }
        let slow = rtt.timeout();
        assert!(
            slow >= Duration::from_millis(400) && slow < Duration::from_secs(2),
            "{slow:?}"
        );
    }
}
