//! The report as plain data. Every renderer (text, Markdown, JSON, CSV,
//! HTML) reads these types; the aggregation fills them.

use std::collections::BTreeMap;

use serde::Serialize;

use super::Headline;

/// Which scan a report is about, as its title shows it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanInfo {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub vantages: Vec<String>,
    pub domains: u64,
    pub created_unix_ms: u64,
    pub finished_unix_ms: Option<u64>,
    /// Whether legacy versions were probed (`--legacy`).
    pub legacy: bool,
    /// Whether the TLS depth ran (`--tls-depth classes|suites`).
    #[serde(default)]
    pub tls_depth: bool,
}

impl ScanInfo {
    /// `name (k=v, k=v)`, the column title in comparisons.
    pub fn title(&self) -> String {
        if self.labels.is_empty() {
            return self.name.clone();
        }
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        format!("{} ({})", self.name, labels.join(", "))
    }
}

/// One row of a distribution: a value, how many, and the share of the total.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub value: String,
    pub count: u64,
    /// 0–100, of [`Distribution::total`].
    pub percent: f64,
}

/// Counts of one property over a population (e.g. STARTTLS hosts).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Distribution {
    /// Machine name, e.g. `key`, `verification`.
    pub name: String,
    /// Human title, e.g. "Key type and size".
    pub title: String,
    /// What is counted, e.g. "MX hosts supporting STARTTLS".
    pub population: String,
    pub total: u64,
    /// In a stable, meaningful order (largest first unless the values have an order).
    pub rows: Vec<Row>,
}

impl Distribution {
    /// Build from counts; rows keep the given order; percentages of `total`.
    pub fn new(
        name: &str,
        title: &str,
        population: &str,
        total: u64,
        counts: impl IntoIterator<Item = (String, u64)>,
    ) -> Self {
        let rows = counts
            .into_iter()
            .map(|(value, count)| Row {
                percent: if total == 0 {
                    0.0
                } else {
                    count as f64 * 100.0 / total as f64
                },
                value,
                count,
            })
            .collect();
        Self {
            name: name.to_string(),
            title: title.to_string(),
            population: population.to_string(),
            total,
            rows,
        }
    }

    /// The count of `value` (0 when absent).
    pub fn count(&self, value: &str) -> u64 {
        self.rows
            .iter()
            .find(|r| r.value == value)
            .map_or(0, |r| r.count)
    }
}

/// The report of one vantage of one scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VantageReport {
    pub vantage: String,
    pub headline: Headline,
    /// key, verification, highest_protocol, protocol_<version> (when legacy
    /// ran), expiry, outcome_phase — in that order.
    pub distributions: Vec<Distribution>,
    /// DNSSEC, DANE, MTA-STS, TLS-RPT and reverse DNS; `None` when no record
    /// carried security facts (a scan without `--security`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security: Option<SecuritySection>,
    /// Sessions opened and their spread over IPs, exclusions, retries.
    #[serde(default)]
    pub politeness: mxscope_common::tally::Politeness,
    /// Hosts with findings, one row per (MX host, finding), worst first (at
    /// most [`FINDING_ROWS`]; `mxscope export --format findings` has all).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub findings: Vec<FindingRow>,
    /// Rows there would be without the cap.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub findings_total: u64,
}

