//! The mxscope lab: real Postfix, Exim and Unbound on loopback, plus small
//! hostile fakes, started by the harness for the end-to-end tests (DESIGN §6).
//! The lab needs root (port 25, Postfix) and the Debian packages that
//! `tests/lab/install.sh` installs.
//!
//! Layout:
//! - [`plan`]: every name and address of the lab.
//! - [`process`]: foreground daemons that die with the test process.
//! - [`certs`]: the lab CA and leaf certificates, generated at start (rcgen).
//! - [`mta`]: the MTAs ([`mta::postfix`], [`mta::exim`], one `master.cf`
//!   line per MX host; [`mta::opensmtpd`], [`mta::haraka`],
//!   [`mta::sendmail`], each its own dialect and TLS stack); [`mta::busy`]:
//!   `421` to the first sessions, then a proxy to Postfix.
//! - [`dns`]: Unbound serving `lab.test`; [`dns::knot`]: Knot serving a
//!   DNSSEC-signed hierarchy from a private root, [`dns::forged`] a zone of
//!   it signed by the harness with broken signatures; [`dns::resolvers`]:
//!   Unbound validating, and Unbound stripping DNSSEC, in front of Knot;
//!   [`dns::vantage`]: a true and a tampered copy of a signed hierarchy (two
//!   Knot instances) and an nftables on-path interceptor, for vantage
//!   comparisons; [`dns::spoof`]: answers that must be dropped.
//! - [`nginx`]: nginx serving the MTA-STS policy hosts over HTTPS.
//! - [`scripted`]: the one scripted fake SMTP server; every odd peer is a
//!   script: [`scripted::scripts`] ready-made STARTTLS behaviours (TLS
//!   servers, canned answers), [`scripted::fakes`] the plan's fake hosts,
//!   [`scripted::sslv3`] a canned SSLv3 ServerHello, [`scripted::weak_tls`]
//!   every weakness no lab MTA can have, [`scripted::vuln_tls`] a Heartbleed-
//!   and CCS-injection-vulnerable script.
//! - [`runs`]: what runs against the lab: mxscope ([`runs::probing`],
//!   [`runs::scanning`], [`runs::cluster`], [`runs::report_json`]), an
//!   abusive client ([`runs::abuse`]), Prometheus ([`runs::ops`]) and sslyze
//!   ([`runs::sslyze`], the TLS depth's oracle).
//! - [`perf`]: the performance lab (a generated zone, one tarpit per
//!   address): [`perf::smtp`] its SMTP server (tokio-rustls; fast, tarpit and
//!   `421` addresses, RSA and ECDSA certificates made at start), [`perf::lab`]
//!   those servers as child processes, [`perf::client`] the benchmarks'
//!   baselines (a bare STARTTLS client, raw DNS, CPU and RSS readers),
//!   [`perf::bench`] the benchmarks of `mxscope-perf-lab`, [`perf::national`]
//!   the national DNS benchmark, [`perf::depth`] the TLS depth benchmark
//!   against sslyze and testssl.sh, [`perf::soak`] the soak (kills, a full
//!   disk and an abusive client while scans run).
//! - [`lab`]: the whole lab, started lazily once per test process.

pub mod certs;
pub mod dns;
pub mod lab;
pub mod mta;
pub mod nginx;
pub mod perf;
pub mod plan;
pub mod process;
pub mod runs;
pub mod scripted;
