//! Politeness (DESIGN §8): the network an address counts in for rate
//! limits, which addresses are public (others are probed only when a scan
//! allows it), and the records of excluded domains and targets. Why a target
//! was skipped and the attempts of a retried target are target-record fields
//! ([`crate::record`]), re-exported here.

pub mod exclusions;

use std::net::IpAddr;

use crate::politeness::exclusions::Excluded;
use crate::record::{DnsResult, DnsStatus, DomainRecord, Outcome, TargetRecord};

/// The record fields the scheduling layer fills (kept with the target record).
pub use crate::record::{Attempt, Retries, SkipReason};

/// The network an address belongs to for rate limits: its /24 (IPv4) or
/// /48 (IPv6), as (family, prefix bits).
pub fn network_of(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4) >> 8)),
        IpAddr::V6(v6) => (6, u128::from(v6) >> 80),
    }
}

/// The record of an excluded target: `skipped`, reason `excluded`, the
/// matching entry in `detail`. No session was opened.
pub fn excluded_target(
    ip: IpAddr,
    port: u16,
    mx_names: Vec<String>,
    why: &Excluded,
) -> TargetRecord {
    let mut record = TargetRecord::new(ip, port, mx_names);
    record.outcome = Outcome::Skipped;
    record.skip_reason = Some(SkipReason::Excluded);
    record.detail = Some(why.to_string());
    record
}

/// The record of an excluded domain: DNS status `excluded`, never resolved.
pub fn excluded_domain(domain: String, why: Option<&Excluded>) -> DomainRecord {
    let why = why.map_or_else(|| "excluded".to_string(), ToString::to_string);
    DomainRecord::new(domain, DnsResult::failed(DnsStatus::Excluded, why))
}

/// Whether `ip` is a globally routable unicast address: not loopback,
/// private (RFC 1918, ULA), link-local, CGNAT, documentation, benchmarking,
/// multicast, broadcast, unspecified or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_unspecified()
                || v4.is_documentation()
                || a == 0
                || a >= 240
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b)))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || first == 0x2001 && v6.segments()[1] == 0x0db8
                || first == 0x0064 && v6.segments()[1] == 0xff9b)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses() {
        for public in ["192.0.2.0", "8.8.8.8", "2a00:1450::1", "193.205.0.1"] {
            let ip: IpAddr = public.parse().unwrap();
            let expected = !public.starts_with("192.0.2.");
            assert_eq!(is_public(ip), expected, "{public}");
        }
        for private in [
            "127.0.1.10",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.1.1",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "198.18.0.1",
        ] {
            assert!(!is_public(private.parse().unwrap()), "{private}");
        }
    }
}
