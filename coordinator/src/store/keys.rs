//! Key layout of the store's trees.
//!
//! Composite keys are `scan 0x00 vantage 0x00 tail`. Scan ids and vantage
//! labels never contain NUL (checked on every write and read), so a prefix
//! `scan 0x00` matches exactly one scan (`s1` never sees `s10`), and byte
//! order equals the order by (vantage, tail). The tail is the last component
//! and may hold any byte: a domain name, a task id, or an IP as
//! `4 + 4 bytes` (IPv4) / `6 + 16 bytes` (IPv6), big-endian, so IPv4 sorts
//! before IPv6 and `1.2.3.4` never collides with `::ffff:1.2.3.4`.

use std::net::IpAddr;

use super::{Result, StoreError};

const SEP: u8 = 0;

/// Tag byte of an IPv4 address in a key.
const IPV4: u8 = 4;
/// Tag byte of an IPv6 address in a key.
const IPV6: u8 = 6;

/// Which per-scan counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Counter {
    Domains,
    Targets,
}

/// Rejects an id that would make a composite key ambiguous.
pub(super) fn check_id(what: &str, id: &str) -> Result<()> {
    if id.as_bytes().contains(&SEP) {
        return Err(StoreError::Invalid(format!(
            "{what} {id:?} contains a NUL byte"
        )));
    }
    Ok(())
}

/// `scan 0x00`: the prefix of everything that belongs to one scan.
pub(super) fn scan_prefix(scan: &str) -> Result<Vec<u8>> {
    check_id("scan id", scan)?;
    let mut key = Vec::with_capacity(scan.len() + 1);
    key.extend_from_slice(scan.as_bytes());
    key.push(SEP);
    Ok(key)
}

/// `scan 0x00 tail`: a task key (the tail is the free-form task id).
pub(super) fn scan_key(scan: &str, tail: &[u8]) -> Result<Vec<u8>> {
    let mut key = scan_prefix(scan)?;
    key.extend_from_slice(tail);
    Ok(key)
}

/// `v scan 0x00 vantage`: a vantage's tally in the `counters` tree (the
/// record counters are `d scan` / `t scan`, so the first byte tells them
/// apart). With an empty vantage: the prefix of a scan's tallies.
pub(super) fn tally_key(scan: &str, vantage: &str) -> Result<Vec<u8>> {
    check_id("vantage", vantage)?;
    let mut key = vec![b'v'];
    key.extend_from_slice(&scan_prefix(scan)?);
    key.extend_from_slice(vantage.as_bytes());
    Ok(key)
}

/// `scan 0x00 vantage 0x00 tail`.
pub(super) fn scan_vantage_key(scan: &str, vantage: &str, tail: &[u8]) -> Result<Vec<u8>> {
    check_id("vantage", vantage)?;
    let mut key = scan_prefix(scan)?;
    key.reserve(vantage.len() + 1 + tail.len());
    key.extend_from_slice(vantage.as_bytes());
    key.push(SEP);
    key.extend_from_slice(tail);
    Ok(key)
}

/// The key tail of an IP address: tag byte, then the address big-endian.
pub(super) fn ip_tail(ip: IpAddr) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => {
            let mut tail = Vec::with_capacity(5);
            tail.push(IPV4);
            tail.extend_from_slice(&v4.octets());
            tail
        }
        IpAddr::V6(v6) => {
            let mut tail = Vec::with_capacity(17);
            tail.push(IPV6);
            tail.extend_from_slice(&v6.octets());
            tail
        }
    }
}

/// The scan id a composite key starts with.
pub(super) fn scan_of_key(key: &[u8]) -> Option<&[u8]> {
    let end = key.iter().position(|&b| b == SEP)?;
    Some(&key[..end])
}

/// Key of a per-scan counter in the counters tree (exact keys, never scanned
/// by prefix, so no separator is needed).
pub(super) fn counter_key(counter: Counter, scan: &str) -> Vec<u8> {
    let tag = match counter {
        Counter::Domains => b'd',
        Counter::Targets => b't',
    };
    let mut key = Vec::with_capacity(scan.len() + 1);
    key.push(tag);
    key.extend_from_slice(scan.as_bytes());
    key
}

/// Reads a big-endian `u64` counter value.
pub(super) fn decode_u64(what: &str, bytes: &[u8]) -> Result<u64> {
    let arr: [u8; 8] = bytes.try_into().map_err(|_| {
        StoreError::Corrupt(format!(
            "{what}: counter of {} bytes, expected 8",
            bytes.len()
        ))
    })?;
    Ok(u64::from_be_bytes(arr))
}

/// The number of a scan id `s<n>`, for ordering (`s2` before `s10`).
pub(super) fn scan_number(id: &str) -> Option<u64> {
    let digits = id.strip_prefix('s')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    #[test]
    fn prefixes_do_not_leak_across_scans() {
        let k1 = scan_vantage_key("s1", "A", b"x.it").unwrap();
        let k10 = scan_vantage_key("s10", "A", b"x.it").unwrap();
        assert!(k1.starts_with(&scan_prefix("s1").unwrap()));
        assert!(!k10.starts_with(&scan_prefix("s1").unwrap()));
        assert_eq!(scan_of_key(&k10), Some(&b"s10"[..]));
    }

    #[test]
    fn order_is_vantage_then_tail() {
        let a = scan_vantage_key("s1", "A", b"z.it").unwrap();
        let ab = scan_vantage_key("s1", "AB", b"a.it").unwrap();
        assert!(a < ab, "vantage A sorts wholly before vantage AB");
    }

    #[test]
    fn ip_tails_are_unambiguous_and_ordered() {
        let v4 = ip_tail(IpAddr::V4(Ipv4Addr::new(1, 2, 3, 4)));
        let mapped = ip_tail(IpAddr::V6(Ipv4Addr::new(1, 2, 3, 4).to_ipv6_mapped()));
        assert_ne!(v4, mapped);
        let lo = ip_tail(IpAddr::V4(Ipv4Addr::new(9, 0, 0, 0)));
        let hi = ip_tail(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 0)));
        assert!(lo < hi);
        assert!(hi < ip_tail(IpAddr::V6(Ipv6Addr::LOCALHOST)));
    }

    #[test]
    fn nul_is_rejected() {
        assert!(matches!(
            scan_prefix("s\u{0}1"),
            Err(StoreError::Invalid(_))
        ));
        assert!(scan_vantage_key("s1", "A\u{0}", b"").is_err());
    }

    #[test]
    fn scan_numbers() {
        assert_eq!(scan_number("s10"), Some(10));
        assert_eq!(scan_number("s"), None);
        assert_eq!(scan_number("s+1"), None);
        assert_eq!(scan_number("x1"), None);
    }

    #[test]
    fn bad_counter_is_corrupt() {
        assert!(matches!(
            decode_u64("c", b"abc"),
            Err(StoreError::Corrupt(_))
        ));
        assert_eq!(decode_u64("c", &7u64.to_be_bytes()).unwrap(), 7);
    }
}
