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
//! - [`opensmtpd`], [`haraka`], [`sendmail`]: more MTAs, each its own dialect
//!   and TLS stack.
//! - [`dns`]: Unbound serving `lab.test`.
//! - [`nginx`]: nginx serving the MTA-STS policy hosts over HTTPS.
//! - [`knot`]: Knot serving a DNSSEC-signed hierarchy from a private root;
//!   [`forged`] a zone of it signed by the harness with broken signatures.
//! - [`resolvers`]: Unbound validating, and Unbound stripping DNSSEC, in front of Knot.
//! - [`vantage_dns`]: a true and a tampered copy of a signed hierarchy (two
//!   Knot instances) and an nftables on-path interceptor, for vantage comparisons.
//! - [`scripted`]: the one scripted fake SMTP server; every odd peer is a script.
//! - [`scripts`]: ready-made STARTTLS behaviours for scripts (TLS servers, canned answers).
//! - [`fakes`]: the plan's fake hosts, each a script on its lab address.
//! - [`depth_bench`]: the TLS depth benchmark against sslyze and testssl.sh.
//! - [`sslyze`]: sslyze run on a lab address, as the TLS depth's oracle.
//! - [`sslv3`]: the SSLv3 script (a canned SSLv3 ServerHello);
//!   [`weak_tls`]: the script of every weakness no lab MTA can have;
//!   [`vuln_tls`]: a Heartbleed- and CCS-injection-vulnerable script.
//! - [`probing`]: a prober and resolver aimed at the lab.
//! - [`cluster`]: real coordinator and worker processes; [`abuse`] an
//!   abusive client of the coordinator (budget test, soak).
//! - [`ops`]: a real Prometheus scraping them, promtool, a bounded HTTP GET.
//! - [`busy`]: `421` to the first sessions, then a proxy to Postfix.
//! - [`perf`]: the performance lab (a generated zone, one tarpit per address).
//! - [`perf_smtp`]: its SMTP server (tokio-rustls; fast, tarpit and `421`
//!   addresses, RSA and ECDSA certificates made at start); [`perf_lab`] those
//!   servers as child processes; [`perf_client`] the benchmarks' baselines
//!   (a bare STARTTLS client, raw DNS, CPU and RSS readers); [`perf_bench`]
//!   the benchmarks of `mxscope-perf-lab`; [`soak`] its soak (kills, a full
//!   disk and an abusive client while scans run).
//! - [`report_json`]: reading JSON reports in tests.
//! - [`scanning`]: `mxscope scan` of lab domains, read back with `export`.
//! - [`lab`]: the whole lab, started lazily once per test process.

pub mod abuse;
pub mod busy;
pub mod certs;
pub mod cluster;
pub mod depth_bench;
pub mod dns;
pub mod exim;
pub mod fakes;
pub mod forged;
pub mod haraka;
pub mod knot;
pub mod lab;
pub mod national_bench;
pub mod nginx;
pub mod opensmtpd;
pub mod ops;
pub mod perf;
pub mod perf_bench;
pub mod perf_client;
pub mod perf_lab;
pub mod perf_smtp;
pub mod plan;
pub mod postfix;
pub mod probing;
pub mod process;
pub mod report_json;
pub mod resolvers;
pub mod scanning;
pub mod scripted;
pub mod scripts;
pub mod sendmail;
pub mod soak;
pub mod spoof_dns;
pub mod sslv3;
pub mod sslyze;
pub mod vantage_dns;
pub mod vuln_tls;
pub mod weak_tls;
