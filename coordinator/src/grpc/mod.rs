//! Thin tonic adapters: validate, convert, call the [`Coordinator`], map one
//! error enum to `tonic::Code`. The only module of this crate that touches
//! generated types.
//!
//! - [`worker`]: the worker service; [`admin`]: the admin service.
//! - [`auth`]: bearer tokens (worker tokens cannot submit or cancel).
//! - [`server`]: TLS, message-size limits, the lease-expiry loop.
//! - [`limits`], [`budget`]: connections and request memory: what clients can make it hold.
//! - [`status`]: task counts and scan statuses ⇄ wire (the admin messages;
//!   the worker contract's conversions are `mxscope_common::wire::convert`'s).
//! - [`client`]: the admin client of the `mxscope` CLI.
//!
//! The gRPC health service (`grpc.health.v1`, no token needed) says SERVING
//! for the two services while the server runs.

pub mod admin;
pub mod auth;
pub mod budget;
pub mod client;
pub mod limits;
pub mod server;
pub mod status;
pub mod worker;

use tonic::{Code, Status};

use crate::service::{ErrorKind, ServiceError};

/// Most bytes in one gRPC message, either way: the one limit of server and clients.
pub use mxscope_common::wire::client::MAX_MESSAGE_BYTES;

/// The one mapping of the coordinator's error kinds to status codes: a
/// worker retries `UNAVAILABLE` (and `INTERNAL`), never `INVALID_ARGUMENT`
/// or `DATA_LOSS`.
pub fn code_of(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidRequest => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::Fenced => Code::FailedPrecondition,
        ErrorKind::Corrupt => Code::DataLoss,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
    }
}

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let kind = error.kind();
        if kind == ErrorKind::Fenced {
            crate::metrics::stale_epoch();
        }
        if matches!(error, ServiceError::Store(_)) {
            crate::metrics::store_error();
        }
        Self::new(code_of(kind), error.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::Fence;
    use crate::store::StoreError;

    #[test]
    fn every_error_kind_has_its_status_code() {
        let code = |e: ServiceError| Status::from(e).code();
        assert_eq!(
            code(ServiceError::Invalid("x".into())),
            Code::InvalidArgument
        );
        assert_eq!(code(ServiceError::NotFound("s9".into())), Code::NotFound);
        assert_eq!(
            code(ServiceError::Fenced(Fence::NotLeased("t".into()))),
            Code::FailedPrecondition
        );
        assert_eq!(
            code(StoreError::Invalid("nul".into()).into()),
            Code::InvalidArgument
        );
        assert_eq!(
            code(StoreError::Corrupt("task".into()).into()),
            Code::DataLoss
        );
        assert_eq!(
            code(StoreError::Contention("scan counter").into()),
            Code::Unavailable
        );
        assert_eq!(
            code(StoreError::Storage("disk full".into()).into()),
            Code::Unavailable
        );
        assert_eq!(
            code(StoreError::ScanExists("s1".into()).into()),
            Code::Internal
        );
    }
}
