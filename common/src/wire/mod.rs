//! The contract between the coordinator, its workers and its clients: the
//! generated gRPC code, the plain types both sides share, the conversions
//! between them, and the client set-up. Only this module touches tonic and
//! prost types in this crate.

pub mod client;
pub mod convert;
pub mod proto;
pub mod task;
