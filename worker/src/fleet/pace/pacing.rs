//! Pacing sessions (DESIGN §8): a minimum gap between two sessions to one
//! IP, a rate per network (/24 for IPv4, /48 for IPv6) and a sessions-per-
//! second cap for this worker (its share of the vantage's cap, which the
//! coordinator computes). Every session asks [`Pacer::admit`] first and
//! holds no session permit while it waits.
//!
//! The coordinator leases a network's targets to one worker at a time, so
//! the per-network rate of one worker is the fleet's.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::probe::pace::SessionPace;

/// Default gap between two sessions to one IP.
pub const DEFAULT_IP_GAP: Duration = mxscope_common::options::defaults::IP_GAP;
/// Default sessions per second to one /24 or /48, in thousandths.
pub const DEFAULT_NETWORK_RATE_MILLI: u32 = mxscope_common::options::defaults::NETWORK_RATE_MILLI;
/// Entries kept per map before the stale ones are dropped.
const MAX_TRACKED: usize = 100_000;

/// The limits; `None` or a zero gap means no such limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub ip_gap: Duration,
    /// Least time between two sessions to one network.
    pub network_spacing: Option<Duration>,
    /// Least time between two sessions of this worker (its share of the
    /// vantage's cap).
    pub worker_spacing: Option<Duration>,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            ip_gap: DEFAULT_IP_GAP,
            network_spacing: spacing_of_milli(DEFAULT_NETWORK_RATE_MILLI),
            worker_spacing: None,
        }
    }
}

/// The spacing of a rate given in thousandths of sessions per second
/// (`None` for 0: no limit).
pub fn spacing_of_milli(rate_milli: u32) -> Option<Duration> {
    (rate_milli > 0).then(|| Duration::from_micros(1_000_000_000 / u64::from(rate_milli)))
}

use mxscope_common::politeness::network_of as network;

/// The next free instant of each IP and network, and the worker's calendar.
#[derive(Debug, Default)]
struct Schedule {
    ips: HashMap<IpAddr, Instant>,
    networks: HashMap<(u8, u128), Instant>,
    worker: Option<Calendar>,
}

/// Session admission by the limits.
///
/// A session first waits for its IP's turn (nothing is reserved meanwhile),
/// then reserves the earliest start its network allows and takes the first
/// free place at or after it in the worker's calendar. The worker cap is a
/// calendar, not a "next free" pointer: a session held back by its crowded
/// network takes a later place and leaves the earlier ones to sessions of
/// other networks (with a pointer, one crowded /24 would pace the whole
/// worker at that network's rate).
#[derive(Debug, Default)]
pub struct Pacer {
    schedule: Mutex<Schedule>,
}

impl Pacer {
    /// Reserve the earliest start for a session to `ip` under `limits` and
    /// wait until then.
    pub async fn admit(&self, ip: IpAddr, limits: &Limits) {
        if let Some(turn) = self.ip_turn(ip, Instant::now()) {
            tokio::time::sleep_until(turn).await;
        }
        let start = self.reserve(ip, limits, Instant::now());
        tokio::time::sleep_until(start).await;
    }

    /// When `ip` may have its next session, if that is after `now`.
    fn ip_turn(&self, ip: IpAddr, now: Instant) -> Option<Instant> {
        let s = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        s.ips.get(&ip).copied().filter(|next| *next > now)
    }

    /// The start reserved for a session to `ip` asked for at `now`.
    fn reserve(&self, ip: IpAddr, limits: &Limits, now: Instant) -> Instant {
        let mut s = self.schedule.lock().unwrap_or_else(|p| p.into_inner());
        if s.ips.len() > MAX_TRACKED {
            s.ips.retain(|_, next| *next > now);
        }
        if s.networks.len() > MAX_TRACKED {
            s.networks.retain(|_, next| *next > now);
        }
        let net = network(ip);
        let mut start = now;
        if let Some(next) = s.ips.get(&ip) {
            start = start.max(*next);
        }
        let network_gap = limits.network_spacing;
        if network_gap.is_some() {
            if let Some(next) = s.networks.get(&net) {
                start = start.max(*next);
            }
        }
        if let Some(spacing) = limits.worker_spacing {
            let calendar = match &mut s.worker {
                Some(calendar) if calendar.spacing == spacing => calendar,
                other => {
                    // First use, or another scan's share: a new grid that
                    // starts after every place of the old one.
                    let from = other.as_ref().map_or(now, |c| c.latest.max(now));
                    other.insert(Calendar::new(spacing, from))
                }
            };
            start = calendar.take(start, now);
        }
        if !limits.ip_gap.is_zero() {
            // The gap counts from this session's start; sessions to one IP
            // are sequential anyway, and a session is bounded by its deadline.
            s.ips.insert(ip, start + limits.ip_gap);
        }
        if let Some(gap) = network_gap {
            s.networks.insert(net, start + gap);
        }
        start
    }
}

/// The pacer as the probe's [`SessionPace`]: a target's extra sessions
/// (legacy versions, a certificate per name, the first flight) wait for
/// their turn under the scan's limits like its first one.
#[derive(Debug)]
pub struct PacedSessions {
    pub pacer: Arc<Pacer>,
    pub limits: Limits,
}

impl SessionPace for PacedSessions {
    fn turn(&self, ip: IpAddr) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(self.pacer.admit(ip, &self.limits))
    }
}

