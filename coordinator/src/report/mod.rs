//! Reports: what users came for. Computed by streaming over a scan's
//! records (memory grows with unique MX hosts and IPs, not with domains),
//! rendered as text, Markdown, JSON, CSV or a self-contained HTML page.
//!
//! - [`model`]: the report as plain data (serde), shared by every renderer.
//! - [`headline`]: the headline numbers by the counting rules of DESIGN §5.
//! - [`aggregate`]: the engine: two passes over domain records, one over
//!   target records ([`scan_report`], or [`Aggregator`] when records are
//!   pushed, e.g. from a gRPC stream).
//! - `distributions`: the distribution counters of one vantage (key,
//!   verification, protocols, expiry, ...) turned into distributions;
//!   `distributions::labels`: how one target record shows up in them, and
//!   labels, times and shares as text.
//! - `sections`: the TLS depth section (`depth`: hosts per finding, weakest
//!   suite class, suite order, SCTs, OCSP, the rows of hosts with findings)
//!   and the security section (`security`: DNSSEC, DANE, MTA-STS joined
//!   with the targets, TLS-RPT, reverse DNS).
//! - [`vantages`]: vantage against vantage, classified differences;
//!   [`vantages::dns`]: the DNS comparison and the per-domain merge-join;
//!   `vantages::classify`: a target's views and the classes of their
//!   differences; [`vantages::agreement`]: the main report's vantage
//!   agreement section.
//! - [`compare`]: scans side by side.
//! - [`render`]: text, Markdown, JSON, CSV of the scan report and the
//!   comparison; `render::vantages`: text and Markdown of the vantages
//!   report; [`render::html`]: the HTML page; `render::text`: aligned
//!   tables, the scan line (shared by the renderings).
//! - `tests`, `bench` (and `bench::vantages`; test builds only): the unit
//!   tests and the report benchmarks.

pub mod aggregate;
#[cfg(test)]
mod bench;
pub mod compare;
mod distributions;
pub mod headline;
pub mod model;
pub mod parquet;
pub mod render;
mod sections;
#[cfg(test)]
mod tests;
pub mod vantages;

pub use aggregate::{scan_report, Aggregator, Evaluated};
pub use compare::{compare, comparison_table};
pub use headline::{headline, headline_side_by_side, Headline};
pub use model::Disagreement;
pub use vantages::{
    vantages_report, vantages_report_joined, vantages_report_with_domains, VantageComparer,
};

use crate::model::ScanMeta;
use model::ScanInfo;

/// The report's view of a scan's meta. `legacy` is the scan's option; the
/// engine also sets it when legacy results are seen (a remote status does
/// not carry the options).
pub fn scan_info(meta: &ScanMeta) -> ScanInfo {
    let mut vantages = meta.vantages.clone();
    vantages.sort();
    vantages.dedup();
    ScanInfo {
        id: meta.id.clone(),
        name: meta.name.clone(),
        labels: meta.labels.clone(),
        vantages,
        domains: meta.domains,
        created_unix_ms: meta.created_ms,
        finished_unix_ms: meta.finished_ms,
        legacy: meta.options.legacy,
        tls_depth: meta.options.tls_depth.extra_sessions(),
    }
}
