//! The headline of a scan, by the counting rules of DESIGN §5, computed by
//! the report engine ([`super::aggregate`]): a streaming pass over domain
//! records and one over target records, then the coverage from what the
//! first pass noted (or a second pass, past its bound).
//!
//! - *domains*: submitted domains, split into with MX / implicit MX / null MX
//!   / DNS error.
//! - *unique MX*: distinct MX host names over all domains.
//! - an MX host's status is the best outcome over its IPs (`Outcome::rank`);
//!   a host without an address, or whose addresses were not probed, counts as
//!   a connection error; IPs in different buckets make it `inconsistent`.
//! - *support STARTTLS* = ok + handshake failed + rejected; *declared no
//!   STARTTLS* = `no_starttls` + `ehlo_failed`; *connection error* = the rest.
//!   The three add up to unique MX.
//! - *domains covered*: at least one STARTTLS MX; also all MX STARTTLS and
//!   primary (lowest preference) MX STARTTLS.

use std::fmt;

use mxscope_common::{DomainRecord, TargetRecord};
use serde::Serialize;

use super::aggregate::{Aggregator, CoverageMemo, MEMO_BYTES};
use super::model::ScanInfo;

/// The headline numbers of one vantage of a scan.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Headline {
    pub vantage: String,
    pub domains: u64,
    pub domains_with_mx: u64,
    pub domains_implicit_mx: u64,
    pub domains_null_mx: u64,
    pub domains_dns_error: u64,
    pub unique_mx: u64,
    pub mx_starttls: u64,
    pub mx_no_starttls: u64,
    pub mx_connection_error: u64,
    pub mx_inconsistent: u64,
    pub domains_covered: u64,
    pub domains_all_mx_starttls: u64,
    pub domains_primary_mx_starttls: u64,
}

impl fmt::Display for Headline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "On a total of {} domain names, {} unique MX records have been found; {} of them \
             support STARTTLS, covering {} unique domains ({} MXes reported a connection error \
             while {} declared to not support STARTTLS)",
            self.domains,
            self.unique_mx,
            self.mx_starttls,
            self.domains_covered,
            self.mx_connection_error,
            self.mx_no_starttls
        )
    }
}

/// One headline number as tables show it: label, count, and the share of
/// its population (domains or unique MX) when that is meaningful.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HeadlineNumber {
    pub label: &'static str,
    pub count: u64,
    pub percent: Option<f64>,
}

impl Headline {
    /// Every number, in table order.
    pub fn numbers(&self) -> Vec<HeadlineNumber> {
        let of = |count: u64, total: u64| HeadlineNumber {
            label: "",
            count,
            percent: Some(if total == 0 {
                0.0
            } else {
                count as f64 * 100.0 / total as f64
            }),
        };
        let d = self.domains;
        let m = self.unique_mx;
        let rows = [
            (
                "domains",
                HeadlineNumber {
                    label: "",
                    count: d,
                    percent: None,
                },
            ),
            ("domains with MX", of(self.domains_with_mx, d)),
            ("domains with implicit MX", of(self.domains_implicit_mx, d)),
            ("domains with null MX", of(self.domains_null_mx, d)),
            ("domains with a DNS error", of(self.domains_dns_error, d)),
            (
                "unique MX",
                HeadlineNumber {
                    label: "",
                    count: m,
                    percent: None,
                },
            ),
            ("MX supporting STARTTLS", of(self.mx_starttls, m)),
            ("MX declaring no STARTTLS", of(self.mx_no_starttls, m)),
            (
                "MX with a connection error",
                of(self.mx_connection_error, m),
            ),
            ("MX with inconsistent IPs", of(self.mx_inconsistent, m)),
            ("domains covered", of(self.domains_covered, d)),
            (
                "domains with all MX STARTTLS",
                of(self.domains_all_mx_starttls, d),
            ),
            (
                "domains with primary MX STARTTLS",
                of(self.domains_primary_mx_starttls, d),
            ),
        ];
        rows.into_iter()
            .map(|(label, n)| HeadlineNumber { label, ..n })
            .collect()
    }
}

/// Compute the headline of `vantage` from its records: one pass over the
/// domain records, one over the target records, then the coverage from what
/// the first pass noted ([`CoverageMemo`]: some 13 bytes a domain, at most
/// [`MEMO_BYTES`]); past that, a second pass over the domain records
/// (`domains()` is called again) and memory grows with unique MX hosts and
/// IPs, not with domains.
pub fn headline<E, D>(
    vantage: &str,
    submitted_domains: u64,
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<Headline, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    headline_within(vantage, submitted_domains, domains, targets, MEMO_BYTES)
}

