//! The report engine: two passes over domain records, one over target
//! records, memory bounded by unique MX hosts and IPs (never by domains;
//! the headline's [`CoverageMemo`] adds a few bytes a domain, within
//! [`MEMO_BYTES`]).
//!
//! 1. [`Aggregator::add_domain`] (first domain pass) counts domains and
//!    learns each MX name's addresses; [`Aggregator::add_target`] (the
//!    target pass, in any order relative to the first) keeps a
//!    [`TargetSummary`] per IP.
//! 2. [`Aggregator::evaluate`] gives each MX host its status (best outcome
//!    over its IPs), the headline's MX buckets and the distributions.
//! 3. [`Evaluated::add_domain`] (second domain pass) counts covered domains
//!    and yields the per-domain rows; [`Evaluated::finish`] the report.
//!    The headline alone needs of a domain only its MX hosts and their
//!    preferences: [`CoverageMemo`] keeps them from the first pass (within
//!    [`MEMO_BYTES`]), and [`Evaluated::count_coverage`] counts from it
//!    instead of reading every record again.
//!
//! Records whose vantage is not selected are skipped; a record without a
//! vantage counts for every selected vantage.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use mxscope_common::{Bucket, DnsStatus, DomainRecord, TargetRecord};

use super::distributions::labels::TargetSummary;
use super::distributions::{Counts, HostStatus};
use super::model::{Distribution, DomainRow, FindingRow, ScanInfo, ScanReport, VantageReport};
use super::sections::security::{SecurityCounts, TargetSecurity};
use super::Headline;

mod coverage;
use coverage::count_coverage;
pub use coverage::{CoverageMemo, MEMO_BYTES};
use mxscope_common::tally::Politeness;

/// Version of the report layout (JSON).
pub const REPORT_SCHEMA_VERSION: u32 = 1;

pub use super::distributions::{NOT_PROBED, NO_ADDRESS};

/// First-pass state of one vantage.
#[derive(Debug, Default)]
struct VantagePass {
    headline: Headline,
    /// MX name → its addresses (union over every domain that names it).
    mx_ips: HashMap<String, Vec<IpAddr>>,
    targets: HashMap<IpAddr, TargetSummary>,
    security: HashMap<IpAddr, TargetSecurity>,
    politeness: Politeness,
}

/// Pass one: domain counts, MX addresses, target summaries.
#[derive(Debug)]
pub struct Aggregator {
    scan: ScanInfo,
    vantages: BTreeMap<String, VantagePass>,
    legacy_seen: bool,
    depth_seen: bool,
}

impl Aggregator {
    /// A report of `scan` for the given vantages (in report order).
    pub fn new(scan: ScanInfo, vantages: &[String]) -> Self {
        let vantages = vantages
            .iter()
            .map(|v| {
                let pass = VantagePass {
                    headline: Headline {
                        vantage: v.clone(),
                        domains: scan.domains,
                        ..Headline::default()
                    },
                    ..VantagePass::default()
                };
                (v.clone(), pass)
            })
            .collect();
        Self {
            scan,
            vantages,
            legacy_seen: false,
            depth_seen: false,
        }
    }

