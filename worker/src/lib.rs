//! The mxscope worker: everything that measures.
//!
//! Layout (the pipeline of one probe, then the process around it):
//! - [`dns`]: MX resolution (hickory-resolver): null MX, implicit MX, A/AAAA;
//!   the resolver set-up every resolver of the worker shares.
//! - [`smtp`]: the SMTP dialogue as a sans-IO state machine plus a thin tokio driver.
//! - [`tls`]: the rustls handshake, handshake signatures, certificates,
//!   legacy-version hellos and facts from a server's first flight.
//! - [`security`]: DNSSEC, DANE, reverse DNS, MTA-STS and TLS-RPT, and their
//!   wiring into a run (`--security`).
//! - [`probe`]: one domain or one target, end to end, into records;
//!   `probe::pace` the turn a probe awaits before each further session to
//!   its IP.
//! - [`summary`]: the readable per-domain text of `mxscope-worker probe`.
//! - [`config`]: probe options shared by the CLI and the fleet (the SMTP
//!   timeouts are [`smtp::driver::Timeouts`], re-exported there).
//! - [`limits`]: the open-file limit checked against `--concurrency`.
//! - [`fleet`]: the coordinator client: register, lease, run tasks, report results.
//! - [`metrics`]: Prometheus families and readiness of `work` (`--metrics-listen`).

pub mod config;
pub mod dns;
pub mod fleet;
pub mod limits;
pub mod metrics;
pub mod probe;
pub mod security;
pub mod smtp;
pub mod summary;
pub mod tls;
