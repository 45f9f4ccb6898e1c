//! Types every mxscope component speaks: the records a probe produces, the
//! outcome enums the reports count, and the parsing of domain lists.
//!
//! Layout:
//! - [`record`]: versioned JSON records (`kind: domain` / `kind: target`) and
//!   the enums inside them (outcome, phase, verification, version support).
//! - [`tls_facts`]: how a TLS session came about (handshake failure, first
//!   flight, key exchange, suite per version, certificate per MX name,
//!   certificate verification).
//! - [`encoding`]: hex and base64 text of bytes, for every crate.
//! - [`options`]: the scan/probe options type and every default;
//!   [`proto`]: the generated gRPC code; [`convert`]: every proto ⇄ domain
//!   conversion and its validation (`TryFrom` refuses bad input);
//!   [`task`]: the plain task, lease, batch, egress-check and registration types of the worker service,
//!   which the coordinator and the worker share;
//!   [`client`]: the coordinator's clients (endpoint, TLS, bearer token,
//!   message limit).
//! - [`ehlo`]: the EHLO name as a type (RFC 5321 `Domain` / address literal).
//! - [`domain`]: domain-name normalisation (IDNA → A-label) and domain-list
//!   parsing with line-numbered errors.
//! - [`findings`]: known TLS weaknesses as data, defined once and derived
//!   from a target record's facts.
//! - [`exclusions`]: networks, domains and MX suffixes a scan never touches.
//! - [`politeness`]: the /24-/48 network of an address, which addresses
//!   are public, the records of excluded domains and targets (skip reasons
//!   and retry attempts are target-record fields, re-exported there).
//! - [`mtasts`]: MTA-STS evaluation, a pure function over records (the
//!   worker after its probes, the report for a stored policy-only verdict).
//! - [`tally`]: sessions, exclusions, retries and the resolver check per
//!   vantage, counted over records (the report and the store).
//! - [`security_dns`], [`security_policy`]: the record types of the security
//!   checks (DNSSEC, DANE, reverse DNS; MTA-STS, TLS-RPT).
//! - [`units`]: durations, dates and times as the command lines and records
//!   write them.
//! - [`ops`]: the operations listener (`/metrics`, `/healthz`, `/readyz`);
//!   [`telemetry`]: log set-up shared by the command lines;
//!   [`cli_args`]: the flag groups, secrets, resolver parser and signal
//!   handling both command lines share;
//!   [`cli_config`]: `--config FILE` and `MXSCOPE_*` variables for `serve`
//!   and `work`, the options every long-running command shares;
//!   [`runtime`]: a runtime of one's own (the fleet's control plane and
//!   resolutions, the embedded coordinator), dropped without blocking.

pub mod cli_args;
pub mod cli_config;
pub mod cli_docs;
pub mod client;
pub mod convert;
pub mod domain;
pub mod ehlo;
pub mod encoding;
pub mod exclusions;
pub mod mtasts;
pub mod ops;
pub mod options;
pub mod politeness;
pub mod proto;
pub mod record;
pub mod runtime;
pub mod security_dns;
pub mod security_policy;
pub mod tally;
pub mod task;
pub mod telemetry;
pub mod tls_facts;
pub mod units;

pub use domain::{
    parse_domain_list, parse_list_line, DomainList, DomainListBuilder, DomainName, InvalidLine,
};
pub use ehlo::{EhloName, InvalidEhloName};
pub use record::findings;
pub use record::*;
pub use tls_facts::{
    HandshakeFailure, KeyExchange, NameCertificate, NameCheck, SuiteChoice, TlsSource,
};
