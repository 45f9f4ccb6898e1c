//! The headline of a scan, by the counting rules of DESIGN §5, computed in
//! one streaming pass over domain records and one over target records.
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

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::IpAddr;

use mxscope_common::{Bucket, DnsStatus, DomainRecord, Outcome, TargetRecord};
use serde::Serialize;

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

/// Per-domain facts kept between the two passes: its MX names by preference.
struct DomainMx {
    names: Vec<(u16, String)>,
}

/// Compute the headline of `vantage` from its records.
pub fn headline<E>(
    vantage: &str,
    submitted_domains: u64,
    domains: impl Iterator<Item = Result<DomainRecord, E>>,
    targets: impl Iterator<Item = Result<TargetRecord, E>>,
) -> Result<Headline, E> {
    let mut h = Headline {
        vantage: vantage.to_string(),
        domains: submitted_domains,
        ..Headline::default()
    };
    let mut mx_ips: HashMap<String, BTreeSet<IpAddr>> = HashMap::new();
    let mut per_domain: Vec<DomainMx> = Vec::new();
    for record in domains {
        let record = record?;
        if record.vantage.as_deref().is_some_and(|v| v != vantage) {
            continue;
        }
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
        let mut names = Vec::new();
        for mx in &dns.mx {
            mx_ips
                .entry(mx.exchange.clone())
                .or_default()
                .extend(mx.addresses.iter().copied());
            names.push((mx.preference, mx.exchange.clone()));
        }
        per_domain.push(DomainMx { names });
    }
    let mut outcomes: HashMap<IpAddr, Outcome> = HashMap::new();
    for record in targets {
        let record = record?;
        if record.vantage.as_deref().is_some_and(|v| v != vantage) {
            continue;
        }
        outcomes.insert(record.ip, record.outcome);
    }
    let mut host_bucket: BTreeMap<&str, Bucket> = BTreeMap::new();
    for (name, ips) in &mx_ips {
        let buckets: BTreeSet<Bucket> = ips
            .iter()
            .map(|ip| {
                outcomes
                    .get(ip)
                    .map_or(Bucket::ConnectionError, |o| o.bucket())
            })
            .collect();
        if buckets.len() > 1 {
            h.mx_inconsistent += 1;
        }
        let best = ips
            .iter()
            .filter_map(|ip| outcomes.get(ip))
            .min_by_key(|o| o.rank())
            .map_or(Bucket::ConnectionError, |o| o.bucket());
        match best {
            Bucket::SupportsStarttls => h.mx_starttls += 1,
            Bucket::DeclaredNoStarttls => h.mx_no_starttls += 1,
            Bucket::ConnectionError => h.mx_connection_error += 1,
        }
        host_bucket.insert(name, best);
    }
    h.unique_mx = mx_ips.len() as u64;
    for domain in &per_domain {
        let starttls =
            |name: &String| host_bucket.get(name.as_str()) == Some(&Bucket::SupportsStarttls);
        if domain.names.iter().any(|(_, n)| starttls(n)) {
            h.domains_covered += 1;
        }
        if !domain.names.is_empty() && domain.names.iter().all(|(_, n)| starttls(n)) {
            h.domains_all_mx_starttls += 1;
        }
        let primary = domain.names.iter().map(|(p, _)| *p).min();
        if let Some(primary) = primary {
            if domain
                .names
                .iter()
                .filter(|(p, _)| *p == primary)
                .any(|(_, n)| starttls(n))
            {
                h.domains_primary_mx_starttls += 1;
            }
        }
    }
    Ok(h)
}

#[cfg(test)]
mod tests {
    use super::*;
    use mxscope_common::{DnsResult, MxEntry};
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
        let domains = vec![
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
            domains.into_iter().map(Ok::<_, Infallible>),
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
}
