//! The coordinator's `WorkerService`, seen from the worker: the only module
//! of the worker that touches tonic and prost types (DESIGN §1). It opens
//! the channel ([`mxscope_common::wire::client`]: TLS, optional client
//! certificate, bearer token on every call, message limit), converts
//! proto ⇄ worker types, and sorts call failures into what the caller
//! should do ([`CallError`]). A coordinator in the same process (`mxscope
//! scan`) is called through the same service, without a connection
//! ([`LocalService`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::wire::client::{endpoint, Bearer, ClientTls, MAX_MESSAGE_BYTES};
pub use mxscope_common::wire::convert::TaskError;
use mxscope_common::wire::convert::{batch_to_proto, lease_request};
use mxscope_common::wire::proto;
use mxscope_common::wire::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::wire::proto::worker_service_server::WorkerService;
use mxscope_common::wire::task::ItemBudget;
pub use mxscope_common::wire::task::{EgressReport, Registration};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Response, Status};

use crate::fleet::config::{FleetConfig, FleetError};
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
    link: Link,
    worker_id: String,
    vantage: String,
}

#[derive(Debug, Clone)]
enum Link {
    Grpc(WorkerServiceClient<InterceptedService<Channel, Bearer>>),
    Local(LocalService),
}

/// The worker service of a coordinator in this process (`mxscope scan`'s
/// embedded one): the same calls, requests and replies as over gRPC, made
/// without a connection, HTTP/2 or message encoding. Each call runs on the
/// coordinator's own runtime, as the server's would, bounded like a remote
/// call.
#[derive(Clone)]
pub struct LocalService {
    service: Arc<dyn WorkerService>,
    runtime: tokio::runtime::Handle,
}

impl std::fmt::Debug for LocalService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalService")
    }
}

impl LocalService {
    pub fn new(service: Arc<dyn WorkerService>, runtime: tokio::runtime::Handle) -> Self {
        Self { service, runtime }
    }

    /// `call` on the service, on the coordinator's runtime; its reply.
    async fn call<T, Fut>(
        &self,
        call: impl FnOnce(Arc<dyn WorkerService>) -> Fut,
    ) -> Result<T, Status>
    where
        T: Send + 'static,
        Fut: Future<Output = Result<Response<T>, Status>> + Send + 'static,
    {
        let running = self.runtime.spawn(call(self.service.clone()));
        match tokio::time::timeout(CALL_TIMEOUT, running).await {
            Ok(Ok(reply)) => reply.map(Response::into_inner),
            Ok(Err(ended)) => Err(Status::unavailable(format!(
                "the coordinator's call ended: {ended}"
            ))),
            Err(_) => Err(Status::deadline_exceeded("the coordinator did not answer")),
        }
    }
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
            link: Link::Grpc(client),
            worker_id: worker_id.to_string(),
            vantage: vantage.to_string(),
        })
    }

    /// The fleet's client: of the coordinator of this process when `local`
    /// is given, else of the one `config` names.
    pub fn of_fleet(config: &FleetConfig, local: Option<LocalService>) -> Result<Self, FleetError> {
        let Some(local) = local else {
            let identity = config.client_identity.as_ref();
            let settings = ChannelSettings {
                url: &config.coordinator,
                token: config.token.as_deref(),
                ca_pem: config.coordinator_ca_pem.as_deref(),
                identity: identity.map(|(cert, key)| (cert.as_slice(), key.as_slice())),
            };
            return Self::new(settings, &config.worker_id, &config.vantage);
        };
        Ok(Self::local(local, &config.worker_id, &config.vantage))
    }

    /// A client of the coordinator `service` of this process.
    pub fn local(service: LocalService, worker_id: &str, vantage: &str) -> Self {
        Self {
            link: Link::Local(service),
            worker_id: worker_id.to_string(),
            vantage: vantage.to_string(),
        }
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
        let reply = match &self.link {
            Link::Grpc(client) => client.clone().register(request).await?.into_inner(),
            Link::Local(local) => {
                local
                    .call(|s| async move { s.register(Request::new(request)).await })
                    .await?
            }
        };
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
        let reply = match &self.link {
            Link::Grpc(client) => client.clone().lease(request).await?.into_inner(),
            Link::Local(local) => {
                local
                    .call(|s| async move { s.lease(Request::new(request)).await })
                    .await?
            }
        };
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
        let reply = match &self.link {
            Link::Grpc(client) => client.clone().heartbeat(request).await?.into_inner(),
            Link::Local(local) => {
                local
                    .call(|s| async move { s.heartbeat(Request::new(request)).await })
                    .await?
            }
        };
        Ok(reply.lost.into_iter().map(Lease::from).collect())
    }

    pub async fn release(&self, lease: &Lease) -> Result<(), CallError> {
        let request = proto::ReleaseRequest {
            worker_id: self.worker_id.clone(),
            lease: Some(lease.into()),
        };
        match &self.link {
            Link::Grpc(client) => {
                client.clone().release(request).await?;
            }
            Link::Local(local) => {
                local
                    .call(|s| async move { s.release(Request::new(request)).await })
                    .await?;
            }
        }
        Ok(())
    }
}

