//! Task counts and scan statuses ⇄ wire (the scan options' conversions
//! are in [`mxscope_common::wire::convert`]).

use mxscope_common::wire::proto;

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
