//! Pacing sessions (DESIGN §8): a minimum gap between two sessions to one
//! IP, a rate per network (/24 for IPv4, /48 for IPv6) and a sessions-per-
//! second cap for this worker (its share of the vantage's cap, which the
//! coordinator computes). Every session asks [`Pacer::admit`] first and
//! holds no session permit while it waits.
//!
//! The coordinator leases a network's targets to one worker at a time, so
//! the per-network rate of one worker is the fleet's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

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

/// The next free instant of each IP, network and of the worker.
#[derive(Debug, Default)]
struct Schedule {
    ips: HashMap<IpAddr, Instant>,
    networks: HashMap<(u8, u128), Instant>,
    worker: Option<Instant>,
}

/// Session admission by the limits.
#[derive(Debug, Default)]
pub struct Pacer {
    schedule: Mutex<Schedule>,
}

impl Pacer {
    /// Reserve the earliest start for a session to `ip` under `limits` and
    /// wait until then.
    pub async fn admit(&self, ip: IpAddr, limits: &Limits) {
        let start = self.reserve(ip, limits, Instant::now());
        tokio::time::sleep_until(start).await;
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
        let worker_gap = limits.worker_spacing;
        if worker_gap.is_some() {
            if let Some(next) = s.worker {
                start = start.max(next);
            }
        }
        if !limits.ip_gap.is_zero() {
            // The gap counts from this session's start; sessions to one IP
            // are sequential anyway, and a session is bounded by its deadline.
            s.ips.insert(ip, start + limits.ip_gap);
        }
        if let Some(gap) = network_gap {
            s.networks.insert(net, start + gap);
        }
        if let Some(gap) = worker_gap {
            s.worker = Some(start + gap);
        }
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

        // admit() waits for the reservation.
        let pacer = Pacer::default();
        pacer.admit(ip("192.0.2.9"), &limits).await;
        let before = Instant::now();
        pacer.admit(ip("192.0.2.9"), &limits).await;
        assert!(Instant::now() - before >= Duration::from_secs(2));
    }
}
