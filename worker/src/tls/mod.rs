//! TLS after STARTTLS: what a server's TLS says, however old or odd it is.
//!
//! Layout:
//! - [`handshake`]: the rustls handshake with a recording (never rejecting)
//!   verifier, and the name match of a chain against the MX names.
//! - [`signature`]: a handshake signature by another key than the
//!   certificate's fails the handshake; weak keys are tolerated.
//! - [`cert`]: certificate analysis (x509-parser): facts, key and signature
//!   names, self-signature, RFC 6125 name matching.
//! - [`exchange`]: the one hello-and-read driver every hand-built hello uses.
//! - `roots`: the trust stores every TLS client of the worker uses.
//! - [`legacy`]: SSLv3/TLS 1.0/1.1/1.2 probes with hand-built ClientHellos.
//! - [`first_flight`]: TLS facts from the server's first flight when rustls
//!   cannot complete (legacy-only servers).
//! - [`dh_groups`]: finite-field DH groups named by their prime.
//! - [`depth`]: `--tls-depth`: accepted suite classes or suites per version,
//!   preference, fallback SCSV, SSLv2, renegotiation, compression.

pub mod cert;
pub mod depth;
pub mod dh_groups;
pub mod exchange;
pub mod first_flight;
pub mod handshake;
pub mod legacy;
pub(crate) mod roots;
pub mod signature;
