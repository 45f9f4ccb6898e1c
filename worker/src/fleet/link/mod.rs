//! The worker's side of its coordinator: the gRPC client ([`grpc`], the
//! only module of the worker that touches tonic), the leases it holds
//! ([`leases`]) and keeps alive ([`heartbeat`]), when and for how much to
//! ask ([`asker`]), and the backoff of every retry towards it ([`backoff`]).

pub mod asker;
pub mod backoff;
pub mod grpc;
pub(super) mod heartbeat;
pub mod leases;