/// Most rows of [`VantageReport::findings`].
pub const FINDING_ROWS: usize = 1000;

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One finding of one MX host (at the address its status comes from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FindingRow {
    pub host: String,
    pub ip: String,
    pub finding: String,
    pub severity: String,
    pub evidence: String,
}

impl VantageReport {
    /// The distributions, then the security section's (as renderers and
    /// comparisons list them).
    pub fn all_distributions(&self) -> impl Iterator<Item = &Distribution> {
        self.distributions
            .iter()
            .chain(self.security.iter().flat_map(|s| s.distributions.iter()))
    }
}

/// The security section of one vantage.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SecuritySection {
    /// Domains with MX that carry security facts (the DNSSEC and DANE
    /// adoption population).
    pub domains_with_mx: u64,
    /// Of those, domains whose MX RRset is DNSSEC-secure ("DNSSEC-signed MX").
    pub mx_dnssec_signed: u64,
    /// Domains whose MX RRset is secure and every MX has TLSA ("DANE adoption").
    pub dane_adopted: u64,
    /// Of the adopters, those where every (MX, IP) validates.
    pub dane_valid: u64,
    /// dnssec_mx, dnssec_reason, dane, dane_reason, dane_adoption, mta_sts,
    /// tls_rpt, ptr — in that order.
    pub distributions: Vec<Distribution>,
    /// The resolver self-check of this vantage's workers (a failed one when
    /// any failed), from the records that carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolver_check: Option<mxscope_common::record::security_dns::ResolverCheck>,
    /// The vantage's resolvers failed the self-check: its DNSSEC and DANE
    /// verdicts are indeterminate and its DANE adoption figures (zero here)
    /// are excluded.
    #[serde(default)]
    pub dane_adoption_excluded: bool,
}

/// A whole scan report.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ScanReport {
    pub schema_version: u32,
    pub scan: ScanInfo,
    /// One per vantage reported (the first is the main one).
    pub vantages: Vec<VantageReport>,
    /// Where the scan's vantages agree; `None` with fewer than two vantages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
}

/// One row of the per-domain table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainRow {
    pub vantage: String,
    pub domain: String,
    pub dns_status: String,
    pub mx_count: u64,
    /// At least one MX host supports STARTTLS.
    pub covered: bool,
    /// A lowest-preference MX host supports STARTTLS.
    pub primary_covered: bool,
    /// Best and worst host status over the domain's MX (outcome names, or
    /// `no_address`); empty without MX.
    pub best_outcome: String,
    pub worst_outcome: String,
}

/// How vantages disagree about one target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Disagreement {
    /// STARTTLS advertised to one vantage, absent or masked (e.g. `XXXXXXXA`) to another.
    StarttlsStrippedOnPath,
    /// Different certificate fingerprints (possible interception).
    CertificateDiffers,
    /// Connected from one vantage, a connection error from another.
    ReachabilityDiffers,
    /// A 421 (rate limiting) from one vantage only.
    RateLimited,
    /// Another difference: outcome, EHLO set or negotiated version.
    OtherDifference,
    /// Different DANE verdicts for the same MX name.
    DaneDiffers,
    /// Different MTA-STS verdicts for the same domain (a [`DomainDiff`],
    /// never a [`VantageDiff`]).
    MtaStsDiffers,
    /// One vantage saw a chain that verifies (or matches TLSA) for the MX
    /// name, another one that does not, with a different key: evidence of
    /// on-path interception (two verifying chains are `CertificateDiffers`).
    TlsIntercepted,
    /// Different TLSA RRsets for the same MX name.
    TlsaDiffers,
    /// The TLS depth saw other accepted suites (or suite classes, or
    /// versions) from one vantage than from another, behind the same leaf
    /// key: a middlebox that filters what the server offers. Different keys
    /// are rotation or a pool (`certificate_differs`), not this.
    SuitesDiffer,
    /// Different MX sets: exchange names, preferences, null or implicit MX
    /// (a [`DnsDiff`]).
    MxDiffers,
    /// The same exchange resolves to different addresses (a [`DnsDiff`]).
    AddressDiffers,
    /// Different DNSSEC status of the MX RRset or of an exchange's
    /// addresses (a [`DnsDiff`]).
    DnssecDiffers,
    /// Different DNS status (e.g. NXDOMAIN or SERVFAIL from one vantage
    /// only; a [`DnsDiff`]).
    DnsStatusDiffers,
}

/// One domain whose MTA-STS verdict differs between vantages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DomainDiff {
    pub domain: String,
    pub classes: Vec<Disagreement>,
    /// Per vantage: the MTA-STS verdict (snake_case, as in records).
    pub mta_sts: BTreeMap<String, String>,
}

/// One target whose view differs between vantages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VantageDiff {
    pub ip: String,
    pub mx_names: Vec<String>,
    pub classes: Vec<Disagreement>,
    /// Per vantage: outcome, EHLO keywords, certificate SHA-256, TLS version.
    pub views: BTreeMap<String, TargetView>,
}