    fn selected<'a>(
        vantages: &'a mut BTreeMap<String, VantagePass>,
        vantage: Option<&'a str>,
    ) -> impl Iterator<Item = &'a mut VantagePass> + 'a {
        vantages
            .iter_mut()
            .filter(move |(v, _)| vantage.is_none_or(|r| r == v.as_str()))
            .map(|(_, pass)| pass)
    }

    /// First pass over a domain record.
    pub fn add_domain(&mut self, record: &DomainRecord) {
        for pass in Self::selected(&mut self.vantages, record.vantage.as_deref()) {
            pass.politeness.add_domain(record);
            let h = &mut pass.headline;
            let dns = &record.dns;
            if dns.status != DnsStatus::Ok {
                h.domains_dns_error += 1;
                continue;
            }
            if dns.null_mx {
                h.domains_null_mx += 1;
                continue;
            }
            if dns.implicit_mx {
                h.domains_implicit_mx += 1;
            } else {
                h.domains_with_mx += 1;
            }
            for mx in &dns.mx {
                let ips = match pass.mx_ips.get_mut(mx.exchange.as_str()) {
                    Some(ips) => ips,
                    None => pass.mx_ips.entry(mx.exchange.clone()).or_default(),
                };
                for ip in &mx.addresses {
                    if !ips.contains(ip) {
                        ips.push(*ip);
                    }
                }
            }
        }
    }

    /// Take in the first pass of the domains that follow this one's
    /// (`later`: a later run of the same stream, read side by side): the
    /// state the whole stream would have left. Before any target.
    pub fn merge_later(&mut self, later: Self) {
        self.legacy_seen |= later.legacy_seen;
        self.depth_seen |= later.depth_seen;
        for (vantage, pass) in later.vantages {
            let Some(mine) = self.vantages.get_mut(&vantage) else {
                continue;
            };
            mine.politeness.merge(&pass.politeness);
            let (h, l) = (&mut mine.headline, &pass.headline);
            h.domains_dns_error += l.domains_dns_error;
            h.domains_null_mx += l.domains_null_mx;
            h.domains_implicit_mx += l.domains_implicit_mx;
            h.domains_with_mx += l.domains_with_mx;
            for (name, ips) in pass.mx_ips {
                let known = mine.mx_ips.entry(name).or_default();
                for ip in ips {
                    if !known.contains(&ip) {
                        known.push(ip);
                    }
                }
            }
        }
    }

    /// The target pass: one target record.
    pub fn add_target(&mut self, record: &TargetRecord) {
        let mut summary = None;
        let mut security = None;
        for pass in Self::selected(&mut self.vantages, record.vantage.as_deref()) {
            pass.politeness.add_target(record);
            let s = summary.get_or_insert_with(|| TargetSummary::of(record));
            self.legacy_seen |= s.legacy_tested();
            self.depth_seen |= s.depth.is_some();
            pass.targets.insert(record.ip, s.clone());
            let sec = security.get_or_insert_with(|| TargetSecurity::of(record));
            pass.security.insert(record.ip, sec.clone());
        }
    }

    /// Host statuses, MX buckets and distributions; ready for pass two.
    pub fn evaluate(self) -> Evaluated {
        let mut scan = self.scan;
        scan.legacy |= self.legacy_seen;
        scan.tls_depth |= self.depth_seen;
        let now = i64::try_from(scan.created_unix_ms / 1000).unwrap_or(i64::MAX);
        let vantages = self
            .vantages
            .into_iter()
            .map(|(name, pass)| {
                (
                    name,
                    evaluate_vantage(pass, scan.legacy, scan.tls_depth, now),
                )
            })
            .collect();
        Evaluated { scan, vantages }
    }
}

/// Second-pass state of one vantage.
#[derive(Debug)]
struct VantageHosts {
    politeness: Politeness,
    headline: Headline,
    distributions: Vec<Distribution>,
    hosts: HashMap<String, HostStatus>,
    security: HashMap<IpAddr, TargetSecurity>,
    security_counts: SecurityCounts,
    findings: Vec<FindingRow>,
    findings_total: u64,
}

fn evaluate_vantage(pass: VantagePass, legacy: bool, depth: bool, now: i64) -> VantageHosts {
    let VantagePass {
        mut headline,
        mx_ips,
        targets,
        security,
        politeness,
    } = pass;
    let mut hosts = HashMap::with_capacity(mx_ips.len());
    let mut dist = Counts::default();
    for (name, ips) in mx_ips {
        let buckets: BTreeSet<Bucket> = ips
            .iter()
            .map(|ip| {
                targets
                    .get(ip)
                    .map_or(Bucket::ConnectionError, |t| t.outcome.bucket())
            })
            .collect();
        if buckets.len() > 1 {
            headline.mx_inconsistent += 1;
        }
        let status = if ips.is_empty() {
            HostStatus::NoAddress
        } else {
            ips.iter()
                .filter_map(|ip| targets.get(ip).map(|t| (t.outcome, *ip)))
                .min_by_key(|(outcome, ip)| (outcome.rank(), *outcome, *ip))
                .map_or(HostStatus::NotProbed, |(outcome, ip)| HostStatus::Probed {
                    outcome,
                    ip,
                })
        };
        match status.bucket() {
            Bucket::SupportsStarttls => headline.mx_starttls += 1,
            Bucket::DeclaredNoStarttls => headline.mx_no_starttls += 1,
            Bucket::ConnectionError => headline.mx_connection_error += 1,
        }
        let best = match status {
            HostStatus::Probed { ip, .. } => targets.get(&ip),
            _ => None,
        };
        dist.add(&name, status, best, now);
        hosts.insert(name, status);
    }
    headline.unique_mx = hosts.len() as u64;
    let (findings, findings_total) = dist.depth.take_rows();
    let distributions = dist.into_distributions(&headline, legacy, depth);
    let security_counts = SecurityCounts::from_targets(&security);
    VantageHosts {
        headline,
        distributions,
        hosts,
        security,
        security_counts,
        politeness,
        findings,
        findings_total,
    }
}

