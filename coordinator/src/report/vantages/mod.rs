//! Vantage against vantage inside one scan: every target probed from two
//! or more vantages whose outcome, EHLO keywords, STARTTLS presence, leaf
//! certificate, negotiated TLS version, DANE verdicts or TLSA answers
//! differ becomes a [`VantageDiff`], classified by [`Disagreement`]; a
//! different certificate is `tls_intercepted` when one side's chain
//! verifies for the MX name (or matches TLSA) and the other's does not,
//! with a different key, else `certificate_differs`. One pass over target
//! records; memory is one small view per (IP, vantage).
//!
//! Then one pass over domain records, one domain at a time (the store's
//! per-vantage streams merge-joined by [`merge_by_domain`]): DNS answers
//! compared ([`vantages_dns`], a [`DnsDiff`]), MTA-STS verdicts compared
//! (a [`DomainDiff`]) and the domains behind targets that only one vantage
//! probed collected.

pub mod agreement;
mod classify;
pub mod dns;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::mtasts::{self, MxTls};
use mxscope_common::record::security_policy::{MtaSts, MtaStsVerdict};
use mxscope_common::{DomainRecord, TargetRecord};

use self::classify::{classify, Observed};
use self::dns::{merge_by_domain, OneVantage};
use super::model::{Disagreement, DnsDiff, DomainDiff, ScanInfo, VantageDiff, VantagesReport};

/// Every class of a target, in report order.
pub const CLASSES: [Disagreement; 9] = [
    Disagreement::StarttlsStrippedOnPath,
    Disagreement::TlsIntercepted,
    Disagreement::SuitesDiffer,
    Disagreement::CertificateDiffers,
    Disagreement::ReachabilityDiffers,
    Disagreement::RateLimited,
    Disagreement::DaneDiffers,
    Disagreement::TlsaDiffers,
    Disagreement::OtherDifference,
];

/// The snake-case name of a class (as in JSON).
pub fn class_name(class: Disagreement) -> &'static str {
    match class {
        Disagreement::StarttlsStrippedOnPath => "starttls_stripped_on_path",
        Disagreement::CertificateDiffers => "certificate_differs",
        Disagreement::ReachabilityDiffers => "reachability_differs",
        Disagreement::RateLimited => "rate_limited",
        Disagreement::OtherDifference => "other_difference",
        Disagreement::DaneDiffers => "dane_differs",
        Disagreement::MtaStsDiffers => "mta_sts_differs",
        Disagreement::TlsIntercepted => "tls_intercepted",
        Disagreement::TlsaDiffers => "tlsa_differs",
        Disagreement::SuitesDiffer => "suites_differ",
        Disagreement::MxDiffers => "mx_differs",
        Disagreement::AddressDiffers => "address_differs",
        Disagreement::DnssecDiffers => "dnssec_differs",
        Disagreement::DnsStatusDiffers => "dns_status_differs",
    }
}

#[derive(Debug, Default)]
struct Seen {
    mx_names: BTreeSet<String>,
    views: BTreeMap<String, Observed>,
}

/// What one vantage's domain record says about MTA-STS: the stored
/// verdict and what re-evaluating it against that vantage's targets needs.
#[derive(Debug, Clone)]
struct StsSeen {
    stored: MtaSts,
    mx_names: Vec<String>,
    addresses: Vec<IpAddr>,
}

impl StsSeen {
    fn of(record: &DomainRecord, stored: &MtaSts) -> Self {
        Self {
            stored: stored.clone(),
            mx_names: record.dns.mx.iter().map(|mx| mx.exchange.clone()).collect(),
            addresses: record
                .dns
                .mx
                .iter()
                .flat_map(|mx| mx.addresses.iter().copied())
                .collect(),
        }
    }
}