impl ResultSink for Coordinator {
    /// Deliver a batch; `Ok` only once the coordinator stored it durably.
    /// Returns how many records were newly stored.
    async fn report(&self, batch: &Batch) -> Result<u32, CallError> {
        let request = batch_to_proto(&self.worker_id, batch);
        let reply = match &self.link {
            Link::Grpc(client) => client.clone().report_results(request).await?.into_inner(),
            Link::Local(local) => {
                local
                    .call(|s| async move { s.report_results(Request::new(request)).await })
                    .await?
            }
        };
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

    /// A fake coordinator (no real one can be wrong on purpose): leases
    /// nothing, has lost every lease, takes no release, and stores a batch
    /// after a day.
    struct Service;

    #[tonic::async_trait]
    impl WorkerService for Service {
        async fn register(
            &self,
            _: Request<proto::RegisterRequest>,
        ) -> Result<Response<proto::RegisterResponse>, Status> {
            Err(Status::unauthenticated("no"))
        }
        async fn lease(
            &self,
            request: Request<proto::LeaseRequest>,
        ) -> Result<Response<proto::LeaseResponse>, Status> {
            let on = std::thread::current()
                .name()
                .unwrap_or_default()
                .to_string();
            assert_eq!(
                on, "coordinator-test",
                "the call runs on the coordinator's runtime"
            );
            assert_eq!(request.into_inner().worker_id, "w");
            Ok(Response::new(proto::LeaseResponse { tasks: vec![] }))
        }
        async fn heartbeat(
            &self,
            _: Request<proto::HeartbeatRequest>,
        ) -> Result<Response<proto::HeartbeatResponse>, Status> {
            Err(Status::failed_precondition("lost"))
        }
        async fn report_results(
            &self,
            _: Request<proto::ResultBatch>,
        ) -> Result<Response<proto::ResultAck>, Status> {
            tokio::time::sleep(Duration::from_secs(86_400)).await;
            Ok(Response::new(proto::ResultAck { stored: 1 }))
        }
        async fn release(
            &self,
            _: Request<proto::ReleaseRequest>,
        ) -> Result<Response<proto::ReleaseResponse>, Status> {
            Err(Status::unavailable("busy"))
        }
    }

    #[test]
    fn a_local_coordinator_answers_and_fails_as_a_remote_one_would() {
        let coordinator_runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("coordinator-test")
            .enable_all()
            .build()
            .unwrap();
        let local = LocalService::new(Arc::new(Service), coordinator_runtime.handle().clone());
        let link = Coordinator::local(local, "w", "v");
        let worker_runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        worker_runtime.block_on(async {
            let leased = link
                .lease(4, ItemBudget::Shared(8), Duration::ZERO)
                .await
                .unwrap();
            assert!(leased.is_empty());
            let registered = link.register(1, &EgressReport::default()).await;
            assert!(matches!(registered, Err(CallError::Refused(_))));
            let lease = Lease {
                task_id: "t".into(),
                epoch: 1,
            };
            let beat = link.heartbeat(std::slice::from_ref(&lease)).await;
            assert!(matches!(beat, Err(CallError::LeaseLost(_))));
            let released = link.release(&lease).await;
            assert!(matches!(released, Err(CallError::Transient(_))));
        });
        // A call that never ends is bounded like a remote one (the worker's
        // clock paused: it jumps to the bound when nothing else can run).
        let paused = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .unwrap();
        let batch = Batch {
            lease: Lease {
                task_id: "t".into(),
                epoch: 1,
            },
            records_json: vec![],
            task_complete: true,
        };
        let started = std::time::Instant::now();
        let reported = paused.block_on(link.report(&batch));
        assert!(
            matches!(reported, Err(CallError::Transient(_))),
            "{reported:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the paused clock ran"
        );
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
