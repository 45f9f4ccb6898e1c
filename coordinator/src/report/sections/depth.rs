//! The TLS depth in a report (scans with `--tls-depth`): hosts per finding,
//! the weakest accepted suite class, forward secrecy only, whose suite order
//! counts, SCTs, OCSP stapling — over MX hosts supporting STARTTLS — and
//! the rows of hosts with findings.

use std::collections::BTreeMap;
use std::net::IpAddr;

use mxscope_common::findings::{FindingId, DEFINITIONS};
use mxscope_common::snake;

use crate::report::distributions::labels::{self, DepthSummary};
use crate::report::model::{Distribution, FindingRow, FINDING_ROWS};

const STARTTLS_HOSTS: &str = "MX hosts supporting STARTTLS";

/// Worst finding first (the order of `DEFINITIONS`), then by host.
fn worst_first(rows: &mut [FindingRow]) {
    let order = |f: &FindingRow| {
        DEFINITIONS
            .iter()
            .position(|d| d.id.to_string() == f.finding)
            .unwrap_or(usize::MAX)
    };
    rows.sort_by(|a, b| order(a).cmp(&order(b)).then_with(|| a.host.cmp(&b.host)));
}

/// The depth counters of one vantage.
#[derive(Debug, Default)]
pub(crate) struct DepthCounts {
    findings: BTreeMap<FindingId, u64>,
    no_finding: u64,
    weakest: BTreeMap<&'static str, u64>,
    forward_secrecy_only: BTreeMap<&'static str, u64>,
    preference: BTreeMap<&'static str, u64>,
    scts: BTreeMap<&'static str, u64>,
    ocsp: BTreeMap<&'static str, u64>,
    rows: Vec<FindingRow>,
    rows_total: u64,
}

impl DepthCounts {
    /// One STARTTLS host `name`, its status from the target at `ip`.
    pub(crate) fn add(&mut self, name: &str, ip: IpAddr, d: &DepthSummary) {
        for (id, evidence) in &d.findings {
            *self.findings.entry(*id).or_default() += 1;
            self.rows_total += 1;
            self.rows.push(FindingRow {
                host: name.to_string(),
                ip: ip.to_string(),
                finding: id.to_string(),
                severity: snake(&id.definition().severity),
                evidence: evidence.clone(),
            });
            // Bounded: keep the worst FINDING_ROWS whenever twice as many
            // are held, so a late critical row is never lost to early low ones.
            if self.rows.len() >= 2 * FINDING_ROWS {
                worst_first(&mut self.rows);
                self.rows.truncate(FINDING_ROWS);
            }
        }
        self.no_finding += u64::from(d.findings.is_empty());
        *self.weakest.entry(d.weakest).or_default() += 1;
        *self
            .forward_secrecy_only
            .entry(d.forward_secrecy_only)
            .or_default() += 1;
        *self.preference.entry(d.preference).or_default() += 1;
        *self.scts.entry(d.scts).or_default() += 1;
        *self.ocsp.entry(d.ocsp).or_default() += 1;
    }

    /// The rows of hosts with findings, worst first then by host, and how
    /// many there were before the cap.
    pub(crate) fn take_rows(&mut self) -> (Vec<FindingRow>, u64) {
        let mut rows = std::mem::take(&mut self.rows);
        worst_first(&mut rows);
        rows.truncate(FINDING_ROWS);
        (rows, self.rows_total)
    }

    /// The distributions, over `total` STARTTLS hosts.
    pub(crate) fn distributions(&self, total: u64) -> Vec<Distribution> {
        let mut findings: Vec<(String, u64)> = DEFINITIONS
            .iter()
            .filter_map(|d| {
                let n = self.findings.get(&d.id).copied()?;
                Some((format!("{}: {}", d.id, d.title), n))
            })
            .collect();
        findings.push(("no finding".to_string(), self.no_finding));
        let rows = |labels: &[&'static str], counts: &BTreeMap<&'static str, u64>| {
            labels
                .iter()
                .filter_map(|row| counts.get(row).map(|n| (row.to_string(), *n)))
                .collect::<Vec<_>>()
        };
        let dist = |name: &str, title: &str, rows: Vec<(String, u64)>| {
            Distribution::new(name, title, STARTTLS_HOSTS, total, rows)
        };
        vec![
            dist(
                "findings",
                "Known weaknesses (hosts with each finding; a host may have several)",
                findings,
            ),
            dist(
                "weakest_suite_class",
                "Weakest accepted suite class",
                rows(&labels::WEAKEST_ROWS, &self.weakest),
            ),
            dist(
                "forward_secrecy_only",
                "Only suites with forward secrecy accepted",
                rows(&labels::YES_NO_ROWS, &self.forward_secrecy_only),
            ),
            dist(
                "suite_order",
                "Whose suite order counts",
                rows(&labels::PREFERENCE_ROWS, &self.preference),
            ),
            dist(
                "scts",
                "Certificate Transparency: SCTs embedded in the leaf",
                rows(&labels::YES_NO_ROWS, &self.scts),
            ),
            dist(
                "ocsp_stapled",
                "OCSP response stapled",
                rows(&labels::YES_NO_ROWS, &self.ocsp),
            ),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: FindingId) -> DepthSummary {
        DepthSummary {
            findings: vec![(id, "evidence".into())],
            weakest: "aead",
            forward_secrecy_only: "no",
            preference: labels::NOT_MEASURED,
            scts: "no",
            ocsp: "no",
        }
    }

    #[test]
    fn a_late_critical_row_survives_the_cap() {
        let mut counts = DepthCounts::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let low = summary(FindingId::NoForwardSecrecy);
        for i in 0..2 * FINDING_ROWS + 500 {
            counts.add(&format!("mx{i:05}.example"), ip, &low);
        }
        counts.add("zz-last.example", ip, &summary(FindingId::Sslv2));
        let (rows, total) = counts.take_rows();
        assert_eq!(total, 2 * FINDING_ROWS as u64 + 501);
        assert_eq!(rows.len(), FINDING_ROWS);
        assert_eq!(
            (rows[0].host.as_str(), rows[0].finding.as_str()),
            ("zz-last.example", "sslv2")
        );
        assert_eq!(rows[1].host, "mx00000.example", "then by host");
    }
}
