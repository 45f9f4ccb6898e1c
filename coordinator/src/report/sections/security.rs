//! The security section: DNSSEC of MX RRsets, DANE, MTA-STS, TLS-RPT and
//! reverse DNS, counted without breaking the streaming design.
//!
//! Per-IP facts ([`TargetSecurity`]) come from the target pass; per-domain
//! facts are counted in the second domain pass, where a policy-only MTA-STS
//! verdict (distributed scan) is finished against the MX hosts' targets with
//! [`mtasts::reevaluate`].

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

use mxscope_common::mtasts::{self, MxTls};
use mxscope_common::record::security_dns::{
    DaneVerdict, DnssecReason, DnssecStatus, ResolverCheck, ReverseDnsVerdict, DNSSEC_REASONS,
};
use mxscope_common::record::security_policy::{MtaStsVerdict, TlsRptVerdict};
use mxscope_common::{snake, Bucket, DnsStatus, DomainRecord, TargetRecord};

use crate::report::model::{Distribution, SecuritySection};

const DNSSEC_ROWS: [DnssecStatus; 4] = [
    DnssecStatus::Secure,
    DnssecStatus::Insecure,
    DnssecStatus::Bogus,
    DnssecStatus::Indeterminate,
];
const DANE_ROWS: [DaneVerdict; 6] = [
    DaneVerdict::DaneValid,
    DaneVerdict::DaneMismatch,
    DaneVerdict::NoTlsa,
    DaneVerdict::TlsaLookupFailed,
    DaneVerdict::NotApplicableInsecure,
    DaneVerdict::AddressBogus,
];
const MTA_STS_ROWS: [MtaStsVerdict; 9] = [
    MtaStsVerdict::EnforceOk,
    MtaStsVerdict::EnforceWouldFail,
    MtaStsVerdict::Testing,
    MtaStsVerdict::None,
    MtaStsVerdict::TxtWithoutPolicy,
    MtaStsVerdict::PolicyFetchFailed,
    MtaStsVerdict::TxtInvalid,
    MtaStsVerdict::NoMtaSts,
    MtaStsVerdict::DnsError,
];
const TLS_RPT_ROWS: [TlsRptVerdict; 4] = [
    TlsRptVerdict::Valid,
    TlsRptVerdict::Absent,
    TlsRptVerdict::Invalid,
    TlsRptVerdict::DnsError,
];
const PTR_ROWS: [ReverseDnsVerdict; 4] = [
    ReverseDnsVerdict::FcrdnsOk,
    ReverseDnsVerdict::PtrMismatch,
    ReverseDnsVerdict::NoPtr,
    ReverseDnsVerdict::LookupFailed,
];
/// Rows of the per-domain DANE adoption distribution (`address_bogus`: not
/// adopted, and an MX host's addresses validate bogus, RFC 7672 §2.1.1).
const ADOPTION_ROWS: [&str; 4] = ["dane_valid", "dane_broken", "address_bogus", "no_dane"];
const NO_DANE: usize = 3;

/// What one probed IP contributes to the security section.
#[derive(Debug, Clone)]
pub(in crate::report) struct TargetSecurity {
    starttls: bool,
    mx_tls: Vec<MxTls>,
    dane: BTreeMap<String, DaneVerdict>,
    /// The DNSSEC reason behind a (MX, IP) verdict, when it has one.
    dane_reasons: BTreeMap<String, DnssecReason>,
    ptr: Option<ReverseDnsVerdict>,
}

impl TargetSecurity {
    pub(in crate::report) fn of(record: &TargetRecord) -> Self {
        Self {
            starttls: record.outcome.bucket() == Bucket::SupportsStarttls,
            mx_tls: mtasts::mx_tls_facts(record),
            dane: record
                .dane
                .iter()
                .map(|(mx, d)| (mx.clone(), d.verdict))
                .collect(),
            dane_reasons: record
                .dane
                .iter()
                .filter(|(_, d)| d.verdict != DaneVerdict::DaneValid)
                .filter_map(|(mx, d)| d.reason.map(|r| (mx.clone(), r)))
                .collect(),
            ptr: record.ptr.as_ref().map(|p| p.verdict),
        }
    }
}

