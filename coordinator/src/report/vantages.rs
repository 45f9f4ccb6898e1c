//! Vantage against vantage inside one scan: every target probed from two
//! or more vantages whose outcome, EHLO keywords, STARTTLS presence, leaf
//! certificate, negotiated TLS version or DANE verdicts differ becomes a [`VantageDiff`],
//! classified by [`Disagreement`]. One pass over target records; memory is
//! one small view per (IP, vantage).
//!
//! Domains whose MTA-STS verdict differs become a [`DomainDiff`]. Only
//! domains with an MTA-STS TXT record from some vantage are kept (most
//! domains have none); a domain record that says `no_mta_sts` is kept only
//! when another vantage's record for that domain came first, so callers
//! feed domain records twice (see [`VantageComparer::add_domain`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::security_dns::DaneVerdict;
use mxscope_common::security_policy::{MtaSts, MtaStsVerdict};
use mxscope_common::{Bucket, DomainRecord, TargetRecord};
use mxscope_worker::mtasts::{self, MxTls};

use super::model::{Disagreement, DomainDiff, ScanInfo, TargetView, VantageDiff, VantagesReport};

/// Every class of a target, in report order.
pub const CLASSES: [Disagreement; 6] = [
    Disagreement::StarttlsStrippedOnPath,
    Disagreement::CertificateDiffers,
    Disagreement::ReachabilityDiffers,
    Disagreement::RateLimited,
    Disagreement::DaneDiffers,
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
    }
}

/// What one vantage saw, with what classification needs beyond the view.
#[derive(Debug, Clone)]
struct Observed {
    view: TargetView,
    bucket: Bucket,
    /// A 421 in the greeting or a reply.
    rate_limited: bool,
    /// Upper-cased, sorted EHLO keywords (for comparison).
    ehlo_set: BTreeSet<String>,
    /// DANE verdict per MX name (empty without security checks).
    dane: BTreeMap<String, DaneVerdict>,
    /// TLS facts per MX name, for the MTA-STS join.
    mx_tls: Vec<MxTls>,
}

impl Observed {
    fn of(record: &TargetRecord) -> Self {
        let starttls = record.ehlo.iter().any(|k| {
            k.split_whitespace()
                .next()
                .is_some_and(|w| w.eq_ignore_ascii_case("STARTTLS"))
        });
        let rate_limited = record.greeting.as_ref().is_some_and(|g| g.code == 421)
            || record
                .starttls_reply
                .as_ref()
                .is_some_and(|r| r.code == 421)
            || record
                .detail
                .as_deref()
                .is_some_and(|d| d.trim_start().starts_with("421"));
        Self {
            view: TargetView {
                outcome: record.outcome.as_str().to_string(),
                ehlo: record.ehlo.clone(),
                starttls_advertised: starttls,
                certificate_sha256: record
                    .tls
                    .as_ref()
                    .and_then(|t| t.chain.first())
                    .map(|c| c.sha256.clone()),
                tls_version: record.tls.as_ref().map(|t| t.version.clone()),
                greeting_code: record.greeting.as_ref().map(|g| g.code),
            },
            bucket: record.outcome.bucket(),
            rate_limited,
            ehlo_set: record
                .ehlo
                .iter()
                .map(|k| k.trim().to_ascii_uppercase())
                .collect(),
            dane: record
                .dane
                .iter()
                .map(|(mx, d)| (mx.clone(), d.verdict))
                .collect(),
            mx_tls: mtasts::mx_tls_facts(record),
        }
    }

    /// Same outcome, EHLO set, STARTTLS presence, certificate and version.
    fn same_as(&self, other: &Self) -> bool {
        self.view.outcome == other.view.outcome
            && self.ehlo_set == other.ehlo_set
            && self.view.starttls_advertised == other.view.starttls_advertised
            && self.view.certificate_sha256 == other.view.certificate_sha256
            && self.view.tls_version == other.view.tls_version
            && self.dane == other.dane
    }

    /// An EHLO answer came back, without STARTTLS (absent or masked).
    fn answered_without_starttls(&self) -> bool {
        !self.view.starttls_advertised
            && (!self.view.ehlo.is_empty() || self.view.outcome == "no_starttls")
    }
}

#[derive(Debug, Default)]
struct Seen {
    mx_names: BTreeSet<String>,
    views: BTreeMap<String, Observed>,
}

