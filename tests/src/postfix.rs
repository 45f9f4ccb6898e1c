//! The lab's Postfix. OWNED BY THE MTA HELPER — stub.

use std::path::Path;

use crate::certs::LabCerts;

/// One Postfix instance serving every host of [`crate::plan::POSTFIX_HOSTS`].
#[derive(Debug)]
pub struct Postfix {}

impl Postfix {
    /// Configure and start Postfix under `dir`; returns once every host accepts.
    pub fn start(dir: &Path, certs: &LabCerts) -> anyhow::Result<Self> {
        let _ = (dir, certs);
        todo!("mta helper")
    }
}
