//! Serving the coordinator: TLS (optionally mutual), tokens, message-size
//! limits, the connection and request-memory limits ([`super::limits`]),
//! the lease-expiry loop, graceful shutdown.

use std::sync::Arc;
use std::time::Duration;

use mxscope_common::wire::proto::admin_service_server::AdminServiceServer;
use mxscope_common::wire::proto::worker_service_server::WorkerServiceServer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tracing::warn;

use super::admin::AdminApi;
use super::auth::{Role, Tokens};
use super::limits::{self, ServerLimits};
use super::worker::WorkerApi;
use super::MAX_MESSAGE_BYTES;
use crate::service::Coordinator;

/// TLS material for the gRPC server (PEM).
#[derive(Clone)]
pub struct TlsFiles {
    pub cert_pem: Vec<u8>,
    pub key_pem: Vec<u8>,
    /// When set, clients must present a certificate signed by this CA.
    pub client_ca_pem: Option<Vec<u8>>,
}

impl std::fmt::Debug for TlsFiles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsFiles")
            .field("mutual", &self.client_ca_pem.is_some())
            .finish()
    }
}

/// How often expired leases are looked for.
const EXPIRY_TICK: Duration = Duration::from_secs(1);

/// Every [`EXPIRY_TICK`], take back the leases that ran out, until
/// `shutdown` is cancelled: what a coordinator does beside its services
/// (spawned by [`serve`], and by `mxscope scan` for its embedded one).
pub async fn expire_leases(coordinator: Arc<Coordinator>, shutdown: CancellationToken) {
    let mut tick = tokio::time::interval(EXPIRY_TICK);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {
                match coordinator.expire_leases().await {
                    Ok(expired) => crate::metrics::leases_expired(expired),
                    Err(error) => warn!(%error, "expiring leases"),
                }
            }
        }
    }
}

/// Serve both services on `listener` until `shutdown` is cancelled, within
/// `limits`.
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: TcpListener,
    tls: Option<TlsFiles>,
    tokens: Tokens,
    limits: &ServerLimits,
    shutdown: CancellationToken,
) -> Result<(), tonic::transport::Error> {
    let expiry = tokio::spawn(expire_leases(coordinator.clone(), shutdown.clone()));
    let worker = InterceptedService::new(
        WorkerServiceServer::new(WorkerApi::new(coordinator.clone()))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        tokens.interceptor(Role::Worker),
    );
    let admin = InterceptedService::new(
        AdminServiceServer::new(AdminApi::new(coordinator))
            .max_decoding_message_size(MAX_MESSAGE_BYTES)
            .max_encoding_message_size(MAX_MESSAGE_BYTES),
        tokens.interceptor(Role::Admin),
    );
    let mut builder = Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(limits::STREAMS_PER_CONNECTION)
        .initial_connection_window_size(limits::CONNECTION_WINDOW)
        .initial_stream_window_size(limits::STREAM_WINDOW)
        .http2_max_header_list_size(limits::HEADER_LIST_BYTES);
    if let Some(tls) = tls {
        let mut config = ServerTlsConfig::new()
            .identity(Identity::from_pem(tls.cert_pem, tls.key_pem))
            .timeout(limits.first_bytes_within);
        if let Some(ca) = tls.client_ca_pem {
            config = config.client_ca_root(Certificate::from_pem(ca));
        }
        builder = builder.tls_config(config)?;
    }
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<WorkerServiceServer<WorkerApi>>().await;
    health.set_serving::<AdminServiceServer<AdminApi>>().await;
    let result = builder
        .layer(super::budget::budget_layer(limits))
        .add_service(health_service)
        .add_service(worker)
        .add_service(admin)
        .serve_with_incoming_shutdown(limits::gate(listener, limits), shutdown.cancelled())
        .await;
    expiry.abort();
    result
}
