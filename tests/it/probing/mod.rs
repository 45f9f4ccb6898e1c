//! The worker's parts against real servers, one at a time: the MX resolver
//! against the lab's Unbound, the probe against the lab's MTAs (Postfix,
//! Exim, OpenSMTPD, Sendmail, Haraka) and old TLS stacks, the
//! legacy-version and first-flight probes, TLS depth against sslyze,
//! extra sessions.

mod dns;
mod exim;
mod extra_sessions;
mod first_flight;
mod legacy;
mod mtas;
mod postfix;
mod probe;
mod tls_depth;
