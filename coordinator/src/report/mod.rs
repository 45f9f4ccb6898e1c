//! Reports: what users came for. Computed by streaming over a scan's
//! records (memory grows with unique MX hosts and IPs, not with domains),
//! rendered as text, Markdown, JSON, CSV or a self-contained HTML page.
//!
//! - [`model`]: the report as plain data (serde), shared by every renderer.
//! - [`headline`]: the headline numbers by the counting rules of DESIGN §5.

pub mod headline;
pub mod model;

pub use headline::{headline, Headline};
