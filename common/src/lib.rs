//! Types every mxscope component speaks: the records a probe produces, the
//! outcome enums the reports count, and the parsing of domain lists.
//!
//! Layout:
//! - [`record`]: versioned JSON records (`kind: domain` / `kind: target`),
//!   the enums inside them (outcome, phase, verification, version support),
//!   the security checks' record types (`security_dns`: DNSSEC, DANE,
//!   reverse DNS; `security_policy`: MTA-STS, TLS-RPT), how a TLS session
//!   came about (`tls_facts`), known TLS weaknesses as data ([`findings`]),
//!   and a record with its JSON text as delivered (`Delivered`).
//! - [`wire`]: the worker and admin services' contract — the generated
//!   gRPC code (`proto`), every proto ⇄ domain conversion and its validation
//!   (`convert`: `TryFrom` refuses bad input), the plain task, lease, batch,
//!   egress-check and registration types the coordinator and the worker
//!   share (`task`), and the coordinator's clients (`client`: endpoint,
//!   TLS, bearer token, message limit).
//! - [`cli`]: what both command lines share — the flag groups, secrets,
//!   resolver parser and signal handling (`args`), `--config FILE` and
//!   `MXSCOPE_*` variables (`config`), man pages and completions (`docs`).
//! - [`units`]: durations, dates and times as the command lines and records
//!   write them.
//! - [`process`]: a long-running process — the operations listener
//!   (`ops`: `/metrics`, `/healthz`, `/readyz`), log set-up and repeated
//!   warnings (`telemetry`), a runtime of one's own dropped without
//!   blocking (`runtime`).
//! - [`options`]: the scan/probe options type and every default.
//! - [`encoding`]: hex and base64 text of bytes, for every crate.
//! - [`names`]: the EHLO name as a type (`ehlo`: RFC 5321 `Domain` /
//!   address literal); domain-name normalisation (IDNA → A-label) and
//!   domain-list parsing with line-numbered errors (`domain`).
//! - [`politeness`]: the /24-/48 network of an address, which addresses
//!   are public, the records of excluded domains and targets (skip reasons
//!   and retry attempts are target-record fields, re-exported there);
//!   `politeness::exclusions`: networks, domains and MX suffixes a scan
//!   never touches.
//! - [`mtasts`]: MTA-STS evaluation, a pure function over records (the
//!   worker after its probes, the report for a stored policy-only verdict).
//! - [`tally`]: sessions, exclusions, retries and the resolver check per
//!   vantage, counted over records (the report and the store).

pub mod cli;
pub mod encoding;
pub mod mtasts;
pub mod names;
pub mod options;
pub mod politeness;
pub mod process;
pub mod record;
pub mod tally;
pub mod units;
pub mod wire;

pub use names::domain::{
    parse_domain_list, parse_list_line, DomainList, DomainListBuilder, DomainName, InvalidLine,
};
pub use names::ehlo::{EhloName, InvalidEhloName};
pub use record::findings;
pub use record::tls_facts::{
    HandshakeFailure, KeyExchange, NameCertificate, NameCheck, SuiteChoice, TlsSource,
};
pub use record::*;
