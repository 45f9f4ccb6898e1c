//! The pure part of MX resolution: the MX plan (null MX, implicit MX,
//! order, cap), an exchange's A and AAAA merged with CNAME following and its
//! address cap, and the failure classes.

use std::net::IpAddr;

use hickory_resolver::proto::rr::{Name, RData, Record};
use mxscope_common::{DnsAnomaly, DnsStatus};

use super::{MAX_ADDRESSES_PER_EXCHANGE, MAX_CNAME_HOPS, MAX_EXCHANGES};

pub(super) const NXDOMAIN_MESSAGE: &str = "domain does not exist (NXDOMAIN)";

/// The fixed message of a failure status (hickory's own text only for `Error`).
pub(super) fn status_message(status: DnsStatus) -> &'static str {
    match status {
        DnsStatus::Nxdomain => NXDOMAIN_MESSAGE,
        DnsStatus::Nodata => "no records of the type (NODATA)",
        DnsStatus::Servfail => "server failure (SERVFAIL)",
        DnsStatus::Timeout => "timed out",
        DnsStatus::Refused => "query refused (REFUSED)",
        _ => "resolver error",
    }
}

/// A lookup that did not give records.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Failure {
    pub(super) status: DnsStatus,
    pub(super) message: String,
}

impl Failure {
    pub(super) fn new(status: DnsStatus) -> Self {
        Self {
            status,
            message: status_message(status).to_string(),
        }
    }
}

/// What the A and AAAA lookups of one name gave.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Addresses {
    /// Sorted (IPv4 first), deduplicated, at most [`MAX_ADDRESSES_PER_EXCHANGE`].
    pub(super) addresses: Vec<IpAddr>,
    /// How many distinct addresses there were, when more than were kept.
    pub(super) truncated_from: Option<usize>,
    /// The end of the CNAME chain when the name is an alias.
    pub(super) cname: Option<String>,
    /// `Ok` when there are addresses.
    pub(super) status: DnsStatus,
    pub(super) error: Option<String>,
}

impl Addresses {
    pub(super) fn failed(status: DnsStatus, error: &str) -> Self {
        Self {
            addresses: Vec::new(),
            truncated_from: None,
            cname: None,
            status,
            error: Some(error.to_string()),
        }
    }
}

/// Merge the A and AAAA results of `name`: addresses from both, the alias
/// target, and the status (`Ok` with any address; else NXDOMAIN or NODATA
/// when both answers were negative; else the first real failure).
pub(super) fn merge_addresses<R: AsRef<[Record]>>(
    name: &Name,
    results: [Result<R, Failure>; 2],
) -> Addresses {
    let mut addresses = Vec::new();
    let mut cname = None;
    let mut nxdomain = false;
    let mut failure: Option<Failure> = None;
    for result in results {
        match result {
            Ok(records) => {
                let records = records.as_ref();
                addresses.extend(records.iter().filter_map(|r| match &r.data {
                    RData::A(a) => Some(IpAddr::V4(a.0)),
                    RData::AAAA(aaaa) => Some(IpAddr::V6(aaaa.0)),
                    _ => None,
                }));
                if cname.is_none() {
                    cname = cname_target(name, records).map(|t| normalize_name(&t.to_ascii()));
                }
            }
            Err(f) if f.status == DnsStatus::Nxdomain => nxdomain = true,
            Err(f) if f.status == DnsStatus::Nodata => {}
            Err(f) => {
                failure.get_or_insert(f);
            }
        }
    }
    addresses.sort();
    addresses.dedup();
    let truncated_from = (addresses.len() > MAX_ADDRESSES_PER_EXCHANGE).then_some(addresses.len());
    addresses.truncate(MAX_ADDRESSES_PER_EXCHANGE);
    let (status, error) = if !addresses.is_empty() {
        (DnsStatus::Ok, None)
    } else if let Some(f) = failure {
        (f.status, Some(f.message))
    } else if nxdomain {
        (DnsStatus::Nxdomain, Some(NXDOMAIN_MESSAGE.to_string()))
    } else {
        (
            DnsStatus::Nodata,
            Some(status_message(DnsStatus::Nodata).to_string()),
        )
    };
    Addresses {
        addresses,
        truncated_from,
        cname,
        status,
        error,
    }
}

/// Follow CNAME records from `name` through `records`; the last name of the
/// chain, when there is at least one hop.
pub(super) fn cname_target(name: &Name, records: &[Record]) -> Option<Name> {
    let mut current = name.clone();
    let mut hops = 0;
    while hops < MAX_CNAME_HOPS {
        let next = records.iter().find_map(|r| match &r.data {
            RData::CNAME(target) if r.name == current => Some(target.0.clone()),
            _ => None,
        });
        match next {
            Some(next) if next != current => {
                current = next;
                hops += 1;
            }
            _ => break,
        }
    }
    (hops > 0).then_some(current)
}

/// `domain` as a fully qualified, lowercase name; `None` when it is not a
/// valid ASCII domain name.
pub(super) fn fqdn(domain: &str) -> Option<Name> {
    let domain = domain.trim();
    let domain = domain.strip_suffix('.').unwrap_or(domain);
    if domain.is_empty() || !domain.is_ascii() {
        return None;
    }
    Name::from_ascii(format!("{domain}."))
        .ok()
        .map(|n| n.to_lowercase())
}

/// A DNS name as records carry it: lowercase, without the trailing dot.
/// The root (`.`) becomes the empty string.
pub fn normalize_name(name: &str) -> String {
    let name = name.strip_suffix('.').unwrap_or(name);
    name.to_ascii_lowercase()
}

/// What an MX RRset means, before any address lookup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MxPlan {
    /// RFC 7505 null MX: the only exchange is the root.
    pub null_mx: bool,
    /// Exchanges to resolve, by preference then name, without duplicates
    /// and without the root.
    pub exchanges: Vec<(u16, String)>,
    /// More than [`MAX_EXCHANGES`] were present; the rest were dropped.
    pub truncated: bool,
    pub anomalies: Vec<DnsAnomaly>,
}

/// Turn an MX RRset (`(preference, normalized exchange)`, the root as `""`)
/// into what to resolve: ordered, deduplicated, null MX detected (a root
/// exchange alone is a null MX; mixed with others it is dropped and reported).
pub fn plan_mx(mut records: Vec<(u16, String)>) -> MxPlan {
    records.sort();
    records.dedup();
    let roots = records.iter().filter(|(_, name)| name.is_empty()).count();
    if roots > 0 && roots == records.len() {
        return MxPlan {
            null_mx: true,
            exchanges: Vec::new(),
            truncated: false,
            anomalies: Vec::new(),
        };
    }
    let mut anomalies = Vec::new();
    if roots > 0 {
        anomalies.push(DnsAnomaly::NullMxWithOthers);
        records.retain(|(_, name)| !name.is_empty());
    }
    let truncated = records.len() > MAX_EXCHANGES;
    records.truncate(MAX_EXCHANGES);
    MxPlan {
        null_mx: false,
        exchanges: records,
        truncated,
        anomalies,
    }
}
