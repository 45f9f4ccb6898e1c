//! Types every mxscope component speaks: the records a probe produces, the
//! outcome enums the reports count, and the parsing of domain lists.
//!
//! Layout:
//! - [`record`]: versioned JSON records (`kind: domain` / `kind: target`) and
//!   the enums inside them (outcome, phase, verification, version support).
//! - [`proto`]: the generated gRPC code; [`convert`]: proto ⇄ domain types.
//! - [`domain`]: domain-name normalisation (IDNA → A-label) and domain-list
//!   parsing with line-numbered errors.
//! - [`exclusions`]: networks, domains and MX suffixes a scan never touches.
//! - [`politeness`]: skip reasons and retry attempts of target records.

pub mod convert;
pub mod domain;
pub mod exclusions;
pub mod politeness;
pub mod proto;
pub mod record;
pub mod security_dns;
pub mod security_policy;
pub mod telemetry;
pub mod units;

pub use domain::{parse_domain_list, DomainList, DomainListBuilder, DomainName, InvalidLine};
pub use record::*;