/// Collects target views per IP and vantage (the target pass), then
/// compares each domain's records from every vantage (the domain pass:
/// DNS, MTA-STS, the domains behind one-vantage targets), then classifies.
///
/// Feed every target record first, then the domain records one domain at
/// a time ([`Self::add_domain_group`], e.g. from [`merge_by_domain`]);
/// [`Self::add_domain`] takes records in any order but holds them all
/// until [`Self::finish`].
#[derive(Debug)]
pub struct VantageComparer {
    scan: ScanInfo,
    targets: BTreeMap<IpAddr, Seen>,
    /// The classes of every target seen from two or more vantages, fixed
    /// when the domain pass starts.
    classified: Option<BTreeMap<IpAddr, Vec<Disagreement>>>,
    one_vantage: OneVantage,
    /// Records from [`Self::add_domain`], by domain, until [`Self::finish`].
    pending: BTreeMap<String, Vec<DomainRecord>>,
    /// Domains with MTA-STS from some vantage, seen from two or more.
    sts_compared: u64,
    sts_diffs: Vec<DomainDiff>,
    dns_compared: u64,
    domains_agreeing: u64,
    dns_diffs: Vec<DnsDiff>,
}

impl VantageComparer {
    pub fn new(scan: ScanInfo) -> Self {
        Self {
            scan,
            targets: BTreeMap::new(),
            classified: None,
            one_vantage: OneVantage::default(),
            pending: BTreeMap::new(),
            sts_compared: 0,
            sts_diffs: Vec::new(),
            dns_compared: 0,
            domains_agreeing: 0,
            dns_diffs: Vec::new(),
        }
    }

    /// A comparer that has seen every target record of `targets`.
    fn with_targets<E>(
        scan: ScanInfo,
        targets: impl Iterator<Item = Result<TargetRecord, E>>,
    ) -> Result<Self, E> {
        let mut comparer = Self::new(scan);
        for record in targets {
            comparer.add_target(&record?);
        }
        Ok(comparer)
    }

    /// One domain record, in any order: held until [`Self::finish`]
    /// (memory grows with domains; prefer [`Self::add_domain_group`]).
    pub fn add_domain(&mut self, record: &DomainRecord) {
        if record.vantage.is_none() {
            return;
        }
        self.pending
            .entry(record.domain.clone())
            .or_default()
            .push(record.clone());
    }

    /// One target record (records without a vantage are ignored). Every
    /// target comes before the first domain group.
    pub fn add_target(&mut self, record: &TargetRecord) {
        let Some(vantage) = record.vantage.as_deref() else {
            return;
        };
        let seen = self.targets.entry(record.ip).or_default();
        for name in &record.mx_names {
            if !seen.mx_names.contains(name) {
                seen.mx_names.insert(name.clone());
            }
        }
        seen.views.insert(vantage.to_string(), Observed::of(record));
    }

    /// Classifies the targets once (the target pass is over).
    fn classify_targets(&mut self) {
        if self.classified.is_some() {
            return;
        }
        let mut classified = BTreeMap::new();
        for (ip, seen) in &self.targets {
            if seen.views.len() >= 2 {
                classified.insert(*ip, classify(&seen.views));
            } else if let Some(vantage) = seen.views.keys().next() {
                self.one_vantage.track(*ip, vantage, &seen.mx_names);
            }
        }
        self.classified = Some(classified);
    }

    /// All records of one domain (one per vantage), after every target.
    pub fn add_domain_group(&mut self, records: Vec<DomainRecord>) {
        self.classify_targets();
        let records: Vec<(&str, &DomainRecord)> = records
            .iter()
            .filter_map(|r| Some((r.vantage.as_deref()?, r)))
            .collect();
        let Some((_, first)) = records.first() else {
            return;
        };
        let domain = first.domain.clone();
        for (vantage, record) in &records {
            self.one_vantage.add_domain(vantage, record);
        }
        if records.len() < 2 {
            return;
        }
        self.dns_compared += 1;
        let dns = dns::dns_diff(&domain, &records);
        let sts = self.sts_diff(&domain, &records);
        let target_differs = records.iter().any(|(_, r)| {
            r.dns.mx.iter().flat_map(|mx| &mx.addresses).any(|ip| {
                self.classified
                    .as_ref()
                    .and_then(|c| c.get(ip))
                    .is_some_and(|classes| !classes.is_empty())
            })
        });
        if dns.is_none() && sts.is_none() && !target_differs {
            self.domains_agreeing += 1;
        }
        self.dns_diffs.extend(dns);
        self.sts_diffs.extend(sts);
    }