/// [`headline`], the first pass reading the domain records in two runs
/// side by side (on two threads): `earlier` and `later` give the two halves
/// of the stream, in order (as [`crate::store::Store::domain_records_cut`]
/// cuts them), `domains()` the whole of it for a second pass past the
/// memo's bound. The same numbers as [`headline`]; about half the time of
/// its first pass when a second core is free, as at the end of a scan.
pub fn headline_side_by_side<E, R1, R2, D>(
    vantage: &str,
    submitted_domains: u64,
    (earlier, later): (impl FnOnce() -> R1 + Send, impl FnOnce() -> R2 + Send),
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<Headline, E>
where
    E: Send,
    R1: Iterator<Item = Result<DomainRecord, E>>,
    R2: Iterator<Item = Result<DomainRecord, E>>,
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    let (first, second) = std::thread::scope(|scope| {
        let side = std::thread::Builder::new()
            .name("mxscope-report".into())
            .spawn_scoped(scope, || {
                first_pass(vantage, submitted_domains, MEMO_BYTES, later())
            });
        let first = first_pass(vantage, submitted_domains, MEMO_BYTES, earlier());
        // No thread (`None`): the whole stream on this one.
        let second = side.ok().map(|side| {
            side.join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        });
        (first, second)
    });
    let Some(second) = second else {
        return headline(vantage, submitted_domains, domains, targets);
    };
    let (mut aggregator, mut memo) = first?;
    let (later_aggregator, later_memo) = second?;
    aggregator.merge_later(later_aggregator);
    memo.merge_later(later_memo);
    finish(vantage, aggregator, memo, domains, targets)
}

/// [`headline`] with a memo of at most `memo_bytes`.
fn headline_within<E, D>(
    vantage: &str,
    submitted_domains: u64,
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
    memo_bytes: usize,
) -> Result<Headline, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    let (aggregator, memo) = first_pass(vantage, submitted_domains, memo_bytes, domains())?;
    finish(vantage, aggregator, memo, domains, targets)
}

/// The first pass over `records`: the aggregator's state and the memo.
fn first_pass<E>(
    vantage: &str,
    submitted_domains: u64,
    memo_bytes: usize,
    records: impl Iterator<Item = Result<DomainRecord, E>>,
) -> Result<(Aggregator, CoverageMemo), E> {
    let scan = ScanInfo {
        domains: submitted_domains,
        ..ScanInfo::default()
    };
    let mut aggregator = Aggregator::new(scan, &[vantage.to_string()]);
    let mut memo = CoverageMemo::new(vantage, memo_bytes);
    for record in records {
        let record = record?;
        aggregator.add_domain(&record);
        memo.add(&record);
    }
    Ok((aggregator, memo))
}

