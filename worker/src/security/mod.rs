//! The checks around an MX that are not its SMTP session (`--security`).
//!
//! Layout:
//! - [`dnssec`]: DNSSEC status with its reason (hickory validation,
//!   `--trust-anchor`); `dnssec::check` the resolver self-check,
//!   `dnssec::diagnose` why a validation failed (bogus or indeterminate),
//!   over `dnssec::wire`'s single queries.
//! - [`dane`]: DANE for SMTP (RFC 7672), TLSA matching.
//! - [`rdns`]: reverse DNS with forward confirmation.
//! - [`mtasts`], [`tlsrpt`]: MTA-STS (RFC 8461: TXT, HTTPS policy; the per-MX
//!   verdict is `mxscope_common::mtasts`) and TLS-RPT (RFC 8460) records.
//! - [`checks`]: those checks wired into a run, per domain after MX
//!   resolution and per target after its sessions.

pub mod checks;
pub mod dane;
pub mod dnssec;
pub mod mtasts;
pub mod rdns;
pub mod tlsrpt;
