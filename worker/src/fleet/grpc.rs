//! The coordinator's `WorkerService`, seen from the worker: the only module
//! of the worker that touches tonic and prost types (DESIGN §1). It opens
//! the channel (TLS, optional client certificate, bearer token on every
//! call), converts proto ⇄ worker types, and sorts call failures into what
//! the caller should do ([`CallError`]).

use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use mxscope_common::exclusions::Exclusions;
use mxscope_common::proto;
use mxscope_common::proto::worker_service_client::WorkerServiceClient;
use mxscope_common::EhloName;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::service::Interceptor;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};

use super::egress::EgressReport;
use super::leases::Lease;
use super::pacing::{self, Limits};
use super::retry::{self, RetryPolicy};
use super::runner::{ScanOptions, TaskSpec, Work};
use super::uplink::Batch;
use super::FleetError;
use crate::config::Timeouts;

/// Largest message either way (a batch is cut far below this).
const MAX_MESSAGE_BYTES: usize = 32 << 20;
/// Connecting to the coordinator.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// One call, whatever it is.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Heartbeat interval when the coordinator names none.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(10);

/// What a failed call means for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// Network trouble or a coordinator restart: retry with backoff.
    #[error("coordinator unreachable: {0}")]
    Transient(String),
    /// The lease is no longer ours (stale epoch, unknown task): stop the
    /// task and drop its results; another worker owns it now.
    #[error("lease lost: {0}")]
    LeaseLost(String),
    /// The coordinator refused the call itself (credentials, invalid
    /// request): retrying the same call will not help.
    #[error("refused by the coordinator: {0}")]
    Refused(String),
}

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

/// Sends `authorization: Bearer <token>` with every call.
#[derive(Debug, Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl Interceptor for Bearer {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
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

