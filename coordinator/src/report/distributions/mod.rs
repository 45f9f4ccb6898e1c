//! The distribution counters of one vantage: every MX host supporting
//! STARTTLS counted once by its best target's facts (key, verification,
//! name match, protocols, expiry, key exchange, where the facts come from,
//! the TLS depth), then turned into the report's distributions.

pub(super) mod labels;

use std::collections::BTreeMap;
use std::net::IpAddr;

use mxscope_common::{Bucket, Outcome};

use self::labels::TargetSummary;
use super::model::Distribution;
use super::sections::depth::DepthCounts;
use super::Headline;

/// Host status of an MX without any address.
pub const NO_ADDRESS: &str = "no_address";
/// Host status of an MX whose addresses have no target record (yet).
pub const NOT_PROBED: &str = "not_probed";

/// What an MX host's IPs showed, as one status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum HostStatus {
    /// The best outcome over the host's IPs, and the IP that showed it.
    Probed {
        outcome: Outcome,
        ip: IpAddr,
    },
    NotProbed,
    NoAddress,
}

impl HostStatus {
    pub(super) fn bucket(self) -> Bucket {
        match self {
            Self::Probed { outcome, .. } => outcome.bucket(),
            Self::NotProbed | Self::NoAddress => Bucket::ConnectionError,
        }
    }

    pub(super) fn label(self) -> &'static str {
        match self {
            Self::Probed { outcome, .. } => outcome.as_str(),
            Self::NotProbed => NOT_PROBED,
            Self::NoAddress => NO_ADDRESS,
        }
    }

    /// Lower is better; ties broken by the outcome's order, so that best
    /// and worst are deterministic.
    pub(super) fn rank(self) -> (u8, Option<Outcome>) {
        match self {
            Self::Probed { outcome, .. } => (outcome.rank(), Some(outcome)),
            Self::NotProbed => (u8::MAX - 1, None),
            Self::NoAddress => (u8::MAX, None),
        }
    }
}

/// Distribution counters of one vantage.
#[derive(Debug, Default)]
pub(super) struct Counts {
    key: BTreeMap<String, u64>,
    verification: BTreeMap<String, u64>,
    highest: BTreeMap<String, u64>,
    protocols: [[u64; 4]; 5],
    expiry: BTreeMap<&'static str, u64>,
    outcome_phase: BTreeMap<String, u64>,
    name_match: BTreeMap<String, u64>,
    validating: BTreeMap<String, u64>,
    key_exchange: BTreeMap<&'static str, u64>,
    tls_source: BTreeMap<String, u64>,
    pub(super) depth: DepthCounts,
}

impl Counts {
    pub(super) fn add(
        &mut self,
        name: &str,
        status: HostStatus,
        best: Option<&TargetSummary>,
        now: i64,
    ) {
        let phase = match (status, best) {
            (HostStatus::Probed { outcome, .. }, Some(t)) => {
                format!("{outcome} @ {}", labels::phase_label(t.phase))
            }
            _ => status.label().to_string(),
        };
        *self.outcome_phase.entry(phase).or_default() += 1;
        let Some(t) = best.filter(|_| status.bucket() == Bucket::SupportsStarttls) else {
            return;
        };
        *self.key.entry(t.key.clone()).or_default() += 1;
        *self
            .verification
            .entry(t.verification.to_string())
            .or_default() += 1;
        *self.highest.entry(t.highest_protocol.clone()).or_default() += 1;
        let matched = match &t.tls_version {
            None => labels::NO_HANDSHAKE,
            Some(_) if t.name_matches(name) => "matches",
            Some(_) => "does not match",
        };
        *self.name_match.entry(matched.to_string()).or_default() += 1;
        *self
            .validating
            .entry(t.validating_sender(name).to_string())
            .or_default() += 1;
        *self.key_exchange.entry(t.key_exchange).or_default() += 1;
        let source = match (&t.tls_version, t.first_flight) {
            (None, _) => labels::NO_HANDSHAKE,
            (Some(_), true) => "first flight (modern TLS failed)",
            (Some(_), false) => "handshake",
        };
        *self.tls_source.entry(source.to_string()).or_default() += 1;
        if let (Some(d), HostStatus::Probed { ip, .. }) = (&t.depth, status) {
            self.depth.add(name, ip, d);
        }
        for (version, support) in t.protocols.iter().enumerate() {
            let row = labels::SUPPORT_ROWS
                .iter()
                .position(|r| *r == labels::support_label(*support))
                .unwrap_or(3);
            self.protocols[version][row] += 1;
        }
        *self
            .expiry
            .entry(labels::expiry_label(t.not_after, now))
            .or_default() += 1;
    }

