//! The mxscope lab: real Postfix, Exim and Unbound on loopback, plus small
//! hostile fakes, started by the harness for the end-to-end tests (DESIGN §6).
//! The lab needs root (port 25, Postfix) and the Debian packages that
//! `tests/lab/install.sh` installs.
//!
//! Layout:
//! - [`plan`]: every name and address of the lab.
//! - [`process`]: foreground daemons that die with the test process.
//! - [`certs`]: the lab CA and leaf certificates, generated at start (rcgen).
//! - [`postfix`], [`exim`]: the MTAs, one `master.cf` line per MX host.
//! - [`dns`]: Unbound serving `lab.test`.
//! - [`nginx`]: nginx serving the MTA-STS policy hosts over HTTPS.
//! - [`knot`]: Knot serving a DNSSEC-signed hierarchy from a private root.
//! - [`fakes`]: hostile servers (tokio listeners).
//! - [`sslv3`]: the scripted SSLv3 server.
//! - [`busy`]: `421` to the first sessions, then a proxy to Postfix.
//! - [`probing`]: a prober and resolver aimed at the lab.
//! - [`cluster`]: real coordinator and worker processes.
//! - [`perf`]: the performance lab (a generated zone, one tarpit per address).
//! - [`report_json`]: reading JSON reports in tests.
//! - [`lab`]: the whole lab, started lazily once per test process.

pub mod busy;
pub mod certs;
pub mod cluster;
pub mod dns;
pub mod exim;
pub mod fakes;
pub mod knot;
pub mod lab;
pub mod nginx;
pub mod perf;
pub mod plan;
pub mod postfix;
pub mod probing;
pub mod process;
pub mod report_json;
pub mod sslv3;
