//! Sections of the scan report beyond the headline and the distributions:
//! the TLS depth ([`depth`]: hosts per finding, weakest suite class, suite
//! order, SCTs, OCSP, the rows of hosts with findings) and the security
//! checks ([`security`]: DNSSEC, DANE, MTA-STS joined with the targets,
//! TLS-RPT, reverse DNS).

pub(super) mod depth;
pub(super) mod security;