    pub(super) fn into_distributions(
        self,
        headline: &Headline,
        legacy: bool,
        depth: bool,
    ) -> Vec<Distribution> {
        const STARTTLS_HOSTS: &str = "MX hosts supporting STARTTLS";
        let total = headline.mx_starttls;
        let depth_rows = if depth {
            self.depth.distributions(total)
        } else {
            Vec::new()
        };
        let mut out = vec![
            Distribution::new(
                "key",
                "Key type and size",
                STARTTLS_HOSTS,
                total,
                largest_first(self.key),
            ),
            Distribution::new(
                "verification",
                "Certificate verification",
                STARTTLS_HOSTS,
                total,
                largest_first(self.verification),
            ),
            Distribution::new(
                "name_match",
                "Certificate name match (per MX name and address)",
                STARTTLS_HOSTS,
                total,
                largest_first(self.name_match),
            ),
            Distribution::new(
                "validating_sender",
                "A validating sender would accept (chain valid, name matches, TLS 1.2+)",
                STARTTLS_HOSTS,
                total,
                largest_first(self.validating),
            ),
            Distribution::new(
                "key_exchange",
                "Key exchange (forward secrecy)",
                STARTTLS_HOSTS,
                total,
                labels::KEY_EXCHANGE_ROWS
                    .iter()
                    .filter_map(|row| self.key_exchange.get(row).map(|n| (row.to_string(), *n))),
            ),
            Distribution::new(
                "tls_source",
                "Where the TLS facts come from",
                STARTTLS_HOSTS,
                total,
                largest_first(self.tls_source),
            ),
        ];
        let mut highest: Vec<(String, u64)> = self.highest.into_iter().collect();
        highest.sort_by_key(|(v, _)| labels::protocol_order(v));
        out.push(Distribution::new(
            "highest_protocol",
            "Highest protocol version",
            STARTTLS_HOSTS,
            total,
            highest,
        ));
        if legacy {
            for ((field, name), counts) in labels::VERSIONS.iter().zip(self.protocols) {
                out.push(Distribution::new(
                    &format!("protocol_{field}"),
                    &format!("{name} support"),
                    STARTTLS_HOSTS,
                    total,
                    labels::SUPPORT_ROWS
                        .iter()
                        .zip(counts)
                        .map(|(row, n)| (row.to_string(), n)),
                ));
            }
        }
        let mut expiry: Vec<(String, u64)> = labels::EXPIRY_ROWS
            .iter()
            .map(|row| (row.to_string(), self.expiry.get(row).copied().unwrap_or(0)))
            .collect();
        if let Some(n) = self.expiry.get(labels::EXPIRY_UNREADABLE) {
            expiry.push((labels::EXPIRY_UNREADABLE.to_string(), *n));
        }
        out.push(Distribution::new(
            "expiry",
            "Certificate expiry (from the scan's start)",
            STARTTLS_HOSTS,
            total,
            expiry,
        ));
        out.extend(depth_rows);
        out.push(Distribution::new(
            "outcome_phase",
            "Outcome per phase",
            "MX hosts",
            headline.unique_mx,
            largest_first(self.outcome_phase),
        ));
        out
    }
}

/// Rows by count, largest first, then by value.
fn largest_first(counts: BTreeMap<String, u64>) -> Vec<(String, u64)> {
    let mut rows: Vec<(String, u64)> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    rows
}
