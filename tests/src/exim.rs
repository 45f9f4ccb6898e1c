//! The lab's Exim. OWNED BY THE MTA HELPER — stub.

use std::path::Path;

use crate::certs::LabCerts;

/// Exim (unpacked from the Debian package) serving [`crate::plan::MX_EXIM`].
#[derive(Debug)]
pub struct Exim {}

impl Exim {
    /// Configure and start Exim under `dir`; returns once it accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let _ = (dir, certs);
        todo!("mta helper")
    }
}
