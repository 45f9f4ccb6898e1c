//! The SMTP side of a probe (DESIGN §4).
//!
//! - [`reply`]: a bounded parser of whole multi-line replies over a byte buffer.
//! - [`dialogue`]: the sans-IO dialogue: one type per expected reply, each
//!   consuming itself and saying what to do next. Never sends `MAIL FROM`.
//! - [`driver`]: the thin tokio driver that owns the socket, the timeouts and
//!   the TLS upgrade.

pub mod dialogue;
pub mod driver;
pub mod reply;