    /// The MTA-STS difference of one domain: only domains with an MTA-STS
    /// TXT record from some vantage, seen with security checks from two or
    /// more, are compared.
    fn sts_diff(&mut self, domain: &str, records: &[(&str, &DomainRecord)]) -> Option<DomainDiff> {
        let seen: Vec<(&str, StsSeen)> = records
            .iter()
            .filter_map(|(v, r)| Some((*v, StsSeen::of(r, &r.security.as_ref()?.mta_sts))))
            .collect();
        if seen.len() < 2
            || seen
                .iter()
                .all(|(_, s)| s.stored.verdict == MtaStsVerdict::NoMtaSts)
        {
            return None;
        }
        self.sts_compared += 1;
        let verdicts: BTreeMap<String, String> = seen
            .iter()
            .map(|(vantage, sts)| {
                let verdict = self.mta_sts_verdict(vantage, sts);
                (vantage.to_string(), verdict_name(verdict))
            })
            .collect();
        let distinct: BTreeSet<&String> = verdicts.values().collect();
        (distinct.len() > 1).then(|| DomainDiff {
            domain: domain.to_string(),
            classes: vec![Disagreement::MtaStsDiffers],
            mta_sts: verdicts,
        })
    }

    /// The report: every differing target by IP, every differing domain.
    pub fn finish(mut self) -> VantagesReport {
        self.classify_targets();
        for (_, group) in std::mem::take(&mut self.pending) {
            self.add_domain_group(group);
        }
        let mut report = VantagesReport {
            scan: self.scan,
            domains_compared: self.sts_compared,
            dns_domains_compared: self.dns_compared,
            domains_agreeing: self.domains_agreeing,
            one_vantage_targets: self.one_vantage.finish(),
            ..VantagesReport::default()
        };
        let mut classified = self.classified.unwrap_or_default();
        for (ip, seen) in self.targets {
            let Some(classes) = classified.remove(&ip) else {
                continue;
            };
            report.targets_compared += 1;
            if classes.is_empty() {
                continue;
            }
            for class in &classes {
                *report
                    .summary
                    .entry(class_name(*class).to_string())
                    .or_default() += 1;
            }
            report.diffs.push(VantageDiff {
                ip: ip.to_string(),
                mx_names: seen.mx_names.into_iter().collect(),
                classes,
                views: seen.views.into_iter().map(|(v, o)| (v, o.view)).collect(),
            });
        }
        if !self.sts_diffs.is_empty() {
            report.summary.insert(
                class_name(Disagreement::MtaStsDiffers).to_string(),
                self.sts_diffs.len() as u64,
            );
        }
        for diff in &self.dns_diffs {
            for class in &diff.classes {
                *report
                    .summary
                    .entry(class_name(*class).to_string())
                    .or_default() += 1;
            }
        }
        report.domain_diffs = self.sts_diffs;
        report.dns_diffs = self.dns_diffs;
        report
    }

    /// The verdict one vantage saw: the stored one, finished against that
    /// vantage's target records (as the security section does) when it
    /// depends on the MX hosts.
    fn mta_sts_verdict(&self, vantage: &str, sts: &StsSeen) -> MtaStsVerdict {
        let facts: Vec<MxTls> = sts
            .addresses
            .iter()
            .filter_map(|ip| self.targets.get(ip)?.views.get(vantage))
            .flat_map(|o| o.mx_tls.iter().cloned())
            .collect();
        mtasts::reevaluate(&sts.stored, &sts.mx_names, &facts).verdict
    }
}

