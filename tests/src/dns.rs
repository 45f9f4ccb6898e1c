//! The lab's DNS. OWNED BY THE DNS HELPER — stub.

use std::net::SocketAddr;
use std::path::Path;

/// Unbound, authoritative for `lab.test`, on [`crate::plan::DNS_ADDR`].
#[derive(Debug)]
pub struct Unbound {}

impl Unbound {
    /// Write the zone and config under `dir`, start Unbound, wait until it answers.
    pub fn start(dir: &Path) -> anyhow::Result<Self> {
        let _ = dir;
        todo!("dns helper")
    }

    pub fn addr(&self) -> SocketAddr {
        todo!("dns helper")
    }
}
