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

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use mxscope_common::mtasts::{self, MxTls};
use mxscope_common::security_dns::DaneVerdict;
use mxscope_common::security_policy::{MtaSts, MtaStsVerdict};
use mxscope_common::{Bucket, DomainRecord, TargetRecord, Verification};

use super::model::{
    Disagreement, DnsDiff, DomainDiff, ScanInfo, TargetView, VantageDiff, VantagesReport,
};
use super::vantages_dns::{self, merge_by_domain, OneVantage};

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
    /// The chain verifies and names one of the target's MX names.
    pkix_ok: bool,
    /// SHA-256 of the leaf's SubjectPublicKeyInfo.
    leaf_key: Option<String>,
    /// The TLSA RRset per MX name (`usage selector type data`, sorted).
    tlsa: BTreeMap<String, Vec<String>>,
    /// What the TLS depth accepted per version (suites, else classes);
    /// `None` without `--tls-depth`.
    suites: Option<BTreeMap<String, BTreeSet<String>>>,
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
            pkix_ok: record.tls.as_ref().is_some_and(|t| {
                t.verification == Verification::Valid && t.name_match.values().any(|m| *m)
            }),
            leaf_key: record
                .tls
                .as_ref()
                .and_then(|t| t.chain.first())
                .map(|c| c.spki_sha256.clone()),
            suites: record.tls_depth.as_ref().map(|depth| {
                depth
                    .versions
                    .iter()
                    .filter(|(_, v)| !v.accepted.is_empty() || !v.classes.is_empty())
                    .map(|(version, v)| {
                        let mut set: BTreeSet<String> = if v.accepted.is_empty() {
                            v.classes
                                .iter()
                                .map(|c| format!("class {}", c.name()))
                                .collect()
                        } else {
                            v.accepted.iter().cloned().collect()
                        };
                        set.extend(v.groups.iter().map(|g| format!("group {g}")));
                        (version.clone(), set)
                    })
                    .collect()
            }),
            tlsa: record
                .dane
                .iter()
                .map(|(mx, d)| {
                    let mut set: Vec<String> = d
                        .tlsa
                        .iter()
                        .map(|t| {
                            format!(
                                "{} {} {} {}",
                                t.usage, t.selector, t.matching_type, t.data_hex
                            )
                        })
                        .collect();
                    set.sort();
                    set.dedup();
                    (mx.clone(), set)
                })
                .collect(),
        }
    }

    /// A DANE-valid chain for some MX name.
    fn dane_ok(&self) -> bool {
        self.dane.values().any(|v| *v == DaneVerdict::DaneValid)
    }

    /// Same outcome, EHLO set, STARTTLS presence, certificate and version.
    fn same_as(&self, other: &Self) -> bool {
        self.view.outcome == other.view.outcome
            && self.ehlo_set == other.ehlo_set
            && self.view.starttls_advertised == other.view.starttls_advertised
            && self.view.certificate_sha256 == other.view.certificate_sha256
            && self.view.tls_version == other.view.tls_version
            && self.dane == other.dane
            && self.tlsa == other.tlsa
            && self.suites == other.suites
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
        classes.push(if intercepted(&all) {
            Disagreement::TlsIntercepted
        } else {
            Disagreement::CertificateDiffers
        });
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
    let mut tlsa: BTreeMap<&String, BTreeSet<&Vec<String>>> = BTreeMap::new();
    for o in &all {
        for (mx, set) in &o.tlsa {
            tlsa.entry(mx).or_default().insert(set);
        }
    }
    if tlsa.values().any(|sets| sets.len() > 1) {
        classes.push(Disagreement::TlsaDiffers);
    }
    let filtered = all.iter().any(|a| {
        all.iter().any(|b| {
            a.leaf_key.is_some()
                && a.leaf_key == b.leaf_key
                && a.suites.is_some()
                && b.suites.is_some()
                && a.suites != b.suites
        })
    });
    if filtered {
        classes.push(Disagreement::SuitesDiffer);
    }
    if classes.is_empty() {
        classes.push(Disagreement::OtherDifference);
    }
    classes
}

/// Interception evidence: one view's chain verifies for the MX name (PKIX
/// with a matching name, or a DANE match) and another view's does not
/// (PKIX) or mismatches (DANE), with a different leaf key. Two verifying
/// chains with different keys are rotation or a pool, not interception.
fn intercepted(all: &[&Observed]) -> bool {
    let differs = |a: &Observed, b: &Observed| {
        b.leaf_key.is_some() && a.leaf_key.is_some() && a.leaf_key != b.leaf_key
    };
    all.iter().any(|good| {
        all.iter().any(|bad| {
            let pkix = good.pkix_ok && !bad.pkix_ok && !bad.dane_ok();
            let dane = good.dane.iter().any(|(mx, v)| {
                *v == DaneVerdict::DaneValid && bad.dane.get(mx) == Some(&DaneVerdict::DaneMismatch)
            });
            (pkix || dane) && differs(good, bad)
        })
    })
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
        let dns = vantages_dns::dns_diff(&domain, &records);
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
    let mut comparer = VantageComparer::new(scan);
    for record in targets {
        comparer.add_target(&record?);
    }
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
    let mut comparer = VantageComparer::new(scan);
    for record in targets {
        comparer.add_target(&record?);
    }
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
        let classes = class_counts(report, &vantages_dns::DNS_CLASSES);
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
