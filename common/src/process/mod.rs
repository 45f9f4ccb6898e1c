//! A long-running process: its operations listener, its logs, a runtime of
//! its own, and how soon its allocator gives memory back (`allocator`).

pub mod allocator;
pub mod ops;
pub mod runtime;
pub mod telemetry;