/// Security counters of one vantage.
#[derive(Debug, Default)]
pub(in crate::report) struct SecurityCounts {
    seen: bool,
    dnssec_mx: BTreeMap<DnssecStatus, u64>,
    /// Reasons of the non-secure MX RRsets.
    dnssec_reason: BTreeMap<DnssecReason, u64>,
    dnssec_not_secure: u64,
    domains_with_mx: u64,
    dane: BTreeMap<DaneVerdict, u64>,
    dane_pairs: u64,
    /// Reasons of the (MX, IP) pairs whose verdict carries one.
    dane_reason: BTreeMap<DnssecReason, u64>,
    dane_with_reason: u64,
    adoption: [u64; 4],
    resolver_check: Option<ResolverCheck>,
    mta_sts: BTreeMap<MtaStsVerdict, u64>,
    tls_rpt: BTreeMap<TlsRptVerdict, u64>,
    domains: u64,
    ptr: BTreeMap<ReverseDnsVerdict, u64>,
    ptr_ips: u64,
}

impl SecurityCounts {
    /// The per-IP counts (DANE pairs of STARTTLS hosts, reverse DNS).
    pub(in crate::report) fn from_targets(targets: &HashMap<IpAddr, TargetSecurity>) -> Self {
        let mut c = Self::default();
        for t in targets.values() {
            c.seen |= !t.dane.is_empty() || t.ptr.is_some();
            if let Some(ptr) = t.ptr {
                c.ptr_ips += 1;
                *c.ptr.entry(ptr).or_default() += 1;
            }
            if t.starttls {
                for verdict in t.dane.values() {
                    c.dane_pairs += 1;
                    *c.dane.entry(*verdict).or_default() += 1;
                }
                for reason in t.dane_reasons.values() {
                    c.dane_with_reason += 1;
                    *c.dane_reason.entry(*reason).or_default() += 1;
                }
            }
        }
        c
    }

    /// Second domain pass: DNSSEC, DANE adoption, MTA-STS (joined), TLS-RPT.
    pub(in crate::report) fn add_domain(
        &mut self,
        record: &DomainRecord,
        targets: &HashMap<IpAddr, TargetSecurity>,
    ) {
        let Some(sec) = &record.security else {
            return;
        };
        self.seen = true;
        self.domains += 1;
        if let Some(check) = &sec.resolver_check {
            // A failed check wins: one worker that could not validate makes
            // the vantage's verdicts partly indeterminate.
            let replace = match &self.resolver_check {
                None => true,
                Some(kept) => kept.usable && !check.usable,
            };
            if replace {
                self.resolver_check = Some(check.clone());
            }
        }
        *self.tls_rpt.entry(sec.tls_rpt.verdict).or_default() += 1;
        let dns = &record.dns;
        let with_mx = dns.status == DnsStatus::Ok && !dns.null_mx && !dns.mx.is_empty();
        let mx_names: Vec<String> = dns.mx.iter().map(|mx| mx.exchange.clone()).collect();
        let facts: Vec<MxTls> = dns
            .mx
            .iter()
            .flat_map(|mx| mx.addresses.iter())
            .filter_map(|ip| targets.get(ip))
            .flat_map(|t| t.mx_tls.iter().cloned())
            .collect();
        let mta_sts = mtasts::reevaluate(&sec.mta_sts, &mx_names, &facts);
        *self.mta_sts.entry(mta_sts.verdict).or_default() += 1;
        if !with_mx {
            return;
        }
        self.domains_with_mx += 1;
        *self.dnssec_mx.entry(sec.dnssec_mx).or_default() += 1;
        if sec.dnssec_mx != DnssecStatus::Secure {
            self.dnssec_not_secure += 1;
            if let Some(reason) = sec.dnssec_mx_reason {
                *self.dnssec_reason.entry(reason).or_default() += 1;
            }
        }
        let verdicts = |mx: &str| -> Vec<DaneVerdict> {
            let ips = dns
                .mx
                .iter()
                .filter(|e| e.exchange == mx)
                .flat_map(|e| e.addresses.iter());
            ips.filter_map(|ip| targets.get(ip).and_then(|t| t.dane.get(mx).copied()))
                .collect()
        };
        let has_tlsa =
            |v: &DaneVerdict| matches!(v, DaneVerdict::DaneValid | DaneVerdict::DaneMismatch);
        let adopted = sec.dnssec_mx == DnssecStatus::Secure
            && mx_names.iter().all(|mx| verdicts(mx).iter().any(has_tlsa));
        let address_bogus = mx_names
            .iter()
            .any(|mx| verdicts(mx).contains(&DaneVerdict::AddressBogus));
        let row = if !adopted && address_bogus {
            2
        } else if !adopted {
            NO_DANE
        } else if mx_names
            .iter()
            .all(|mx| verdicts(mx).iter().all(|v| *v == DaneVerdict::DaneValid))
        {
            0
        } else {
            1
        };
        self.adoption[row] += 1;
    }

