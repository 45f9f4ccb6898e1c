//! Whether the coordinator is ready (`/readyz`: the store is open and gRPC
//! accepts work), and the state gauges of [`crate::metrics`] read from the
//! [`Coordinator`] at scrape time.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use mxscope_common::process::ops::Ops;

use crate::metrics::{self, ScanGauge};
use crate::service::Coordinator;

/// Whether the coordinator is up: the store is open and gRPC accepts work.
#[derive(Debug, Default)]
pub struct Readiness {
    coordinator: Mutex<Option<Arc<Coordinator>>>,
    serving: AtomicBool,
}

impl Readiness {
    /// The store is open: state gauges come from this coordinator.
    pub fn opened(&self, coordinator: Arc<Coordinator>) {
        metrics::store_writable(true);
        *self.coordinator.lock().unwrap_or_else(|e| e.into_inner()) = Some(coordinator);
    }

    /// The gRPC listener accepts calls (or stopped accepting them).
    pub fn serving(&self, serving: bool) {
        self.serving.store(serving, Ordering::SeqCst);
    }

    fn coordinator(&self) -> Option<Arc<Coordinator>> {
        self.coordinator
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn check(&self) -> Result<(), String> {
        let Some(coordinator) = self.coordinator() else {
            return Err("the store is not open yet".into());
        };
        if let Some(problem) = coordinator.storage_problem() {
            return Err(problem);
        }
        if !self.serving.load(Ordering::SeqCst) {
            return Err("the gRPC listener is not accepting work".into());
        }
        Ok(())
    }
}

/// Readiness checks and scrape-time gauges of `readiness` in `ops`.
pub fn watch(ops: &mut Ops, readiness: Arc<Readiness>) {
    let check = readiness.clone();
    ops.ready_when(move || check.check());
    ops.on_scrape(move || {
        metrics::set_workers_gauge();
        let Some(coordinator) = readiness.coordinator() else {
            return;
        };
        metrics::set_store_bytes(coordinator.store().size_on_disk().unwrap_or(0));
        let Ok(scans) = coordinator.list() else {
            return;
        };
        let gauges: Vec<ScanGauge> = scans
            .iter()
            .map(|status| ScanGauge {
                state: status.meta.state,
                tasks: [("resolve", &status.resolve), ("probe", &status.probe)]
                    .into_iter()
                    .flat_map(|(kind, counts)| {
                        [
                            ("pending", counts.pending),
                            ("leased", counts.leased),
                            ("done", counts.done),
                            ("failed", counts.failed),
                        ]
                        .map(|(state, n)| (kind, state, n))
                    })
                    .collect(),
            })
            .collect();
        metrics::set_scan_gauges(&gauges);
    });
}
