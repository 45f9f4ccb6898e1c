//! The mxscope coordinator: deciding and remembering (DESIGN §1–§3).
//!
//! Layout:
//! - [`model`]: scans, tasks, leases as plain data.
//! - [`scheduler`]: pure functions: sharding, target dedup, leases and fencing.
//! - [`store`]: sled behind a typed API; durable before acknowledged.
//! - [`service`]: the coordinator itself: store + scheduler + time.
//! - [`networks`]: one worker per network (/24, /48) and vantage at a time.
//! - [`exclusion`]: the coordinator's reloadable exclusion list joined with each scan's.
//! - [`report`]: reports streamed over the store, and their renderings.
//! - [`grpc`]: thin tonic adapters, authentication, TLS, gRPC health.
//! - [`metrics`]: Prometheus families (`--metrics-listen`); [`readiness`]:
//!   `/readyz` and the state gauges read from the coordinator at scrape time.

pub mod exclusion;
pub mod grpc;
pub mod metrics;
pub mod model;
pub mod networks;
pub mod readiness;
pub mod report;
pub mod scheduler;
pub mod service;
pub mod store;