    /// The section, `None` when no record carried security facts.
    pub(in crate::report) fn finish(self) -> Option<SecuritySection> {
        if !self.seen {
            return None;
        }
        let excluded = self.resolver_check.as_ref().is_some_and(|c| !c.usable);
        let (adoption_total, adoption, adoption_population) = if excluded {
            (
                0,
                [0; 4],
                "domains with MX (excluded: this vantage's resolvers failed the DNSSEC self-check, its DANE verdicts are indeterminate)",
            )
        } else {
            (self.domains_with_mx, self.adoption, "domains with MX")
        };
        let distributions = vec![
            Distribution::new(
                "dnssec_mx",
                "DNSSEC of the MX RRset",
                "domains with MX",
                self.domains_with_mx,
                rows(&self.dnssec_mx, &DNSSEC_ROWS),
            ),
            Distribution::new(
                "dnssec_reason",
                "Why the MX RRset is not secure",
                "domains with MX whose MX RRset is not secure",
                self.dnssec_not_secure,
                rows(&self.dnssec_reason, &DNSSEC_REASONS),
            ),
            Distribution::new(
                "dane",
                "DANE for SMTP",
                "(MX host, IP) pairs of STARTTLS hosts",
                self.dane_pairs,
                rows(&self.dane, &DANE_ROWS),
            ),
            Distribution::new(
                "dane_reason",
                "DNSSEC reason behind a DANE verdict",
                "(MX host, IP) pairs of STARTTLS hosts whose verdict has a DNSSEC reason",
                self.dane_with_reason,
                rows(&self.dane_reason, &DNSSEC_REASONS),
            ),
            Distribution::new(
                "dane_adoption",
                "DANE adoption (secure MX RRset, TLSA on every MX)",
                adoption_population,
                adoption_total,
                ADOPTION_ROWS
                    .iter()
                    .zip(adoption)
                    .map(|(r, n)| (r.to_string(), n)),
            ),
            Distribution::new(
                "mta_sts",
                "MTA-STS",
                "domains",
                self.domains,
                rows(&self.mta_sts, &MTA_STS_ROWS),
            ),
            Distribution::new(
                "tls_rpt",
                "TLS-RPT",
                "domains",
                self.domains,
                rows(&self.tls_rpt, &TLS_RPT_ROWS),
            ),
            Distribution::new(
                "ptr",
                "Reverse DNS (FCrDNS)",
                "probed IPs with reverse DNS checked",
                self.ptr_ips,
                rows(&self.ptr, &PTR_ROWS),
            ),
        ];
        Some(SecuritySection {
            domains_with_mx: self.domains_with_mx,
            mx_dnssec_signed: self
                .dnssec_mx
                .get(&DnssecStatus::Secure)
                .copied()
                .unwrap_or(0),
            dane_adopted: adoption[0] + adoption[1],
            dane_valid: adoption[0],
            distributions,
            resolver_check: self.resolver_check,
            dane_adoption_excluded: excluded,
        })
    }
}

/// Every value of `order`, counted (0 when absent).
fn rows<K: Ord + serde::Serialize + std::fmt::Debug>(
    counts: &BTreeMap<K, u64>,
    order: &[K],
) -> Vec<(String, u64)> {
    order
        .iter()
        .map(|v| (snake(v), counts.get(v).copied().unwrap_or(0)))
        .collect()
}
