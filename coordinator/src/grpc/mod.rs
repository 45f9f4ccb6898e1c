//! Thin tonic adapters: validate, convert, call the [`Coordinator`], map one
//! error enum to `tonic::Code`. The only module of this crate that touches
//! generated types.
//!
//! - [`worker`]: the worker service; [`admin`]: the admin service.
//! - [`auth`]: bearer tokens (worker tokens cannot submit or cancel).
//! - [`server`]: TLS, message-size limits, the lease-expiry loop.
//! - [`options`]: task counts and scan statuses ⇄ wire.
//! - [`client`]: the admin client of the `mxscope` CLI.
//!
//! The gRPC health service (`grpc.health.v1`, no token needed) says SERVING
//! for the two services while the server runs.

pub mod admin;
pub mod auth;
pub mod client;
pub mod options;
pub mod server;
pub mod worker;

use tonic::Status;

use crate::service::ServiceError;

/// Most bytes in one gRPC message, either way: the one limit of server and clients.
pub use mxscope_common::client::MAX_MESSAGE_BYTES;

impl From<ServiceError> for Status {
    fn from(error: ServiceError) -> Self {
        let message = error.to_string();
        match error {
            ServiceError::InvalidLine(_) | ServiceError::Invalid(_) => {
                Self::invalid_argument(message)
            }
            ServiceError::NotFound(_) => Self::not_found(message),
            ServiceError::Fenced(_) => {
                crate::metrics::stale_epoch();
                Self::failed_precondition(message)
            }
            ServiceError::Store(_) => Self::unavailable(message),
        }
    }
}
