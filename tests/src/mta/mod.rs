//! The lab's MTAs: [`postfix`] and [`exim`] (one `master.cf` line per MX
//! host), [`opensmtpd`], [`haraka`], [`sendmail`] (each its own dialect and
//! TLS stack), and [`busy`]: `421` to the first sessions, then a proxy to
//! Postfix.

pub mod busy;
pub mod exim;
pub mod haraka;
pub mod opensmtpd;
pub mod postfix;
pub mod sendmail;