/// A verdict's snake_case record name.
fn verdict_name(verdict: MtaStsVerdict) -> String {
    match serde_json::to_value(verdict) {
        Ok(serde_json::Value::String(s)) => s,
        _ => format!("{verdict:?}"),
    }
}

/// The vantages report from a target record stream (no domain
/// comparison; see [`vantages_report_joined`]).
pub fn vantages_report<E>(
    scan: ScanInfo,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<VantagesReport, E> {
    vantages_report_joined(scan, Vec::<std::iter::Empty<_>>::new(), targets)
}

/// The vantages report from a target record stream and a domain record
/// stream in any order (the domain records are held; see
/// [`vantages_report_joined`] for the streaming form).
pub fn vantages_report_with_domains<E, D>(
    scan: ScanInfo,
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<VantagesReport, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    let mut comparer = VantageComparer::with_targets(scan, targets)?;
    for record in domains() {
        comparer.add_domain(&record?);
    }
    Ok(comparer.finish())
}

/// The vantages report from a target record stream and one domain record
/// stream per vantage, each sorted by domain (the store's order): one pass
/// over each, the domains merge-joined, so memory grows with targets and
/// differences, not with domains.
pub fn vantages_report_joined<E, D>(
    scan: ScanInfo,
    domain_streams: Vec<D>,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<VantagesReport, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    let mut comparer = VantageComparer::with_targets(scan, targets)?;
    merge_by_domain(domain_streams, |group| {
        comparer.add_domain_group(group);
        Ok(())
    })?;
    Ok(comparer.finish())
}

/// `3 mx_differs` for each of `classes` in the summary, in that order.
fn class_counts(report: &VantagesReport, classes: &[Disagreement]) -> Vec<String> {
    classes
        .iter()
        .filter_map(|c| {
            let name = class_name(*c);
            report
                .summary
                .get(name)
                .map(|count| format!("{count} {name}"))
        })
        .collect()
}

/// "2 targets differ: 1 starttls_stripped_on_path, 1 certificate_differs
/// (of 5 targets probed from 2 or more vantages)".
pub fn summary_line(report: &VantagesReport) -> String {
    let n = report.diffs.len();
    let classes = class_counts(report, &CLASSES);
    let mut line = format!(
        "{n} target{} differ{}",
        plural(n),
        if n == 1 { "s" } else { "" }
    );
    if !classes.is_empty() {
        line.push_str(": ");
        line.push_str(&classes.join(", "));
    }
    line.push_str(&format!(
        " (of {} target{} probed from 2 or more vantages)",
        report.targets_compared,
        plural(report.targets_compared as usize)
    ));
    if report.domains_compared > 0 {
        let n = report.domain_diffs.len();
        line.push_str(&format!(
            "; {n} domain{} whose MTA-STS verdict differs (of {} domain{} with MTA-STS seen from 2 or more vantages)",
            plural(n),
            report.domains_compared,
            plural(report.domains_compared as usize)
        ));
    }
    if report.dns_domains_compared > 0 {
        let n = report.dns_diffs.len();
        let classes = class_counts(report, &dns::DNS_CLASSES);
        line.push_str(&format!("; {n} domain{} whose DNS differs", plural(n)));
        if !classes.is_empty() {
            line.push_str(&format!(": {}", classes.join(", ")));
        }
        line.push_str(&format!(
            " (of {} domain{} resolved from 2 or more vantages)",
            report.dns_domains_compared,
            plural(report.dns_domains_compared as usize)
        ));
    }
    let one = report.one_vantage_targets.len();
    if one > 0 {
        line.push_str(&format!(
            "; {one} target{} probed from one vantage only",
            plural(one)
        ));
    }
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