/// The target pass, then the coverage: from `memo`, or (past its bound) a
/// second pass over `domains()`.
fn finish<E, D>(
    vantage: &str,
    mut aggregator: Aggregator,
    memo: CoverageMemo,
    domains: impl Fn() -> D,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<Headline, E>
where
    D: Iterator<Item = Result<DomainRecord, E>>,
{
    for record in targets {
        aggregator.add_target(&record?);
    }
    let mut evaluated = aggregator.evaluate();
    if memo.complete() {
        evaluated.count_coverage(&memo);
    } else {
        for record in domains() {
            evaluated.add_domain(&record?);
        }
    }
    Ok(evaluated
        .finish(&[vantage.to_string()])
        .vantages
        .into_iter()
        .next()
        .map(|v| v.headline)
        .unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxscope_common::{DnsResult, DnsStatus, MxEntry, Outcome};
    use std::convert::Infallible;

    fn domain(name: &str, mx: &[(u16, &str, &[&str])]) -> DomainRecord {
        let mut dns = DnsResult::failed(DnsStatus::Ok, "");
        dns.error = None;
        dns.mx = mx
            .iter()
            .map(|(preference, exchange, ips)| MxEntry {
                preference: *preference,
                exchange: exchange.to_string(),
                addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
                status: DnsStatus::Ok,
            })
            .collect();
        DomainRecord::new(name.into(), dns)
    }

    fn target(ip: &str, outcome: Outcome) -> TargetRecord {
        let mut t = TargetRecord::new(ip.parse().unwrap(), 25, vec![]);
        t.outcome = outcome;
        t
    }

    #[test]
    fn counts_by_the_rules() {
        let domains = [
            domain(
                "a.example",
                &[(10, "mx1", &["192.0.2.1"]), (20, "mx2", &["192.0.2.2"])],
            ),
            domain("b.example", &[(10, "mx1", &["192.0.2.1"])]),
            domain("c.example", &[(5, "mx3", &["192.0.2.3", "192.0.2.4"])]),
            domain("d.example", &[(10, "mx4", &[])]),
            DomainRecord::new(
                "e.example".into(),
                DnsResult::failed(DnsStatus::Nxdomain, "x"),
            ),
        ];
        let targets = vec![
            target("192.0.2.1", Outcome::StarttlsOk),
            target("192.0.2.2", Outcome::NoStarttls),
            target("192.0.2.3", Outcome::ConnectTimeout),
            target("192.0.2.4", Outcome::StarttlsHandshakeFailed),
        ];
        let h = headline(
            "A",
            5,
            || domains.iter().cloned().map(Ok::<_, Infallible>),
            targets.into_iter().map(Ok),
        )
        .unwrap();
        assert_eq!(h.unique_mx, 4);
        assert_eq!(
            (h.mx_starttls, h.mx_no_starttls, h.mx_connection_error),
            (2, 1, 1)
        );
        assert_eq!(
            h.mx_starttls + h.mx_no_starttls + h.mx_connection_error,
            h.unique_mx
        );
        assert_eq!(h.mx_inconsistent, 1, "mx3's two IPs disagree");
        assert_eq!(h.domains_covered, 3);
        assert_eq!(h.domains_all_mx_starttls, 2, "b and c");
        assert_eq!(h.domains_primary_mx_starttls, 3);
        assert_eq!((h.domains_with_mx, h.domains_dns_error), (4, 1));
        assert!(h.to_string().starts_with(
            "On a total of 5 domain names, 4 unique MX records have been found; 2 of them support STARTTLS, covering 3 unique domains"
        ));
    }

    /// The headline's coverage from the first pass's memo is the coverage
    /// the full report counts in its second pass, whatever the population
    /// (vantages, preferences, hosts whose IPs disagree, unprobed hosts,
    /// DNS errors, null MX); past the memo's bound, the second pass gives
    /// the same, and so does a first pass read in two runs side by side,
    /// wherever the stream is cut.
    mod memo {
        use super::*;
        use crate::report::aggregate::scan_report;
        use proptest::prelude::*;

        const OUTCOMES: [Outcome; 4] = [
            Outcome::StarttlsOk,
            Outcome::NoStarttls,
            Outcome::ConnectTimeout,
            Outcome::StarttlsRejected,
        ];

        fn record((kind, vantage, mx): &(u8, u8, Vec<(u16, u8, u8)>), i: usize) -> DomainRecord {
            let name = format!("d{i}.example");
            let mut record = match kind {
                0 => DomainRecord::new(name, DnsResult::failed(DnsStatus::Servfail, "x")),
                1 => {
                    let mut r = domain(&name, &[]);
                    r.dns.null_mx = true;
                    r
                }
                _ => {
                    let hosts: Vec<(u16, String, Vec<String>)> = mx
                        .iter()
                        .map(|(p, h, ip)| (*p, format!("mx{h}"), vec![format!("192.0.2.{ip}")]))
                        .collect();
                    let mut r = domain(&name, &[]);
                    r.dns.mx = hosts
                        .iter()
                        .map(|(p, h, ips)| MxEntry {
                            preference: *p,
                            exchange: h.clone(),
                            addresses: ips.iter().map(|ip| ip.parse().unwrap()).collect(),
                            status: DnsStatus::Ok,
                        })
                        .collect();
                    r
                }
            };
            record.vantage = match vantage {
                0 => None,
                1 => Some("A".into()),
                _ => Some("B".into()),
            };
            record
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(64))]
            #[test]
            fn the_memo_counts_what_the_second_pass_counts(
                population in proptest::collection::vec(
                    (0u8..4, 0u8..3, proptest::collection::vec((0u16..3, 0u8..6, 0u8..8), 0..4)),
                    0..40),
                outcomes in proptest::collection::vec(0usize..5, 8),
                cut in 0usize..41,
            ) {
                let domains: Vec<DomainRecord> =
                    population.iter().enumerate().map(|(i, d)| record(d, i)).collect();
                let targets: Vec<TargetRecord> = outcomes
                    .iter()
                    .enumerate()
                    .filter_map(|(ip, o)| {
                        OUTCOMES.get(*o).map(|o| target(&format!("192.0.2.{ip}"), *o))
                    })
                    .collect();
                let stream = || domains.iter().cloned().map(Ok::<_, Infallible>);
                let vantages = ["A".to_string()];
                let scan = ScanInfo { domains: 40, ..ScanInfo::default() };
                let report = scan_report(
                    scan,
                    &vantages,
                    stream,
                    targets.iter().cloned().map(Ok),
                    |_| Ok(()),
                )
                .unwrap();
                let full = report.vantages[0].headline.clone();
                let from_memo =
                    headline("A", 40, stream, targets.iter().cloned().map(Ok)).unwrap();
                prop_assert_eq!(&from_memo, &full);
                let read_again =
                    headline_within("A", 40, stream, targets.iter().cloned().map(Ok), 0).unwrap();
                prop_assert_eq!(&read_again, &full);
                let cut = cut.min(domains.len());
                let runs = (
                    || domains[..cut].iter().cloned().map(Ok::<_, Infallible>),
                    || domains[cut..].iter().cloned().map(Ok::<_, Infallible>),
                );
                let side_by_side =
                    headline_side_by_side("A", 40, runs, stream, targets.iter().cloned().map(Ok))
                        .unwrap();
                prop_assert_eq!(&side_by_side, &full);
            }
        }
    }
}
