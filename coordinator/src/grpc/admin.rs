//! The admin service over the [`Coordinator`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use mxscope_common::wire::proto::{self, admin_service_server::AdminService};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

use crate::model::ScanOptions;
use crate::service::{Coordinator, ScanRequest};

/// The admin service.
/// A submission that sends no chunk for this long is dropped: it holds one
/// of the service's few submission slots and its staged names.
const SUBMIT_SILENCE: Duration = Duration::from_secs(60);

#[derive(Debug, Clone)]
pub struct AdminApi {
    coordinator: Arc<Coordinator>,
}

impl AdminApi {
    pub fn new(coordinator: Arc<Coordinator>) -> Self {
        Self { coordinator }
    }
}

type RecordStream = Pin<Box<dyn Stream<Item = Result<proto::ResultRecord, Status>> + Send>>;

#[tonic::async_trait]
impl AdminService for AdminApi {
    async fn submit_scan(
        &self,
        request: Request<Streaming<proto::SubmitScanRequest>>,
    ) -> Result<Response<proto::SubmitScanResponse>, Status> {
        use proto::submit_scan_request::Part;
        let mut stream = request.into_inner();
        let Some(Part::Spec(spec)) = stream.message().await?.and_then(|m| m.part) else {
            return Err(Status::invalid_argument(
                "the first message must be the scan spec",
            ));
        };
        let options = ScanOptions::try_from(spec.options.unwrap_or_default())
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        // Streamed into the store chunk by chunk: memory holds one chunk;
        // the service caps the list's lines and bytes.
        let mut submission = self.coordinator.begin_submit(ScanRequest {
            name: spec.name,
            labels: spec.labels.into_iter().collect(),
            vantages: spec.vantages,
            options,
            skip_invalid: spec.skip_invalid,
        })?;
        loop {
            let next = tokio::time::timeout(SUBMIT_SILENCE, stream.message()).await;
            let Ok(message) = next else {
                return Err(Status::deadline_exceeded(format!(
                    "no domain chunk for {} s: the submission is dropped",
                    SUBMIT_SILENCE.as_secs()
                )));
            };
            let Some(message) = message? else { break };
            match message.part {
                Some(Part::Domains(chunk)) => submission.push(&chunk.lines).await?,
                _ => {
                    return Err(Status::invalid_argument(
                        "only domain chunks may follow the spec",
                    ))
                }
            }
        }
        let submitted = submission.finish().await?;
        Ok(Response::new(proto::SubmitScanResponse {
            scan_id: submitted.scan_id,
            domains: submitted.domains,
            duplicates: submitted.duplicates,
            skipped: submitted
                .skipped
                .into_iter()
                .map(|l| proto::InvalidLine {
                    line: l.line as u64,
                    reason: l.reason,
                })
                .collect(),
        }))
    }

    async fn get_scan(
        &self,
        request: Request<proto::GetScanRequest>,
    ) -> Result<Response<proto::ScanStatus>, Status> {
        let scan = request.into_inner().scan_id;
        let status = self.coordinator.blocking(move |c| c.status(&scan)).await?;
        Ok(Response::new((&status).into()))
    }

    async fn list_scans(
        &self,
        _request: Request<proto::ListScansRequest>,
    ) -> Result<Response<proto::ListScansResponse>, Status> {
        let scans = self.coordinator.blocking(Coordinator::list).await?;
        Ok(Response::new(proto::ListScansResponse {
            scans: scans.iter().map(Into::into).collect(),
        }))
    }

    async fn cancel_scan(
        &self,
        request: Request<proto::CancelScanRequest>,
    ) -> Result<Response<proto::ScanStatus>, Status> {
        let status = self
            .coordinator
            .cancel(&request.into_inner().scan_id)
            .await?;
        Ok(Response::new((&status).into()))
    }

    type StreamResultsStream = RecordStream;

    async fn stream_results(
        &self,
        request: Request<proto::StreamResultsRequest>,
    ) -> Result<Response<Self::StreamResultsStream>, Status> {
        let request = request.into_inner();
        let scan = request.scan_id;
        let status = {
            let scan = scan.clone();
            self.coordinator.blocking(move |c| c.status(&scan)).await?
        };
        let (with_domains, with_targets) = match request.only.as_str() {
            "" => (true, true),
            "targets" => (false, true),
            "domains" => {
                if !status.meta.vantages.contains(&request.vantage) {
                    return Err(Status::invalid_argument(format!(
                        "scan {scan} has no vantage {:?}",
                        request.vantage
                    )));
                }
                (true, false)
            }
            other => {
                return Err(Status::invalid_argument(format!(
                    "only must be empty, \"domains\" or \"targets\", not {other:?}"
                )))
            }
        };
        let vantage = (!request.vantage.is_empty()).then_some(request.vantage);
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        // Streamed from the blocking pool for as long as the client reads.
        let coordinator = Arc::clone(&self.coordinator);
        let streaming = async move {
            coordinator
                .blocking(move |c| {
                    let store = c.store();
                    // The stored text goes out as it is: it is the record's
                    // JSON (the worker's, checked at ingest, or the
                    // coordinator's own), not decoded and encoded again.
                    let domains = store
                        .domain_texts(&scan, vantage.as_deref())
                        .take_while(|_| with_domains);
                    let targets = store.target_texts(&scan).take_while(|_| with_targets);
                    for text in domains.chain(targets) {
                        let item = text
                            .map(|json| proto::ResultRecord { json })
                            .map_err(|e| Status::internal(e.to_string()));
                        if tx.blocking_send(item).is_err() {
                            break;
                        }
                    }
                    Ok(())
                })
                .await
        };
        tokio::spawn(streaming);
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }
}
