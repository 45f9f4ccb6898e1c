//! A long-running process: its operations listener, its logs and a
//! runtime of its own.

pub mod allocator;
pub mod ops;
pub mod runtime;
pub mod telemetry;
