//! The worker service over the [`Coordinator`].

use std::sync::Arc;
use std::time::Duration;

use mxscope_common::wire::convert::task_to_proto;
use mxscope_common::wire::proto::{self, worker_service_server::WorkerService};
use mxscope_common::wire::task::{
    EgressReport, ItemBudget, Lease, Registration, ReportedBatch, TaskSpec,
};
use tonic::{Request, Response, Status};

use crate::service::{Coordinator, Leased, WorkerHello};

/// Most tasks one lease call may ask for.
const MAX_LEASE: u32 = 64;

/// The worker service.
#[derive(Debug, Clone)]
pub struct WorkerApi {
    coordinator: Arc<Coordinator>,
}

impl WorkerApi {
    pub fn new(coordinator: Arc<Coordinator>) -> Self {
        Self { coordinator }
    }
}

fn required<'a>(value: &'a str, field: &str) -> Result<&'a str, Status> {
    if value.is_empty() || value.len() > 256 {
        return Err(Status::invalid_argument(format!(
            "{field} must be 1 to 256 bytes"
        )));
    }
    Ok(value)
}

/// A leased task for the wire: the coordinator's task as the contract's
/// [`TaskSpec`], converted where every task message is.
fn to_proto(leased: Leased) -> proto::Task {
    let spec = TaskSpec {
        lease: Lease {
            task_id: leased.task.id,
            epoch: leased.task.epoch,
        },
        scan_id: leased.task.scan,
        vantage: leased.task.vantage,
        options: leased.options,
        work: leased.task.kind,
    };
    task_to_proto(spec, leased.deadline_ms)
}

#[tonic::async_trait]
impl WorkerService for WorkerApi {
    async fn register(
        &self,
        request: Request<proto::RegisterRequest>,
    ) -> Result<Response<proto::RegisterResponse>, Status> {
        let r = request.into_inner();
        let egress = EgressReport::from(r.egress.unwrap_or_default());
        crate::metrics::worker_seen(&r.worker_id, &r.vantage);
        self.coordinator.register(WorkerHello {
            worker_id: required(&r.worker_id, "worker_id")?.to_string(),
            vantage: required(&r.vantage, "vantage")?.to_string(),
            version: r.version,
            capacity: r.capacity,
            egress_ok: egress.verdict(),
        });
        let config = self.coordinator.config();
        Ok(Response::new(proto::RegisterResponse::from(
            &Registration {
                heartbeat_interval: config.heartbeat_interval,
                lease_ttl: config.lease_ttl,
            },
        )))
    }

    async fn lease(
        &self,
        request: Request<proto::LeaseRequest>,
    ) -> Result<Response<proto::LeaseResponse>, Status> {
        let r = request.into_inner();
        let worker = required(&r.worker_id, "worker_id")?;
        let vantage = required(&r.vantage, "vantage")?;
        let max = r.max_tasks.min(MAX_LEASE) as usize;
        crate::metrics::worker_seen(worker, vantage);
        let budget = ItemBudget::from(&r);
        let wait = Duration::from_millis(u64::from(r.wait_ms));
        let leased = self
            .coordinator
            .lease_waiting(worker, vantage, max, budget, wait)
            .await?;
        leased
            .iter()
            .for_each(|l| crate::metrics::leases_granted(&l.task.kind));
        Ok(Response::new(proto::LeaseResponse {
            tasks: leased.into_iter().map(to_proto).collect(),
        }))
    }

    async fn heartbeat(
        &self,
        request: Request<proto::HeartbeatRequest>,
    ) -> Result<Response<proto::HeartbeatResponse>, Status> {
        let r = request.into_inner();
        let worker = required(&r.worker_id, "worker_id")?;
        let leases: Vec<Lease> = r.leases.into_iter().map(Lease::from).collect();
        let (extended, lost) = self.coordinator.heartbeat(worker, &leases)?;
        let refs = |v: Vec<Lease>| v.iter().map(proto::LeaseRef::from).collect();
        Ok(Response::new(proto::HeartbeatResponse {
            extended: refs(extended),
            lost: refs(lost),
        }))
    }

    async fn report_results(
        &self,
        request: Request<proto::ResultBatch>,
    ) -> Result<Response<proto::ResultAck>, Status> {
        let batch = ReportedBatch::try_from(request.into_inner())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        let worker = required(&batch.worker_id, "worker_id")?;
        let records = batch.records;
        let domains = records
            .iter()
            .filter(|r| matches!(r.record, mxscope_common::Record::Domain(_)))
            .count() as u64;
        let targets = records.len() as u64 - domains;
        let stored = self
            .coordinator
            .report(
                worker,
                &batch.lease.task_id,
                batch.lease.epoch,
                records,
                batch.task_complete,
            )
            .await?;
        crate::metrics::results_ingested(domains, targets, u64::from(stored));
        Ok(Response::new(proto::ResultAck { stored }))
    }

    async fn release(
        &self,
        request: Request<proto::ReleaseRequest>,
    ) -> Result<Response<proto::ReleaseResponse>, Status> {
        let r = request.into_inner();
        let worker = required(&r.worker_id, "worker_id")?;
        let lease = Lease::from(
            r.lease
                .ok_or_else(|| Status::invalid_argument("lease is required"))?,
        );
        self.coordinator
            .release(worker, &lease.task_id, lease.epoch)
            .await?;
        Ok(Response::new(proto::ReleaseResponse {}))
    }
}
