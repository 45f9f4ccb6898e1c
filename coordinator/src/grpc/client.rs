//! The admin client the `mxscope` CLI uses against a running coordinator
//! (endpoint, TLS, token and message limit: [`mxscope_common::wire::client`]).

use std::collections::BTreeMap;

use mxscope_common::wire::client::{endpoint, ClientConfigError, MAX_MESSAGE_BYTES};
pub use mxscope_common::wire::client::{Bearer, ClientTls};
use mxscope_common::wire::proto::admin_service_client::AdminServiceClient;
use mxscope_common::wire::proto::{self, submit_scan_request::Part};
use mxscope_common::{DomainRecord, InvalidLine, Record, TargetRecord};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::Status;

use crate::model::ScanOptions;
use crate::service::{ScanRequest, ScanStatus, Submitted};

/// Lines per streamed chunk of a submission (well under the message limit).
const CHUNK_LINES: usize = 10_000;

/// Errors talking to a coordinator.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The URL, CA or token is unusable; fix the option named.
    #[error("{0}")]
    Config(String),
    /// The coordinator could not be reached; check the URL and that it runs.
    #[error("connecting to {url}: {source}")]
    Connect {
        url: String,
        source: tonic::transport::Error,
    },
    /// The coordinator refused or failed the call.
    #[error("{}", .0.message())]
    Status(#[from] Status),
    /// The coordinator sent something unreadable.
    #[error("invalid answer: {0}")]
    Invalid(String),
}

type Authed = InterceptedService<Channel, Bearer>;

impl From<ClientConfigError> for ClientError {
    fn from(error: ClientConfigError) -> Self {
        Self::Config(error.to_string())
    }
}

/// Open a channel to `url` (http:// or https://, `ca_pem` to trust for https).
pub async fn channel(url: &str, ca_pem: Option<&[u8]>) -> Result<Channel, ClientError> {
    let tls = ClientTls {
        ca_pem: ca_pem.map(<[u8]>::to_vec),
        identity: None,
    };
    channel_with(url, &tls).await
}

/// Open a channel to `url` with full TLS settings ([`endpoint`]; no call
/// timeout: an export streams for as long as the scan is large).
pub async fn channel_with(url: &str, tls: &ClientTls) -> Result<Channel, ClientError> {
    endpoint(url, tls, None)?
        .connect()
        .await
        .map_err(|source| ClientError::Connect {
            url: url.to_string(),
            source,
        })
}

/// The bearer interceptor for `token`.
pub fn bearer(token: Option<&str>) -> Result<Bearer, ClientError> {
    Ok(Bearer::new(token)?)
}

/// An admin connection.
#[derive(Clone)]
pub struct AdminClient {
    inner: AdminServiceClient<Authed>,
}

impl std::fmt::Debug for AdminClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AdminClient")
    }
}

impl AdminClient {
    pub async fn connect(
        url: &str,
        token: Option<&str>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, ClientError> {
        let tls = ClientTls {
            ca_pem: ca_pem.map(<[u8]>::to_vec),
            identity: None,
        };
        Self::connect_with(url, token, &tls).await
    }

    /// Connect with full TLS settings (e.g. a client certificate).
    pub async fn connect_with(
        url: &str,
        token: Option<&str>,
        tls: &ClientTls,
    ) -> Result<Self, ClientError> {
        let channel = channel_with(url, tls).await?;
        let inner = AdminServiceClient::with_interceptor(channel, bearer(token)?)
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES);
        Ok(Self { inner })
    }

    /// Submit a scan whose lines are all in memory, streamed in chunks.
    pub async fn submit(
        &mut self,
        name: String,
        labels: BTreeMap<String, String>,
        vantages: Vec<String>,
        options: &ScanOptions,
        skip_invalid: bool,
        lines: Vec<String>,
    ) -> Result<Submitted, ClientError> {
        let request = ScanRequest {
            name,
            labels,
            vantages,
            options: options.clone(),
            skip_invalid,
        };
        let chunks: Vec<Vec<String>> = lines.chunks(CHUNK_LINES).map(<[_]>::to_vec).collect();
        self.submit_stream(request, tokio_stream::iter(chunks))
            .await
    }