/// Starts on a grid `spacing` apart, at most one session per place: the
/// worker's share of the vantage's sessions-per-second cap.
#[derive(Debug)]
struct Calendar {
    spacing: Duration,
    epoch: Instant,
    /// Taken places → a place at or before the next free one (a
    /// union-find over places, so a long run of taken places is skipped at
    /// once).
    taken: HashMap<u64, u64>,
    /// The latest start handed out.
    latest: Instant,
    /// Size at which taken places before "now" are dropped.
    prune_at: usize,
}

impl Calendar {
    fn new(spacing: Duration, epoch: Instant) -> Self {
        Self {
            spacing: spacing.max(Duration::from_nanos(1)),
            epoch,
            taken: HashMap::new(),
            latest: epoch,
            prune_at: MAX_TRACKED,
        }
    }

    fn place_at_or_after(&self, t: Instant) -> u64 {
        let since = t.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(since.div_ceil(self.spacing.as_nanos())).unwrap_or(u64::MAX)
    }

    fn start_of(&self, place: u64) -> Instant {
        let nanos = self.spacing.as_nanos().saturating_mul(u128::from(place));
        self.epoch + Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
    }

    /// Take the first free place at or after `earliest`; its start.
    fn take(&mut self, earliest: Instant, now: Instant) -> Instant {
        if self.taken.len() > self.prune_at {
            // Places only point forward: those before now are never asked again.
            let current = self.place_at_or_after(now);
            self.taken.retain(|place, _| *place >= current);
            self.prune_at = MAX_TRACKED.max(2 * self.taken.len());
        }
        let wanted = self.place_at_or_after(earliest);
        let mut free = wanted;
        while let Some(next) = self.taken.get(&free) {
            free = *next;
        }
        // Path compression: every place walked now points at `free`.
        let mut place = wanted;
        while place != free {
            let Some(next) = self.taken.insert(place, free) else {
                break;
            };
            place = next;
        }
        self.taken.insert(free, free.saturating_add(1));
        let start = self.start_of(free);
        self.latest = self.latest.max(start);
        start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn networks_are_24s_and_48s() {
        assert_eq!(network(ip("192.0.2.1")), network(ip("192.0.2.254")));
        assert_ne!(network(ip("192.0.2.1")), network(ip("192.0.3.1")));
        assert_eq!(
            network(ip("2001:db8:1::1")),
            network(ip("2001:db8:1:ffff::1"))
        );
        assert_ne!(network(ip("2001:db8:1::1")), network(ip("2001:db8:2::1")));
    }

    #[tokio::test(start_paused = true)]
    async fn gaps_and_rates_space_the_sessions() {
        let pacer = Pacer::default();
        let limits = Limits {
            ip_gap: Duration::from_secs(2),
            network_spacing: spacing_of_milli(4_000),
            worker_spacing: None,
        };
        let t0 = Instant::now();
        // One IP: 2 s apart.
        assert_eq!(pacer.reserve(ip("192.0.2.1"), &limits, t0), t0);
        assert_eq!(
            pacer.reserve(ip("192.0.2.1"), &limits, t0),
            t0 + Duration::from_secs(2)
        );
        // Same /24, other IP: 250 ms after the network's last reservation.
        assert_eq!(
            pacer.reserve(ip("192.0.2.2"), &limits, t0),
            t0 + Duration::from_millis(2250)
        );
        // Another network is not held back.
        assert_eq!(pacer.reserve(ip("198.51.100.1"), &limits, t0), t0);

        let capped = Limits {
            ip_gap: Duration::ZERO,
            network_spacing: None,
            worker_spacing: spacing_of_milli(10_000),
        };
        let pacer = Pacer::default();
        let starts: Vec<Instant> = (1..=5)
            .map(|i| pacer.reserve(ip(&format!("203.0.{i}.1")), &capped, t0))
            .collect();
        assert_eq!(starts[4], t0 + Duration::from_millis(400));

        // A crowded network does not pace the whole worker: 250 sessions
        // to one /24 at 10/s take 25 s, and a session to another /24 still
        // gets the worker's next free place (regression: the worker cap
        // was a pointer, pushed to 25 s by the crowded network).
        let both = Limits {
            ip_gap: Duration::from_secs(1),
            network_spacing: spacing_of_milli(10_000),
            worker_spacing: spacing_of_milli(100_000),
        };
        let pacer = Pacer::default();
        let mut starts: Vec<Instant> = (1..=250)
            .map(|i| pacer.reserve(ip(&format!("192.0.2.{i}")), &both, t0))
            .collect();
        assert_eq!(starts[249], t0 + Duration::from_millis(24_900));
        let other = pacer.reserve(ip("198.51.100.1"), &both, t0);
        assert_eq!(other, t0 + Duration::from_millis(10));
        // ... and the worker cap still holds: no two starts closer than 10 ms.
        starts.push(other);
        starts.sort();
        assert!(starts
            .windows(2)
            .all(|w| w[1] - w[0] >= Duration::from_millis(10)));

        // admit() waits for the reservation.
        let pacer = Pacer::default();
        pacer.admit(ip("192.0.2.9"), &limits).await;
        let before = Instant::now();
        pacer.admit(ip("192.0.2.9"), &limits).await;
        assert!(Instant::now() - before >= Duration::from_secs(2));
    }
}
