//! The coordinator's `WorkerService`, seen from the worker: the only module
//! of the worker that touches tonic and prost types (DESIGN §1). It opens
//! the channel ([`mxscope_common::wire::client`]: TLS, optional client
//! certificate, bearer token on every call, message limit), converts
//! proto ⇄ worker types, and sorts call failures into what the caller
//! should do ([`CallError`]).

use std::time::Duration;

use mxscope_common::wire::client::{endpoint, Bearer, ClientTls, MAX_MESSAGE_BYTES};
pub use mxscope_common::wire::convert::TaskError;
use mxscope_common::wire::convert::{batch_to_proto, lease_request};
use mxscope_common::wire::proto;
use mxscope_common::wire::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::wire::task::ItemBudget;
pub use mxscope_common::wire::task::{EgressReport, Registration};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use crate::fleet::config::FleetError;
use crate::fleet::link::leases::Lease;
use crate::fleet::task::{Batch, CallError, ResultSink, TaskSpec};

/// One call, whatever it is.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

impl From<Status> for CallError {
    fn from(status: Status) -> Self {
        let text = format!("{:?}: {}", status.code(), status.message());
        match status.code() {
            Code::FailedPrecondition | Code::NotFound => Self::LeaseLost(text),
            Code::InvalidArgument
            | Code::Unauthenticated
            | Code::PermissionDenied
            | Code::Unimplemented
            | Code::OutOfRange
            | Code::AlreadyExists
            // The coordinator's store cannot decode what the call needs.
            | Code::DataLoss => Self::Refused(text),
            _ => Self::Transient(text),
        }
    }
}

/// A leased task, converted; or its lease and why it cannot run (malformed).
pub type LeasedTask = Result<TaskSpec, (Lease, TaskError)>;

/// A client of one coordinator, as one worker. Cheap to clone: clones share
/// the channel, which reconnects by itself after a failure.
#[derive(Debug, Clone)]
pub struct Coordinator {
    client: WorkerServiceClient<InterceptedService<Channel, Bearer>>,
    worker_id: String,
    vantage: String,
}

/// Everything the channel needs, borrowed from the fleet configuration.
#[derive(Debug, Clone, Copy)]
pub struct ChannelSettings<'a> {
    pub url: &'a str,
    pub token: Option<&'a str>,
    pub ca_pem: Option<&'a [u8]>,
    pub identity: Option<(&'a [u8], &'a [u8])>,
}

impl Coordinator {
    /// Prepare the channel; it connects on first use (and again after any
    /// failure), so an unreachable coordinator is not an error here.
    pub fn new(
        settings: ChannelSettings<'_>,
        worker_id: &str,
        vantage: &str,
    ) -> Result<Self, FleetError> {
        let tls = ClientTls {
            ca_pem: settings.ca_pem.map(<[u8]>::to_vec),
            identity: settings
                .identity
                .map(|(cert, key)| (cert.to_vec(), key.to_vec())),
        };
        let endpoint = endpoint(settings.url, &tls, Some(CALL_TIMEOUT))?;
        let bearer = Bearer::new(settings.token)?;
        let client = WorkerServiceClient::with_interceptor(endpoint.connect_lazy(), bearer)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self {
            client,
            worker_id: worker_id.to_string(),
            vantage: vantage.to_string(),
        })
    }

    pub async fn register(
        &self,
        capacity: usize,
        egress: &EgressReport,
    ) -> Result<Registration, CallError> {
        let request = proto::RegisterRequest {
            worker_id: self.worker_id.clone(),
            vantage: self.vantage.clone(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            capacity: saturate(capacity),
            egress: Some(proto::EgressCheck::from(egress)),
        };
        let reply = self.client.clone().register(request).await?.into_inner();
        Ok(Registration::from(reply))
    }

    /// Lease up to `max_tasks` within `budget` (the free slots); when none
    /// is pending the coordinator may hold the call up to `wait` (long poll).
    /// Each task converted, or refused with its lease and the reason (a
    /// malformed task).
    pub async fn lease(
        &self,
        max_tasks: usize,
        budget: ItemBudget,
        wait: Duration,
    ) -> Result<Vec<LeasedTask>, CallError> {
        let request = lease_request(&self.worker_id, &self.vantage, max_tasks, budget, wait);
        let reply = self.client.clone().lease(request).await?.into_inner();
        Ok(reply
            .tasks
            .into_iter()
            .map(|task| {
                let lease = Lease::from(&task);
                TaskSpec::try_from(task).map_err(|error| (lease, error))
            })
            .collect())
    }

    /// Extend `leases`; returns the ones the coordinator says we lost.
    pub async fn heartbeat(&self, leases: &[Lease]) -> Result<Vec<Lease>, CallError> {
        let request = proto::HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            leases: leases.iter().map(proto::LeaseRef::from).collect(),
        };
        let reply = self.client.clone().heartbeat(request).await?.into_inner();
        Ok(reply.lost.into_iter().map(Lease::from).collect())
    }

    pub async fn release(&self, lease: &Lease) -> Result<(), CallError> {
        let request = proto::ReleaseRequest {
            worker_id: self.worker_id.clone(),
            lease: Some(lease.into()),
        };
        self.client.clone().release(request).await?;
        Ok(())
    }
}

impl ResultSink for Coordinator {
    /// Deliver a batch; `Ok` only once the coordinator stored it durably.
    /// Returns how many records were newly stored.
    async fn report(&self, batch: &Batch) -> Result<u32, CallError> {
        let request = batch_to_proto(&self.worker_id, batch);
        let reply = self
            .client
            .clone()
            .report_results(request)
            .await?
            .into_inner();
        Ok(reply.stored)
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_codes_say_what_to_do() {
        let kind = |code| CallError::from(Status::new(code, "x"));
        assert!(matches!(kind(Code::Unavailable), CallError::Transient(_)));
        assert!(matches!(
            kind(Code::DeadlineExceeded),
            CallError::Transient(_)
        ));
        assert!(matches!(kind(Code::Internal), CallError::Transient(_)));
        assert!(matches!(
            kind(Code::FailedPrecondition),
            CallError::LeaseLost(_)
        ));
        assert!(matches!(kind(Code::NotFound), CallError::LeaseLost(_)));
        assert!(matches!(kind(Code::Unauthenticated), CallError::Refused(_)));
        assert!(matches!(kind(Code::InvalidArgument), CallError::Refused(_)));
        assert!(matches!(kind(Code::DataLoss), CallError::Refused(_)));
    }

    /// (Task, lease and batch conversions: `mxscope_common::wire::convert::task`.)
    #[test]
    fn channel_settings_are_checked() {
        let settings = |url| ChannelSettings {
            url,
            token: Some("secret"),
            ca_pem: None,
            identity: None,
        };
        assert!(matches!(
            Coordinator::new(settings("ftp://x"), "w", "v"),
            Err(FleetError::CoordinatorUrl { .. })
        ));
        let mut bad_token = settings("http://127.0.0.1:1");
        bad_token.token = Some("line\nbreak");
        assert!(matches!(
            Coordinator::new(bad_token, "w", "v"),
            Err(FleetError::Token)
        ));
    }
}
