//! The plain types a leased task is made of, shared by the coordinator
//! client ([`super::link::grpc`]), the runner and the uplink, so that none of
//! those imports another for them: the task ([`TaskSpec`], [`Work`]) and a
//! batch of its results ([`Batch`]), the contract's types that the
//! coordinator speaks too ([`mxscope_common::wire::task`]); what a failed call
//! means ([`CallError`]), and where batches go ([`ResultSink`], the
//! coordinator in production, a script in the uplink's tests).

use std::future::Future;

pub use mxscope_common::wire::task::{Batch, TaskSpec, Work};

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

/// Where the uplink delivers result batches.
pub trait ResultSink: Send + Sync + 'static {
    /// Deliver `batch`; `Ok` only once it is stored durably, with how many
    /// records were newly stored.
    fn report(&self, batch: &Batch) -> impl Future<Output = Result<u32, CallError>> + Send;
}