/// What one vantage saw of a target.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TargetView {
    pub outcome: String,
    pub ehlo: Vec<String>,
    pub starttls_advertised: bool,
    pub certificate_sha256: Option<String>,
    pub tls_version: Option<String>,
    pub greeting_code: Option<u16>,
}

/// The `vantages` report of a scan.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VantagesReport {
    pub scan: ScanInfo,
    pub targets_compared: u64,
    pub diffs: Vec<VantageDiff>,
    /// Targets per class (a target may be in several); domains for
    /// `mta_sts_differs`.
    pub summary: BTreeMap<String, u64>,
    /// Domains with an MTA-STS TXT record from some vantage, seen from two
    /// or more vantages with security checks.
    pub domains_compared: u64,
    pub domain_diffs: Vec<DomainDiff>,
    /// Domains with a DNS record from two or more vantages.
    #[serde(default)]
    pub dns_domains_compared: u64,
    /// Of those, domains on which every vantage agrees: same DNS, same
    /// MTA-STS verdict, and no differing target among their addresses.
    #[serde(default)]
    pub domains_agreeing: u64,
    /// Domains whose DNS answers differ between vantages.
    #[serde(default)]
    pub dns_diffs: Vec<DnsDiff>,
    /// Targets probed from one vantage only, with the domains that led there.
    #[serde(default)]
    pub one_vantage_targets: Vec<OneVantageTarget>,
}

/// One domain whose DNS answers differ between vantages.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DnsDiff {
    pub domain: String,
    pub classes: Vec<Disagreement>,
    /// Per vantage: what its resolver said.
    pub views: BTreeMap<String, DnsView>,
    /// Addresses of one side that stand out against the other side's.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<AddressNote>,
}

/// What one vantage's resolver said about a domain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DnsView {
    /// DNS status (`ok`, `nxdomain`, `servfail`, …).
    pub status: String,
    pub null_mx: bool,
    pub implicit_mx: bool,
    /// `preference exchange`, in record order.
    pub mx: Vec<String>,
    /// Addresses per exchange, sorted.
    pub addresses: BTreeMap<String, Vec<String>>,
    /// DNSSEC status of the MX RRset (with `--security`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dnssec_mx: Option<String>,
    /// DNSSEC status of each exchange's addresses (with `--security`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub dnssec_exchanges: BTreeMap<String, String>,
}

/// An address one vantage saw for an exchange and another did not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AddressNote {
    pub vantage: String,
    pub exchange: String,
    pub address: String,
    /// Not globally routable (private, loopback, …) while the other side
    /// saw a public address for the exchange.
    pub not_public: bool,
    /// Outside every network (/24, /48) the other side saw for the exchange.
    pub outside_networks: bool,
}

/// A target that only one vantage probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OneVantageTarget {
    pub ip: String,
    pub vantage: String,
    pub mx_names: Vec<String>,
    /// Domains of that vantage whose MX led to this address (the first
    /// [`ONE_VANTAGE_DOMAINS_CAP`] by name).
    pub domains: Vec<String>,
    /// Further domains, not listed.
    pub more_domains: u64,
}

/// Domains kept per one-vantage target.
pub const ONE_VANTAGE_DOMAINS_CAP: usize = 20;

/// How far the vantages of a scan agree (the main report's section when a
/// scan has two or more vantages).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Agreement {
    pub vantages: Vec<String>,
    pub targets_compared: u64,
    pub targets_agreeing: u64,
    /// 0–100 of `targets_compared`.
    pub targets_agreeing_percent: f64,
    pub domains_compared: u64,
    pub domains_agreeing: u64,
    /// 0–100 of `domains_compared`.
    pub domains_agreeing_percent: f64,
    /// Targets or domains per class.
    pub classes: BTreeMap<String, u64>,
    /// Per class: the IPs (target classes) or domains (domain classes)
    /// behind it, every one (renderers cap them).
    pub members: BTreeMap<String, Vec<String>>,
    pub one_vantage_targets: u64,
}

/// Several scans side by side.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Comparison {
    pub scans: Vec<ScanReport>,
}
