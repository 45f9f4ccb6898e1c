//! Task counts and scan statuses ⇄ wire, both ways: the admin service
//! sends them, its client reads them back (the worker contract's and the
//! scan options' conversions are in [`mxscope_common::wire::convert`]).

use std::collections::BTreeMap;

use mxscope_common::wire::proto;

use crate::model::{ScanMeta, ScanOptions, ScanState};
use crate::service::{ScanStatus, TaskCounts};

impl From<TaskCounts> for proto::TaskCounts {
    fn from(c: TaskCounts) -> Self {
        Self {
            total: c.total,
            pending: c.pending,
            leased: c.leased,
            done: c.done,
            failed: c.failed,
            items: c.items,
        }
    }
}

impl From<proto::TaskCounts> for TaskCounts {
    fn from(c: proto::TaskCounts) -> Self {
        Self {
            total: c.total,
            pending: c.pending,
            leased: c.leased,
            done: c.done,
            failed: c.failed,
            items: c.items,
        }
    }
}

impl From<&ScanStatus> for proto::ScanStatus {
    fn from(s: &ScanStatus) -> Self {
        Self {
            scan_id: s.meta.id.clone(),
            name: s.meta.name.clone(),
            labels: s.meta.labels.clone().into_iter().collect(),
            vantages: s.meta.vantages.clone(),
            state: s.meta.state.as_str().to_string(),
            created_unix_ms: s.meta.created_ms,
            finished_unix_ms: s.meta.finished_ms.unwrap_or(0),
            domains: s.meta.domains,
            resolve: Some(s.resolve.into()),
            probe: Some(s.probe.into()),
            domain_records: s.domain_records,
            target_records: s.target_records,
            failed_items: s.failed_items,
            storage_problem: s.storage_problem.clone().unwrap_or_default(),
            tallies: s
                .tallies
                .iter()
                .map(|(vantage, tally)| proto::VantageTally {
                    vantage: vantage.clone(),
                    json: serde_json::to_string(tally).unwrap_or_default(),
                })
                .collect(),
        }
    }
}

/// A status as a client reads it: the options are not on the wire (the
/// defaults stand in), an unknown state reads as running.
impl TryFrom<proto::ScanStatus> for ScanStatus {
    type Error = String;

    fn try_from(s: proto::ScanStatus) -> Result<Self, String> {
        let mut tallies = BTreeMap::new();
        for tally in s.tallies {
            let parsed = serde_json::from_str(&tally.json)
                .map_err(|e| format!("the tally of vantage {:?}: {e}", tally.vantage))?;
            tallies.insert(tally.vantage, parsed);
        }
        let state = match s.state.as_str() {
            "done" => ScanState::Done,
            "cancelled" => ScanState::Cancelled,
            _ => ScanState::Running,
        };
        Ok(Self {
            meta: ScanMeta {
                id: s.scan_id,
                name: s.name,
                labels: s.labels.into_iter().collect(),
                vantages: s.vantages,
                options: ScanOptions::default(),
                state,
                created_ms: s.created_unix_ms,
                finished_ms: (s.finished_unix_ms != 0).then_some(s.finished_unix_ms),
                domains: s.domains,
            },
            resolve: s.resolve.unwrap_or_default().into(),
            probe: s.probe.unwrap_or_default().into(),
            domain_records: s.domain_records,
            target_records: s.target_records,
            failed_items: s.failed_items,
            tallies,
            storage_problem: (!s.storage_problem.is_empty()).then_some(s.storage_problem),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the admin service sends is what its client reads, but the
    /// options (not on the wire).
    #[test]
    fn a_status_reads_back_as_it_was_sent() {
        let mut tally = mxscope_common::tally::VantageTally::default();
        tally.politeness.sessions = 7;
        let counts = |n| TaskCounts {
            total: n,
            pending: 1,
            leased: 2,
            done: n - 3,
            failed: 0,
            items: 10 * n,
        };
        for (state, finished_ms, problem) in [
            (ScanState::Running, None, Some("disk full".to_string())),
            (ScanState::Done, Some(9), None),
            (ScanState::Cancelled, Some(11), None),
        ] {
            let sent = ScanStatus {
                meta: ScanMeta {
                    id: "s3".into(),
                    name: "fr".into(),
                    labels: [("country".to_string(), "fr".to_string())].into(),
                    vantages: vec!["a".into(), "b".into()],
                    options: ScanOptions::default(),
                    state,
                    created_ms: 5,
                    finished_ms,
                    domains: 73,
                },
                resolve: counts(4),
                probe: counts(6),
                domain_records: 73,
                target_records: 106,
                failed_items: 2,
                tallies: [("a".to_string(), tally.clone())].into(),
                storage_problem: problem,
            };
            let read = ScanStatus::try_from(proto::ScanStatus::from(&sent)).unwrap();
            assert_eq!(read.meta, sent.meta);
            assert_eq!((read.resolve, read.probe), (sent.resolve, sent.probe));
            assert_eq!(
                (read.domain_records, read.target_records, read.failed_items),
                (73, 106, 2)
            );
            assert_eq!(read.tallies, sent.tallies);
            assert_eq!(read.storage_problem, sent.storage_problem);
        }
        let mut broken = proto::ScanStatus::default();
        broken.tallies.push(proto::VantageTally {
            vantage: "a".into(),
            json: "{".into(),
        });
        assert!(ScanStatus::try_from(broken)
            .unwrap_err()
            .contains("vantage \"a\""));
    }
}
