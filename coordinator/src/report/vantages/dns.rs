//! Vantage against vantage in DNS: every domain with a record from two or
//! more vantages is compared on its DNS status, MX set (names, preferences,
//! null or implicit MX), the addresses of each exchange and the DNSSEC
//! status of the MX RRset and of each exchange's addresses. A difference
//! becomes a [`DnsDiff`] with the classes `dns_status_differs`,
//! `mx_differs`, `address_differs` and `dnssec_differs`.
//!
//! Domains are compared one at a time: [`merge_by_domain`] joins the
//! per-vantage record streams of the store (each sorted by domain, the
//! store's key order) so that all records of one domain arrive together
//! and nothing else is held. Memory is the records of one domain plus the
//! differences found.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::politeness::is_public;
use mxscope_common::record::security_dns::DnssecStatus;
use mxscope_common::{snake, DnsStatus, DomainRecord};

use crate::report::model::{
    AddressNote, Disagreement, DnsDiff, DnsView, OneVantageTarget, ONE_VANTAGE_DOMAINS_CAP,
};

/// The DNS classes, in report order.
pub const DNS_CLASSES: [Disagreement; 4] = [
    Disagreement::DnsStatusDiffers,
    Disagreement::MxDiffers,
    Disagreement::AddressDiffers,
    Disagreement::DnssecDiffers,
];

/// What one vantage's record says, in comparable form.
#[derive(Debug)]
struct Side<'a> {
    vantage: &'a str,
    status: DnsStatus,
    null_mx: bool,
    implicit_mx: bool,
    /// (preference, exchange).
    mx: BTreeSet<(u16, &'a str)>,
    addresses: BTreeMap<&'a str, BTreeSet<IpAddr>>,
    dnssec_mx: Option<DnssecStatus>,
    dnssec_exchanges: BTreeMap<&'a str, DnssecStatus>,
}

impl<'a> Side<'a> {
    fn of(vantage: &'a str, record: &'a DomainRecord) -> Self {
        let dns = &record.dns;
        let mut addresses: BTreeMap<&str, BTreeSet<IpAddr>> = BTreeMap::new();
        for mx in &dns.mx {
            addresses
                .entry(mx.exchange.as_str())
                .or_default()
                .extend(mx.addresses.iter().copied());
        }
        Self {
            vantage,
            status: dns.status,
            null_mx: dns.null_mx,
            implicit_mx: dns.implicit_mx,
            mx: dns
                .mx
                .iter()
                .map(|mx| (mx.preference, mx.exchange.as_str()))
                .collect(),
            addresses,
            dnssec_mx: record.security.as_ref().map(|s| s.dnssec_mx),
            dnssec_exchanges: record
                .security
                .iter()
                .flat_map(|s| s.dnssec_exchanges.iter())
                .map(|(name, status)| (name.as_str(), *status))
                .collect(),
        }
    }
}

/// The network an address belongs to for the `outside_networks` note:
/// its /24 (IPv4) or /48 (IPv6).
fn network(ip: IpAddr) -> (bool, [u8; 6]) {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            (false, [a, b, c, 0, 0, 0])
        }
        IpAddr::V6(v6) => {
            let o = v6.octets();
            (true, [o[0], o[1], o[2], o[3], o[4], o[5]])
        }
    }
}