/// TLS of a client of an `https://` coordinator, for the worker and the
/// `mxscope` admin client alike: trust `ca_pem` when given (and nothing
/// else), otherwise Mozilla's public roots (webpki-roots); present
/// `identity` (certificate chain, key) for mutual TLS.
pub fn client_tls(ca_pem: Option<&[u8]>, identity: Option<(&[u8], &[u8])>) -> ClientTlsConfig {
    let tls = ClientTlsConfig::new();
    let tls = match ca_pem {
        Some(pem) => tls.ca_certificate(Certificate::from_pem(pem)),
        None => tls.trust_anchors(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    };
    match identity {
        Some((cert, key)) => tls.identity(Identity::from_pem(cert, key)),
        None => tls,
    }
}

impl Coordinator {
    /// Prepare the channel; it connects on first use (and again after any
    /// failure), so an unreachable coordinator is not an error here.
    pub fn new(
        settings: ChannelSettings<'_>,
        worker_id: &str,
        vantage: &str,
    ) -> Result<Self, FleetError> {
        let bad_url = |reason: String| FleetError::CoordinatorUrl {
            url: settings.url.to_string(),
            reason,
        };
        let mut endpoint = Endpoint::from_shared(settings.url.to_string())
            .map_err(|e| bad_url(e.to_string()))?
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(CALL_TIMEOUT)
            .tcp_nodelay(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .keep_alive_timeout(Duration::from_secs(20));
        match endpoint.uri().scheme_str() {
            Some("https") => {
                endpoint = endpoint
                    .tls_config(client_tls(settings.ca_pem, settings.identity))
                    .map_err(|e| FleetError::Tls(e.to_string()))?;
            }
            Some("http") => {
                if settings.ca_pem.is_some() || settings.identity.is_some() {
                    return Err(bad_url(
                        "TLS options given for a plain http:// coordinator; use https://".into(),
                    ));
                }
            }
            _ => return Err(bad_url("the scheme must be http:// or https://".into())),
        }
        let token = match settings.token {
            None => None,
            Some(token) => Some(
                MetadataValue::from_str(&format!("Bearer {}", token.trim()))
                    .map_err(|_| FleetError::Token)?,
            ),
        };
        let client = WorkerServiceClient::with_interceptor(endpoint.connect_lazy(), Bearer(token))
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

    /// Lease up to `max_tasks`; each task converted, or refused with its
    /// lease and the reason (a malformed task).
    pub async fn lease(
        &self,
        max_tasks: usize,
        max_items: usize,
    ) -> Result<Vec<Result<TaskSpec, (Lease, TaskError)>>, CallError> {
        let request = proto::LeaseRequest {
            worker_id: self.worker_id.clone(),
            vantage: self.vantage.clone(),
            max_tasks: saturate(max_tasks),
            max_items: saturate(max_items),
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

    /// Deliver a batch; `Ok` only once the coordinator stored it durably.
    /// Returns how many records were newly stored.
    pub async fn report(&self, batch: &Batch) -> Result<u32, CallError> {
        let request = batch_to_proto(&self.worker_id, batch);
        let reply = self
            .client
            .clone()
            .report_results(request)
            .await?
            .into_inner();
        Ok(reply.stored)
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
    #[error("port {0} out of range")]
    Port(u32),
    /// A resolver is not IP:PORT.
    #[error("resolver {0:?} is not IP:PORT")]
    Resolver(String),
    /// A probe target is not an IP address.
    #[error("target {0:?} is not an IP address")]
    Target(String),
    /// The same IP twice in one probe task (sessions to one IP must be sequential).
    #[error("target {0} appears twice")]
    DuplicateTarget(String),
    /// The scan's EHLO name is not an RFC 5321 domain or address literal.
    #[error("EHLO name {name:?}: {reason}")]
    EhloName {
        name: String,
        reason: mxscope_common::InvalidEhloName,
    },
    /// The exclusion list does not parse; the coordinator is broken.
    #[error("exclusion list: {0}")]
    Exclusions(String),
}

fn task_from_proto(task: proto::Task) -> Result<TaskSpec, TaskError> {
    if task.task_id.is_empty() {
        return Err(TaskError::NoId);
    }
    let lease = lease_of(&task);
    let options = options_from_proto(task.options.unwrap_or_default())?;
    let work = match task.work {
        None => return Err(TaskError::NoWork),
        Some(proto::task::Work::Resolve(resolve)) => Work::Resolve(resolve.domains),
        Some(proto::task::Work::Probe(probe)) => {
            let mut seen = std::collections::HashSet::new();
            let mut targets = Vec::with_capacity(probe.targets.len());
            for target in probe.targets {
                let ip = target
                    .ip
                    .parse()
                    .map_err(|_| TaskError::Target(target.ip.clone()))?;
                if !seen.insert(ip) {
                    return Err(TaskError::DuplicateTarget(target.ip));
                }
                targets.push((ip, target.mx_names));
            }
            Work::Probe(targets)
        }
    };
    Ok(TaskSpec {
        lease,
        scan_id: task.scan_id,
        vantage: task.vantage,
        options,
        work,
    })
}

/// Scan options from the wire: 0 means "the default" for the port and
/// every timeout, an empty string for the EHLO name and the CA bundle.
pub fn options_from_proto(options: proto::ProbeOptions) -> Result<ScanOptions, TaskError> {
    let defaults = Timeouts::default();
    let ms = |value: u32, default: Duration| match value {
        0 => default,
        ms => Duration::from_millis(u64::from(ms)),
    };
    let port = match options.port {
        0 => 25,
        port => u16::try_from(port).map_err(|_| TaskError::Port(port))?,
    };
    let resolvers = options
        .resolvers
        .iter()
        .map(|text| {
            SocketAddr::from_str(text.trim()).map_err(|_| TaskError::Resolver(text.clone()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let ehlo_name = match options.ehlo_name.trim() {
        "" => crate::config::default_ehlo_name(),
        name => EhloName::parse(name).map_err(|reason| TaskError::EhloName {
            name: options.ehlo_name.clone(),
            reason,
        })?,
    };
    Ok(ScanOptions {
        ehlo_name,
        port,
        legacy: options.legacy,
        timeouts: Timeouts {
            connect: ms(options.timeout_connect_ms, defaults.connect),
            greeting: ms(options.timeout_greeting_ms, defaults.greeting),
            command: ms(options.timeout_command_ms, defaults.command),
            handshake: ms(options.timeout_handshake_ms, defaults.handshake),
            session: ms(options.timeout_session_ms, defaults.session),
        },
        resolvers,
        ca_pem: Some(options.ca_pem).filter(|pem| !pem.trim().is_empty()),
        allow_private: options.allow_private,
        security: options.security,
        trust_anchor: Some(options.trust_anchor).filter(|text| !text.trim().is_empty()),
        exclusions: Exclusions::from_lines(&options.exclusions)
            .map_err(|e| TaskError::Exclusions(e.to_string()))?,
        retry: RetryPolicy {
            attempts: match options.retry_attempts {
                0 => retry::DEFAULT_ATTEMPTS,
                n => n.min(retry::MAX_ATTEMPTS),
            },
            first_delay: ms(options.retry_delay_ms, retry::DEFAULT_FIRST_DELAY),
        },
        limits: Limits {
            ip_gap: options.ip_gap_ms.map_or(pacing::DEFAULT_IP_GAP, |gap| {
                Duration::from_millis(u64::from(gap))
            }),
            network_spacing: pacing::spacing_of_milli(
                options
                    .network_rate_milli
                    .unwrap_or(pacing::DEFAULT_NETWORK_RATE_MILLI),
            ),
            worker_spacing: pacing::spacing_of_milli(options.vantage_rate_milli),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without a CA file the public roots are trusted; with one, only it.
    #[test]
    fn public_roots_unless_a_ca_file_is_given() {
        let anchors = |tls: ClientTlsConfig| format!("{tls:?}").matches("TrustAnchor {").count();
        assert_eq!(
            anchors(client_tls(None, None)),
            webpki_roots::TLS_SERVER_ROOTS.len()
        );
        assert!(webpki_roots::TLS_SERVER_ROOTS.len() > 100);
        let pem = b"-----BEGIN CERTIFICATE-----\nMA==\n-----END CERTIFICATE-----\n";
        assert_eq!(anchors(client_tls(Some(pem), None)), 0);
    }

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
        assert_eq!(options.timeouts.connect, Duration::from_millis(1500));
        assert_eq!(options.timeouts.session, Timeouts::default().session);
        assert_eq!(options.resolvers, ["127.0.0.1:5353".parse().unwrap()]);
        assert_eq!(options.ca_pem, None);
        assert!(options.allow_private && !options.legacy);
        assert!(!options.ehlo_name.as_str().is_empty());
    }

    #[test]
    fn malformed_tasks_are_refused() {
        assert_eq!(
            task_from_proto(probe_task(&["mx.example"])),
            Err(TaskError::Target("mx.example".into()))
        );
        assert_eq!(
            task_from_proto(probe_task(&["127.0.0.1", "127.0.0.1"])),
            Err(TaskError::DuplicateTarget("127.0.0.1".into()))
        );
        let mut no_work = probe_task(&[]);
        no_work.work = None;
        assert_eq!(task_from_proto(no_work), Err(TaskError::NoWork));
        let mut no_id = probe_task(&[]);
        no_id.task_id.clear();
        assert_eq!(task_from_proto(no_id), Err(TaskError::NoId));
        let port = proto::ProbeOptions {
            port: 70_000,
            ..Default::default()
        };
        assert_eq!(options_from_proto(port), Err(TaskError::Port(70_000)));
        let resolver = proto::ProbeOptions {
            resolvers: vec!["dns.example".into()],
            ..Default::default()
        };
        assert!(matches!(
            options_from_proto(resolver),
            Err(TaskError::Resolver(_))
        ));
        // The worker parses the EHLO name itself, whatever the coordinator checked.
        let smuggled = proto::ProbeOptions {
            ehlo_name: "scanner.example\r\nMAIL FROM:<x@example.org>".into(),
            ..Default::default()
        };
        assert!(matches!(
            options_from_proto(smuggled),
            Err(TaskError::EhloName { .. })
        ));
    }

    #[test]
    fn defaults_for_zero_and_empty() {
        let options = options_from_proto(proto::ProbeOptions {
            ehlo_name: " scanner.example ".into(),
            ca_pem: "-----BEGIN CERTIFICATE-----".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(options.port, 25);
        assert_eq!(options.timeouts, Timeouts::default());
        assert_eq!(options.ehlo_name.as_str(), "scanner.example");
        assert!(options.ca_pem.is_some());
        assert!(options.resolvers.is_empty());
        assert!(!options.security);
        assert_eq!(options.trust_anchor, None);
    }

    #[test]
    fn security_options_from_the_wire() {
        let options = options_from_proto(proto::ProbeOptions {
            security: true,
            trust_anchor: ". 3600 IN DNSKEY 257 3 13 AAAA\n".into(),
            ..Default::default()
        })
        .unwrap();
        assert!(options.security);
        assert!(options.trust_anchor.is_some_and(|t| t.contains("DNSKEY")));
        let blank = options_from_proto(proto::ProbeOptions {
            security: true,
            trust_anchor: " \n".into(),
            ..Default::default()
        })
        .unwrap();
        assert_eq!(blank.trust_anchor, None);
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
