//! Reverse DNS of a probed IP with forward confirmation (FCrDNS): the PTR
//! names of the IP, and whether one of them resolves (A or AAAA, same
//! family) back to the IP.
//!
//! At most [`MAX_PTR_NAMES`] PTR names are confirmed, concurrently. The
//! lookups go through the [`SecureResolver`]: unsigned reverse zones answer
//! normally, bogus ones count as a failed lookup.

use std::net::IpAddr;

use hickory_resolver::proto::rr::{Name, RData, RecordType};
use mxscope_common::record::security_dns::{ReverseDns, ReverseDnsVerdict};
use tokio::task::JoinSet;

use crate::security::dnssec::{Answer, SecureResolver};

/// PTR names forward-confirmed per IP (the rest are recorded, not checked).
pub const MAX_PTR_NAMES: usize = 8;

/// Reverse DNS of `ip`: PTR names and forward confirmation.
pub async fn reverse(resolver: &SecureResolver, ip: IpAddr) -> ReverseDns {
    let ptr_name = Name::from(ip);
    let names: Vec<String> = match resolver.query(&ptr_name, RecordType::PTR).await {
        Answer::Records { records, .. } => {
            let mut names: Vec<String> = records
                .iter()
                .filter_map(|r| match &r.data {
                    RData::PTR(ptr) => Some(normalize(&ptr.0.to_ascii())),
                    _ => None,
                })
                .filter(|n| !n.is_empty())
                .collect();
            names.sort();
            names.dedup();
            names
        }
        Answer::Empty { nxdomain, .. } => {
            let what = if nxdomain { "NXDOMAIN" } else { "NODATA" };
            return verdict(
                ReverseDnsVerdict::NoPtr,
                Vec::new(),
                format!("no PTR record ({what})"),
            );
        }
        Answer::Failed { reason, .. } => {
            return verdict(
                ReverseDnsVerdict::LookupFailed,
                Vec::new(),
                format!("PTR lookup failed: {reason}"),
            );
        }
    };
    if names.is_empty() {
        return verdict(ReverseDnsVerdict::NoPtr, names, "no PTR record".into());
    }

    let rtype = match ip {
        IpAddr::V4(_) => RecordType::A,
        IpAddr::V6(_) => RecordType::AAAA,
    };
    let mut set = JoinSet::new();
    for name in names.iter().take(MAX_PTR_NAMES) {
        let Some(fqdn) = crate::security::dnssec::fqdn(name) else {
            continue;
        };
        let resolver = resolver.clone();
        let name = name.clone();
        set.spawn(async move {
            let answer = resolver.query(&fqdn, rtype).await;
            (name, answer)
        });
    }
    let mut notes = Vec::new();
    let mut confirmed = None;
    while let Some(joined) = set.join_next().await {
        let Ok((name, answer)) = joined else {
            continue;
        };
        match answer {
            Answer::Records { records, .. } => {
                let back = records.iter().any(|r| match &r.data {
                    RData::A(a) => IpAddr::V4(a.0) == ip,
                    RData::AAAA(aaaa) => IpAddr::V6(aaaa.0) == ip,
                    _ => false,
                });
                if back {
                    confirmed.get_or_insert(name);
                } else {
                    notes.push(format!("{name} resolves to other addresses"));
                }
            }
            Answer::Empty { nxdomain, .. } => notes.push(format!(
                "{name} has no {rtype} record ({})",
                if nxdomain { "NXDOMAIN" } else { "NODATA" }
            )),
            Answer::Failed { reason, .. } => {
                notes.push(format!("{name}: {rtype} lookup failed: {reason}"));
            }
        }
    }
    match confirmed {
        Some(name) => verdict(
            ReverseDnsVerdict::FcrdnsOk,
            names,
            format!("{name} resolves back to {ip}"),
        ),
        None => {
            notes.sort();
            verdict(ReverseDnsVerdict::PtrMismatch, names, notes.join("; "))
        }
    }
}

fn verdict(verdict: ReverseDnsVerdict, names: Vec<String>, detail: String) -> ReverseDns {
    ReverseDns {
        verdict,
        names,
        detail: Some(detail),
    }
}

fn normalize(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
}
