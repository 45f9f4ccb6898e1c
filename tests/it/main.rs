//! End-to-end tests against the lab (real Postfix, Exim, Unbound, fakes).
//! Run as root after `tests/lab/install.sh`: see the README.

mod abuse;
mod bounds;
mod cancel;
mod cli;
mod cluster;
mod cluster_api;
mod cluster_dns;
mod cluster_tls;
mod corpus;
mod dane;
mod deploy;
mod dns;
mod exim;
mod extra_sessions;
mod first_flight;
mod hostile;
mod layout;
mod legacy;
mod mtas;
mod mtasts;
mod observability;
mod package;
mod parquet;
mod politeness;
mod postfix;
mod probe;
mod report;
mod scan;
mod schema;
mod security;
mod security_resolvers;
mod security_scan;
mod slots;
mod submit;
mod tls_depth;