    /// Submit a scan whose lines arrive as `chunks` (each well under the
    /// message limit), sent as they come: the client holds what the stream
    /// holds. The coordinator stores the scan only when the stream ends; a
    /// stream that never ends and is dropped with this future submits
    /// nothing (the coordinator sees the call cancelled).
    pub async fn submit_stream(
        &mut self,
        request: ScanRequest,
        chunks: impl tokio_stream::Stream<Item = Vec<String>> + Send + 'static,
    ) -> Result<Submitted, ClientError> {
        use tokio_stream::StreamExt;
        let spec = proto::SubmitScanRequest {
            part: Some(Part::Spec(proto::ScanSpec {
                name: request.name,
                labels: request.labels.into_iter().collect(),
                vantages: request.vantages,
                options: Some((&request.options).into()),
                skip_invalid: request.skip_invalid,
            })),
        };
        let chunks = chunks.map(|lines| proto::SubmitScanRequest {
            part: Some(Part::Domains(proto::DomainChunk { lines })),
        });
        let stream = tokio_stream::once(spec).chain(chunks);
        let r = self.inner.submit_scan(stream).await?.into_inner();
        Ok(Submitted {
            scan_id: r.scan_id,
            domains: r.domains,
            duplicates: r.duplicates,
            skipped: r
                .skipped
                .into_iter()
                .map(|l| InvalidLine {
                    line: usize::try_from(l.line).unwrap_or(usize::MAX),
                    reason: l.reason,
                })
                .collect(),
        })
    }

    pub async fn status(&mut self, scan_id: &str) -> Result<ScanStatus, ClientError> {
        let r = self
            .inner
            .get_scan(proto::GetScanRequest {
                scan_id: scan_id.to_string(),
            })
            .await?
            .into_inner();
        ScanStatus::try_from(r).map_err(ClientError::Invalid)
    }

    pub async fn list(&mut self) -> Result<Vec<ScanStatus>, ClientError> {
        let r = self
            .inner
            .list_scans(proto::ListScansRequest {})
            .await?
            .into_inner();
        r.scans
            .into_iter()
            .map(|s| ScanStatus::try_from(s).map_err(ClientError::Invalid))
            .collect()
    }

    pub async fn cancel(&mut self, scan_id: &str) -> Result<ScanStatus, ClientError> {
        let r = self
            .inner
            .cancel_scan(proto::CancelScanRequest {
                scan_id: scan_id.to_string(),
            })
            .await?
            .into_inner();
        ScanStatus::try_from(r).map_err(ClientError::Invalid)
    }

    /// Every record of a scan, handed to `each` as it arrives.
    pub async fn stream_results(
        &mut self,
        scan_id: &str,
        each: impl FnMut(Record) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.stream_some(scan_id, "", "", each).await
    }

    /// The target records of a scan.
    pub async fn stream_targets(
        &mut self,
        scan_id: &str,
        mut each: impl FnMut(TargetRecord) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        self.stream_some(scan_id, "targets", "", |record| match record {
            Record::Target(t) => each(t),
            Record::Domain(_) => Err(old_server()),
        })
        .await
    }

    /// The domain records of one vantage of a scan, by domain name, read
    /// one at a time ([`DomainStream::next`]).
    pub async fn domains_of(
        &mut self,
        scan_id: &str,
        vantage: &str,
    ) -> Result<DomainStream, ClientError> {
        let inner = self
            .inner
            .stream_results(proto::StreamResultsRequest {
                scan_id: scan_id.to_string(),
                only: "domains".to_string(),
                vantage: vantage.to_string(),
            })
            .await?
            .into_inner();
        Ok(DomainStream {
            inner,
            vantage: vantage.to_string(),
        })
    }

    async fn stream_some(
        &mut self,
        scan_id: &str,
        only: &str,
        vantage: &str,
        mut each: impl FnMut(Record) -> Result<(), ClientError>,
    ) -> Result<(), ClientError> {
        let mut stream = self
            .inner
            .stream_results(proto::StreamResultsRequest {
                scan_id: scan_id.to_string(),
                only: only.to_string(),
                vantage: vantage.to_string(),
            })
            .await?
            .into_inner();
        while let Some(record) = stream.message().await? {
            let record =
                Record::try_from(&record).map_err(|e| ClientError::Invalid(e.to_string()))?;
            each(record)?;
        }
        Ok(())
    }
}

/// One vantage's domain records, pulled one at a time.
pub struct DomainStream {
    inner: tonic::Streaming<proto::ResultRecord>,
    vantage: String,
}

impl std::fmt::Debug for DomainStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DomainStream")
            .field("vantage", &self.vantage)
            .finish_non_exhaustive()
    }
}

impl DomainStream {
    /// The next record; `None` at the end.
    pub async fn next(&mut self) -> Result<Option<DomainRecord>, ClientError> {
        let Some(record) = self.inner.message().await? else {
            return Ok(None);
        };
        match Record::try_from(&record).map_err(|e| ClientError::Invalid(e.to_string()))? {
            Record::Domain(d) if d.vantage.as_deref() == Some(self.vantage.as_str()) => Ok(Some(d)),
            _ => Err(old_server()),
        }
    }
}

/// A coordinator that ignores the record filter streams everything.
fn old_server() -> ClientError {
    ClientError::Invalid(
        "the coordinator sent records outside the filter: it is older than this client".into(),
    )
}
