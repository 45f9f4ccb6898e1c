//! End-to-end tests against the lab (real Postfix, Exim, Unbound, fakes).
//! Run as root after `tests/lab/install.sh`: see the README.

mod bounds;
mod cluster;
mod probing;
mod product;
mod security;