/// The classes of one domain's records (one per vantage) and the notes on
/// differing addresses; empty classes when they agree. Fewer than two
/// records compare nothing.
pub fn compare_domain(records: &[(&str, &DomainRecord)]) -> (Vec<Disagreement>, Vec<AddressNote>) {
    let mut sides: Vec<Side<'_>> = records.iter().map(|(v, r)| Side::of(v, r)).collect();
    sides.sort_by(|a, b| a.vantage.cmp(b.vantage));
    let mut classes = Vec::new();
    let mut notes = Vec::new();
    let Some(first) = sides.first() else {
        return (classes, notes);
    };
    if sides.len() < 2 {
        return (classes, notes);
    }
    if sides.iter().any(|s| s.status != first.status) {
        classes.push(Disagreement::DnsStatusDiffers);
    }
    // MX sets are compared where the resolution worked on both sides; a
    // failed side is already `dns_status_differs`.
    let ok: Vec<&Side<'_>> = sides.iter().filter(|s| s.status == DnsStatus::Ok).collect();
    if let Some(base) = ok.first() {
        if ok.iter().any(|s| {
            s.mx != base.mx || s.null_mx != base.null_mx || s.implicit_mx != base.implicit_mx
        }) {
            classes.push(Disagreement::MxDiffers);
        }
    }
    let exchanges: BTreeSet<&str> = ok
        .iter()
        .flat_map(|s| s.addresses.keys().copied())
        .collect();
    let mut address_differs = false;
    for exchange in exchanges {
        let holders: Vec<(&Side<'_>, &BTreeSet<IpAddr>)> = ok
            .iter()
            .filter_map(|s| s.addresses.get(exchange).map(|a| (*s, a)))
            .collect();
        if holders.len() < 2 || holders.iter().all(|(_, a)| *a == holders[0].1) {
            continue;
        }
        address_differs = true;
        for (side, addresses) in &holders {
            let others: BTreeSet<IpAddr> = holders
                .iter()
                .filter(|(o, _)| o.vantage != side.vantage)
                .flat_map(|(_, a)| a.iter().copied())
                .collect();
            let networks: BTreeSet<_> = others.iter().map(|ip| network(*ip)).collect();
            let others_public = others.iter().any(|ip| is_public(*ip));
            for ip in addresses.iter().filter(|ip| !others.contains(ip)) {
                let not_public = !is_public(*ip) && others_public;
                let outside_networks = !networks.is_empty() && !networks.contains(&network(*ip));
                if not_public || outside_networks {
                    notes.push(AddressNote {
                        vantage: side.vantage.to_string(),
                        exchange: exchange.to_string(),
                        address: ip.to_string(),
                        not_public,
                        outside_networks,
                    });
                }
            }
        }
    }
    if address_differs {
        classes.push(Disagreement::AddressDiffers);
    }
    let secured: Vec<&Side<'_>> = sides.iter().filter(|s| s.dnssec_mx.is_some()).collect();
    let dnssec_differs = secured.first().is_some_and(|base| {
        secured.iter().any(|s| s.dnssec_mx != base.dnssec_mx)
            || secured.iter().any(|s| {
                s.dnssec_exchanges.iter().any(|(name, status)| {
                    secured
                        .iter()
                        .filter_map(|o| o.dnssec_exchanges.get(name))
                        .any(|other| other != status)
                })
            })
    });
    if dnssec_differs {
        classes.push(Disagreement::DnssecDiffers);
    }
    (classes, notes)
}

/// A record's DNS as the report shows it.
pub fn dns_view(record: &DomainRecord) -> DnsView {
    let dns = &record.dns;
    let mut addresses: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for mx in &dns.mx {
        let mut ips: Vec<IpAddr> = mx.addresses.clone();
        ips.sort();
        ips.dedup();
        addresses
            .entry(mx.exchange.clone())
            .or_default()
            .extend(ips.iter().map(IpAddr::to_string));
    }
    DnsView {
        status: snake(&dns.status),
        null_mx: dns.null_mx,
        implicit_mx: dns.implicit_mx,
        mx: dns
            .mx
            .iter()
            .map(|mx| format!("{} {}", mx.preference, mx.exchange))
            .collect(),
        addresses,
        dnssec_mx: record.security.as_ref().map(|s| snake(&s.dnssec_mx)),
        dnssec_exchanges: record
            .security
            .iter()
            .flat_map(|s| s.dnssec_exchanges.iter())
            .map(|(name, status)| (name.clone(), snake(status)))
            .collect(),
    }
}

/// The difference of one domain, or `None` when its vantages agree.
pub fn dns_diff(domain: &str, records: &[(&str, &DomainRecord)]) -> Option<DnsDiff> {
    let (classes, notes) = compare_domain(records);
    if classes.is_empty() {
        return None;
    }
    Some(DnsDiff {
        domain: domain.to_string(),
        classes,
        views: records
            .iter()
            .map(|(v, r)| (v.to_string(), dns_view(r)))
            .collect(),
        notes,
    })
}

/// The state of a merge-join of domain record streams, each sorted by
/// domain name: the head record of each stream. Pull-driven, so that a
/// synchronous ([`merge_by_domain`]) and an asynchronous source (the admin
/// API) share it.
#[derive(Debug)]
pub struct DomainMerge {
    heads: Vec<Option<DomainRecord>>,
}

impl DomainMerge {
    /// A merge of `streams` streams, every head empty until [`Self::set`].
    pub fn new(streams: usize) -> Self {
        Self {
            heads: vec![None; streams],
        }
    }

    /// The next record of stream `i` (`None`: the stream ended).
    pub fn set(&mut self, i: usize, record: Option<DomainRecord>) {
        if let Some(head) = self.heads.get_mut(i) {
            *head = record;
        }
    }

    /// The records of the least domain among the heads, and the streams to
    /// advance before the next call; `None` when every stream ended.
    pub fn next_group(&mut self) -> Option<(Vec<DomainRecord>, Vec<usize>)> {
        let least = self
            .heads
            .iter()
            .flatten()
            .map(|r| r.domain.as_str())
            .min()?
            .to_string();
        let mut group = Vec::new();
        let mut advance = Vec::new();
        for (i, head) in self.heads.iter_mut().enumerate() {
            if head.as_ref().is_some_and(|r| r.domain == least) {
                group.extend(head.take());
                advance.push(i);
            }
        }
        Some((group, advance))
    }
}

/// Joins streams of domain records, each sorted by domain name (as the
/// store yields one vantage's records), and calls `each` with all records
/// of one domain, in domain order. Only one record per stream is held.
/// A stream that is not sorted still has every record delivered, but a
/// domain out of order is then compared in separate groups.
pub fn merge_by_domain<E, I>(
    mut streams: Vec<I>,
    mut each: impl FnMut(Vec<DomainRecord>) -> Result<(), E>,
) -> Result<(), E>
where
    I: Iterator<Item = Result<DomainRecord, E>>,
{
    let mut merge = DomainMerge::new(streams.len());
    for (i, stream) in streams.iter_mut().enumerate() {
        merge.set(i, stream.next().transpose()?);
    }
    while let Some((group, advance)) = merge.next_group() {
        for i in advance {
            if let Some(stream) = streams.get_mut(i) {
                merge.set(i, stream.next().transpose()?);
            }
        }
        each(group)?;
    }
    Ok(())
}

/// Targets probed from one vantage only, and the domains of that vantage
/// whose MX led to them (the first [`ONE_VANTAGE_DOMAINS_CAP`] by name).
/// Memory grows with such targets, not with domains.
#[derive(Debug, Default)]
pub struct OneVantage {
    targets: BTreeMap<IpAddr, OneVantageTarget>,
}

impl OneVantage {
    /// `ip` was probed from `vantage` alone.
    pub fn track(&mut self, ip: IpAddr, vantage: &str, mx_names: &BTreeSet<String>) {
        self.targets.insert(
            ip,
            OneVantageTarget {
                ip: ip.to_string(),
                vantage: vantage.to_string(),
                mx_names: mx_names.iter().cloned().collect(),
                domains: Vec::new(),
                more_domains: 0,
            },
        );
    }

    /// A domain record of `vantage`: counted for each tracked address of it.
    pub fn add_domain(&mut self, vantage: &str, record: &DomainRecord) {
        if self.targets.is_empty() {
            return;
        }
        let addresses: BTreeSet<IpAddr> = record
            .dns
            .mx
            .iter()
            .flat_map(|mx| mx.addresses.iter().copied())
            .collect();
        for ip in addresses {
            let Some(target) = self.targets.get_mut(&ip) else {
                continue;
            };
            if target.vantage != vantage {
                continue;
            }
            if target.domains.len() < ONE_VANTAGE_DOMAINS_CAP {
                target.domains.push(record.domain.clone());
            } else {
                target.more_domains += 1;
            }
        }
    }

    /// The targets by address.
    pub fn finish(self) -> Vec<OneVantageTarget> {
        self.targets.into_values().collect()
    }
}
