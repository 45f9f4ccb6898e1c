//! The heartbeat: held leases extended every interval, the tasks of lost
//! ones cancelled.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::fleet::link::grpc::Coordinator;
use crate::fleet::link::leases::LeaseTable;

/// Extend the held leases every `interval`; cancel the tasks of lost ones.
pub(in crate::fleet) async fn heartbeat(
    coordinator: Coordinator,
    leases: Arc<LeaseTable>,
    interval: Duration,
    stop: CancellationToken,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = ticks.tick() => {}
        }
        let held = leases.snapshot();
        if held.is_empty() {
            continue;
        }
        let beat = tokio::select! {
            () = stop.cancelled() => return,
            beat = tokio::time::timeout(interval.max(Duration::from_secs(1)) * 2, coordinator.heartbeat(&held)) => beat,
        };
        match beat {
            Ok(Ok(lost)) => {
                for lease in lost {
                    // Its last batch on its way: the coordinator ended the
                    // task before this worker read the acknowledgement.
                    let completed = leases.is_completing(&lease);
                    if leases.lose(&lease) {
                        if completed {
                            debug!(task = %lease.task_id, epoch = lease.epoch, "lease ended with its last batch");
                        } else {
                            warn!(task = %lease.task_id, epoch = lease.epoch, "lease lost: task cancelled");
                        }
                    }
                }
            }
            Ok(Err(error)) => warn!(%error, leases = held.len(), "heartbeat failed"),
            Err(_) => warn!(leases = held.len(), "heartbeat timed out"),
        }
    }
}
