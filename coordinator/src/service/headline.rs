//! The headline of a scan of this coordinator, read from its store: what
//! `mxscope scan` prints when its scan ends.

use crate::model::Work;
use crate::report::{self, Headline};
use crate::scheduler::{self, TaskClass};

use super::types::ServiceError;
use super::Coordinator;

impl Coordinator {
    /// The headline of `vantage` of `scan`. The domain records are read in
    /// two halves side by side (two threads: at the end of a scan the cores
    /// are free), cut where the middle resolve task starts. Blocking.
    pub fn headline(&self, scan: &str, vantage: &str) -> Result<Headline, ServiceError> {
        let status = self.status(scan)?;
        let store = &self.store;
        let all = || store.domain_records(scan);
        let targets = store.target_records(scan);
        let vantages = status.meta.vantages.len().max(1) as u64;
        let middle = status.resolve.total / vantages / 2;
        let middle = scheduler::task_id(scan, vantage, TaskClass::Resolve, middle);
        let cut = match store.task(&middle)?.map(|task| task.kind) {
            Some(Work::Resolve { domains }) => match domains.first() {
                Some(domain) => store.domain_records_cut(scan, vantage, domain)?,
                None => None,
            },
            _ => None,
        };
        let domains = status.meta.domains;
        let headline = match cut {
            Some(cut) => report::headline_side_by_side(
                vantage,
                domains,
                (
                    || store.domain_records_between(scan, vantage, None, Some(&cut)),
                    || store.domain_records_between(scan, vantage, Some(&cut), None),
                ),
                all,
                targets,
            )?,
            None => report::headline(vantage, domains, all, targets)?,
        };
        Ok(headline)
    }
}
