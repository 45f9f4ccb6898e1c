//! The mxscope lab: real Postfix, Exim and Unbound on loopback, plus small
//! hostile fakes, started by the harness for the end-to-end tests (DESIGN §6).
//!
//! Layout:
//! - [`plan`]: every name and address of the lab.
//! - [`certs`]: the lab CA and leaf certificates, generated at start (rcgen).
//! - [`postfix`], [`exim`]: the MTAs, one `master.cf` line per MX host.
//! - [`dns`]: Unbound serving `lab.test`.
//! - [`fakes`]: hostile and scripted servers (tokio listeners).
//! - [`sslv3`]: the scripted SSLv3 server.
//! - [`lab`]: the whole lab, started once per test process.

pub mod plan;
pub mod process;