/// Pass two: per-domain coverage and rows.
#[derive(Debug)]
pub struct Evaluated {
    scan: ScanInfo,
    vantages: BTreeMap<String, VantageHosts>,
}

impl Evaluated {
    /// The scan as reported (with `legacy` also set when legacy results
    /// were seen).
    pub fn scan(&self) -> &ScanInfo {
        &self.scan
    }

    /// Second pass over a domain record: counts coverage and returns its
    /// row for each selected vantage (none for other vantages).
    pub fn add_domain(&mut self, record: &DomainRecord) -> Vec<DomainRow> {
        let mut rows = Vec::new();
        let wanted = record.vantage.as_deref();
        for (vantage, v) in self
            .vantages
            .iter_mut()
            .filter(|(name, _)| wanted.is_none_or(|w| w == name.as_str()))
        {
            rows.push(domain_row(vantage, v, record));
        }
        rows
    }

    /// The report, vantages in the order they were asked for.
    pub fn finish(self, order: &[String]) -> ScanReport {
        let mut vantages = self.vantages;
        let reports = order
            .iter()
            .filter_map(|name| vantages.remove(name).map(|v| (name, v)))
            .map(|(name, v)| VantageReport {
                vantage: name.clone(),
                headline: v.headline,
                distributions: v.distributions,
                security: v.security_counts.finish(),
                politeness: v.politeness,
                findings: v.findings,
                findings_total: v.findings_total,
            })
            .collect();
        ScanReport {
            schema_version: REPORT_SCHEMA_VERSION,
            scan: self.scan,
            vantages: reports,
            agreement: None,
        }
    }
}

/// Counts one domain into its vantage's headline and builds its row.
fn domain_row(vantage: &str, v: &mut VantageHosts, record: &DomainRecord) -> DomainRow {
    let dns = &record.dns;
    let mut row = DomainRow {
        vantage: vantage.to_string(),
        domain: record.domain.clone(),
        dns_status: if dns.null_mx && dns.status == DnsStatus::Ok {
            "null_mx".to_string()
        } else {
            dns_status_label(dns.status)
        },
        mx_count: dns.mx.len() as u64,
        covered: false,
        primary_covered: false,
        best_outcome: String::new(),
        worst_outcome: String::new(),
    };
    v.security_counts.add_domain(record, &v.security);
    if dns.status != DnsStatus::Ok || dns.null_mx || dns.mx.is_empty() {
        return row;
    }
    let status = |name: &str| v.hosts.get(name).copied().unwrap_or(HostStatus::NotProbed);
    let coverage = count_coverage(
        &mut v.headline,
        dns.mx
            .iter()
            .map(|mx| (mx.preference, status(&mx.exchange))),
    );
    row.covered = coverage.covered;
    row.primary_covered = coverage.primary;
    let statuses = dns.mx.iter().map(|mx| status(&mx.exchange));
    if let Some(best) = statuses.clone().min_by_key(|s| s.rank()) {
        row.best_outcome = best.label().to_string();
    }
    if let Some(worst) = statuses.max_by_key(|s| s.rank()) {
        row.worst_outcome = worst.label().to_string();
    }
    row
}

/// `ok`, `nxdomain`, … (the record's serde name).
fn dns_status_label(status: DnsStatus) -> String {
    serde_json::to_value(status)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{status:?}").to_lowercase())
}

/// The whole report from re-creatable record streams: `domains()` is called
/// twice (two passes), `targets` once; `on_row` gets every per-domain row
/// of the second pass.
pub fn scan_report<E, D, T>(
    scan: ScanInfo,
    vantages: &[String],
    domains: impl Fn() -> D,
    targets: T,
    mut on_row: impl FnMut(DomainRow) -> Result<(), E>,
) -> Result<ScanReport, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
    T: Iterator<Item = Result<TargetRecord, E>>,
{
    let mut agg = Aggregator::new(scan, vantages);
    for record in domains() {
        agg.add_domain(&record?);
    }
    for record in targets {
        agg.add_target(&record?);
    }
    let mut evaluated = agg.evaluate();
    for record in domains() {
        for row in evaluated.add_domain(&record?) {
            on_row(row)?;
        }
    }
    Ok(evaluated.finish(vantages))
}
