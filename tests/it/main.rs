//! End-to-end tests against the lab (real Postfix, Exim, Unbound, fakes).
//! Run as root after `tests/lab/install.sh`: see the README.

mod cli;
mod cluster;
mod cluster_api;
mod cluster_tls;
mod dane;
mod dns;
mod exim;
mod hostile;
mod legacy;
mod mtasts;
mod politeness;
mod postfix;
mod probe;
mod report;
mod scan;
mod security;
mod security_scan;
