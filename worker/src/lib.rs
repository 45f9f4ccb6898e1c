//! The mxscope worker: everything that measures.
//!
//! Layout:
//! - [`dns`]: MX resolution (hickory-resolver): null MX, implicit MX, A/AAAA;
//!   the resolver set-up every resolver of the worker shares.
//! - [`dnssec`], [`dane`], [`rdns`]: DNSSEC status, DANE for SMTP (RFC 7672),
//!   reverse DNS with forward confirmation; [`dnssec_check`] the resolver
//!   self-check, [`dnssec_diagnose`] why a validation failed (bogus or
//!   indeterminate), over [`dnssec_wire`]'s single queries.
//! - [`smtp`]: the SMTP dialogue as a sans-IO state machine plus a thin tokio driver.
//! - [`tls`]: the rustls handshake with a recording (never rejecting) verifier.
//! - [`tls_signature`]: a handshake signature by another key than the
//!   certificate's fails the handshake; weak keys are tolerated.
//! - [`cert`]: certificate analysis (x509-parser): facts, key and signature
//!   names, self-signature, RFC 6125 name matching.
//! - [`legacy`]: SSLv3/TLS 1.0/1.1/1.2 probes with hand-built ClientHellos.
//! - [`first_flight`]: TLS facts from the server's first flight when rustls
//!   cannot complete (legacy-only servers).
//! - [`mtasts`], [`tlsrpt`]: MTA-STS (RFC 8461: TXT, HTTPS policy; the per-MX
//!   verdict is `mxscope_common::mtasts`) and TLS-RPT (RFC 8460) records.
//! - [`security`]: those checks wired into a run (`--security`).
//! - [`probe`]: one domain or one target, end to end, into records.
//! - [`pace`]: the turn a probe awaits before each further session to its IP.
//! - [`summary`]: the readable per-domain text of `mxscope-worker probe`.
//! - [`config`]: probe options shared by the CLI and the fleet (the SMTP
//!   timeouts are [`smtp::driver::Timeouts`], re-exported there).
//! - [`limits`]: the open-file limit checked against `--concurrency`.
//! - [`fleet`]: the coordinator client: register, lease, run tasks, report results.
//! - [`metrics`]: Prometheus families and readiness of `work` (`--metrics-listen`).

pub mod cert;
pub mod config;
pub mod dane;
pub mod dns;
pub mod dnssec;
pub mod dnssec_check;
pub mod dnssec_diagnose;
pub mod dnssec_wire;
pub mod first_flight;
pub mod fleet;
pub mod legacy;
pub mod limits;
pub mod metrics;
pub mod mtasts;
pub mod pace;
pub mod probe;
pub mod rdns;
pub mod security;
pub mod smtp;
pub mod summary;
pub mod tls;
pub mod tls_signature;
pub mod tlsrpt;
