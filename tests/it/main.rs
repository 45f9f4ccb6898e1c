//! End-to-end tests against the lab (real Postfix, Exim, Unbound, fakes).
//! Run as root: `cargo test -p mxscope-tests` after `tests/lab/install.sh`.

mod dns;
mod exim;
mod legacy;
mod postfix;