/// The classes of one target's views; empty when they agree.
fn classify(views: &BTreeMap<String, Observed>) -> Vec<Disagreement> {
    let all: Vec<&Observed> = views.values().collect();
    let Some(first) = all.first() else {
        return Vec::new();
    };
    if all.iter().all(|o| o.same_as(first)) {
        return Vec::new();
    }
    let mut classes = Vec::new();
    if all.iter().any(|o| o.view.starttls_advertised)
        && all.iter().any(|o| o.answered_without_starttls())
    {
        classes.push(Disagreement::StarttlsStrippedOnPath);
    }
    let certs: BTreeSet<&String> = all
        .iter()
        .filter_map(|o| o.view.certificate_sha256.as_ref())
        .collect();
    if certs.len() > 1 {
        classes.push(Disagreement::CertificateDiffers);
    }
    if all
        .iter()
        .any(|o| o.bucket == Bucket::ConnectionError && !o.rate_limited)
        && all.iter().any(|o| o.bucket != Bucket::ConnectionError)
    {
        classes.push(Disagreement::ReachabilityDiffers);
    }
    if all.iter().any(|o| o.rate_limited) && all.iter().any(|o| !o.rate_limited) {
        classes.push(Disagreement::RateLimited);
    }
    let mut dane: BTreeMap<&String, BTreeSet<DaneVerdict>> = BTreeMap::new();
    for o in &all {
        for (mx, verdict) in &o.dane {
            dane.entry(mx).or_default().insert(*verdict);
        }
    }
    if dane.values().any(|verdicts| verdicts.len() > 1) {
        classes.push(Disagreement::DaneDiffers);
    }
    if classes.is_empty() {
        classes.push(Disagreement::OtherDifference);
    }
    classes
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

/// Collects target views per IP and vantage (the one pass) and MTA-STS
/// facts per domain and vantage, then classifies.
#[derive(Debug)]
pub struct VantageComparer {
    scan: ScanInfo,
    targets: BTreeMap<IpAddr, Seen>,
    /// Domains with an MTA-STS TXT record from some vantage.
    domains: BTreeMap<String, BTreeMap<String, StsSeen>>,
}

impl VantageComparer {
    pub fn new(scan: ScanInfo) -> Self {
        Self {
            scan,
            targets: BTreeMap::new(),
            domains: BTreeMap::new(),
        }
    }

    /// One domain record (records without a vantage or security facts are
    /// ignored). A `no_mta_sts` record is kept only when the domain is
    /// already known from another vantage, so feed every domain record
    /// twice (adding one again changes nothing) unless
    /// [`Self::wants_second_domain_pass`] says no.
    pub fn add_domain(&mut self, record: &DomainRecord) {
        let (Some(vantage), Some(sec)) = (record.vantage.as_deref(), record.security.as_ref())
        else {
            return;
        };
        let sts = &sec.mta_sts;
        if sts.verdict == MtaStsVerdict::NoMtaSts {
            if let Some(seen) = self.domains.get_mut(&record.domain) {
                seen.insert(vantage.to_string(), StsSeen::of(record, sts));
            }
            return;
        }
        self.domains
            .entry(record.domain.clone())
            .or_default()
            .insert(vantage.to_string(), StsSeen::of(record, sts));
    }

    /// Whether a second pass over domain records can change the report
    /// (some domain has an MTA-STS TXT record).
    pub fn wants_second_domain_pass(&self) -> bool {
        !self.domains.is_empty()
    }

    /// One target record (records without a vantage are ignored).
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

    /// The report: every differing target, by IP.
    pub fn finish(self) -> VantagesReport {
        let (domains_compared, domain_diffs) = self.domain_diffs();
        let mut report = VantagesReport {
            scan: self.scan,
            domains_compared,
            ..VantagesReport::default()
        };
        for (ip, seen) in self.targets {
            if seen.views.len() < 2 {
                continue;
            }
            report.targets_compared += 1;
            let classes = classify(&seen.views);
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
        if !domain_diffs.is_empty() {
            report.summary.insert(
                class_name(Disagreement::MtaStsDiffers).to_string(),
                domain_diffs.len() as u64,
            );
        }
        report.domain_diffs = domain_diffs;
        report
    }

    /// Domains seen from two or more vantages, and those whose MTA-STS
    /// verdict differs.
    fn domain_diffs(&self) -> (u64, Vec<DomainDiff>) {
        let mut compared = 0;
        let mut diffs = Vec::new();
        for (domain, seen) in &self.domains {
            if seen.len() < 2 {
                continue;
            }
            compared += 1;
            let verdicts: BTreeMap<String, String> = seen
                .iter()
                .map(|(vantage, sts)| {
                    let verdict = self.mta_sts_verdict(vantage, sts);
                    (vantage.clone(), verdict_name(verdict))
                })
                .collect();
            let distinct: BTreeSet<&String> = verdicts.values().collect();
            if distinct.len() > 1 {
                diffs.push(DomainDiff {
                    domain: domain.clone(),
                    classes: vec![Disagreement::MtaStsDiffers],
                    mta_sts: verdicts,
                });
            }
        }
        (compared, diffs)
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

/// The vantages report from a target record stream (no MTA-STS
/// comparison; see [`vantages_report_with_domains`]).
pub fn vantages_report<E>(
    scan: ScanInfo,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<VantagesReport, E> {
    vantages_report_with_domains(scan, std::iter::empty, targets)
}

/// The vantages report from a target record stream and a domain record
/// stream, read up to twice (the second pass only when some domain has an
/// MTA-STS TXT record).
pub fn vantages_report_with_domains<E, D>(
    scan: ScanInfo,
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<VantagesReport, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    let mut comparer = VantageComparer::new(scan);
    for record in domains() {
        comparer.add_domain(&record?);
    }
    if comparer.wants_second_domain_pass() {
        for record in domains() {
            comparer.add_domain(&record?);
        }
    }
    for record in targets {
        comparer.add_target(&record?);
    }
    Ok(comparer.finish())
}

/// "2 targets differ: 1 starttls_stripped_on_path, 1 certificate_differs
/// (of 5 targets probed from 2 or more vantages)".
pub fn summary_line(report: &VantagesReport) -> String {
    let n = report.diffs.len();
    let classes: Vec<String> = CLASSES
        .iter()
        .filter_map(|c| {
            let name = class_name(*c);
            report
                .summary
                .get(name)
                .map(|count| format!("{count} {name}"))
        })
        .collect();
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
    line
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}
