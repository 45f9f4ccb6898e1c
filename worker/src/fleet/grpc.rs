//! The coordinator's `WorkerService`, seen from the worker: the only module
//! of the worker that touches tonic and prost types (DESIGN §1). It opens
//! the channel ([`mxscope_common::client`]: TLS, optional client
//! certificate, bearer token on every call, message limit), converts
//! proto ⇄ worker types, and sorts call failures into what the caller
//! should do ([`CallError`]).

use std::time::Duration;

use mxscope_common::client::{endpoint, Bearer, ClientTls, MAX_MESSAGE_BYTES};
use mxscope_common::convert::{targets_from_proto, InvalidOptions, InvalidTargets};
use mxscope_common::options::ScanOptions;
use mxscope_common::proto;
use mxscope_common::proto::worker_service_client::WorkerServiceClient;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};

use super::egress::EgressReport;
use super::leases::Lease;
use super::task::{Batch, CallError, ResultSink, TaskSpec, Work};
use super::FleetError;

/// One call, whatever it is.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Heartbeat interval when the coordinator names none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

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

/// What the coordinator told us at registration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Registration {
    pub heartbeat_interval: Duration,
    pub lease_ttl: Duration,
}

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
            egress: Some(egress_to_proto(egress)),
        };
        let reply = self.client.clone().register(request).await?.into_inner();
        Ok(registration(reply))
    }

    /// Lease up to `max_tasks` (their items up to `max_items`); when none is
    /// pending the coordinator may hold the call up to `wait` (long poll).
    /// Each task converted, or refused with its lease and the reason (a
    /// malformed task).
    pub async fn lease(
        &self,
        max_tasks: usize,
        max_items: usize,
        wait: Duration,
    ) -> Result<Vec<Result<TaskSpec, (Lease, TaskError)>>, CallError> {
        let request = proto::LeaseRequest {
            worker_id: self.worker_id.clone(),
            vantage: self.vantage.clone(),
            max_tasks: saturate(max_tasks),
            max_items: saturate(max_items),
            wait_ms: u32::try_from(wait.as_millis()).unwrap_or(u32::MAX),
        };
        let reply = self.client.clone().lease(request).await?.into_inner();
        Ok(reply
            .tasks
            .into_iter()
            .map(|task| {
                let lease = lease_of(&task);
                task_from_proto(task).map_err(|error| (lease, error))
            })
            .collect())
    }

    /// Extend `leases`; returns the ones the coordinator says we lost.
    pub async fn heartbeat(&self, leases: &[Lease]) -> Result<Vec<Lease>, CallError> {
        let request = proto::HeartbeatRequest {
            worker_id: self.worker_id.clone(),
            leases: leases.iter().map(lease_to_proto).collect(),
        };
        let reply = self.client.clone().heartbeat(request).await?.into_inner();
        Ok(reply.lost.into_iter().map(lease_from_proto).collect())
    }

    pub async fn release(&self, lease: &Lease) -> Result<(), CallError> {
        let request = proto::ReleaseRequest {
            worker_id: self.worker_id.clone(),
            lease: Some(lease_to_proto(lease)),
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

fn registration(reply: proto::RegisterResponse) -> Registration {
    let heartbeat_interval = match reply.heartbeat_interval_ms {
        0 => DEFAULT_HEARTBEAT,
        ms => Duration::from_millis(u64::from(ms))
            .clamp(Duration::from_millis(50), Duration::from_secs(600)),
    };
    Registration {
        heartbeat_interval,
        lease_ttl: Duration::from_millis(u64::from(reply.lease_ttl_ms)),
    }
}

fn egress_to_proto(egress: &EgressReport) -> proto::EgressCheck {
    proto::EgressCheck {
        checked: egress.checked,
        ok: egress.ok,
        target: egress.target.clone(),
        detail: egress.detail.clone(),
    }
}

fn lease_of(task: &proto::Task) -> Lease {
    Lease {
        task_id: task.task_id.clone(),
        epoch: task.epoch,
    }
}

fn lease_to_proto(lease: &Lease) -> proto::LeaseRef {
    proto::LeaseRef {
        task_id: lease.task_id.clone(),
        epoch: lease.epoch,
    }
}

fn lease_from_proto(lease: proto::LeaseRef) -> Lease {
    Lease {
        task_id: lease.task_id,
        epoch: lease.epoch,
    }
}

fn batch_to_proto(worker_id: &str, batch: &Batch) -> proto::ResultBatch {
    proto::ResultBatch {
        worker_id: worker_id.to_string(),
        task_id: batch.lease.task_id.clone(),
        epoch: batch.lease.epoch,
        records_json: batch.records_json.clone(),
        task_complete: batch.task_complete,
    }
}

/// Why a leased task cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// The task has no id; the coordinator is broken.
    #[error("task without id")]
    NoId,
    /// Neither resolve nor probe work; a newer coordinator may know more kinds.
    #[error("task without work (unknown kind?)")]
    NoWork,
    /// The scan's options are refused (the coordinator's own validator, run
    /// here again whatever the coordinator checked).
    #[error(transparent)]
    Options(#[from] InvalidOptions),
    /// A probe target is not an IP address, or appears twice.
    #[error(transparent)]
    Targets(#[from] InvalidTargets),
}

fn task_from_proto(task: proto::Task) -> Result<TaskSpec, TaskError> {
    if task.task_id.is_empty() {
        return Err(TaskError::NoId);
    }
    let lease = lease_of(&task);
    let options = ScanOptions::try_from(task.options.unwrap_or_default())?;
    let work = match task.work {
        None => return Err(TaskError::NoWork),
        Some(proto::task::Work::Resolve(resolve)) => Work::Resolve(resolve.domains),
        Some(proto::task::Work::Probe(probe)) => Work::Probe(targets_from_proto(probe.targets)?),
    };
    Ok(TaskSpec {
        lease,
        scan_id: task.scan_id,
        vantage: task.vantage,
        options,
        work,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe_task(targets: &[&str]) -> proto::Task {
        proto::Task {
            task_id: "t1".into(),
            epoch: 4,
            scan_id: "s1".into(),
            vantage: "eu".into(),
            lease_deadline_unix_ms: 0,
            options: Some(proto::ProbeOptions {
                port: 2525,
                timeout_connect_ms: 1500,
                resolvers: vec!["127.0.0.1:5353".into()],
                allow_private: true,
                ..Default::default()
            }),
            work: Some(proto::task::Work::Probe(proto::ProbeWork {
                targets: targets
                    .iter()
                    .map(|ip| proto::ProbeTarget {
                        ip: ip.to_string(),
                        mx_names: vec!["mx.example".into()],
                    })
                    .collect(),
            })),
        }
    }

    #[test]
    fn task_from_the_wire() {
        let spec = task_from_proto(probe_task(&["127.0.0.1", "::1"])).unwrap();
        assert_eq!(
            spec.lease,
            Lease {
                task_id: "t1".into(),
                epoch: 4
            }
        );
        assert_eq!((spec.scan_id.as_str(), spec.vantage.as_str()), ("s1", "eu"));
        let Work::Probe(targets) = spec.work else {
            panic!("not a probe task");
        };
        assert_eq!(targets.len(), 2);
        assert_eq!(targets[1].0, "::1".parse::<std::net::IpAddr>().unwrap());
        let options = spec.options;
        assert_eq!(options.port, 2525);
        assert_eq!(options.timeouts().connect, Duration::from_millis(1500));
        assert_eq!(
            options.timeouts().session,
            crate::config::Timeouts::default().session
        );
        assert_eq!(
            options.resolver_addrs().unwrap(),
            ["127.0.0.1:5353".parse().unwrap()]
        );
        assert_eq!(options.ca_pem, None);
        assert!(options.allow_private && !options.legacy);
        let name = options.ehlo_name_or(crate::config::default_ehlo_name());
        assert!(!name.unwrap().as_str().is_empty());
    }

    #[test]
    fn malformed_tasks_are_refused() {
        assert_eq!(
            task_from_proto(probe_task(&["mx.example"])),
            Err(TaskError::Targets(InvalidTargets::Target(
                "mx.example".into()
            )))
        );
        assert_eq!(
            task_from_proto(probe_task(&["127.0.0.1", "127.0.0.1"])),
            Err(TaskError::Targets(InvalidTargets::DuplicateTarget(
                "127.0.0.1".into()
            )))
        );
        let mut no_work = probe_task(&[]);
        no_work.work = None;
        assert_eq!(task_from_proto(no_work), Err(TaskError::NoWork));
        let mut no_id = probe_task(&[]);
        no_id.task_id.clear();
        assert_eq!(task_from_proto(no_id), Err(TaskError::NoId));
        // The worker parses the options itself, whatever the coordinator
        // checked (the validator's cases are in `mxscope_common::convert`).
        let mut smuggled = probe_task(&[]);
        smuggled.options = Some(proto::ProbeOptions {
            ehlo_name: "scanner.example\r\nMAIL FROM:<x@example.org>".into(),
            ..Default::default()
        });
        assert!(matches!(
            task_from_proto(smuggled),
            Err(TaskError::Options(InvalidOptions::EhloName { .. }))
        ));
        let mut port = probe_task(&[]);
        port.options = Some(proto::ProbeOptions {
            port: 70_000,
            ..Default::default()
        });
        assert_eq!(
            task_from_proto(port),
            Err(TaskError::Options(InvalidOptions::Port(70_000)))
        );
    }

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

    #[test]
    fn batches_and_registration_to_and_from_the_wire() {
        let batch = Batch {
            lease: Lease {
                task_id: "t".into(),
                epoch: 2,
            },
            records_json: vec!["{}".into()],
            task_complete: true,
        };
        let wire = batch_to_proto("w1", &batch);
        assert_eq!(
            (wire.worker_id.as_str(), wire.task_id.as_str(), wire.epoch),
            ("w1", "t", 2)
        );
        assert!(wire.task_complete);
        assert_eq!(wire.records_json, ["{}"]);

        let reg = registration(proto::RegisterResponse {
            heartbeat_interval_ms: 0,
            lease_ttl_ms: 30_000,
        });
        assert_eq!(reg.heartbeat_interval, DEFAULT_HEARTBEAT);
        assert_eq!(reg.lease_ttl, Duration::from_secs(30));
    }

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
